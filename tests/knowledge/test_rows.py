"""Structured import's reading of CSV and JSON Lines files into rows (no server): dialects, encodings, line
numbers, per-row errors and the refusals of whole files."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nexent.knowledge.rows import (
    InvalidRowOptions,
    RowFileRefused,
    RowLimits,
    RowOptions,
    metadata_key,
    row_format,
    split_rows,
)
from nexent.knowledge.schemas import SearchHitRead, SearchResult, SearchTimings
from nexent.knowledge.tool import format_passages

FAQ = RowOptions.build("id", ["Category"], [])


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_csv_delimiters_and_the_utf8_bom(delimiter: str, bom: bytes) -> None:
    rows = [["id", "question", "answer", "Category"], ["q1", "Opening hours?", "9 to 5, daily", "visits"]]
    quoted = [[f'"{v}"' if delimiter in v else v for v in row] for row in rows]
    data = bom + "\r\n".join(delimiter.join(row) for row in quoted).encode()
    split = split_rows(data, "csv", "faq.csv", FAQ, RowLimits())
    assert split.columns == ["id", "question", "answer", "Category"] and not split.errors
    (row,) = split.rows
    assert (row.line, row.id, row.metadata) == (2, "q1", {"category": "visits"})
    assert row.text == "question: Opening hours?\nanswer: 9 to 5, daily"


def test_csv_bad_rows_are_reported_with_their_line_and_the_good_ones_kept() -> None:
    data = (
        b"id,question,answer,Category\n"
        b"q1,Where?,Here,visits\n"
        b"q2,Only two values\n"  # line 3
        b"\n"
        b'q3,"A question\nover two lines",Yes,\n'  # lines 5-6
        b"q1,Again?,No,visits\n"  # line 7: the id of line 2
        b",No id,None,x\n"  # line 8
        b"q4,,,visits\n"  # line 9: no text
    )
    split = split_rows(data, "csv", "faq.csv", FAQ, RowLimits())
    assert [(r.line, r.id) for r in split.rows] == [(2, "q1"), (5, "q3")]
    assert split.rows[1].text == "question: A question\nover two lines\nanswer: Yes" and split.rows[1].metadata == {}
    assert [(e.line, e.id, e.code) for e in split.errors] == [
        (3, None, "wrong_column_count"),
        (7, "q1", "duplicate_id"),
        (8, None, "missing_id"),
        (9, "q4", "empty_text"),
    ]
    assert "line 2" in split.errors[1].message


def test_jsonl_rows_keep_json_types_in_metadata() -> None:
    data = (
        b'{"id": 7, "title": "Pump", "body": {"watts": 300}, "year": 2024, "public": true}\n'
        b"{not json\n"
        b"[1, 2]\n"
        b'{"id": 8, "title": "Valve", "year": [2024]}\n'
        b'{"id": 9, "title": "Hose", "year": NaN}\n'
        b'{"title": "No id"}\n'
    )
    options = RowOptions.build("id", ["year", "public"], [])
    split = split_rows(data, "jsonl", "parts.jsonl", options, RowLimits())
    (row,) = split.rows
    assert row.id == "7" and row.metadata == {"year": 2024, "public": True}
    assert row.text == 'title: Pump\nbody: {"watts": 300}'
    assert [(e.line, e.code) for e in split.errors] == [
        (2, "invalid_json"),
        (3, "not_an_object"),
        (4, "invalid_metadata"),
        (5, "invalid_json"),
        (6, "missing_id"),
    ]


def test_one_text_column_is_the_text_itself_and_the_line_is_the_default_id() -> None:
    data = b"question,answer\nWhy?,Because.\nHow?,Like so.\n"
    split = split_rows(data, "csv", "faq.csv", RowOptions.build(None, [], ["answer"]), RowLimits())
    assert [(r.id, r.text) for r in split.rows] == [("2", "Because."), ("3", "Like so.")]


def test_whole_files_are_refused_with_a_reason() -> None:
    def refusal(data: bytes, fmt: str = "csv", options: RowOptions = FAQ, limits: RowLimits = RowLimits()) -> str:
        with pytest.raises(RowFileRefused) as caught:
            split_rows(data, fmt, "f." + fmt, options, limits)
        return caught.value.code

    assert refusal(b"id,question\nq1,x\n") == "unknown_column"  # no Category column
    assert refusal("id,question,Category\nq1,caf\xe9,x\n".encode("latin-1")) == "invalid_encoding"
    assert refusal(b"id,,Category\nq1,x,y\n") == "invalid_header"
    assert refusal(b"id,id,Category\nq1,x,y\n") == "invalid_header"
    many = b"id,q,Category\n" + b"".join(b"%d,x,y\n" % n for n in range(11))
    assert refusal(many, limits=RowLimits(max_rows=10)) == "too_many_rows"
    assert split_rows(many, "csv", "f.csv", FAQ, RowLimits(max_rows=11)).rows
    long_row = b"id,q,Category\nq1," + b"x" * 300 + b",y\n"
    assert split_rows(long_row, "csv", "f.csv", FAQ, RowLimits(max_row_chars=200)).errors[0].code == "row_too_long"
    assert refusal(b"\n \n", fmt="jsonl", options=RowOptions()) == "empty"


def test_options_and_formats() -> None:
    assert metadata_key("Product Line") == "product_line" and metadata_key("类别") is None
    with pytest.raises(InvalidRowOptions, match="类别"):
        RowOptions.build("id", ["类别"], [])
    with pytest.raises(InvalidRowOptions, match="reserved"):
        RowOptions.build("id", ["Page"], [])
    with pytest.raises(InvalidRowOptions, match="both"):
        RowOptions.build("id", ["a b", "A-B"], [])
    with pytest.raises(InvalidRowOptions, match="not text"):
        RowOptions.build("id", ["lang"], ["lang"])
    assert row_format("faq.CSV", "txt") == "csv" and row_format("x.ndjson", "json") == "jsonl"
    assert row_format("export", "jsonl") == "jsonl" and row_format("notes.txt", "txt") is None
    assert row_format("report.csv", "pdf") is None


def test_agents_see_a_rows_metadata_beside_its_passage() -> None:
    hit = SearchHitRead(
        chunk_id=uuid.uuid4(),
        document_id=uuid.uuid4(),
        knowledge_base_id=uuid.uuid4(),
        file_name="faq.csv#q4",
        page=None,
        heading_path=[],
        source=None,
        text="question: How hot should the milk be?\nanswer: About sixty degrees.",
        score=1.0,
        bm25_rank=1,
        vector_rank=None,
        metadata={"category": "milk", "year": 2024},
    )
    timings = SearchTimings(embedding_ms=0, search_ms=0, rerank_ms=0)
    text, citations = format_passages(SearchResult(hits=[hit], mode="bm25", weights=[], timings=timings))
    assert "[1] faq.csv#q4 (category: milk, year: 2024)\nquestion: How hot" in text
    assert citations[0].title == "faq.csv#q4"


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    data=st.one_of(
        st.binary(max_size=400),
        st.text(alphabet=st.sampled_from('id,;\t"\n\r\x00{}[]:qé类 1'), max_size=300).map(str.encode),
    ),
    fmt=st.sampled_from(["csv", "jsonl"]),
)
def test_any_bytes_give_rows_errors_or_a_refusal(data: bytes, fmt: str) -> None:
    options = RowOptions.build(None, [], [])
    try:
        split = split_rows(data, fmt, "f." + fmt, options, RowLimits(max_rows=50))
    except RowFileRefused:
        return  # a refusal with its code: fine; any other exception fails
    lines = data.count(b"\n") + data.count(b"\r") + 1
    assert all(1 <= row.line <= lines for row in split.rows)
    assert all(1 <= error.line <= lines for error in split.errors)
    assert all(row.text for row in split.rows)
