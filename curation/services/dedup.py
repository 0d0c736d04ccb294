"""Near-duplicate clusters over the whole pool, kept in the database.

Clusters are a property of the pool: every image that enters it (`images.register_image`, by
any door) is hashed and clustered at once against every hashed image, at the pool's k
(`near_dup.DEFAULT_K`). `Image.clustered_at` records that this ran. A cluster is a connected
component of "pHash within k", and its representative is chosen from its members alone
(`near_dup.choose_representative`: most pixels, then source priority, then lowest sha256), so
the same set of images gives the same clusters and representatives in any order.

Job decisions follow the clusters: whenever a cluster forms, grows or merges, the decisions
of its members are reconciled under the same lock (the representative's lose `near_duplicate`,
every other member's gain it and are no longer accepted), and a displaced representative is
recorded as a `ClusterChange` and in the decisions' measurements (`cluster_change`). A job
writes each decision under that lock too (`record_decision`), so no decision is written from
a cluster state that has already changed.

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

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce, Now
from django.utils import timezone

from ..imaging.hashing import from_signed64, hamming, to_signed64
from ..imaging.near_dup import DB_SCHEME, DEFAULT_K, Member, choose_representative
from ..models import (
    ClusterChange,
    Decision,
    DecisionKind,
    DuplicateCluster,
    FilterJob,
    Image,
    SourceItem,
)

CLUSTER_LOCK_KEY = 0x4842_4455_5045  # "HBDUPE": one advisory lock for cluster changes


def hash_fields(phash: int, dhash: int) -> dict[str, int]:
    """The Image columns that hold these (unsigned) hashes: signed values and pHash bands."""
    bands = DB_SCHEME.band_values(phash)
    return {
        "phash": to_signed64(phash),
        "dhash": to_signed64(dhash),
        **{f"phash_b{i}": int(v) for i, v in enumerate(bands)},
    }


def store_hashes(image: Image, phash: int, dhash: int) -> None:
    """Save an image's hashes and bands (its own short transaction, committed on return)."""
    fields = hash_fields(phash, dhash)
    Image.objects.filter(pk=image.pk).update(**fields)
    for name, value in fields.items():
        setattr(image, name, value)


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


NEAR_DUPLICATE = "near_duplicate"
EXACT_DUPLICATE = "exact_duplicate"
# Reasons that come before near_duplicate in a decision's list (the order the stages run in).
_BEFORE = frozenset({"too_small", "aspect_ratio", EXACT_DUPLICATE})


def with_near_duplicate(reasons: Sequence[str], flag: bool) -> list[str]:
    """`reasons` with near_duplicate present iff `flag` (never beside exact_duplicate: the same
    bytes are already rejected as such), at the place the pipeline puts it."""
    out = [r for r in reasons if r != NEAR_DUPLICATE]
    if flag and EXACT_DUPLICATE not in out:
        at = next((i for i, r in enumerate(out) if r not in _BEFORE), len(out))
        out.insert(at, NEAR_DUPLICATE)
    return out


def _representative_of(image_id: int, cluster_id: int | None) -> int:
    if cluster_id is None:
        return image_id
    return DuplicateCluster.objects.values_list("representative_id", flat=True).get(pk=cluster_id)


