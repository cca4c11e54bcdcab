"""`to_dot`: a tape as a picture, one box per tape node, edges along the data flow.

Colour legend:

    light blue box       an op: one tape node, "%index OpName", its output shape
    green box            a parameter, by its name in ``model.named_parameters()``
                         ("0.weight"); a leaf that requires grad but has no name: "leaf"
    yellow ellipse       an input: a leaf tensor that needs no gradient (data, targets)
    grey dashed ellipse  a constant: a plain torch tensor argument of an op
    red box              the loss: the node of the target tensor (for a Tape: each
                         single-element output that no later node uses)
    orange box           any other output that no later node uses
    dashed frame         group="cluster": the ops recorded inside one module
                         (``node.module``), labelled with the module's name
    lavender 3-D box     group="collapse": all the ops of one module folded into one box
    red outline          a value or gradient with NaN or inf in it
    violet box           an op recorded by a ``create_graph=True`` sweep: part of the
                         derivative of the node it names ("derivative of %3 Tanh")
    white dashed box     an input recorded outside a block tape's ``with`` block (drawing
                         a Tape that is a record of its block: see `tapegrad.tape`)

An edge a -> b means "b took a's output as an input". Drawing is a pure
function of the tape: nothing is run, swept or changed. Every loop is
plain iteration over the tape, so a tape of any depth can be drawn.
"""

from __future__ import annotations

import inspect
from collections import Counter

import torch

from tapegrad import Tape, Tensor
from tapegrad.printing import constants_text, leaf_names
from tapegrad.tape import Node

from . import labels
from .engine import TapeGraph

GROUPS = ("none", "cluster", "collapse")

COLOURS = {
    "op": "#dbe9f6",
    "param": "#c7e9c0",
    "leaf": "#c7e9c0",
    "input": "#fdeaa8",
    "constant": "#eeeeee",
    "loss": "#f4a6a6",
    "output": "#fdd0a2",
    "module": "#e2d6f0",
    "derivative": "#e8d5f5",
    "outside": "#ffffff",
}
NOT_FINITE = "#d62728"


def to_dot(
    target,
    model=None,
    values: bool = False,
    grads: bool = False,
    group: str = "none",
    depth: int = 1,
    rankdir: str = "TB",
    names: dict | None = None,
) -> TapeGraph:
    """The picture of a tape as an unrendered `graphviz.Digraph` (a `TapeGraph`).

    target   a `tapegrad.Tape`, or a Tensor: then only the nodes its value depends on
    model    a Module: parameters are labelled with their `named_parameters()` names and
             modules with their `named_modules()` names
    values   show each tensor's values (the value for one element, else mean [min, max]),
             from ``node.value`` (kept by ``with tg.Tape()``) and leaves' data
    grads    show each gradient: ``node.grad`` (kept by ``backward(keep_grads=True)``) and
             leaves' ``.grad``; "no gradient yet" before a sweep
    group    "none"; "cluster": a frame around the ops of each module; "collapse": one box
             per module, `depth` levels of dotted names deep (1: per child of `model`)
    rankdir  "TB" (inputs at the top, the loss at the bottom) or "LR"
    names    {"x": x, ...}: names of your own for any leaf tensors (as for print(tape));
             without `model`, parameters are named like print(tape) does ("Linear0.weight")

    No renderer is needed: ``.source`` is the DOT text; `visualize.render` writes a file.
    The colours are listed at the top of this module (`visualize.graph`).
    """
    if group not in GROUPS:
        raise ValueError(
            f"to_dot: group must be one of {', '.join(map(repr, GROUPS))}, got {group!r}"
        )
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"to_dot: depth must be a positive int, got {depth!r}")
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"to_dot: rankdir must be 'TB', 'LR', 'BT' or 'RL', got {rankdir!r}")
    if model is not None and not hasattr(model, "named_modules"):
        raise TypeError(f"to_dot: model must be a tapegrad.nn.Module, got {type(model).__name__}")
    nodes, ends = _select(target)
    return _Drawing(nodes, ends, model, names, values, grads, group, depth, rankdir).graph


