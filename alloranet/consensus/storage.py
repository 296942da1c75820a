"""The few file operations the WAL and signer guard need, with crash points.

Why an interface: the same WAL and signer code must run on real files (fsync, atomic rename)
and on a simulated disk whose crash loses what was not fsynced and may tear the last write.
Every write, fsync and rename first calls the fail-point hook with a label, so a test can crash
the process at exactly the N-th durability step (like CometBFT's ``libs/fail``).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from alloranet.consensus.errors import CrashError

FailPoint = Callable[[str], None]


def no_failpoint(label: str) -> None:
    """The production hook: never crashes."""


class FailPoints:
    """Counts fail-point calls and raises :class:`CrashError` at the chosen one.

    ``crash_at`` is 1-based over all labels (or only those in ``labels`` if given).
    """

    def __init__(self, crash_at: int | None = None, labels: frozenset[str] | None = None) -> None:
        self.crash_at = crash_at
        self.labels = labels
        self.count = 0
        self.seen: list[str] = []

    def __call__(self, label: str) -> None:
        if self.labels is not None and label not in self.labels:
            return
        self.count += 1
        self.seen.append(label)
        if self.crash_at is not None and self.count == self.crash_at:
            self.crash_at = None
            raise CrashError(f"fail point {self.count} ({label})")


class Disk(Protocol):
    def append(self, name: str, data: bytes) -> None: ...
    def fsync(self, name: str) -> None: ...
    def read(self, name: str) -> bytes: ...
    def truncate(self, name: str, size: int) -> None: ...
    def replace_atomic(self, name: str, data: bytes) -> None: ...


class FileDisk:
    """Real files under ``root``: appends via an open descriptor, fsync, atomic rename."""

    def __init__(self, root: Path, failpoint: FailPoint = no_failpoint) -> None:
        self.root = root
        self.failpoint = failpoint
        root.mkdir(parents=True, exist_ok=True)
        self._fds: dict[str, int] = {}
        self._synced: dict[str, int] = {}

    def _fd(self, name: str) -> int:
        fd = self._fds.get(name)
        if fd is None:
            fd = os.open(self.root / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._fds[name] = fd
        return fd

    def append(self, name: str, data: bytes) -> None:
        self.failpoint(f"{name}.write")
        fd = self._fd(name)
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]

    def fsync(self, name: str) -> None:
        self.failpoint(f"{name}.fsync")
        fd = self._fd(name)
        os.fsync(fd)
        self._synced[name] = os.fstat(fd).st_size

    def read(self, name: str) -> bytes:
        try:
            return (self.root / name).read_bytes()
        except FileNotFoundError:
            return b""

    def truncate(self, name: str, size: int) -> None:
        os.truncate(self.root / name, size)
        os.fsync(self._fd(name))
        self._synced[name] = size

    def replace_atomic(self, name: str, data: bytes) -> None:
        tmp = self.root / f"{name}.tmp"
        self.failpoint(f"{name}.write")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            self.failpoint(f"{name}.fsync")
            os.fsync(fd)
        finally:
            os.close(fd)
        self.failpoint(f"{name}.rename")
        old = self._fds.pop(name, None)
        if old is not None:
            os.close(old)
        os.replace(tmp, self.root / name)
        dfd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def crash(self, rng: random.Random) -> None:
        """Simulate power loss for tests: cut each appended file back to its fsynced size plus
        a random torn part of what was written after (the page cache would lose it)."""
        for name in list(self._fds):
            path = self.root / name
            size = path.stat().st_size
            synced = min(self._synced.get(name, 0), size)
            keep = rng.randint(synced, size) if rng.random() < 0.5 else synced
            os.truncate(path, keep)
        self.close()

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


class MemoryDisk:
    """A simulated disk: :meth:`crash` keeps what was fsynced plus a random torn tail."""

    def __init__(self, failpoint: FailPoint = no_failpoint) -> None:
        self.failpoint = failpoint
        self.files: dict[str, bytearray] = {}
        self.synced: dict[str, int] = {}

    def append(self, name: str, data: bytes) -> None:
        self.failpoint(f"{name}.write")
        self.files.setdefault(name, bytearray()).extend(data)

    def fsync(self, name: str) -> None:
        self.failpoint(f"{name}.fsync")
        self.synced[name] = len(self.files.get(name, b""))

    def read(self, name: str) -> bytes:
        return bytes(self.files.get(name, b""))

    def truncate(self, name: str, size: int) -> None:
        del self.files.setdefault(name, bytearray())[size:]
        self.synced[name] = min(self.synced.get(name, 0), size)

    def replace_atomic(self, name: str, data: bytes) -> None:
        self.failpoint(f"{name}.write")
        self.failpoint(f"{name}.fsync")
        self.failpoint(f"{name}.rename")
        self.files[name] = bytearray(data)
        self.synced[name] = len(data)

    def crash(self, rng: random.Random) -> None:
        """Lose unsynced data: keep the synced prefix and a random-length torn tail."""
        for name, data in self.files.items():
            synced = self.synced.get(name, 0)
            keep = rng.randint(synced, len(data)) if rng.random() < 0.5 else synced
            del data[keep:]
