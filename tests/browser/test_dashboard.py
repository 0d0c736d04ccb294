"""The manager dashboard in real Chromium: SVG plots from the API, the rater table, status changes.

A project rated by simulated raters (careful, biased, random; with hidden gold) over several
days; statistics refreshed by the real service. What the tests expect (dimensions, metrics,
bins) comes from the API and the standard module, never from a list spelled out here.
"""

from __future__ import annotations

import os
import random
import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import expect

from annotation import services
from annotation.models import AuditEvent, ItemKind, Membership, ProjectStats, RaterStatus, Rating
from annotation.services.quality import refresh_statistics
from annotation.views import dimension_groups
from humanbeauty.standard import DIMENSION_KEYS
from tests.conftest import make_user
from tests.quality.conftest import SimRater, make_references, rate_until_done

from .conftest import PASSWORD, login

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]

SCREENSHOT = os.environ.get("DASHBOARD_SCREENSHOT", "/tmp/dashboard.png")
RATERS = {"ana": "careful", "ben": "careful", "cleo": "careful", "dev": "biased", "rnd": "random"}
DAYS_AGO = (6, 5, 5, 4, 2, 2, 1, 0)  # rating i (in id order) was made DAYS_AGO[i % 8] days ago


def build_rated_project(
    photo_project, *, n_images: int = 14, threshold: float = 0.12, screening="correlation"
):
    """A project whose raters rated everything over several days, statistics refreshed.

    Without screening, the random rater's images are disputed (queued for review).
    Returns (project, users by name); "rev" is the project's reviewer.
    """
    project, images, users = photo_project(n_images, raters=tuple(RATERS), overlap=4)
    make_references(project, images[:2], ItemKind.GOLD)
    project.gold_rate, project.gold_min_n = 0.2, 2
    project.disagreement_threshold, project.screening = threshold, screening
    project.save()
    sims = {name: SimRater(kind, seed=i) for i, (name, kind) in enumerate(RATERS.items())}
    rng = random.Random(3)
    active = set(RATERS)
    while active:  # round robin: every rater meets every other on many images
        for name in sorted(active):
            if rate_until_done(project, users[name], sims[name], rng=rng, limit=1) == 0:
                active.discard(name)
    base = timezone.now().replace(minute=0, second=0, microsecond=0)
    ids = Rating.objects.filter(project=project).order_by("id").values_list("id", flat=True)
    for i, rating_id in enumerate(ids):
        Rating.objects.filter(pk=rating_id).update(
            created_at=base - timedelta(days=DAYS_AGO[i % len(DAYS_AGO)], hours=i % 7),
            time_spent_ms=12_000 + (i * 7919) % 30_000,
        )
    services.add_member(project, "rev", "reviewer", password=PASSWORD)
    users["rev"] = get_user_model().objects.get(username="rev")
    refresh_statistics(project, only_stale=False)
    return project, users


def page_dimension_names() -> list[str]:
    return [d["name"] for g in dimension_groups() for d in g["dimensions"]]


def api_json(page, path: str) -> dict:
    response = page.request.get(path)
    assert response.ok, (path, response.status)
    return response.json()


