"""Issue #10 on the release side, through `release build` on PostgreSQL: the version promise
over every earlier version (finding 3), images with open flags (finding 6), hashes and
clusters verified and consensus refreshed before the build (release side of findings 1 and 4).
"""

from __future__ import annotations

import io
import json
import threading
import time

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from annotation import services
from annotation.models import ConsensusLabel, ReviewItem
from annotation.services.quality import refresh_statistics
from annotation.services.review import decide
from curation.models import DuplicateCluster, Image
from modeling.models import Release, ReleaseItem
from modeling.services import releases
from tests.quality.conftest import SimRater, rate_until_done

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _eager(eager_celery):
    """Every build here runs in-process."""


def rated(make_project, n: int, *, refresh: bool = True, raters=("a", "b", "c"), flag=None):
    """A project of `n` images rated by three simulated raters (overlap 2); `flag` = a reason:
    the first rater flags the first image it is given instead of rating it."""
    project, images, users = make_project(n, overlap=2, raters=list(raters))
    flagged = None
    if flag:
        task = services.next_task(project, users[raters[0]])
        services.skip_assignment(task.pk, users[raters[0]], flag)
        flagged = task.image_id
    for i, name in enumerate(raters):
        rate_until_done(project, users[name], SimRater("careful", seed=i))
    if refresh:
        refresh_statistics(project)
    return project, images, flagged


def build(name: str, version: str, out, *args: str) -> tuple[Release, dict, str, str]:
    stdout = io.StringIO()
    call_command("release", "build", name, "--version", version, "--images", "none",
                 "--formats", "parquet", "--out", str(out), "--wait", *args,
                 stdout=stdout, stderr=io.StringIO())
    release = Release.objects.get(name=name, version=version)
    manifest = json.loads((out / "manifest.json").read_text())
    return release, manifest, (out / "datasheet.md").read_text(), stdout.getvalue()


def split_of(release: Release) -> dict[int, str]:
    return dict(ReleaseItem.objects.filter(release=release).values_list("image_id", "split"))


def plant_cluster(*image_ids: int) -> DuplicateCluster:
    """Put images in one near-duplicate cluster, as the pool's clustering would after a new
    near-copy joined them (the cluster grew)."""
    cluster = DuplicateCluster.objects.create(representative_id=image_ids[0])
    Image.objects.filter(pk__in=image_ids).update(cluster=cluster, clustered_at=timezone.now())
    return cluster


def test_a_grown_test_cluster_never_moves_trained_images_into_test(make_project, tmp_path,
                                                                   client):
    project, _, _ = rated(make_project, 30)
    v1, *_ = build("hb", "1.0", tmp_path / "v1", "--projects", project.name,
                   "--split", "train=0.5,val=0.1,test=0.4")
    s1 = split_of(v1)
    test = sorted(i for i, s in s1.items() if s == "test")
    trained = sorted(i for i, s in s1.items() if s != "test")
    assert test and len(trained) >= 3
    # Re-clustering merged a 1.0 test image with three images 1.0 trained on.
    anchor, dragged = test[0], trained[:3]
    cluster = plant_cluster(anchor, *dragged)

    v2, manifest, sheet, output = build("hb", "1.1", tmp_path / "v2", "--projects", project.name)
    s2 = split_of(v2)
    assert all(s2[i] == "test" for i in test)  # 1.0's test set stays in test
    assert not [i for i in trained if s2.get(i) == "test"]  # nothing 1.0 trained on
    # The three are withheld from 1.1 (in train they would leak into their cluster's test
    # image), and listed where a reader looks.
    assert not set(dragged) & set(s2)
    withheld = {w["image_id"]: w for w in manifest["withheld"]}
    assert set(withheld) == set(dragged)
    assert all(w["cluster"] == cluster.pk and w["earlier_split"] in ("train", "val")
               for w in withheld.values())
    assert manifest["counts"]["images"] == 30 - 3
    assert "Withheld" in sheet and all(str(i) in sheet for i in dragged)
    assert any("withheld" in w for w in v2.warnings) and "withheld" in output
    assert "warning: 3 image(s) withheld" in output
    services.add_member(project, "res", "researcher", password="pw-123456")
    assert client.login(username="res", password="pw-123456")
    assert "3 image(s) withheld" in client.get("/releases/").content.decode()
    # The split check is computed from what was written, never assumed.
    assert manifest["checks"]["straddling_clusters"] == 0
    assert manifest["checks"]["trained_before_now_in_test"] == 0
    assert manifest["checks"]["earlier_test_now_in_test"] == len(test)


def test_the_promise_holds_over_every_earlier_version_not_only_the_last(
    make_project, tmp_path
):
    p, _, _ = rated(make_project, 20, raters=("a", "b", "c"))
    q, _, _ = rated(make_project, 12, raters=("d", "e", "f"))
    v1, *_ = build("hb", "1", tmp_path / "v1", "--projects", p.name,
                   "--split", "train=0.4,val=0.1,test=0.5")
    v2, *_ = build("hb", "2", tmp_path / "v2", "--projects", q.name)  # p's images are not in 2
    v3, manifest, sheet, _ = build("hb", "3", tmp_path / "v3", "--projects", f"{p.name},{q.name}",
                                   "--split", "train=0.9,test=0.1", "--seed", "5")
    s1, s2, s3 = split_of(v1), split_of(v2), split_of(v3)
    assert all(s3[i] == "test" for i, s in s1.items() if s == "test")
    assert all(s3[i] != "test" for i, s in s1.items() if s != "test")
    earlier_test = {i for i, s in (*s1.items(), *s2.items()) if s == "test"}
    assert manifest["checks"]["earlier_test_now_in_test"] == len(earlier_test)
    # test is far above 10 %: said in the manifest, the datasheet and the release's warnings
    assert any("test" in w and "points" in w for w in manifest["warnings"])
    assert "points" in sheet and v3.warnings == manifest["warnings"]