def _select(target):
    """The nodes to draw, in tape order, and {id(node): 'loss' or 'output'} for the ends."""
    if isinstance(target, Tape):
        nodes = list(target)  # a block tape's own list; a computation tape's, wherever it went
        used = set()
        for node in nodes:
            for item in node.inputs:
                if isinstance(item, Node):
                    used.add(id(item))
        ends = {
            id(n): ("loss" if _numel(n.shape) == 1 else "output")
            for n in nodes
            if id(n) not in used
        }
        return nodes, ends
    if isinstance(target, Tensor):
        root = target.node
        if root is None:
            raise ValueError(
                "to_dot: the target tensor is a leaf (nothing recorded it on a tape); "
                "pass the output of an op (e.g. the loss) or a tapegrad.Tape"
            )
        tape = target.tape.nodes
        assert tape[root.index] is root, "a tensor's node is at its index on its tape"
        # The nodes the target depends on: the sweep's walk, without the derivatives.
        reaches = bytearray(root.index + 1)
        reaches[root.index] = 1
        for index in range(root.index, -1, -1):
            if reaches[index]:
                for item in tape[index].inputs:
                    if isinstance(item, Node):
                        reaches[item.index] = 1
        nodes = [tape[i] for i in range(root.index + 1) if reaches[i]]
        return nodes, {id(root): "loss" if _numel(root.shape) == 1 else "output"}
    raise TypeError(
        f"to_dot: target must be a tapegrad.Tape or a Tensor on a tape, got {type(target).__name__}"
    )


def _numel(shape) -> int:
    n = 1
    for size in shape:
        n *= size
    return n


