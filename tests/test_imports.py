"""The package's layering: `src/laser` imports form no cycle (lazy imports inside functions
count too), and the config layer imports nothing else of the package."""

import ast

from conftest import ROOT

PACKAGE = ROOT / "src" / "laser"


def import_graph() -> dict[str, set[str]]:
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    graph = {}
    for path in PACKAGE.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.level == 1 or (node.module or "").startswith("laser")):
                parts = (node.module or "").split(".")
                target = parts[0] if node.level == 1 else (parts[1] if len(parts) > 1 else "")
                deps |= {target} if target else {a.name for a in node.names}
            elif isinstance(node, ast.Import):
                deps |= {a.name.split(".")[1] for a in node.names if a.name.startswith("laser.")}
        graph[path.stem] = {d for d in deps if d in modules and d != path.stem}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import path that leads back to its start (one per cycle's smallest member)."""
    found = []

    def walk(start, node, path):
        for nxt in sorted(graph[node]):
            if nxt == start:
                found.append(path + [start])
            elif nxt not in path and nxt > start:
                walk(start, nxt, path + [nxt])

    for start in sorted(graph):
        walk(start, start, [start])
    return found


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 20 and graph["train"] >= {"config", "trainer"}  # the parser sees the imports
    assert not cycles(graph), cycles(graph)


def test_the_cycle_finder_finds_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]


def test_config_is_the_bottom_layer():
    assert import_graph()["config"] == set()
