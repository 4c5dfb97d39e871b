"""Language-aware text analysis for BM25, shared by every search engine.

Text is NFKC-normalised (full-width letters, digits and spaces become their ASCII forms) and split into runs of
Han characters and runs of everything else:
- Han runs are segmented by jieba (its bundled dictionary, loaded once, lazily; no download) in search mode
  (`cut_for_search`: a long word also yields the shorter words inside it, so "中华人民共和国" meets "人民"), and
  Chinese function words are dropped.
- Other runs are split into words (letters and digits of any script), case-folded, accent-folded, stop-worded
  (English) and Snowball-stemmed (English), so "running" and "runs" meet at "run".

Documents and queries go through the same `analyze`, and the engines receive the terms already analysed
(joined by spaces), so BM25 sees exactly the same terms in LanceDB and in Milvus.

Versions: an index keeps the analysis it was built with, so that its documents and its queries always meet with
the same terms; callers pass the index's version (`ANALYSIS_VERSION` for new indexes). Version 1 segmented Han
runs with `lcut` and dropped 24 function words; version 2 is the search-mode segmentation and the longer stop
list, measured in docs/search.md (RGB-zh dev BM25 nDCG@10 0.686 -> 0.712, CMRC 2018 0.976 -> 0.979).
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
import warnings
from typing import Any

MAX_TOKEN_CHARS = 40

# Lucene's English stop set (what BM25 baselines such as BEIR's use), plus the pieces left by possessives and
# contractions once punctuation is split off.
_ENGLISH_STOP = (
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these they "
    "this to was will with s t d ll m re ve"
)
ENGLISH_STOP_WORDS = frozenset(_ENGLISH_STOP.split())
# Function words that carry no topic; BM25's IDF would weigh them down anyway, but dropping them keeps postings
# small and queries such as "什么是..." fast. Version 1's list:
_CHINESE_STOP_V1 = "的 了 是 在 和 与 及 或 之 其 为 也 都 而 被 把 这 那 就 则 即 吗 呢 吧 啊 么"
# Version 2 adds pronouns, question words, auxiliaries and the bare date units (a year stays a term of its own):
# each group measured better on RGB-zh dev and CMRC 2018; dropping position words (上, 中, 后 ...) measured worse.
_CHINESE_STOP_V2 = (
    _CHINESE_STOP_V1
    + " 着 过 对 从 向 于 以 将 等 个 所 该 此 又 并 但 如 若 因 由 给 让 使 比 还 更 最 很 已 已经"
    + " 我 你 他 她 它 我们 你们 他们 她们 它们 这个 那个 这些 那些"
    + " 什么 哪 哪些 哪个 怎么 怎样 如何 多少 几 谁 是否 有没有 是不是 一个 有 没有 不 会 能 可以 要 想 说 年 月 日"
)
CHINESE_STOP_WORDS = frozenset(_CHINESE_STOP_V2.split())
_CHINESE_STOP_WORDS_V1 = frozenset(_CHINESE_STOP_V1.split())
ANALYSIS_VERSION = 2
ANALYSIS_VERSIONS = (1, 2)

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff"
_RUNS = re.compile(f"([{_HAN}]+)|([^{_HAN}]+)")
_WORD = re.compile(r"[^\W_]+")

_jieba_lock = threading.Lock()
_jieba: Any = None
_local = threading.local()


def _segmenter() -> Any:
    """The jieba tokenizer, initialised once per process (about half a second)."""
    global _jieba
    if _jieba is None:
        with _jieba_lock:
            if _jieba is None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # jieba imports the deprecated pkg_resources
                    import jieba  # type: ignore[import-untyped]
                jieba.setLogLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                tokenizer.initialize()
                _jieba = tokenizer
    return _jieba


def _stemmer() -> Any:
    """PyStemmer objects are not thread-safe: one per thread."""
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        import Stemmer  # type: ignore[import-not-found]

        stemmer = Stemmer.Stemmer("english")
        _local.stemmer = stemmer
    return stemmer


def _fold(word: str) -> str:
    if word.isascii():
        return word
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def analyze(text: str, version: int = ANALYSIS_VERSION) -> list[str]:
    """The BM25 terms of `text`, in order (repeated terms repeat), as analysis `version` makes them."""
    if version not in ANALYSIS_VERSIONS:
        raise ValueError(f"unknown analysis version {version}")
    text = unicodedata.normalize("NFKC", text)
    stop = CHINESE_STOP_WORDS if version >= 2 else _CHINESE_STOP_WORDS_V1
    terms: list[str] = []
    pending: list[str] = []  # non-Han words waiting for one batched stemmer call
    for match in _RUNS.finditer(text):
        han, other = match.group(1), match.group(2)
        if han:
            if pending:
                terms.extend(_stem(pending))
                pending = []
            segmenter = _segmenter()
            words = segmenter.cut_for_search(han, HMM=True) if version >= 2 else segmenter.lcut(han, HMM=True)
            for word in words:
                if word not in stop and len(word) <= MAX_TOKEN_CHARS:
                    terms.append(word)
        else:
            for word in _WORD.findall(other.casefold()):
                folded = _fold(word)
                if folded and folded not in ENGLISH_STOP_WORDS and len(folded) <= MAX_TOKEN_CHARS:
                    pending.append(folded)
    if pending:
        terms.extend(_stem(pending))
    return terms


def _stem(words: list[str]) -> list[str]:
    stems: list[str] = _stemmer().stemWords(words)
    return stems


def analyze_joined(text: str, max_bytes: int | None = None, version: int = ANALYSIS_VERSION) -> str:
    """The terms joined by single spaces (what engines index with a whitespace tokenizer), cut at a term
    boundary to at most `max_bytes` UTF-8 bytes."""
    joined = " ".join(analyze(text, version))
    if max_bytes is not None and len(joined.encode()) > max_bytes:
        cut = joined.encode()[: max_bytes + 1].decode(errors="ignore")
        joined = cut[: cut.rfind(" ")] if " " in cut else ""
    return joined
