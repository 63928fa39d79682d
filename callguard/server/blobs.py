"""The server's blob store: compressed recordings named by their SHA-256.

Content addressing makes uploads idempotent (the same recording sent twice is one file) and
lets anyone check a file against its name. Uploads are resumable: bytes arrive in pieces at
an offset (as tus does), collect in a partial file, and become the blob only when all of
them are there and their SHA-256 is the name; a broken connection resumes from
:meth:`BlobStore.offset`.

:class:`FileBlobStore` keeps files under a directory (a NAS mount in production):
``<root>/ab/cd/<sha256>``, partial uploads in ``<root>/partial/``. The interface is small so
an S3-compatible store can follow.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
from pathlib import Path
from typing import Protocol

from callguard.errors import InputError, ResourceError

_SHA = re.compile(r"^[0-9a-f]{64}$")
MAX_BLOB = 2 * 1024**3  # bytes: a 24-hour call as FLAC is far below this


class BlobError(ResourceError):
    """The blob store cannot read or write (disk full, NAS gone)."""


class BlobRejected(InputError):
    """An upload that cannot be accepted: a bad name, a wrong offset or a wrong digest.
    ``offset`` is where the upload stands now (resume from there)."""

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.offset = offset


def check_name(sha256: str) -> str:
    if not _SHA.match(sha256):
        raise BlobRejected("a blob is named by its SHA-256 in lowercase hex")
    return sha256


class BlobStore(Protocol):
    def exists(self, sha256: str) -> bool: ...
    def size(self, sha256: str) -> int | None: ...
    def offset(self, sha256: str) -> int: ...
    def append(self, sha256: str, offset: int, data: bytes, total: int) -> bool: ...
    def read(self, sha256: str) -> bytes: ...


class FileBlobStore:
    """Blobs as files under ``root`` (created 0700)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        try:
            (root / "partial").mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise BlobError(f"{root}: cannot create the blob store ({exc})") from exc

    def path(self, sha256: str) -> Path:
        check_name(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def _partial(self, sha256: str) -> Path:
        return self.root / "partial" / check_name(sha256)

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def size(self, sha256: str) -> int | None:
        try:
            return self.path(sha256).stat().st_size
        except FileNotFoundError:
            return None

    def offset(self, sha256: str) -> int:
        """How many bytes of an unfinished upload are here (the whole size if finished)."""
        done = self.size(sha256)
        if done is not None:
            return done
        try:
            return self._partial(sha256).stat().st_size
        except FileNotFoundError:
            return 0

    def append(self, sha256: str, offset: int, data: bytes, total: int) -> bool:
        """Add ``data`` at ``offset`` of an upload of ``total`` bytes. Return True when the
        blob is complete and verified. A wrong offset or digest raises
        :class:`BlobRejected` (a wrong digest also discards the partial file)."""
        if not 0 < total <= MAX_BLOB:
            raise BlobRejected(f"a blob must be 1..{MAX_BLOB} bytes")
        if self.exists(sha256):
            return True
        partial = self._partial(sha256)
        try:
            with partial.open("ab") as f:
                # Two desks may upload the same recording (two silent calls of one length
                # compress alike): one writer at a time, across threads and processes.
                fcntl.flock(f.fileno(), fcntl.LOCK_EX)
                if self.exists(sha256):
                    return True
                have = f.seek(0, os.SEEK_END)
                if offset != have:
                    raise BlobRejected(f"the upload stands at {have} bytes, not {offset}", have)
                if have + len(data) > total:
                    raise BlobRejected("more bytes than the upload's length", have)
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
                if have + len(data) < total:
                    return False
                digest = hashlib.sha256()
                with partial.open("rb") as r:
                    for block in iter(lambda: r.read(1 << 20), b""):
                        digest.update(block)
                if digest.hexdigest() != sha256:
                    partial.unlink(missing_ok=True)
                    raise BlobRejected("the bytes do not hash to the blob's name: upload "
                                       "again", 0)
                final = self.path(sha256)
                final.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                partial.replace(final)
                final.chmod(0o400)  # evidence: nobody changes it in place
        except OSError as exc:
            raise BlobError(f"the blob store cannot write: {exc}") from exc
        return True

    def read(self, sha256: str) -> bytes:
        try:
            return self.path(sha256).read_bytes()
        except FileNotFoundError:
            raise BlobRejected("no such blob") from None
        except OSError as exc:
            raise BlobError(f"the blob store cannot read: {exc}") from exc
