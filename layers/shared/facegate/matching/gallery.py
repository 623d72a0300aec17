"""Per-tenant, per-purpose galleries for 1:N identification: encrypted, sharded matrices of search keys in
the galleries bucket (behind facegate.matching.ports.ShardObjects), decrypted shards cached in memory across
warm invocations.

A row's id is `<subject_ref>/<template_id>`: the template it was made from. Identification names a
row's subject only while that very template exists and is usable under the subject's current consent
(facegate.matching.entities.usable_templates), so a stale row is never named, even before erasure removes it. Rows
written before this had the bare subject_ref as id (no template): see `parse_row`.

Needs numpy and facesearch (the model layer): only the embedding, matching and deletion functions
import this module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from facegate.core.envelope import pack_sealed, unpack_sealed
from facegate.core.errors import ConflictError
from facegate.core.observability import logger
from facegate.core.ports import Cipher
from facegate.matching.entities import N_SHARDS, PREFIX, ShardPointer, parse_row, row_id
from facegate.matching.ports import ShardObjects, ShardPointers
from facesearch import Match, Shard, ShardCache, remove, shard_for, to_bytes, top_k, unpack, upsert


def _without(shard: Shard, ref: str, doomed: Callable[[str | None], bool]) -> Shard:
    """The shard without the subject's rows whose template `doomed` says must go (the same object if none)."""
    for row in [r for r in shard.ids if parse_row(r)[0] == ref]:
        if doomed(parse_row(row)[1]):
            shard = remove(shard, row)
    return shard


@dataclass
class GalleryStore:
    objects: ShardObjects
    cipher: Cipher
    pointers: ShardPointers
    cache: ShardCache
    dim: int
    n_shards: int = N_SHARDS

    def _context(self, gallery: str, shard_no: int) -> dict[str, str]:
        return {"gallery": gallery, "shard": str(shard_no)}

    def _load(self, gallery: str, pointer: ShardPointer) -> Shard:
        def fetch() -> Shard:
            blob = self.objects.get(pointer.object_key)
            plain = self.cipher.open(unpack_sealed(blob), self._context(gallery, pointer.shard_no))
            # AES-GCM has already authenticated the bytes; skip the shard's own digest check.
            return unpack(plain, verify=False)

        return self.cache.get_or_load(gallery, pointer.shard_no, str(pointer.version), fetch)

    def shards(self, gallery: str) -> list[Shard]:
        """Every shard of a gallery; only those whose version changed are fetched again."""
        return [self._load(gallery, p) for p in self.pointers.shards(gallery)]

    def _write(self, gallery: str, shard_no: int, shard: Shard, current: ShardPointer | None) -> None:
        version = (current.version if current else 0) + 1
        key = f"{PREFIX}{gallery.replace('#', '/')}/{shard_no:04d}-{version:08d}.shard"
        sealed = self.cipher.seal(to_bytes(shard), self._context(gallery, shard_no))
        self.objects.put(key, pack_sealed(sealed))
        try:
            self.pointers.advance(
                gallery, ShardPointer(shard_no, version, key, len(shard)), current.version if current else None
            )
        except ConflictError:
            self.objects.delete(key)
            raise
        if current:
            self.objects.delete(current.object_key)

    def _modify(self, gallery: str, ref: str, change: Any, model: tuple[str, str]) -> bool:
        """Read-modify-write one shard, retrying when another writer got there first."""
        shard_no = shard_for(ref, self.n_shards)
        for _ in range(5):
            current = next((p for p in self.pointers.shards(gallery) if p.shard_no == shard_no), None)
            if current is None and self.dim == 0:
                return False  # a remover (no engine, no dimension) and no shard: nothing to remove
            shard = self._load(gallery, current) if current else Shard.empty(self.dim, *model)
            changed = change(shard)
            if changed is shard:
                return False
            try:
                self._write(gallery, shard_no, changed, current)
                return True
            except ConflictError:
                logger.info("gallery shard raced; retrying", shard=shard_no)
        raise ConflictError("the gallery is busy; retry")

    def add(
        self, gallery: str, ref: str, template_id: str, vector: npt.NDArray[np.float32], model: tuple[str, str]
    ) -> None:
        """Set the subject's one row to this template's search key (replacing any earlier row)."""

        def change(shard: Shard) -> Shard:
            return upsert(_without(shard, ref, lambda _: True), row_id(ref, template_id), vector)

        self._modify(gallery, ref, change, model)

    def discard(self, gallery: str, ref: str, doomed: Callable[[str | None], bool] | None = None) -> int:
        """Remove a subject's rows from a gallery (repacking its shard), or only those whose template
        `doomed(template_id)` says must go; 1 if any was there."""
        model_id, _, model_version = gallery.rsplit("#", 1)[1].partition("@")
        rule = doomed or (lambda _: True)
        return int(self._modify(gallery, ref, lambda shard: _without(shard, ref, rule), (model_id, model_version)))

    def discard_everywhere(
        self,
        tenant_id: str,
        ref: str,
        purposes: list[str] | None,
        doomed: Callable[[str, str | None], bool] | None = None,
    ) -> int:
        """Remove a subject from all of a tenant's galleries (or those of some purposes); with `doomed`
        (purpose, template_id), only the rows it says must go."""
        removed = 0
        for prefix in [f"{p}#" for p in purposes] if purposes else [""]:
            for gallery in self.pointers.galleries_of(tenant_id, prefix):
                purpose = gallery.split("#")[1]
                rule = None if doomed is None else (lambda template_id, p=purpose: doomed(p, template_id))
                removed += self.discard(gallery, ref, rule)
        return removed

    def search(
        self, gallery: str, vector: npt.NDArray[np.float32], k: int, threshold_for: Callable[[int], float]
    ) -> tuple[list[Match], int, float]:
        """Top-k above the threshold that `threshold_for(gallery size)` gives; also the size and threshold."""
        shards = self.shards(gallery)
        size = sum(len(s) for s in shards)
        threshold = threshold_for(size)
        if size == 0:
            return [], 0, threshold
        return top_k(vector, shards, k=k, threshold=threshold), size, threshold
