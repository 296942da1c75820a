"""Per-thread caches of reusable work buffers, one helper for every speed path.

Why: numpy's temporaries of more than ~128 KiB are mmapped and unmapped by glibc's default
allocator on every call, and their page faults cost more than the arithmetic; small buffers
and their prebuilt views (sum-tree levels, block layouts) cost more to build than to use.
So the pool engine, the regret update and the reputer scorer keep theirs between calls, per
thread (no sharing, no locks), a few shapes each. Callers write every element of a buffer
before reading it, so reuse can never change a result.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")

_LOCAL = threading.local()


def cached(slot: str, key: Hashable, make: Callable[[], T], limit: int = 8) -> T:
    """This thread's object for (``slot``, ``key``), built by ``make`` the first time; a slot
    holding ``limit`` objects is emptied first (bounds the memory kept when shapes vary)."""
    caches: dict[str, dict[Hashable, object]] | None = getattr(_LOCAL, "caches", None)
    if caches is None:
        caches = _LOCAL.caches = {}
    cache = caches.get(slot)
    if cache is None:
        cache = caches[slot] = {}
    found = cache.get(key)
    if found is None:
        if len(cache) >= limit:
            cache.clear()
        found = cache[key] = make()
    return found  # type: ignore[return-value]  # one slot holds one type (the caller's)
