"""The shape of the code, checked: apps import only down the chain, and no modules import each
other in a circle (docs/architecture.md). Read from the source with `ast`, imports inside
functions included: an import moved into a function to dodge a circle is still a circle."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[2]
# Lowest first: each may import those before it, never those after. `config` wires them all.
CHAIN = ("humanbeauty", "core", "accounts", "curation", "annotation", "modeling", "rights")
PACKAGES = (*CHAIN, "config")


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imported(name: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """The project modules `name` imports: `from pkg import mod` counts as pkg.mod, `from mod
    import attr` as mod."""

    def resolve(target: str) -> str | None:
        while target and target not in known:
            target = target.rpartition(".")[0]
        return target or None

    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [resolve(alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [resolve(f"{base}.{alias.name}") for alias in node.names]
        else:
            continue
        yield from (t for t in targets if t is not None and t != name)


def graph() -> nx.DiGraph:
    known = modules()
    g = nx.DiGraph()
    for name, path in known.items():
        g.add_node(name)
        for target in set(imported(name, path, known)):
            g.add_edge(name, target)
    return g


def app_of(module: str) -> str:
    return module.split(".")[0]


def test_every_app_imports_only_down_the_chain():
    upward = sorted(
        (a, b)
        for a, b in graph().edges
        if app_of(a) in CHAIN and app_of(b) in PACKAGES
        and (app_of(b) == "config" or CHAIN.index(app_of(b)) > CHAIN.index(app_of(a)))
        # Celery's app object (config.celery) is what runs tasks: the one wire apps may touch.
        and b != "config.celery"
    )
    assert not upward, "imports up the chain:\n" + "\n".join(f"{a} -> {b}" for a, b in upward)


def _tasks_and_services(cycle: set[str]) -> bool:
    """The usual pair: a service queues its app's task, and the task calls the services."""
    tasks = [m for m in cycle if m.endswith(".tasks")]
    if len(tasks) != 1:
        return False
    services = tasks[0].removesuffix(".tasks") + ".services"
    return all(m == services or m.startswith(services + ".") for m in cycle - set(tasks))


def test_no_modules_import_each_other_in_a_circle():
    circles = [
        sorted(component)
        for component in nx.strongly_connected_components(graph())
        if len(component) > 1 and not _tasks_and_services(component)
    ]
    assert not circles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in circles)


@pytest.mark.parametrize("package", ["humanbeauty", "modeling.hae", "modeling.release"])
def test_the_django_free_packages_import_no_app_with_django(package):
    """Model, release-writing and shared-fact code runs without Django: it imports no app
    module that needs Django (only other Django-free packages)."""
    free = ("humanbeauty", "modeling.hae", "modeling.release", "curation.sources",
            "curation.imaging", "annotation.agreement")
    g = graph()
    reached = {b for a, b in g.edges if a == package or a.startswith(package + ".")}
    bad = sorted(m for m in reached if not m.startswith(free))
    assert not bad, f"{package} imports Django-side modules: {bad}"
