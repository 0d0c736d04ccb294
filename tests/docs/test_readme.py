"""The README tells the truth: it lists every API route, every management command of the
project's apps and every environment variable config/settings.py reads, names nothing that is
gone, and links to nothing outside the repository."""

from __future__ import annotations

import ast
import re
from itertools import product
from pathlib import Path

from django.core.management import get_commands
from django.urls import URLPattern, URLResolver, get_resolver

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PROJECT_APPS = ("core", "accounts", "curation", "annotation", "modeling", "rights")
PROJECT_PACKAGES = (*PROJECT_APPS, "config", "humanbeauty")


def code_spans(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", text)


def section(text: str, heading: str) -> str:
    """The text under a `## heading`, up to the next heading of that level."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"README.md has no '## {heading}' section"
    return match[1]


# --- API routes -------------------------------------------------------------------------------


def _walk(patterns, prefix: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def _normalise(route: str) -> str | None:
    """`api/^projects/(?P<pk>\\d+)/raters/(?P<username>[^/]+)/$` -> the README's spelling,
    `/api/projects/{id}/raters/{username}/`; None for the router's `.json` suffix routes."""
    if "(?P<format>" in route or "<drf_format_suffix" in route:
        return None
    route = route.replace("^", "").replace("$", "")
    route = re.sub(r"\(\?P<(\w+)>[^)]*\)|<(?:\w+:)?(\w+)>",
                   lambda m: "{" + (m[1] or m[2]) + "}", route)
    return "/" + route.replace("{pk}", "{id}")


def api_routes() -> set[str]:
    routes = {_normalise(r) for r in _walk(get_resolver().url_patterns) if r.startswith("api/")}
    return routes - {None}


def _expand(path: str) -> list[str]:
    """`/api/{jobs,releases}/{id}/cancel/` -> both paths (a brace group with commas)."""
    parts = re.split(r"(\{[^{}]*,[^{}]*\})", path)
    options = [p[1:-1].split(",") if p.startswith("{") and "," in p else [p] for p in parts]
    return ["".join(choice) for choice in product(*options)]


def documented_routes(text: str) -> set[str]:
    found = set()
    for span in code_spans(text):
        for path in re.findall(r"/api/[\w{},\-/]*", span):
            found.update(_expand(path))
    return found


def test_readme_lists_every_api_route():
    routes, documented = api_routes(), documented_routes(README.read_text())
    assert "/api/projects/{id}/next/" in routes  # the route spelling this test relies on
    missing = sorted(routes - documented)
    stale = sorted(documented - routes)
    assert not missing, f"API routes the README does not list: {missing}"
    assert not stale, f"API routes the README lists that config/urls.py does not have: {stale}"


# --- management commands ----------------------------------------------------------------------


def test_readme_lists_every_management_command():
    commands = get_commands()
    ours = {name for name, app in commands.items() if app in PROJECT_APPS}
    assert {"demo", "release", "score"} <= ours
    text = section(README.read_text(), "Command line")
    documented = set(re.findall(r"python manage\.py ([\w-]+)", text))
    missing = sorted(ours - documented)
    stale = sorted(documented - set(commands))
    assert not missing, f"management commands the README's Command line does not list: {missing}"
    assert not stale, f"commands the README's Command line names that do not exist: {stale}"


# --- environment variables --------------------------------------------------------------------


def settings_variables() -> set[str]:
    """Names config/settings.py reads: os.environ.get/[...], os.getenv and its env_* helpers."""
    tree = ast.parse((ROOT / "config" / "settings.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            reader = (
                (isinstance(func, ast.Attribute) and func.attr in {"get", "getenv"}
                 and ast.unparse(func.value) in {"os.environ", "os"})
                or (isinstance(func, ast.Name) and func.id.startswith("env_"))
            )
            if reader and node.args and isinstance(node.args[0], ast.Constant):
                names.add(node.args[0].value)
        elif (isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ"
              and isinstance(node.slice, ast.Constant)):
            names.add(node.slice.value)
    return {n for n in names if isinstance(n, str)}


def documented_variables(text: str) -> set[str]:
    table = section(text, "Configuration (environment variables)")
    names = set()
    for line in table.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            first_cell = line.split("|")[1]
            for span in code_spans(first_cell):
                names.update(re.findall(r"\b[A-Z][A-Z0-9_]{2,}\b", span))
    return names


def read_in_project(name: str) -> bool:
    """Whether the project's own code reads `name` from the environment anywhere."""
    # os.environ.get("X"), os.getenv("X"), os.environ["X"], and env.get("X") / env["X"] where a
    # function is handed the environment (config.settings.s3_storage)
    reading = re.compile(
        rf"(\benv|environ)(\.get)?\(?\[?\s*[\"']{name}[\"']|getenv\(\s*[\"']{name}[\"']"
    )
    return any(
        reading.search(path.read_text())
        for package in PROJECT_PACKAGES
        for path in (ROOT / package).rglob("*.py")
    )


def test_readme_lists_every_environment_variable():
    read, documented = settings_variables(), documented_variables(README.read_text())
    assert {"DATABASE_URL", "DEBUG", "IMPORT_ROOTS"} <= read  # os.environ.get, env_bool, env_list
    missing = sorted(read - documented)
    stale = sorted(n for n in documented - read if not read_in_project(n))
    assert not missing, f"variables config/settings.py reads that the README omits: {missing}"
    assert not stale, f"variables the README documents that nothing reads: {stale}"


# --- links ------------------------------------------------------------------------------------


def test_docs_point_only_inside_the_repository():
    pages = [README, *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        text = page.read_text()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a web address (the paper) or an anchor
            if not (page.parent / target.split("#")[0]).resolve().is_relative_to(ROOT) or not (
                page.parent / target.split("#")[0]
            ).exists():
                broken.append(f"{page.name}: {target}")
        for path in re.findall(r"(?<![\w.])/(?:work|home|tmp|root)/[\w./-]+", text):
            broken.append(f"{page.name}: {path}")
    assert not broken, f"links or paths that lead outside the repository or nowhere: {broken}"


def test_readme_starts_with_the_two_commands_that_work_on_a_fresh_machine():
    head = "\n".join(README.read_text().splitlines()[:8])
    assert re.search(r"^make demo\b", head, re.M) and re.search(r"^make test\b", head, re.M)
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
