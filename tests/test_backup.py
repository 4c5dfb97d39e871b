"""Backups and restores of a whole deployment (`nexent.backup`, docs/backups.md): a deployment filled through the API
(a tenant, an agent, a conversation with a run on the scripted model server, a knowledge base with an indexed
document, a memory) is backed up, restored into an empty deployment of either shape (SQLite, local files and
LanceDB; PostgreSQL, SeaweedFS over S3 and Milvus Lite), and answers the same: agents, conversations, documents,
the files' bytes and the same search hits. Bad input is refused before anything changes: a foreign or damaged file,
a newer format or revision, a non-empty target, other encryption keys. The command line does it for real."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from nexent.backup.archive import MANIFEST, BackupError
from nexent.backup.service import backup, head_revision, restore
from nexent.core.crypto import SecretBox
from nexent.providers import pool
from nexent.settings import Settings
from tests.conftest import (
    REDIS_URL,
    S3_ACCESS_KEY,
    S3_SECRET_KEY,
    PostgresDatabases,
    make_settings,
    serve_in_process,
    started_engines,
)
from tests.knowledge.test_knowledge_api import GUIDE, NOTES, create_kb, search, settled, upload
from tests.support.identity import PASSWORD, bearer
from tests.support.model_server import ChatReply, RunningModelServer, run_model_server
from tests.test_cli import cli_env, nexent
from tests.test_runs import make_agent, new_owner, run

KEY = SecretBox.generate_key()
JWT = "backup-test-jwt-secret-" + "x" * 32
QUERIES = ("crema pressure brewing", "milk wand microfoam")


@pytest.fixture(scope="module")
def llm() -> Any:
    with run_model_server(embedding_dim=64) as served:
        yield served


@pytest.fixture(autouse=True)
def _fresh(llm: RunningModelServer) -> None:
    llm.server.reset()
    pool._unhealthy_until.clear()


class Shapes:
    def __init__(self, tmp_path: Path, pg: PostgresDatabases, s3: str, redis_prefix: str) -> None:
        self.tmp_path, self.pg, self.s3, self.redis_prefix = tmp_path, pg, s3, redis_prefix

    async def settings(self, shape: str, name: str, **extra: Any) -> Settings:
        base: dict[str, Any] = {"builtin_models": False, "encryption_keys": [KEY], "jwt_secret": JWT, **extra}
        if shape == "distributed":
            base.update(
                database_url=await self.pg.create(migrated=True),
                bus_backend="redis",
                redis_url=REDIS_URL,
                redis_prefix=f"{self.redis_prefix}{name}:",
                storage_backend="s3",
                s3_endpoint_url=self.s3,
                s3_bucket=f"bk-{uuid.uuid4().hex[:12]}",
                s3_access_key=S3_ACCESS_KEY,
                s3_secret_key=S3_SECRET_KEY,
                search_backend="milvus",
                milvus_uri=str(self.tmp_path / name / "milvus.db"),
            )
        return make_settings(self.tmp_path / name, **base)


@pytest.fixture
def shapes(tmp_path: Path, pg_databases: PostgresDatabases, s3_endpoint: str, redis_prefix: str) -> Shapes:
    return Shapes(tmp_path, pg_databases, s3_endpoint, redis_prefix)


async def populate(client: httpx.AsyncClient, llm: RunningModelServer) -> dict[str, Any]:
    """A tenant with an agent, a conversation with a run, a knowledge base with two indexed documents, a memory."""
    email = f"backup-{uuid.uuid4().hex[:6]}@example.com"
    owner = await new_owner(client, llm, email)
    headers = bearer(owner["access_token"])
    embedding = await client.post(
        "/api/models",
        json={"name": "Embedder", "kind": "embedding", "model": "scripted-embedding", "base_url": llm.base_url},
        headers=headers,
    )
    assert embedding.status_code == 201, embedding.text
    agent = await make_agent(client, owner, instructions={"duty": "Answer about coffee."})
    llm.server.enqueue(ChatReply.text("Brew at nine bars."), ChatReply.text('"Espresso pressure"'))
    response, events = await run(client, owner, agent["id"], "How much pressure for espresso?")
    assert response.status_code == 200 and events[-1]["type"] == "run.completed", events[-3:]
    kb_owner = {**owner, "model_id": embedding.json()["id"], "headers": headers}
    kb = await create_kb(client, kb_owner, chunking={"target_chars": 300, "overlap_chars": 0})
    files = [("guide.md", GUIDE.encode(), "text/markdown"), ("notes.txt", NOTES.encode(), "text/plain")]
    assert (await upload(client, kb_owner, kb["id"], files)).status_code == 201
    docs = await settled(client, kb_owner, kb["id"])
    assert {d["status"] for d in docs.values()} == {"indexed"}
    memory = await client.post("/api/memories", json={"text": "I take my espresso without sugar."}, headers=headers)
    assert memory.status_code == 201, memory.text
    return {"email": email, "kb_id": kb["id"], "agent_id": agent["id"]}


async def observe(client: httpx.AsyncClient, headers: dict[str, str], facts: dict[str, Any]) -> dict[str, Any]:
    """What a user of the deployment sees: agents, conversations with their messages, documents, file bytes,
    search hits in every mode, memories (and a search of them)."""

    async def get(path: str, **params: Any) -> Any:
        response = await client.get(path, params=params, headers=headers)
        assert response.status_code == 200, (path, response.text)
        return response.json()

    kb_id = facts["kb_id"]
    conversations = (await get("/api/conversations"))["items"]
    documents = sorted((await get(f"/api/knowledge-bases/{kb_id}/documents"))["items"], key=lambda d: d["file_name"])
    files = {}
    for doc in documents:
        response = await client.get(f"/api/knowledge-bases/{kb_id}/documents/{doc['id']}/file", headers=headers)
        assert response.status_code == 200, response.text
        files[doc["file_name"]] = response.content
    hits = {}
    for query in QUERIES:
        for mode in ("hybrid", "bm25", "vector"):
            found = await search(client, {"headers": headers}, kb_id, query, mode=mode, top_k=3)
            hits[(query, mode)] = [(h["chunk_id"], h["text"]) for h in found["hits"]]
    return {
        "agents": [(a["id"], a["name"]) for a in (await get("/api/agents"))["items"]],
        "agent": {k: v for k, v in (await get(f"/api/agents/{facts['agent_id']}")).items() if k != "updated_at"},
        "conversations": [
            (
                c["id"],
                c["title"],
                [(m["role"], m["content"]) for m in (await get(f"/api/conversations/{c['id']}"))["messages"]],
            )
            for c in conversations
        ],
        "documents": [(d["id"], d["file_name"], d["status"], d["chunk_count"]) for d in documents],
        "files": files,
        "hits": hits,
        "memories": [m["text"] for m in (await get("/api/memories"))["items"]],
        "recalled": [m["text"] for m in (await get("/api/memories", q="espresso sugar"))["items"]],
    }


async def sign_in(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    response = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return bearer(response.json()["access_token"])


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("embedded", "embedded"),
        ("distributed", "distributed"),
        ("embedded", "distributed"),
        ("distributed", "embedded"),
    ],
)
async def test_a_restored_deployment_answers_the_same(
    shapes: Shapes, llm: RunningModelServer, tmp_path: Path, source: str, target: str
) -> None:
    before_settings = await shapes.settings(source, "source")
    async with serve_in_process(before_settings) as client:
        facts = await populate(client, llm)
        before = await observe(client, await sign_in(client, facts["email"]), facts)
    assert before["hits"][(QUERIES[0], "bm25")] and before["hits"][(QUERIES[1], "vector")]
    assert before["memories"] and before["recalled"] and before["conversations"][0][2]

    file = tmp_path / "nexent.backup"
    engines = await started_engines(before_settings, consume_jobs=False, migrate=False)
    try:
        written = await backup(engines, file)
    finally:
        await engines.close()
    assert written.tables["agents"] == 1 and written.tables["knowledge_chunks"] >= 2 and written.objects >= 2

    after_settings = await shapes.settings(target, "target")
    engines = await started_engines(after_settings, consume_jobs=False)
    try:
        restored = await restore(engines, file)
    finally:
        await engines.close()
    # Two uploaded files, and whatever previews of them were made by then.
    assert restored.tables == written.tables and restored.objects == written.objects and not restored.index_errors
    assert restored.chunks_indexed == written.tables["knowledge_chunks"] and restored.memories_indexed == 1

    async with serve_in_process(after_settings) as client:
        after = await observe(client, await sign_in(client, facts["email"]), facts)
    assert after == before


async def test_refusals_change_nothing(shapes: Shapes, llm: RunningModelServer, tmp_path: Path) -> None:
    settings = await shapes.settings("embedded", "source")
    async with serve_in_process(settings) as client:
        facts = await populate(client, llm)
    file = tmp_path / "good.backup"
    engines = await started_engines(settings, consume_jobs=False, migrate=False)
    try:
        await backup(engines, file)
        with pytest.raises(BackupError, match="not empty"):  # the source itself: it holds rows and objects
            await restore(engines, file)
    finally:
        await engines.close()

    def rewrite(name: str, change: Any, members: dict[str, Any] | None = None) -> Path:
        """A copy of the backup with its manifest changed by `change`, and members changed by `members` (their
        checksums kept right, so the change reaches the restore)."""
        out = tmp_path / name
        sums: dict[str, str] = {}
        with tarfile.open(file, "r:gz") as src, tarfile.open(out, "w:gz") as dst:
            for member in src.getmembers():
                data = src.extractfile(member).read()  # type: ignore[union-attr]
                if members and member.name in members:
                    data = members[member.name](data)
                    sums[member.name] = hashlib.sha256(data).hexdigest()
                if member.name == MANIFEST:
                    manifest = json.loads(data)
                    manifest["checksums"].update(sums)
                    change(manifest)
                    data = json.dumps(manifest).encode()
                member.size = len(data)
                dst.addfile(member, io.BytesIO(data))
        return out

    def damage(manifest: dict[str, Any]) -> None:
        name = next(iter(manifest["checksums"]))
        manifest["checksums"][name] = "0" * 64

    foreign = tmp_path / "foreign.tar.gz"
    with tarfile.open(foreign, "w:gz") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    truncated = tmp_path / "truncated.backup"
    truncated.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
    garbage = tmp_path / "garbage.backup"
    garbage.write_bytes(gzip.compress(b"not a tar archive at all"))
    cases = {
        tmp_path / "missing.backup": "no such file",
        garbage: "not a Nexent backup",
        foreign: "not a Nexent backup",
        truncated: "damaged|not a Nexent backup",
        rewrite("newer-format.backup", lambda m: m.update(format_version=99)): "format 99",
        rewrite("newer-revision.backup", lambda m: m.update(revision="9999_future")): "does not know",
        rewrite("damaged.backup", damage): "checksum",
        rewrite("other-keys.backup", lambda m: m.update(key_check=SecretBox([KEY]).encrypt("x"))): "encryption keys",
        # A row twice, in one of the last tables: the database refuses it after every earlier table was written.
        rewrite(
            "duplicate-row.backup",
            lambda m: None,
            {"database/knowledge_chunks.jsonl": lambda data: data + data.splitlines(keepends=True)[-1]},
        ): "could not be written",
    }
    empty = await shapes.settings("embedded", "empty")
    engines = await started_engines(empty, consume_jobs=False)
    try:
        for path, message in cases.items():
            with pytest.raises(BackupError, match=message):
                await restore(engines, path)
        assert await engines.storage.list("") == []  # the objects written before the rows' failure went again
        async with engines.db.connect() as conn:
            from nexent.backup.repository import count_rows

            assert not any((await count_rows(conn)).values())
    finally:
        await engines.close()
    other_keys = make_settings(tmp_path / "other", builtin_models=False)  # keys of its own
    engines = await started_engines(other_keys, consume_jobs=False)
    try:
        with pytest.raises(BackupError, match="encryption keys"):
            await restore(engines, file)
    finally:
        await engines.close()
    assert facts


async def test_an_older_backup_is_migrated_forward(shapes: Shapes, tmp_path: Path) -> None:
    """A backup taken at an earlier revision (written here by hand, as an older version would have) is restored at
    its revision and migrated to head with its rows."""
    settings = await shapes.settings("embedded", "empty")
    engines = await started_engines(settings, consume_jobs=False)
    try:
        file = tmp_path / "current.backup"
        await backup(engines, file)  # an empty deployment: only the schema's shape matters
    finally:
        await engines.close()
    with tarfile.open(file, "r:gz") as tar:
        manifest = json.loads(tar.extractfile(MANIFEST).read())  # type: ignore[union-attr]
    assert manifest["revision"] == head_revision(settings.resolved_database_url)
    tenant_id = uuid.uuid4()
    old = tmp_path / "old.backup"
    # Revision 0021: tenants had no skills network column yet (0022 added it).
    tenants = next(t for t in manifest["tables"] if t["name"] == "tenants")
    columns = [c for c in tenants["columns"] if c[0] in _TENANT_COLUMNS_0021]
    row = {
        "id": tenant_id.hex,
        "name": "Old Co",
        "slug": "old-co",
        "status": "active",
        "private_endpoints": [],
        "created_at": "2026-01-01T00:00:00+00:00",
        "updated_at": "2026-01-01T00:00:00+00:00",
    }
    assert {c[0] for c in columns} == set(row), columns
    from nexent.backup.archive import ArchiveWriter, Manifest, TableEntry

    writer = ArchiveWriter(old)
    writer.add_bytes("database/tenants.jsonl", (json.dumps([row[c[0]] for c in columns]) + "\n").encode())
    writer.close(
        Manifest.model_validate(
            {
                **manifest,
                "revision": "0021",
                "tables": [TableEntry(name="tenants", columns=columns, rows=1).model_dump()],
                "objects": 0,
                "object_bytes": 0,
                "checksums": writer.checksums,
            }
        )
    )
    target = await shapes.settings("distributed", "target")
    engines = await started_engines(target, consume_jobs=False)
    try:
        result = await restore(engines, old)
        assert (
            result.revision == "0021"
            and result.migrated_to == head_revision(settings.resolved_database_url)
            and result.tables == {"tenants": 1}
        )
        from nexent.identity.services.tenants import TenantService

        async with engines.sessions() as session:
            tenant = await TenantService(session, engines.settings).get(tenant_id)
        assert tenant.name == "Old Co"
    finally:
        await engines.close()


_TENANT_COLUMNS_0021 = {"id", "name", "slug", "status", "private_endpoints", "created_at", "updated_at"}


@pytest.mark.slow
def test_the_command_line(tmp_path: Path, sqlite_template: Path) -> None:
    """`nexent admin backup` and `restore` as an operator runs them: exit codes, refusals and --force."""
    source = cli_env(tmp_path / "a", NEXENT_ENCRYPTION_KEYS=KEY)
    (tmp_path / "a" / "data").mkdir(parents=True)
    shutil.copyfile(sqlite_template, tmp_path / "a" / "data" / "nexent.db")  # migrated, as `nexent migrate` does
    created = json.loads(nexent(source, "admin", "create-tenant", "Ops Team").stdout)
    file = tmp_path / "ops.backup"
    summary = json.loads(nexent(source, "admin", "backup", str(file)).stdout)
    assert summary["tables"]["tenants"] == 1 and summary["revision"] == head_revision(
        f"sqlite+aiosqlite:///{sqlite_template}"
    )

    again = nexent(source, "admin", "backup", str(file), check=False)
    assert again.returncode == 2 and "exists already" in again.stderr
    refused = nexent(source, "admin", "restore", str(file), check=False)  # the source is not empty
    assert refused.returncode == 2 and "not empty" in refused.stderr and "--force" in refused.stderr
    forced = json.loads(nexent(source, "admin", "restore", str(file), "--force").stdout)
    assert forced["rows"] == summary["rows"]

    target = cli_env(tmp_path / "b", NEXENT_ENCRYPTION_KEYS=KEY)
    restored = json.loads(nexent(target, "admin", "restore", str(file)).stdout)
    assert restored["rows"] == summary["rows"] and restored["index_errors"] == []
    listed = json.loads(nexent(target, "admin", "list-tenants").stdout)
    assert [t["id"] for t in listed["items"]] == [created["id"]]
