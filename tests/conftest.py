"""Shared fixtures: throwaway PostgreSQL databases, Redis namespaces, a SeaweedFS S3 server, settings and apps.

The real engines must be running (the test command, `scripts/test`, starts PostgreSQL and Redis when they are
not); SeaweedFS is started here unless `NEXENT_TEST_S3_ENDPOINT` points at a running S3 server.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from nexent.core.db import migrate_async
from nexent.engines.container import Engines, build_engines
from nexent.jobs.queue import build_queue
from nexent.jobs.registry import load_job_modules
from nexent.server import create_app
from nexent.settings import Service, Settings

PG_ADMIN_URL = os.environ.get("NEXENT_TEST_PG_ADMIN_URL", "postgresql://nexent:nexent@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("NEXENT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
S3_ACCESS_KEY = "nexent-test"
S3_SECRET_KEY = "nexent-test-secret"
TEST_JOB_MODULES = ["tests.support.jobs"]
REPO_ROOT = Path(__file__).resolve().parent.parent

load_job_modules(TEST_JOB_MODULES)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under `--dist loadfile` (scripts/test), a test file's tests run on one worker (its module-scoped servers start
    once), and all browser tests as if they were one file: one after the other on one worker. Two Chromiums and
    their servers at once on the 2-core CI machine made page waits time out."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class BrowserTestsTogether(LoadFileScheduling):  # type: ignore[misc]  # xdist is untyped
        def _split_scope(self, nodeid: str) -> str:
            return "tests/browser" if nodeid.startswith("tests/browser/") else super()._split_scope(nodeid)

    return BrowserTestsTogether(config, log)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


# --- PostgreSQL -----------------------------------------------------------------------------------------------


class PostgresDatabases:
    """Creates uniquely named databases and drops them all at the end of the session.

    A migrated database is a copy of a template that `migrate_async` brought up to date once per session (`CREATE
    DATABASE ... TEMPLATE`): the same schema as migrating it, in a quarter of the time (a migration per test was
    among the suite's largest costs)."""

    def __init__(self) -> None:
        self.created: list[str] = []
        self._template: str | None = None

    async def create(self, *, migrated: bool = False) -> str:
        template = await self._migrated_template() if migrated else None
        return self._url(await self._create(template))

    async def _create(self, template: str | None = None) -> str:
        name = f"nexent_test_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        finally:
            await conn.close()
        self.created.append(name)
        return name

    async def _migrated_template(self) -> str:
        if self._template is None:
            name = await self._create()
            await migrate_async(self._url(name))  # leaves no connection open: a template must have none
            self._template = name
        return self._template

    @staticmethod
    def _url(name: str) -> str:
        base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        return f"{base}/{name}"

    async def drop_all(self) -> None:
        """Each DROP DATABASE waits for a checkpoint (seconds on a busy machine); dropped several at once, they
        share checkpoints. One after the other, the end of a loaded session outlasted its 300 s deadline."""
        slots = asyncio.Semaphore(8)  # connections: the server allows 100 in all

        async def drop(name: str) -> None:
            async with slots:
                conn = await asyncpg.connect(PG_ADMIN_URL)
                try:
                    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                finally:
                    await conn.close()

        # The template last: PostgreSQL refuses to drop a database while it is being copied.
        await asyncio.gather(*(drop(name) for name in self.created if name != self._template))
        if self._template is not None:
            await drop(self._template)


@pytest.fixture(scope="session")
async def pg_databases() -> AsyncIterator[PostgresDatabases]:
    databases = PostgresDatabases()
    yield databases
    await databases.drop_all()


@pytest.fixture
async def pg_url(pg_databases: PostgresDatabases) -> str:
    """A new PostgreSQL database for one test, migrated to the head revision (a copy of the session's template)."""
    return await pg_databases.create(migrated=True)


@pytest.fixture
async def pg_empty_url(pg_databases: PostgresDatabases) -> str:
    """A new, empty PostgreSQL database for one test (for tests of the migrations themselves)."""
    return await pg_databases.create()


@pytest.fixture(scope="session")
async def pg_migrated_url(pg_databases: PostgresDatabases) -> str:
    """One migrated PostgreSQL database shared by the tests of a session (tests use distinct rows)."""
    url = await pg_databases.create()
    await migrate_async(url)
    return url


# --- Redis ----------------------------------------------------------------------------------------------------


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix of its own for one test; its keys are deleted afterwards."""
    prefix = f"nexent-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


# --- S3 (SeaweedFS) -------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real S3 server: SeaweedFS (`weed mini`) on pinned free ports, started for this session."""
    existing = os.environ.get("NEXENT_TEST_S3_ENDPOINT")
    if existing:
        yield existing
        return
    weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    data_dir = tmp_path_factory.mktemp("seaweedfs")
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3", "webdav", "admin", "iceberg", "lance")}
    args = [
        weed,
        "mini",
        f"-dir={data_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={ports['master']}",
        f"-volume.port={ports['volume']}",
        f"-filer.port={ports['filer']}",
        f"-s3.port={ports['s3']}",
        f"-webdav.port={ports['webdav']}",
        f"-admin.port={ports['admin']}",
        f"-s3.port.iceberg={ports['iceberg']}",
        f"-s3.port.lance={ports['lance']}",
        "-admin.ui=false",
    ]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY}
    log = (data_dir / "weed.log").open("wb")
    process = subprocess.Popen(args, cwd=data_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(ports["s3"], timeout=60)
        _wait_for_s3(f"http://127.0.0.1:{ports['s3']}")
        yield f"http://127.0.0.1:{ports['s3']}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _wait_for_s3(endpoint: str, timeout: float = 60) -> None:
    """SeaweedFS opens its S3 port before its volume server can take writes; wait until a write works."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key=S3_SECRET_KEY,
        region_name="us-east-1",
    )
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            client.create_bucket(Bucket="nexent-probe")
            client.put_object(Bucket="nexent-probe", Key="probe", Body=b"ok")
            return
        except Exception as exc:
            last_error = exc
            time.sleep(0.5)
    raise TimeoutError(f"SeaweedFS did not accept writes: {last_error!r}")


# --- Settings, engines and apps -------------------------------------------------------------------------------


_SQLITE_TEMPLATE: list[Path] = []  # the session's migrated SQLite database, once `sqlite_template` made it


@pytest.fixture(scope="session", autouse=True)
async def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated to the head revision once per session; `make_settings` puts a copy of it where the
    embedded database goes (an app migrates its database when it starts: a migration per test was among the suite's
    largest costs). Tests of the migrations themselves give their own `database_url`."""
    path = tmp_path_factory.mktemp("sqlite-template") / "nexent.db"
    await migrate_async(f"sqlite+aiosqlite:///{path}")
    _SQLITE_TEMPLATE[:] = [path]
    return path


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for tests: embedded defaults under `tmp_path`, no `.env`, quiet logs, test job handlers. Without a
    `database_url`, the embedded SQLite database starts as a copy of the session's migrated one."""
    if "database_url" not in overrides and _SQLITE_TEMPLATE:
        database = Path(overrides.get("data_dir", tmp_path / "data")) / "nexent.db"
        if not database.exists():
            database.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(_SQLITE_TEMPLATE[0], database)
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "log_level": "WARNING",
        "job_modules": TEST_JOB_MODULES,
        "job_poll_seconds": 0.2,
        "admin_token": "operator-secret",
        # The scripted model servers listen on loopback: the operator's allow list lets models use them.
        "private_endpoints_allow": ["127.0.0.1"],
        # Tests register many users from one address; tests of the sign-up limit set their own.
        "register_max_attempts": 10_000,
        # Memory's extraction is a model call after every run: only the tests of memory turn it on.
        "memory_enabled": False,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


async def started_engines(settings: Settings, *, consume_jobs: bool = True, migrate: bool = True) -> Engines:
    if migrate:
        await migrate_async(settings.resolved_database_url)
    engines = build_engines(settings, queue=build_queue, consume_jobs=consume_jobs)
    await engines.start()
    return engines


@pytest.fixture
async def app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The embedded app on SQLite, lifespan running, reached over ASGI."""
    async with serve_in_process(settings) as client:
        yield client


class serve_in_process:
    """Run an app's lifespan and give an httpx client over ASGI transport."""

    def __init__(self, settings: Settings, service: Service | None = None) -> None:
        self.app = create_app(settings, service=service)
        self._lifespan: Any = None
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> httpx.AsyncClient:
        self._lifespan = self.app.router.lifespan_context(self.app)
        await self._lifespan.__aenter__()
        transport = httpx.ASGITransport(app=self.app)
        self._client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        return self._client

    async def __aexit__(self, *exc: object) -> None:
        assert self._client is not None
        await self._client.aclose()
        await self._lifespan.__aexit__(*exc)


async def wait_until(predicate: Any, *, timeout: float = 30.0, interval: float = 0.1) -> Any:
    """Poll an async predicate until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = await predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s (last value {result!r})")
        await asyncio.sleep(interval)
