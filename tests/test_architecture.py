"""The code's shape, checked: imports run one way, the UI keeps its tensors out, functions stay short."""

import ast
from pathlib import Path

import pytest

from testing import ROOT

PACKAGES = ("vae_core", "ui")
MAX_FUNCTION_LINES = 60


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module `path` imports, relative imports resolved, at any depth (inside functions too)."""
    package = module_name(path).split(".") if path.name == "__init__.py" else module_name(path).split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            stem = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found.add(stem)
            found |= {f"{stem}.{alias.name}" for alias in node.names}  # `from . import tab` imports a module
    return found


def graph() -> dict[str, set[str]]:
    files = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]
    modules = {module_name(p): p for p in files}
    return {name: {m for m in imports(path) if m in modules and m != name} for name, path in modules.items()}


def test_no_import_cycles():
    edges = graph()
    assert len(edges) > 20  # the walk really found the packages
    state: dict[str, str] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(edges[node]):
            # a package's __init__ importing its own submodules is how packages work, not a cycle
            if nxt.startswith(node + "."):
                continue
            if state.get(nxt) == "open":
                pytest.fail("import cycle: " + " → ".join([*trail[trail.index(nxt):], nxt]))
            if nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = "done"

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])


def test_layers_import_one_way():
    for path in (ROOT / "vae_core").rglob("*.py"):
        bad = {m for m in imports(path) if m.split(".")[0] in ("gradio", "ui", "app")}
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}: vae_core knows nothing of the UI"
    tabs = list((ROOT / "ui" / "tabs").glob("*.py"))
    assert len(tabs) >= 9
    for path in tabs:
        bad = {m for m in imports(path) if m.split(".")[0] == "torch"}
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}: tabs hold no tensor maths"


def test_no_sys_path_edits_and_short_functions():
    sources = [ROOT / "app.py", *(p for d in ("vae_core", "ui", "testing", "tests", "bench") for p in (ROOT / d)
                                  .rglob("*.py"))]
    for path in sources:
        uses = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Attribute) and n.attr == "path"
                and isinstance(n.value, ast.Name) and n.value.id == "sys"]
        assert not uses, f"{path.relative_to(ROOT)} edits sys.path"
    assert len((ROOT / "app.py").read_text().splitlines()) < 80
    for path in [ROOT / "app.py", *(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                assert length <= MAX_FUNCTION_LINES, f"{path.relative_to(ROOT)}:{node.name} is {length} lines"


def test_every_model_keeps_the_interface_and_its_capabilities():
    from vae_core.models import (
        Completer,
        LabelConditioned,
        Model,
        PriorSampler,
        WarmStartable,
        build_model,
        kinds,
        make_config,
    )

    assert list(kinds()) == ["vae", "cvae", "scvae"]
    models = {kind: build_model(make_config(kind)) for kind in kinds()}
    assert all(isinstance(m, Model) for m in models.values())
    assert [k for k, m in models.items() if isinstance(m, PriorSampler)] == ["vae", "cvae"]
    assert [k for k, m in models.items() if isinstance(m, LabelConditioned)] == ["cvae"]
    assert [k for k, m in models.items() if isinstance(m, Completer)] == ["scvae"]
    assert [k for k, m in models.items() if isinstance(m, WarmStartable)] == ["scvae"]
    # a spec's capabilities are its class's: the app and the CLI read them without building a model
    assert all(spec.can(cap) == isinstance(models[name], cap) for name, spec in kinds().items()
               for cap in (PriorSampler, LabelConditioned, Completer, WarmStartable))
