"""A finished filter job with overrides, for the job-summary tests (PostgreSQL and SQLite)."""

from __future__ import annotations

import random
from collections import Counter

# (computed decision, its reasons), drawn at random with overrides both ways.
REASONS = ["corrupt", "too_small", "near_duplicate", "no_face", "exact_duplicate", "no_person"]


def make_job(n: int = 300, seed: int = 7):
    """A job over n items with random decisions, reasons and overrides; returns the job."""
    from curation.models import Decision, FilterJob, JobStatus, Source, SourceItem

    rng = random.Random(seed)
    source = Source.objects.create(name=f"summary-{seed}", kind="manifest")
    items = SourceItem.objects.bulk_create(
        [SourceItem(source=source, path=f"img/{i}.jpg") for i in range(n)]
    )
    job = FilterJob.objects.create(source=source, status=JobStatus.DONE)
    decisions = []
    for item in items:
        kind = rng.choice(["accepted", "rejected", "rejected", "error"])
        why = [] if kind == "accepted" else rng.sample(REASONS, rng.randint(1, 3))
        override = rng.choice(["", "", "", "accepted", "rejected"])
        decisions.append(
            Decision(job=job, item=item, decision=kind, reasons=why, override=override)
        )
    Decision.objects.bulk_create(decisions)
    return job


def reference_summary(job) -> tuple[dict, dict]:
    """(counts, reasons) computed in Python, row by row: what the database must agree with."""
    from curation.models import Decision

    counts = Counter({"accepted": 0, "rejected": 0, "error": 0})
    reasons: Counter[str] = Counter()
    for decision, override, why in Decision.objects.filter(job=job).values_list(
        "decision", "override", "reasons"
    ):
        final = override or decision
        counts[final] += 1
        if final != "accepted":
            reasons.update(why)
    return dict(counts), dict(sorted(reasons.items()))
