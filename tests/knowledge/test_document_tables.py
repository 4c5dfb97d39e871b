"""A document's tables over HTTP (`GET .../documents/{doc_id}/tables`): a PDF table without ruling lines comes back
with its caption, header and rows; a long table cut into many chunks comes back whole; who may read it; and the
rebuilding of tables from chunk texts on its own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nexent.knowledge.models import KnowledgeChunk
from nexent.knowledge.tables import document_tables, markdown_table, split_row
from nexent.providers import pool
from tests.conftest import make_settings, serve_in_process
from tests.knowledge.test_knowledge_api import create_kb, new_owner, settled, upload
from tests.knowledge.test_parsing import PROSE, pdf_bytes, pdf_text
from tests.support.identity import bearer, invite_and_register
from tests.support.model_server import RunningModelServer
from tests.test_http import assert_problem

CAPTION = "Table 1. Harbour traffic"
HEADER = ["Port", "Ships", "Tonnes", "Berths"]
PORTS = ["Rotterdam", "Hamburg", "Antwerp", "Valencia", "Piraeus", "Algeciras", "Genoa", "Gdansk", "Le Havre", "Bremen"]
COLUMNS = [72, 200, 300, 400]  # left edges of the columns, in points: aligned by whitespace, no ruling lines


def harbour_row(number: int) -> list[str]:
    return [
        f"{PORTS[(number - 1) % len(PORTS)]} {number}",
        str(113 + 7 * number),
        f"{(number + 2) * 1130:,}",
        str(3 + number % 5),
    ]


def harbour_pdf(rows: int = 8) -> bytes:
    """A PDF whose table has no ruling lines: the caption, a header row and `rows` rows of whitespace-aligned
    columns, then prose. A table longer than a page goes on over the next pages, its header repeated on each."""
    pages: list[str] = []
    ops = [pdf_text(72, 740, 10, CAPTION)]
    y = 718

    def header() -> None:
        nonlocal y
        ops.extend(pdf_text(x, y, 10, cell) for x, cell in zip(COLUMNS, HEADER, strict=True))
        y -= 16

    header()
    for number in range(1, rows + 1):
        if y < 100:
            pages.append("".join(ops))
            ops.clear()
            y = 740
            header()
        ops.extend(pdf_text(x, y, 10, cell) for x, cell in zip(COLUMNS, harbour_row(number), strict=True))
        y -= 16
    ops.append(pdf_text(72, y - 20, 10, PROSE[:88]))
    ops.append(pdf_text(72, y - 34, 10, PROSE[88:]))
    pages.append("".join(ops))
    return pdf_bytes(pages)


def prose_pdf() -> bytes:
    lines = [PROSE[:88], PROSE[88:], "The grain ships came later in the spring, once the ice on the river had gone."]
    return pdf_bytes(["".join(pdf_text(72, 740 - 14 * i, 10, line) for i, line in enumerate(lines))])


@pytest.fixture(autouse=True)
def _fresh(embedder: RunningModelServer) -> None:
    embedder.server.reset()
    embedder.server.embedding_dim = 64
    pool._unhealthy_until.clear()


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(tmp_path, builtin_models=False, knowledge_max_file_bytes=500_000)
    async with serve_in_process(settings) as http:
        yield http


async def tables_of(client: httpx.AsyncClient, headers: dict[str, str], kb_id: str, doc_id: str) -> httpx.Response:
    return await client.get(f"/api/knowledge-bases/{kb_id}/documents/{doc_id}/tables", headers=headers)


async def test_a_pdf_table_without_ruling_lines_comes_back_with_its_caption(
    client: httpx.AsyncClient, owner: dict[str, Any], embedder: RunningModelServer
) -> None:
    kb = await create_kb(client, owner)
    files = [("harbour.pdf", harbour_pdf(8), "application/pdf"), ("prose.pdf", prose_pdf(), "application/pdf")]
    assert (await upload(client, owner, kb["id"], files)).status_code == 201
    docs = await settled(client, owner, kb["id"])
    assert {name: doc["status"] for name, doc in docs.items()} == {"harbour.pdf": "indexed", "prose.pdf": "indexed"}
    harbour = docs["harbour.pdf"]

    response = await tables_of(client, owner["headers"], kb["id"], harbour["id"])
    assert response.status_code == 200, response.text
    [table] = response.json()
    assert table["index"] == 0 and table["caption"] == CAPTION
    assert (table["page"], table["page_end"], table["heading_path"], table["source"]) == (1, 1, [], None)
    assert table["header"] == HEADER
    assert table["rows"] == [harbour_row(n) for n in range(1, 9)]
    # The chunk that holds it says so too: its caption, and the caption line after the (empty) context.
    chunks = (
        await client.get(f"/api/knowledge-bases/{kb['id']}/documents/{harbour['id']}/chunks", headers=owner["headers"])
    ).json()
    held = [c for c in chunks["items"] if c["id"] in table["chunk_ids"]]
    assert [c["kind"] for c in held] == ["table"] and held[0]["caption"] == CAPTION
    assert held[0]["text"].startswith(f"{CAPTION}\n\n| Port | Ships |")
    assert all(c["caption"] is None for c in chunks["items"] if c["kind"] != "table")

    # Prose alone has no table.
    prose = await tables_of(client, owner["headers"], kb["id"], docs["prose.pdf"]["id"])
    assert prose.status_code == 200 and prose.json() == []

    # Unknown ids, a document of another knowledge base, another tenant: 404.
    assert_problem(await tables_of(client, owner["headers"], kb["id"], str(uuid.uuid4())), 404, "document_not_found")
    other = await create_kb(client, owner)
    assert_problem(await tables_of(client, owner["headers"], other["id"], harbour["id"]), 404, "document_not_found")
    stranger = await new_owner(client, embedder)
    foreign = await tables_of(client, stranger["headers"], kb["id"], harbour["id"])
    assert_problem(foreign, 404, "knowledge_base_not_found")

    # A member reads them once the knowledge base is shared with a group of theirs (read is enough).
    member = await invite_and_register(
        client, owner["access_token"], f"m-{uuid.uuid4().hex[:6]}@example.com", role="user"
    )
    member_headers = bearer(member["access_token"])
    assert_problem(await tables_of(client, member_headers, kb["id"], harbour["id"]), 404, "knowledge_base_not_found")
    group = (await client.post("/api/groups", json={"name": "Harbour"}, headers=owner["headers"])).json()
    await client.put(f"/api/groups/{group['id']}/members/{member['user']['id']}", headers=owner["headers"])
    shared = await client.put(
        f"/api/knowledge-bases/{kb['id']}/shares/{group['id']}", json={"permission": "read"}, headers=owner["headers"]
    )
    assert shared.status_code == 200, shared.text
    read = await tables_of(client, member_headers, kb["id"], harbour["id"])
    assert read.status_code == 200 and read.json() == response.json()


async def test_a_long_table_comes_back_as_one_table(client: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    # 120 rows over four pages (the header repeated on each) and small chunks: many pieces, one table.
    kb = await create_kb(client, owner, chunking={"target_chars": 300, "overlap_chars": 0})
    assert (
        await upload(client, owner, kb["id"], [("long.pdf", harbour_pdf(120), "application/pdf")])
    ).status_code == 201
    doc = (await settled(client, owner, kb["id"]))["long.pdf"]
    assert doc["status"] == "indexed" and doc["chunk_count"] > 10

    [table] = (await tables_of(client, owner["headers"], kb["id"], doc["id"])).json()
    assert table["caption"] == CAPTION and table["header"] == HEADER
    assert table["rows"] == [harbour_row(n) for n in range(1, 121)]  # the header once, no row lost or doubled
    assert (table["page"], table["page_end"]) == (1, 4)
    chunks = await client.get(
        f"/api/knowledge-bases/{kb['id']}/documents/{doc['id']}/chunks", params={"limit": 200}, headers=owner["headers"]
    )
    table_chunks = [c["id"] for c in chunks.json()["items"] if c["kind"] == "table"]
    assert table["chunk_ids"] == table_chunks and len(table_chunks) > 10


async def test_markdown_tables_keep_escaped_pipes_and_separate_tables_stay_apart(
    client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    text = (
        "# Shell\n\n## Operators\n\n| Operator | Meaning |\n| --- | --- |\n| `a \\| b` | pipe |\n| `a && b` | and |\n\n"
        "Some prose between the tables.\n\n| Operator | Meaning |\n| --- | --- |\n| `a ; b` | sequence |\n"
    )
    kb = await create_kb(client, owner)
    await upload(client, owner, kb["id"], [("shell.md", text.encode(), "text/markdown")])
    doc = (await settled(client, owner, kb["id"]))["shell.md"]
    tables = (await tables_of(client, owner["headers"], kb["id"], doc["id"])).json()
    assert [(t["index"], t["heading_path"], t["caption"]) for t in tables] == [
        (0, ["Shell", "Operators"], None),
        (1, ["Shell", "Operators"], None),
    ]
    assert tables[0]["rows"] == [["`a | b`", "pipe"], ["`a && b`", "and"]]
    assert tables[1]["header"] == ["Operator", "Meaning"] and tables[1]["rows"] == [["`a ; b`", "sequence"]]


async def test_document_tables_on_postgresql(tmp_path: Path, pg_url: str, embedder: RunningModelServer) -> None:
    settings = make_settings(tmp_path, builtin_models=False, database_url=pg_url)
    async with serve_in_process(settings) as client:
        owner = await new_owner(client, embedder)
        kb = await create_kb(client, owner, chunking={"target_chars": 300, "overlap_chars": 0})
        await upload(client, owner, kb["id"], [("long.pdf", harbour_pdf(60), "application/pdf")])
        doc = (await settled(client, owner, kb["id"]))["long.pdf"]
        [table] = (await tables_of(client, owner["headers"], kb["id"], doc["id"])).json()
        assert table["caption"] == CAPTION and table["rows"] == [harbour_row(n) for n in range(1, 61)]


# --- Rebuilding tables from chunk texts -----------------------------------------------------------------------------


def chunk(text: str, start: int, end: int, **fields: Any) -> KnowledgeChunk:
    values: dict[str, Any] = {"page": None, "page_end": None, "heading_path": [], "source": None, "caption": None}
    values.update(fields)
    return KnowledgeChunk(id=uuid.uuid4(), text=text, kind="table", start_offset=start, end_offset=end, **values)


def test_rows_are_split_at_unescaped_pipes() -> None:
    assert split_row("| a \\| b | c |") == ["a | b", "c"]
    assert split_row("|  | x |") == ["", "x"]
    assert split_row("| ends with \\| |") == ["ends with |"]


def test_context_and_caption_lines_are_not_part_of_the_table() -> None:
    text = "Report > Traffic\nTable 2. Ships | by port\n\n| Port | Ships |\n| --- | --- |\n| Genoa | 4 |\nEdited prose"
    assert markdown_table(text) == (["Port", "Ships"], [["Genoa", "4"]])
    assert markdown_table("Only prose, | with a pipe.\n\nAnd more.") is None


def test_pieces_join_only_when_they_follow_each_other_with_the_same_header() -> None:
    head = "| A | B |\n| --- | --- |\n"
    pieces = [
        chunk("Cap\n\n" + head + "| 1 | 2 |", 0, 30, page=1, page_end=1, caption="Cap"),
        chunk("Cap\n\n" + head + "| 3 | 4 |", 31, 40, page=2, page_end=2, caption="Cap"),  # next row: joined
        chunk(head + "| 5 | 6 |", 42, 50, page=3, page_end=3),  # next block (a blank line between): joined
        chunk(head + "| 7 | 8 |", 60, 70, page=3, page_end=3),  # text between: another table
        chunk("| C | D |\n| --- | --- |\n| 9 | 0 |", 71, 80, page=3, page_end=3),  # another header
        chunk("edited into prose", 81, 90),  # no table left: skipped
        chunk("| C | D |\n| --- | --- |\n| 1 | 1 |", 91, 95, source="Sheet2"),  # another sheet
    ]
    tables = document_tables(pieces)
    assert [(t.index, t.page, t.page_end, t.caption, t.header, t.rows) for t in tables] == [
        (0, 1, 3, "Cap", ["A", "B"], [["1", "2"], ["3", "4"], ["5", "6"]]),
        (1, 3, 3, None, ["A", "B"], [["7", "8"]]),
        (2, 3, 3, None, ["C", "D"], [["9", "0"]]),
        (3, None, None, None, ["C", "D"], [["1", "1"]]),
    ]
    assert tables[0].chunk_ids == [p.id for p in pieces[:3]] and tables[3].source == "Sheet2"
    assert document_tables([]) == []
