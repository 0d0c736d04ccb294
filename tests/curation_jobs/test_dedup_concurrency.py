"""Near-duplicates handled at the same moment by different workers end in one cluster."""

import io
import threading

import numpy as np
import pytest
from PIL import Image as PILImage

from curation.imaging.hashing import hash_image
from curation.models import DuplicateCluster
from curation.services import dedup, register_image
from tests.threads import run_threads

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

N_GROUPS, COPIES = 8, 3


def group_images(group: int) -> list[bytes]:
    """A distinct smooth picture per group, and resized/recompressed copies of it."""
    rng = np.random.default_rng(group)
    small = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    base = PILImage.fromarray(small).resize((512, 512), PILImage.BICUBIC)
    out = []
    for copy in range(COPIES):
        side = 512 - 96 * copy
        buf = io.BytesIO()
        base.resize((side, side)).save(buf, format="JPEG", quality=90 - 10 * copy)
        out.append(buf.getvalue())
    return out


def test_simultaneous_near_duplicates_end_in_one_cluster_per_group():
    work = [(g, data) for g in range(N_GROUPS) for data in group_images(g)]
    # every copy of a group goes to a different thread, all released at once
    lanes = [work[i::COPIES] for i in range(COPIES)]
    barrier = threading.Barrier(len(lanes))
    images: dict[int, list[int]] = {g: [] for g in range(N_GROUPS)}

    def lane(items):
        for group, data in items:
            image, _ = register_image(io.BytesIO(data))
            h = hash_image(io.BytesIO(data))
            dedup.store_hashes(image, h.phash, h.dhash)
            barrier.wait(timeout=60)
            dedup.assign_cluster(image)
            images[group].append(image.pk)

    errors = run_threads(lane, lanes, barrier=barrier, timeout=300)
    assert not errors, errors

    from curation.models import Image

    clusters = {}
    for group, ids in images.items():
        found = set(Image.objects.filter(pk__in=ids).values_list("cluster_id", flat=True))
        assert len(found) == 1 and None not in found, (group, found)
        clusters[group] = found.pop()
        rep = DuplicateCluster.objects.get(pk=clusters[group]).representative
        assert rep.width == 512  # the highest resolution is kept
    assert len(set(clusters.values())) == N_GROUPS
    assert DuplicateCluster.objects.count() == N_GROUPS
