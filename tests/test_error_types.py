"""Every error is catchable as the type torch raises for the same mistake.

Each row makes one mistake twice, in tapegrad and in torch (the
reference); tapegrad's error must be an instance of torch's error's type
(tapegrad may raise a subclass that is also a ValueError or TypeError: see
`tapegrad.errors`). The messages stay tapegrad's own.
"""

import pytest
import torch

import tapegrad as tg
from tapegrad import nn


def f32(*shape, requires_grad=False):
    return torch.ones(*shape).requires_grad_(requires_grad)


def ours(*shape, requires_grad=False, dtype=torch.float32):
    return tg.Tensor(torch.ones(*shape, dtype=dtype), requires_grad=requires_grad)


MISTAKES = {
    "matmul shapes": (lambda: ours(2, 3) @ ours(2, 3), lambda: f32(2, 3) @ f32(2, 3)),
    "matmul 0-d": (lambda: ours() @ ours(2), lambda: f32() @ f32(2)),
    "add shapes": (lambda: ours(2, 3) + ours(4), lambda: f32(2, 3) + f32(4)),
    "mm of 3-d": (lambda: ours(2, 2, 2).mm(ours(2, 2)), lambda: f32(2, 2, 2).mm(f32(2, 2))),
    "matmul dtypes": (
        lambda: ours(2, 2) @ ours(2, 2, dtype=torch.float64),
        lambda: f32(2, 2) @ torch.ones(2, 2, dtype=torch.float64),
    ),
    "mm dtypes": (
        lambda: ours(2, 2).mm(ours(2, 2, dtype=torch.float64)),
        lambda: f32(2, 2).mm(torch.ones(2, 2, dtype=torch.float64)),
    ),
    "reshape size": (lambda: ours(2, 3).reshape(4, 2), lambda: f32(2, 3).reshape(4, 2)),
    "transpose dim": (lambda: ours(2, 3).transpose(0, 5), lambda: f32(2, 3).transpose(0, 5)),
    "index out of range": (lambda: ours(2, 3)[5], lambda: f32(2, 3)[5]),
    "too many indices": (lambda: ours(2)[0, 0], lambda: f32(2)[0, 0]),
    "sum dim": (lambda: ours(2, 3).sum(5), lambda: f32(2, 3).sum(5)),
    "mean of ints": (lambda: tg.tensor([1, 2]).mean(), lambda: torch.tensor([1, 2]).mean()),
    "expand": (lambda: ours(2, 3).expand(4, 3), lambda: f32(2, 3).expand(4, 3)),
    "unsqueeze dim": (lambda: ours(2).unsqueeze(5), lambda: f32(2).unsqueeze(5)),
    "integer requires grad": (
        lambda: tg.tensor([1, 2], requires_grad=True),
        lambda: torch.tensor([1, 2], requires_grad=True),
    ),
    "requires_grad_ on integer": (
        lambda: tg.tensor([1, 2]).requires_grad_(),
        lambda: torch.tensor([1, 2]).requires_grad_(),
    ),
    "backward of non-scalar": (
        lambda: (ours(2, requires_grad=True) * 2).backward(),
        lambda: (f32(2, requires_grad=True) * 2).backward(),
    ),
    "backward without grad": (lambda: ours(2).sum().backward(), lambda: f32(2).sum().backward()),
    "backward grad shape": (
        lambda: (ours(2, requires_grad=True) * 2).backward(torch.ones(3)),
        lambda: (f32(2, requires_grad=True) * 2).backward(torch.ones(3)),
    ),
    "grad of wrong shape": (
        lambda: setattr(ours(2, requires_grad=True), "grad", torch.ones(3)),
        lambda: setattr(f32(2, requires_grad=True), "grad", torch.ones(3)),
    ),
    "grad of wrong dtype": (
        lambda: setattr(ours(2, requires_grad=True), "grad", torch.ones(2, dtype=torch.float64)),
        lambda: setattr(f32(2, requires_grad=True), "grad", torch.ones(2, dtype=torch.float64)),
    ),
    "in-place on a leaf": (
        lambda: ours(2, requires_grad=True).add_(1),
        lambda: f32(2, requires_grad=True).add_(1),
    ),
    "numpy of requires grad": (
        lambda: ours(2, requires_grad=True).numpy(),
        lambda: f32(2, requires_grad=True).numpy(),
    ),
    "retain_grad without grad": (lambda: ours(2).retain_grad(), lambda: f32(2).retain_grad()),
    "hook without grad": (
        lambda: ours(2).register_hook(print),
        lambda: f32(2).register_hook(print),
    ),
    "requires_grad off on an output": (
        lambda: setattr(ours(2, requires_grad=True) * 2, "requires_grad", False),
        lambda: setattr(f32(2, requires_grad=True) * 2, "requires_grad", False),
    ),
    "grad of unused input": (
        lambda: tg.grad((ours(2, requires_grad=True) * 2).sum(), ours(2, requires_grad=True)),
        lambda: torch.autograd.grad(
            (f32(2, requires_grad=True) * 2).sum(), f32(2, requires_grad=True)
        ),
    ),
    "grad of input without grad": (
        lambda: tg.grad((ours(2, requires_grad=True) * 2).sum(), ours(2)),
        lambda: torch.autograd.grad((f32(2, requires_grad=True) * 2).sum(), f32(2)),
    ),
    "linear features": (
        lambda: nn.Linear(3, 2)(ours(4, 2)),
        lambda: torch.nn.Linear(3, 2)(f32(4, 2)),
    ),
    "linear dtype": (
        lambda: nn.Linear(2, 2)(ours(4, 2, dtype=torch.float64)),
        lambda: torch.nn.Linear(2, 2)(torch.ones(4, 2, dtype=torch.float64)),
    ),
    "linear of a number": (lambda: nn.Linear(2, 2)(3.0), lambda: torch.nn.Linear(2, 2)(3.0)),
    "parameter assignment": (
        lambda: setattr(nn.Linear(2, 2), "weight", ours(2, 2) * 2),
        lambda: setattr(torch.nn.Linear(2, 2), "weight", f32(2, 2) * 2),
    ),
    "module assignment": (lambda: _assign_child(nn), lambda: _assign_child(torch.nn)),
    "sequential of a non-module": (lambda: nn.Sequential(3), lambda: torch.nn.Sequential(3)),
    "state dict shape": (
        lambda: nn.Linear(2, 2).load_state_dict(
            {"weight": torch.ones(3, 3), "bias": torch.ones(2)}
        ),
        lambda: torch.nn.Linear(2, 2).load_state_dict(
            {"weight": torch.ones(3, 3), "bias": torch.ones(2)}
        ),
    ),
    "state dict missing key": (
        lambda: nn.Linear(2, 2).load_state_dict({}),
        lambda: torch.nn.Linear(2, 2).load_state_dict({}),
    ),
    "sgd negative lr": (
        lambda: tg.optim.SGD([ours(2, requires_grad=True)], lr=-1.0),
        lambda: torch.optim.SGD([f32(2, requires_grad=True)], lr=-1.0),
    ),
    "sgd of a tensor": (
        lambda: tg.optim.SGD(ours(2, requires_grad=True), lr=0.1),
        lambda: torch.optim.SGD(f32(2, requires_grad=True), lr=0.1),
    ),
    "adam beta": (
        lambda: tg.optim.Adam([ours(2, requires_grad=True)], betas=(1.5, 0.9)),
        lambda: torch.optim.Adam([f32(2, requires_grad=True)], betas=(1.5, 0.9)),
    ),
    "where of a float condition": (
        lambda: (
            tg.where(ours(2), ours(2), ours(2))
            if hasattr(tg, "where")
            else tg.ops.where(ours(2), ours(2, requires_grad=True), ours(2))
        ),
        lambda: torch.where(f32(2), f32(2), f32(2)),
    ),
    "clamp without bounds": (lambda: ours(2, requires_grad=True).clamp(), lambda: f32(2).clamp()),
    "fill_ with a vector": (
        lambda: (ours(2, requires_grad=True) * 1).fill_(torch.ones(2)),
        lambda: (f32(2, requires_grad=True) * 1).fill_(torch.ones(2)),
    ),
    "empty optimizer": (lambda: tg.optim.SGD([], lr=0.1), lambda: torch.optim.SGD([], lr=0.1)),
}


def _assign_child(module):
    seq = module.Sequential(module.ReLU())
    setattr(seq, "0", 3.0)


@pytest.mark.parametrize("name", MISTAKES)
def test_tapegrad_raises_what_torch_raises(name):
    mistake, reference = MISTAKES[name]
    with pytest.raises(Exception) as theirs:
        reference()
    with pytest.raises(Exception) as ours_error:
        mistake()
    assert isinstance(ours_error.value, type(theirs.value)), (
        f"{name}: tapegrad raised {type(ours_error.value).__name__} ({ours_error.value}), torch "
        f"raised {type(theirs.value).__name__}; code written for torch would not catch it"
    )