def test_an_image_with_an_open_flag_is_not_released(make_project, tmp_path):
    project, _, flagged = rated(make_project, 10, flag="broken")
    assert ConsensusLabel.objects.filter(project=project, image_id=flagged).exists()
    release, manifest, sheet, _ = build("fl", "1", tmp_path / "f1", "--projects", project.name)
    assert flagged not in split_of(release)
    assert manifest["excluded"] == {"open_flag": [flagged], "reviewer_excluded": []}
    assert manifest["counts"]["images"] == 9
    assert "open flag" in sheet and str(flagged) in sheet

    # Reviewed and accepted: the flag is closed, the next version holds the image.
    review = ReviewItem.objects.get(project=project, image_id=flagged)
    reviewer = project.memberships.first().user
    decide(review, reviewer, "accept")
    release2, manifest2, _, _ = build("fl", "2", tmp_path / "f2", "--projects", project.name)
    assert flagged in split_of(release2) and manifest2["excluded"]["open_flag"] == []


def test_hashes_clusters_and_consensus_are_made_good_before_the_build(make_project, tmp_path):
    # Rated, never refreshed (no beat, nobody pressed "Refresh statistics").
    project, images, _ = rated(make_project, 8, refresh=False)
    Image.objects.filter(pk__in=[i.pk for i in images]).update(
        phash=None, cluster=None, clustered_at=None)  # as rows imported before hashing existed
    release, manifest, sheet, _ = build("hc", "1", tmp_path / "h1", "--projects", project.name)
    assert manifest["counts"]["kinds"]["12dim"] == 8  # the rated part is there
    checks = manifest["checks"]
    assert checks["images"] == 8 and checks["hashed"] == 8 and checks["clustered"] == 8
    assert checks["hashed_now"] == 8  # the build hashed and clustered them itself
    assert checks["straddling_clusters"] == 0
    assert not Image.objects.filter(pk__in=[i.pk for i in images], phash__isnull=True).exists()
    labels = dict(ConsensusLabel.objects.filter(project=project).values_list("image_id", "scores"))
    refresh_statistics(project, only_stale=False)
    fresh = dict(ConsensusLabel.objects.filter(project=project).values_list("image_id", "scores"))
    assert labels == fresh
    assert "8 of 8 images" in sheet
    assert "No near-duplicate cluster straddles" not in sheet


def test_a_version_waits_for_the_earlier_ones_it_must_keep(make_project, tmp_path):
    project, _, _ = rated(make_project, 8)
    # Version 1 is queued (its task not run yet): version 2 cannot know 1's test set.
    Release.objects.create(name="w", version="1", out_dir=str(tmp_path / "w1"),
                           config={"projects": [project.name]})
    with pytest.raises(CommandError, match="version\\(s\\) 1 of w are not built yet"):
        build("w", "2", tmp_path / "w2", "--projects", project.name)
    failed = Release.objects.get(name="w", version="2")
    assert failed.status == "failed" and not ReleaseItem.objects.filter(release=failed).exists()
    # Once version 1 is over, version 2 is built again under the same name and version.
    Release.objects.filter(name="w", version="1").update(status="failed")
    release, manifest, _, _ = build("w", "2", tmp_path / "w2", "--projects", project.name)
    assert release.status == "ready" and manifest["counts"]["images"] == 8


def test_two_versions_built_at_once_keep_the_promise(make_project, tmp_path):
    """Two workers, one version each, at the same moment (threads on PostgreSQL): version 2
    waits for version 1 rather than assign splits without knowing 1's test set."""
    project, _, _ = rated(make_project, 24)
    config = {"projects": [project.name], "sources": [], "seed": 0, "images": "none",
              "split": {"train": 0.5, "val": 0.1, "test": 0.4}, "formats": ["parquet"],
              "max_side": None, "min_raters": 1, "max_disagreement": None}
    v1 = Release.objects.create(name="cc", version="1", config=config,
                                out_dir=str(tmp_path / "c1"))
    v2 = Release.objects.create(name="cc", version="2", config={**config, "seed": 9},
                                out_dir=str(tmp_path / "c2"))
    start = threading.Barrier(2)
    waited = []

    def worker(release_id: int) -> None:
        start.wait()
        try:
            while True:
                try:
                    releases.build(release_id)
                    return
                except releases.EarlierVersionPending:  # what the task does: try again later
                    waited.append(release_id)
                    time.sleep(0.05)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(r.pk,)) for r in (v2, v1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert waited and set(waited) == {v2.pk}
    v1.refresh_from_db()
    v2.refresh_from_db()
    assert v1.status == v2.status == "ready"
    s1, s2 = split_of(v1), split_of(v2)
    assert all(s2[i] == "test" for i, s in s1.items() if s == "test")
    assert all(s2[i] != "test" for i, s in s1.items() if s != "test")
