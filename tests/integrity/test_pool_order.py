"""Order-independent deduplication: the same images give the same clusters and the same
representative of each, whatever the order, and whatever two concurrent workers do."""

from __future__ import annotations

import hashlib
import io
import random
import threading

import pytest

from curation.models import ClusterChange, DuplicateCluster, Image
from curation.services import dedup, register_image
from tests.threads import run_threads

from .test_pool_ingest import near_duplicates_of_astronaut, other_photos, pool_partition

pytestmark = pytest.mark.django_db(transaction=True)


def corpus() -> list[bytes]:
    from PIL import Image as PILImage
    from skimage import data

    from .test_pool_ingest import jpeg

    camera = PILImage.fromarray(data.camera()).convert("RGB")
    files = list(near_duplicates_of_astronaut().values()) + list(other_photos().values())
    # a second group whose two largest members tie on pixels too
    files += [jpeg(camera, 60), jpeg(camera.resize((400, 400)), 85)]
    return files


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def snapshot() -> tuple[set[frozenset[str]], dict[frozenset[str], str]]:
    """The pool's clusters (as sets of sha256) and each cluster's representative's sha256."""
    reps = {}
    for cluster in DuplicateCluster.objects.select_related("representative"):
        members = frozenset(cluster.members.values_list("sha256", flat=True))
        reps[members] = cluster.representative.sha256
    return pool_partition(), reps


def empty_pool() -> None:
    ClusterChange.objects.all().delete()
    Image.objects.update(cluster=None)
    DuplicateCluster.objects.all().delete()
    Image.objects.all().delete()


def register_all(files: list[bytes]) -> None:
    for data in files:
        register_image(io.BytesIO(data))


def test_every_order_gives_the_same_clusters_and_representatives():
    files = corpus()
    orders = [files, files[::-1]]
    for seed in (1, 2, 3):
        shuffled = files[:]
        random.Random(seed).shuffle(shuffled)
        orders.append(shuffled)
    results = []
    for order in orders:
        empty_pool()
        register_all(order)
        results.append(snapshot())
    assert all(r == results[0] for r in results), results
    partition, reps = results[0]
    astronaut = frozenset(sha(d) for d in near_duplicates_of_astronaut().values())
    assert astronaut in partition
    # the rule: most pixels, then source priority, then the lowest sha256
    big = near_duplicates_of_astronaut()
    tied = [sha(big["full.jpg"]), sha(big["recompressed.jpg"])]  # both 1024 x 1024
    assert reps[astronaut] == min(tied)


def test_two_concurrent_workers_give_the_serial_outcome():
    files = corpus()
    register_all(files)
    serial = snapshot()
    for split in (False, True):
        empty_pool()
        # both workers import everything (racing on the same bytes) in opposite orders, or
        # each imports every other file; all start at the same moment
        lanes = [files, files[::-1]] if not split else [files[0::2], files[1::2][::-1]]
        barrier = threading.Barrier(len(lanes))

        def lane(items, barrier=barrier):
            barrier.wait(timeout=60)
            register_all(items)

        errors = run_threads(lane, lanes, timeout=300)
        assert not errors, errors
        assert snapshot() == serial
        assert Image.objects.filter(clustered_at__isnull=True).count() == 0


def _row(name: str, phash: int, side: int) -> Image:
    return Image.objects.create(
        file=f"x/{name}.jpg", sha256=hashlib.sha256(name.encode()).hexdigest(), width=side,
        height=side, format="JPEG", **dedup.hash_fields(phash, 0),
    )


def test_a_chain_merges_in_any_order():
    """a-b and b-c are within k, a-c is not: one cluster, whatever the order (a merge when b
    comes last), with the same representative."""
    hashes = {"a": 0, "b": (1 << 8) - 1, "c": (1 << 16) - 1}  # 8 bits apart, a-c 16
    outcomes = set()
    for order in ("abc", "acb", "bca", "cab", "cba"):
        empty_pool()
        rows = {n: _row(n, hashes[n], side=500) for n in "abc"}
        for n in order:
            dedup.assign_cluster(rows[n])
        partition, reps = snapshot()
        assert DuplicateCluster.objects.count() == 1
        outcomes.add((frozenset(partition), tuple(sorted(reps.items()))))
    assert len(outcomes) == 1