def assign_cluster(image: Image, k: int = DEFAULT_K) -> DuplicateCluster | None:
    """Cluster `image` against the pool: join it with its near-duplicates (merging their
    clusters), re-choose the representative, reconcile the members' job decisions and record
    a displaced representative. Idempotent; sets `image.clustered_at`.

    Returns the cluster, or None when the image has no near-duplicate in the pool.
    """
    with transaction.atomic():
        _lock()
        image.refresh_from_db(fields=["cluster", "phash", "clustered_at"])
        if image.phash is None:
            raise ValueError(f"image {image.pk} has no hashes yet: store them first")
        neighbours = [i for i, _ in near_duplicates(image, k)]
        now = timezone.now()
        if not neighbours:
            if image.clustered_at is None:
                Image.objects.filter(pk=image.pk).update(clustered_at=now)
                image.clustered_at = now
            return image.cluster
        ids = {image.pk, *neighbours}
        before = dict(Image.objects.filter(pk__in=ids).values_list("id", "cluster_id"))
        cluster_ids = {c for c in before.values() if c is not None}
        # Everyone already in one of those clusters comes along (a merge).
        for pk, c in Image.objects.filter(cluster_id__in=cluster_ids).values_list(
            "id", "cluster_id"
        ):
            before[pk] = c
        ids = set(before)
        old_reps = set(
            DuplicateCluster.objects.filter(pk__in=cluster_ids).values_list(
                "representative_id", flat=True
            )
        )
        # Images alone until now were kept as their own representative, if they had been
        # clustered (a job may have accepted them); the image being clustered now was not.
        old_reps |= set(
            Image.objects.filter(pk__in=ids, cluster__isnull=True, clustered_at__isnull=False)
            .exclude(pk=image.pk)
            .values_list("id", flat=True)
        )
        members = [
            Member(id=pk, pixels=w * h, source_rank=-(priority or 0), sha256=sha)
            for pk, w, h, priority, sha in Image.objects.filter(pk__in=ids).values_list(
                "id", "width", "height", "source__priority", "sha256"
            )
        ]
        rep = choose_representative(members).id
        if cluster_ids:
            cluster = DuplicateCluster.objects.get(pk=min(cluster_ids))
            if cluster.representative_id != rep:
                cluster.representative_id = rep
                cluster.save(update_fields=["representative"])
        else:
            cluster = DuplicateCluster.objects.create(representative_id=rep)
        Image.objects.filter(pk__in=ids).exclude(cluster=cluster).update(cluster=cluster)
        Image.objects.filter(pk=image.pk, clustered_at__isnull=True).update(clustered_at=now)
        merged = sorted(cluster_ids - {cluster.pk})
        if merged:
            Decision.objects.filter(cluster_id__in=merged).update(cluster=cluster)
            ClusterChange.objects.filter(cluster_id__in=merged).update(cluster=cluster)
            DuplicateCluster.objects.filter(pk__in=merged).delete()
        displaced = sorted(old_reps - {rep})
        changes = [
            ClusterChange.objects.create(
                cluster=cluster,
                old_representative_id=old,
                new_representative_id=rep,
                caused_by=image,
                details={"merged_clusters": merged},
            )
            for old in displaced
        ]
        note = None
        if changes:
            note = {
                "changes": [c.pk for c in changes],
                "old_representatives": displaced,
                "new_representative": rep,
                "caused_by": image.pk,
                "at": now.isoformat(),
            }
        changed = _reconcile_decisions(ids, rep, cluster, note)
        for change in changes:
            change.details = {**change.details, "decisions": changed}
            change.save(update_fields=["details"])
        image.cluster = cluster
        image.clustered_at = image.clustered_at or now
        return cluster


def _reconcile_decisions(
    member_ids: set[int], rep: int, cluster: DuplicateCluster, note: Mapping[str, Any] | None
) -> list[int]:
    """Make the job decisions of a cluster's members agree with its representative; returns
    the ids of the decisions whose outcome or reasons changed (their measurements get `note`).

    Only computed decisions change: an `error` stays one, and a curator's override still wins
    (it is kept as it was).
    """
    changed = []
    rows = (
        Decision.objects.filter(item__image_id__in=member_ids)
        .exclude(decision=DecisionKind.ERROR)
        .select_related("item")
        .order_by("id")
    )
    for d in rows:
        reasons = with_near_duplicate(d.reasons, d.item.image_id != rep)
        decision = DecisionKind.REJECTED if reasons else DecisionKind.ACCEPTED
        measurements = dict(d.measurements)
        measurements["cluster_representative"] = rep
        fields = []
        if reasons != d.reasons or decision != d.decision:
            d.reasons, d.decision = reasons, decision
            fields += ["reasons", "decision"]
            changed.append(d.pk)
            if note is not None:
                measurements["cluster_change"] = dict(note)
        if measurements != d.measurements:
            d.measurements = measurements
            fields.append("measurements")
        if d.cluster_id != cluster.pk:
            d.cluster = cluster
            fields.append("cluster")
        if fields:
            d.save(update_fields=fields)
    return changed


def record_decision(
    job: FilterJob,
    item: SourceItem,
    image: Image | None,
    decision: str,
    reasons: list[str],
    measurements: dict[str, Any],
) -> Decision | None:
    """Write a job's decision for `item`, its near-duplicate verdict read from the pool's
    clusters under the clustering lock (so it cannot be stale: any later change of the
    cluster reconciles this decision too). None when the item was decided already."""
    with transaction.atomic():
        cluster_id = None
        if image is not None and decision != DecisionKind.ERROR:
            _lock()
            image.refresh_from_db(fields=["cluster"])
            cluster_id = image.cluster_id
            rep = _representative_of(image.pk, cluster_id)
            reasons = with_near_duplicate(reasons, rep != image.pk)
            decision = DecisionKind.REJECTED if reasons else DecisionKind.ACCEPTED
            if cluster_id is not None:
                measurements = {**measurements, "cluster_representative": rep}
        try:
            with transaction.atomic():
                return Decision.objects.create(
                    job=job,
                    item=item,
                    decision=decision,
                    reasons=reasons,
                    measurements=measurements,
                    cluster_id=cluster_id,
                )
        except IntegrityError:
            return None  # decided by another delivery of this chunk meanwhile: keep that one
