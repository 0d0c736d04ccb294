"""resolve_inside: nothing outside the import roots gets through, whatever the path looks like."""

from __future__ import annotations

import pytest

from humanbeauty.paths import PathOutsideRoots, resolve_inside


@pytest.fixture
def tree(tmp_path):
    """root/ (the import root) with data/a.jpg, and a sibling outside/ with secret.jpg."""
    root = tmp_path / "root"
    (root / "data").mkdir(parents=True)
    (root / "data" / "a.jpg").write_bytes(b"a")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(b"s")
    return root, outside


def test_relative_inside(tree):
    root, _ = tree
    assert resolve_inside("data/a.jpg", [root], base=root) == (root / "data" / "a.jpg").resolve()
    # relative to a manifest folder; a file that does not exist yet is still inside
    assert resolve_inside("new.jpg", [root], base=root / "data") == (root / "data" / "new.jpg")


def test_absolute_inside(tree):
    root, _ = tree
    target = root / "data" / "a.jpg"
    assert resolve_inside(str(target), [root]) == target.resolve()
    assert resolve_inside(target, [str(root)], base="/somewhere/else") == target.resolve()


def test_dotdot_escape_refused(tree):
    root, outside = tree
    with pytest.raises(PathOutsideRoots) as info:
        resolve_inside("../../outside/secret.jpg", [root], base=root / "data")
    msg = str(info.value)
    assert "'../../outside/secret.jpg'" in msg
    assert str(root.resolve()) in msg  # names the roots
    assert "'..' climbs out of the import roots" in msg
    assert info.value.path == "../../outside/secret.jpg"
    assert info.value.roots == [root.resolve()]


def test_dotdot_that_stays_inside_is_fine(tree):
    root, _ = tree
    got = resolve_inside("../data/a.jpg", [root], base=root / "data")
    assert got == (root / "data" / "a.jpg").resolve()


def test_absolute_elsewhere_refused(tree):
    root, outside = tree
    with pytest.raises(PathOutsideRoots, match=r"secret\.jpg.*is outside the import roots"):
        resolve_inside(outside / "secret.jpg", [root])
    with pytest.raises(PathOutsideRoots):
        resolve_inside("/etc/passwd", [root], base=root)


def test_sibling_with_the_same_prefix_is_not_inside(tree, tmp_path):
    root, _ = tree
    twin = tmp_path / "root2"  # "root2" starts with "root" but is another folder
    twin.mkdir()
    with pytest.raises(PathOutsideRoots):
        resolve_inside(twin / "x.jpg", [root])


def test_symlinked_file_pointing_out_refused(tree):
    root, outside = tree
    (root / "data" / "link.jpg").symlink_to(outside / "secret.jpg")
    with pytest.raises(PathOutsideRoots, match=r"symbolic link out of the import roots") as info:
        resolve_inside("data/link.jpg", [root], base=root)
    assert str(outside) not in str(info.value)  # where it leads is not said


def test_symlinked_folder_pointing_out_refused(tree):
    root, outside = tree
    (root / "data" / "more").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PathOutsideRoots, match="symbolic link"):
        resolve_inside(root / "data" / "more" / "secret.jpg", [root])
    # symlink first, '..' after: the OS climbs from the link's target, not from the link
    (outside / "sub").mkdir()
    (root / "data" / "deep").symlink_to(outside / "sub", target_is_directory=True)
    with pytest.raises(PathOutsideRoots):
        resolve_inside("deep/../secret.jpg", [root], base=root / "data")


def test_symlink_inside_the_roots_is_fine(tree):
    root, _ = tree
    (root / "alias.jpg").symlink_to(root / "data" / "a.jpg")
    assert resolve_inside("alias.jpg", [root], base=root) == (root / "data" / "a.jpg").resolve()


def test_symlink_from_one_root_into_another(tree, tmp_path):
    root, outside = tree
    (root / "shared").symlink_to(outside, target_is_directory=True)
    got = resolve_inside("shared/secret.jpg", [root, outside], base=root)
    assert got == (outside / "secret.jpg").resolve()


def test_a_root_given_through_a_symlink(tree, tmp_path):
    root, _ = tree
    alias = tmp_path / "alias-root"
    alias.symlink_to(root, target_is_directory=True)
    assert resolve_inside(alias / "data" / "a.jpg", [alias]) == (root / "data" / "a.jpg").resolve()
    assert resolve_inside(root / "data" / "a.jpg", [alias]) == (root / "data" / "a.jpg").resolve()


def test_no_roots_configured(tree):
    root, _ = tree
    for roots in ([], None, ()):
        with pytest.raises(PathOutsideRoots, match="no import roots are configured") as info:
            resolve_inside(root / "data" / "a.jpg", roots)
        assert "IMPORT_ROOTS: none configured" in str(info.value)


