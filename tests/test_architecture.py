"""The layering of DESIGN.md: lower modules never import higher ones."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "radloop"

# Lower number = lower layer. A module may import only modules of its own or a lower layer.
LAYERS: dict[str, int] = {
    "errors": 0,
    "registry": 0,
    "vocabulary": 1,
    "study": 2,
    "report": 2,
    "synth": 3,
    "models": 4,
    "assist": 5,
    "safety": 6,
    "evaluate": 7,
    "review": 7,
    "monitor": 8,
    "bench": 9,
    "cli": 10,
    "cli_reference": 10,
    "__main__": 10,
}


def _top_module(path: Path) -> str:
    relative = path.relative_to(SRC)
    return relative.parts[0].removesuffix(".py")


def _radloop_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "radloop" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_every_module_has_a_layer() -> None:
    modules = {_top_module(p) for p in SRC.rglob("*.py")} - {"__init__"}
    assert modules <= set(LAYERS), f"add {sorted(modules - set(LAYERS))} to LAYERS"


def test_lower_modules_never_import_higher_ones() -> None:
    violations = []
    for path in SRC.rglob("*.py"):
        module = _top_module(path)
        if module == "__init__":
            continue
        for imported in _radloop_imports(path):
            if imported in LAYERS and LAYERS[imported] > LAYERS[module]:
                violations.append(f"{path.relative_to(SRC)} imports radloop.{imported}")
    assert violations == []
