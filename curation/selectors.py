"""Reads of the pool: job summaries and per-image reports."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from django.db import connection
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce

from .models import (
    FILTER_STAGES,
    ClusterChange,
    Decision,
    FilterJob,
    Image,
    JobStatus,
    Source,
    SourceItem,
)


def unverified_image_ids(image_ids: Iterable[int]) -> list[int]:
    """The listed pool images not yet hashed and clustered against the pool (sorted ids);
    empty once `services.ensure_hashed` ran on them. Ids not in the pool are ignored."""
    ids = sorted({int(i) for i in image_ids})
    out: list[int] = []
    for start in range(0, len(ids), 10_000):  # bounded parameter lists
        out += Image.objects.filter(
            Q(phash__isnull=True) | Q(clustered_at__isnull=True),
            pk__in=ids[start : start + 10_000],
        ).values_list("id", flat=True)
    return sorted(out)


def count_in_clusters(image_ids: Iterable[int]) -> int:
    """How many of the listed images are in a near-duplicate cluster now (a later image may
    have joined one that was alone when it was imported)."""
    ids = sorted({int(i) for i in image_ids})
    return sum(
        Image.objects.filter(pk__in=ids[at : at + 10_000], cluster__isnull=False).count()
        for at in range(0, len(ids), 10_000)
    )


def cluster_changes(*, job: FilterJob | None = None, limit: int = 100) -> list[dict]:
    """Displaced representatives, newest first; with `job`, those that touched its images."""
    rows = (ClusterChange.objects if job is None else _job_changes(job)).order_by("-id")
    return [
        {
            "id": c.pk,
            "cluster": c.cluster_id,
            "old_representative": c.old_representative_id,
            "new_representative": c.new_representative_id,
            "caused_by": c.caused_by_id,
            "at": c.created_at,
            "decisions": c.details.get("decisions", []),
        }
        for c in rows[:limit]
    ]


def job_summary(job: FilterJob) -> dict:
    """{"job", "status", "counts": {accepted, rejected, error}, "reasons": {reason: n}}.

    Both counted by the database (a job may hold millions of decisions): the reasons of the
    decisions whose final word is not `accepted`, one row per (decision, reason).
    """
    counts = decision_counts(job)
    if connection.vendor == "postgresql":
        elements, reason = "jsonb_array_elements_text(d.reasons) AS r(reason)", "r.reason"
    else:  # SQLite's table-valued json_each
        elements, reason = "json_each(d.reasons) AS r", "r.value"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {reason}, count(*) FROM {Decision._meta.db_table} d, {elements} "
            "WHERE d.job_id = %s AND (CASE WHEN d.override <> '' THEN d.override "
            f"ELSE d.decision END) <> %s GROUP BY {reason}",
            [job.pk, "accepted"],
        )
        reasons = dict(cursor.fetchall())
    return {
        "job": job.pk,
        "status": job.status,
        "counts": {k: counts[k] for k in FINAL_KINDS},
        "reasons": dict(sorted(reasons.items())),
        "cluster_changes": cluster_change_count(job),
        "progress": job.progress,
    }


def cluster_change_count(job: FilterJob) -> int:
    """How many displaced representatives changed decisions of this job."""
    return _job_changes(job).count()


def _job_changes(job: FilterJob) -> QuerySet[ClusterChange]:
    images = SourceItem.objects.filter(decisions__job=job, image__isnull=False).values("image_id")
    return ClusterChange.objects.filter(
        Q(old_representative_id__in=images) | Q(new_representative_id__in=images)
    )


def job_lines(job: FilterJob) -> Iterator[dict]:
    """One entry per item: {"path", "decision", "reasons", "cluster"} (path as in the manifest)."""
    rows = (
        Decision.objects.filter(job=job)
        .order_by("item_id")
        # The image's cluster as it stands now: a later near-duplicate may have joined it.
        .values_list(
            "item__path", "decision", "override", "reasons", "item__image__cluster_id",
            "measurements",
        )
        .iterator(chunk_size=2000)
    )
    for path, decision, override, reasons, cluster, measurements in rows:
        line = {
            "path": path,
            "decision": override or decision,
            "reasons": reasons,
            "cluster": cluster,
        }
        # A representative displaced after the decision was first made: by whom, and when.
        if isinstance(measurements, dict) and "cluster_change" in measurements:
            line["cluster_change"] = measurements["cluster_change"]
        yield line


# --- sources, jobs and decisions for the API and the curator's pages ---------------------------

FINAL_KINDS = ("accepted", "rejected", "error")


def _count(model, **filters) -> Coalesce:
    """A correlated COUNT(*) subquery over `model` rows whose `source` or `job` is the outer row."""
    rows = (
        model.objects.filter(**filters)
        .order_by()
        .values(next(iter(filters)))
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(rows), 0)


def source_in_use() -> Q:
    """Sources something points to (images in the pool, a record's stored file, a filter job):
    decisions, projects and releases may name them, so they are kept."""
    return (
        Exists(Image.objects.filter(source=OuterRef("pk")))
        | Exists(SourceItem.objects.filter(source=OuterRef("pk"), image__isnull=False))
        | Exists(FilterJob.objects.filter(source=OuterRef("pk")))
    )


def sources_with_counts() -> QuerySet[Source]:
    """Sources with their record, scored-record, linked-image and job counts, latest job and
    whether they are in use (`source_in_use`).

    Counted by correlated subqueries (one index range each), not by joins that would multiply.
    """
    latest = FilterJob.objects.filter(source=OuterRef("pk")).order_by("-pk")
    return Source.objects.annotate(
        in_use=ExpressionWrapper(source_in_use(), output_field=BooleanField()),
        n_items=_count(SourceItem, source=OuterRef("pk")),
        n_scored=_count(SourceItem, source=OuterRef("pk"), score__isnull=False),
        n_linked=_count(SourceItem, source=OuterRef("pk"), image__isnull=False),
        n_jobs=_count(FilterJob, source=OuterRef("pk")),
        latest_job_id=Subquery(latest.values("pk")[:1]),
        latest_job_status=Subquery(latest.values("status")[:1]),
    ).order_by("-pk")


def final_q(kind: str) -> Q:
    """Decisions whose final word (a curator's override, else the computed one) is `kind`."""
    return Q(override=kind) | Q(override="", decision=kind)


def reason_q(reason: str) -> Q:
    """Decisions listing `reason` among their reasons (JSON containment where the database has
    it, else the quoted name in the JSON text, which is exact for the plain names used)."""
    if connection.features.supports_json_field_contains:
        return Q(reasons__contains=[reason])
    return Q(reasons__icontains=json.dumps(reason))


def jobs_with_counts(jobs: QuerySet[FilterJob] | None = None) -> QuerySet[FilterJob]:
    """Jobs with their live decision counts by final decision (over the (job, decision) index)."""
    jobs = FilterJob.objects.all() if jobs is None else jobs
    return jobs.select_related("source", "created_by").annotate(
        n_decided=_count(Decision, job=OuterRef("pk")),
        **{
            f"n_{kind}": Coalesce(
                Subquery(
                    Decision.objects.filter(final_q(kind), job=OuterRef("pk"))
                    .order_by()
                    .values("job")
                    .annotate(n=Count("pk"))
                    .values("n")
                ),
                0,
            )
            for kind in FINAL_KINDS
        },
    )


def decision_counts(job: FilterJob) -> dict[str, int]:
    """{accepted, rejected, error, overridden, decided}: a GROUP BY, cheap enough to poll."""
    counts = dict.fromkeys(FINAL_KINDS, 0)
    overridden = 0
    rows = (
        Decision.objects.filter(job=job)
        .order_by()
        .values("decision", "override")
        .annotate(n=Count("pk"))
    )
    for row in rows:
        counts[row["override"] or row["decision"]] += row["n"]
        if row["override"]:
            overridden += row["n"]
    return {**counts, "overridden": overridden, "decided": sum(counts.values())}


def stage_enabled(job: FilterJob, stage: str) -> bool:
    section = job.config.get(stage)
    return bool(section.get("enabled", True)) if isinstance(section, dict) else True


def job_progress(job: FilterJob, decided: int | None = None) -> dict:
    """Progress for people: total, decided (live), chunks, and each stage's count.

    Stage counts arrive as chunks finish; an item rejected as unreadable stops after the
    validate stage, so later stages may end below the total.
    """

    progress = job.progress or {}
    done = progress.get("stages", {})
    if decided is None:
        decided = Decision.objects.filter(job=job).count()
    chunks = progress.get("chunks")
    return {
        "total": progress.get("total", 0),
        "decided": decided,
        "chunks": {
            "total": chunks if isinstance(chunks, int) else None,
            "done": progress.get("chunks_reported", 0),
        },
        "stages": [
            {"name": stage, "enabled": stage_enabled(job, stage), "done": done.get(stage, 0)}
            for stage in FILTER_STAGES
        ],
    }


def last_change(job: FilterJob) -> dict:
    """How many decisions the job has and when one last changed (decided or overridden)."""
    agg = Decision.objects.filter(job=job).aggregate(
        n=Count("pk"), decided=Max("decided_at"), overridden=Max("overridden_at")
    )
    stamps = [t for t in (agg["decided"], agg["overridden"]) if t is not None]
    return {"count": agg["n"], "at": max(stamps) if stamps else None}


def decisions_for(
    job: FilterJob, *, decision: str | None = None, reason: str | None = None
) -> QuerySet[Decision]:
    """A job's decisions in item order, filtered by final decision and/or by one reason."""
    qs = Decision.objects.filter(job=job)
    if decision:
        qs = qs.filter(final_q(decision))
    if reason:
        qs = qs.filter(reason_q(reason))
    return qs.select_related("item", "item__image", "overridden_by").order_by("item_id")


def group_decisions(job: FilterJob, group: str) -> QuerySet[Decision]:
    """The decisions a contact-sheet group shows: `accepted`, `rejected`, `error`, or a reason
    (the images finally not accepted that list it, as job_summary counts them)."""
    if group in FINAL_KINDS:
        return decisions_for(job, decision=group)
    return decisions_for(job, reason=group).exclude(final_q("accepted"))


def sheet_groups(summary: dict) -> list[dict]:
    """The contact-sheet groups of a job_summary: accepted, each reason, then errors."""
    counts, reasons = summary["counts"], summary["reasons"]
    groups = [{"group": "accepted", "count": counts.get("accepted", 0), "kind": "accepted"}]
    groups += [
        {"group": r, "count": n, "kind": "reason"}
        for r, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
        if r != "error"
    ]
    if counts.get("error"):
        groups.append({"group": "error", "count": counts["error"], "kind": "error"})
    return groups


def accepted_decisions(job: FilterJob) -> QuerySet[Decision]:
    """The job's finally accepted decisions that have a stored image, in item order."""
    return (
        Decision.objects.filter(final_q("accepted"), job=job, item__image__isnull=False)
        .select_related("item")
        .order_by("item_id")
    )


def latest_finished_job(source: Source) -> FilterJob | None:
    """The source's newest job (the last one started) that ran to its end: what a project
    made from the source and a release built over it both take, so the two agree.

    A cancelled job decided only part of the items, so it is never taken unasked (a project
    can still be made from one by naming the job). Newest by start, not by finish: two jobs
    that ran side by side finish in whatever order the workers took, and the later one was
    set up knowing the earlier.
    """
    return FilterJob.objects.filter(source=source, status=JobStatus.DONE).order_by("-pk").first()
