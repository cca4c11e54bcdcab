"""The class diagram: its SVG is parsed as XML and compared with the classes the packages export.

The expected classes are read here from ``__all__`` directly (not through
visualize.classes), plus a fixed list, so a class dropped by the diagram
makes a test fail; rendering uses the WebAssembly Graphviz, as on a machine
with no system `dot`.
"""

import importlib
import importlib.util
import inspect
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import visualize
from tapegrad import nn, optim
from visualize import classes
from visualize.__main__ import main

SVG = "{http://www.w3.org/2000/svg}"
DOCS_SVG = Path(__file__).resolve().parent.parent / "docs" / "classes.svg"

# Classes that must be drawn whatever __all__ says: the course's Figure 1.
KNOWN = {
    "Module",
    "Parameter",
    "Sequential",
    "Linear",
    "ReLU",
    "Tanh",
    "Sigmoid",
    "MSELoss",
    "BCELoss",
    "Optimizer",
    "SGD",
    "Adam",
}


# --- reading the SVG ------------------------------------------------------------------


def read_svg(data) -> dict:
    """{'boxes': {node id: [text lines]}, 'names': {class name: node id},
    'edges': {(kind, source name, target name): [edge text]}}."""
    root = ET.fromstring(data.encode() if isinstance(data, str) else data)
    assert root.tag == SVG + "svg"
    boxes, edges = {}, {}
    for g in root.iter(SVG + "g"):
        kinds = (g.get("class") or "").split()
        if "node" in kinds:
            boxes[g.find(SVG + "title").text] = [
                " ".join((t.text or "").split()) for t in g.iter(SVG + "text")
            ]
    names = {}
    for node, lines in boxes.items():
        names[lines[0]] = node
        for line in lines[1:]:
            if line.startswith("alias "):
                for alias in line[len("alias ") :].split(", "):
                    names[alias] = node
    by_id = {node: lines[0] for node, lines in boxes.items()}
    for g in root.iter(SVG + "g"):
        kinds = (g.get("class") or "").split()
        if "edge" in kinds:
            source, target = g.find(SVG + "title").text.split("->")
            kind = next(k for k in kinds if k != "edge")
            texts = [" ".join((t.text or "").split()) for t in g.iter(SVG + "text")]
            edges[(kind, by_id[source], by_id[target])] = {
                "texts": texts,
                "heads": [p.get("fill") for p in g.iter(SVG + "polygon")],
            }
    return {"boxes": boxes, "names": names, "edges": edges}


def public_classes(module) -> set:
    return {name for name in module.__all__ if isinstance(getattr(module, name), type)}


def expected_names() -> set:
    names = public_classes(nn) | public_classes(optim) | KNOWN
    try:
        scheduler = importlib.import_module("tapegrad.optim.lr_scheduler")
    except ModuleNotFoundError:
        return names
    return names | (public_classes(scheduler) if hasattr(scheduler, "__all__") else set())


def missing(svg: dict, names) -> list:
    return sorted(name for name in names if name not in svg["names"])


def box(svg, name) -> list:
    return svg["boxes"][svg["names"][name]]


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    """The diagram written by the command, with the WebAssembly Graphviz."""
    out = tmp_path_factory.mktemp("classes") / "classes.svg"
    assert main(["classes", "--out", str(out), "--renderer", "wasm"]) == 0
    return read_svg(out.read_bytes())


# --- the picture of the code as it is ------------------------------------------------


def test_every_public_class_has_a_box(drawn):
    assert missing(drawn, expected_names()) == []
    assert drawn["names"]["LossMSE"] == drawn["names"]["MSELoss"]  # an alias: one box
    assert "alias LossMSE" in box(drawn, "MSELoss")
    # Bases the arrows need: the private one the losses share, and those from tapegrad's core.
    assert {"_Loss", "tapegrad.Tensor", "tapegrad.Function"} <= set(drawn["names"])
    assert box(drawn, "tapegrad.Tensor") == ["tapegrad.Tensor"]  # by name only


def test_the_check_for_missing_classes_can_fail(drawn):
    svg = dict(drawn, names={k: v for k, v in drawn["names"].items() if k != "SGD"})
    assert missing(svg, expected_names()) == ["SGD"]


def _names(lines) -> set:
    """'forward(x)' -> 'forward', 'weight: Parameter' -> 'weight' (signatures change; names
    stay)."""
    return {line.split("(")[0].split(":")[0].split(" = ")[0].strip() for line in lines}


