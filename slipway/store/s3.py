"""``s3://bucket/optional/prefix`` artifact store via boto3 (AWS S3, MinIO, Ceph RGW).

S3 conditional writes do the concurrency work, so no lock service is needed:
``put_if_absent`` is ``PutObject`` with ``If-None-Match: *`` and ``compare_and_swap`` is
``PutObject`` with ``If-Match: <etag>``. S3 answers a lost race with 412 ``PreconditionFailed``
or, when two conditional writes overlap, 409 ``ConditionalRequestConflict``; both become
``PreconditionFailed``. ETags are handed out without their HTTP quotes and sent back quoted.
One caveat S3 shares with any conditional HTTP write: if boto3 retries a conditional put whose
first attempt did land (a timeout), the retry reports ``PreconditionFailed`` against our own
write, so callers that must know read the object back (the registry does).

Connection settings come from the environment so the same pipeline config runs against AWS and a
local S3 server: ``SLIPWAY_S3_ENDPOINT_URL`` (else boto3's own ``AWS_ENDPOINT_URL_S3`` /
``AWS_ENDPOINT_URL``), ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` (default ``us-east-1``) and
``SLIPWAY_S3_ADDRESSING_STYLE`` (default ``path`` when a custom endpoint is set, as MinIO needs).
Credentials follow boto3's usual chain.
"""

from __future__ import annotations

import builtins
import functools
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from slipway.store.base import (
    ArtifactNotFound,
    ArtifactStore,
    PreconditionFailed,
    StoreError,
    check_key,
    check_prefix,
)

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_LOST_RACE = {"PreconditionFailed", "ConditionalRequestConflict"}
_MAX_COPY_OBJECT = 5 * 1024**3  # CopyObject's limit; bigger objects need a multipart copy
_TRANSFER = TransferConfig(multipart_threshold=64 * 1024**2)


