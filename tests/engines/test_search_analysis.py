# ruff: noqa: RUF001  (full-width punctuation and letters are the point of these tests)
"""Text analysis (tokenising, stemming, segmentation), fusion and metadata terms of the search engines."""

from __future__ import annotations

import pytest

from nexent.engines.search.analysis import analyze, analyze_joined
from nexent.engines.search.base import metadata_terms
from nexent.engines.search.fusion import fuse
from nexent.engines.search.languages import query_languages, vector_weight_for


def test_english_is_folded_stop_worded_and_stemmed() -> None:
    assert analyze("The runner was RUNNING; she runs.") == ["runner", "run", "she", "run"]
    assert analyze("Studies of the diseases") == ["studi", "diseas"]
    assert analyze("naïve café, Résumé") == ["naiv", "cafe", "resum"]
    assert analyze("the cell's 3D model-based approach") == ["cell", "3d", "model", "base", "approach"]


def test_chinese_is_segmented_into_words() -> None:
    terms = analyze("熊猫主要生活在四川的山区")
    assert "熊猫" in terms and "四川" in terms and "山区" in terms
    assert "的" not in terms  # function words are dropped
    assert analyze("熊猫") == ["熊猫"]


def test_chinese_search_mode_finds_the_words_inside_long_words() -> None:
    # Version 2 (the default): a long word also yields the words inside it; question and function words drop.
    terms = analyze("中华人民共和国的首都是什么")
    assert {"中华人民共和国", "人民", "共和国", "首都"} <= set(terms)
    assert not {"的", "是", "什么"} & set(terms)
    # Version 1, kept for indexes built with it, segments into the longest words only.
    assert analyze("中华人民共和国的首都是什么", version=1) == ["中华人民共和国", "首都", "什么"]
    with pytest.raises(ValueError, match="unknown analysis version"):
        analyze("x", version=99)


def test_mixed_scripts_keep_their_order() -> None:
    assert analyze("使用Python编程 for testing") == ["使用", "python", "编程", "test"]


def test_punctuation_empty_and_long_tokens() -> None:
    assert analyze("") == []
    assert analyze("  ,.;!? —— 。，") == []
    assert analyze("x" * 41 + " ok") == ["ok"]
    assert analyze("snake_case") == ["snake", "case"]


def test_full_width_forms_are_normalised() -> None:
    assert analyze("ＡＢＣ１２３") == analyze("abc123") == ["abc123"]
    # Ideographic and non-breaking spaces separate words like ASCII spaces do.
    assert analyze("２０２２年\u3000ＧＤＰ\u00a0增长") == analyze("2022年 GDP 增长") == ["2022", "gdp", "增长"]


def test_joined_terms_are_cut_at_a_term_boundary() -> None:
    joined = analyze_joined("alpha beta gamma delta", max_bytes=12)
    assert joined == "alpha beta"
    assert analyze_joined("中文分词测试", max_bytes=100) == " ".join(analyze("中文分词测试"))


def test_rrf_is_normalised_and_ranks_both_lists() -> None:
    fused = fuse([("a", 9.0), ("b", 5.0)], [("a", 0.9), ("c", 0.8)], method="rrf")
    assert fused[0].id == "a" and fused[0].score == pytest.approx(1.0)
    assert (fused[0].bm25_rank, fused[0].vector_rank) == (1, 1)
    assert {f.id for f in fused} == {"a", "b", "c"}
    assert all(0.0 <= f.score <= 1.0 for f in fused)


def test_minmax_weights_the_lists() -> None:
    bm25 = [("k", 10.0), ("both", 6.0), ("low", 2.0)]
    vector = [("v", 0.9), ("both", 0.85), ("far", 0.1)]
    fused = fuse(bm25, vector, method="minmax", vector_weight=0.5)
    assert fused[0].id == "both"  # 0.5 * 0.5 + 0.5 * 0.9375
    assert fused[0].score == pytest.approx(0.5 * 0.5 + 0.5 * (0.75 / 0.8))
    only_vector = fuse(bm25, vector, method="minmax", vector_weight=1.0)
    assert only_vector[0].id == "v" and only_vector[0].score == pytest.approx(1.0)
    only_bm25 = fuse(bm25, vector, method="minmax", vector_weight=0.0)
    assert only_bm25[0].id == "k"


