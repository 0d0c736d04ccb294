"""Reads of the pool: job summaries and per-image reports."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from .models import Decision, FilterJob


def job_summary(job: FilterJob) -> dict:
    """{"job", "status", "counts": {accepted, rejected, error}, "reasons": {reason: n}}."""
    counts = Counter({"accepted": 0, "rejected": 0, "error": 0})
    reasons: Counter[str] = Counter()
    for decision, override, why in Decision.objects.filter(job=job).values_list(
        "decision", "override", "reasons"
    ):
        final = override or decision
        counts[final] += 1
        if final != "accepted":
            reasons.update(why)
    return {
        "job": job.pk,
        "status": job.status,
        "counts": dict(counts),
        "reasons": dict(sorted(reasons.items())),
        "progress": job.progress,
    }


def job_lines(job: FilterJob) -> Iterator[dict]:
    """One entry per item: {"path", "decision", "reasons", "cluster"} (path as in the manifest)."""
    rows = (
        Decision.objects.filter(job=job)
        .order_by("item_id")
        # The image's cluster as it stands now: a later near-duplicate may have joined it.
        .values_list("item__path", "decision", "override", "reasons", "item__image__cluster_id")
        .iterator(chunk_size=2000)
    )
    for path, decision, override, reasons, cluster in rows:
        yield {
            "path": path,
            "decision": override or decision,
            "reasons": reasons,
            "cluster": cluster,
        }
