"""The members page in Chromium, on a phone and on a desktop: a project admin adds someone,
invites someone else whose link is opened in a second browser, changes a certification and
removes a member; the pages never scroll sideways."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from annotation.models import AuditEvent, Membership
from tests.browser.test_small_screens import PHONE, assert_fits
from tests.browser_support import PASSWORD, login
from tests.conftest import make_user

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

DESKTOP = {"width": 1440, "height": 900}


def role_of(project, username):
    return (
        Membership.objects.filter(project=project, user__username=username)
        .values_list("role", "status")
        .first()
    )


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_a_project_admin_manages_members_from_the_page(
    page, browser, live_server, transactional_db, make_project, viewport
):
    project, _, _ = make_project(3, overlap=2, raters=["rita", "ravi"])
    boss = make_user("boss", password=PASSWORD)
    Membership.objects.create(project=project, user=boss, role="admin")
    make_user("newbie", password=PASSWORD)

    page.set_viewport_size(viewport)
    login(page, "boss")
    page.goto(f"/projects/{project.pk}/members/")
    rows = page.locator("#members li.member")
    expect(rows).to_have_count(3)
    expect(page.get_by_role("link", name="Members")).to_have_attribute("aria-current", "page")
    # A project admin without platform powers cannot pick a platform-wide role.
    expect(page.locator("#add-role option[value=admin]")).to_be_disabled()
    assert_fits(page, "members page")

    # Add someone who has an account.
    page.get_by_label("Username").fill("newbie")
    page.locator("#add-role").select_option("annotator")
    page.get_by_role("button", name="Add member").click()
    expect(page.locator("#message")).to_have_text("newbie was added as annotator.")
    expect(rows).to_have_count(4)
    assert role_of(project, "newbie") == ("annotator", "certified")

    # Invite someone new; the link is opened in another browser.
    page.locator("#invite-role").select_option("reviewer")
    page.get_by_role("button", name="Create link").click()
    link = page.locator("#invite-url")
    expect(link).not_to_have_value("")
    url = link.input_value()
    assert url.startswith(f"{live_server.url}/invitations/")
    expect(page.locator("#pending li")).to_have_count(1)
    expect(page.locator("#pending li")).to_contain_text("reviewer, by boss")

    other = browser.new_context(viewport=viewport, base_url=live_server.url)
    try:
        guest = other.new_page()
        guest.goto(url)
        expect(guest.get_by_role("heading", name=f"Join {project.name}")).to_be_visible()
        assert_fits(guest, "invitation page")
        guest.get_by_label("Choose a username").fill("vera")
        guest.get_by_label("Choose a password").fill("123")
        guest.get_by_role("button", name="Create account and join").click()
        expect(guest.locator("#message")).to_contain_text("This password is too short.")
        guest.get_by_label("Choose a password").fill("Vera-rates-2026")
        with guest.expect_navigation():
            guest.get_by_role("button", name="Create account and join").click()
        expect(guest.get_by_text(project.name).first).to_be_visible()
        assert role_of(project, "vera") == ("reviewer", "certified")
        # The link is spent: opening it again says so.
        guest.goto(url)
        expect(guest.locator("#invalid")).to_have_text(
            "this invitation link was used already: ask for a new one"
        )
    finally:
        other.close()

    # Back on the members page: the new member is there; a certification changes.
    page.reload()
    expect(rows).to_have_count(5)
    expect(page.locator("#pending li")).to_have_text("None.")
    rita = page.locator('li.member[data-username="rita"]')
    rita.get_by_label("Certification of rita").select_option("paused")
    expect(page.locator("#message")).to_have_text("rita is now paused.")
    assert role_of(project, "rita") == ("annotator", "paused")

    # Removing takes a second tap.
    remove = page.locator('li.member[data-username="ravi"]').get_by_role("button", name="Remove")
    remove.click()
    page.get_by_role("button", name="Remove ravi?").click()
    expect(page.locator("#message")).to_have_text("ravi was removed.")
    expect(rows).to_have_count(4)
    assert role_of(project, "ravi") is None
    assert_fits(page, "members page after changes")

    actions = set(AuditEvent.objects.filter(project=project).values_list("action", flat=True))
    assert {"member_added", "invitation_created", "invitation_accepted", "rater_paused",
            "member_removed"} <= actions


def test_reviewers_are_kept_off_the_page(page, transactional_db, make_project):
    project, _, _ = make_project(1, raters=["rev"], role="reviewer")
    login(page, "rev", "pw-123456")
    resp = page.goto(f"/projects/{project.pk}/members/")
    assert resp.status == 403
    expect(page.locator("main")).to_contain_text("Members are managed by the project's admins.")
