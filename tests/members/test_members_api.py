"""/api/projects/{id}/members/: who may manage members, what each change does, the audit."""

import pytest
from django.core.management import call_command

from annotation import services
from annotation.models import Assignment, AssignmentStatus, AuditEvent, ProjectImage
from tests.conftest import client_for, full_scores, new_request_id

from .conftest import member, user

pytestmark = pytest.mark.django_db


def leased(project) -> int:
    return sum(ProjectImage.objects.filter(project=project).values_list("leased", flat=True))


def members_url(project, username=""):
    return f"/api/projects/{project.pk}/members/" + (f"{username}/" if username else "")


@pytest.mark.parametrize("who", ["r1", "rev"])
def test_annotators_and_reviewers_are_refused_every_action(team, who):
    project, _, users = team
    client = client_for(users[who])
    answers = [
        client.get(members_url(project)),
        client.post(members_url(project), {"username": "newbie", "role": "annotator"}),
        client.patch(members_url(project, "r2"), {"role": "reviewer"}),
        client.delete(members_url(project, "r2")),
        client.post(f"/api/projects/{project.pk}/invitations/", {"role": "annotator"}),
    ]
    for resp in answers:
        assert resp.status_code == 403, resp.content
        assert resp.json()["detail"] == "members are managed by the project's admins"
    assert member(project, "newbie") is None and member(project, "r2").role == "annotator"


def test_outsiders_get_the_404_of_a_missing_project(team):
    project, _, users = team
    client = client_for(users["outsider"])
    missing = client_for(users["outsider"]).get("/api/projects/999999/members/")
    assert missing.status_code == 404
    for resp in (
        client.get(members_url(project)),
        client.post(members_url(project), {"username": "newbie", "role": "annotator"}),
        client.delete(members_url(project, "r1")),
    ):
        assert resp.status_code == 404
        assert resp.json()["detail"] == f"project {project.pk} does not exist"
    assert client_for(None).get(members_url(project)).status_code in (401, 403)


def test_a_project_admin_lists_adds_and_changes_roles(team):
    project, _, users = team
    client = client_for(users["boss"])
    rows = client.get(members_url(project)).json()
    assert [r["username"] for r in rows] == ["boss", "r1", "r2", "rev"]
    r1 = next(r for r in rows if r["username"] == "r1")
    assert r1["role"] == "annotator" and r1["status"] == "certified" and r1["excluded"] is False

    added = client.post(members_url(project), {"username": "newbie", "role": "annotator"})
    assert added.status_code == 201, added.content
    assert added.json()["username"] == "newbie" and added.json()["role"] == "annotator"
    assert member(project, "newbie").status == "certified"  # no qualification track

    again = client.post(members_url(project), {"username": "newbie", "role": "reviewer"})
    assert again.status_code == 409
    assert again.json()["detail"] == (
        f"newbie is already a member of '{project.name}' (as annotator)"
    )

    nobody = client.post(members_url(project), {"username": "ghost", "role": "annotator"})
    assert nobody.status_code == 404
    assert "invite them with a link" in nobody.json()["detail"]

    bad_role = client.post(members_url(project), {"username": "outsider", "role": "overlord"})
    assert bad_role.status_code == 400 and "unknown role 'overlord'" in bad_role.json()["detail"]

    changed = client.patch(members_url(project, "newbie"), {"role": "reviewer"}, format="json")
    assert changed.status_code == 200 and changed.json()["role"] == "reviewer"
    assert member(project, "newbie").role == "reviewer"


@pytest.mark.parametrize("role", ["admin", "curator", "researcher"])
def test_only_a_platform_admin_gives_a_platform_wide_role(team, role):
    project, _, users = team
    refused = client_for(users["boss"]).post(
        members_url(project), {"username": "newbie", "role": role}
    )
    assert refused.status_code == 403
    assert refused.json()["detail"].startswith(f"only a platform admin may give the role '{role}'")
    promote = client_for(users["boss"]).patch(members_url(project, "r1"), {"role": role})
    assert promote.status_code == 403
    invite = client_for(users["boss"]).post(
        f"/api/projects/{project.pk}/invitations/", {"role": role}
    )
    assert invite.status_code == 403
    assert member(project, "newbie") is None and member(project, "r1").role == "annotator"
    assert not user("newbie").groups.exists() and not user("r1").groups.exists()

    granted = client_for(users["platform"]).post(
        members_url(project), {"username": "newbie", "role": role}
    )
    assert granted.status_code == 201
    assert list(user("newbie").groups.values_list("name", flat=True)) == [role]


