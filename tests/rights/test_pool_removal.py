"""curation.services.removal on its own: a cluster whose removed member was the only link
between the others splits into what stays connected, with representatives and the members'
job decisions as the pool's rules give them."""

from __future__ import annotations

import pytest

from curation.models import (
    Decision,
    DecisionKind,
    DuplicateCluster,
    FilterJob,
    Image,
    Source,
    SourceItem,
)
from curation.services import dedup
from curation.services.removal import remove_images

pytestmark = pytest.mark.django_db(transaction=True)


def pooled(name: str, phash: int, pixels: int) -> Image:
    """A pool row with the given pHash (the clustering reads hashes, not pixels)."""
    image = Image.objects.create(
        file=f"images/{name}.png", sha256=name.ljust(64, "0"), width=pixels, height=1,
        format="PNG", original_path=f"{name}.png", **dedup.hash_fields(phash, 0),
    )
    return image


def test_removing_the_link_of_a_chain_splits_its_cluster():
    # a-b 8 bits apart, b-c 8 bits, a-c 16 (beyond the pool's 10); d a near twin of c
    a = pooled("a", 0, 100)
    b = pooled("b", (1 << 8) - 1, 400)  # the most pixels: the representative
    c = pooled("c", (1 << 16) - 1, 200)
    d = pooled("d", (1 << 16) - 2, 50)
    dedup.assign_clusters([a, b, c, d])
    cluster = DuplicateCluster.objects.get()
    assert cluster.representative_id == b.pk and cluster.members.count() == 4
    source = Source.objects.create(name="s")
    job = FilterJob.objects.create(source=source)
    decisions = {}
    for image in (a, c, d):
        item = SourceItem.objects.create(source=source, path=image.original_path, image=image)
        decisions[image.pk] = dedup.record_decision(job, item, image, DecisionKind.ACCEPTED,
                                                    [], {})
    assert all(d.decision == DecisionKind.REJECTED for d in decisions.values())

    outcome = remove_images([b.pk])
    assert outcome.files == ["images/b.png"]
    assert [p["place"] for p in outcome.places[b.pk]] == ["pool", "near-duplicate cluster"]
    assert not Image.objects.filter(pk=b.pk).exists()
    a.refresh_from_db()
    c.refresh_from_db()
    d.refresh_from_db()
    assert a.cluster_id is None  # alone now
    assert c.cluster_id == d.cluster_id == cluster.pk
    assert DuplicateCluster.objects.get().representative_id == c.pk  # more pixels than d
    got = {pk: Decision.objects.get(pk=dec.pk) for pk, dec in decisions.items()}
    assert got[a.pk].decision == DecisionKind.ACCEPTED and got[a.pk].reasons == []
    assert got[c.pk].decision == DecisionKind.ACCEPTED
    assert got[d.pk].decision == DecisionKind.REJECTED
    assert got[d.pk].reasons == ["near_duplicate"]
