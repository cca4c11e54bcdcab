"""Imports run one way: from the tape at the bottom up to the teaching tools at the top.

Each module of tapegrad imports only modules at its own layer or below it
(counting imports inside functions too: a lazy import is still a dependency).
The one link that runs up is tensor.py's to the ops and the sweep: a Tensor's
operators and backward() are the way into them (as torch's Tensor methods are);
ops and sweep are imported at the bottom of tensor.py, after Tensor exists.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "tapegrad"

# Lowest first. A module may import from its own layer and the layers before it.
LAYERS = [
    {"errors", "tape"},
    {"hooks", "anomaly", "tensor", "_kernels"},
    {"function"},
    {"ops"},
    {"sweep", "factories"},
    {"nn", "optim", "data", "serialization"},
    {"printing"},
    {"steps", "check", "gradcheck"},
    {"compile", "distributed"},
    {"__init__"},
]
ALLOWED_UPWARD = {("tensor", "ops"), ("tensor", "sweep")}


def _layer_of(name: str) -> int:
    top = name.split(".")[0]
    for position, layer in enumerate(LAYERS):
        if top in layer:
            return position
    raise AssertionError(f"tapegrad.{name} is in no layer of tests/test_layers.py: add it")


def _imports(path: Path) -> set:
    """The tapegrad modules `path` imports, anywhere in it (relative imports)."""
    relative = path.relative_to(PACKAGE).with_suffix("")
    parts = list(relative.parts)
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
            target = base + (node.module.split(".") if node.module else [])
            if target:
                found.add(target[0])
            else:  # from . import ops, sweep
                found.update(alias.name for alias in node.names)
    return found


def test_every_import_runs_down_the_layers():
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        own = parts[0] if len(parts) > 1 or parts[0] == "__init__" else parts[0]
        for target in _imports(path):
            if target == own or (own, target) in ALLOWED_UPWARD:
                continue
            if _layer_of(target) > _layer_of(own):
                wrong.append(f"{path.relative_to(PACKAGE)} imports {target}")
    assert not wrong, "imports that run up the layers:\n" + "\n".join(sorted(wrong))


def test_the_tape_imports_nothing_from_tapegrad():
    assert _imports(PACKAGE / "tape.py") == set()
