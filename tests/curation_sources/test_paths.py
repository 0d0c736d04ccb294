"""resolve_inside: nothing outside the import roots gets through, whatever the path looks like."""

from __future__ import annotations

import pytest

from curation.sources.paths import PathOutsideRoots, resolve_inside


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
    with pytest.raises(PathOutsideRoots, match=r"symbolic link to .*secret\.jpg"):
        resolve_inside("data/link.jpg", [root], base=root)


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
        assert "import roots: none configured" in str(info.value)


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
    """The folder cache of ImportRoots must not let a symlinked file through after a plain one."""
    from curation.sources.paths import ImportRoots

    root, outside = tree
    (root / "data" / "b.jpg").symlink_to(outside / "secret.jpg")
    checker = ImportRoots([root])
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
