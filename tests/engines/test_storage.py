"""Object storage conformance: the same behaviour from the local directory and from a real S3 server."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nexent.engines.storage.base import InvalidObjectKey, ObjectNotFound, ObjectStorage
from nexent.engines.storage.local import LocalStorage
from nexent.engines.storage.s3 import S3Storage
from tests.conftest import S3_ACCESS_KEY, S3_SECRET_KEY


@pytest.fixture(params=["local", "s3"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ObjectStorage]:
    engine: ObjectStorage
    if request.param == "local":
        engine = LocalStorage(tmp_path / "objects")
    else:
        engine = S3Storage(
            bucket=f"nexent-{uuid.uuid4().hex[:12]}",
            endpoint_url=request.getfixturevalue("s3_endpoint"),
            region="us-east-1",
            access_key=S3_ACCESS_KEY,
            secret_key=S3_SECRET_KEY,
        )
    await engine.start()
    yield engine
    await engine.close()


async def test_put_then_get_returns_the_same_bytes(storage: ObjectStorage) -> None:
    data = bytes(range(256)) * 10
    await storage.put("tenant-a/docs/file.bin", data)
    assert await storage.get("tenant-a/docs/file.bin") == data
    info = await storage.stat("tenant-a/docs/file.bin")
    assert (info.key, info.size) == ("tenant-a/docs/file.bin", len(data))


async def test_empty_and_large_objects(storage: ObjectStorage) -> None:
    large = os.urandom(6 * 1024 * 1024)
    await storage.put("empty", b"")
    await storage.put("large.bin", large)
    assert await storage.get("empty") == b""
    assert await storage.get("large.bin") == large


async def test_stream_gives_the_object_in_pieces(storage: ObjectStorage) -> None:
    data = os.urandom(300_000)
    await storage.put("docs/streamed.bin", data)
    pieces = [piece async for piece in await storage.stream("docs/streamed.bin", chunk_size=64 * 1024)]
    assert b"".join(pieces) == data
    assert len(pieces) >= 5 and all(0 < len(piece) <= 64 * 1024 for piece in pieces)
    await storage.put("empty", b"")
    assert [piece async for piece in await storage.stream("empty")] == []
    # A consumer that stops early closes the object; it can still be read afterwards.
    first = await storage.stream("docs/streamed.bin", chunk_size=1000)
    assert await anext(first) == data[:1000]
    await first.aclose()  # type: ignore[attr-defined]
    assert await storage.get("docs/streamed.bin") == data


async def test_streaming_a_missing_object_fails_before_any_byte(storage: ObjectStorage) -> None:
    with pytest.raises(ObjectNotFound):
        await storage.stream("nope.txt")
    with pytest.raises(InvalidObjectKey):
        await storage.stream("../escape")


async def test_put_overwrites(storage: ObjectStorage) -> None:
    await storage.put("a.txt", b"first")
    await storage.put("a.txt", b"second, longer")
    assert await storage.get("a.txt") == b"second, longer"


async def test_missing_objects(storage: ObjectStorage) -> None:
    with pytest.raises(ObjectNotFound):
        await storage.get("nope.txt")
    with pytest.raises(ObjectNotFound):
        await storage.stat("nope.txt")
    assert await storage.exists("nope.txt") is False
    await storage.delete("nope.txt")  # deleting nothing is not an error


async def test_delete_removes_only_that_object(storage: ObjectStorage) -> None:
    await storage.put("dir/one", b"1")
    await storage.put("dir/two", b"2")
    await storage.delete("dir/one")
    assert await storage.exists("dir/one") is False
    assert await storage.exists("dir/two") is True
    assert await storage.list() == ["dir/two"]


async def test_concurrent_deletes_in_one_folder(storage: ObjectStorage) -> None:
    # Deleting a knowledge base deletes its files 16 at a time; the last ones leave their folder empty together.
    keys = [f"kb/shared/{i}/file" for i in range(32)]
    await asyncio.gather(*(storage.put(key, b"x") for key in keys))
    await asyncio.gather(*(storage.delete(key) for key in keys))
    assert await storage.list("kb/") == []


async def test_list_by_prefix_is_sorted(storage: ObjectStorage) -> None:
    for key in ["b/2", "a/1", "b/1", "b/sub/3", "bb/4"]:
        await storage.put(key, key.encode())
    assert await storage.list() == ["a/1", "b/1", "b/2", "b/sub/3", "bb/4"]
    assert await storage.list("b/") == ["b/1", "b/2", "b/sub/3"]
    assert await storage.list("b") == ["b/1", "b/2", "b/sub/3", "bb/4"]
    assert await storage.list("zzz/") == []


@pytest.mark.parametrize(
    "key",
    [
        "",
        "../escape",
        "a/../../b",
        "/absolute",
        "a//b",
        "a/./b",
        "trailing/",
        "back\\slash",
        "nul\x00",
        "x" * 1100,
    ],
)
async def test_unsafe_keys_are_refused(storage: ObjectStorage, key: str) -> None:
    with pytest.raises(InvalidObjectKey):
        await storage.put(key, b"x")
    with pytest.raises(InvalidObjectKey):
        await storage.get(key)


async def test_unicode_keys(storage: ObjectStorage) -> None:
    await storage.put("文档/报告 2024.pdf", b"pdf")
    assert await storage.get("文档/报告 2024.pdf") == b"pdf"
    assert await storage.list("文档/") == ["文档/报告 2024.pdf"]


async def test_concurrent_writers_leave_one_whole_object(storage: ObjectStorage) -> None:
    payloads = [bytes([i]) * 200_000 for i in range(8)]
    await asyncio.gather(*(storage.put("contended", p) for p in payloads))
    assert await storage.get("contended") in payloads
    assert await storage.list() == ["contended"]


async def test_health(storage: ObjectStorage) -> None:
    await storage.health()
