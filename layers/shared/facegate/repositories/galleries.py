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


class GalleryIndexItem(Model):
    """One item per gallery of a tenant, so erasure finds a tenant's galleries by key, not by scanning."""

    class Meta:
        table_name = ""

    pk = UnicodeAttribute(hash_key=True)  # GALLERIES#<tenant>
    sk = UnicodeAttribute(range_key=True)  # <purpose>#<model>


@dataclass(frozen=True)
class ShardPointer:
    shard_no: int
    version: int
    object_key: str
    rows: int


class GalleryRepository:
    def __init__(self, table_name: str, region: str) -> None:
        bind(GalleryShardItem, table_name, region)
        bind(GalleryIndexItem, table_name, region)

    def shards(self, gallery: str) -> list[ShardPointer]:
        return [
            ShardPointer(int(item.sk.removeprefix("SHARD#")), int(item.version), item.object_key, int(item.rows))
            for item in GalleryShardItem.query(f"GALLERY#{gallery}", consistent_read=True)
        ]

    def galleries_of(self, tenant_id: str, prefix: str = "") -> list[str]:
        """Gallery keys of a tenant, optionally of one purpose (`prefix` = "<purpose>#")."""
        condition = GalleryIndexItem.sk.startswith(prefix) if prefix else None
        return [f"{tenant_id}#{item.sk}" for item in GalleryIndexItem.query(f"GALLERIES#{tenant_id}", condition)]

    def advance(self, gallery: str, pointer: ShardPointer, previous: int | None) -> None:
        """Point the shard at its new object, only if nobody else moved it since `previous`."""
        condition = GalleryShardItem.sk.does_not_exist() if previous is None else GalleryShardItem.version == previous
        if previous is None:  # a new shard, maybe a new gallery: make sure the tenant's index names it
            tenant_id, rest = gallery.split("#", 1)
            GalleryIndexItem(pk=f"GALLERIES#{tenant_id}", sk=rest).save()
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
