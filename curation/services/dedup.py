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
h shows one of a few hundred probe values in at least one band, so the candidates of a whole
batch come from one statement of four index scans (`band_i = ANY(...)`) and are verified by
Hamming distance in numpy; no stored hash is scanned. This holds at millions of images, and
every worker asks the same database.

Concurrency: a worker commits an image's hashes *before* clustering it, and clustering runs
under one transaction-scoped advisory lock. Of two near-duplicates handled at the same moment
by two workers, whichever clusters second sees the other's committed hash, so both end in one
cluster. The locked section is a few indexed queries per batch, so serialising it costs
little (`benchmarks/ingest.py`). A concurrently stored image that is hashed but not yet
clustered may be pulled into a cluster by another's pass; its own pass then finds the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Max
from django.db.models.functions import Coalesce, Now
from django.utils import timezone

from ..imaging.hashing import from_signed64, to_signed64
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


def assign_cluster(image: Image, *, k: int = DEFAULT_K) -> DuplicateCluster | None:
    """Cluster one image against the pool (see `assign_clusters`); returns its cluster, or
    None when it has no near-duplicate in the pool."""
    assign_clusters([image], k=k)
    return image.cluster


def _candidates(hashes: np.ndarray) -> list[tuple[int, int, int | None]]:
    """(id, signed pHash, cluster id) of every hashed pool image that shows, in some band, a
    probe value of one of `hashes`: a superset of everything within DEFAULT_K of them."""
    probes = [
        np.unique((band.keys(hashes)[:, None] ^ band.masks[None, :]).ravel()).tolist()
        for band in DB_SCHEME.bands
    ]
    if connection.vendor == "postgresql":
        # One statement for the whole batch: four array parameters, a bitmap OR of index scans.
        # Arrays sent as '{...}' text: the client-side binding would quote each value.
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, phash, cluster_id FROM {Image._meta.db_table} WHERE "
                + " OR ".join(f"phash_b{i} = ANY(%s::int[])" for i in range(len(probes))),
                ["{" + ",".join(map(str, values)) + "}" for values in probes],
            )
            return cursor.fetchall()
    rows: dict[int, tuple[int, int, int | None]] = {}
    for i, values in enumerate(probes):  # SQLite: bounded IN lists
        for at in range(0, len(values), 5000):
            qs = Image.objects.filter(**{f"phash_b{i}__in": values[at : at + 5000]})
            for row in qs.values_list("id", "phash", "cluster_id"):
                rows[row[0]] = row
    return list(rows.values())


class _Components:
    """Union-find over image ids and existing clusters (keys ("c", id))."""

    def __init__(self) -> None:
        self.parent: dict[object, object] = {}

    def find(self, x: object) -> object:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: object, b: object) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def members_of(image_ids: Sequence[int]) -> list[Member]:
    """What `choose_representative` looks at, per image: pixels, sha256 and the best priority
    among the sources that hold these bytes (the one that stored them and those whose items
    link to them), so the source rank does not depend on which source imported them first."""
    rows = (
        Image.objects.filter(pk__in=image_ids)
        .annotate(linked=Max("source_items__source__priority"))
        .values_list("id", "width", "height", "sha256", "source__priority", "linked")
    )
    return [
        Member(
            id=pk, pixels=w * h, sha256=sha,
            source_rank=-max((p for p in (own, linked) if p is not None), default=0),
        )
        for pk, w, h, sha, own, linked in rows
    ]


# image id -> (its representative's id, its cluster or None, the change note or None)
Plans = dict[int, tuple[int, DuplicateCluster | None, dict | None]]


def assign_clusters(images: Sequence[Image], *, k: int = DEFAULT_K) -> None:
    """Cluster `images` (hashes stored and committed) against the pool, in one locked pass:
    join each with its near-duplicates (merging their clusters), choose each cluster's
    representative from its members, reconcile the members' job decisions, record every
    displaced representative. Idempotent; sets `clustered_at` and updates each image's
    `cluster`.
    """
    if not images:
        return
    if k > DEFAULT_K:
        raise ValueError(f"the database band scheme covers k <= {DEFAULT_K}, not {k}")
    by_id = {image.pk: image for image in images}
    with transaction.atomic():
        _lock()
        phash = _stored_hashes(by_id)
        batch = sorted(by_id)
        groups, cluster_of = _near_duplicate_groups(batch, phash, k)
        now = timezone.now()
        plans = _plan_clusters(groups, by_id, cluster_of, now)
        for pk in batch:
            plans.setdefault(pk, (pk, None, None))  # alone: its own representative
        changed = _reconcile_decisions(plans)
        _record_displacements(plans, changed, now)
        Image.objects.filter(pk__in=batch, clustered_at__isnull=True).update(clustered_at=now)
        for pk, image in by_id.items():
            _, cluster, _ = plans[pk]
            image.phash = phash[pk]
            image.cluster = cluster
            image.clustered_at = image.clustered_at or now


