"""The package's shape: stages import only downwards, no import cycles, small modules and functions."""
from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "dss"
# layer of each top folder; a module may import its own layer or lower ones. teacher and student are
# siblings (neither imports the other); report reads what bench, active and student write; testing is test
# scaffolding, imported only by commands (and tests/, benchmarks/, outside the package).
LAYERS = {"core": 0, "tasks": 1, "teacher": 2, "student": 2, "bench": 3, "active": 3, "report": 4, "testing": 1,
          "commands": 5}


def modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = p.relative_to(PKG.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def imports(path: Path, known: set[str]) -> set[str]:
    """dss modules that `path` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}  # `from dss.x import module`
    return {m for m in found if m in known and m.startswith("dss.")}


def stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: imports(p, set(mods)) - {m} for m, p in mods.items()}


def test_stages_import_only_downwards():
    bad = []
    for mod, deps in graph().items():
        src = stage(mod)
        for dep in deps:
            dst = stage(dep)
            if src is None or dst is None or src == dst:
                continue
            if dst == "testing" and src != "commands":
                bad.append(f"{mod} -> {dep} (test scaffolding in product code)")
            elif {src, dst} == {"teacher", "student"} or LAYERS[dst] > LAYERS[src]:
                bad.append(f"{mod} -> {dep} ({src} may not import {dst})")
    assert not bad, "\n".join(sorted(bad))


def test_no_import_cycles():
    g = graph()
    # a package imports its own modules' names only through "dss.x.y" edges; __init__ -> child is not a cycle
    # source unless the child imports the package back, which the walk below finds
    state: dict[str, int] = {}
    cycles = []

    def visit(m, path):
        state[m] = 1
        for d in sorted(g.get(m, ())):
            if state.get(d) == 1:
                cycles.append(" -> ".join(path[path.index(d):] + [d]) if d in path else f"{m} -> {d}")
            elif d not in state:
                visit(d, path + [d])
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m, [m])
    assert not cycles, "\n".join(cycles)


BENCHMARKS = PKG.parent / "benchmarks"


def test_small_modules_and_functions():
    big = []
    for p in [*PKG.rglob("*.py"), *BENCHMARKS.glob("*.py")]:
        text = p.read_text()
        if len(text.splitlines()) > 400:
            big.append(f"{p.relative_to(PKG.parent)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 50:
                big.append(f"{p.relative_to(PKG.parent)}:{node.lineno} {node.name}: "
                           f"{node.end_lineno - node.lineno + 1} lines")
    assert not big, "\n".join(big)


def test_every_folder_says_what_it_owns_and_may_import():
    for folder in LAYERS:
        doc = ast.get_docstring(ast.parse((PKG / folder / "__init__.py").read_text()))
        assert doc and "import" in doc.lower(), folder


def test_benchmarks_use_the_installed_package():
    """benchmarks/ scripts run with the project's venv (`.venv/bin/python benchmarks/x.py`): none edits sys.path
    to find dss, and none reaches into test scaffolding beyond dss.testing."""
    for p in BENCHMARKS.glob("*.py"):
        text = p.read_text()
        assert "sys.path" not in text, p.name