def test_the_dashboard_plots_the_projects_figures(page, photo_project):
    project, users = build_rated_project(photo_project)
    login(page, "rev")
    # Home links to the dashboard (and the review queue) for a reviewer.
    card = page.locator(".project-card", has_text=project.name)
    expect(card.get_by_role("link", name=re.compile("^Dashboard"))).to_be_visible()
    expect(card.get_by_role("link", name=re.compile("^Review queue"))).to_be_visible()
    card.get_by_role("link", name=re.compile("^Dashboard")).click()
    page.wait_for_url(re.compile(rf"/projects/{project.pk}/dashboard/$"))
    expect(page.locator("body[data-ready=true]")).to_be_attached()

    base = f"/api/projects/{project.pk}"
    timeline = api_json(page, f"{base}/timeline/")
    histograms = api_json(page, f"{base}/histograms/?bins=10")
    agreement = ProjectStats.objects.get(project=project).agreement

    # Progress over time: one bar per bucket, one cumulative line, the required line.
    days = {timezone.localtime(t).date() for t in Rating.objects.filter(
        project=project, assignment__project_image__kind=ItemKind.PRODUCTION
    ).values_list("created_at", flat=True)}
    assert timeline["bucket"] == "day"
    assert len(timeline["points"]) == (max(days) - min(days)).days + 1
    progress = page.locator("#chart-progress svg")
    expect(progress.locator(".series-per-bucket rect.bar")).to_have_count(len(timeline["points"]))
    expect(progress.locator("path.line")).to_have_count(1)
    expect(progress.locator(".ref-label")).to_have_text(
        re.compile(rf"required {timeline['progress']['ratings_required']}")
    )

    # Throughput: a row per rater, production and reference segments.
    throughput = page.locator("#chart-throughput svg")
    expect(throughput.locator(".series-0 rect.bar")).to_have_count(len(RATERS))
    expect(throughput.locator(".series-1 rect.bar")).to_have_count(len(RATERS))
    expect(throughput.locator(".row-label")).to_have_text(
        [r["username"] for r in timeline["raters"]]
    )

    # Agreement: four metrics (series) of twelve dimensions (bars), labelled in page order.
    chart = page.locator("#chart-agreement svg")
    expect(chart.locator("g.series")).to_have_count(4)
    for series in chart.locator("g.series").all():
        metric = series.get_attribute("data-series")
        finite = [k for k in DIMENSION_KEYS if agreement[k][metric] is not None]
        assert len(finite) == len(DIMENSION_KEYS), metric  # dense enough for every figure
        expect(series.locator("rect.bar")).to_have_count(len(DIMENSION_KEYS))
    expect(chart.locator(".row-label")).to_have_text(page_dimension_names())

    # Histograms: twelve small multiples of ten bins; each bar's count is the API's.
    cards = page.locator("#histograms .hist-card")
    expect(cards).to_have_count(len(DIMENSION_KEYS))
    expect(page.locator("#histograms .hist-name")).to_have_text(page_dimension_names())
    for key in ("looks", "comprehensive_aesthetic"):
        bars = page.locator(f'.hist-card[data-dimension="{key}"] svg rect.bar')
        expect(bars).to_have_count(histograms["bins"])
        heights = bars.evaluate_all("bs => bs.map(b => Number(b.getAttribute('height')))")
        counts = histograms["dimensions"][key]["counts"]
        assert [h > 0 for h in heights] == [c > 0 for c in counts]
    page.locator('#bins-picker [data-bins="5"]').click()
    expect(page.locator('.hist-card[data-dimension="looks"] svg rect.bar')).to_have_count(5)

    # Rater map: a dot per rater with figures.
    expect(page.locator("#chart-map svg circle.dot")).to_have_count(len(RATERS))

    # The rater table lists every rater (reviewers rate too) with their status.
    raters = api_json(page, f"{base}/raters/")
    assert {r["username"] for r in raters} == {*RATERS, "rev"}
    expect(page.locator("#rater-table tbody th.rater-name")).to_have_text(
        [r["username"] for r in raters]
    )
    for name in RATERS:
        status = Membership.objects.get(project=project, user=users[name]).status
        expect(page.locator(f'#rater-table tr[data-username="{name}"] .status').first).to_have_text(
            status
        )
    page.screenshot(path=SCREENSHOT, full_page=True)


def test_revoking_a_rater_from_the_table_is_audited(page, photo_project):
    project, users = build_rated_project(photo_project, n_images=8)
    login(page, "rev")
    page.goto(f"/projects/{project.pk}/dashboard/")
    expect(page.locator("body[data-ready=true]")).to_be_attached()
    row = page.locator('#rater-table tr[data-username="rnd"]')
    before = Membership.objects.get(project=project, user=users["rnd"]).status
    row.locator('button[data-status="revoked"]').click()
    dialog = page.locator("#status-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#status-title")).to_have_text("Revoke rnd")
    # A revocation needs a reason.
    dialog.locator("#status-confirm").click()
    expect(dialog.locator("#status-error")).to_be_visible()
    dialog.locator("#status-reason").fill("random answers on gold")
    dialog.locator("#status-confirm").click()
    expect(dialog).to_be_hidden()
    expect(row.locator(".status").first).to_have_text("revoked")
    expect(page.locator("#message")).to_have_text("rnd is now revoked.")
    # Only a certification is offered now.
    expect(row.locator("button[data-status]")).to_have_text(["Certify"])

    membership = Membership.objects.get(project=project, user=users["rnd"])
    assert membership.status == RaterStatus.REVOKED
    assert membership.status_reason == "random answers on gold"
    event = AuditEvent.objects.get(project=project, action="rater_revoked")
    assert event.actor == users["rev"] and event.subject == users["rnd"]
    assert event.details == {"before": before, "reason": "random answers on gold"}


def test_refresh_statistics_recomputes_and_reloads(page, photo_project, eager_celery):
    project, users = build_rated_project(photo_project, n_images=6)
    stats = ProjectStats.objects.get(project=project)
    ProjectStats.objects.filter(pk=stats.pk).update(agreement={}, n_ratings=0)
    login(page, "rev")
    page.goto(f"/projects/{project.pk}/dashboard/")
    expect(page.locator("body[data-ready=true]")).to_be_attached()
    expect(page.locator("#chart-agreement")).to_contain_text("No production ratings yet")
    page.evaluate("window.__before_refresh = true")
    with page.expect_navigation():
        page.get_by_role("button", name="Refresh statistics").click()
    expect(page.locator("body[data-ready=true]")).to_be_attached()
    assert page.evaluate("window.__before_refresh") is None  # the page was reloaded
    expect(page.locator("#chart-agreement svg g.series")).to_have_count(4)
    assert ProjectStats.objects.get(project=project).n_ratings > 0


