"""The layering of docs/architecture.md: lower modules never import higher ones, and the
product never imports the lab."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "radloop"

# Lower number = lower layer. A module may import only modules of its own or a lower layer.
LAYERS: dict[str, int] = {
    "errors": 0,
    "registry": 0,
    "stats": 0,
    "vocabulary": 1,
    "study": 2,
    "report": 2,
    "context": 3,
    "models": 4,
    "assist": 5,
    "safety": 6,
    "evaluate": 7,
    "review": 7,
    "monitor": 8,
    "pacs": 8,
    "lab": 9,
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


# The product: what a hospital installs and runs. It never imports the lab (the synthetic lab,
# training recipes, benchmarks, demo content), which sits beside it.
PRODUCT = {"vocabulary", "study", "report", "context", "models", "assist", "safety", "evaluate",
           "review", "monitor", "pacs", "errors", "registry", "stats"}  # fmt: skip


def test_no_shipped_package_imports_the_lab() -> None:
    violations = []
    for path in SRC.rglob("*.py"):
        if _top_module(path) not in PRODUCT:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            if any(n == "radloop.lab" or n.startswith("radloop.lab.") for n in names):
                violations.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert violations == [], "the product imports the lab"


def test_no_import_cycle_between_modules() -> None:
    """No cycle among src's modules through their top-level imports."""
    graph: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        name = ".".join(("radloop", *path.relative_to(SRC).with_suffix("").parts))
        name = name.removesuffix(".__init__")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        deps: set[str] = set()
        for node in tree.body:  # module level only: imports inside functions are deferred
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                deps.add(node.module)
                deps.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        graph[name] = {d for d in deps if d.startswith("radloop")}
    modules = set(graph)
    edges = {m: {d for d in ds if d in modules and d != m} for m, ds in graph.items()}
    # Importing a package runs its __init__, which may import its own submodules: that is not a
    # cycle of the submodule with its package.
    edges = {m: {d for d in ds if not m.startswith(d + ".")} for m, ds in edges.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert cycles == [], cycles[:5]


def test_no_module_over_600_lines() -> None:
    long = {
        str(p.relative_to(SRC)): n
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 600
    }
    assert long == {}
