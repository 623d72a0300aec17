"""Which object holds each gallery shard now (JobsTable). A shard's version moves only by a
conditional write, so two concurrent writers can never lose each other's change."""

from __future__ import annotations

from dataclasses import dataclass

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError
from pynamodb.models import Model

from facegate.repositories.base import bind, conflict_from


class GalleryShardItem(Model):
    class Meta:
        table_name = ""

    pk = UnicodeAttribute(hash_key=True)  # GALLERY#<tenant>#<purpose>#<model>
    sk = UnicodeAttribute(range_key=True)  # SHARD#<nnnn>
    version = NumberAttribute()
    object_key = UnicodeAttribute()
    rows = NumberAttribute()


@dataclass(frozen=True)
class ShardPointer:
    shard_no: int
    version: int
    object_key: str
    rows: int


class GalleryRepository:
    def __init__(self, table_name: str, region: str) -> None:
        bind(GalleryShardItem, table_name, region)

    def shards(self, gallery: str) -> list[ShardPointer]:
        return [
            ShardPointer(int(item.sk.removeprefix("SHARD#")), int(item.version), item.object_key, int(item.rows))
            for item in GalleryShardItem.query(f"GALLERY#{gallery}", consistent_read=True)
        ]

    def galleries_of(self, tenant_id: str, scan_prefix: str = "") -> list[str]:
        """Gallery keys of a tenant (a scan: used by erasure only, over a small table of pointers)."""
        seen = set()
        for item in GalleryShardItem.scan(GalleryShardItem.pk.startswith(f"GALLERY#{tenant_id}#{scan_prefix}")):
            seen.add(item.pk.removeprefix("GALLERY#"))
        return sorted(seen)

    def advance(self, gallery: str, pointer: ShardPointer, previous: int | None) -> None:
        """Point the shard at its new object, only if nobody else moved it since `previous`."""
        condition = GalleryShardItem.sk.does_not_exist() if previous is None else GalleryShardItem.version == previous
        try:
            GalleryShardItem(
                pk=f"GALLERY#{gallery}",
                sk=f"SHARD#{pointer.shard_no:04d}",
                version=pointer.version,
                object_key=pointer.object_key,
                rows=pointer.rows,
            ).save(condition=condition)
        except PutError as error:
            raise conflict_from(error) from error
