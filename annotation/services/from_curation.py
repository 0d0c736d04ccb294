"""Rating projects from curation: a job's (or a source's) accepted images go to the raters.

The final decision counts (a curator's override, else the job's), and only images the job
stored. All of them, or a sample of N stratified by the source's normalised score where it is
known: the known scores are cut into quantile bins (equal counts), images without a score form
one more stratum, each stratum gets its proportional share of N (largest remainders get the
leftover places) and is sampled with a seeded generator, so the same seed gives the same
images. Curation knows nothing of this module; annotation reads curation, never the reverse.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from curation.imaging.near_dup import choose_representative
from curation.models import FilterJob, Source
from curation.selectors import accepted_decisions, latest_finished_job
from curation.services.dedup import members_of

from ..models import AuditEvent, Membership, Project, RaterStatus
from .errors import Conflict, WorkflowError
from .workflow import add_images, get_or_create_project

DEFAULT_BINS = 5  # one per verbal level's worth of the score range, by count


@dataclass(frozen=True)
class Candidate:
    image_id: int
    score: float | None


@dataclass(frozen=True)
class Stratum:
    low: float | None  # score range of the stratum (None, None: scores unknown)
    high: float | None
    size: int
    taken: int

    def as_dict(self) -> dict:
        return {"low": self.low, "high": self.high, "size": self.size, "taken": self.taken}


@dataclass
class FromCurationResult:
    project: Project
    job: FilterJob
    accepted: int  # distinct accepted images available
    added: int  # images put in the project
    sample: int | None
    seed: int
    strata: list[Stratum] = field(default_factory=list)


def accepted_candidates(job: FilterJob) -> list[Candidate]:
    """The job's finally accepted images, each once (by its first item), in image-id order,
    and at most one per near-duplicate cluster of the pool.

    The job itself accepts only a cluster's representative, but a curator's override can
    accept another member: then the representative is kept if accepted, else the member the
    pool's rule prefers (`near_dup.choose_representative`), so a project never holds two
    members of one cluster.
    """
    rows = accepted_decisions(job).values_list(
        "item__image_id",
        "item__score",
        "item__image__cluster_id",
        "item__image__cluster__representative_id",
    )
    seen: dict[int, float | None] = {}
    by_cluster: dict[int, set[int]] = {}
    rep_of: dict[int, int] = {}
    for image_id, score, cluster, rep in rows:
        if image_id in seen:
            continue
        seen[image_id] = score
        if cluster is not None:
            rep_of[cluster] = rep
            by_cluster.setdefault(cluster, set()).add(image_id)
    for cluster, ids in by_cluster.items():
        if len(ids) < 2:
            continue
        keep = rep_of[cluster]
        if keep not in ids:
            keep = choose_representative(members_of(sorted(ids))).id
        for other in ids - {keep}:
            del seen[other]
    return [Candidate(i, seen[i]) for i in sorted(seen)]


def _strata(
    candidates: Sequence[Candidate], bins: int
) -> list[tuple[float | None, float | None, list[Candidate]]]:
    known = [c for c in candidates if c.score is not None]
    unknown = [c for c in candidates if c.score is None]
    out: list[tuple[float | None, float | None, list[Candidate]]] = []
    if known:
        scores = np.array([c.score for c in known], dtype=float)
        k = max(1, min(bins, len(known)))
        inner = np.quantile(scores, np.linspace(0, 1, k + 1)[1:-1]) if k > 1 else np.array([])
        index = np.searchsorted(inner, scores, side="right")
        for b in range(k):
            members = [c for c, i in zip(known, index, strict=True) if i == b]
            if members:  # ties can leave a bin empty
                ms = [c.score for c in members]
                out.append((float(min(ms)), float(max(ms)), members))
    if unknown:
        out.append((None, None, unknown))
    return out


def stratified_sample(
    candidates: Sequence[Candidate], n: int, *, seed: int = 0, bins: int = DEFAULT_BINS
) -> tuple[list[Candidate], list[Stratum]]:
    """A sample of n candidates, stratified by score (see the module's note); deterministic for
    a seed. n at or above the number of candidates takes them all."""
    if n < 1:
        raise WorkflowError("a sample needs at least one image")
    groups = _strata(sorted(candidates, key=lambda c: c.image_id), bins)
    total = sum(len(m) for _, _, m in groups)
    n = min(n, total)
    shares = [n * len(m) / total for _, _, m in groups] if total else []
    quotas = [math.floor(s) for s in shares]
    # Largest remainder; ties go to the bigger stratum, then the lower one.
    order = sorted(
        range(len(groups)), key=lambda i: (-(shares[i] - quotas[i]), -len(groups[i][2]), i)
    )
    for i in order[: n - sum(quotas)]:
        quotas[i] += 1
    rng = random.Random(seed)
    chosen: list[Candidate] = []
    strata: list[Stratum] = []
    for (low, high, members), quota in zip(groups, quotas, strict=True):
        picked = rng.sample(members, quota)
        chosen += picked
        strata.append(Stratum(low, high, len(members), quota))
    chosen.sort(key=lambda c: c.image_id)
    return chosen, strata


def project_from_job(
    job: FilterJob,
    name: str,
    *,
    sample: int | None = None,
    seed: int = 0,
    overlap: int | None = None,
    user: AbstractBaseUser | None = None,
    bins: int = DEFAULT_BINS,
) -> FromCurationResult:
    """Create the rating project `name` from the job's accepted images (all, or a sample).

    Refused while the job still runs, when it accepted nothing, or when a project of that name
    exists (a retried request must not mix two selections into one project).
    """
    name = (name or "").strip()
    if not name:
        raise WorkflowError("the project needs a name")
    if job.is_live:
        raise Conflict(f"job {job.pk} is still {job.status}: wait for it to finish")
    candidates = accepted_candidates(job)
    if not candidates:
        raise WorkflowError(f"job {job.pk} accepted no images")
    if sample is not None:
        chosen, strata = stratified_sample(candidates, sample, seed=seed, bins=bins)
    else:
        chosen, strata = list(candidates), []
    with transaction.atomic():
        project, created = get_or_create_project(name, overlap=overlap)
        if not created:
            raise Conflict(f"a project named '{name}' already exists; choose another name")
        if user is not None and user.is_authenticated:
            project.created_by = user
            project.save(update_fields=["created_by"])
            # Whoever makes the project manages it (its members page, guides, review): a
            # project admin, not a platform one (no group is granted).
            Membership.objects.create(
                project=project, user=user, role="admin",
                status=RaterStatus.CERTIFIED, certified_via="creator",
            )
        added = add_images(project, [_Ref(c.image_id) for c in chosen])
        AuditEvent.objects.create(
            project=project,
            actor=user if user is not None and user.is_authenticated else None,
            action="created_from_curation",
            details={
                "job": job.pk,
                "source": job.source.name,
                "accepted": len(candidates),
                "added": added,
                "sample": sample,
                "seed": seed,
                "manager": user.get_username() if user is not None and user.is_authenticated
                else None,
                "strata": [s.as_dict() for s in strata],
            },
        )
    return FromCurationResult(project, job, len(candidates), added, sample, seed, strata)


def project_from_source(source: Source, name: str, **kwargs) -> FromCurationResult:
    """As project_from_job, with the source's latest finished job (the one a release over the
    source takes too: `curation.selectors.latest_finished_job`)."""
    job = latest_finished_job(source)
    if job is None:
        raise WorkflowError(
            f"source '{source.name}' has no filter job that ran to its end: run one first "
            "(a cancelled job decided only part of its images; name it to use it anyway)"
        )
    return project_from_job(job, name, **kwargs)


@dataclass(frozen=True)
class _Ref:
    """Just the primary key add_images needs, without loading each image row."""

    pk: int
