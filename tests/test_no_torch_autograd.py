"""tapegrad never uses torch autograd: not in its source, and not at run time.

The source scan reads the AST (so docstrings and comments that talk about
`torch.autograd` or `.backward()` are not code). Statically, `x.backward()`
cannot tell a tapegrad tensor from a torch one, so the scan flags the forms
that are unambiguously torch (`torch.autograd`, calls on `torch.*` or on a
`.data`, `requires_grad=True` passed to anything but tapegrad's own
constructors); the run-time checks then cover every tensor a whole training
step touches.
"""

import ast
from pathlib import Path

import pytest
import torch

import tapegrad as tg
from tapegrad import nn

PACKAGE = Path(tg.__file__).parent

# Callees that take requires_grad=... and are tapegrad's own leaves, not torch tensors.
TAPEGRAD_CONSTRUCTORS = {"Tensor", "Parameter", "tensor", "__init__"}
TORCH_GRAD_METHODS = {"backward", "requires_grad_", "retain_grad", "register_hook"}


def _root_and_chain(expr):
    """For `torch.autograd.grad` -> ('torch', ['autograd', 'grad']); calls are looked through."""
    chain = []
    while True:
        if isinstance(expr, ast.Attribute):
            chain.append(expr.attr)
            expr = expr.value
        elif isinstance(expr, ast.Call):
            expr = expr.func
        elif isinstance(expr, ast.Subscript):
            expr = expr.value
        else:
            break
    root = expr.id if isinstance(expr, ast.Name) else None
    return root, chain[::-1]


