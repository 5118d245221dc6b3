"""The ``s3://bucket/prefix`` backend: one object per blob, ``<prefix>/<workspace id>/<blob>``.

Talks to S3 or any S3-compatible store through obstore (signing, multipart uploads, retries);
the endpoint, region and credentials come from the usual ``AWS_*`` variables
(``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, …).
An object appears only when its upload completes, so nobody reads part of one; an upload
abandoned mid-way leaves at most an incomplete multipart upload, which the bucket's lifecycle
rule removes (docs/workspaces.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from blockpilot.errors import ConfigurationError, InternalSignal, WorkspaceError
from blockpilot.workspaces.blobs import CHUNK_BYTES, BlobReader, BlobStorage, BlobWriter

if TYPE_CHECKING:
    from obstore.store import ClientConfig, S3Config

logger = logging.getLogger(__name__)

_END = b""
_QUEUED_CHUNKS = 2  # what a writer may hold ahead of the upload: memory stays bounded


def _store_error(action: str, exc: BaseException) -> WorkspaceError:
    # The exception text may quote request details: keep it in the log only, by type.
    logger.warning("object store %s failed: %s", action, type(exc).__name__)
    return WorkspaceError(
        f"The object store could not {action} the file ({type(exc).__name__}); nothing was written"
        if action == "store"
        else f"The object store could not {action} the file ({type(exc).__name__})"
    )


class _Abort(InternalSignal):
    """Ends an upload's stream so the upload is abandoned, never completed."""


class _S3Writer(BlobWriter):
    """Chunks go through a small queue to one streaming (multipart) upload."""

    def __init__(self, store: Any, key: str) -> None:
        super().__init__()
        import obstore

        self._store = store
        self._key = key
        self._queue: asyncio.Queue[bytes | _Abort] = asyncio.Queue(_QUEUED_CHUNKS)
        # put_async gives a future (not a coroutine); it reads the pieces as they come.
        self._upload: asyncio.Future[Any] = asyncio.ensure_future(
            obstore.put_async(store, key, self._pieces(), chunk_size=5 * CHUNK_BYTES)
        )

    async def _pieces(self) -> AsyncIterator[bytes]:
        while True:
            item = await self._queue.get()
            if isinstance(item, _Abort):
                raise item
            if not item:  # _END: writers never queue an empty chunk
                return
            yield item

    async def _put(self, item: bytes | _Abort) -> None:
        # A failed upload stops reading the queue: notice it rather than wait for ever.
        put = asyncio.ensure_future(self._queue.put(item))
        done, _ = await asyncio.wait({put, self._upload}, return_when=asyncio.FIRST_COMPLETED)
        if put not in done:
            put.cancel()
            self._upload.result()  # raises the upload's error
            raise WorkspaceError("The object store ended the upload early; nothing was written")

    async def _write(self, chunk: bytes) -> None:
        try:
            await self._put(chunk)
        except WorkspaceError:
            raise
        except Exception as exc:
            raise _store_error("store", exc) from None

    async def commit(self) -> None:
        try:
            await self._put(_END)
            await self._upload
        except WorkspaceError:
            raise
        except Exception as exc:
            raise _store_error("store", exc) from None

    async def abort(self) -> None:
        if not self._upload.done():
            with contextlib.suppress(Exception):
                await self._put(_Abort())
        with contextlib.suppress(BaseException):
            await self._upload
        import obstore

        with contextlib.suppress(Exception):
            await obstore.delete_async(self._store, self._key)


class _S3Reader(BlobReader):
    def __init__(self, store: Any, key: str, stream: Any) -> None:
        self._store = store
        self._key = key
        self._stream = stream
        self._iterator = stream.__aiter__()

    async def rewind(self) -> None:
        await self.aclose()
        self._stream = await _get_stream(self._store, self._key)
        self._iterator = self._stream.__aiter__()

    async def read(self) -> bytes:
        try:
            return bytes(await self._iterator.__anext__())
        except StopAsyncIteration:
            return b""
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise _store_error("read", exc) from None

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()


async def _get_stream(store: Any, key: str) -> Any:
    import obstore

    try:
        result = await obstore.get_async(store, key)
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise _store_error("read", exc) from None
    return result.stream(min_chunk_size=CHUNK_BYTES)


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` → (bucket, prefix without slashes at either end)."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ConfigurationError(
            f"BLOCKPILOT_WORKSPACE_URL {url[:200]!r} is not s3://bucket/prefix"
        )
    return parts.netloc, parts.path.strip("/")


class S3BlobStorage(BlobStorage):
    """Blobs as objects in an S3-compatible bucket."""

    def __init__(self, url: str) -> None:
        try:
            from obstore.store import S3Store
        except ImportError:  # pragma: no cover - obstore is a base dependency
            raise ConfigurationError(
                "BLOCKPILOT_WORKSPACE_URL=s3://… needs the obstore package: pip install obstore"
            ) from None
        self.url = url
        bucket, prefix = parse_s3_url(url)
        endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT")
        config: S3Config = {}
        if endpoint:
            config["endpoint"] = endpoint
        client_options: ClientConfig = {
            "allow_http": bool(endpoint and endpoint.startswith("http://"))
        }
        try:
            self._store = S3Store(
                bucket, prefix=prefix or None, config=config, client_options=client_options
            )
        except Exception as exc:
            raise ConfigurationError(
                f"BLOCKPILOT_WORKSPACE_URL {url[:200]!r}: the S3 client could not be set up "
                f"({type(exc).__name__}); check the AWS_* variables"
            ) from None

    @staticmethod
    def _key(workspace_id: str, blob: str) -> str:
        return f"{workspace_id}/{blob}"

    async def writer(self, workspace_id: str, blob: str) -> BlobWriter:
        return _S3Writer(self._store, self._key(workspace_id, blob))

    async def open(self, workspace_id: str, blob: str) -> BlobReader:
        key = self._key(workspace_id, blob)
        return _S3Reader(self._store, key, await _get_stream(self._store, key))

    async def delete(self, workspace_id: str, blob: str) -> None:
        import obstore

        try:
            await obstore.delete_async(self._store, self._key(workspace_id, blob))
        except FileNotFoundError:
            return
        except Exception as exc:
            raise _store_error("delete", exc) from None

    async def blobs_older_than(self, cutoff: datetime) -> AsyncIterator[tuple[str, str]]:
        import obstore

        try:
            async for batch in obstore.list(self._store, chunk_size=1000):
                for meta in batch:
                    workspace_id, _, blob = str(meta["path"]).partition("/")
                    if blob and "/" not in blob and meta["last_modified"] < cutoff:
                        yield workspace_id, blob
        except Exception as exc:
            raise _store_error("list", exc) from None

    async def exists(self, workspace_id: str, blob: str) -> bool:
        import obstore

        try:
            await obstore.head_async(self._store, self._key(workspace_id, blob))
        except FileNotFoundError:
            return False
        except Exception as exc:
            raise _store_error("read", exc) from None
        return True