class _Drawing:
    """Builds the Digraph in one pass over the nodes (see `to_dot`)."""

    def __init__(self, nodes, ends, model, names, values, grads, group, depth, rankdir):
        self.values, self.grads, self.group, self.depth = values, grads, group, depth
        self.ends = ends
        self.leaf_names = leaf_names(nodes, model, names)  # every name print(tape) would use
        self.module_names = {}  # id(module) -> dotted name ('' for model itself)
        self.modules_by_name = {}
        if model is not None:
            for name, module in model.named_modules():
                self.module_names[id(module)] = name
                self.modules_by_name[name] = module
        self.unnamed = _unnamed_labels(nodes, self.module_names)
        # The module whose frame a parameter sits in (group="cluster"): its owner.
        self.owner = {id(p): name.rpartition(".")[0] for name, p in _named_parameters(model)}
        for module in _modules_of(nodes):
            if id(module) in self.unnamed:
                for _, param in module.named_parameters(recurse=False):
                    self.owner.setdefault(id(param), "\0" + self.unnamed[id(module)])
        self.items = {}  # graph node name -> (attributes, cluster key or None)
        self.drawn = {id(node) for node in nodes}
        self.leaves = {}  # id(leaf tensor or constant) -> graph node name
        self.tooltips = {}  # op -> its maths, once per op per drawing
        self.graph = TapeGraph(
            name="tape",
            graph_attr={
                "rankdir": rankdir,
                "bgcolor": "white",
                "fontname": "Helvetica",
                "fontsize": "11",
                "nodesep": "0.25",
                "ranksep": "0.35",
            },
            node_attr={
                "fontname": "Helvetica",
                "fontsize": "11",
                "style": "filled",
                "penwidth": "1",
            },
            edge_attr={"color": "#555555", "arrowsize": "0.7"},
        )
        if group == "collapse":
            self._collapsed(nodes)
        else:
            self._flat(nodes)

    # --- one box per node --------------------------------------------------------
    def _flat(self, nodes):
        edges = []
        for node in nodes:
            name = f"n{node.index}"
            self.items[name] = (self._op_attrs(node), self._cluster_of_module(node.module))
            for item in node.inputs:
                source = self._source(item)
                if source is not None:
                    edges.append((source, name))
        self._emit(edges)

    def _op_attrs(self, node) -> dict:
        kind = self.ends.get(id(node), "op")
        lines = [labels.shape_text(node.shape, node.dtype), ", ".join(constants_text(node))]
        finite = True
        if self.values:
            if node.value is None:
                lines.append(labels.VALUE_NOT_KEPT)
            else:
                lines.append(labels.stats(node.value))
                finite = labels.is_finite(node.value)
        if self.grads:
            lines.append(labels.grad_line(node.grad, node.released))
            finite = finite and labels.is_finite(node.grad)
        if node.hooks:
            lines.append("hooks: " + ", ".join(getattr(h, "__name__", "hook") for h in node.hooks))
        if node.derivative_of is not None:
            lines.append(f"derivative of %{node.derivative_of.index} {node.derivative_of.name}")
            if kind == "op":
                kind = "derivative"
        attrs = {
            "label": labels.label(f"%{node.index} {node.name}", lines),
            "shape": "box",
            "style": "filled,rounded",
            "fillcolor": COLOURS[kind],
            "class": kind,
            "tooltip": self._maths(node.op),
        }
        if kind == "loss":
            attrs["penwidth"] = "2"
        if not finite:
            attrs.update(color=NOT_FINITE, penwidth="2.5")
        return attrs

    def _maths(self, op) -> str:
        tooltip = self.tooltips.get(op)
        if tooltip is None:
            tooltip = self.tooltips[op] = _maths(op)
        return tooltip

    def _source(self, item) -> str | None:
        """The graph node an input comes from (drawing leaves and constants once each)."""
        if isinstance(item, Node):
            name = f"n{item.index}"
            if name not in self.items and id(item) not in self.drawn:
                self.items[name] = (
                    {
                        "label": labels.label(
                            f"%{item.index} {item.name}", ["recorded outside this block"]
                        ),
                        "shape": "box",
                        "style": "filled,rounded,dashed",
                        "fillcolor": COLOURS["outside"],
                        "class": "outside",
                    },
                    None,
                )
            return name
        if not (isinstance(item, (Tensor, torch.Tensor))):
            return None  # numbers and options are written in the op's box
        key = id(item)
        name = self.leaves.get(key)
        if name is None:
            name = self.leaves[key] = f"t{len(self.leaves)}"
            self.items[name] = self._leaf_attrs(item)
        return name

    def _leaf_attrs(self, item):
        """(attributes, cluster) of a leaf tensor or a plain torch tensor constant."""
        if isinstance(item, torch.Tensor):
            attrs = {
                "label": labels.label("constant", [labels.shape_text(item.shape, item.dtype)]),
                "shape": "ellipse",
                "style": "filled,dashed",
                "fillcolor": COLOURS["constant"],
                "class": "constant",
            }
            return attrs, None
        name = self.leaf_names.get(id(item))
        kind = (
            "param"
            if name is not None and item.requires_grad
            else ("leaf" if item.requires_grad else "input")
        )
        lines = [labels.shape_text(item.shape, item.dtype)]
        finite = True
        if self.values:
            lines.append(labels.stats(item.data))
            finite = labels.is_finite(item.data)
        if self.grads and item.requires_grad:
            lines.append(labels.grad_line(item._grad, released=False, leaf=True))
            finite = finite and labels.is_finite(item._grad)
        attrs = {
            "label": labels.label(name or kind, lines),
            "shape": "ellipse" if kind == "input" else "box",
            "fillcolor": COLOURS[kind],
            "class": kind,
        }
        if not finite:
            attrs.update(color=NOT_FINITE, penwidth="2.5")
        cluster = self.owner.get(id(item)) if self.group == "cluster" else None
        return attrs, cluster

    # --- clusters ----------------------------------------------------------------
    def _cluster_of_module(self, module):
        if self.group != "cluster" or module is None:
            return None
        return self._module_key(module)

    def _module_key(self, module) -> str:
        """The module's dotted name in `model`, or a label like 'MSELoss' for one outside it."""
        name = self.module_names.get(id(module))
        if name is not None:
            return name
        return "\0" + self.unnamed[id(module)]  # never a dotted name of `model`

    def _module_title(self, key: str) -> str:
        if key.startswith("\0"):
            return key[1:]
        module = self.modules_by_name[key]
        return f"{key}: {type(module).__name__}" if key else f"model: {type(module).__name__}"

    def _emit(self, edges, edge_counts=None):
        """Add the items (in their clusters, innermost first) and then the edges."""
        members = {}
        for name, (attrs, cluster) in self.items.items():
            members.setdefault(cluster, []).append((name, attrs))
        # Every frame and the frames around it, in the order the tape first enters them.
        paths = {}
        for key in members:
            if key is not None:
                path = self._cluster_path(key, "" in members)
                for i in range(1, len(path) + 1):
                    paths.setdefault(path[i - 1], path[:i])
        subgraphs = {}
        for key in paths:
            sub = subgraphs[key] = TapeGraph(
                name=f"cluster_{len(subgraphs)}",
                graph_attr={
                    "label": self._module_title(key),
                    "style": "dashed,rounded",
                    "color": "#888888",
                    "fontcolor": "#555555",
                    "labeljust": "l",
                },
            )
            for name, attrs in members.get(key, ()):
                sub.node(name, **attrs)
            sub.body.extend(_beside(members.get(key, ()), edges))
        for name, attrs in members.get(None, ()):
            self.graph.node(name, **attrs)
        # Deepest first: a cluster is complete when it is copied into its parent.
        for key in sorted(paths, key=lambda k: -len(paths[k])):
            path = paths[key]
            parent = subgraphs[path[-2]] if len(path) > 1 else self.graph
            parent.subgraph(subgraphs[key])
        for source, target in edges:
            attrs = {}
            count = edge_counts.get((source, target), 1) if edge_counts else 1
            if count > 1:
                attrs.update(label=f"×{count}", fontsize="9")
            if source[0] != "t":  # op to op: the main line of the computation, kept straight
                attrs["weight"] = "4"
            self.graph.edge(source, target, **attrs)

    def _cluster_path(self, key: str, root_has_members: bool) -> list:
        """The keys of the clusters from the outermost to `key`: '3', '3.17' for '3.17'."""
        if key.startswith("\0"):
            return [key]
        path = [".".join(key.split(".")[:i]) for i in range(1, key.count(".") + 2)] if key else [""]
        if key and root_has_members:
            path.insert(0, "")
        return path

    # --- one box per module --------------------------------------------------------
    def _collapsed(self, nodes):
        box_of = {}  # id(node) -> its graph node name
        groups = {}  # box name -> [nodes]
        box_names = {}  # module key -> box name
        for node in nodes:
            if node.module is None:
                name = f"n{node.index}"
                self.items[name] = (self._op_attrs(node), None)
            else:
                key = self._collapse_key(node.module)
                name = box_names.get(key)
                if name is None:
                    name = box_names[key] = f"m{len(box_names)}"
                    groups[name] = (key, [])
                groups[name][1].append(node)
            box_of[id(node)] = name
        # Leaves that only one box uses (its parameters) are folded into that box.
        users = {}
        for node in nodes:
            for item in node.inputs:
                if isinstance(item, Tensor) and item.requires_grad and item.node is None:
                    users.setdefault(id(item), (item, set()))[1].add(box_of[id(node)])
        folded = {}
        for item, boxes in users.values():
            if len(boxes) == 1:
                (box,) = boxes
                if box in groups:
                    folded.setdefault(box, []).append(item)
        folded_ids = {id(item) for items in folded.values() for item in items}
        counts = Counter()
        for node in nodes:
            target = box_of[id(node)]
            for item in node.inputs:
                if isinstance(item, Node):
                    source = box_of.get(id(item)) or self._source(item)  # (outside a block)
                elif id(item) in folded_ids:
                    continue
                else:
                    source = self._source(item)
                if source is not None and source != target:
                    counts[source, target] += 1
        for name, (key, members) in groups.items():
            self.items[name] = (self._box_attrs(key, members, folded.get(name, [])), None)
        self._emit(list(counts), counts)

    def _collapse_key(self, module) -> str:
        key = self._module_key(module)
        if key.startswith("\0") or not key:
            return key
        return ".".join(key.split(".")[: self.depth])

    def _box_attrs(self, key, members, params) -> dict:
        last = members[-1]
        ops = Counter(node.name for node in members)
        top = ", ".join(f"{op} ×{n}" for op, n in ops.most_common(3))
        if len(ops) > 3:
            top += ", …"
        lines = [
            f"{len(members)} ops, tape %{members[0].index}…%{last.index}"
            if len(members) > 1
            else f"1 op, tape %{last.index}",
            top,
            "out " + labels.shape_text(last.shape, last.dtype),
        ]
        names = [
            self.leaf_names.get(id(p), "leaf " + labels.shape_text(p.shape, p.dtype))
            for p in params
        ]
        if names:
            numbers = sum(p.data.numel() for p in params)
            listed = ", ".join(names) if len(names) <= 4 else f"{len(names)} parameters"
            lines.append(f"params {listed} ({numbers:,} numbers)")
        kind = "loss" if any(self.ends.get(id(n)) == "loss" for n in members) else "module"
        finite = True
        if self.values and last.value is not None:
            lines.append("out " + labels.stats(last.value))
            finite = labels.is_finite(last.value)
        if self.grads:
            lines.append("out " + labels.grad_line(last.grad, last.released))
            finite = finite and labels.is_finite(last.grad)
        attrs = {
            "label": labels.label(self._module_title(key), lines),
            "shape": "box3d",
            "fillcolor": COLOURS[kind],
            "class": "module" if kind != "loss" else "module loss",
        }
        if not finite:
            attrs.update(color=NOT_FINITE, penwidth="2.5")
        return attrs


