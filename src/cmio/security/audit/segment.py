"""The audit journal's files: pre-zeroed segments of CRC-checked, length-prefixed frames.

A segment is a file ``<journal id>.<first seq>.ajl`` that was filled with zeros and
synced before its first record, so appending a frame overwrites allocated blocks and
one ``pwrite`` on an ``O_DSYNC`` descriptor makes it durable without a metadata update
(one system call, one release of the GIL). The file starts with a header (magic, the
journal id, a random salt, the first sequence number); each frame is::

    length (u32) | crc32(salt | seq | payload) (u32) | seq (u64) | payload

where ``payload`` is the record's ``recorded`` instant, a NUL and its canonical bytes.
A frame whose CRC does not match (a torn write at a crash, a zero region, or a frame
left over from the segment's previous life when it is recycled with a new salt) ends
the segment. The same idea as SQLite's WAL frames (https://www.sqlite.org/fileformat2.html#walformat).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

from cmio.security.audit.template import Canonical

__all__ = [
    "HEADER_SIZE",
    "SUFFIX",
    "Segment",
    "encode",
    "frames_size",
    "journal_directory",
    "read_frames",
    "read_header",
]

MAGIC = b"CMIOAJ01"
SUFFIX = ".ajl"
_HEADER = struct.Struct("<8s40s8sQ")  # magic, journal id (NUL padded), salt, first seq
_FRAME = struct.Struct("<IIQ")
HEADER_SIZE = _HEADER.size


def _crc(salt: bytes, seq: int, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(salt + seq.to_bytes(8, "little")))


def read_header(data: bytes) -> tuple[str, bytes, int] | None:
    """``(journal id, salt, first seq)`` of a segment's first bytes (None: not a segment)."""
    if len(data) < HEADER_SIZE:
        return None
    magic, jid, salt, first = _HEADER.unpack_from(data)
    if magic != MAGIC:
        return None
    return jid.rstrip(b"\0").decode("ascii"), salt, first


def read_frames(
    data: bytes, salt: bytes, first: int, start: int = HEADER_SIZE
) -> tuple[list[tuple[int, Canonical]], int]:
    """The valid frames of ``data`` from offset ``start`` (sequence numbers from ``first``
    on, consecutive) and the offset after the last one."""
    frames: list[tuple[int, Canonical]] = []
    offset, expected, size = start, None, len(data)
    unpack = _FRAME.unpack_from
    while offset + _FRAME.size <= size:
        length, crc, seq = unpack(data, offset)
        end = offset + _FRAME.size + length
        if length == 0 or end > size or seq < first or (expected is not None and seq != expected):
            break
        payload = data[offset + _FRAME.size : end]
        if _crc(salt, seq, payload) != crc:
            break
        recorded, _, body = payload.partition(b"\0")
        frames.append((seq, Canonical(body, recorded.decode("ascii"))))
        offset, expected = end, seq + 1
    return frames, offset


def frames_size(records: Sequence[Canonical]) -> int:
    """The bytes :func:`encode` makes of ``records``."""
    return sum(_FRAME.size + 1 + len(r.recorded) + len(r.data) for r in records)


def journal_directory(repository: object) -> Path | None:
    """Where the audit journal of ``repository`` lives: beside its SQLite file
    (``<file>-audit``); None for other stores (their records commit directly)."""
    if getattr(repository, "dialect", None) != "sqlite":
        return None
    path = getattr(repository, "path", None)
    if not isinstance(path, Path) or str(path) in (":memory:", ""):
        return None
    return path.with_name(path.name + "-audit")


def encode(salt: bytes, seq: int, records: Sequence[Canonical]) -> bytes:
    """The frames of ``records`` numbered from ``seq``."""
    parts: list[bytes] = []
    pack = _FRAME.pack
    for record in records:
        payload = record.recorded.encode("ascii") + b"\0" + record.data
        parts.append(pack(len(payload), _crc(salt, seq, payload), seq))
        parts.append(payload)
        seq += 1
    return b"".join(parts)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Segment:
    """One open, locked segment this process appends to (see the module docstring)."""

    def __init__(self, path: Path, fd: int, sync_fd: int, size: int) -> None:
        self.path, self.fd, self.size = path, fd, size
        self.sync_fd = sync_fd
        """Opened with ``O_DSYNC``: a write returns once it is on disk."""
        self.jid, self.salt, self.first = "", b"", 0
        self.offset = HEADER_SIZE
        """Where the next frame goes (everything before it is durable)."""
        self.next_seq = 0

    @classmethod
    def create(cls, directory: Path, size: int) -> Segment:
        """A fresh zero-filled segment, locked, not yet named for a journal (a spare)."""
        tmp = directory / f".{os.getpid()}-{os.urandom(6).hex()}.tmp"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            chunk = b"\0" * min(size, 1 << 20)
            written = 0
            while written < size:
                written += os.pwrite(fd, chunk[: size - written], written)
            os.fsync(fd)
            sync_fd = os.open(tmp, os.O_WRONLY | os.O_DSYNC)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return cls(tmp, fd, sync_fd, size)

    def start(self, directory: Path, jid: str, first: int) -> None:
        """Name this spare (or recycled) segment for journal ``jid`` from ``first`` on: a new
        salt invalidates whatever frames it held; durable (file and directory) on return."""
        self.jid, self.salt, self.first = jid, os.urandom(8), first
        self.offset, self.next_seq = HEADER_SIZE, first
        header = _HEADER.pack(MAGIC, jid.encode("ascii"), self.salt, first)
        os.pwrite(self.sync_fd, header + _FRAME.pack(0, 0, 0), 0)  # no stale first frame
        path = directory / f"{jid}.{first:012d}{SUFFIX}"
        os.replace(self.path, path)
        self.path = path
        _fsync_dir(directory)

    def room(self, nbytes: int) -> bool:
        """Whether ``nbytes`` more fit."""
        return self.offset + nbytes <= self.size

    def append(self, records: Sequence[Canonical]) -> int:
        """Write ``records`` durably (one ``pwrite`` on the ``O_DSYNC`` descriptor); their
        last seq. The caller checked :meth:`room` for :func:`encode`'s size."""
        data = encode(self.salt, self.next_seq, records)
        if not self.room(len(data)):
            raise ValueError("the segment is full")
        written = os.pwrite(self.sync_fd, data, self.offset)
        if written != len(data):
            raise OSError(f"short audit journal write ({written} of {len(data)} bytes)")
        self.offset += len(data)
        self.next_seq += len(records)
        return self.next_seq - 1

    def frames(self, start: int, end: int) -> tuple[list[tuple[int, Canonical]], int]:
        """This segment's frames between byte offsets ``start`` and ``end`` (``start`` at a
        frame boundary) and the offset after the last one."""
        data = os.pread(self.fd, end - start, start)
        frames, used = read_frames(data, self.salt, self.first, 0)
        return frames, start + used

    def close(self, unlink: bool = False) -> None:
        """Release the segment (deleting its file first when ``unlink``)."""
        if unlink:
            with contextlib.suppress(OSError):
                self.path.unlink()
        for fd in (self.sync_fd, self.fd):
            with contextlib.suppress(OSError):
                os.close(fd)
