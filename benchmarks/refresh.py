"""Statistics refresh (issue 10): 1,000 new ratings on a 50,000-image project, seconds.

    python benchmarks/refresh.py                 # 50,000 images, 1,000 new ratings
    python benchmarks/refresh.py --quick         # 5,000 images, 200 new ratings (a smoke run)
    python benchmarks/refresh.py --images 50000 --new 1000 --repeat 3

Seeds a PostgreSQL database of its own (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/hb_refresh_bench, dropped and recreated) with bulk_create:
`--images` Images (fake sha256, no files), a production project of overlap 3 rated by 12
simulated raters (11 careful: image truth + noise; 1 random), 3 ratings per image, except
`--new` images that hold 2. A full refresh computes every label, rater figure and agreement.
Then the `--new` third ratings are written as the submit path writes them (Rating rows, the
image's counter, `consensus_stale`), and timed:

- incremental: `refresh_statistics(project)` as the debounced task runs it: the consensus of
  the stale images; the rater figures are not due (computed under FIGURES_MAX_AGE ago);
- incremental + figures: the same with `figures=True` (rater figures, screening, agreement
  over every rating: what a refresh costs when they are due, and what ensure_fresh costs);
- full (the peer): `refresh_statistics(project, only_stale=False)`, every label recomputed.

Each timing is the best of `--repeat` runs (the same images are marked stale again between
runs). The labels the incremental refresh wrote are checked equal to the full refresh's.
Target (issue 10): the incremental refresh of 1,000 new ratings on 50,000 images under 5 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))  # rater_api's database helpers

import numpy as np
from rater_api import recreate_database  # local, 'bench' databases only

DB_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hb_refresh_bench"
)
TARGET_SECONDS = 5.0
N_RATERS = 12
OVERLAP = 3


def _setup() -> None:
    recreate_database(DB_URL)
    os.environ["DATABASE_URL"] = DB_URL
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ.setdefault("SECRET_KEY", "bench-only-not-secret")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _scores(rng, truth: np.ndarray, careful: bool) -> np.ndarray:
    if careful:
        return np.clip(truth + rng.normal(0, 0.05, truth.shape), 0, 1)
    return rng.uniform(0, 1, truth.shape)


def seed(n_images: int, n_new: int, seed_: int = 0):
    """The project, and the (image, rater) pairs of the new ratings still to write."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from annotation import models
    from curation.models import Image
    from humanbeauty.standard import DIMENSION_KEYS

    rng = np.random.default_rng(seed_)
    now = timezone.now()
    with transaction.atomic():
        project = models.Project.objects.create(name="refresh-bench", overlap=OVERLAP)
        users = get_user_model().objects.bulk_create(
            get_user_model()(username=f"rater{i:02d}") for i in range(N_RATERS)
        )
        models.Membership.objects.bulk_create(
            models.Membership(project=project, user=u, role="annotator",
                              status=models.RaterStatus.CERTIFIED, certified_via="auto")
            for u in users
        )
        images = Image.objects.bulk_create(
            (Image(file=f"images/bench/{i}.jpg", sha256=f"{i:064x}", width=640, height=480,
                   format="JPEG") for i in range(n_images)), batch_size=5000)
        new_ones = set(rng.choice(n_images, size=n_new, replace=False).tolist())
        items = models.ProjectImage.objects.bulk_create(
            (models.ProjectImage(project=project, image=im, target=OVERLAP,
                                 completed=OVERLAP - (j in new_ones),
                                 kind=models.ItemKind.PRODUCTION)
             for j, im in enumerate(images)), batch_size=5000)
        truth = rng.uniform(0.2, 0.8, (n_images, 1)) + rng.normal(0, 0.03, (n_images, 12))
        raters_of = [rng.choice(N_RATERS, size=OVERLAP, replace=False) for _ in range(n_images)]
        pending = []
        assignments, ratings = [], []
        for j, (im, item) in enumerate(zip(images, items, strict=True)):
            chosen = raters_of[j]
            if j in new_ones:
                pending.append((item, im, users[chosen[-1]]))
                chosen = chosen[:-1]
            for r in chosen:
                a = models.Assignment(project=project, project_image=item, image=im,
                                      rater=users[r], status=models.AssignmentStatus.COMPLETED,
                                      expires_at=now, finished_at=now)
                assignments.append(a)
                values = _scores(rng, truth[j], careful=r != N_RATERS - 1)
                ratings.append((a, users[r], im, values))
        models.Assignment.objects.bulk_create(assignments, batch_size=5000)
        models.Rating.objects.bulk_create(
            (models.Rating(project=project, image=im, rater=u, assignment=a, time_spent_ms=10_000,
                           **dict(zip(DIMENSION_KEYS, map(float, v), strict=True)))
             for a, u, im, v in ratings), batch_size=5000)
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
    return project, pending, truth


