"""Structured import over HTTP: CSV and JSON Lines files imported one document per row (`split=rows`), with
id, metadata and text columns, per-row rejections, re-imports, refusals, tenant isolation; SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from nexent.providers import pool
from tests.conftest import make_settings, serve_in_process
from tests.knowledge.test_knowledge_api import create_kb, new_owner, search, settled
from tests.support.model_server import RunningModelServer
from tests.test_http import assert_problem

FAQ = (
    "\ufeffid;question;answer;Category;Lang\r\n"
    "q1;How do I descale the machine?;Run the descaling programme every two months.;care;en\r\n"
    "q2;Which beans for espresso?;A medium-dark roast, ground fine.;beans;en\r\n"
    "q3;Only three values;care\r\n"  # line 4: wrong column count
    "q4;Wie reinige ich die Dampflanze?;Nach jedem Gebrauch mit einem feuchten Tuch abwischen.;care;de\r\n"
    "q2;Duplicate?;The id of line 3 again.;beans;en\r\n"  # line 6: duplicate id
    ";No id;Rows need an id.;care;en\r\n"  # line 7: missing id
)


@pytest.fixture(autouse=True)
def _fresh(embedder: RunningModelServer) -> None:
    embedder.server.reset()
    pool._unhealthy_until.clear()


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        tmp_path, builtin_models=False, knowledge_max_file_bytes=500_000, knowledge_max_rows_per_file=1000
    )
    async with serve_in_process(settings) as http:
        yield http


async def import_rows(
    client: httpx.AsyncClient,
    owner: dict[str, Any],
    kb_id: str,
    files: list[tuple[str, bytes, str]],
    **form: str | list[str],
) -> httpx.Response:
    return await client.post(
        f"/api/knowledge-bases/{kb_id}/documents",
        files=[("file", (name, data, content_type)) for name, data, content_type in files],
        data={"split": "rows", **form},
        headers=owner["headers"],
    )


def problem_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    return cast(dict[str, Any], assert_problem(response, status, code))


def rejections(body: dict[str, Any]) -> list[tuple[str, int, str | None, str]]:
    return [(r["file_name"], r["line"], r["id"], r["error"]["code"]) for r in body["rejected_rows"]]


async def test_csv_rows_become_documents_with_their_metadata_and_bad_rows_are_reported(
    client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    kb = await create_kb(client, owner)
    response = await import_rows(
        client,
        owner,
        kb["id"],
        [("faq.csv", FAQ.encode(), "text/csv")],
        id_column="id",
        metadata_columns=["Category", "Lang"],
        metadata=json.dumps({"team": "barista"}),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert [(d["document"]["file_name"], d["duplicate"], d["replaced"]) for d in body["documents"]] == [
        ("faq.csv#q1", False, False),
        ("faq.csv#q2", False, False),
        ("faq.csv#q4", False, False),
    ]
    assert body["rejected"] == []
    assert rejections(body) == [
        ("faq.csv", 4, None, "wrong_column_count"),
        ("faq.csv", 6, "q2", "duplicate_id"),
        ("faq.csv", 7, None, "missing_id"),
    ]
    assert all(r["error"]["message"] for r in body["rejected_rows"])
    first = body["documents"][0]["document"]
    assert first["row"] == {"source": "faq.csv", "id": "q1", "line": 2} and first["format"] == "csv"
    assert first["metadata"] == {"team": "barista", "category": "care", "lang": "en"}

    docs = await settled(client, owner, kb["id"])
    assert {name: d["status"] for name, d in docs.items()} == dict.fromkeys(
        ["faq.csv#q1", "faq.csv#q2", "faq.csv#q4"], "indexed"
    )
    chunks = await client.get(
        f"/api/knowledge-bases/{kb['id']}/documents/{docs['faq.csv#q1']['id']}/chunks", headers=owner["headers"]
    )
    assert [c["text"] for c in chunks.json()["items"]] == [
        "question: How do I descale the machine?\nanswer: Run the descaling programme every two months."
    ]
    hit = (await search(client, owner, kb["id"], "descaling programme", mode="bm25", top_k=1))["hits"][0]
    assert hit["file_name"] == "faq.csv#q1"
    assert hit["metadata"] == {"team": "barista", "category": "care", "lang": "en"}
    # Metadata columns are search filters.
    german = await search(client, owner, kb["id"], "Dampflanze reinigen descale", metadata={"lang": "de"})
    assert [h["file_name"] for h in german["hits"]] == ["faq.csv#q4"]
    care = await search(client, owner, kb["id"], "machine beans espresso", metadata={"category": "care"}, top_k=10)
    assert {h["file_name"] for h in care["hits"]} == {"faq.csv#q1", "faq.csv#q4"}
    # The stored "file" of a row is its text, as indexed.
    download = await client.get(
        f"/api/knowledge-bases/{kb['id']}/documents/{docs['faq.csv#q2']['id']}/file", headers=owner["headers"]
    )
    assert download.status_code == 200 and download.text.startswith("question: Which beans")


async def test_jsonl_rows_with_text_columns_and_typed_metadata(
    client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    kb = await create_kb(client, owner)
    lines = [
        {"sku": 101, "name": "Grinder", "description": "Conical burrs, forty settings.", "year": 2024, "stock": True},
        "{broken",
        {"sku": 102, "name": "Kettle", "description": "", "year": 2023, "stock": False},
        {"sku": 103, "name": "Scale", "description": "Weighs to a tenth of a gram.", "year": 2023, "stock": False},
        [1, 2, 3],
    ]
    data = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines).encode()
    response = await import_rows(
        client,
        owner,
        kb["id"],
        [("catalogue.jsonl", data, "application/x-ndjson")],
        id_column="sku",
        metadata_columns=["year", "stock"],
        text_columns=["description"],
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert [d["document"]["file_name"] for d in body["documents"]] == ["catalogue.jsonl#101", "catalogue.jsonl#103"]
    assert rejections(body) == [
        ("catalogue.jsonl", 2, None, "invalid_json"),
        ("catalogue.jsonl", 3, "102", "empty_text"),
        ("catalogue.jsonl", 5, None, "not_an_object"),
    ]
    await settled(client, owner, kb["id"])
    hits = (await search(client, owner, kb["id"], "tenth of a gram", mode="bm25"))["hits"]
    assert hits[0]["text"] == "Weighs to a tenth of a gram."  # one text column: its value alone
    assert hits[0]["metadata"] == {"year": 2023, "stock": False}
    in_stock = await search(client, owner, kb["id"], "burrs gram", metadata={"stock": True})
    assert [h["file_name"] for h in in_stock["hits"]] == ["catalogue.jsonl#101"]
    of_2023 = await search(client, owner, kb["id"], "burrs gram", metadata={"year": 2023})
    assert [h["file_name"] for h in of_2023["hits"]] == ["catalogue.jsonl#103"]


async def test_a_re_import_replaces_changed_rows_and_keeps_the_others(
    client: httpx.AsyncClient, owner: dict[str, Any], embedder: RunningModelServer
) -> None:
    kb = await create_kb(client, owner)
    first = "id,question,answer\n1,Milk for latte?,Whole milk foams best.\n2,Water hardness?,Use soft water.\n"
    await import_rows(client, owner, kb["id"], [("faq.csv", first.encode(), "text/csv")], id_column="id")
    before = await settled(client, owner, kb["id"])
    second = (
        "id,question,answer\n"
        "2,Water hardness?,Use soft water.\n"  # unchanged
        "1,Milk for latte?,Oat milk foams well too.\n"  # changed
        "3,Cup temperature?,Warm the cups first.\n"  # new
    )
    response = await import_rows(client, owner, kb["id"], [("faq.csv", second.encode(), "text/csv")], id_column="id")
    assert response.status_code == 201, response.text
    answer = {d["document"]["file_name"]: d for d in response.json()["documents"]}
    assert {name: (d["duplicate"], d["replaced"]) for name, d in answer.items()} == {
        "faq.csv#2": (True, False),
        "faq.csv#1": (False, True),
        "faq.csv#3": (False, False),
    }
    assert answer["faq.csv#1"]["document"]["id"] == before["faq.csv#1"]["id"]  # the same document, updated
    after = await settled(client, owner, kb["id"])
    assert len(after) == 3 and {d["status"] for d in after.values()} == {"indexed"}
    assert after["faq.csv#1"]["row"]["line"] == 3
    assert (await search(client, owner, kb["id"], "whole", mode="bm25"))["hits"] == []  # the old text is gone
    oat = (await search(client, owner, kb["id"], "oat milk", mode="bm25"))["hits"]
    assert [h["file_name"] for h in oat] == ["faq.csv#1"] and "Oat milk" in oat[0]["text"]
    # A row re-indexed is cut from its stored text again.
    reindexed = await client.post(
        f"/api/knowledge-bases/{kb['id']}/documents/{after['faq.csv#3']['id']}/reindex", headers=owner["headers"]
    )
    assert reindexed.status_code == 202
    again = (await settled(client, owner, kb["id"]))["faq.csv#3"]
    assert again["status"] == "indexed" and again["chunk_count"] == 1
    # The same ids in a file of another name are other rows.
    other = await import_rows(client, owner, kb["id"], [("faq-2.csv", first.encode(), "text/csv")], id_column="id")
    assert [d["duplicate"] for d in other.json()["documents"]] == [False, False]
    deleted = await client.delete(f"/api/knowledge-bases/{kb['id']}", headers=owner["headers"])
    assert deleted.status_code == 204


async def test_many_rows_are_processed_in_a_few_jobs(
    client: httpx.AsyncClient, owner: dict[str, Any], embedder: RunningModelServer
) -> None:
    kb = await create_kb(client, owner)
    data = "id,text,group\n" + "".join(f"r{n},Row number {n} about topic {n % 7},g{n % 3}\n" for n in range(600))
    before = len(embedder.server.embedding_requests)
    response = await import_rows(
        client, owner, kb["id"], [("rows.csv", data.encode(), "text/csv")], id_column="id", metadata_columns=["group"]
    )
    assert response.status_code == 201 and len(response.json()["documents"]) == 600
    docs = await settled(client, owner, kb["id"])
    assert len(docs) == 50  # one page of the listing
    listing = await client.get(f"/api/knowledge-bases/{kb['id']}", headers=owner["headers"])
    assert listing.json()["document_counts"]["indexed"] == 600
    calls = [r.body["input"] for r in embedder.server.embedding_requests[before:]]
    # Three jobs of 200 rows each (not 600 jobs), whose texts go to the model 64 at a time.
    assert sorted(len(texts) for texts in calls) == [8] * 3 + [64] * 9


async def test_refusals_name_the_problem(client: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    kb = await create_kb(client, owner)
    csv = b"id,question,answer\n1,Q,A\n"
    pdf = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<<>>\n%%EOF"
    not_rows = await import_rows(client, owner, kb["id"], [("manual.pdf", pdf, "application/pdf")])
    problem = problem_of(not_rows, 422, "no_acceptable_files")
    assert [r["error"]["code"] for r in problem["rejected"]] == ["rows_not_supported"]
    plain = await import_rows(client, owner, kb["id"], [("notes.txt", b"Just text.", "text/plain")])
    problem_of(plain, 422, "no_acceptable_files")
    unknown = await import_rows(client, owner, kb["id"], [("faq.csv", csv, "text/csv")], id_column="key")
    problem = problem_of(unknown, 422, "no_acceptable_files")
    (refused,) = problem["rejected"]
    assert refused["error"]["code"] == "unknown_column" and "'key'" in refused["error"]["message"]
    all_bad = b"id,question,answer\n1,only two\n,no id,x\n"
    bad = await import_rows(client, owner, kb["id"], [("bad.csv", all_bad, "text/csv")], id_column="id")
    problem = problem_of(bad, 422, "no_acceptable_files")
    assert [r["error"]["code"] for r in problem["rejected"]] == ["no_valid_rows"]
    assert [(r["line"], r["error"]["code"]) for r in problem["rejected_rows"]] == [
        (2, "wrong_column_count"),
        (3, "missing_id"),
    ]
    chinese = await import_rows(client, owner, kb["id"], [("faq.csv", csv, "text/csv")], metadata_columns=["类别"])
    assert "类别" in problem_of(chinese, 422, "invalid_metadata_column")["detail"]
    reserved = await import_rows(client, owner, kb["id"], [("faq.csv", csv, "text/csv")], metadata_columns=["Page"])
    problem_of(reserved, 422, "invalid_metadata_column")
    without_rows = await client.post(
        f"/api/knowledge-bases/{kb['id']}/documents",
        files=[("file", ("faq.csv", csv, "text/csv"))],
        data={"id_column": "id"},
        headers=owner["headers"],
    )
    problem_of(without_rows, 422, "invalid_row_options")
    many = "id,q\n" + "".join(f"{n},x\n" for n in range(1001))
    too_many = await import_rows(client, owner, kb["id"], [("many.csv", many.encode(), "text/csv")], id_column="id")
    problem = problem_of(too_many, 422, "no_acceptable_files")
    assert [r["error"]["code"] for r in problem["rejected"]] == ["too_many_rows"]
    latin = "id,q\n1,café\n".encode("latin-1")
    encoding = await import_rows(client, owner, kb["id"], [("latin.csv", latin, "text/csv")])
    assert [r["error"]["code"] for r in encoding.json()["rejected"]] == ["invalid_encoding"]
    # A good file beside a refused one: the good one is imported, the other listed.
    mixed = await import_rows(
        client, owner, kb["id"], [("faq.csv", csv, "text/csv"), ("manual.pdf", pdf, "application/pdf")]
    )
    assert mixed.status_code == 201, mixed.text
    assert [d["document"]["file_name"] for d in mixed.json()["documents"]] == ["faq.csv#2"]
    assert [r["file_name"] for r in mixed.json()["rejected"]] == ["manual.pdf"]
    listing = await client.get(f"/api/knowledge-bases/{kb['id']}/documents", headers=owner["headers"])
    assert [d["file_name"] for d in listing.json()["items"]] == ["faq.csv#2"]
    header_only = await import_rows(client, owner, kb["id"], [("h.csv", b"id,q\n", "text/csv")])
    assert [r["error"]["code"] for r in header_only.json()["rejected"]] == ["empty"]
    # Two files of one name in one upload would import the same rows: the second is refused.
    twice = await import_rows(client, owner, kb["id"], [("t.csv", csv, "text/csv"), ("t.csv", csv, "text/csv")])
    assert twice.status_code == 201, twice.text
    assert [r["error"]["code"] for r in twice.json()["rejected"]] == ["duplicate_file_name"]


async def test_rows_of_one_tenant_are_invisible_to_another(
    client: httpx.AsyncClient, owner: dict[str, Any], embedder: RunningModelServer
) -> None:
    other = await new_owner(client, embedder)
    mine, theirs = await create_kb(client, owner), await create_kb(client, other)
    data = FAQ.encode()
    for who, kb in ((owner, mine), (other, theirs)):
        response = await import_rows(
            client, who, kb["id"], [("faq.csv", data, "text/csv")], id_column="id", metadata_columns=["Lang"]
        )
        assert response.status_code == 201 and not any(d["duplicate"] for d in response.json()["documents"])
        await settled(client, who, kb["id"])
    ids = {d["document"]["id"] for d in response.json()["documents"]}
    hits = (await search(client, owner, mine["id"], "descaling", metadata={"lang": "en"}))["hits"]
    assert hits and not ids & {h["document_id"] for h in hits}
    foreign = await client.get(f"/api/knowledge-bases/{theirs['id']}/documents", headers=owner["headers"])
    problem_of(foreign, 404, "knowledge_base_not_found")
    upload_foreign = await import_rows(client, owner, theirs["id"], [("faq.csv", data, "text/csv")], id_column="id")
    problem_of(upload_foreign, 404, "knowledge_base_not_found")


async def test_structured_import_on_postgresql(tmp_path: Path, pg_url: str, embedder: RunningModelServer) -> None:
    settings = make_settings(tmp_path, builtin_models=False, database_url=pg_url)
    async with serve_in_process(settings) as client:
        owner = await new_owner(client, embedder)
        kb = await create_kb(client, owner)
        response = await import_rows(
            client, owner, kb["id"], [("faq.csv", FAQ.encode(), "text/csv")], id_column="id", metadata_columns=["Lang"]
        )
        assert response.status_code == 201, response.text
        assert len(response.json()["documents"]) == 3 and len(response.json()["rejected_rows"]) == 3
        again = await import_rows(
            client, owner, kb["id"], [("faq.csv", FAQ.encode(), "text/csv")], id_column="id", metadata_columns=["Lang"]
        )
        assert [d["duplicate"] for d in again.json()["documents"]] == [True, True, True]
        docs = await settled(client, owner, kb["id"])
        assert {d["status"] for d in docs.values()} == {"indexed"} and len(docs) == 3
        hit = (await search(client, owner, kb["id"], "Dampflanze", mode="bm25"))["hits"][0]
        assert hit["file_name"] == "faq.csv#q4" and hit["metadata"] == {"lang": "de"}
