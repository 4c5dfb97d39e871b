"""Language-aware text analysis for BM25, shared by every search engine.

Text is NFKC-normalised and split into runs of Han characters and runs of everything else:
- Han runs are segmented into words by jieba (its bundled dictionary, loaded once, lazily; no download).
- Other runs are split into words (letters and digits of any script), case-folded, accent-folded, stop-worded
  (English) and Snowball-stemmed (English), so "running" and "runs" meet at "run".

Documents and queries go through the same `analyze`, and the engines receive the terms already analysed
(joined by spaces), so BM25 sees exactly the same terms in LanceDB and in Milvus.
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
# small and queries such as "什么是..." fast.
_CHINESE_STOP = "的 了 是 在 和 与 及 或 之 其 为 也 都 而 被 把 这 那 就 则 即 吗 呢 吧 啊 么"
CHINESE_STOP_WORDS = frozenset(_CHINESE_STOP.split())

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


def analyze(text: str) -> list[str]:
    """The BM25 terms of `text`, in order (repeated terms repeat)."""
    text = unicodedata.normalize("NFKC", text)
    terms: list[str] = []
    pending: list[str] = []  # non-Han words waiting for one batched stemmer call
    for match in _RUNS.finditer(text):
        han, other = match.group(1), match.group(2)
        if han:
            if pending:
                terms.extend(_stem(pending))
                pending = []
            for word in _segmenter().lcut(han, HMM=True):
                if word not in CHINESE_STOP_WORDS and len(word) <= MAX_TOKEN_CHARS:
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


def analyze_joined(text: str, max_bytes: int | None = None) -> str:
    """The terms joined by single spaces (what engines index with a whitespace tokenizer), cut at a term
    boundary to at most `max_bytes` UTF-8 bytes."""
    joined = " ".join(analyze(text))
    if max_bytes is not None and len(joined.encode()) > max_bytes:
        cut = joined.encode()[: max_bytes + 1].decode(errors="ignore")
        joined = cut[: cut.rfind(" ")] if " " in cut else ""
    return joined
