"""Cost of picking the next image as a rater's own history grows, bounded pick vs one query.

    .venv/bin/python benchmarks/next_history.py            # about a minute
    .venv/bin/python benchmarks/next_history.py --quick    # smoke run

A rater far ahead of the others finds the images they rated, still waiting for other raters,
at the head of the queue (they have the fewest open slots). The single queue query steps over
each of them with a NOT EXISTS probe, so its cost grows with that history; the bounded pick
(`annotation/services/queue.py`: head window, then the fresh-image index) does not. Both run
here on the same database, in the same transaction state, against the same rater:

1. recreates a PostgreSQL database (`--database-url`, name must contain "bench"), migrates,
   and seeds one project (`--images`, overlap 3) with one annotator (bulk SQL, as
   `rater_api.py` does);
2. for each history size H, gives the rater H completed leases on the head of the queue
   (each such image then waits for two more raters) with one INSERT, and times both picks
   (`--repeats` each, alternating, every one inside a transaction that is rolled back);
3. prints p50 / p95 in ms for both and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # rater_api's database helpers

from rater_api import (
    DEFAULT_DB_URL,
    check_database_url,
    migrate,
    recreate_database,
    seed,
    server_env,
)


def naive_pick(project_id: int, rater):
    """The next-task query before the bounded pick: the whole queue, one NOT EXISTS per row."""
    from django.db.models import Exists, OuterRef

    from annotation.models import Assignment, ItemKind, ProjectImage

    seen = Assignment.objects.filter(project_image=OuterRef("pk"), rater=rater)
    return (
        ProjectImage.objects.filter(
            project_id=project_id, kind=ItemKind.PRODUCTION, excluded=False, remaining__gt=0
        )
        .filter(~Exists(seen))
        .order_by("remaining", "id")
        .select_for_update(skip_locked=True, no_key=True, of=("self",))
        .select_related("image")
        .only("id", "image_id", "kind", "image__id", "image__width", "image__height")
        .first()
    )


def give_history(project_id: int, rater_id: int, total: int) -> None:
    """Make `total` head-of-queue images rated by the rater (completed leases, counters)."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            """
            WITH head AS (
                SELECT pi.id, pi.image_id FROM annotation_projectimage pi
                WHERE pi.project_id = %s AND pi.completed = 0 AND pi.leased = 0
                ORDER BY pi.id
                LIMIT %s - (SELECT count(*) FROM annotation_assignment
                            WHERE project_id = %s AND rater_id = %s)
            ), leases AS (
                INSERT INTO annotation_assignment
                    (project_id, project_image_id, image_id, rater_id, status,
                     created_at, expires_at, finished_at)
                SELECT %s, id, image_id, %s, 'completed', now(), now(), now() FROM head
                RETURNING project_image_id
            )
            UPDATE annotation_projectimage SET completed = completed + 1
            WHERE id IN (SELECT project_image_id FROM leases)
            """,
            [project_id, total, project_id, rater_id, project_id, rater_id],
        )
        cur.execute("ANALYZE annotation_assignment")
        cur.execute("ANALYZE annotation_projectimage")


def time_pick(fn, project_id: int, rater, expected: int | None) -> float:
    from django.db import transaction

    with transaction.atomic():
        t = time.perf_counter()
        item = fn(project_id, rater)
        dt = (time.perf_counter() - t) * 1000
        transaction.set_rollback(True)
    if expected is not None and (item is None or item.pk != expected):
        raise RuntimeError(f"{fn.__name__} picked {item and item.pk}, expected {expected}")
    return dt


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    p.add_argument("--images", type=int, help="images in the project (default 20000)")
    p.add_argument("--histories", help="comma-separated history sizes (0,1000,5000,15000)")
    p.add_argument("--repeats", type=int, help="timed picks per method and size (default 200)")
    p.add_argument("--database-url", default=DEFAULT_DB_URL.replace("_bench", "_bench_history"))
    args = p.parse_args(argv)
    images = args.images or (3_000 if args.quick else 20_000)
    histories = [int(x) for x in (args.histories or "").split(",") if x] or (
        [0, 500, 2000] if args.quick else [0, 1000, 5000, 15000]
    )
    if max(histories) >= images:
        raise SystemExit("every history size must be below --images")
    repeats = args.repeats or (30 if args.quick else 200)

    check_database_url(args.database_url)
    media_root = Path(tempfile.mkdtemp(prefix="hb-bench-history-"))
    env = server_env(args.database_url, media_root)
    print(f"database: recreating {args.database_url.rsplit('/', 1)[-1]}", flush=True)
    recreate_database(args.database_url)
    migrate(env)
    import os

    os.environ.update({k: env[k] for k in ("DATABASE_URL", "SECRET_KEY", "MEDIA_ROOT")})
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from annotation.services.queue import pick_production

    seeded = seed([images], 1, media_root)
    project_id = seeded.projects[images]
    rater = get_user_model().objects.get(username=seeded.usernames[0])

    rows = []
    for history in sorted(histories):
        give_history(project_id, rater.pk, history)
        # Both must pick the same image: the first fresh one once the head is all history.
        with transaction.atomic():
            expected = naive_pick(project_id, rater).pk
        times: dict[str, list[float]] = {"bounded": [], "single query": []}
        for i in range(repeats):
            for name, fn in (("bounded", pick_production), ("single query", naive_pick)):
                if i < 3:  # warm caches, untimed
                    time_pick(fn, project_id, rater, expected)
                times[name].append(time_pick(fn, project_id, rater, expected))
        rows.append((history, times))

    print(f"\nNext-image pick vs the rater's own history ({images:,} images, overlap 3; ms)")
    head = ("own rated", "bounded p50", "p95", "single p50", "p95")
    print("{:>10}  {:>11} {:>6}  {:>10} {:>6}  ratio".format(*head))
    print("-" * 62)
    for history, t in rows:
        b, s = t["bounded"], t["single query"]
        b50, s50 = statistics.median(b), statistics.median(s)
        b95 = statistics.quantiles(b, n=20)[-1]
        s95 = statistics.quantiles(s, n=20)[-1]
        cells = f"{history:>10,}  {b50:>11.2f} {b95:>6.2f}  {s50:>10.2f} {s95:>6.2f}"
        print(f"{cells}  {s50 / b50:5.1f}x")
    first, last = rows[0][1]["bounded"], rows[-1][1]["bounded"]
    print(
        f"bounded pick p50 at {rows[-1][0]:,} / at {rows[0][0]:,} own rated images: "
        f"{statistics.median(last) / statistics.median(first):.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
