"""Taking images out of the pool for good (takedown requests, `rights`): the rows, their
near-duplicate clusters, the cached contact sheets that drew them, and their stored files.

The apps above delete their own rows that point at the images first (annotation's queues,
leases, ratings and reviews; releases' items); `remove_images` then deletes the pool rows in
one transaction under the clustering lock: each cluster they were in is split into what stays
connected without them (a removed image may have been the only link), each part with its
representative by the usual rule (`near_dup.choose_representative`), a member left alone out
of any cluster, and the members' job decisions are reconciled as after any cluster change. The
source records that linked to an image keep their rows (the source still lists them) with no
image; an admission check of the app above keeps the bytes from coming back.

Files are deleted after the rows are committed (`delete_stored`): a storage that fails then
leaves a file the caller deletes on its next pass, never a row without its file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from django.core.files.storage import default_storage
from django.db import transaction

from ..imaging.hashing import from_signed64
from ..imaging.near_dup import DEFAULT_K, choose_representative
from ..models import (
    Decision,
    DuplicateCluster,
    FilterJob,
    Image,
    SourceItem,
    image_upload_to,
)
from . import dedup
from .contact_sheets import sheet_dir


@dataclass
class PoolRemoval:
    """What `remove_images` found and did, per image id: [{"place", "what", "done"}]; and the
    stored file names to delete once committed."""

    places: dict[int, list[dict[str, str]]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


def stored_name(sha256: str, fmt: str) -> str:
    """The content-addressed file name of these bytes in the store."""
    return image_upload_to(Image(sha256=sha256, format=fmt), "")


def remove_images(image_ids: Sequence[int]) -> PoolRemoval:
    """Delete these pool images (rows above them must be gone already); returns what was done.
    Ids no longer in the pool are skipped. Call `delete_stored(outcome.files)` after commit."""
    out = PoolRemoval()
    with transaction.atomic():
        dedup._lock()
        images = list(Image.objects.filter(pk__in=image_ids).select_related("source"))
        if not images:
            return out
        ids = [image.pk for image in images]
        for image in images:
            out.places[image.pk] = [{
                "place": "pool",
                "what": f"image {image.pk} ({image.original_path or image.sha256[:12]}), "
                        f"source {image.source.name if image.source else '-'}",
                "done": "row deleted",
            }]
            out.files.append(image.file.name or stored_name(image.sha256, image.format))
        _record_links(ids, out)
        _forget_sheets(ids, out)
        clusters = sorted({image.cluster_id for image in images if image.cluster_id})
        for image in images:
            if image.cluster_id:
                out.places[image.pk].append({
                    "place": "near-duplicate cluster",
                    "what": f"cluster {image.cluster_id}",
                    "done": "left the cluster",
                })
        # The clusters they represent point elsewhere first (the representative is PROTECTed).
        Image.objects.filter(pk__in=ids).update(cluster=None)
        _recluster(clusters, removed=set(ids))
        Image.objects.filter(pk__in=ids).delete()
    return out


def _record_links(ids: list[int], out: PoolRemoval) -> None:
    rows = SourceItem.objects.filter(image_id__in=ids).select_related("source")
    for item in rows.order_by("id"):
        out.places[item.image_id].append({
            "place": "source record",
            "what": f"{item.source.name}:{item.path}",
            "done": "unlinked (the record stays; its bytes are refused at every door)",
        })


def _forget_sheets(ids: list[int], out: PoolRemoval) -> None:
    """Cached contact sheets of jobs that decided these images are deleted (drawn again on
    demand, without the pool's copy)."""
    jobs = (
        Decision.objects.filter(item__image_id__in=ids)
        .values_list("item__image_id", "job_id")
        .distinct()
    )
    seen: dict[int, FilterJob] = {}
    for image_id, job_id in jobs:
        job = seen.setdefault(job_id, FilterJob(pk=job_id))
        folder = sheet_dir(job)
        sheets = sorted(folder.glob("*.png")) if folder.is_dir() else []
        for sheet in sheets:
            sheet.unlink(missing_ok=True)
        out.places[image_id].append({
            "place": "filter job",
            "what": f"job {job_id}",
            "done": f"decision kept; {len(sheets)} cached contact sheet(s) deleted",
        })


def _recluster(cluster_ids: Iterable[int], *, removed: set[int]) -> None:
    """Each cluster without the removed images, as the connected components of "pHash within
    the pool's k" among the members left (a removed image may have been the only link): the
    first component of two or more keeps the cluster, any other gets a new one, a member left
    alone leaves it; each has its representative by the usual rule, and the members'
    decisions follow."""
    plans: dedup.Plans = {}
    for cluster in DuplicateCluster.objects.filter(pk__in=list(cluster_ids)).order_by("id"):
        rows = list(
            Image.objects.filter(cluster=cluster).exclude(pk__in=removed)
            .order_by("id").values_list("id", "phash")
        )
        kept = False
        for group in _components(rows):
            if len(group) == 1:
                Image.objects.filter(pk=group[0]).update(cluster=None)
                plans[group[0]] = (group[0], None, None)
                continue
            rep = choose_representative(dedup.members_of(group)).id
            if kept:
                target = DuplicateCluster.objects.create(representative_id=rep)
            else:
                target, kept = cluster, True
                DuplicateCluster.objects.filter(pk=cluster.pk).update(representative_id=rep)
                cluster.representative_id = rep
            Image.objects.filter(pk__in=group).update(cluster=target)
            plans.update((pk, (rep, target, None)) for pk in group)
        if not kept:
            cluster.delete()
    dedup._reconcile_decisions(plans)


def _components(rows: list[tuple[int, int | None]]) -> list[list[int]]:
    """Connected components of "pHash within DEFAULT_K" over (id, signed pHash) rows (a
    cluster's members: few, so every pair is compared)."""
    ids = [pk for pk, _ in rows]
    hashes = np.array([from_signed64(h) if h is not None else 0 for _, h in rows],
                      dtype=np.uint64)
    parent = list(range(len(ids)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    if len(ids) > 1:
        near = np.bitwise_count(hashes[:, None] ^ hashes[None, :]) <= DEFAULT_K
        for i, j in zip(*np.nonzero(np.triu(near, 1)), strict=True):
            parent[find(int(i))] = find(int(j))
    groups: dict[int, list[int]] = {}
    for i, pk in enumerate(ids):
        groups.setdefault(find(i), []).append(pk)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: g[0])


def delete_stored(names: Iterable[str]) -> list[str]:
    """Delete these stored files (content-addressed names); returns the ones that were there."""
    deleted = []
    for name in names:
        if name and default_storage.exists(name):
            default_storage.delete(name)
            deleted.append(name)
    return deleted