def _torch_aliases(tree) -> set:
    names = {"torch"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "torch" or alias.name.startswith("torch."):
                    names.add((alias.asname or alias.name).split(".")[0])
    return names


def _is_torch_tensor_expr(expr, torch_names) -> bool:
    """Unambiguously a torch tensor: rooted at torch (torch.ones(3)...), or some `.data`."""
    root, chain = _root_and_chain(expr)
    return root in torch_names or "data" in chain


def violations(source: str, filename: str = "<source>") -> list:
    """Every use of torch autograd that the source makes, as 'file:line: what'."""
    tree = ast.parse(source, filename)
    torch_names = _torch_aliases(tree)
    found = []

    def flag(node, what):
        found.append(f"{filename}:{node.lineno}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("torch.autograd"):
                    flag(node, f"import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module.startswith("torch.autograd") or (
                module == "torch" and any(a.name == "autograd" for a in node.names)
            ):
                flag(node, f"from {module} import ...")
        elif isinstance(node, ast.Attribute) and node.attr == "autograd":
            flag(node, "torch.autograd")
        elif isinstance(node, ast.Call):
            func = node.func
            # getattr(torch, "autograd")
            if (
                isinstance(func, ast.Name)
                and func.id == "getattr"
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and node.args[1].value == "autograd"
            ):
                flag(node, 'getattr(..., "autograd")')
            # torch_tensor.backward() / .requires_grad_() / ...
            if (
                isinstance(func, ast.Attribute)
                and func.attr in TORCH_GRAD_METHODS
                and _is_torch_tensor_expr(func.value, torch_names)
            ):
                flag(node, f".{func.attr}() on a torch tensor")
            # requires_grad=<not False> passed to anything but tapegrad's constructors
            for keyword in node.keywords:
                if keyword.arg != "requires_grad":
                    continue
                if isinstance(keyword.value, ast.Constant) and keyword.value.value is False:
                    continue
                root, chain = _root_and_chain(func)
                name = chain[-1] if chain else root
                if root in torch_names or name not in TAPEGRAD_CONSTRUCTORS:
                    flag(node, f"requires_grad= passed to {'.'.join([root or '?'] + chain)}()")
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if (
                    isinstance(target, ast.Attribute)
                    and target.attr == "requires_grad"
                    and _is_torch_tensor_expr(target.value, torch_names)
                ):
                    flag(node, "requires_grad set on a torch tensor")
    return found


# --- the scanner itself: it finds what it must, and only that -------------------------------

MUST_FLAG = [
    "import torch.autograd",
    "from torch.autograd import grad",
    "from torch.autograd.function import Function",
    "from torch import autograd",
    "import torch\ntorch.autograd.grad(y, x)",
    "import torch as th\nth.autograd.backward([y])",
    "import torch\nf = getattr(torch, 'autograd')",
    "x.data.backward()",
    "x.data.sum().backward(g)",
    "import torch\ntorch.ones(3).sum().backward()",
    "import torch\nw = torch.zeros(3, requires_grad=True)",
    "import torch\nw = torch.tensor([1.0], requires_grad=flag)",
    "w = x.data.new_zeros(3, requires_grad=True)",
    "w = x.data.requires_grad_()",
    "x.data.requires_grad = True",
    "import torch\nt = torch.empty(2)\nt.data.requires_grad = True",
    "x.data.retain_grad()",
]

MUST_PASS = [
    '"""Docstring: torch.autograd is never used, nor .backward() on torch tensors."""',
    "# a comment about torch.autograd and requires_grad=True",
    "class Tensor:\n    def backward(self, grad=None):\n        pass",
    "loss.backward()",  # a tapegrad tensor
    "out.backward(grad_output)",
    "node.op.backward(ctx, grad)",  # an op's derivative
    "leaf = Tensor(p, requires_grad=True)",
    "p = Parameter(data, requires_grad=requires_grad)",
    "t = tapegrad.tensor([1.0], requires_grad=True)",
    "super().__init__(data, requires_grad=requires_grad)",
    "self.requires_grad = True",
    "import torch\nx = torch.zeros(3, requires_grad=False)",
    "message = 'pass retain_graph=True to backward()'",
]


@pytest.mark.parametrize("source", MUST_FLAG)
def test_scanner_flags_torch_autograd(source):
    assert violations(source), f"not flagged:\n{source}"


@pytest.mark.parametrize("source", MUST_PASS)
def test_scanner_ignores_what_is_not_torch_autograd(source):
    assert violations(source) == []


# --- the package -------------------------------------------------------------------------------


def test_package_source_never_uses_torch_autograd():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20  # the whole package was found, not an empty folder
    found = []
    for path in files:
        found += violations(path.read_text(), str(path.relative_to(PACKAGE.parent)))
    assert found == [], (
        "torch autograd used in tapegrad/:\n"
        + "\n".join(found)
        + "\n(a tapegrad constructor taking requires_grad=: add its name to "
        "TAPEGRAD_CONSTRUCTORS in tests/test_no_torch_autograd.py)"
    )


def _forbid(name):
    def forbidden(*args, **kwargs):
        raise AssertionError(f"tapegrad called {name}")

    return forbidden


@pytest.fixture
def no_torch_autograd_calls(monkeypatch):
    """Make every entry into torch autograd's sweep fail loudly for the test's duration."""
    monkeypatch.setattr(torch.Tensor, "backward", _forbid("torch.Tensor.backward"))
    monkeypatch.setattr(torch.autograd, "backward", _forbid("torch.autograd.backward"))
    monkeypatch.setattr(torch.autograd, "grad", _forbid("torch.autograd.grad"))


def _untracked(t, where):
    if isinstance(t, torch.Tensor):
        assert not t.requires_grad, f"{where}: a torch tensor with requires_grad=True"
        assert t.grad_fn is None, f"{where}: a torch tensor with grad_fn {t.grad_fn}"
        return 1
    return 0


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_a_training_step_never_touches_torch_autograd(optimizer, no_torch_autograd_calls):
    assert torch.is_grad_enabled()  # torch would build graphs if any tensor required grad
    g = torch.Generator().manual_seed(0)
    inputs, targets = tg.data.generate_disc_set(64, g)
    model = nn.Sequential(
        nn.Linear(2, 16, generator=g),
        nn.Tanh(),
        nn.Linear(16, 16, generator=g),
        nn.ReLU(),
        nn.Linear(16, 1, generator=g),
        nn.Sigmoid(),
    )
    opt = getattr(tg.optim, optimizer)(model.parameters(), lr=0.01)
    checked = 0
    for step, (x, t) in enumerate(tg.data.batches(inputs, targets, 16, shuffle=True, generator=g)):
        opt.zero_grad()
        with tg.Tape() as tape:  # keep_values: every node's output stays to inspect
            loss = nn.BCELoss()(model(x), t) + ((model(x) - t) ** 2).mean() * 0.5
        assert len(tape) > 10
        for node in tape:
            checked += _untracked(node.value, f"output of {node.describe()}")
            for position, saved in enumerate(node._saved):
                checked += _untracked(saved, f"saved tensor {position} of {node.describe()}")
            for item in node.inputs:
                checked += _untracked(getattr(item, "data", item), f"input of {node.describe()}")
        loss.backward(keep_grads=step == 0)
        for node in tape:
            checked += _untracked(node.grad, f"gradient of {node.describe()}")
        opt.step()
        for name, p in model.named_parameters():
            checked += _untracked(p.data, f"parameter {name}")
            checked += _untracked(p.grad, f"gradient of {name}")
        checked += _untracked(loss.data, "loss")
    assert checked > 200  # the walk above really looked at tensors


def test_torch_tensors_that_require_grad_are_cut_on_the_way_in():
    raw = torch.ones(3, requires_grad=True) * 2  # carries torch autograd history
    assert raw.grad_fn is not None
    for made in (tg.tensor(raw, requires_grad=True), tg.Tensor(raw), nn.Parameter(raw)):
        _untracked(made.data, "tapegrad tensor built from a tracked torch tensor")
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (x * raw).sum()  # a tracked torch tensor as a constant operand
    y.backward()
    _untracked(y.data, "output of an op with a tracked torch constant")
    _untracked(x.grad, "gradient")