def test_odd_inputs_refused(tree):
    root, _ = tree
    with pytest.raises(PathOutsideRoots, match="relative path needs a base folder"):
        resolve_inside("data/a.jpg", [root])
    with pytest.raises(PathOutsideRoots, match="NUL byte"):
        resolve_inside("data/a.jpg\x00.png", [root], base=root)
    with pytest.raises(PathOutsideRoots, match="empty"):
        resolve_inside("  ", [root], base=root)


def test_is_a_domain_error(tree):
    from humanbeauty.errors import DomainError

    root, outside = tree
    with pytest.raises(DomainError) as info:
        resolve_inside(outside / "secret.jpg", [root])
    assert info.value.code == "outside_import_roots"
    assert isinstance(info.value, ValueError)


def test_import_roots_reused_over_many_paths(tree):
    """The folder cache of AllowedRoots must not let a symlinked file through after a plain one."""
    from humanbeauty.paths import AllowedRoots

    root, outside = tree
    (root / "data" / "b.jpg").symlink_to(outside / "secret.jpg")
    checker = AllowedRoots([root])
    assert checker.resolve("data/a.jpg", root) == (root / "data" / "a.jpg").resolve()
    with pytest.raises(PathOutsideRoots, match="symbolic link"):
        checker.resolve("data/b.jpg", root)
    assert checker.real("data/c.jpg", root) == str((root / "data").resolve() / "c.jpg")
    assert resolve_inside("data/a.jpg", checker, base=root) == (root / "data" / "a.jpg").resolve()


def test_parsers_refuse_outside_paths_before_looking_at_them(tmp_path):
    """A refused path says nothing about whether a file exists there."""
    from curation.sources import PathOutsideRoots, parse_source

    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "exists.csv").write_text("path\na.jpg\n")
    messages = []
    for name in ("exists.csv", "missing.csv"):
        with pytest.raises(PathOutsideRoots) as err:
            parse_source("manifest", tmp_path / name, roots=[root])
        messages.append(str(err.value).replace(name, "X"))
    assert messages[0] == messages[1]


@pytest.mark.parametrize("setting", ["MODEL_ROOTS", "RELEASE_ROOT"])
def test_one_check_for_every_kind_of_root(tree, setting):
    root, outside = tree
    with pytest.raises(PathOutsideRoots) as info:
        resolve_inside(outside / "secret.jpg", [root], setting=setting)
    assert info.value.code == f"outside_{setting.lower()}"
    assert setting in str(info.value)


def test_a_refusal_reads_the_same_whether_the_path_exists_or_not(tree):
    """No existence oracle: outside the roots, a real file and a missing one get one answer."""
    root, outside = tree
    answers = []
    for name in ("secret.jpg", "no-such-file.jpg"):
        with pytest.raises(PathOutsideRoots) as info:
            resolve_inside(outside / name, [root])
        answers.append(str(info.value).replace(name, "X"))
    assert answers[0] == answers[1]
    climbing = []
    for name in ("secret.jpg", "nothing-here.jpg"):
        with pytest.raises(PathOutsideRoots) as info:
            resolve_inside(f"../outside/{name}", [root], base=root)
        climbing.append(str(info.value).replace(name, "X"))
        assert str(outside) not in str(info.value)
    assert climbing[0] == climbing[1]


# --- every server path a request can name goes through the check (#11.2) ---------------------


@pytest.mark.parametrize(
    ("out", "code"),
    [
        ("/etc/passwd", "outside_release_root"),
        ("/dev/null", "outside_release_root"),
        ("../escape", "outside_release_root"),
        ("/", "outside_release_root"),
        (".", "release_error"),  # the root itself: a release gets a folder of its own
    ],
)
def test_a_release_is_written_only_under_release_root(
    root_client, settings, tmp_path, out, code
):
    from modeling.models import Release

    settings.RELEASE_ROOT = (tmp_path / "releases").resolve()
    # An empty selection would be refused too, but only after the path: the path decides.
    body = {"name": "r", "version": "1", "out": out, "sources": [], "projects": []}
    response = root_client.post("/api/releases/", body, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == code, response.json()
    assert not Release.objects.exists()


def test_a_relative_release_folder_lands_under_release_root(settings, tmp_path):
    from modeling.release_api import release_dir

    settings.RELEASE_ROOT = (tmp_path / "releases").resolve()
    assert release_dir("v1/official") == settings.RELEASE_ROOT / "v1" / "official"


@pytest.mark.parametrize("checkpoint", ["/etc/passwd", "/no/such/file.pt", "~/weights.pt"])
def test_a_job_checkpoint_must_lie_in_model_roots(root_client, settings, tmp_path, checkpoint):
    from curation.models import FilterJob, Source

    settings.MODEL_ROOTS = [(tmp_path / "models").resolve()]
    settings.CLIP_CHECKPOINT = ""
    source = Source.objects.create(name="s")
    source.items.create(path="a.jpg")
    response = root_client.post(
        "/api/jobs/", {"source": source.pk, "config": {"clip": {"checkpoint": checkpoint}}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "outside_model_roots"
    # The same sentence for a file that exists and one that does not: no existence oracle.
    assert "does not exist" not in response.json()["detail"]
    assert not FilterJob.objects.exists()
