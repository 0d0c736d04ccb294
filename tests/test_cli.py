"""The command-line contract: import_images, add_member, demo."""

import shutil
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from annotation.models import Membership, Project, ProjectImage
from curation.models import Image
from tests.conftest import write_image

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_import_images_recursive_dedup_and_bad_files(tmp_path):
    root = tmp_path / "photos"
    write_image(root / "a.jpg", seed=1)
    write_image(root / "nested" / "deeper" / "b.png", seed=2, fmt="PNG")
    shutil.copy(root / "a.jpg", root / "nested" / "a_copy.jpg")  # exact duplicate
    (root / "notes.jpg").write_text("not an image")
    truncated = write_image(tmp_path / "t.jpg", size=(400, 300), seed=3).read_bytes()
    (root / "truncated.jpg").write_bytes(truncated[: len(truncated) // 2])

    out, err = run("import_images", str(root), "--project", "P1", "--overlap", "2")
    project = Project.objects.get(name="P1")
    assert project.overlap == 2
    assert Image.objects.count() == 2
    assert ProjectImage.objects.filter(project=project).count() == 2
    assert "notes.jpg" in err and "truncated.jpg" in err
    assert "2 bad files" in out

    # running it again adds nothing
    out, _ = run("import_images", str(root), "--project", "P1")
    assert "0 new images" in out and "0 added to the project" in out
    assert Image.objects.count() == 2


def test_import_images_refuses_a_missing_directory(tmp_path):
    with pytest.raises(CommandError, match="not a directory"):
        run("import_images", str(tmp_path / "nope"), "--project", "P")
    with pytest.raises(CommandError, match="overlap"):
        run("import_images", str(tmp_path), "--project", "P", "--overlap", "0")


def test_add_member_creates_user_and_sets_role(tmp_path):
    run("import_images", str(tmp_path), "--project", "P2")
    _out, _ = run("add_member", "P2", "newbie", "--role", "annotator", "--password", "pw-abc-123")
    user = get_user_model().objects.get(username="newbie")
    assert user.check_password("pw-abc-123")
    assert Membership.objects.get(user=user).role == "annotator"
    run("add_member", "P2", "newbie", "--role", "curator")
    assert Membership.objects.get(user=user).role == "curator"
    assert user.groups.filter(name="curator").exists()
    with pytest.raises(CommandError, match="no project"):
        run("add_member", "nope", "x", "--role", "annotator")


def test_add_member_refuses_unknown_roles(tmp_path):
    run("import_images", str(tmp_path), "--project", "P3")
    with pytest.raises(CommandError):
        run("add_member", "P3", "x", "--role", "overlord")


def test_demo_seeds_users_and_a_project_with_photos(settings, tmp_path):
    settings.IMPORT_ROOTS = [tmp_path.resolve()]
    out, _ = run("demo")
    manifest = tmp_path / "sample-portraits" / "labels.csv"
    assert str(manifest) in out  # a dataset for curators to import, with its scale
    rows = manifest.read_text().splitlines()
    photos = list((tmp_path / "sample-portraits" / "photos").glob("*.jpg"))
    assert rows[0] == "path,score" and len(rows) - 1 == len(photos) >= 10
    from curation.services.sources import import_source

    report = import_source("manifest", manifest, "sample", scale=(1, 10))
    assert report.created == len(rows) - 1 and not report.errors
    project = Project.objects.get(name__startswith="Demo")
    assert project.items.count() >= 10
    assert "alice" in out and "demo-pass-123" in out
    alice = get_user_model().objects.get(username="alice")
    assert alice.check_password("demo-pass-123")
    # idempotent: a second run adds no images and no duplicate memberships
    n = project.items.count()
    run("demo")
    assert project.items.count() == n
    assert Membership.objects.filter(user=alice).count() == 1


def test_deploy_check_is_clean_with_production_settings(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "DEBUG": "0",
        "SECRET_KEY": "a" * 20 + "-production-secret-" + "z9" * 20,
        "ALLOWED_HOSTS": "humanbeauty.example.org",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_shipped_compose_file_passes_the_deploy_check(tmp_path):
    """docker-compose.yml as shipped: HTTPS at a proxy in front of an unpublished app, and
    Django's deployment checklist clean with exactly the app's environment from the file."""
    import re

    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert "ports" not in services["web"], "the app must be reached through the proxy only"
    assert any("443" in str(p) for p in services["proxy"]["ports"])
    env = {"PATH": "/usr/bin:/bin", "SECRET_KEY": "k" * 30 + "-from-the-env-" + "q7" * 20}
    for key, value in services["web"]["environment"].items():
        # ${VAR:-default} takes its default; ${VAR:?message} the value we provide
        value = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: m.group(2), str(value))
        value = re.sub(r"\$\{(\w+):\?[^}]*\}", lambda m: env.get(m.group(1), ""), value)
        env.setdefault(key, value)
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"  # no PostgreSQL host here
    env.pop("CELERY_BROKER_URL", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert env["HTTPS"] == "1" and env["PROXY_COUNT"] == "1"


def test_a_refusal_ends_any_command_as_a_command_error_with_its_items_listed():
    """core.cli.Command: a service's refusal reaches the user as its message (exit status 1,
    no traceback), its item-by-item errors first on stderr; other errors are not swallowed."""
    from core import cli
    from humanbeauty.errors import DomainError

    class Refuses(cli.Command):
        def handle(self, *args, **options):
            raise DomainError("2 rows refused", errors=["line 2: bad", "line 5: worse"])

    err = StringIO()
    with pytest.raises(CommandError, match=r"^2 rows refused$"):
        call_command(Refuses(), stderr=err, stdout=StringIO())
    assert err.getvalue().splitlines() == ["line 2: bad", "line 5: worse"]

    class Breaks(cli.Command):
        def handle(self, *args, **options):
            raise KeyError("a bug")

    with pytest.raises(KeyError):
        call_command(Breaks(), stderr=StringIO(), stdout=StringIO())

