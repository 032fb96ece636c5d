"""The house rules of docs/layout.md, checked on the source: which way imports go, no import circles, a short
top level in training/, and family knowledge only in the model registry."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("training", "explorer")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, Path]:
    return {_module_name(p): p for package in PACKAGES for p in (REPO / package).rglob("*.py")}


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules one file imports, at any depth of its code (lazy imports count: a circle through a
    function-level import is still a circle a reader must untangle)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in modules)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _sources()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each a set of modules importing each
    other. A package's __init__ re-exporting its submodules is not a circle: only edges from outside a package
    into its __init__ count, so a submodule importing a sibling through the package would show up."""
    index, low, stack, on_stack, result, counter = {}, {}, [], set(), [], [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return result


def test_no_import_circles():
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_imports_go_one_way():
    graph = _graph()
    assert not [m for m, targets in graph.items() if m.startswith("training") and
                any(t.startswith("explorer") for t in targets)], "training must not import explorer"
    logic_to_core = [m for m, targets in graph.items() if m.startswith("explorer.logic") and
                     any(t.startswith(("explorer.core", "explorer.views")) for t in targets)]
    assert logic_to_core == [], "explorer.logic is imported by core and views, never the reverse"


def test_streamlit_only_in_the_ui_layer():
    for name, path in _sources().items():
        if name.startswith(("explorer.views", "explorer.core", "explorer.tools", "explorer.app", "explorer.launch")):
            continue
        assert not re.search(r"^\s*(import streamlit|from streamlit)", path.read_text(), re.M), name


def test_training_top_level_holds_only_entry_points_and_shared_vocabulary():
    top = sorted(p.name for p in (REPO / "training").glob("*.py"))
    assert top == ["__init__.py", "__main__.py", "attributes.py", "errors.py"]


def test_family_names_are_compared_only_in_the_registry():
    """No `== "vae"`, `in ("dcgan", ...)` or table keyed by family names outside training/models/registry.py:
    a new family is one record there. (Folder names of shipped bundles, such as checkpoints/celeba/dcgan, and
    the names of networks inside a bundle are paths and keys, not family knowledge.)"""
    families = "dcgan|vae|cgan|infogan|featurenet"
    comparison = re.compile(rf"""(==|!=|\bin)\s*\(?\s*["']({families})["']|["']({families})["']\s*(==|!=|:\s*\S)""")
    offenders = []
    for name, path in _sources().items():
        if name == "training.models.registry":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if comparison.search(code) and "family" in code.lower() + name:
                offenders.append(f"{name}:{number}: {line.strip()}")
    assert offenders == []
