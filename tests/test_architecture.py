"""The house rules of docs/architecture.md, read from the source: every import of the ``asr``
package (top-level, inside functions and under ``TYPE_CHECKING`` alike) points down the declared
layer order, no modules import each other in a circle, and no Python file is over 500 lines."""

from __future__ import annotations

import ast
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "asr"
MAX_LINES = 500

# Low to high; a room may import rooms of lower layers only (docs/architecture.md). Rooms in one
# layer do not import each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors",),
    ("io",),
    ("config",),
    ("text",),
    ("frontend", "scoring"),
    ("lm",),
    ("models", "decode"),
    ("onnx", "pretrained", "data"),
    ("corpora",),
    ("train",),
    ("inference",),
    ("streaming",),
    ("api",),
    ("serve",),
    ("cli",),
    ("__init__", "__main__"),
)
LAYER_OF = {room: i for i, rooms in enumerate(LAYERS) for room in rooms}


def module_files() -> dict[str, Path]:
    """``asr.x.y`` -> its file, for every module of the package (a package is its __init__)."""
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def _resolve(name: str, mods: dict[str, Path]) -> str:
    """The module ``name`` refers to: itself, or the nearest package above it."""
    while name not in mods and "." in name:
        name = name.rpartition(".")[0]
    return name


def imported_modules(path: Path, mods: dict[str, Path]) -> set[str]:
    """The ``asr`` modules ``path`` imports anywhere in its body."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "asr" or node.module.startswith("asr."):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    found.add(full if full in mods else _resolve(node.module, mods))
        elif isinstance(node, ast.Import):
            found |= {_resolve(a.name, mods) for a in node.names if a.name.startswith("asr.")}
    return found


def import_graph() -> dict[str, set[str]]:
    mods = module_files()
    return {m: imported_modules(p, mods) - {m} for m, p in mods.items()}


def room(module: str) -> str:
    """``asr.inference.vad`` -> ``inference``; ``asr.api`` -> ``api``; ``asr`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            nxt = next(edges, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    comp.append(member)
                    if member == node:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_every_room_has_a_layer() -> None:
    rooms = {room(m) for m in module_files()}
    assert rooms - set(LAYER_OF) == set(), "add the new package to LAYERS and the docs"


def test_imports_point_down_the_layers() -> None:
    bad = defaultdict(list)
    for module, targets in import_graph().items():
        src = room(module)
        for target in targets - {"asr"}:  # the root package (``__version__``) is everyone's
            dst = room(target)
            if dst != src and LAYER_OF[dst] >= LAYER_OF[src]:
                bad[f"{src} -> {dst}"].append(f"{module} imports {target}")
    assert dict(bad) == {}


def test_no_import_circles() -> None:
    assert cycles(import_graph()) == []


def test_the_checks_can_fail() -> None:
    """The cycle finder and the layer check see a planted circle and an arrow up."""
    graph = {"asr.a.x": {"asr.b.y"}, "asr.b.y": {"asr.c.z"}, "asr.c.z": {"asr.a.x"}, "asr.d": set()}
    assert cycles(graph) == [["asr.a.x", "asr.b.y", "asr.c.z"]]
    assert cycles({"asr.a": {"asr.b"}, "asr.b": set()}) == []
    assert LAYER_OF[room("asr.io.atomic")] < LAYER_OF[room("asr.inference.vad")]


def _tracked_python_files() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in out.split() if (ROOT / name).is_file()]


def test_no_file_over_500_lines() -> None:
    long = {}
    for path in _tracked_python_files():
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_LINES:
            long[str(path.relative_to(ROOT))] = n
    assert long == {}, "split these files (docs/architecture.md)"
