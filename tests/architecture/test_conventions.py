"""Conventions that docs/conventions.md states and the code keeps, checked from the source."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("core", "accounts", "curation", "annotation", "modeling", "rights")


def service_modules() -> list[Path]:
    found = []
    for app in APPS:
        found += sorted((ROOT / app).glob("services/*.py"))
        if (ROOT / app / "services.py").is_file():
            found.append(ROOT / app / "services.py")
    return found


def test_service_options_are_keyword_only():
    """A public service function takes its subjects positionally and every option (a parameter
    with a default) by keyword: a call reads `start_job(source, overrides=...)`."""
    offenders = []
    for path in service_modules():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            public = isinstance(node, ast.FunctionDef) and not node.name.startswith("_")
            if public and node.args.defaults:  # a positional parameter with a default
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert service_modules(), "no service modules found"
    assert not offenders, "options not keyword-only:\n" + "\n".join(offenders)


def test_selectors_never_write():
    """Reads in selectors, writes in services: no selector saves, creates, updates or deletes."""
    writes = {"save", "create", "bulk_create", "update", "bulk_update", "delete",
              "get_or_create", "update_or_create"}
    offenders = []
    for app in APPS:
        path = ROOT / app / "selectors.py"
        if not path.is_file():
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            receiver = ast.unparse(node.func.value)
            # `.save()`/`.delete()` on anything; the others on a manager or a queryset (a dict's
            # `.update()` is no write).
            on_rows = ".objects" in receiver or "filter(" in receiver or "exclude(" in receiver
            if node.func.attr in {"save", "delete"} or (node.func.attr in writes and on_rows):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.func.attr}()")
    assert not offenders, "selectors that write:\n" + "\n".join(offenders)


def test_serializers_live_in_serializers_modules():
    """Request and answer shapes are in each app's serializers.py, never inline in API files."""
    offenders = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if path.name == "serializers.py" or "migrations" in path.parts:
                continue
            for node in ast.parse(path.read_text(encoding="utf-8")).body:
                if isinstance(node, ast.ClassDef) and node.name.endswith("Serializer"):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert not offenders, "serializers outside serializers.py:\n" + "\n".join(offenders)


def test_every_command_of_the_project_is_a_core_cli_command():
    """So that no command shows a traceback for input a service refused (one rule, one place:
    core.cli.Command turns the refusal into a command error)."""
    from django.core.management import get_commands, load_command_class

    from core import cli

    ours = {name: app for name, app in get_commands().items() if (ROOT / app).is_dir()}
    assert {"import_images", "curate", "release", "score", "index_faces"} <= set(ours)
    others = [name for name, app in ours.items()
              if not isinstance(load_command_class(app, name), cli.Command)]
    assert not others, f"not core.cli.Command: {others}"


def test_views_read_their_input_one_way():
    """A view reads a request body with core.web.validated (one 400 shape, one name for the
    result), never by calling a serializer's is_valid itself."""
    offenders = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if path == ROOT / "core" / "web.py" or "migrations" in path.parts:
                continue
            for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if "is_valid(raise_exception=True)" in line:
                    offenders.append(f"{path.relative_to(ROOT)}:{lineno}")
    assert not offenders, "is_valid outside core.web.validated:\n" + "\n".join(offenders)
