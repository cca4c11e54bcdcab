"""Where torch's fused SGD kernel is exact, measured: `_kernels.fused_sgd_takes` and its reasons.

`fused_sgd_takes(param, grad, buffer)` says whether `_fused_sgd` may update
a parameter. Every case it accepts is checked against the public per-tensor
update (several steps, momentum's first step included); every reason it
refuses is shown by running the raw kernel where it goes wrong. Those
"canary" tests fail if a torch upgrade fixes the kernel: then the rule may
be widened.
"""

from __future__ import annotations

import pytest
import torch

from tapegrad import _kernels

needs_fused = pytest.mark.skipif(
    not hasattr(torch, "_fused_sgd_"), reason="this torch has no _fused_sgd_"
)
SETTINGS = [
    dict(momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False),
    dict(momentum=0.9, dampening=0.1, weight_decay=0.01, nesterov=False, maximize=False),
    dict(momentum=0.9, dampening=0.0, weight_decay=0.01, nesterov=True, maximize=True),
    dict(momentum=1.5, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False),
]


def layouts(g, dtype=torch.float64):
    """(label, param, grad, buffer) that fused_sgd_takes accepts."""

    def rand(*shape):
        return torch.randn(*shape, generator=g, dtype=dtype)

    return [
        ("contiguous", rand(3, 4), rand(3, 4), rand(3, 4)),
        ("transposed alike", rand(4, 3).t(), rand(4, 3).t(), rand(4, 3).t()),
        (
            "permuted alike",
            rand(2, 3, 4).permute(2, 0, 1),
            rand(2, 3, 4).permute(2, 0, 1),
            rand(2, 3, 4).permute(2, 0, 1),
        ),
        ("a slice with an offset", rand(5, 4)[2:], rand(3, 4), rand(3, 4)),
        ("0-d", rand(()), rand(()), rand(())),
        ("empty", rand(0, 3), rand(0, 3), rand(0, 3)),
        (
            "a size-1 dim with an odd stride",
            rand(3, 4).as_strided((3, 1, 4), (4, 99, 1)),
            rand(3, 1, 4),
            rand(3, 1, 4),
        ),
    ]


def refused(g):
    """(label, param, grad, buffer) that fused_sgd_takes refuses."""

    def rand(*shape, dtype=torch.float64):
        return torch.randn(*shape, generator=g, dtype=dtype)

    return [
        ("strided view", rand(3, 4, 2)[..., 0], rand(3, 4), rand(3, 4)),
        ("transposed param, contiguous grad", rand(4, 3).t(), rand(3, 4), None),
        ("contiguous param, transposed grad", rand(3, 4), rand(4, 3).t(), None),
        ("buffer laid out unlike the param", rand(4, 3).t(), rand(4, 3).t(), rand(3, 4)),
        ("complex", rand(3, dtype=torch.complex128), rand(3, dtype=torch.complex128), None),
        ("float16", rand(40).half(), rand(40).half(), None),
        ("bfloat16", rand(40).bfloat16(), rand(40).bfloat16(), None),
        ("grad of another dtype", rand(3), rand(3, dtype=torch.float32), None),
        ("meta device", torch.empty(3, device="meta"), torch.empty(3, device="meta"), None),
    ]


@needs_fused
@pytest.mark.parametrize(
    "settings", SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items())
)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_fused_matches_public_wherever_fused_sgd_takes_the_tensors(settings, dtype):
    g = torch.Generator().manual_seed(0)
    for label, param, grad, buf in layouts(g, dtype):
        assert _kernels.fused_sgd_takes(param, grad, buf), label
        results = []
        for update in (_kernels._fused_sgd, _kernels._public_sgd):
            p, b = param.clone(memory_format=torch.preserve_format), buf.clone()
            storage = p
            if label == "a slice with an offset":  # keep the rows around the slice
                storage = param._base.clone()
                p = storage[2:]
            for step in range(4):
                update([p], [grad * (step + 1)], [b], lr=0.1, is_first_step=step == 0, **settings)
            results.append(storage)
        tol = dict(rtol=1e-12, atol=1e-14) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(results[0], results[1], **tol, msg=lambda m: f"{label}: {m}")


