"""Imports point down only: dora_jax <- backends <- theory | simulations <- papers <- dora_cli.

Every module's imports (module level and inside functions) are read with `ast`, and each import of
another project package must be one its layer may use. theory and simulations sit side by side:
both build on the core and the backends, neither on the other (their shared Monte Carlo machinery
is `dora_jax.montecarlo`). A negative control plants violations in a temporary tree and checks
that each one is reported.
"""

from __future__ import annotations

import ast
import importlib.util
import pathlib

import pytest

# The project packages a package may import besides itself.
ALLOWED: dict[str, frozenset[str]] = {
    "dora_jax": frozenset(),
    "backends": frozenset({"dora_jax"}),
    "theory": frozenset({"dora_jax", "backends"}),
    "simulations": frozenset({"dora_jax", "backends"}),
    "papers": frozenset({"dora_jax", "backends", "theory", "simulations"}),
    "dora_cli": frozenset({"dora_jax", "backends", "theory", "simulations", "papers"}),
}
PACKAGES = tuple(ALLOWED)


def imported_packages(source: str) -> list[tuple[int, str]]:
    """(line, top-level package) of every absolute import in `source` (relative imports stay in
    their own package)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def violations(roots: dict[str, pathlib.Path]) -> list[str]:
    """'file:line: package imports other' for every import against ALLOWED, over the packages'
    source folders `roots` {package: folder}."""
    out = []
    for package, root in roots.items():
        for path in sorted(root.rglob("*.py")):
            for line, other in imported_packages(path.read_text(encoding="utf-8")):
                if other in ALLOWED and other != package and other not in ALLOWED[package]:
                    out.append(f"{path}:{line}: {package} imports {other}")
    return out


def _installed_roots() -> dict[str, pathlib.Path]:
    """The folders the packages import from (found, not imported)."""
    roots = {}
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.submodule_search_locations, package
        roots[package] = pathlib.Path(next(iter(spec.submodule_search_locations)))
    return roots


def test_imports_point_down_only():
    roots = _installed_roots()
    assert all(any(root.rglob("*.py")) for root in roots.values())
    assert violations(roots) == []


def test_every_layer_sees_only_the_layers_below():
    """The table itself is a strict order with theory and simulations side by side."""
    order = {"dora_jax": 0, "backends": 1, "theory": 2, "simulations": 2, "papers": 3}
    for package, allowed in ALLOWED.items():
        rank = order.get(package, 4)
        assert allowed == {p for p, r in order.items() if r < rank}, package


VIOLATIONS = {
    # (package, file, source): the package that must be reported for it
    ("dora_jax", "core.py", "from theory import core\n"): "theory",
    ("dora_jax", "lazy.py", "def f():\n    import simulations.runner\n"): "simulations",
    ("backends", "b.py", "import papers.table1 as t\n"): "papers",
    ("theory", "t.py", "from simulations.spec import PAPER_METHODS\n"): "simulations",
    ("simulations", "s.py", "from theory import simulated\n"): "theory",
    ("papers", "p.py", "from dora_cli import main\n"): "dora_cli",
}


@pytest.mark.parametrize(("planted", "expected"), list(VIOLATIONS.items()))
def test_a_planted_violation_is_reported(tmp_path, planted, expected):
    """Negative control: each wrong-way import in a temporary tree is reported, and only it."""
    package, name, source = planted
    roots = {p: tmp_path / p for p in PACKAGES}
    for p, root in roots.items():
        root.mkdir()
        # Allowed imports in every package: the checker must not report them.
        lines = [f"import {other}\n" for other in sorted(ALLOWED[p])]
        (root / "__init__.py").write_text("".join(lines) + "from . import sibling\n")
    (roots[package] / name).write_text(source)
    found = violations(roots)
    assert len(found) == 1, found
    assert found[0].endswith(f"{package} imports {expected}"), found
