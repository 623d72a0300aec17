"""Warm-instance cache of decoded shards, keyed by (gallery key, shard number) and tagged with the
etag/digest they were loaded from, so the caller reloads only shards that changed. LRU eviction keeps
the decoded shards within a memory budget.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from facesearch.gallery import Shard, unpack

CacheKey = tuple[str, int]


@dataclass(frozen=True)
class CacheStats:
    """Counters for metrics/logs: hits, loads (misses or changed etags), evictions, bytes held."""

    hits: int
    loads: int
    evictions: int
    entries: int
    nbytes: int
    max_bytes: int


class ShardCache:
    """LRU of decoded shards bounded by `max_bytes` (Shard.nbytes); safe to share between threads."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.max_bytes = max_bytes
        self._entries: OrderedDict[CacheKey, tuple[Shard, str]] = OrderedDict()
        self._nbytes = 0
        self._lock = threading.Lock()
        self._hits = self._loads = self._evictions = 0

    def etag(self, gallery_key: str, shard_no: int) -> str | None:
        """The etag/digest of the cached copy, or None; compare it with the store's current one."""
        with self._lock:
            entry = self._entries.get((gallery_key, shard_no))
            return entry[1] if entry else None

    def get(self, gallery_key: str, shard_no: int, etag: str | None = None) -> Shard | None:
        """The cached shard (marked recently used); None if absent or if `etag` differs from its tag."""
        key = (gallery_key, shard_no)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or (etag is not None and entry[1] != etag):
                return None
            self._entries.move_to_end(key)
            self._hits += 1
            return entry[0]

    def put(self, gallery_key: str, shard_no: int, shard: Shard, etag: str | None = None) -> bool:
        """Cache `shard` under its etag (default: its content digest), evicting least recently used.

        Returns False (and caches nothing) if the shard alone exceeds the budget.
        """
        key = (gallery_key, shard_no)
        tag = etag if etag is not None else shard.digest
        size = shard.nbytes
        with self._lock:
            self._drop(key)
            if size > self.max_bytes:
                return False
            while self._entries and self._nbytes + size > self.max_bytes:
                _, (old, _) = self._entries.popitem(last=False)
                self._nbytes -= old.nbytes
                self._evictions += 1
            self._entries[key] = (shard, tag)
            self._nbytes += size
            return True

    def get_or_load(
        self,
        gallery_key: str,
        shard_no: int,
        etag: str,
        load: Callable[[], bytes | Shard],
    ) -> Shard:
        """The shard for this etag: from cache if the tag matches, else `load()` it (bytes are unpacked
        and digest-verified) and cache it. Concurrent misses may load twice; the last put wins.
        """
        shard = self.get(gallery_key, shard_no, etag)
        if shard is not None:
            return shard
        loaded = load()
        shard = loaded if isinstance(loaded, Shard) else unpack(loaded)
        with self._lock:
            self._loads += 1
        self.put(gallery_key, shard_no, shard, etag)
        return shard

    def invalidate(self, gallery_key: str, shard_no: int | None = None) -> None:
        """Forget one shard, or every shard of a gallery (e.g. after a purpose is erased)."""
        with self._lock:
            keys = [k for k in self._entries if k[0] == gallery_key and shard_no in (None, k[1])]
            for key in keys:
                self._drop(key)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._nbytes = 0

    @property
    def nbytes(self) -> int:
        return self._nbytes

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                self._hits, self._loads, self._evictions, len(self._entries), self._nbytes, self.max_bytes
            )

    def _drop(self, key: CacheKey) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._nbytes -= entry[0].nbytes