def test_annotators_get_403_on_the_pages_and_the_dashboard_api(page, photo_project):
    project, _ = build_rated_project(photo_project, n_images=4)
    login(page, "ana")
    card = page.locator(".project-card", has_text=project.name)
    expect(card.get_by_role("link", name="Rate images in " + project.name)).to_be_visible()
    expect(card.get_by_role("link", name=re.compile("^(Dashboard|Review)"))).to_have_count(0)
    for path in ("dashboard", "review"):
        response = page.goto(f"/projects/{project.pk}/{path}/")
        assert response.status == 403, path
    for path in ("timeline", "histograms", "agreement", "raters"):
        assert page.request.get(f"/api/projects/{project.pk}/{path}/").status == 403, path


def test_a_global_researcher_reads_the_dashboard_but_changes_nothing(page, photo_project):
    project, _ = build_rated_project(photo_project, n_images=4)
    make_user("res", "researcher", password=PASSWORD)
    login(page, "res")
    page.goto(f"/projects/{project.pk}/dashboard/")
    expect(page.locator("body[data-ready=true]")).to_be_attached()
    expect(page.locator("#chart-agreement svg g.series")).to_have_count(4)
    expect(page.locator("#rater-table tbody tr")).to_have_count(len(RATERS) + 1)
    expect(page.get_by_role("button", name="Refresh statistics")).to_have_count(0)
    expect(page.locator("#rater-table button")).to_have_count(0)
    expect(page.locator(".tabs .tab")).to_have_text(["Dashboard"])  # no review, no rating
    assert page.goto(f"/projects/{project.pk}/review/").status == 403


@pytest.mark.parametrize("width", [1280, 768, 390])
def test_screening_reasons_and_a_managers_exclusion_decisions(page, photo_project, width):
    """Issue #10: every exclusion shows its reason; a manager's Include wins over screening
    until undone, audited; the dashboard says when the figures were computed."""
    project, users = build_rated_project(photo_project, n_images=14)
    project.screening_min_shared = 5
    project.save()
    refresh_statistics(project, only_stale=False)
    rnd = Membership.objects.get(project=project, user=users["rnd"])
    assert rnd.excluded and "correlation" in rnd.exclusion_reason

    page.set_viewport_size({"width": width, "height": 900})
    login(page, "rev")
    page.goto(f"/projects/{project.pk}/dashboard/")
    expect(page.locator("body[data-ready=true]")).to_be_attached()
    expect(page.locator("#stats-meta")).to_contain_text("Rater figures and agreement computed")
    expect(page.locator("#stats-meta")).to_contain_text("up to date with every rating")
    row = page.locator('#rater-table tr[data-username="rnd"]')
    expect(row.locator(".exclusion")).to_have_text("screened out")
    expect(row.locator(".exclusion-reason")).to_have_text(f"Screening: {rnd.exclusion_reason}")
    expect(page.locator('#rater-table tr[data-username="ana"] .exclusion-reason')).to_contain_text(
        "correlation with the other raters"
    )

    row.locator('button[data-exclusion="include"]').click()
    dialog = page.locator("#status-dialog")
    expect(dialog).to_be_visible()
    dialog.locator("#status-reason").fill("answers checked by hand")
    dialog.locator("#status-confirm").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#message")).to_have_text("rnd is included in the consensus.")
    expect(row.locator(".exclusion")).to_have_text("included")
    expect(row.locator(".exclusion-reason")).to_contain_text("Manager's decision")
    rnd.refresh_from_db()
    assert not rnd.excluded and rnd.exclusion_override == "include"
    event = AuditEvent.objects.get(project=project, action="rater_included")
    assert event.actor == users["rev"] and event.details["reason"] == "answers checked by hand"
    refresh_statistics(project, only_stale=False)  # the decision holds across refreshes
    rnd.refresh_from_db()
    assert not rnd.excluded

    page.reload()
    expect(page.locator("body[data-ready=true]")).to_be_attached()
    row.locator('button[data-exclusion="auto"]').click()
    dialog.locator("#status-confirm").click()
    expect(row.locator(".exclusion")).to_have_text("screened out")
    rnd.refresh_from_db()
    assert rnd.excluded and rnd.exclusion_override == ""
    # What this test added is on screen at every width (the rater table scrolls in its frame).
    expect(page.locator("#stats-meta")).to_be_visible()
    row.scroll_into_view_if_needed()
    expect(row.locator(".exclusion-reason")).to_be_visible()