def test_fused_sgd_takes_refuses_what_the_kernel_gets_wrong():
    g = torch.Generator().manual_seed(0)
    for label, param, grad, buf in refused(g):
        assert not _kernels.fused_sgd_takes(param, grad, buf), label


def run_kernel(param, grad, lr=0.5):
    torch._fused_sgd_(
        [param],
        [grad],
        [],
        weight_decay=0.0,
        momentum=0.0,
        lr=lr,
        dampening=0.0,
        nesterov=False,
        maximize=False,
        is_first_step=False,
    )


@needs_fused
def test_canary_the_kernel_writes_outside_a_strided_view():
    store = torch.arange(12.0).reshape(2, 3, 2)
    run_kernel(store[..., 0], torch.ones(2, 3))
    assert not torch.equal(store[..., 1], torch.arange(12.0).reshape(2, 3, 2)[..., 1])


@needs_fused
def test_canary_the_kernel_reads_a_gradient_laid_out_unlike_its_parameter_in_the_wrong_order():
    param = torch.zeros(3, 2)
    grad = torch.arange(6.0).reshape(2, 3).t()  # values by position, stored transposed
    run_kernel(param, grad, lr=-1.0)  # param = grad, were it read correctly
    assert not torch.equal(param, grad)


@needs_fused
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_canary_the_cpu_kernel_leaves_half_precision_tensors_mostly_unwritten(dtype):
    param = torch.ones(64, dtype=dtype)
    run_kernel(param, torch.ones(64, dtype=dtype))
    assert (param == 1).sum() >= 48  # torch 2.13: all 64 left as they were


@needs_fused
def test_canary_the_kernel_has_no_complex_version():
    with pytest.raises(NotImplementedError):
        run_kernel(torch.ones(3, dtype=torch.complex128), torch.ones(3, dtype=torch.complex128))


def test_is_dense():
    base = torch.zeros(2, 3, 4)
    assert _kernels.is_dense(base) and _kernels.is_dense(base.permute(2, 0, 1))
    assert _kernels.is_dense(base[1]) and _kernels.is_dense(base[:1])
    assert not _kernels.is_dense(base[..., 0]) and not _kernels.is_dense(base[:, 1:])
    assert not _kernels.is_dense(base[:, :, :1])  # gaps of 3 between elements
    assert not _kernels.is_dense(torch.zeros(3).expand(2, 3))  # overlapping
    assert _kernels.is_dense(torch.zeros(0, 3)[:, ::2]) and _kernels.is_dense(torch.zeros(()))


@needs_fused
def test_the_fused_update_bumps_the_version_of_a_transposed_parameter():
    param = torch.zeros(4, 3).t()
    before = param._version
    _kernels._fused_sgd(
        [param],
        [torch.ones(4, 3).t()],
        [],
        lr=0.1,
        momentum=0.0,
        dampening=0.0,
        weight_decay=0.0,
        nesterov=False,
        is_first_step=False,
    )
    assert param._version > before


@pytest.mark.cuda
@pytest.mark.parametrize("settings", SETTINGS[1:3], ids=["momentum", "nesterov"])
def test_fused_matches_public_on_the_gpu(settings):
    g = torch.Generator().manual_seed(0)
    for label, param, grad, buf in layouts(g):
        param, grad, buf = param.cuda(), grad.cuda(), buf.cuda()
        assert _kernels.fused_sgd_takes(param, grad, buf), label
        results = []
        for update in (_kernels._fused_sgd, _kernels._public_sgd):
            p, b = param.clone(memory_format=torch.preserve_format), buf.clone()
            for step in range(4):
                update([p], [grad * (step + 1)], [b], lr=0.1, is_first_step=step == 0, **settings)
            results.append(p)
        torch.testing.assert_close(
            results[0], results[1], rtol=1e-12, atol=1e-14, msg=lambda m: f"{label}: {m}"
        )
