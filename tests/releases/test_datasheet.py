"""The datasheet of a release built from PostgreSQL data: every number it states is checked
against the database or the manifest; a section with nothing known says so; the HTML parses
and carries its plots inline."""

from __future__ import annotations

import json
import re
from collections import Counter
from html.parser import HTMLParser

import pytest
from django.db.models import Count

from annotation.models import ItemKind, Membership, ProjectStats, Rating
from curation.models import Decision, FilterJob, Source
from humanbeauty.standard import DIMENSIONS
from modeling.models import Release, ReleaseItem

from .conftest import run

pytestmark = pytest.mark.django_db(transaction=True)

SECTIONS = ["Motivation", "Composition", "Collection process", "Annotation", "Preprocessing",
            "Uses", "Distribution and licence", "Maintenance", "Consent and takedown",
            "Configuration"]
GUIDELINES = "Rate the light on the face first.\n\n<b>Never</b> guess | skip instead."


class Page(HTMLParser):
    """Headings, tables (rows of cell texts), paragraphs and inline <svg> count."""

    def __init__(self):
        super().__init__()
        self.h2: list[str] = []
        self.tables: list[list[list[str]]] = []
        self.text: list[str] = []
        self.svgs = 0
        self._tag: list[str] = []

    def handle_starttag(self, tag, attrs):
        self._tag.append(tag)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag == "svg":
            self.svgs += 1

    def handle_endtag(self, tag):
        while self._tag and self._tag.pop() != tag:
            pass

    def handle_data(self, data):
        if not self._tag:
            return
        if self._tag[-1] == "h2":
            self.h2.append(data)
        elif self._tag[-1] in ("td", "th"):
            self.tables[-1][-1].append(data)
        else:
            self.text.append(data)

    def table(self, first_header: str) -> dict[str, list[str]]:
        """A table by its first header cell, as {first cell: the other cells}."""
        for t in self.tables:
            if t and t[0] and t[0][0] == first_header:
                return {row[0]: row[1:] for row in t[1:]}
        raise AssertionError(f"no table headed {first_header!r}")

    def say(self) -> str:
        return " ".join(" ".join(self.text).split())


def build(project, tmp_path, version, *extra) -> tuple[Release, Page, str]:
    out = tmp_path / f"ds{version}"
    run("release", "build", "ds", "--version", version, "--projects", project.name,
        "--images", "none", "--formats", "parquet", "--out", str(out), "--wait", *extra)
    sheet = Page()
    sheet.feed((out / "datasheet.html").read_text())
    md = (out / "datasheet.md").read_text()
    return Release.objects.get(name="ds", version=version), sheet, md


def fmt(x: float) -> str:
    return f"{x:.3f}"


