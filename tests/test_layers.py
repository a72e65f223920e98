"""The layering of docs/architecture.md, enforced: every import goes down the pipeline, no
module-level import cycle, solver and rendering libraries only where they belong, the
oracle only from the backends and the tests."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

STAGES: tuple[tuple[str, int], ...] = (
    # shared infrastructure: importable from everywhere
    ("planner.errors", 0), ("planner.units", 0), ("planner.yamlio", 0), ("planner.pricing", 0),
    ("planner.catalog", 0), ("planner.traces", 0),
    ("planner.physics", 1), ("planner.schemas", 2), ("planner.resolve", 3), ("planner.candidates", 4),
    ("constraints", 5), ("planner.backends", 6), ("planner.simulate", 7), ("planner.plan", 7), ("planner.fleet", 7),
    ("planner.whatif", 8),
    ("planner.launch", 8), ("planner.report", 8),
    ("planner.estimate", 9), ("planner.fidelity", 10), ("planner.cli", 11), ("planner.__main__", 11),
    ("planner", 0),
)
ONLY_IN = {"ortools": ("planner.backends",), "pulp": ("planner.backends",),
           "rich": ("planner.cli",), "matplotlib": ("planner.cli",), "typer": ("planner.cli", "planner.__main__"),
           "planner.backends.exhaustive": ("planner.backends",)}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted([*(ROOT / "planner").rglob("*.py"), *(ROOT / "constraints").rglob("*.py")]):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _stage(module: str) -> int:
    for prefix, rank in STAGES:
        if module == prefix or module.startswith(prefix + "."):
            return rank
    raise AssertionError(f"{module} belongs to no stage of docs/architecture.md")


def _imports(path: Path, package: str) -> list[tuple[str, bool]]:
    """(imported module, at module level outside TYPE_CHECKING) for every import."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                visit(child, False)
            elif isinstance(child, ast.Import):
                out.extend((a.name, top) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - child.level + 1] + [base]).strip(".")
                out.append((base, top))
                out.extend((f"{base}.{a.name}", top) for a in child.names)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                visit(child, False)
            else:
                visit(child, top)

    visit(tree, True)
    return out


MODULES = _modules()


def _own(name: str) -> str | None:
    """The project module an imported name refers to (None for third-party names)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down_the_pipeline(module):
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    for name, _ in _imports(MODULES[module], package):
        target = _own(name)
        if target is not None and target != "planner":
            assert _stage(target) <= _stage(module), f"{module} (stage {_stage(module)}) imports {target} " \
                                                     f"(stage {_stage(target)}), against the pipeline"
        for banned, allowed in ONLY_IN.items():
            if name == banned or name.startswith(banned + "."):
                assert any(module == a or module.startswith(a + ".") for a in allowed), \
                    f"{module} imports {banned}, allowed only in {', '.join(allowed)}"


def test_no_import_cycles():
    graph = {}
    for module, path in MODULES.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        deps = {_own(n) for n, top in _imports(path, package) if top}
        graph[module] = {d for d in deps if d and d != module and d != "planner"}
    state: dict[str, int] = {}

    def walk(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph.get(m, ())):
            if d.startswith(m + "."):
                continue          # a package importing its own submodules is not a cycle
            if state.get(d) == 1 and not m.startswith(d + "."):
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(d):] + [m, d])
                                     if d in stack else f"import cycle through {m} -> {d}")
            if d not in state:
                walk(d, stack + [m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            walk(m, [])


def test_every_backend_in_the_registry_is_tested():
    from planner.backends.base import BACKENDS

    assert set(BACKENDS) == {"cpsat", "milp", "highs", "exhaustive"}