def test_boxes_list_own_methods_and_attributes(drawn):
    module = box(drawn, "Module")
    assert module[:2] == ["Module", "{abstract}"]  # forward raises NotImplementedError
    assert "training: bool" in module and any(
        line.startswith("forward(") and line.endswith("{abstract}") for line in module
    )
    assert {
        "__call__",
        "parameters",
        "named_parameters",
        "zero_grad",
        "train",
        "state_dict",
    } <= _names(module)
    linear = box(drawn, "Linear")
    assert {
        "in_features: int",
        "out_features: int",
        "weight: Parameter",
        "bias: Parameter | None",
    } <= set(linear)
    assert {"forward", "reset_parameters"} <= _names(linear)
    assert "parameters" not in _names(linear)  # inherited: on Module's box
    assert "__getitem__" in _names(box(drawn, "Sequential"))
    optimizer = box(drawn, "Optimizer")
    assert {"param_groups", "state", "step", "zero_grad", "state_dict"} <= _names(optimizer)
    assert "step" in _names(box(drawn, "SGD")) and "step" in _names(box(drawn, "Adam"))
    assert "forward(ctx, x, weight, bias) {static}" in box(drawn, "LinearFunction")
    assert "function = MSEFunction {static}" in box(drawn, "MSELoss")


def test_inheritance_arrows_are_hollow_triangles_to_the_base(drawn):
    edges = drawn["edges"]
    for sub, base in (
        ("Linear", "Module"),
        ("Sequential", "Module"),
        ("ReLU", "Module"),
        ("SGD", "Optimizer"),
        ("Adam", "Optimizer"),
        ("MSELoss", "_Loss"),
        ("_Loss", "Module"),
        ("Parameter", "tapegrad.Tensor"),
        ("LinearFunction", "tapegrad.Function"),
    ):
        assert ("inherits", sub, base) in edges, (sub, base)
        assert edges[("inherits", sub, base)]["heads"] == ["none"]  # one arrowhead, not filled
    # Every drawn class reaches its tapegrad bases along the arrows.
    parents = {}
    for kind, source, target in edges:
        if kind == "inherits":
            parents.setdefault(source, set()).add(target)
    for name, node in drawn["names"].items():
        cls = _lookup(name)
        if cls is None:
            continue
        reached, todo = set(), [drawn["boxes"][node][0]]
        while todo:
            for parent in parents.get(todo.pop(), ()):
                if parent not in reached:
                    reached.add(parent)
                    todo.append(parent)
        for base in cls.__mro__[1:]:
            if base.__module__.startswith("tapegrad"):
                assert {base.__name__, f"tapegrad.{base.__name__}"} & reached, (name, base)


def _lookup(name):
    for module in (nn, optim):
        if isinstance(getattr(module, name, None), type):
            return getattr(module, name)
    return None


def test_composition_has_its_diamond_at_the_holder(drawn):
    edges = drawn["edges"]
    holds = edges[("holds", "Sequential", "Module")]
    assert "args" in holds["texts"] and "*" in holds["texts"]  # Sequential(*args), as torch
    assert holds["heads"] == ["#555555"]  # one filled diamond
    assert "weight, bias" in edges[("holds", "Linear", "Parameter")]["texts"]
    assert "param_groups" in edges[("holds", "Optimizer", "tapegrad.Tensor")]["texts"]
    assert ("holds", "Module", "Module") in edges  # submodules (by hand)
    assert ("runs", "Linear", "LinearFunction") in edges
    assert ("runs", "MSELoss", "MSEFunction") in edges


def test_the_composition_written_by_hand_still_matches_the_code():
    for holder, attribute, held, _ in classes.HELD_BY_HAND:
        holder_cls, held_cls = classes._resolve_path(holder), classes._resolve_path(held)
        assert isinstance(holder_cls, type) and isinstance(held_cls, type), (holder, held)
        source = inspect.getsource(holder_cls.__init__)
        assert (
            f"self.{attribute} " in source
            or f"self.{attribute}:" in source
            or f'"{attribute}"' in source
        ), (holder, attribute)


# --- from the live code --------------------------------------------------------------


def _load(monkeypatch, tmp_path, name, source):
    """Import `source` as module `name` (a real file, so inspect can read it)."""
    path = tmp_path / (name.rsplit(".", 1)[-1] + ".py")
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