def test_a_project_admin_leaves_platform_roles_and_their_own_membership_alone(team):
    project, _, users = team
    services.add_member(project, "cur", "curator")  # the command line's hand
    client = client_for(users["boss"])
    demote = client.patch(members_url(project, "cur"), {"role": "annotator"})
    assert demote.status_code == 403 and "only a platform admin" in demote.json()["detail"]
    assert client.delete(members_url(project, "cur")).status_code == 403
    own = client.delete(members_url(project, "boss"))
    assert own.status_code == 403
    assert own.json()["detail"] == "managers do not change their own membership"
    assert member(project, "cur") is not None and member(project, "boss") is not None
    # A platform admin may.
    assert client_for(users["platform"]).delete(members_url(project, "cur")).status_code == 200


def test_removing_a_member_ends_their_leases_and_keeps_their_ratings(team):
    project, _, users = team
    done = services.next_task(project, users["r1"])
    services.submit_rating(done.pk, users["r1"], full_scores(3), new_request_id())
    first = services.next_task(project, users["r1"])
    held = [first, services.next_task(project, users["r1"], exclude=[first.pk])]
    assert held[1] is not None and held[1].pk != first.pk
    assert leased(project) == 2

    resp = client_for(users["boss"]).delete(members_url(project, "r1"))
    assert resp.status_code == 200 and resp.json() == {"leases_released": 2}
    assert member(project, "r1") is None
    statuses = Assignment.objects.filter(pk__in=[a.pk for a in held]).values_list("status")
    assert set(s for (s,) in statuses) == {AssignmentStatus.EXPIRED}
    assert leased(project) == 0
    assert project.ratings.filter(rater=users["r1"]).count() == 1
    # Their released lease takes no late rating, and the queue is closed to them.
    late = client_for(users["r1"]).post(
        f"/api/assignments/{held[0].pk}/rating/",
        {"scores": full_scores(3), "request_id": new_request_id()},
        format="json",
    )
    assert late.status_code == 403, late.content
    assert late.json()["detail"] == f"you are no longer a member of '{project.name}'"
    assert client_for(users["r1"]).get(f"/api/projects/{project.pk}/next/").status_code == 404
    # The slots went back to the queue: another rater gets them.
    assert services.next_task(project, users["r2"]) is not None


def test_certification_is_seen_and_changed_by_the_project_admin(team):
    project, _, users = team
    client = client_for(users["boss"])
    resp = client.post(
        f"/api/projects/{project.pk}/raters/r2/status/", {"status": "paused", "reason": "check"}
    )
    assert resp.status_code == 200, resp.content
    row = next(r for r in client.get(members_url(project)).json() if r["username"] == "r2")
    assert row["status"] == "paused" and row["status_reason"] == "check"


def test_every_change_is_audited(team):
    project, _, users = team
    boss = client_for(users["boss"])
    boss.post(members_url(project), {"username": "newbie", "role": "annotator"})
    boss.patch(members_url(project, "newbie"), {"role": "reviewer"})
    boss.delete(members_url(project, "newbie"))
    invite = boss.post(f"/api/projects/{project.pk}/invitations/", {"role": "annotator"}).json()
    boss.delete(f"/api/projects/{project.pk}/invitations/{invite['id']}/")
    events = list(
        AuditEvent.objects.filter(project=project).order_by("id").values_list(
            "action", "actor__username", "subject__username", "details"
        )
    )
    assert [e[:3] for e in events] == [
        ("member_added", "boss", "newbie"),
        ("member_role_changed", "boss", "newbie"),
        ("member_removed", "boss", "newbie"),
        ("invitation_created", "boss", None),
        ("invitation_revoked", "boss", None),
    ]
    assert events[1][3] == {"before": "annotator", "role": "reviewer"}
    assert events[2][3] == {"role": "reviewer", "leases_released": 0}
    assert events[3][3]["invitation"] == invite["id"] and events[3][3]["role"] == "annotator"


def test_the_add_member_command_still_grants_platform_roles(team):
    project, _, _ = team
    call_command("add_member", project.name, "ops", "--role", "admin")
    assert member(project, "ops").role == "admin"
    assert list(user("ops").groups.values_list("name", flat=True)) == ["admin"]
