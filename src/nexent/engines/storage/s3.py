"""Object storage on any S3-compatible server (boto3): AWS S3, MinIO, SeaweedFS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from nexent.engines.storage.base import (
    STREAM_CHUNK_BYTES,
    ObjectInfo,
    ObjectNotFound,
    read_in_pieces,
    validate_key,
    validate_prefix,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_MISSING = {"404", "NoSuchKey", "NotFound"}


class S3Storage:
    """Objects in one bucket, created on start when missing. boto3 is blocking, so calls run in threads."""

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None,
        region: str,
        access_key: str | None,
        secret_key: str | None,
    ) -> None:
        self.bucket = bucket
        self._client: S3Client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=60),
        )

    async def start(self) -> None:
        await asyncio.to_thread(self._ensure_bucket)

    def _ensure_bucket(self) -> None:
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _error_code(exc) not in _MISSING:
                raise
            self._client.create_bucket(Bucket=self.bucket)

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)

    async def put(self, key: str, data: bytes) -> None:
        validate_key(key)
        await asyncio.to_thread(self._client.put_object, Bucket=self.bucket, Key=key, Body=data)

    async def get(self, key: str) -> bytes:
        validate_key(key)

        def read() -> bytes:
            try:
                response = self._client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if _error_code(exc) in _MISSING:
                    raise ObjectNotFound(f"No object {key!r}.") from None
                raise
            return response["Body"].read()

        return await asyncio.to_thread(read)

    async def stream(self, key: str, chunk_size: int = STREAM_CHUNK_BYTES) -> AsyncIterator[bytes]:
        validate_key(key)

        def open_body() -> Any:
            try:
                response = self._client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if _error_code(exc) in _MISSING:
                    raise ObjectNotFound(f"No object {key!r}.") from None
                raise
            return response["Body"]

        body = await asyncio.to_thread(open_body)
        return read_in_pieces(body.read, body.close, chunk_size)

    async def stat(self, key: str) -> ObjectInfo:
        validate_key(key)
        head = await asyncio.to_thread(self._head, key)
        if head is None:
            raise ObjectNotFound(f"No object {key!r}.")
        return ObjectInfo(key=key, size=int(head["ContentLength"]))

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            return dict(self._client.head_object(Bucket=self.bucket, Key=key))
        except ClientError as exc:
            if _error_code(exc) in _MISSING:
                return None
            raise

    async def exists(self, key: str) -> bool:
        validate_key(key)
        return await asyncio.to_thread(self._head, key) is not None

    async def delete(self, key: str) -> None:
        validate_key(key)
        await asyncio.to_thread(self._client.delete_object, Bucket=self.bucket, Key=key)

    async def list(self, prefix: str = "") -> list[str]:
        validate_prefix(prefix)

        def collect() -> list[str]:
            keys: list[str] = []
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                keys.extend(item["Key"] for item in page.get("Contents", []) if "Key" in item)
            return sorted(keys)

        return await asyncio.to_thread(collect)

    async def health(self) -> None:
        await asyncio.to_thread(self._client.head_bucket, Bucket=self.bucket)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
