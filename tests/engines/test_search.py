# ruff: noqa: RUF001  (full-width punctuation and letters are the point of these tests)
"""Search engine conformance: the same behaviour from LanceDB (a temporary directory) and Milvus Lite (a temporary
`.db` file), both real engines."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from nexent.engines.search.base import (
    DimensionMismatch,
    IndexedChunk,
    IndexNotFound,
    InvalidSearchInput,
    Scalar,
    SearchEngine,
    SearchRequest,
)
from nexent.engines.search.lancedb import LanceDBSearch
from nexent.engines.search.milvus import MilvusSearch

DIM = 8


def make_engine(kind: str, folder: Path) -> SearchEngine:
    if kind == "milvus":
        return MilvusSearch(str(folder / "milvus.db"))
    return LanceDBSearch(folder / "lancedb")


@pytest.fixture(scope="module", params=["lancedb", "milvus"])
async def engine_and_folder(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[SearchEngine, Path]]:
    folder = tmp_path_factory.mktemp(f"search-{request.param}")
    engine = make_engine(request.param, folder)
    await engine.start()
    yield engine, folder
    await engine.close()


@pytest.fixture
def engine(engine_and_folder: tuple[SearchEngine, Path]) -> SearchEngine:
    return engine_and_folder[0]


@pytest.fixture
async def index(engine: SearchEngine) -> AsyncIterator[str]:
    name = f"kb_{uuid.uuid4().hex}"
    await engine.create_index(name, DIM)
    yield name
    await engine.drop_index(name)


def hexid() -> str:
    return uuid.uuid4().hex


def axis(i: int, tilt: float = 0.0) -> list[float]:
    """A unit-ish vector along axis `i`, tilted towards the next axis."""
    vector = [0.0] * DIM
    vector[i % DIM] = 1.0
    vector[(i + 1) % DIM] = tilt
    return vector


def chunk(text: str, vector: Sequence[float], document_id: str | None = None, **metadata: Scalar) -> IndexedChunk:
    return IndexedChunk(
        id=hexid(), document_id=document_id or hexid(), text=text, vector=list(vector), metadata=metadata
    )


async def test_create_is_idempotent_and_checks_the_dimension(engine: SearchEngine) -> None:
    name = f"kb_{hexid()}"
    assert await engine.index_dimension(name) is None
    await engine.create_index(name, DIM)
    await engine.create_index(name, DIM)
    assert await engine.index_dimension(name) == DIM
    with pytest.raises(DimensionMismatch) as caught:
        await engine.create_index(name, DIM * 2)
    assert caught.value.code == "dimension_mismatch"
    await engine.drop_index(name)
    await engine.drop_index(name)
    assert await engine.index_dimension(name) is None
    await engine.create_index(name, DIM * 2)  # a dropped index may come back with another dimension
    assert await engine.index_dimension(name) == DIM * 2
    await engine.drop_index(name)


async def test_missing_index(engine: SearchEngine) -> None:
    name = f"kb_{hexid()}"
    with pytest.raises(IndexNotFound) as caught:
        await engine.search(name, SearchRequest(text="x", vector=axis(0)))
    assert caught.value.code == "search_index_not_found"
    with pytest.raises(IndexNotFound):
        await engine.upsert(name, [chunk("x", axis(0))])
    with pytest.raises(IndexNotFound):
        await engine.count(name)
    with pytest.raises(IndexNotFound):
        await engine.delete(name, document_id=hexid())


async def test_empty_index_search(engine: SearchEngine, index: str) -> None:
    for mode in ("hybrid", "bm25", "vector"):
        assert await engine.search(index, SearchRequest(text="anything", vector=axis(0), mode=mode)) == []
    assert await engine.count(index) == 0


async def test_upsert_count_and_replace(engine: SearchEngine, index: str) -> None:
    document = hexid()
    first = chunk("The quick brown fox", axis(0), document, page=1)
    await engine.upsert(index, [first, chunk("Another text", axis(1), document), chunk("Elsewhere", axis(2))])
    assert await engine.count(index) == 3
    assert await engine.count(index, document_id=document) == 2
    replaced = IndexedChunk(id=first.id, document_id=document, text="A sleepy tortoise", vector=axis(3), metadata={})
    await engine.upsert(index, [replaced])
    assert await engine.count(index) == 3
    assert await engine.search(index, SearchRequest(text="fox", vector=None, mode="bm25")) == []
    [hit] = await engine.search(index, SearchRequest(text="tortoise", vector=None, mode="bm25"))
    assert (hit.id, hit.document_id, hit.text, dict(hit.metadata)) == (first.id, document, "A sleepy tortoise", {})
    top = await engine.search(index, SearchRequest(text="", vector=axis(3), mode="vector", top_k=1))
    assert [h.id for h in top] == [first.id]


async def test_large_upsert_goes_in_batches(engine: SearchEngine, index: str) -> None:
    document = hexid()
    chunks = [chunk(f"item number {i}", axis(i, 0.5), document) for i in range(1200)]
    await engine.upsert(index, chunks)
    assert await engine.count(index, document_id=document) == 1200


async def test_delete_by_document_and_by_ids(engine: SearchEngine, index: str) -> None:
    doc_a, doc_b = hexid(), hexid()
    a = [chunk(f"alpha {i}", axis(i), doc_a) for i in range(3)]
    b = [chunk(f"beta {i}", axis(i), doc_b) for i in range(3)]
    await engine.upsert(index, a + b)
    assert await engine.delete(index, document_id=doc_a) == 3
    assert await engine.delete(index, document_id=doc_a) == 0
    assert await engine.count(index) == 3
    assert await engine.delete(index, chunk_ids=[b[0].id, hexid(), "not an id!"]) == 1
    assert await engine.count(index, document_id=doc_b) == 2
    hits = await engine.search(index, SearchRequest(text="alpha beta", vector=axis(0), top_k=10))
    assert {hit.id for hit in hits} == {b[1].id, b[2].id}
    assert await engine.delete(index) == 0


async def test_each_mode(engine: SearchEngine, index: str) -> None:
    keyword = chunk("Photosynthesis converts light into chemical energy", axis(5))
    semantic = chunk("Plants grow towards the sun", axis(0))
    both = chunk("Photosynthesis happens in chloroplasts", axis(0, 0.3))
    await engine.upsert(index, [keyword, semantic, both, chunk("Unrelated cooking recipe", axis(3))])

    bm25 = await engine.search(index, SearchRequest(text="photosynthesis", vector=None, mode="bm25"))
    assert {hit.id for hit in bm25} == {keyword.id, both.id}
    assert [hit.bm25_rank for hit in bm25] == [1, 2] and all(hit.vector_rank is None for hit in bm25)
    assert all(hit.score > 0 for hit in bm25)

    vector = await engine.search(index, SearchRequest(text="", vector=axis(0), mode="vector", top_k=2))
    assert [hit.id for hit in vector] == [semantic.id, both.id]
    assert math.isclose(vector[0].score, 1.0, abs_tol=1e-4)
    assert [hit.vector_rank for hit in vector] == [1, 2] and all(hit.bm25_rank is None for hit in vector)

    hybrid = await engine.search(index, SearchRequest(text="photosynthesis", vector=axis(0), mode="hybrid"))
    assert hybrid[0].id == both.id  # second in one list, first-ish in the other: the fusion puts it on top
    assert hybrid[0].bm25_rank is not None and hybrid[0].vector_rank is not None
    assert all(0.0 <= hit.score <= 1.0 for hit in hybrid)
    assert [hit.score for hit in hybrid] == sorted((hit.score for hit in hybrid), reverse=True)
    assert len(await engine.search(index, SearchRequest(text="photosynthesis", vector=axis(0), top_k=1))) == 1


async def test_filters_by_document_and_metadata(engine: SearchEngine, index: str) -> None:
    doc_a, doc_b = hexid(), hexid()
    en3 = chunk("solar panels on the roof", axis(0), doc_a, lang="en", page=3, draft=False)
    en4 = chunk("solar power storage", axis(0), doc_a, lang="en", page=4, draft=True)
    text3 = chunk("solar eclipse", axis(0), doc_b, lang="en", page="3")
    fr = chunk("solar panneaux", axis(0), doc_b, lang="fr", page=3.0)
    await engine.upsert(index, [en3, en4, text3, fr])

    async def ids(**filters: object) -> set[str]:
        request = SearchRequest(text="solar", vector=axis(0), top_k=10, **filters)  # type: ignore[arg-type]
        return {hit.id for hit in await engine.search(index, request)}

    assert await ids(document_ids=[doc_a]) == {en3.id, en4.id}
    assert await ids(document_ids=[doc_a, doc_b]) == {en3.id, en4.id, text3.id, fr.id}
    assert await ids(document_ids=[hexid()]) == set()
    assert await ids(document_ids=[]) == set()
    assert await ids(metadata={"page": 3}) == {en3.id, fr.id}  # 3 == 3.0, but not "3"
    assert await ids(metadata={"page": "3"}) == {text3.id}
    assert await ids(metadata={"lang": "en", "page": 3}) == {en3.id}
    assert await ids(metadata={"draft": True}) == {en4.id}
    assert await ids(metadata={"draft": False}) == {en3.id}
    assert await ids(metadata={"lang": "de"}) == set()
    assert await ids(metadata={"lang": "fr"}, document_ids=[doc_a]) == set()
    for mode in ("bm25", "vector"):
        request = SearchRequest(text="solar", vector=axis(0), mode=mode, metadata={"lang": "fr"})
        assert [hit.id for hit in await engine.search(index, request)] == [fr.id]
    [hit] = await engine.search(index, SearchRequest(text="eclipse", vector=None, mode="bm25"))
    assert dict(hit.metadata) == {"lang": "en", "page": "3"}


async def test_english_stemming(engine: SearchEngine, index: str) -> None:
    runs = chunk("The athlete runs every morning.", axis(0))
    studies = chunk("Several studies of the disease were published.", axis(1))
    await engine.upsert(index, [runs, studies, chunk("Nothing to see here.", axis(2))])
    assert [h.id for h in await engine.search(index, SearchRequest("running", None, mode="bm25"))] == [runs.id]
    assert [h.id for h in await engine.search(index, SearchRequest("studying", None, mode="bm25"))] == [studies.id]
    # Stop words alone find nothing.
    assert await engine.search(index, SearchRequest("the of", None, mode="bm25")) == []


async def test_chinese_segmentation(engine: SearchEngine, index: str) -> None:
    paragraphs = [
        "长城是中国古代的军事防御工程，修筑的历史可上溯到西周时期。",
        "熊猫是中国的国宝，主要生活在四川的山区，以竹子为食。",
        "上海是中国的经济中心，黄浦江穿城而过。",
    ]
    chunks = [chunk(text, axis(i)) for i, text in enumerate(paragraphs)]
    await engine.upsert(index, chunks)
    hits = await engine.search(index, SearchRequest("熊猫吃什么食物？", None, mode="bm25"))
    assert hits[0].id == chunks[1].id
    hits = await engine.search(index, SearchRequest("长城修筑于什么时期", None, mode="bm25"))
    assert hits[0].id == chunks[0].id


async def test_an_index_keeps_the_analysis_it_was_built_with(engine: SearchEngine, index: str) -> None:
    # Indexed with version 1 (longest words only): a version-1 query finds the part of a long word only as
    # that long word, as it always did; version 2 documents are found by the words inside.
    old = replace(chunk("中华人民共和国成立于1949年", axis(0)), analysis=1)
    new = chunk("中华人民共和国的国歌是义勇军进行曲", axis(1))
    await engine.upsert(index, [old, new])

    async def found(text: str, analysis: int) -> set[str]:
        return {hit.id for hit in await engine.search(index, SearchRequest(text, None, mode="bm25", analysis=analysis))}

    assert await found("人民", analysis=1) == {new.id}  # the version-1 chunk holds only the long word
    assert await found("人民", analysis=2) == {new.id}
    assert await found("中华人民共和国", analysis=1) == {old.id, new.id}


async def test_a_request_sets_the_vector_weight(engine: SearchEngine, index: str) -> None:
    keyword = chunk("kiwi kiwi kiwi orchard", axis(3))
    semantic = chunk("a green fruit", axis(0))
    await engine.upsert(index, [keyword, semantic, chunk("kiwi", axis(4))])

    async def first(weight: float | None) -> str:
        request = SearchRequest("kiwi", axis(0), mode="hybrid", vector_weight=weight)
        return (await engine.search(index, request))[0].id

    assert await first(0.0) == keyword.id  # BM25 alone decides
    assert await first(1.0) == semantic.id  # the vector alone decides
    with pytest.raises(InvalidSearchInput):
        await engine.search(index, SearchRequest("kiwi", axis(0), vector_weight=1.5))
    with pytest.raises(InvalidSearchInput):
        await engine.search(index, SearchRequest("kiwi", None, mode="bm25", analysis=7))


async def test_unicode_text_and_metadata(engine: SearchEngine, index: str) -> None:
    cafe = chunk("Le café de la Gare 🚉 — naïve résumé", axis(0), note='ünïcödé «quoted» "x" \\ 中文')
    await engine.upsert(index, [cafe, chunk("ordinary words", axis(1))])
    [hit] = await engine.search(index, SearchRequest("CAFE resume", None, mode="bm25"))
    assert hit.text == cafe.text
    assert dict(hit.metadata) == {"note": 'ünïcödé «quoted» "x" \\ 中文'}
    filtered = SearchRequest("cafe", axis(0), metadata={"note": 'ünïcödé «quoted» "x" \\ 中文'})
    assert [h.id for h in await engine.search(index, filtered)] == [cafe.id]


async def test_read_after_write(engine: SearchEngine, index: str) -> None:
    document = hexid()
    for round_ in range(5):
        batch = [chunk(f"round{round_} token{i}", axis(i), document) for i in range(20)]
        await engine.upsert(index, batch)
        hits = await engine.search(index, SearchRequest(f"round{round_}", axis(0), top_k=50))
        assert {hit.id for hit in hits} >= {c.id for c in batch}
        assert await engine.count(index, document_id=document) == 20 * (round_ + 1)
    await engine.delete(index, chunk_ids=[hits[0].id])
    again = await engine.search(index, SearchRequest("round4", axis(0), top_k=50))
    assert hits[0].id not in {hit.id for hit in again}


async def test_a_second_engine_on_the_same_data_sees_writes(
    engine: SearchEngine, engine_and_folder: tuple[SearchEngine, Path], index: str
) -> None:
    """Like a worker process writing while the server searches."""
    other = make_engine("milvus" if isinstance(engine, MilvusSearch) else "lancedb", engine_and_folder[1])
    await other.start()
    try:
        await engine.search(index, SearchRequest("warm", axis(0)))  # builds this engine's view first
        await other.upsert(index, [chunk("written elsewhere", axis(0))])
        [hit] = await engine.search(index, SearchRequest("elsewhere", None, mode="bm25"))
        assert hit.text == "written elsewhere"
        assert await other.delete(index, chunk_ids=[hit.id]) == 1
        assert await engine.search(index, SearchRequest("elsewhere", None, mode="bm25")) == []
    finally:
        await other.close()


async def test_concurrent_writes_and_searches(engine: SearchEngine, index: str) -> None:
    document = hexid()
    batches = [[chunk(f"parallel batch{b} item{i}", axis(i), document) for i in range(30)] for b in range(8)]

    async def search() -> int:
        return len(await engine.search(index, SearchRequest("parallel", axis(0), top_k=5)))

    await asyncio.gather(*(engine.upsert(index, batch) for batch in batches), *(search() for _ in range(8)))
    assert await engine.count(index, document_id=document) == 240
    hits = await engine.search(index, SearchRequest("batch7", None, mode="bm25", top_k=100))
    assert {hit.id for hit in hits} == {c.id for c in batches[7]}


async def test_bad_input(engine: SearchEngine, index: str) -> None:
    with pytest.raises(DimensionMismatch):
        await engine.upsert(index, [chunk("x", [1.0] * (DIM + 1))])
    with pytest.raises(DimensionMismatch):
        await engine.search(index, SearchRequest("x", [1.0] * (DIM - 1)))
    with pytest.raises(InvalidSearchInput):
        await engine.search(index, SearchRequest("x", None, mode="vector"))
    with pytest.raises(InvalidSearchInput):
        await engine.search(index, SearchRequest("x", axis(0), top_k=0))
    bad_key = IndexedChunk(id=hexid(), document_id=hexid(), text="x", vector=axis(0), metadata={"Bad-Key": 1})
    with pytest.raises(InvalidSearchInput):
        await engine.upsert(index, [bad_key])
    bad_id = IndexedChunk(id="no spaces allowed", document_id=hexid(), text="x", vector=axis(0))
    with pytest.raises(InvalidSearchInput):
        await engine.upsert(index, [bad_id])
    with pytest.raises(InvalidSearchInput):
        await engine.upsert(index, [chunk("x", [math.nan] * DIM)])
    with pytest.raises(InvalidSearchInput):
        await engine.create_index("Bad Name", DIM)
    with pytest.raises(InvalidSearchInput):
        await engine.create_index(f"kb_{hexid()}", 0)
    same = chunk("x", axis(0))
    with pytest.raises(InvalidSearchInput):
        await engine.upsert(index, [same, same])
    assert await engine.count(index) == 0  # a refused batch writes nothing
    await engine.upsert(index, [])


async def test_lancedb_keeps_its_memory_indexes_within_the_budget(tmp_path: Path) -> None:
    """Searched indexes are held in memory up to a budget; the least recently searched one is dropped first and
    rebuilt from its table when searched again, with every write since then."""
    engine = LanceDBSearch(tmp_path / "lancedb", memory_budget_bytes=1)  # room for the index in use only
    await engine.start()
    try:
        names = [f"kb_{hexid()}" for _ in range(3)]
        for n, name in enumerate(names):
            await engine.create_index(name, DIM)
            await engine.upsert(name, [chunk(f"index{n} kettle {i}", axis(i)) for i in range(10)])
            assert len(await engine.search(name, SearchRequest(f"index{n}", axis(0), top_k=20))) == 10
        held = [name for name in names if engine._indexes[name].memory is not None]
        assert held == [names[2]]
        await engine.upsert(names[0], [chunk("index0 written while dropped", axis(1))])
        hits = await engine.search(names[0], SearchRequest("dropped", None, mode="bm25"))
        assert [hit.text for hit in hits] == ["index0 written while dropped"]
        assert [name for name in names if engine._indexes[name].memory is not None] == [names[0]]
    finally:
        await engine.close()

    roomy = LanceDBSearch(tmp_path / "lancedb")  # the default budget holds all three
    await roomy.start()
    try:
        for name in names:
            await roomy.search(name, SearchRequest("kettle", axis(0)))
        assert all(roomy._indexes[name].memory is not None for name in names)
    finally:
        await roomy.close()
