"""The web app's layout (STYLE.md convention 13): routes are handed what they need by
``radloop.review.deps`` and never import the app that mounts them."""

from __future__ import annotations

import ast
from pathlib import Path

import radloop.review

REVIEW = Path(radloop.review.__file__).parent


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_no_module_of_the_workstation_imports_the_app_but_the_package_entry_points() -> None:
    importers = {
        path.name
        for path in REVIEW.glob("*.py")
        if path.name != "app.py" and "radloop.review.app" in _imports(path)
    }
    # The package's lazy export and the CLI start the app; nothing the app mounts does.
    assert importers <= {"__init__.py", "cli.py"}


def test_routers_take_their_dependencies_from_deps() -> None:
    for name in ("pages.py", "api.py", "dicomweb.py"):
        assert "radloop.review.deps" in _imports(REVIEW / name), name
