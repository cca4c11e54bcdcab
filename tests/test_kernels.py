"""tapegrad/_kernels.py: every fast kernel agrees with its public fallback.

The derivatives and SGD call aten's fused kernels and torch's private fused
SGD; each has a fallback in public torch, used if a torch upgrade drops it.
These tests keep the two interchangeable, and keep the fused SGD bumping
version counters (the stale-tape check depends on it). The same holds for the
layout guard SGD checks its remembered fused call with.
"""

from __future__ import annotations

import pytest
import torch

from tapegrad import _kernels


def randn(*shape, generator):
    return torch.randn(*shape, generator=generator, dtype=torch.float64)


@pytest.fixture
def g():
    return torch.Generator().manual_seed(0)


def test_tanh_and_sigmoid_backward_match_their_formulas(g):
    grad, y = randn(5, 3, generator=g), randn(5, 3, generator=g).tanh()
    torch.testing.assert_close(_kernels.tanh_backward(grad, y), _kernels._tanh_backward(grad, y))
    s = randn(5, 3, generator=g).sigmoid()
    torch.testing.assert_close(
        _kernels.sigmoid_backward(grad, s), _kernels._sigmoid_backward(grad, s)
    )


def test_threshold_backward_matches_its_formula(g):
    grad, y = randn(4, 6, generator=g), randn(4, 6, generator=g).relu()
    expected = _kernels._threshold_backward(grad, y, 0)
    torch.testing.assert_close(_kernels.threshold_backward(grad, y, 0), expected)
    assert (expected[y <= 0] == 0).all() and torch.equal(expected[y > 0], grad[y > 0])


@pytest.mark.parametrize("reduction", [1, 2])
def test_mse_loss_backward_matches_its_formula(g, reduction):
    p, t = randn(7, 1, generator=g), randn(7, 1, generator=g)
    seed = torch.tensor(0.5, dtype=torch.float64)
    torch.testing.assert_close(
        _kernels.mse_loss_backward(seed, p, t, reduction),
        _kernels._mse_loss_backward(seed, p, t, reduction),
    )


@pytest.mark.parametrize(
    "settings",
    [
        dict(momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False),
        dict(momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False),
        dict(momentum=0.9, dampening=0.1, weight_decay=0.01, nesterov=False),
        dict(momentum=0.9, dampening=0.0, weight_decay=0.01, nesterov=True),
    ],
)
def test_fused_sgd_matches_the_public_update_over_several_steps(g, settings):
    shapes = [(3, 2), (3,), (1, 3)]
    start = [randn(*s, generator=g) for s in shapes]
    grads = [[randn(*s, generator=g) for s in shapes] for _ in range(3)]
    results = []
    for update in (_kernels._fused_sgd, _kernels._public_sgd):
        params = [p.clone() for p in start]
        buffers = [torch.empty_like(p) for p in params]
        for step, step_grads in enumerate(grads):
            update(params, step_grads, buffers, lr=0.1, is_first_step=step == 0, **settings)
        results.append(params)
    for fused, public in zip(*results):
        torch.testing.assert_close(fused, public)
    assert not torch.equal(results[0][0], start[0])


@pytest.mark.parametrize("update", [_kernels._fused_sgd, _kernels._public_sgd])
def test_every_sgd_update_bumps_the_parameters_version_counters(g, update):
    params = [randn(3, generator=g), randn(2, 2, generator=g)]
    before = [p._version for p in params]
    update(
        params,
        [torch.ones_like(p) for p in params],
        [torch.empty_like(p) for p in params],
        lr=0.1,
        momentum=0.9,
        dampening=0.0,
        weight_decay=0.0,
        nesterov=False,
        is_first_step=True,
    )
    assert all(p._version > v for p, v in zip(params, before))


@pytest.mark.parametrize("bump", [_kernels.bump_versions, _kernels._public_bump_versions])
def test_bump_versions_changes_versions_not_values(g, bump):
    params = [randn(3, generator=g), randn(2, 2, generator=g)]
    values = [p.clone() for p in params]
    before = [p._version for p in params]
    bump(params)
    assert all(p._version > v for p, v in zip(params, before))
    assert all(torch.equal(p, v) for p, v in zip(params, values))


GUARDS = [_kernels.layout_guard, _kernels._PublicLayoutGuard]


def _guarded():
    """Tensors of the kinds SGD's plan guards: 2-d, transposed, 0-d, empty, float64."""
    return [
        torch.zeros(3, 2),
        torch.zeros(2, 3).t(),
        torch.tensor(1.0),
        torch.zeros(0, 4),
        torch.zeros(5, dtype=torch.float64),
    ]


@pytest.mark.parametrize("make", GUARDS)
def test_a_layout_guard_passes_the_same_tensors_and_others_laid_out_alike(make):
    tensors = _guarded()
    guard = make(tensors)
    assert guard.check(*tensors)
    assert guard.check(*_guarded())  # other tensors, the same type, dtype, shape and strides
    tensors[0].add_(1)  # values do not matter
    assert guard.check(*tensors)


CHANGES = {
    "resized": lambda t: t.resize_(4, 2),
    "resized smaller": lambda t: t.resize_(2, 2),
    "transposed in place": lambda t: t.t_(),
    "as_strided_": lambda t: t.as_strided_((3, 2), (1, 3)),
    "another dtype by torch's .data setter": lambda t: setattr(t, "data", t.double()),
    "another shape by torch's .data setter": lambda t: setattr(t, "data", torch.zeros(2, 3)),
    "column-major by torch's .data setter": lambda t: setattr(t, "data", t.t().contiguous().t()),
}


@pytest.mark.parametrize("make", GUARDS)
@pytest.mark.parametrize("change", CHANGES)
def test_a_layout_guard_fails_a_tensor_changed_in_place(make, change):
    tensors = _guarded()
    guard = make(tensors)
    CHANGES[change](tensors[0])
    assert not guard.check(*tensors)


@pytest.mark.parametrize("make", GUARDS)
@pytest.mark.parametrize(
    "other",
    [
        None,
        1.0,
        torch.zeros(3),
        torch.zeros(3, 2, 1),
        torch.zeros(3, 2, dtype=torch.float64),
        torch.zeros(3, 4)[:, ::2],
        torch.nn.Parameter(torch.zeros(3, 2)),
    ],
    ids=["None", "number", "1-d", "3-d", "float64", "strided", "subclass"],
)
def test_a_layout_guard_fails_anything_else_in_a_tensors_place(make, other):
    tensors = _guarded()
    guard = make(tensors)
    tensors[0] = other
    assert not guard.check(*tensors)


@pytest.mark.parametrize("make", GUARDS)
def test_a_layout_guard_refuses_another_count_of_tensors(make):
    tensors = _guarded()
    guard = make(tensors)
    with pytest.raises(TypeError):
        guard.check(*tensors[:-1])
    with pytest.raises(TypeError):
        guard.check(*tensors, tensors[0])


def test_the_fast_kernels_are_in_use_on_this_torch():
    # If one of these fails after a torch upgrade, tapegrad still works (on the fallback), only
    # slower: update _kernels.py to the new name.
    assert _kernels.tanh_backward is not _kernels._tanh_backward
    assert _kernels.threshold_backward is not _kernels._threshold_backward
    assert _kernels.mse_loss_backward is not _kernels._mse_loss_backward
    assert _kernels.sgd_step is _kernels._fused_sgd
    assert _kernels.bump_versions is not _kernels._public_bump_versions
    assert _kernels.layout_guard is _kernels._tensor_guards
