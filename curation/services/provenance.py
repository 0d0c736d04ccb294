"""Writes of provenance and terms: a source's origin, licence and consent basis (a curator
sets or changes them; an import fills what its dataset publishes), and an image's own terms
(an upload with a consent form, `import_images --licence ...`).

The rules (known licences, resolution, what a use needs) are `curation.sources.terms`'.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import transaction

from ..models import Image, Source
from ..sources.terms import (
    Terms,
    TermsError,
    normalize_consent_basis,
    normalize_licence,
    resolve,
)


def terms_of(image: Image | None, source: Source | None) -> Terms:
    """The terms that hold for an image taken from `source` (its own over the source's: the
    one rule, `terms.resolve`); with no image, the source's alone."""
    own = Terms(image.licence, image.consent_basis, image.consent_reference) if image else Terms()
    base = Terms(source.licence, source.consent_basis) if source is not None else None
    return resolve(own, base)


def checked_terms(
    *, licence: str | None = None, consent_basis: str | None = None,
    consent_reference: str | None = None,
) -> Terms:
    """Terms as they are stored (TermsError, a 400, for a bad licence id or consent basis)."""
    reference = (consent_reference or "").strip()
    if len(reference) > 500:
        raise TermsError("consent_reference is at most 500 characters")
    return Terms(
        licence=normalize_licence(licence),
        consent_basis=normalize_consent_basis(consent_basis),
        consent_reference=reference,
    )


def set_source_terms(
    source: Source,
    *,
    origin: str | None = None,
    licence: str | None = None,
    consent_basis: str | None = None,
) -> Source:
    """Set or change a source's provenance; a field left None keeps its value, "" clears it.
    Everything is checked before anything is saved."""
    fields: dict[str, str] = {}
    if origin is not None:
        fields["origin"] = origin.strip()[:1000]
    if licence is not None:
        fields["licence"] = normalize_licence(licence)
    if consent_basis is not None:
        fields["consent_basis"] = normalize_consent_basis(consent_basis)
    if fields:
        for name, value in fields.items():
            setattr(source, name, value)
        source.save(update_fields=list(fields))
    return source


def fill_source_terms(
    source: Source, *, origin: str, licence: str, consent_basis: str
) -> Source:
    """What an import knows of its dataset's terms, written where the source records nothing
    yet: a curator's own entries are never overwritten by a re-import."""
    published = {
        "origin": origin,
        "licence": normalize_licence(licence),
        "consent_basis": normalize_consent_basis(consent_basis),
    }
    blank = [name for name, value in published.items() if value and not getattr(source, name)]
    if blank:
        for name in blank:
            setattr(source, name, published[name])
        source.save(update_fields=blank)
    return source


@dataclass
class TermsReport:
    updated: list[int] = field(default_factory=list)  # images given the terms now
    unchanged: list[int] = field(default_factory=list)  # carrying these very terms already
    conflicts: list[int] = field(default_factory=list)  # carrying other terms of their own: kept


def give_images_terms(images: Iterable[Image], terms: Terms) -> TermsReport:
    """Record an image's own terms (an upload's, an import's): an image with none of its own
    takes them; one that carries other terms of its own keeps them and is listed as a conflict
    (terms are changed deliberately, never by the next door an image comes through)."""
    images = list(images)
    report = TermsReport()
    if not (terms.licence or terms.consent_basis or terms.consent_reference):
        return report
    ids = [image.pk for image in images]
    wanted = (terms.licence, terms.consent_basis, terms.consent_reference)
    with transaction.atomic():
        rows = Image.objects.select_for_update().filter(pk__in=ids).order_by("pk")
        for pk, *own in rows.values_list("pk", "licence", "consent_basis", "consent_reference"):
            if tuple(own) == wanted:
                report.unchanged.append(pk)
            elif any(own):
                report.conflicts.append(pk)
            else:
                report.updated.append(pk)
        Image.objects.filter(pk__in=report.updated).update(
            licence=terms.licence,
            consent_basis=terms.consent_basis,
            consent_reference=terms.consent_reference,
        )
    for image in images:
        if image.pk in report.updated:
            image.licence, image.consent_basis, image.consent_reference = wanted
    return report
