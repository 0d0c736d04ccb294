"""Near-duplicate clusters over the whole pool, kept in the database.

Lookup: the pHash's four 16-bit bands are indexed columns (`Image.phash_b0..b3`). By the
pigeonhole scheme of `curation.imaging.near_dup.DB_SCHEME`, any hash within k <= DEFAULT_K of
h shows one of a few hundred probe values in at least one band, so the candidates come from
four index scans (`band_i IN (...)`) and are verified by Hamming distance; no stored hash is
scanned in Python. This holds at millions of images, and every worker asks the same database.

Concurrency: a worker commits an image's hashes *before* clustering it, and clustering runs
under one transaction-scoped advisory lock. Of two near-duplicates handled at the same moment
by two workers, whichever clusters second sees the other's committed hash, so both end in one
cluster. The locked section is a few indexed queries, so serialising it costs little.
"""

from __future__ import annotations

from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce, Now

from ..imaging.hashing import from_signed64, hamming, to_signed64
from ..imaging.near_dup import DB_SCHEME, DEFAULT_K, Member, choose_representative
from ..models import Decision, DuplicateCluster, Image, SourceItem

CLUSTER_LOCK_KEY = 0x4842_4455_5045  # "HBDUPE": one advisory lock for cluster changes


def store_hashes(image: Image, phash: int, dhash: int) -> None:
    """Save an image's hashes and bands (its own short transaction, committed on return)."""
    bands = DB_SCHEME.band_values(phash)
    Image.objects.filter(pk=image.pk).update(
        phash=to_signed64(phash),
        dhash=to_signed64(dhash),
        **{f"phash_b{i}": int(v) for i, v in enumerate(bands)},
    )
    image.phash, image.dhash = to_signed64(phash), to_signed64(dhash)


def near_duplicates(image: Image, k: int = DEFAULT_K) -> list[tuple[int, int]]:
    """(image id, distance) of every other pool image within k of `image`'s pHash."""
    if k > DEFAULT_K:
        raise ValueError(f"the database band scheme covers k <= {DEFAULT_K}, not {k}")
    h = from_signed64(image.phash)
    query = Q()
    for i, values in enumerate(DB_SCHEME.probe_values(h)):
        query |= Q(**{f"phash_b{i}__in": values})
    out = []
    for other_id, other_hash in (
        Image.objects.filter(query).exclude(pk=image.pk).values_list("id", "phash")
    ):
        d = hamming(h, from_signed64(other_hash))
        if d <= k:
            out.append((other_id, d))
    return out


def _lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CLUSTER_LOCK_KEY])
    # SQLite: the IMMEDIATE transaction already holds the database's write lock.


def claim_image(item: SourceItem, image: Image) -> bool:
    """Link a source item to its stored image; True when another item holds the same bytes.

    Under the lock, so of two items with the same bytes exactly one is the original (the one
    linked first), however the workers interleave; a redo of the same item stays original.
    """
    with transaction.atomic():
        _lock()
        SourceItem.objects.filter(pk=item.pk).update(
            image=image, linked_at=Coalesce(F("linked_at"), Now())
        )
        item.image = image
        first = (
            SourceItem.objects.filter(image=image)
            .order_by("linked_at", "id")
            .values_list("id", flat=True)
            .first()
        )
        return first != item.pk


def assign_cluster(image: Image, k: int = DEFAULT_K) -> DuplicateCluster | None:
    """Join `image` with its near-duplicates into one cluster and re-choose its representative.

    Returns the cluster, or None when the image has no near-duplicate in the pool.
    """
    with transaction.atomic():
        _lock()
        image.refresh_from_db(fields=["cluster", "phash"])
        neighbours = [i for i, _ in near_duplicates(image, k)]
        if not neighbours:
            return image.cluster
        ids = {image.pk, *neighbours}
        cluster_ids = set(
            Image.objects.filter(pk__in=ids, cluster__isnull=False).values_list(
                "cluster_id", flat=True
            )
        )
        # Everyone already in one of those clusters comes along (a merge).
        ids |= set(Image.objects.filter(cluster_id__in=cluster_ids).values_list("id", flat=True))
        members = [
            Member(id=pk, pixels=w * h, source_rank=-(priority or 0))
            for pk, w, h, priority in Image.objects.filter(pk__in=ids).values_list(
                "id", "width", "height", "source__priority"
            )
        ]
        representative = choose_representative(members)
        if cluster_ids:
            keep = min(cluster_ids)
            cluster = DuplicateCluster.objects.get(pk=keep)
            cluster.representative_id = representative.id
            cluster.save(update_fields=["representative"])
        else:
            cluster = DuplicateCluster.objects.create(representative_id=representative.id)
        Image.objects.filter(pk__in=ids).update(cluster=cluster)
        merged = cluster_ids - {cluster.pk}
        if merged:
            Decision.objects.filter(cluster_id__in=merged).update(cluster=cluster)
            DuplicateCluster.objects.filter(pk__in=merged).delete()
        image.cluster = cluster
        return cluster
