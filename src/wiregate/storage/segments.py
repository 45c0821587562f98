"""Append-only segment files of checksummed records.

Every record is framed as ``length (u32) | crc32c (u32) | payload``.  A
file is only ever appended to; reading stops at the first record that is
incomplete or fails its checksum (a write torn by a crash), and recovery
truncates the file there, so the next append starts on a clean boundary.
Whole files are deleted once nothing in them is needed; nothing is
rewritten in place.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

from wiregate import _crc

_frame = struct.Struct(">II")
FRAME_OVERHEAD = _frame.size
#: a length above this is a torn or corrupt header, not a record
MAX_RECORD = 1 << 30


def frame(payload: bytes) -> bytes:
    """One record's bytes on disk."""
    return _frame.pack(len(payload), _crc.crc32c(payload)) + payload


def read_records(path: Path) -> tuple[list[bytes], int]:
    """Every intact record of a segment file, and the length they fill.

    Returns:
        The payloads in order, and the byte offset just past the last
        intact record (less than the file size when its tail is torn).
    """
    data = path.read_bytes()
    records = []
    pos = 0
    end = len(data)
    while end - pos >= FRAME_OVERHEAD:
        length, checksum = _frame.unpack_from(data, pos)
        start = pos + FRAME_OVERHEAD
        if length > MAX_RECORD or start + length > end:
            break
        payload = data[start : start + length]
        if _crc.crc32c(payload) != checksum:
            break
        records.append(payload)
        pos = start + length
    return records, pos


def recover_file(path: Path) -> list[bytes]:
    """Read a segment and cut off a torn tail, so appends continue cleanly."""
    records, valid = read_records(path)
    if valid < path.stat().st_size:
        os.truncate(path, valid)
    return records


class SegmentFile:
    """One open segment, appended to with one ``write`` per record.

    Opened unbuffered: a record is in the operating system's hands when
    :meth:`append` returns, so it survives the process being killed;
    :meth:`fsync` makes it survive the machine going down.
    """

    __slots__ = ("path", "fd", "size", "name")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.size = os.fstat(self.fd).st_size

    def append(self, payload: bytes) -> None:
        data = frame(payload)
        written = os.write(self.fd, data)
        while written < len(data):  # only on a full disk or a signal
            written += os.write(self.fd, data[written:])
        self.size += len(data)

    def fsync(self) -> None:
        try:
            os.fsync(self.fd)
        except OSError:
            pass  # closed meanwhile (deleted segment): nothing left to keep

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)

    def delete(self) -> None:
        self.close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def segment_paths(directory: Path, suffix: str) -> Iterator[Path]:
    """The segment files of a directory in name order (names are zero-padded numbers)."""
    if not directory.is_dir():
        return iter(())
    return iter(sorted(p for p in directory.iterdir() if p.name.endswith(suffix)))


def fsync_directory(directory: Path) -> None:
    """Make a directory's new and removed entries durable (new segment files)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
