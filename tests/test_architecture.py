"""The layout's rules, checked: bench/ never imports a concrete model family, files stay small,
and the packages of bench/ depend on each other in one direction (no cycle between packages)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 500
FAMILY_MODULES = {"models.fastgan", "models.stylegan2", "models.biggan", "models.selfsup", "models.common"}


def _python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (top level and inside functions)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def test_bench_imports_no_concrete_model_module() -> None:
    offenders = {
        str(p.relative_to(ROOT)): sorted(m for m in _imports(p) if m.split(".")[0] == "models" and
                                        any(m == f or m.startswith(f + ".") for f in FAMILY_MODULES))
        for p in _python_files("bench")
    }  # fmt: skip
    assert {k: v for k, v in offenders.items() if v} == {}


def test_no_module_exceeds_500_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for p in _python_files("bench", "models", "tests")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}  # fmt: skip
    assert long == {}


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "bench" and len(parts) > 2 else None


def package_graph() -> dict[str, set[str]]:
    """bench sub-package -> the bench sub-packages its modules import at module level."""
    graph: dict[str, set[str]] = {}
    for path in _python_files("bench"):
        rel = path.relative_to(ROOT).with_suffix("")
        if len(rel.parts) < 3:
            continue
        pkg = rel.parts[1]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:  # module level only: lazy imports inside functions break no import cycle
            if isinstance(node, ast.ImportFrom) and node.module and (dep := _package(node.module)) and dep != pkg:
                graph.setdefault(pkg, set()).add(dep)
    return graph


def test_module_level_imports_between_packages_have_no_cycle() -> None:
    graph = package_graph()
    state: dict[str, int] = {}

    def visit(node: str, trail: tuple[str, ...]) -> None:
        assert state.get(node) != 1, f"import cycle: {' -> '.join((*trail, node))}"
        if state.get(node) == 2:
            return
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            visit(dep, (*trail, node))
        state[node] = 2

    for node in sorted(graph):
        visit(node, ())
