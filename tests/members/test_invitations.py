"""One-time invitation links: made by a project admin, used once, until they expire."""

import threading
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from annotation.models import AuditEvent, Invitation, Membership
from annotation.services import members as member_services
from tests.conftest import client_for
from tests.threads import run_threads

from .conftest import member


def invite(project, actor, role="annotator", **extra):
    resp = client_for(actor).post(
        f"/api/projects/{project.pk}/invitations/", {"role": role, **extra}, format="json"
    )
    assert resp.status_code == 201, resp.content
    return resp.json()


def token_of(body) -> str:
    return body["url"].rstrip("/").rsplit("/", 1)[1]


@pytest.mark.django_db
def test_a_link_makes_a_new_account_that_joins_and_is_logged_in(team):
    project, _, users = team
    body = invite(project, users["boss"], "reviewer", days=3)
    token = token_of(body)
    assert body["url"].endswith(f"/invitations/{token}/")
    invitation = Invitation.objects.get(pk=body["id"])
    assert token not in invitation.token_hash and len(invitation.token_hash) == 64
    lasts = invitation.expires_at - invitation.created_at
    assert abs(lasts - timedelta(days=3)) < timedelta(seconds=5)
    pending = client_for(users["boss"]).get(f"/api/projects/{project.pk}/invitations/").json()
    assert [p["id"] for p in pending] == [body["id"]] and "url" not in pending[0]

    browser = Client()
    shown = browser.get(f"/api/invitations/{token}/")
    assert shown.status_code == 200
    assert shown.json()["project"] == project.name and shown.json()["role"] == "reviewer"

    weak = browser.post(
        f"/api/invitations/{token}/accept/", {"username": "fresh", "password": "12345678"},
        content_type="application/json",
    )
    assert weak.status_code == 400
    assert "This password is too common." in weak.json()["errors"]
    assert not get_user_model().objects.filter(username="fresh").exists()

    taken = browser.post(
        f"/api/invitations/{token}/accept/", {"username": "r1", "password": "a-Long-pass-9"},
        content_type="application/json",
    )
    assert taken.status_code == 409
    assert taken.json()["detail"] == "the username 'r1' is taken: choose another"

    joined = browser.post(
        f"/api/invitations/{token}/accept/", {"username": "fresh", "password": "a-Long-pass-9"},
        content_type="application/json",
    )
    assert joined.status_code == 201, joined.content
    assert joined.json() == {
        "project": project.pk, "username": "fresh", "role": "reviewer", "new_account": True,
        "next": "/",
    }
    assert member(project, "fresh").role == "reviewer"
    assert get_user_model().objects.get(username="fresh").check_password("a-Long-pass-9")
    # The same browser is now logged in as the new account.
    assert browser.get("/api/me/").json()["username"] == "fresh"
    assert client_for(users["boss"]).get(f"/api/projects/{project.pk}/invitations/").json() == []

    accepted = AuditEvent.objects.get(project=project, action="invitation_accepted")
    assert accepted.actor.username == "fresh" and accepted.subject.username == "fresh"
    assert accepted.details == {
        "invitation": body["id"], "role": "reviewer", "new_account": True, "invited_by": "boss",
    }


@pytest.mark.django_db
def test_a_logged_in_user_joins_with_their_account(team):
    project, _, users = team
    token = token_of(invite(project, users["boss"]))
    resp = client_for(users["newbie"]).post(f"/api/invitations/{token}/accept/", {})
    assert resp.status_code == 201 and resp.json()["new_account"] is False
    assert member(project, "newbie").role == "annotator"

    # A member already in the project does not use up a second link.
    second = token_of(invite(project, users["boss"]))
    again = client_for(users["r1"]).post(f"/api/invitations/{second}/accept/", {})
    assert again.status_code == 409
    assert again.json()["detail"] == f"you are already a member of '{project.name}' (as annotator)"
    assert Invitation.objects.get(token_hash=member_services.token_hash(second)).used_at is None


