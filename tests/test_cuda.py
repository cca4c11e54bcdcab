"""The core checks on a CUDA device: values and gradients match torch, and stay on the device.

Marked `cuda`: conftest skips them where torch sees no CUDA device.
"""

import pytest
import torch

import tapegrad as tg
from tapegrad import nn

from helpers import check_against_torch, positive, randn

pytestmark = pytest.mark.cuda

DEVICE = "cuda"


def on_device(values):
    return values.to(DEVICE)


OPS = {
    "add broadcast": (lambda a, b: a + b, [(3, 1), (2, 1, 4)]),
    "sub number": (lambda a, b: 2.0 - a * b, [(2, 3), (3,)]),
    "mul broadcast": (lambda a, b: a * b, [(4, 1), (1, 5)]),
    "div": (lambda a, b: a / (b * b + 1), [(2, 3), (2, 3)]),
    "neg pow": (lambda a, b: (-a) ** 3 + b**2, [(3,), (3,)]),
    "matmul 2d": (lambda a, b: a @ b, [(3, 4), (4, 2)]),
    "matmul batched": (lambda a, b: a @ b, [(2, 1, 3, 4), (5, 4, 2)]),
    "matmul 1d": (lambda a, b: a @ b, [(4,), (4,)]),
    "sum mean": (lambda a, b: a.sum((0, -1), keepdim=True) * b.mean(1), [(2, 3, 4), (2, 3)]),
    "exp tanh sigmoid relu": (
        lambda a, b: (a.exp() * b.tanh()).sigmoid() + (a - b).relu(),
        [(3, 4), (3, 4)],
    ),
    "reshape transpose": (lambda a, b: a.reshape(4, 3).T * b, [(3, 4), (3, 4)]),
    "basic index": (lambda a, b: a[1:, None, ..., ::2] * b[0, ::2], [(3, 4), (3, 4)]),
}


@pytest.mark.parametrize("name", OPS)
def test_ops_match_torch_on_the_device(name):
    fn, shapes = OPS[name]
    values = [
        on_device(randn(shape, seed, away_from_zero=0.1)) for seed, shape in enumerate(shapes)
    ]
    out = check_against_torch(fn, *values)  # also checks each gradient's device
    assert out.device.type == "cuda"


def test_log_and_fractional_power_on_the_device():
    check_against_torch(lambda a: a.log() + a**-1.5, on_device(positive((3, 4), 0)))


@pytest.mark.parametrize("index_device", ["cpu", "cuda"])
def test_integer_and_boolean_indexing_on_the_device(index_device):
    x = on_device(randn((5, 3), 0))
    picked = torch.tensor([0, 0, 4, 2, 0], device=index_device)
    check_against_torch(lambda t: t[picked], x)
    mask = (randn((5, 3), 1) > 0).to(index_device)
    check_against_torch(lambda t: t[mask], x)


def test_gradcheck_on_the_device():
    x = tg.tensor(randn((2, 3), 0), requires_grad=True, device=DEVICE)
    w = tg.tensor(randn((3, 2), 1), requires_grad=True, device=DEVICE)
    assert tg.gradcheck(lambda a, b: (a @ b).tanh().sum(0) * a[:, :2].exp().mean(), x, w)


def test_moving_between_devices_brings_the_gradient_home():
    check_against_torch(lambda t: t.to("cpu") * 2, on_device(randn((3,), 0)))
    check_against_torch(lambda t: t.to(DEVICE).exp(), randn((3,), 0))
    check_against_torch(
        lambda t: t.to(DEVICE, torch.float32).sum(), randn((3,), 0), rtol=1e-6, atol=1e-6
    )


def test_a_leaf_gradient_accumulates_on_the_device():
    x = tg.tensor([1.0, 2.0], requires_grad=True, device=DEVICE)
    (x * x).sum().backward()
    (x * 3).sum().backward()
    assert x.grad.device.type == "cuda"
    assert x.grad.tolist() == [5.0, 7.0]


def test_backward_with_grad_on_the_device():
    x = tg.tensor([[1.0, 2.0]], requires_grad=True, device=DEVICE)
    (x * 2).backward(torch.ones(1, 2, device=DEVICE))
    assert x.grad.device.type == "cuda" and x.grad.tolist() == [[2.0, 2.0]]


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_training_steps_stay_on_the_device_and_match_cpu(optimizer):
    def train(device):
        g = torch.Generator().manual_seed(0)
        inputs, targets = tg.data.generate_disc_set(64, g)
        model = nn.Sequential(nn.Linear(2, 8, generator=g), nn.ReLU(), nn.Linear(8, 1, generator=g))
        model.to(device)
        opt = getattr(tg.optim, optimizer)(model.parameters(), lr=0.05)
        x, t = tg.tensor(inputs.data, device=device), tg.tensor(targets.data, device=device)
        for _ in range(5):
            opt.zero_grad()
            loss = nn.MSELoss()(model(x), t)
            loss.backward()
            for name, p in model.named_parameters():
                assert p.grad.device.type == torch.device(device).type, name
                assert p.grad.grad_fn is None and not p.data.requires_grad
            opt.step()
        return [p.data.cpu() for p in model.parameters()], loss.item()

    cpu_params, cpu_loss = train("cpu")
    gpu_params, gpu_loss = train(DEVICE)
    assert gpu_loss == pytest.approx(cpu_loss, rel=1e-4)
    for a, b in zip(cpu_params, gpu_params):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_user_function_on_the_device():
    class Cube(tg.Function):
        """y = x^3      dL/dx = dL/dy * 3x^2"""

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 3 * x * x

    x = tg.tensor([1.0, -2.0], requires_grad=True, device=DEVICE)
    Cube.apply(x).sum().backward()
    assert x.grad.device.type == "cuda" and x.grad.tolist() == [3.0, 12.0]
    assert tg.gradcheck(Cube.apply, x)
