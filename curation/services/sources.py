"""Importing a source: parse its label file, keep every good record as a SourceItem.

Files are only ever read inside the configured import roots (settings.IMPORT_ROOTS): the label
file, and each record's path, which is checked again whenever a job opens it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction

from ..models import Source, SourceItem
from ..sources import (
    ImportRoots,
    PathOutsideRoots,
    Scale,
    SourceFileError,
    parse_source,
    resolve_inside,
)


@dataclass
class SourceImportReport:
    source: Source
    created: int = 0
    updated: int = 0
    errors: list[str] = field(default_factory=list)


def item_file(item: SourceItem) -> Path:
    """The file behind an item, refused (PathOutsideRoots) outside the import roots."""
    return resolve_inside(item.path, settings.IMPORT_ROOTS, base=item.source.location or None)


def import_source(
    kind: str,
    path: str | Path,
    name: str,
    *,
    scale: Scale | None = None,
    priority: int | None = None,
    progress: bool = False,
) -> SourceImportReport:
    """Parse a dataset's labels and store its records; a re-import updates scores, adds new
    records and duplicates nothing. Bad lines and paths outside the roots are reported."""
    from tqdm import tqdm

    result = parse_source(kind, path, scale=scale, roots=settings.IMPORT_ROOTS)
    source = Source.objects.filter(name=name).first()
    if source is not None and (source.kind != kind or source.location != str(result.base)):
        raise SourceFileError(
            f"source '{name}' already exists as {source.kind} from {source.location}; "
            "choose another --name"
        )
    report = SourceImportReport(source=source, errors=[str(e) for e in result.errors])
    with transaction.atomic():
        if source is None:
            source = Source.objects.create(
                name=name,
                kind=kind,
                location=str(result.base),
                score_min=result.scale[0] if result.scale else None,
                score_max=result.scale[1] if result.scale else None,
                priority=priority or 0,
            )
        elif priority is not None:
            source.priority = priority
            source.save(update_fields=["priority"])
        report.source = source
        existing = set(SourceItem.objects.filter(source=source).values_list("path", flat=True))
        roots = ImportRoots(settings.IMPORT_ROOTS)  # one checker: it caches resolved folders
        batch: list[SourceItem] = []
        for record in tqdm(result.records, desc=f"import {name}", unit="rec", disable=not progress):
            try:
                result.resolve(record, roots)
            except PathOutsideRoots as exc:
                report.errors.append(str(exc))
                continue
            extra = dict(record.extra)
            extra.setdefault("scale", [record.score_min, record.score_max])
            batch.append(
                SourceItem(
                    source=source,
                    path=record.path,
                    raw_score=record.raw_score,
                    score=record.normalized,
                    extra=extra,
                )
            )
            if record.path in existing:
                report.updated += 1
            else:
                report.created += 1
        SourceItem.objects.bulk_create(
            batch,
            batch_size=2000,
            update_conflicts=True,
            unique_fields=["source", "path"],
            update_fields=["raw_score", "score", "extra"],
        )
    return report
