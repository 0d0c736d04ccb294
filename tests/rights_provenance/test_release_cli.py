"""The command line declares a release's licence like the API: `release build --licence`
refuses a mix the licence does not allow, with the same words, and queues nothing."""

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from modeling.models import Release, ReleaseStatus

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_release_build_licence_refuses_a_research_only_image(mixed, tmp_path):
    with pytest.raises(CommandError) as caught:
        run("release", "build", "cli", "--version", "1", "--sources", "open,closed",
            "--formats", "parquet", "--licence", "CC-BY-4.0", "--out", str(tmp_path / "cli"))
    message = str(caught.value)
    assert "declares CC-BY-4.0" in message and "for 2 image(s)" in message
    assert "research-only (2 image(s))" in message
    assert not Release.objects.exists() and not (tmp_path / "cli").exists()
    with pytest.raises(CommandError, match="a release's licence must be one"):
        run("release", "build", "cli", "--version", "1", "--sources", "open",
            "--licence", "CC BY", "--out", str(tmp_path / "cli"))

    run("release", "build", "cli", "--version", "1", "--sources", "open", "--formats",
        "parquet", "--licence", "cc-by-4.0", "--out", str(tmp_path / "cli"), "--wait")
    release = Release.objects.get(name="cli")
    assert release.status == ReleaseStatus.READY, release.error
    manifest = json.loads((Path(release.out_dir) / "manifest.json").read_text())
    assert manifest["terms"]["declared"] == "CC-BY-4.0"
    assert manifest["terms"]["licences"] == {"CC-BY-4.0": 2}