def _beside(members, edges) -> list:
    """'{rank=same; n2; t3; t4}': inside a module's frame, its parameters level with their op.

    Above it they would share a rank with the previous layer's op, and the
    frames (which cannot overlap) would march across the page in a staircase.
    """
    inside = {name for name, _ in members}
    feeds = {}
    for source, target in edges:
        if source in inside and source[0] == "t":
            feeds.setdefault(source, set()).add(target)
    rows = {}
    for source, targets in feeds.items():
        if len(targets) == 1:
            (target,) = targets
            if target in inside:
                rows.setdefault(target, []).append(source)
    return [f"\t{{rank=same; {op}; {'; '.join(params)}}}\n" for op, params in rows.items()]


def _named_parameters(model):
    return () if model is None else model.named_parameters()


def _modules_of(nodes) -> list:
    """The modules that recorded `nodes`, each once, in tape order."""
    modules = {}
    for node in nodes:
        module = node.module
        if module is not None:
            modules.setdefault(id(module), module)
    return list(modules.values())


def _unnamed_labels(nodes, named) -> dict:
    """{id(module): 'Linear1'} for the modules outside `model`, named as print(tape) names them:
    by class, numbered in tape order when a class appears more than once."""
    modules = {id(m): m for m in _modules_of(nodes) if id(m) not in named}
    totals = Counter(type(m).__name__ for m in modules.values())
    seen = Counter()
    labels_ = {}
    for key, module in modules.items():
        cls = type(module).__name__
        labels_[key] = cls if totals[cls] == 1 else f"{cls}{seen[cls]}"
        seen[cls] += 1
    return labels_


def _maths(op) -> str:
    """The op's own docstring (its maths) as the box's tooltip, in DOT's escapes."""
    doc = op.__dict__.get("__doc__")
    doc = inspect.cleandoc(doc) if doc else op.__name__
    return doc.replace("\\", "\\\\").replace("\n", "\\n")
