"""The queue: which image a rater takes next. Reference items (gold, training, test) are any
the rater has not seen (`unseen_items`); production images come from `pick_production`, at a
cost that stays flat.

Production order: images with the fewest open slots first (`remaining`, then id), so started
images finish before fresh ones start. A rater skips the images they already saw. Read naively
("first queue row the rater has not seen"), that skip grows with the rater's own history: a
rater far ahead of the others finds the images they rated, still waiting for other raters,
at the head of the queue and steps over each one (13.7 ms at 15,000 such images, against
4.2 ms for this pick: `benchmarks/next_history.py`).

So the pick runs in up to three bounded steps, each locking its row with
`FOR NO KEY UPDATE SKIP LOCKED`, so that raters never wait on each other:
1. the queue's head window (`QUEUE_WINDOW` rows), in queue order: the usual answer, exact;
2. else a never-started image, from its own partial index (a rater cannot have rated one;
   at worst they skipped it or let its lease run out);
3. else the whole queue: only reached when no fresh image is left.
The one departure from strict queue order: a rater who has seen the whole head window gets a
fresh image before a started one that lies beyond the window.

The statement is written out in SQL rather than built by the ORM: it is the hottest query of
the platform (building it took twice as long as running it), and its plan depends on details
the ORM hides (see the comments in `_pick_sql`). On SQLite (the quick start) the same
statement runs without row locks; IMMEDIATE transactions serialise writers there.
"""

from __future__ import annotations

from functools import cache

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import Exists, OuterRef, QuerySet

from curation.models import Image

from ..models import Assignment, ItemKind, Project, ProjectImage

# Rows of the queue's head a pick looks at before it falls back to a fresh image. Wider than
# the rows other raters can hold locked at once, so concurrent raters do not spill over.
QUEUE_WINDOW = 64

# The open queue (the `projectimage_open_queue` partial index) and its fresh part
# (`projectimage_fresh`); `%s` is the project id.
_OPEN = "{t}.project_id = %s AND {t}.kind = %s AND NOT {t}.excluded AND {t}.remaining > 0"
_STEPS = (
    # 1. The head window. Its rows are re-checked as they are locked, spelled without
    # `remaining` so that the planner cannot walk the queue index (filtering on the array)
    # past the window; `= ANY(ARRAY(...))` runs the window once, where `IN (...)` may become a
    # semi-join over the whole queue.
    (
        "pi.id {in_window} AND NOT pi.excluded AND pi.target > pi.completed + pi.leased",
        "pi.remaining, pi.id",
    ),
    # 2. Never-started images.
    ("{open} AND pi.completed = 0 AND pi.leased = 0", "pi.id"),
    # 3. The whole open queue.
    ("{open}", "pi.remaining, pi.id"),
)
# In the models' field order: `from_db` matches values to fields in that order.
_FIELDS = ("id", "image_id", "kind")
_IMAGE_FIELDS = ("id", "width", "height")


@cache
def _pick_sql(step: int, vendor: str) -> str:
    where, order = _STEPS[step]
    window = (
        f"SELECT w.id FROM {ProjectImage._meta.db_table} w WHERE {_OPEN.format(t='w')} "
        f"ORDER BY w.remaining, w.id LIMIT {QUEUE_WINDOW}"
    )
    postgres = vendor == "postgresql"
    where = where.format(
        open=_OPEN.format(t="pi"),
        in_window=f"= ANY(ARRAY({window}))" if postgres else f"IN ({window})",
    )
    return (
        f"SELECT pi.id, pi.image_id, pi.kind, img.id, img.width, img.height "
        f"FROM {ProjectImage._meta.db_table} pi "
        f"JOIN {Image._meta.db_table} img ON img.id = pi.image_id "
        f"WHERE {where} "
        # OFFSET 0 keeps NOT EXISTS a per-row index probe: left alone, PostgreSQL may turn it
        # into an anti-join that reads all of the rater's history to find one row.
        f"AND NOT EXISTS (SELECT 1 FROM {Assignment._meta.db_table} a "
        f"WHERE a.project_image_id = pi.id AND a.rater_id = %s LIMIT 1 OFFSET 0) "
        f"ORDER BY {order} LIMIT 1"
        + (" FOR NO KEY UPDATE OF pi SKIP LOCKED" if postgres else "")
    )


def pick_production(project_id: int, rater: AbstractBaseUser) -> ProjectImage | None:
    """Lock and return the next production image for `rater`, or None (see module doc).

    Call inside a transaction. The item comes with its image's size loaded.
    """
    open_params = [project_id, ItemKind.PRODUCTION.value]
    with connection.cursor() as cursor:
        for step in range(len(_STEPS)):
            # Every step's SQL has the open-queue conditions once (in the window or the
            # WHERE clause), then the rater.
            cursor.execute(_pick_sql(step, connection.vendor), [*open_params, rater.pk])
            row = cursor.fetchone()
            if row is not None:
                item = ProjectImage.from_db(connection.alias, _FIELDS, row[:3])
                item.image = Image.from_db(connection.alias, _IMAGE_FIELDS, row[3:])
                return item
    return None


def unseen_items(
    project: Project, rater: AbstractBaseUser, kind: ItemKind
) -> QuerySet[ProjectImage]:
    """The project's items of `kind` the rater was never leased (and no reviewer excluded)."""
    seen = Assignment.objects.filter(project_image=OuterRef("pk"), rater=rater)
    return (
        ProjectImage.objects.filter(project=project, kind=kind, excluded=False)
        .filter(~Exists(seen))
        .only("id", "image_id", "kind")
    )