class S3Store(ArtifactStore):
    """An artifact store in an S3 bucket, optionally below a key prefix."""

    def __init__(self, url: str, client: Any | None = None) -> None:
        self.bucket, self.base = _parse_url(url)
        self.url = f"s3://{self.bucket}/{self.base}".rstrip("/")
        self.client = client or _make_client()

    def __repr__(self) -> str:
        return f"S3Store({self.url!r})"

    # ---- key mapping and error translation

    def _key(self, key: str) -> str:
        return self.base + check_key(key)

    @contextmanager
    def _errors(self, key: str, action: str, *, missing_is_conflict: bool = False) -> Iterator[None]:
        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
            where = self.uri(key)
            if code in _LOST_RACE or status == "412":
                raise PreconditionFailed(f"{action} {where}: condition failed ({code or status})") from None
            if code in _NOT_FOUND or (status == "404" and code != "NoSuchBucket"):
                if missing_is_conflict:
                    raise PreconditionFailed(f"{action} {where}: the object no longer exists") from None
                raise ArtifactNotFound(f"no artifact at {where}") from None
            message = error.get("Message") or exc
            target = f"bucket {self.bucket!r} key {self.base + key!r}"
            raise StoreError(f"{action} failed for {target}: {code or status} {message}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"{action} failed for {self.uri(key)}: {exc}") from exc

    # ---- primitives

    def get_bytes(self, key: str) -> bytes:
        return self.get_with_etag(key)[0]

    def get_with_etag(self, key: str) -> tuple[bytes, str]:
        with self._errors(key, "get"):
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            data = response["Body"].read()
        return data, _etag(response)

    def _put(
        self, key: str, data: bytes, action: str, missing_is_conflict: bool = False, **conditions: str
    ) -> str:
        with self._errors(key, action, missing_is_conflict=missing_is_conflict):
            response = self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **conditions)
        return _etag(response)

    def put_bytes(self, key: str, data: bytes) -> str:
        return self._put(key, data, "put")

    def put_if_absent(self, key: str, data: bytes) -> str:
        return self._put(key, data, "put-if-absent", IfNoneMatch="*")

    def compare_and_swap(self, key: str, data: bytes, etag: str | None) -> str:
        if etag is None:
            return self._put(key, data, "compare-and-swap", IfNoneMatch="*")
        # S3 answers If-Match on a deleted object with 404: for CAS that is a lost race too.
        quoted = '"' + etag.strip('"') + '"'
        return self._put(key, data, "compare-and-swap", missing_is_conflict=True, IfMatch=quoted)

    def exists(self, key: str) -> bool:
        try:
            with self._errors(key, "head"):
                self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ArtifactNotFound:
            return False
        return True

    def _objects(self, prefix: str) -> Iterator[dict[str, Any]]:
        """Objects under a folder-like prefix, in S3's (UTF-8 binary, i.e. sorted) order."""
        prefix = check_prefix(prefix)
        paginator = self.client.get_paginator("list_objects_v2")
        with self._errors(prefix, "list"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.base + prefix):
                for obj in page.get("Contents", []):
                    yield {**obj, "Key": obj["Key"][len(self.base) :]}

    def list(self, prefix: str = "") -> Iterator[str]:
        check_prefix(prefix)  # fail now, not on first iteration
        return (obj["Key"] for obj in self._objects(prefix))

    def delete(self, key: str) -> None:
        """Remove ``key``; S3 treats deleting a missing key as success, which keeps retries safe."""
        with self._errors(key, "delete"):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.base}{key}"

    # ---- server-side copies and managed transfers for big files

    def copy(self, src_key: str, dst_key: str) -> str:
        """Server-side copy: one ``CopyObject``; S3 refuses that above 5 GiB (``InvalidRequest``),
        and then boto3's managed multipart copy takes over."""
        etag = self._copy_object(src_key, dst_key, too_big_ok=True)
        return etag if etag is not None else self._managed_copy(src_key, dst_key)

    def copy_prefix(self, src_prefix: str, dst_prefix: str) -> builtins.list[str]:
        """Server-side copies: the bytes never leave S3. The listing gives sizes, so objects up to
        5 GiB take a single ``CopyObject`` request and only bigger ones the managed multipart copy."""
        src_prefix = check_prefix(src_prefix)
        dst_prefix = check_prefix(dst_prefix)
        copied = []
        for obj in list(self._objects(src_prefix)):  # listed first: dst may lie under src
            dst = dst_prefix + obj["Key"][len(src_prefix) :]
            if obj["Size"] > _MAX_COPY_OBJECT:
                self._managed_copy(obj["Key"], dst)
            else:
                self._copy_object(obj["Key"], dst)
            copied.append(dst)
        return copied

    def _copy_object(self, src_key: str, dst_key: str, too_big_ok: bool = False) -> str | None:
        """One ``CopyObject``; ``None`` if S3 says the source is too big for it (``too_big_ok``)."""
        source = {"Bucket": self.bucket, "Key": self._key(src_key)}
        target = {"Bucket": self.bucket, "Key": self._key(dst_key)}
        with self._errors(src_key, f"copy to {self.uri(dst_key)}"):
            try:
                response = self.client.copy_object(CopySource=source, **target)
            except ClientError as exc:
                if too_big_ok and exc.response.get("Error", {}).get("Code") == "InvalidRequest":
                    return None
                raise
        return str(response["CopyObjectResult"]["ETag"]).strip('"')

    def _managed_copy(self, src_key: str, dst_key: str) -> str:
        source = {"Bucket": self.bucket, "Key": self._key(src_key)}
        with self._errors(src_key, f"copy to {self.uri(dst_key)}"):
            self.client.copy(source, self.bucket, self._key(dst_key), Config=_TRANSFER)
            return _etag(self.client.head_object(Bucket=self.bucket, Key=self._key(dst_key)))

    def upload_file(self, local: str | Path, key: str) -> str:
        if Path(local).stat().st_size < _TRANSFER.multipart_threshold:
            return self.put_bytes(key, Path(local).read_bytes())
        with self._errors(key, "upload"):
            self.client.upload_file(str(local), self.bucket, self._key(key), Config=_TRANSFER)
            return _etag(self.client.head_object(Bucket=self.bucket, Key=self._key(key)))

    def download_file(self, key: str, local: str | Path) -> Path:
        path = Path(local)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._errors(key, "download"):
            self.client.download_file(self.bucket, self._key(key), str(path), Config=_TRANSFER)
        return path


def _etag(response: dict[str, Any]) -> str:
    return str(response["ETag"]).strip('"')


def _parse_url(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise StoreError(f"invalid S3 store URL {url!r}: expected s3://bucket[/prefix]")
    if not _BUCKET.fullmatch(parts.netloc):
        raise StoreError(f"invalid S3 store URL {url!r}: {parts.netloc!r} is not a valid bucket name")
    return parts.netloc, check_prefix(parts.path.lstrip("/"))


def _make_client() -> Any:
    endpoint = os.environ.get("SLIPWAY_S3_ENDPOINT_URL") or None
    custom = endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    style = os.environ.get("SLIPWAY_S3_ADDRESSING_STYLE") or ("path" if custom else "auto")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    config = Config(s3={"addressing_style": style}, retries={"mode": "standard"}, max_pool_connections=32)
    # Sessions are not thread-safe, so clients are made under a lock; one shared session keeps the
    # parsed service model (~0.1 s per fresh session). Clients themselves are thread-safe.
    with _SESSION_LOCK:
        return _session().client("s3", endpoint_url=endpoint, region_name=region, config=config)


_SESSION_LOCK = threading.Lock()


@functools.cache
def _session() -> boto3.session.Session:
    return boto3.session.Session()
