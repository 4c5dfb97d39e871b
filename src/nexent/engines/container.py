"""The engines one process uses, chosen by settings. No code outside `nexent.engines` knows which is in use.

The job queue is the exception: its implementations belong to the jobs domain (`nexent.jobs.queue`), and the
caller passes their factory (`build_queue`), so that this package imports no domain."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from nexent.core.db import create_engine, create_session_factory, ping
from nexent.core.keys import KeyRing, load_keyring
from nexent.core.netpolicy import AddressPolicy
from nexent.core.process import ProcessState
from nexent.engines.bus.base import EventBus
from nexent.engines.bus.local import LocalBus
from nexent.engines.queue import JobQueue
from nexent.engines.search.base import SearchEngine
from nexent.engines.storage.base import ObjectStorage
from nexent.engines.storage.local import LocalStorage
from nexent.settings import Settings

logger = logging.getLogger("nexent.engines")

READINESS_TIMEOUT_SECONDS = 3.0


@dataclass(eq=False)  # compared and hashed by identity: one set of engines per process
class Engines:
    settings: Settings
    db: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    storage: ObjectStorage
    bus: EventBus
    search: SearchEngine
    keys: KeyRing = field(repr=False)
    queue: JobQueue = field(init=False)
    # What the process holds besides its engines (batch writer, runs it executes, ...): see `core/process.py`.
    process: ProcessState = field(init=False, default_factory=ProcessState, repr=False)
    # The private hosts and networks that the operator lets model endpoints use (`NEXENT_PRIVATE_ENDPOINTS_ALLOW`),
    # parsed once: a wrong entry stops the process at start.
    private_endpoints: AddressPolicy = field(init=False, repr=False)

    def __post_init__(self) -> None:
        try:
            self.private_endpoints = AddressPolicy.parse(self.settings.private_endpoints_allow)
        except ValueError as exc:
            raise ValueError(f"NEXENT_PRIVATE_ENDPOINTS_ALLOW: {exc}") from None

    async def start(self) -> None:
        await self.storage.start()
        await self.bus.start()
        await self.search.start()
        await self.queue.start()

    async def close(self) -> None:
        await self.queue.close()
        await self.process.close()  # after the jobs: they may use its parts (the writer, model connections)
        await self.search.close()
        await self.bus.close()
        await self.storage.close()
        await self.db.dispose()

    async def readiness(self) -> dict[str, str]:
        """Check every engine; returns `{name: "ok" | "error: ..."}`."""
        checks = {
            "database": ping(self.db),
            "storage": self.storage.health(),
            "queue": self.queue.health(),
            "bus": self.bus.health(),
            "search": self.search.health(),
        }
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                await asyncio.wait_for(check, timeout=READINESS_TIMEOUT_SECONDS)
                results[name] = "ok"
            except Exception as exc:
                logger.warning("readiness check failed", extra={"engine": name, "error": repr(exc)})
                results[name] = f"error: {type(exc).__name__}"
        return results


def build_storage(settings: Settings) -> ObjectStorage:
    if settings.storage_backend == "s3":
        from nexent.engines.storage.s3 import S3Storage

        return S3Storage(
            bucket=settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key=settings.s3_access_key.get_secret_value() if settings.s3_access_key else None,
            secret_key=settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else None,
        )
    return LocalStorage(settings.resolved_storage_dir)


def build_bus(settings: Settings) -> EventBus:
    if settings.bus_backend == "redis":
        from nexent.engines.bus.redis import RedisBus

        return RedisBus(settings.redis_url, prefix=settings.redis_prefix)
    return LocalBus()


def build_search(settings: Settings) -> SearchEngine:
    fusion, weight = settings.search_fusion, settings.search_vector_weight
    if settings.search_backend == "milvus":
        from nexent.engines.search.milvus import MilvusSearch

        token = settings.milvus_token.get_secret_value() if settings.milvus_token else None
        return MilvusSearch(settings.resolved_milvus_uri, token=token, fusion=fusion, vector_weight=weight)
    from nexent.engines.search.lancedb import LanceDBSearch

    return LanceDBSearch(
        settings.resolved_lancedb_dir,
        fusion=fusion,
        vector_weight=weight,
        memory_budget_bytes=settings.lancedb_memory_bytes,
    )


QueueFactory = Callable[["Engines", bool], JobQueue]
"""Builds the queue of a process from its other engines and `consume_jobs` (`nexent.jobs.queue.build_queue`)."""


def build_engines(settings: Settings, *, queue: QueueFactory, consume_jobs: bool = True) -> Engines:
    """Engines for this process. `consume_jobs=False` builds a queue that only enqueues (no local workers,
    no reaper), for processes whose jobs are run elsewhere."""
    db = create_engine(settings.resolved_database_url, pool_size=settings.database_pool_size)
    engines = Engines(
        settings=settings,
        db=db,
        sessions=create_session_factory(db),
        storage=build_storage(settings),
        bus=build_bus(settings),
        search=build_search(settings),
        keys=load_keyring(settings),
    )
    engines.queue = queue(engines, consume_jobs)
    return engines