def write_new_ratings(project, pending, truth) -> None:
    """The new ratings as the submit path writes them: rating, counter, stale mark."""
    from django.db import transaction
    from django.db.models import F
    from django.utils import timezone

    from annotation.models import Assignment, AssignmentStatus, ProjectImage, Rating
    from humanbeauty.standard import DIMENSION_KEYS

    rng = np.random.default_rng(1)
    now = timezone.now()
    with transaction.atomic():
        assignments = Assignment.objects.bulk_create(
            Assignment(project=project, project_image=item, image=im, rater=u,
                       status=AssignmentStatus.COMPLETED, expires_at=now, finished_at=now)
            for item, im, u in pending)
        Rating.objects.bulk_create(
            Rating(project=project, image=im, rater=u, assignment=a, time_spent_ms=10_000,
                   **dict(zip(DIMENSION_KEYS, map(float, np.clip(
                       truth[0] + rng.normal(0, 0.05, 12), 0, 1)), strict=True)))
            for a, (_, im, u) in zip(assignments, pending, strict=True))
        ProjectImage.objects.filter(pk__in=[item.pk for item, _, _ in pending]).update(
            completed=F("completed") + 1, consensus_stale=True)


def mark_stale(pending) -> None:
    from annotation.models import ProjectImage

    ProjectImage.objects.filter(pk__in=[item.pk for item, _, _ in pending]).update(
        consensus_stale=True)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--new", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.new, args.repeat = 5_000, 200, 2

    t0 = time.perf_counter()
    _setup()
    from annotation.models import ConsensusLabel, ProjectImage
    from annotation.services.quality import refresh_statistics

    project, pending, truth = seed(args.images, args.new)
    seed_s = time.perf_counter() - t0
    first_full = timed(lambda: refresh_statistics(project, only_stale=False))
    write_new_ratings(project, pending, truth)
    n_ratings = args.images * OVERLAP

    def labels(ids):
        return dict(ConsensusLabel.objects.filter(project=project, image_id__in=ids)
                    .values_list("image_id", "scores"))

    new_ids = [im.pk for _, im, _ in pending]
    results = {}
    for name, run in (
        ("incremental", lambda: refresh_statistics(project)),
        ("incremental + figures", lambda: refresh_statistics(project, figures=True)),
        ("full (peer)", lambda: refresh_statistics(project, only_stale=False)),
    ):
        times = []
        for _ in range(args.repeat):
            mark_stale(pending)
            times.append(timed(run))
            assert not ProjectImage.objects.filter(project=project, consensus_stale=True).exists()
        results[name] = min(times)
        if name == "incremental":
            after_incremental = labels(new_ids)
    assert labels(new_ids) == after_incremental, "incremental labels differ from a full refresh"

    print(f"\nRefresh of {args.new:,} new ratings on a {args.images:,}-image project "
          f"({n_ratings:,} ratings, {N_RATERS} raters, overlap {OVERLAP}); best of {args.repeat}")
    print(f"(seeding {seed_s:.0f} s; first full refresh {first_full:.2f} s)\n")
    full = results["full (peer)"]
    print(f"| {'refresh':<24} | {'seconds':>8} | {'vs full':>8} |")
    print(f"|{'-' * 26}|{'-' * 10}|{'-' * 10}|")
    for name, seconds in results.items():
        print(f"| {name:<24} | {seconds:>8.2f} | {full / seconds:>7.1f}x |")
    verdict = "met" if results["incremental"] < TARGET_SECONDS else "MISSED"
    print(f"\ntarget: incremental under {TARGET_SECONDS:.0f} s: {verdict}; "
          "labels of the new images equal a full refresh's")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