def test_a_class_added_to_nn_appears_with_its_members(monkeypatch, tmp_path):
    assert "Dropfake" not in {b.name for b in classes.describe().boxes.values()}
    module = _load(
        monkeypatch,
        tmp_path,
        "tapegrad.nn.dropfake_for_test",
        """
        from tapegrad.nn.module import Module

        class Dropfake(Module):
            '''Zeroes elements with probability p while training.'''

            def __init__(self, p: float = 0.5, inplace=False):
                super().__init__()
                self.p = p
                self.inplace = inplace

            def forward(self, x):
                return x
        """,
    )
    monkeypatch.setattr(nn, "Dropfake", module.Dropfake, raising=False)
    monkeypatch.setattr(nn, "__all__", [*nn.__all__, "Dropfake"])
    svg = read_svg(visualize.class_diagram().pipe(format="svg"))
    assert box(svg, "Dropfake") == ["Dropfake", "p: float", "inplace: bool", "forward(x)"]
    assert ("inherits", "Dropfake", "Module") in svg["edges"]


def test_the_schedulers_are_drawn_when_their_module_exists(monkeypatch, tmp_path):
    _load(
        monkeypatch,
        tmp_path,
        "tapegrad.optim.lr_scheduler",
        """
        from tapegrad.optim.optimizer import Optimizer

        class LRScheduler:
            '''Sets the optimizer's learning rate at each step().'''

            def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
                self.optimizer = optimizer
                self.last_epoch = last_epoch

            def get_lr(self) -> list:
                raise NotImplementedError

            def step(self):
                pass

        class StepLR(LRScheduler):
            def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
                super().__init__(optimizer)
                self.step_size, self.gamma = step_size, gamma

            def get_lr(self) -> list:
                return []
        """,
    )
    diagram = classes.describe()
    assert "tapegrad.optim.lr_scheduler" in diagram.packages
    svg = read_svg(visualize.class_diagram().pipe(format="svg"))
    assert {"LRScheduler", "StepLR"} <= set(svg["names"])  # no __all__: its public classes
    assert box(svg, "LRScheduler") == [
        "LRScheduler",
        "{abstract}",
        "optimizer: Optimizer",
        "last_epoch: int",
        "get_lr(): list {abstract}",
        "step()",
    ]
    assert "step_size: int" in box(svg, "StepLR") and "gamma: float" in box(svg, "StepLR")
    assert ("inherits", "StepLR", "LRScheduler") in svg["edges"]
    assert ("refers", "LRScheduler", "Optimizer") in svg["edges"]  # given, not owned


def test_a_missing_module_is_skipped_but_a_broken_one_is_an_error(monkeypatch, tmp_path):
    assert classes.describe(["tapegrad.nn", "tapegrad.no_such_module"]).packages == ["tapegrad.nn"]
    (tmp_path / "broken_for_test.py").write_text("import no_such_dependency_for_test\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_for_test"):
        classes.describe(["broken_for_test"])


# --- the function and the command ---------------------------------------------------


def test_class_diagram_is_an_unrendered_digraph():
    graph = visualize.class_diagram()
    assert isinstance(graph, visualize.TapeGraph)
    assert graph.source.startswith("digraph classes {")
    assert '"tapegrad.nn.linear.Linear" -> "tapegrad.nn.module.Module"' in graph.source
    assert "cluster_tapegrad.nn" in graph.source and "linear.py" in graph.source


def test_every_direction_keeps_the_compartments():
    svg = read_svg(visualize.class_diagram(rankdir="BT").pipe(format="svg"))  # the default is RL
    assert box(svg, "Optimizer")[:2] == ["Optimizer", "{abstract}"]
    assert "param_groups: list" in box(svg, "Optimizer")
    with pytest.raises(ValueError, match="rankdir"):
        visualize.class_diagram(rankdir="up")


def test_the_command_writes_the_file_and_says_so(tmp_path, capsys):
    out = tmp_path / "sub" / "classes.svg"
    assert main(["classes", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"to {out}" in printed and "classes" in printed
    assert read_svg(out.read_bytes())["names"]


def test_docs_classes_svg_is_up_to_date(drawn):
    """docs/classes.svg (shown in the README) draws the classes as they are now.

    If this fails, regenerate it:  python -m visualize classes --out docs/classes.svg
    """
    committed = read_svg(DOCS_SVG.read_bytes())
    assert sorted(committed["boxes"].values()) == sorted(drawn["boxes"].values()), (
        "docs/classes.svg is stale: run  python -m visualize classes --out docs/classes.svg"
    )
    assert set(committed["edges"]) == set(drawn["edges"])