def _stored_hashes(by_id: Mapping[int, Image]) -> dict[int, int]:
    """The images' pHashes as stored (signed); refused if any has none yet."""
    phash = dict(Image.objects.filter(pk__in=by_id).values_list("id", "phash"))
    unhashed = sorted(pk for pk in by_id if phash.get(pk) is None)
    if unhashed:
        raise ValueError(f"images {unhashed[:10]} have no hashes yet: store them first")
    return phash


def _near_duplicate_groups(
    batch: list[int], phash: Mapping[int, int], k: int
) -> tuple[list[list[object]], dict[int, int | None]]:
    """The batch joined with its near-duplicates in the pool: the groups of more than one
    (image ids, and ("c", id) for a whole existing cluster), and the cluster each candidate
    image was in."""
    hashes = np.array([from_signed64(phash[pk]) for pk in batch], dtype=np.uint64)
    found = _candidates(hashes)
    comps = _Components()
    cluster_of: dict[int, int | None] = {}
    if found:
        ids = np.array([r[0] for r in found], dtype=np.int64)
        cand = np.array([from_signed64(r[1]) for r in found], dtype=np.uint64)
        near = np.bitwise_count(hashes[:, None] ^ cand[None, :]) <= k
        for bi, ci in zip(*np.nonzero(near), strict=True):
            comps.union(batch[bi], int(ids[ci]))
        cluster_of.update((r[0], r[2]) for r in found)
    for pk in batch:
        comps.find(pk)
    # An existing cluster is one node: its members are never read here (it comes along
    # whole), its representative stands for them (it is their minimum by the rule).
    for pk in [x for x in list(comps.parent) if isinstance(x, int)]:
        if cluster_of.get(pk) is not None:
            comps.union(("c", cluster_of[pk]), pk)
    groups: dict[object, list[object]] = {}
    for x in list(comps.parent):
        groups.setdefault(comps.find(x), []).append(x)
    return [g for g in groups.values() if len(g) > 1], cluster_of


@dataclass(frozen=True)
class _PoolView:
    """What planning the groups reads before it writes anything (one query each)."""

    by_id: Mapping[int, Image]  # this batch
    cluster_of: Mapping[int, int | None]  # candidate image -> its cluster before
    reps: dict[int, int]  # existing cluster -> its representative
    clustered_before: dict[int, datetime | None]  # image in no cluster -> its clustered_at
    member_of: dict[int, Member]  # contender -> what choose_representative looks at

    def open(self, pk: int) -> bool:
        return _open(pk, self.by_id, self.cluster_of)


def _open(pk: int, by_id: Mapping[int, Image], cluster_of: Mapping[int, int | None]) -> bool:
    """In this batch or in no cluster yet: the image may become its group's representative
    (a job's new link may have raised its source rank), and its decisions are looked at."""
    return cluster_of.get(pk) is None or pk in by_id


def _plan_clusters(
    groups: list[list[object]],
    by_id: Mapping[int, Image],
    cluster_of: Mapping[int, int | None],
    now: datetime,
) -> Plans:
    """Choose each group's representative and write its cluster (created, kept, or merged
    into the first); the plan of every image whose decisions may have to change."""
    view = _read_pool_view(groups, by_id, cluster_of)
    plans: Plans = {}
    unchanged: list[tuple[list[int], int, int]] = []
    for group in groups:
        images = sorted(x for x in group if isinstance(x, int))
        existing = sorted(x[1] for x in group if isinstance(x, tuple))
        touched = [pk for pk in images if view.open(pk)]
        pool = {view.reps[c] for c in existing} | set(touched)
        rep = choose_representative(view.member_of[pk] for pk in sorted(pool)).id
        if _kept_as_it_was(view, images, existing, rep):
            unchanged.append((touched, rep, existing[0]))
            continue
        cluster, note, touched = _rewrite_cluster(view, images, existing, rep, touched, now)
        plans.update((pk, (rep, cluster, note)) for pk in touched)
    kept = DuplicateCluster.objects.in_bulk([c for _, _, c in unchanged])
    for touched, rep, c in unchanged:
        plans.update((pk, (rep, kept[c], None)) for pk in touched)
    return plans


def _read_pool_view(
    groups: list[list[object]], by_id: Mapping[int, Image], cluster_of: Mapping[int, int | None]
) -> _PoolView:
    """The groups' clusters' representatives, the loose images' `clustered_at`, and the
    contenders' ranks."""
    cluster_ids = {x[1] for g in groups for x in g if isinstance(x, tuple)}
    reps = dict(
        DuplicateCluster.objects.filter(pk__in=cluster_ids).values_list("id", "representative_id")
    )
    loose = [x for g in groups for x in g if isinstance(x, int) and cluster_of.get(x) is None]
    clustered_before = dict(Image.objects.filter(pk__in=loose).values_list("id", "clustered_at"))
    # Who can be the representative: the clusters' representatives and the open images.
    contenders = {
        x for g in groups for x in g if isinstance(x, int) and _open(x, by_id, cluster_of)
    } | set(reps.values())
    member_of = {m.id: m for m in members_of(sorted(contenders))}
    return _PoolView(by_id, cluster_of, reps, clustered_before, member_of)