@pytest.mark.django_db
def test_a_link_works_once(team):
    project, _, users = team
    token = token_of(invite(project, users["boss"]))
    first = client_for(users["newbie"]).post(f"/api/invitations/{token}/accept/", {})
    assert first.status_code == 201
    reused = client_for(users["outsider"]).post(f"/api/invitations/{token}/accept/", {})
    assert reused.status_code == 410
    assert reused.json() == {
        "detail": "this invitation link was used already: ask for a new one",
        "code": "invitation_invalid",
    }
    assert member(project, "outsider") is None
    assert client_for(None).get(f"/api/invitations/{token}/").status_code == 410
    page = Client().get(f"/invitations/{token}/")
    assert page.status_code == 410 and b"was used already" in page.content


@pytest.mark.django_db
def test_expired_revoked_and_unknown_links_are_refused(team):
    project, _, users = team
    body = invite(project, users["boss"])
    token = token_of(body)
    past = timezone.now() - timedelta(seconds=1)
    Invitation.objects.filter(pk=body["id"]).update(expires_at=past)
    expired = client_for(users["newbie"]).post(f"/api/invitations/{token}/accept/", {})
    assert expired.status_code == 410
    assert expired.json()["detail"] == "this invitation link has expired: ask for a new one"

    revoked = invite(project, users["boss"])
    gone = client_for(users["boss"]).delete(
        f"/api/projects/{project.pk}/invitations/{revoked['id']}/"
    )
    assert gone.status_code == 204
    refused = client_for(users["newbie"]).post(
        f"/api/invitations/{token_of(revoked)}/accept/", {}
    )
    assert refused.status_code == 410 and "expired" in refused.json()["detail"]

    unknown = client_for(users["newbie"]).post("/api/invitations/not-a-token/accept/", {})
    assert unknown.status_code == 410
    assert unknown.json()["detail"] == "this invitation link is not valid: ask for a new one"
    assert member(project, "newbie") is None

    too_long = client_for(users["boss"]).post(
        f"/api/projects/{project.pk}/invitations/", {"role": "annotator", "days": 31}
    )
    assert too_long.status_code == 400
    assert too_long.json()["errors"]["days"] == ["Ensure this value is less than or equal to 30."]


@pytest.mark.django_db
def test_an_anonymous_accept_needs_the_pages_csrf_token(team):
    project, _, users = team
    token = token_of(invite(project, users["boss"]))
    browser = Client(enforce_csrf_checks=True)
    bare = browser.post(
        f"/api/invitations/{token}/accept/", {"username": "csrf", "password": "a-Long-pass-9"},
        content_type="application/json",
    )
    assert bare.status_code == 403 and "CSRF" in bare.json()["detail"]
    page = browser.get(f"/invitations/{token}/")
    assert page.status_code == 200 and b"Join " in page.content
    ok = browser.post(
        f"/api/invitations/{token}/accept/", {"username": "csrf", "password": "a-Long-pass-9"},
        content_type="application/json", HTTP_X_CSRFTOKEN=browser.cookies["csrftoken"].value,
    )
    assert ok.status_code == 201, ok.content


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_accepts_of_one_link_one_wins(team):
    """Against PostgreSQL, with real threads: both requests pass the link's check at the same
    moment; the row lock lets exactly one of them join."""
    project, _, users = team
    for round_ in range(3):
        invitation, token = member_services.create_invitation(
            project, "annotator", actor=users["boss"]
        )
        names = [f"racer{round_}a", f"racer{round_}b"]
        barrier = threading.Barrier(len(names))
        outcomes: dict[str, str] = {}

        def accept(name, token=token, barrier=barrier, outcomes=outcomes):
            barrier.wait(timeout=30)
            try:
                member_services.accept_invitation(token, username=name, password="a-Long-pass-9")
                outcomes[name] = "joined"
            except member_services.InvitationInvalid as exc:
                outcomes[name] = exc.message

        assert run_threads(accept, names, barrier=barrier, timeout=60) == []
        assert sorted(outcomes.values()) == [
            "joined", "this invitation link was used already: ask for a new one",
        ]
        winner = next(n for n, o in outcomes.items() if o == "joined")
        assert list(
            Membership.objects.filter(project=project, user__username__in=names).values_list(
                "user__username", flat=True
            )
        ) == [winner]
        # The loser made no account.
        assert list(
            get_user_model().objects.filter(username__in=names).values_list("username", flat=True)
        ) == [winner]
        invitation.refresh_from_db()
        assert invitation.used_by.username == winner
