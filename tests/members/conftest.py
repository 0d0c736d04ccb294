import pytest
from django.contrib.auth import get_user_model

from annotation.models import Membership
from tests.conftest import make_user


@pytest.fixture
def team(make_project):
    """A project with raters r1, r2; a reviewer; a project admin who holds no platform role
    (as the Django admin could make one); a platform admin; and an outsider."""
    project, images, users = make_project(4, overlap=2, raters=["r1", "r2"])
    users["rev"] = make_user("rev")
    Membership.objects.create(project=project, user=users["rev"], role="reviewer")
    users["boss"] = make_user("boss")
    Membership.objects.create(project=project, user=users["boss"], role="admin")
    users["platform"] = make_user("platform", "admin")
    users["outsider"] = make_user("outsider")
    users["newbie"] = make_user("newbie")
    return project, images, users


def member(project, username):
    return Membership.objects.filter(project=project, user__username=username).first()


def user(username):
    return get_user_model().objects.get(username=username)