def _kept_as_it_was(view: _PoolView, images: list[int], existing: list[int], rep: int) -> bool:
    """Nothing changed for this cluster: one existing cluster, its representative the same,
    and every image already in it (no write needed)."""
    return (len(existing) == 1 and view.reps[existing[0]] == rep
            and all(view.cluster_of.get(pk) == existing[0] for pk in images))


def _rewrite_cluster(
    view: _PoolView, images: list[int], existing: list[int], rep: int, touched: list[int],
    now: datetime,
) -> tuple[DuplicateCluster, dict | None, list[int]]:
    """Write the group's cluster; where that displaced a representative, the note of the
    change and every member (all their decisions are looked at; rare: most arrivals leave
    the representative as it was), else no note and the `touched` images."""
    # Earlier representatives: of the clusters, and images alone until now that had been
    # clustered (a job may have accepted them).
    old_reps = {view.reps[c] for c in existing} | {
        pk for pk in images
        if view.cluster_of.get(pk) is None and view.clustered_before.get(pk) is not None
    }
    cluster, merged = _write_cluster(images, existing, rep, view.reps)
    displaced = sorted(old_reps - {rep})
    if not displaced:
        return cluster, None, touched
    newcomers = [pk for pk in images if pk in view.by_id]
    note = {
        "cluster": cluster.pk,
        "old_representatives": displaced,
        "new_representative": rep,
        "caused_by": rep if rep in view.by_id else min(newcomers),
        "merged_clusters": merged,
        "at": now.isoformat(),
    }
    members = list(Image.objects.filter(cluster=cluster).values_list("id", flat=True))
    return cluster, note, members


def _write_cluster(
    images: list[int], existing: list[int], rep: int, reps: Mapping[int, int]
) -> tuple[DuplicateCluster, list[int]]:
    """The group's cluster with `rep` as its representative: the first existing one (the
    others merged into it and deleted) or a new one; returns it and the merged ids."""
    if existing:
        cluster = DuplicateCluster(pk=existing[0], representative_id=rep)
        if reps[existing[0]] != rep:
            DuplicateCluster.objects.filter(pk=cluster.pk).update(representative_id=rep)
    else:
        cluster = DuplicateCluster.objects.create(representative_id=rep)
    Image.objects.filter(pk__in=images).exclude(cluster=cluster).update(cluster=cluster)
    merged = existing[1:]
    if merged:
        Image.objects.filter(cluster_id__in=merged).update(cluster=cluster)
        Decision.objects.filter(cluster_id__in=merged).update(cluster=cluster)
        ClusterChange.objects.filter(cluster_id__in=merged).update(cluster=cluster)
        DuplicateCluster.objects.filter(pk__in=merged).delete()
    return cluster, merged


def _record_displacements(plans: Plans, changed: Mapping[int, list[int]], now: datetime) -> None:
    """A ClusterChange for every representative displaced, with the decisions it changed."""
    notes = {id(n): n for _, _, n in plans.values() if n is not None}
    ClusterChange.objects.bulk_create(
        ClusterChange(
            cluster_id=note["cluster"],
            old_representative_id=old,
            new_representative_id=note["new_representative"],
            caused_by_id=note["caused_by"],
            created_at=now,
            details={"merged_clusters": note["merged_clusters"],
                     "decisions": changed.get(key, [])},
        )
        for key, note in notes.items()
        for old in note["old_representatives"]
    )


def _reconcile_decisions(plans: Plans) -> dict[int, list[int]]:
    """Make the job decisions of these images agree with their cluster's representative
    (`plans`: image id -> (representative id, cluster, change note)). Returns, per note
    (by `id()`), the ids of the decisions whose outcome or reasons changed; their
    measurements get the note as `cluster_change`.

    Only computed decisions change: an `error` stays one, and a curator's override still wins
    (it is kept as it was).
    """
    changed: dict[int, list[int]] = {}
    rows = (
        Decision.objects.filter(item__image_id__in=list(plans))
        .exclude(decision=DecisionKind.ERROR)
        .select_related("item")
        .order_by("id")
    )
    for d in rows:
        image_id = d.item.image_id
        rep, cluster, note = plans[image_id]
        reasons = with_near_duplicate(d.reasons, image_id != rep)
        decision = DecisionKind.REJECTED if reasons else DecisionKind.ACCEPTED
        measurements = dict(d.measurements)
        if cluster is not None:
            measurements["cluster_representative"] = rep
        fields = []
        if reasons != d.reasons or decision != d.decision:
            d.reasons, d.decision = reasons, decision
            fields += ["reasons", "decision"]
            if note is not None:
                changed.setdefault(id(note), []).append(d.pk)
                measurements["cluster_change"] = dict(note)
        if measurements != d.measurements:
            d.measurements = measurements
            fields.append("measurements")
        cluster_id = cluster.pk if cluster is not None else None
        if d.cluster_id != cluster_id:
            d.cluster_id = cluster_id
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
                    job=job, item=item, decision=decision, reasons=reasons,
                    measurements=measurements, cluster_id=cluster_id,
                )
        except IntegrityError:
            return None  # decided by another delivery of this chunk meanwhile: keep that one