def test_fusion_edge_cases() -> None:
    assert fuse([], []) == []
    [single] = fuse([("a", 3.0)], [], method="minmax", vector_weight=0.4)
    assert (single.id, single.bm25_rank, single.vector_rank) == ("a", 1, None)
    assert single.score == pytest.approx(0.6)
    tied = fuse([("b", 1.0), ("a", 1.0)], [], method="dbsf")
    assert [f.id for f in tied] == ["b", "a"]  # equal scores: the better rank first
    assert len(fuse([("a", 1.0), ("b", 0.5)], [("c", 1.0)], top_k=2)) == 2
    with pytest.raises(ValueError, match="vector_weight"):
        fuse([], [], vector_weight=1.5)


def test_metadata_terms_are_typed() -> None:
    [three] = metadata_terms({"page": 3})
    assert metadata_terms({"page": 3.0}) == [three]
    assert metadata_terms({"page": "3"}) != [three]
    assert metadata_terms({"flag": True}) != metadata_terms({"flag": 1})
    assert metadata_terms({"a": "x"}) != metadata_terms({"b": "x"})
    assert all(len(term) == 24 for term in metadata_terms({"a": 1, "b": "é", "c": 2.5}))


def test_query_languages_on_mixed_queries() -> None:
    assert query_languages("What is the capital of France?") == {"en": 1.0}
    assert query_languages("熊猫吃什么") == {"zh": 1.0}
    # Two Han characters weigh about one word: two English words and about two Chinese ones.
    assert query_languages("giant pandas 熊猫竹子") == {"en": 0.5, "zh": 0.5}
    assert query_languages("how do I install Python on 统信") == {"en": 0.8571, "zh": 0.1429}
    # Latin words in a question written mostly in another script are names and acronyms; digits count for nothing.
    assert query_languages("2022年香港GDP增长了多少？") == {"zh": 1.0}
    assert query_languages("Python 编程教程") == {"zh": 1.0}
    assert query_languages("東京タワーの高さ") == {"ja": 1.0}  # kana: the Han characters are Japanese
    assert query_languages("서울의 인구 Seoul") == {"ko": 1.0}
    assert query_languages("Ｐｙｔｈｏｎ") == {"en": 1.0}  # full-width letters are letters
    assert query_languages("2022 ?!") == {}


def test_the_vector_weight_follows_the_model_languages() -> None:
    assert vector_weight_for(0.4, {"zh": 1.0}, ["en"]) == 0.0
    assert vector_weight_for(0.4, {"en": 1.0}, ["en"]) == 0.4
    assert vector_weight_for(0.4, {"en": 0.5, "zh": 0.5}, ["en"]) == 0.2
    assert vector_weight_for(0.4, {"zh": 1.0}, None) == 0.4  # a model that declares nothing: every language
    assert vector_weight_for(0.4, {}, ["en"]) == 0.4  # no letters (a number): nothing to judge by


def test_a_list_of_weight_zero_has_no_say() -> None:
    bm25 = [("a", 9.0), ("b", 5.0), ("c", 5.0), ("d", 1.0)]
    vector = [("c", 0.9), ("x", 0.8), ("a", 0.1)]
    fused = fuse(bm25, vector, method="minmax", vector_weight=0.0)
    # BM25's ranking exactly: no vector-only candidate, and the vector list does not break the b/c tie.
    assert [f.id for f in fused] == ["a", "b", "c", "d"]
    assert [(f.bm25_rank, f.vector_rank) for f in fused] == [(1, 3), (2, None), (3, 1), (4, None)]
    assert [f.id for f in fuse(bm25, vector, vector_weight=1.0)] == ["c", "x", "a"]