def test_every_number_of_the_datasheet_is_the_databases(data, tmp_path, page):
    project, _images = data
    project.guidelines = GUIDELINES
    project.save()
    members = {m.user.username: m for m in Membership.objects.filter(project=project)
               .select_related("user")}
    # Gold answers as the gold flow records them: a count and a sum of absolute errors.
    Membership.objects.filter(pk=members["a"].pk).update(gold_n=4, gold_abs_error_sum=0.4)
    Membership.objects.filter(pk=members["b"].pk).update(gold_n=1, gold_abs_error_sum=0.3)
    build(project, tmp_path, "1")
    release, sheet, md = build(project, tmp_path, "2", "--sources", "src", "--contact",
                              "takedown@example.org")

    assert sheet.h2 == SECTIONS
    assert [h.removeprefix("## ") for h in re.findall(r"^## .*$", md, flags=re.M)] == SECTIONS
    assert sheet.svgs == 1 + len(DIMENSIONS)  # overall + 12 dimensions, inline
    said = sheet.say()

    # Composition: counts per split and per source, from the database.
    splits = Counter(ReleaseItem.objects.filter(release=release).values_list("split", flat=True))
    table = sheet.table("split")
    assert {s: int(row[2].replace(",", "")) for s, row in table.items()} == dict(splits)
    per_source = sheet.table("source")
    assert int(per_source[project.name][-1]) == 12 and int(per_source["src"][-1]) == 2

    # Collection: the source's newest finished filter job, its counts and reasons.
    job = FilterJob.objects.filter(source__name="src").order_by("-pk").first()
    final = Counter(d.override or d.decision for d in Decision.objects.filter(job=job))
    assert (f"Filter job {job.pk} (the source's newest finished one, which the release "
            f"takes): {final['accepted']:,} accepted, {final['rejected']:,} rejected, "
            f"{final['error']:,} error(s).") in said
    reasons = Counter(r for d in Decision.objects.filter(job=job).exclude(decision="accepted")
                      for r in d.reasons if not d.override)
    assert {k: int(v[0]) for k, v in sheet.table("rejection reason").items()} == dict(reasons)
    assert sheet.table("filter setting")["clip"] == [json.dumps(job.config["clip"],
                                                               sort_keys=True)]
    src = Source.objects.get(name="src")
    assert f"[{src.score_min:g}, {src.score_max:g}]" in said
    assert "Licence: not recorded by the platform." in said
    by_source = dict(project.items.filter(kind=ItemKind.PRODUCTION)
                     .values_list("image__source__name").annotate(n=Count("id")))
    assert f"Rating project {project.name} rated images of: " + ", ".join(
        f"{k or '(no source)'} ({n})" for k, n in by_source.items()) + "." in said
    assert by_source == {None: 12}  # imported as a folder, outside any source

    # Annotation: raters, certification, gold, guidelines, agreement with intervals.
    raters = Rating.objects.filter(project=project).values("rater").distinct().count()
    certified = Membership.objects.filter(project=project, status="certified").count()
    assert raters >= 2 and certified == 3
    assert (f"Raters who rated production images: {raters} ({certified} certified members "
            "of 3); "
            f"{project.overlap} ratings wanted per image.") in said
    assert "the project has no qualification track: joining it certified a rater" in said
    assert f"5 hidden gold answers, mean absolute error {fmt(0.7 / 5)}" in said
    assert GUIDELINES in "".join(sheet.text)  # escaped in the HTML, read back as written
    assert "<b>Never</b>" not in (tmp_path / "ds2" / "datasheet.html").read_text()
    stored = ProjectStats.objects.get(project=project).agreement
    agreement = sheet.table("dimension")
    assert len(agreement) == len(DIMENSIONS) and "dimension" not in agreement
    for d in DIMENSIONS:
        s = stored[d.key]
        n_images, alpha, icc1, icck = agreement[d.name]
        assert int(n_images) == s["n_images"]
        for text, point in ((alpha, s["krippendorff_alpha"]), (icc1, s["icc2_1"]),
                            (icck, s["icc2_k"])):
            if point is None:
                assert text == "undefined"
                continue
            m = re.fullmatch(r"(-?\d\.\d{3})(?: \[(-?\d\.\d{3}), (-?\d\.\d{3})\])?", text)
            assert m and m.group(1) == fmt(point)
            if m.group(2):
                assert float(m.group(2)) <= float(m.group(3))

    # Maintenance: version 2 against version 1, from the release items.
    v1 = dict(ReleaseItem.objects.filter(release__name="ds", release__version="1")
              .values_list("image_id", "split"))
    v2 = dict(ReleaseItem.objects.filter(release=release).values_list("image_id", "split"))
    moved = sum(1 for i in v1 if i in v2 and v1[i] != v2[i])
    assert (f"Against version 1: {len(set(v2) - set(v1))} images added, "
            f"{len(set(v1) - set(v2))} removed, 0 withheld by the version promise, "
            f"{moved} moved between splits") in said

    # Consent is not recorded, and the datasheet does not pretend; the contact is given.
    assert "The platform does not record whether the people shown consented" in said
    assert "Takedown requests: takedown@example.org." in said

    # Configuration: every key once.
    keys = [row[0] for row in next(t for t in sheet.tables if t[0] == ["setting", "value"])[1:]]
    assert len(keys) == len(set(keys)) and {"seed", "projects", "contact"} <= set(keys)

    # The card's prose sums the datasheet up.
    card = (tmp_path / "ds2" / "README.md").read_text()
    alpha = stored["comprehensive_aesthetic"]["krippendorff_alpha"]
    assert (f"- Project {project.name}: {raters} raters, {project.overlap} ratings wanted per "
            f"image; Krippendorff's alpha of the comprehensive score {fmt(alpha)}.") in card
    assert f"- Since version 1: {len(set(v2) - set(v1))} added, " in card
    assert "- Takedown requests: takedown@example.org." in card
    assert "Consent of the people shown is not recorded by the platform." in card

    # In Chromium at a phone's, a tablet's and a desktop's width: no horizontal overflow,
    # the 13 plots drawn inline.
    page.set_content((tmp_path / "ds2" / "datasheet.html").read_text())
    for width, height in ((390, 844), (768, 1024), (1440, 900)):
        page.set_viewport_size({"width": width, "height": height})
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        assert page.locator("figure svg").count() == 1 + len(DIMENSIONS)
        assert page.locator("figure svg").first.bounding_box()["width"] <= width


def test_what_the_platform_does_not_know_is_said(data, tmp_path):
    """A first version of source images only, no contact: each such section says so."""
    run("release", "build", "bare", "--version", "1", "--sources", "src", "--images", "none",
        "--formats", "parquet", "--out", str(tmp_path / "bare"), "--wait")
    sheet = Page()
    sheet.feed((tmp_path / "bare" / "datasheet.html").read_text())
    said = sheet.say()
    assert "Version 1 is the first ready version of this name: nothing to compare with." in said
    assert "No rating project is in this release: no image was rated on the platform." in said
    assert "No takedown contact was given for this release (build option --contact)." in said
    assert "nothing about consent was verified by this build" in said
    assert "Who requested and funded this release is not recorded by the platform." in said
