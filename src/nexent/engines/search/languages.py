"""The languages of a query, and how much a hybrid search should trust an embedding model with it.

An English-only embedding model ranks Chinese passages barely better than chance (all-MiniLM-L6-v2 alone: nDCG@10
0.17 on RGB-zh dev, against 0.71 for BM25), and at a fixed vector weight it drags the hybrid ranking below BM25's.
So the vector side's weight follows the share of the query the model understands: `base * covered share`.

Languages are told apart by script, which is what matters for the models we know of (an English model reads
French poorly too, but far better than it reads Chinese): Han characters are Chinese (Japanese when kana appear),
Hangul Korean, and so on; Latin script counts as English, except in a query written mostly in another script,
where Latin words are names and acronyms. Units are words, except in Han and kana, where two characters count as
one word (the average length of a Chinese word): "giant pandas 熊猫竹子" is half English, half Chinese, and
"2021年香港GDP增长了多少" is Chinese.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Mapping

# Script ranges, checked in order; the first that matches a character decides its language.
_SCRIPTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("zh", re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")),
    ("ja", re.compile("[\u3040-\u30ff\u31f0-\u31ff]")),  # hiragana and katakana
    ("ko", re.compile("[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]")),
    ("ru", re.compile("[\u0400-\u04ff]")),
    ("ar", re.compile("[\u0600-\u06ff\u0750-\u077f]")),
    ("he", re.compile("[\u0590-\u05ff]")),
    ("el", re.compile("[\u0370-\u03ff]")),
    ("hi", re.compile("[\u0900-\u097f]")),
    ("th", re.compile("[\u0e00-\u0e7f]")),
    ("en", re.compile("[A-Za-z\u00c0-\u024f]")),
)
_CHARACTER_SCRIPTS = frozenset({"zh", "ja"})  # written without spaces: two characters make about one word
_WORD = re.compile(r"[^\W_]+")


def _language_of(char: str) -> str | None:
    for language, pattern in _SCRIPTS:
        if pattern.match(char):
            return language
    return None


def query_languages(text: str) -> dict[str, float]:
    """Each language's share of `text` (shares sum to 1; empty when the text has no letters). Digits count for
    nothing: "2022" is in every language."""
    units: dict[str, float] = {}
    for word in _WORD.findall(unicodedata.normalize("NFKC", text)):
        counts: dict[str, int] = {}
        for char in word:
            language = _language_of(char)
            if language is not None:
                counts[language] = counts.get(language, 0) + 1
        for language, count in counts.items():
            units[language] = units.get(language, 0.0) + (count / 2 if language in _CHARACTER_SCRIPTS else 1.0)
    if "ja" in units:  # kana: the Han characters around them are Japanese
        units["ja"] += units.pop("zh", 0.0)
    if "en" in units and units["en"] < sum(units.values()) / 2 and len(units) > 1:
        # Latin words in a query written mostly in another script are names and acronyms (GDP, iPhone, Kevin
        # Padian): an English model does not understand the question for them. Counting them cost RGB-zh dev
        # 0.0008 nDCG@10 against BM25 alone (23 of its 150 questions hold some).
        del units["en"]
    total = sum(units.values())
    return {language: round(share / total, 4) for language, share in units.items()} if total else {}


def covered_share(languages: Mapping[str, float], covered: Collection[str] | None) -> float:
    """The share of the query in languages the model understands (`covered` None: every language)."""
    if covered is None or not languages:
        return 1.0
    return sum(share for language, share in languages.items() if language in covered)


def vector_weight_for(base: float, languages: Mapping[str, float], covered: Collection[str] | None) -> float:
    """The vector side's weight for a query: `base` scaled by the share of the query the model understands."""
    return round(base * covered_share(languages, covered), 4)
