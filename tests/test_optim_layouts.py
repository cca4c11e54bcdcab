"""SGD, Adam and AdamW against torch.optim on every kind of parameter and gradient layout.

Each test gives the same parameters (real, complex, strided views such as
``store[..., 0]``, transposed, 0-d and empty) the same gradients (contiguous,
transposed or strided) for 25 steps, in tapegrad and in torch.optim, and
compares the parameters after every step and, at the end, the whole memory
the parameters are views of (so a kernel writing outside a view is caught).

SGD's fast path (torch's fused kernel) rounds a little differently from
torch.optim's per-tensor loop, so the comparison is assert_close with tight
tolerances; on the per-tensor path it is bit for bit.
"""

from __future__ import annotations

import pytest
import torch

import tapegrad as tg
from tapegrad import _kernels, optim

STEPS = 25
TOL = {
    torch.float64: dict(rtol=1e-12, atol=1e-14),
    torch.complex128: dict(rtol=1e-12, atol=1e-14),
    torch.float32: dict(rtol=1e-5, atol=1e-6),
}

PARAM_KINDS = ["contiguous", "strided", "transposed", "0-d", "empty"]
GRAD_KINDS = ["contiguous", "transposed", "strided"]


def make_storage(kind, dtype, g):
    """(storage, view): the view is the parameter, the storage all the memory it lives in."""
    if kind == "contiguous":
        store = torch.randn(3, 4, generator=g, dtype=dtype)
        return store, store
    if kind == "strided":  # every other element: store[..., 1] is not ours
        store = torch.randn(3, 4, 2, generator=g, dtype=dtype)
        return store, store[..., 0]
    if kind == "transposed":
        store = torch.randn(4, 3, generator=g, dtype=dtype)
        return store, store.t()
    if kind == "0-d":
        store = torch.randn((), generator=g, dtype=dtype)
        return store, store
    store = torch.randn(0, 3, generator=g, dtype=dtype)
    return store, store


def make_grad(kind, shape, dtype, g):
    """A gradient of `shape` laid out as `kind`."""
    if len(shape) < 2 or kind == "contiguous":
        return torch.randn(shape, generator=g, dtype=dtype)
    if kind == "transposed":
        return torch.randn(shape[::-1], generator=g, dtype=dtype).t()
    return torch.randn(*shape, 3, generator=g, dtype=dtype)[..., 1]


def twins(kinds, dtype, seed=0):
    """The same parameters for both: [(our Tensor, our storage, torch leaf, torch storage)]."""
    g = torch.Generator().manual_seed(seed)
    result = []
    for kind in kinds:
        store, view = make_storage(kind, dtype, g)
        their_store = store.clone()
        their_view = their_store.as_strided(
            view.shape, view.stride(), view.storage_offset()
        ).requires_grad_(True)
        assert their_view.stride() == view.stride() and torch.equal(their_view.detach(), view)
        result.append((tg.Tensor(view, requires_grad=True), store, their_view, their_store))
    return result


def follow_torch(make_ours, make_theirs, kinds, dtype, grad_kind, steps=STEPS, seed=0):
    pairs = twins(kinds, dtype, seed)
    ours = make_ours([p for p, *_ in pairs])
    theirs = make_theirs([q for _, _, q, _ in pairs])
    g, g_theirs = (torch.Generator().manual_seed(seed + 1) for _ in range(2))
    starts = [store.clone() for _, store, _, _ in pairs]
    for step in range(steps):
        for p, _, q, _ in pairs:  # the same values, laid out the same way, for each
            p.grad = make_grad(grad_kind, tuple(p.shape), dtype, g)
            q.grad = make_grad(grad_kind, tuple(p.shape), dtype, g_theirs)
        ours.step()
        theirs.step()
        for i, (p, _, q, _) in enumerate(pairs):
            if not torch.allclose(p.data, q.detach(), **TOL[dtype]):  # fast; then the message
                torch.testing.assert_close(
                    p.data,
                    q.detach(),
                    **TOL[dtype],
                    msg=lambda m: f"step {step + 1}, {kinds[i]}: {m}",
                )
    for kind, (_, store, _, their_store), start in zip(kinds, pairs, starts):
        torch.testing.assert_close(
            store,
            their_store.detach(),
            **TOL[dtype],
            msg=lambda m: f"the memory around the {kind} parameter: {m}",
        )
        if store.numel():
            assert not torch.equal(store, start), f"the {kind} parameter did not move"


SGD_CONFIGS = [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01),
    dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.02),
    dict(lr=0.02, momentum=1.5, maximize=True),
    dict(lr=0.1, weight_decay=0.1, maximize=True),
]
ADAM_CONFIGS = [
    (optim.Adam, torch.optim.Adam, dict()),
    (optim.Adam, torch.optim.Adam, dict(lr=0.01, amsgrad=True, weight_decay=0.05)),
    (optim.Adam, torch.optim.Adam, dict(lr=0.02, betas=(0.8, 0.9), eps=1e-6, maximize=True)),
    (optim.Adam, torch.optim.Adam, dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    (optim.AdamW, torch.optim.AdamW, dict(lr=0.01)),
    (optim.AdamW, torch.optim.AdamW, dict(lr=0.01, weight_decay=0.1, amsgrad=True, maximize=True)),
]


def name(config):
    return ",".join(f"{k}={v}" for k, v in config.items()) or "defaults"


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128, torch.float32], ids=str)
@pytest.mark.parametrize("grad_kind", GRAD_KINDS)
@pytest.mark.parametrize("config", SGD_CONFIGS, ids=name)
def test_sgd_follows_torch_on_every_layout(config, grad_kind, dtype):
    follow_torch(
        lambda ps: optim.SGD(ps, **config),
        lambda ps: torch.optim.SGD(ps, **config),
        PARAM_KINDS,
        dtype,
        grad_kind,
    )


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128], ids=str)
@pytest.mark.parametrize("grad_kind", GRAD_KINDS)
@pytest.mark.parametrize(
    "ours, theirs, config",
    ADAM_CONFIGS,
    ids=[f"{c[0].__name__}:{name(c[2])}" for c in ADAM_CONFIGS],
)
def test_adam_follows_torch_on_every_layout(ours, theirs, config, grad_kind, dtype):
    follow_torch(
        lambda ps: ours(ps, **config),
        lambda ps: theirs(ps, **config),
        PARAM_KINDS,
        dtype,
        grad_kind,
    )


def bitwise(make_ours, make_theirs, kinds, dtype, grad_kind, steps=STEPS):
    """Both run the same per-tensor ops in the same order: equal to the last bit."""
    pairs = twins(kinds, dtype)
    ours, theirs = make_ours([p for p, *_ in pairs]), make_theirs([q for _, _, q, _ in pairs])
    g, g_theirs = (torch.Generator().manual_seed(1) for _ in range(2))
    for _ in range(steps):
        for p, _, q, _ in pairs:
            p.grad = make_grad(grad_kind, tuple(p.shape), dtype, g)
            q.grad = make_grad(grad_kind, tuple(p.shape), dtype, g_theirs)
        ours.step()
        theirs.step()
    for kind, (_, store, _, their_store) in zip(kinds, pairs):
        assert torch.equal(store, their_store.detach()), kind


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128, torch.float32], ids=str)
@pytest.mark.parametrize(
    "ours, theirs, config",
    ADAM_CONFIGS,
    ids=[f"{c[0].__name__}:{name(c[2])}" for c in ADAM_CONFIGS],
)
def test_adam_is_torchs_per_tensor_rule_to_the_last_bit(ours, theirs, config, dtype):
    bitwise(
        lambda ps: ours(ps, **config),
        lambda ps: theirs(ps, **config, foreach=False),
        PARAM_KINDS,
        dtype,
        "transposed",
    )


@pytest.mark.parametrize("config", SGD_CONFIGS, ids=name)
def test_sgd_where_the_fused_kernel_is_not_exact_is_torchs_rule_to_the_last_bit(config):
    # complex, strided and a gradient laid out unlike its parameter: the per-tensor path
    bitwise(
        lambda ps: optim.SGD(ps, **config),
        lambda ps: torch.optim.SGD(ps, **config, foreach=False),
        ["strided", "transposed"],
        torch.complex128,
        "contiguous",
    )


def test_the_reproduction_from_the_issue():
    """A strided view parameter: the step changes the view and nothing around it."""
    store = torch.arange(12.0).reshape(2, 3, 2)
    w = tg.Tensor(store[..., 0], requires_grad=True)
    w.grad = torch.ones(2, 3)
    tg.optim.SGD([w], lr=0.5).step()
    assert torch.equal(store[..., 1], torch.arange(12.0).reshape(2, 3, 2)[..., 1])
    assert torch.equal(store[..., 0], torch.arange(12.0).reshape(2, 3, 2)[..., 0] - 0.5)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_one_step_splits_the_parameters_between_the_fused_kernel_and_the_per_tensor_path(
    monkeypatch, momentum
):
    if _kernels.sgd_step is _kernels._public_sgd:
        pytest.skip("this torch has no fused SGD kernel")
    calls = {"fused": [], "public": []}

    def spy(kind, kernel):
        def run(params, *args, **kwargs):
            calls[kind].append([p.data_ptr() for p in params])
            return kernel(params, *args, **kwargs)

        return run

    monkeypatch.setattr(_kernels, "sgd_step", spy("fused", _kernels.sgd_step))
    monkeypatch.setattr(_kernels, "_public_sgd", spy("public", _kernels._public_sgd))
    g = torch.Generator().manual_seed(0)
    plain = tg.Tensor(torch.randn(3, 4, generator=g), requires_grad=True)
    other_dtype = tg.Tensor(torch.randn(5, dtype=torch.float64, generator=g), requires_grad=True)
    strided = tg.Tensor(torch.randn(3, 4, 2, generator=g)[..., 0], requires_grad=True)
    complex_ = tg.Tensor(torch.randn(3, dtype=torch.complex64, generator=g), requires_grad=True)
    half = tg.Tensor(torch.randn(40, generator=g).half(), requires_grad=True)
    transposed = tg.Tensor(torch.randn(4, 3, generator=g).t(), requires_grad=True)
    params = [plain, other_dtype, strided, complex_, half, transposed]
    for p in params:
        p.grad = torch.ones_like(p.data)  # ones_like keeps a transposed layout
    opt = optim.SGD(params, lr=0.1, momentum=momentum)
    for _ in range(2):
        calls["fused"].clear()
        calls["public"].clear()
        opt.step()
        fused = sorted(ptr for call in calls["fused"] for ptr in call)
        public = sorted(ptr for call in calls["public"] for ptr in call)
        assert fused == sorted(p.data.data_ptr() for p in (plain, other_dtype, transposed))
        assert public == sorted(p.data.data_ptr() for p in (strided, complex_, half))
        # one call per run of consecutive parameters that take the same kernel and dtype,
        # in the group's order (torch's): plain, other_dtype, then transposed after the rest
        assert calls["fused"] == [[p.data.data_ptr()] for p in (plain, other_dtype, transposed)]
        assert len(calls["public"]) == 1
    transposed.grad = torch.ones(3, 4)  # now laid out unlike its parameter
    calls["public"].clear()
    opt.step()
    assert transposed.data.data_ptr() in calls["public"][0]


def test_sgd_with_momentum_1_follows_torch_like_any_momentum():
    follow_torch(
        lambda ps: optim.SGD(ps, lr=0.01, momentum=1.0),
        lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=1.0),
        ["contiguous", "transposed"],
        torch.float64,
        "contiguous",
    )


@pytest.mark.parametrize(
    "make",
    [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), lambda ps: optim.Adam(ps, lr=0.1)],
    ids=["SGD", "Adam"],
)
def test_a_gradient_from_create_graph_is_read_through_its_data(make):
    """After backward(create_graph=True) a .grad may be a tapegrad Tensor: its values are used."""
    results = []
    for wrap in (tg.Tensor, lambda t: t):
        p = tg.Tensor(torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64), requires_grad=True)
        opt = make([p])
        for step in range(3):
            p._grad = wrap(torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64) * (step + 1))
            opt.step()
        results.append(p.data)
    assert torch.equal(*results)
    assert not torch.equal(results[0], torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64))


def test_a_parameter_moved_to_another_dtype_mid_training_follows_torch():
    """model.double() swaps p.data (the buffers stay float32, in torch too): SGD notices."""
    torch.manual_seed(0)
    theirs = torch.nn.Linear(3, 2)
    ours = tg.nn.Linear(3, 2)
    ours.load_state_dict(theirs.state_dict())
    opt = optim.SGD(ours.parameters(), lr=0.1, momentum=0.9)
    ref = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)
    g = torch.Generator().manual_seed(1)
    for step in range(8):
        if step == 4:
            ours.double()
            theirs.double()
        x = torch.randn(5, 3, generator=g, dtype=ours.weight.dtype)
        opt.zero_grad()
        tg.nn.MSELoss()(ours(x), x[:, :2]).backward()
        opt.step()
        ref.zero_grad()
        torch.nn.MSELoss()(theirs(x), x[:, :2]).backward()
        ref.step()
        torch.testing.assert_close(ours.weight.data, theirs.weight.detach(), rtol=1e-6, atol=1e-7)
    assert ours.weight.dtype == torch.float64
    assert opt.state[ours.weight]["momentum_buffer"].dtype == torch.float32


def test_a_parameter_whose_data_becomes_a_strided_view_is_not_given_to_the_fused_kernel():
    w = tg.Tensor(torch.zeros(2, 3), requires_grad=True)
    opt = optim.SGD([w], lr=0.5, momentum=0.9)
    w.grad = torch.ones(2, 3)
    opt.step()  # contiguous: the fused kernel
    store = torch.zeros(2, 3, 2)
    w.data = store[..., 0]  # now a view with gaps
    opt.state[w]["momentum_buffer"] = torch.zeros(2, 3)
    opt.step()
    assert torch.equal(store[..., 1], torch.zeros(2, 3))
    assert torch.equal(store[..., 0], torch.full((2, 3), -0.5))


def test_adam_treats_a_complex_parameter_as_its_real_and_imaginary_parts_like_torch():
    """v holds the square of each part (as torch computes it), not |g|^2."""
    g = torch.tensor([3 + 4j, -1 + 2j], dtype=torch.complex128)
    p = tg.Tensor(torch.zeros(2, dtype=torch.complex128), requires_grad=True)
    q = torch.zeros(2, dtype=torch.complex128, requires_grad=True)
    opt, ref = optim.Adam([p], betas=(0.9, 0.99)), torch.optim.Adam([q], betas=(0.9, 0.99))
    p.grad, q.grad = g, g.clone()
    opt.step()
    ref.step()
    v = opt.state[p]["exp_avg_sq"]
    torch.testing.assert_close(torch.view_as_real(v), (1 - 0.99) * torch.view_as_real(g) ** 2)
    assert torch.equal(v, ref.state[q]["exp_avg_sq"])
    assert torch.equal(p.data, q.detach())


@pytest.mark.parametrize("config", SGD_CONFIGS[:4], ids=name)
def test_sgd_repeats_its_plan_only_while_every_layout_holds(config):
    """SGD remembers a group's fused call and repeats it while nothing changed: a gradient
    laid out otherwise, one missing, a buffer or a parameter's data replaced mid-run must
    each take the exact path at that step, as torch.optim does."""
    dtype = torch.float64
    pairs = twins(["contiguous", "contiguous", "0-d"], dtype)
    ours = optim.SGD([p for p, *_ in pairs], **config)
    theirs = torch.optim.SGD([q for _, _, q, _ in pairs], **config)
    schedule = ["contiguous"] * 3 + ["transposed", "contiguous", "strided"] + ["contiguous"] * 2
    g, g_theirs = (torch.Generator().manual_seed(1) for _ in range(2))
    for step, kind in enumerate(schedule + ["missing", "buffer", "data"] + ["contiguous"] * 2):
        for i, (p, _, q, _) in enumerate(pairs):
            grad_kind = kind if kind in GRAD_KINDS else "contiguous"
            p.grad = make_grad(grad_kind, tuple(p.shape), dtype, g)
            q.grad = make_grad(grad_kind, tuple(p.shape), dtype, g_theirs)
            if kind == "missing" and i == 1:
                p.grad, q.grad = None, None
        if kind == "buffer" and config.get("momentum"):
            p, _, q, _ = pairs[0]
            for opt, t in ((ours, p), (theirs, q)):
                opt.state[t]["momentum_buffer"] = opt.state[t]["momentum_buffer"] * 0.5
        if kind == "data":  # the same values in new memory, in both
            p, _, q, _ = pairs[1]
            p.data = p.data.clone()
            with torch.no_grad():
                q.data = q.data.clone()
        ours.step()
        theirs.step()
        for p, _, q, _ in pairs:
            torch.testing.assert_close(
                p.data, q.detach(), **TOL[dtype], msg=lambda m: f"step {step + 1} ({kind}): {m}"
            )


@pytest.mark.parametrize("switch", [(0.0, 0.9), (0.9, 0.0)], ids=["momentum on", "momentum off"])
def test_sgd_follows_torch_when_momentum_is_switched_mid_run(switch):
    """The remembered plan holds only for the momentum it was made with."""
    g = torch.Generator().manual_seed(0)
    start = torch.randn(4, 3, generator=g)
    grads = [torch.randn(4, 3, generator=g) for _ in range(6)]
    p = tg.Tensor(start.clone(), requires_grad=True)
    q = start.clone().requires_grad_(True)
    ours = optim.SGD([p], lr=0.1, momentum=switch[0])
    theirs = torch.optim.SGD([q], lr=0.1, momentum=switch[0])
    for step, grad in enumerate(grads):
        if step == 3:
            ours.param_groups[0]["momentum"] = theirs.param_groups[0]["momentum"] = switch[1]
        p.grad, q.grad = grad.clone(), grad.clone()
        ours.step()
        theirs.step()
        torch.testing.assert_close(p.data, q.detach(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "change", ["data swapped and restored", "grad.data retyped", "data.data retyped"]
)
def test_sgd_notices_a_gradient_dtype_changed_behind_the_setters(change):
    """A gradient's dtype can change without the .grad setter seeing it: a backward at another
    precision on swapped .data, then the very same master tensors restored; or torch's own
    .data setter on a gradient or a parameter's data. The remembered fused call must not be
    repeated with mixed dtypes: the step takes torch's per-tensor rule (buffers keep their
    dtype; p -= lr * (momentum * buf + g))."""
    ours = [tg.nn.Parameter(torch.tensor([1.0, 2.0, 3.0])), tg.nn.Parameter(torch.tensor([4.0]))]
    opt = optim.SGD(ours, lr=0.1, momentum=0.9)

    def backward():
        opt.zero_grad()
        sum((p * p).sum() for p in ours).backward()

    for _ in range(2):  # the fused plan is remembered
        backward()
        opt.step()
    if change == "data swapped and restored":
        masters = [p.data for p in ours]
        for p in ours:
            p.data = p.data.double()
        backward()
        for p, master in zip(ours, masters):
            p.data = master
    else:
        backward()
        if change == "data.data retyped":
            ours[0].data.data = ours[0].data.data.double()
        ours[0].grad.data = ours[0].grad.data.double()
    assert ours[0].grad.dtype == torch.float64
    expected = []
    for p in ours:
        buf = opt.state[p]["momentum_buffer"].double()
        expected.append((p.data.double() - 0.1 * (0.9 * buf + p.grad.double())).to(p.dtype))
    opt.step()
    for p, e in zip(ours, expected):
        torch.testing.assert_close(p.data, e)


@pytest.mark.parametrize("relayout", ["t_", "as_strided_", "set_"])
def test_sgd_notices_a_parameter_laid_out_anew_in_place(relayout):
    """p.data.t_() (tapegrad's .data is the parameter's own tensor) keeps the tensor object
    and changes its layout: the remembered fused call must not walk it as before. Compared
    with torch.optim.SGD on a parameter given the same values in the same layout."""
    torch.manual_seed(0)
    start, grad = torch.randn(3, 3), torch.arange(9.0).reshape(3, 3)
    ours = tg.nn.Parameter(start.clone())
    theirs = torch.nn.Parameter(start.clone())
    opt_ours = optim.SGD([ours], lr=0.1, momentum=0.9)
    opt_theirs = torch.optim.SGD([theirs], lr=0.1, momentum=0.9)
    for step in range(4):
        ours.grad, theirs.grad = grad.clone(), grad.clone()
        opt_ours.step()
        opt_theirs.step()
        if step == 1:  # after two steps: the fused plan is remembered
            data = ours.data
            if relayout == "t_":
                data.t_()
            elif relayout == "as_strided_":
                data.as_strided_((3, 3), (1, 3))
            else:
                data.set_(data.clone().t())  # the same values, stored transposed
            theirs.data = theirs.data.clone().as_strided((3, 3), ours.data.stride())
            theirs.data.copy_(ours.data)  # the same values, the same layout
        torch.testing.assert_close(ours.data, theirs.data.detach(), rtol=0, atol=0)
    assert ours.data.stride() == (1, 3)


def _stepped_twice(shape=(3, 3)):
    """A parameter, its SGD (momentum) and torch's twin, after two steps: the fused plan is
    remembered."""
    torch.manual_seed(0)
    start = torch.randn(shape)
    ours, theirs = tg.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    opt_ours = optim.SGD([ours], lr=0.1, momentum=0.9)
    opt_theirs = torch.optim.SGD([theirs], lr=0.1, momentum=0.9, foreach=False)
    for _ in range(2):
        grad = torch.randn(shape)
        ours.grad, theirs.grad = grad.clone(), grad.clone()
        opt_ours.step()
        opt_theirs.step()
    return ours, theirs, opt_ours, opt_theirs


@pytest.mark.parametrize("relayout", ["buffer t_", "buffer as_strided_", "gradient t_"])
def test_sgd_notices_a_buffer_or_gradient_laid_out_anew_in_place(relayout):
    """The momentum buffer (optimizer.state) and the gradient are torch tensors a user can
    relay in place too: the remembered fused call must not walk them as before. The same
    edit on torch.optim.SGD's (per-tensor) state and gradient gives the reference."""
    ours, theirs, opt_ours, opt_theirs = _stepped_twice()
    grad = torch.arange(9.0).reshape(3, 3)
    ours.grad, theirs.grad = grad.clone(), grad.clone()
    for opt, p in ((opt_ours, ours), (opt_theirs, theirs)):
        if relayout == "buffer t_":
            opt.state[p]["momentum_buffer"].t_()
        elif relayout == "buffer as_strided_":
            opt.state[p]["momentum_buffer"].as_strided_((3, 3), (1, 3))
        else:
            p.grad.t_()
    for _ in range(3):
        opt_ours.step()
        opt_theirs.step()
        torch.testing.assert_close(ours.data, theirs.detach(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "change, message",
    [
        ("data grows, then backward", r"momentum buffer .* has shape \(3, 3\)"),
        ("data shrinks, then backward", r"momentum buffer .* has shape \(3, 3\)"),
        ("data grows after backward", r"its gradient has shape \(3, 3\)"),
        ("gradient resized", r"its gradient has shape \(9,\)"),
        ("buffer resized", r"momentum buffer .* has shape \(2, 3\)"),
        ("buffer swapped for another shape", r"momentum buffer .* has shape \(3,\)"),
    ],
)
def test_sgd_refuses_a_parameter_gradient_or_buffer_resized_in_place(change, message):
    """A resize in place (tapegrad's p.data is the parameter's own tensor) leaves the
    parameter, its gradient and its momentum buffer of different sizes. torch's fused kernel
    would then read and write past the end of the smaller (measured: a heap corruption that
    aborts Python); the step must refuse, as torch's per-tensor rule does (RuntimeError),
    with a message that names the parameter, and change nothing."""
    ours, _, opt, _ = _stepped_twice()
    buffer = opt.state[ours]["momentum_buffer"]

    def backward():
        opt.zero_grad()
        (ours * ours).sum().backward()

    if change == "data grows, then backward":
        with tg.no_grad():
            ours.data.resize_(4, 3).fill_(1.0)
        backward()
    elif change == "data shrinks, then backward":
        ours.data.resize_(2, 3)
        backward()
    elif change == "data grows after backward":
        backward()
        ours.data.resize_(4, 3)
    elif change == "gradient resized":
        backward()
        ours.grad.resize_(9)
    elif change == "buffer resized":
        backward()
        buffer.resize_(2, 3)
    else:
        backward()
        opt.state[ours]["momentum_buffer"] = torch.zeros(3)
    before = ours.data.clone(), opt.state[ours]["momentum_buffer"].clone()
    with pytest.raises(RuntimeError, match=r"SGD.step: parameter 0 of param group 0 .*" + message):
        opt.step()
    assert torch.equal(ours.data, before[0])
    assert torch.equal(opt.state[ours]["momentum_buffer"], before[1])


def _twins(start, **options):
    """A tapegrad parameter and torch's twin with the same values, each with its SGD."""
    ours, theirs = tg.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    return (
        ours,
        theirs,
        optim.SGD([ours], **options),
        torch.optim.SGD([theirs], foreach=False, **options),
    )


@pytest.mark.parametrize("when", ["first momentum step", "after the plan is remembered"])
def test_sgd_with_a_gradient_that_is_its_momentum_buffer(when):
    """p.grad = optimizer.state[p]["momentum_buffer"]: torch's per-tensor rule scales the
    buffer first, and so the gradient (buf = 2 * momentum * buf); torch's fused kernel
    reads the gradient before it writes the buffer. The step must give torch's answer."""
    ours, theirs, opt_ours, opt_theirs = _twins(torch.arange(20.0), lr=0.1, momentum=0.9)
    for step in range(4):
        aliased = step == 1 if when == "first momentum step" else step == 3
        for p, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            p.grad = opt.state[p]["momentum_buffer"] if aliased else torch.ones(20)
        opt_ours.step()
        opt_theirs.step()
        torch.testing.assert_close(ours.data, theirs.detach(), rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(
            opt_ours.state[ours]["momentum_buffer"], opt_theirs.state[theirs]["momentum_buffer"]
        )


def test_sgd_with_a_momentum_buffer_that_is_its_parameter():
    """optimizer.state[p]["momentum_buffer"] = p.data: the buffer and the parameter are one
    tensor, written twice per element. torch's fused kernel gets the first 16 elements (one
    vector block) wrong; the step must give torch's per-tensor answer."""
    ours, theirs, opt_ours, opt_theirs = _twins(torch.arange(20.0), lr=0.1, momentum=0.9)
    opt_ours.state[ours]["momentum_buffer"] = ours.data
    opt_theirs.state[theirs]["momentum_buffer"] = theirs.data
    for _ in range(3):
        ours.grad, theirs.grad = torch.ones(20), torch.ones(20)
        opt_ours.step()
        opt_theirs.step()
        torch.testing.assert_close(ours.data, theirs.detach(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_updates_overlapping_parameters_in_list_order(momentum):
    """Parameters that are views of one tensor and overlap: row 1 and row 0 (the fused
    kernel's) and every other column (the per-tensor path's). torch updates them in list
    order, and with weight decay each update reads what the one before wrote; so must we
    (the calls run in the group's order, not sorted by kernel)."""
    views = [lambda b: b[1], lambda b: b[:, ::2], lambda b: b[0]]
    store_ours, store_theirs = torch.arange(8.0).view(2, 4), torch.arange(8.0).view(2, 4)
    ours = [tg.nn.Parameter(v(store_ours)) for v in views]
    theirs = [torch.nn.Parameter(v(store_theirs)) for v in views]
    options = dict(lr=0.5, weight_decay=1.0, momentum=momentum)
    opt_ours = optim.SGD(ours, **options)
    opt_theirs = torch.optim.SGD(theirs, foreach=False, **options)
    for step in range(3):
        for i, (p, q) in enumerate(zip(ours, theirs)):
            grad = torch.full(q.shape, float(i + step))
            p.grad, q.grad = grad.clone(), grad.clone()
        opt_ours.step()
        opt_theirs.step()
        torch.testing.assert_close(store_ours, store_theirs, rtol=1e-6, atol=1e-6)


def _step_both_in_inference_mode(ours, theirs, opt_ours, opt_theirs, steps):
    """`steps` steps of both optimizers inside torch.inference_mode(), gradients of ones,
    the parameters compared after each."""
    for _ in range(steps):
        ours.grad, theirs.grad = torch.ones(ours.shape), torch.ones(theirs.shape)
        with torch.inference_mode():
            opt_ours.step()
            opt_theirs.step()
        torch.testing.assert_close(ours.data, theirs.detach())


def test_sgd_steps_inside_inference_mode():
    """Steps under torch.inference_mode() make the momentum buffers inference tensors (no
    version counter, which an earlier plan read); the plan holds, and the steps agree with
    torch's."""
    _step_both_in_inference_mode(*_twins(torch.ones(3), lr=0.1, momentum=0.9), steps=4)


def test_sgd_with_a_parameter_whose_data_is_an_inference_tensor():
    """p.data = a tensor made under torch.inference_mode() (no version counter), no
    momentum: the steps agree with torch's (torch updates an inference tensor outside
    inference mode only inside it, so the steps run there)."""
    with torch.inference_mode():
        start = torch.arange(4.0)
    ours, theirs, opt_ours, opt_theirs = _twins(torch.zeros(4), lr=0.1)
    ours.data, theirs.data = start.clone(), start.clone()
    _step_both_in_inference_mode(ours, theirs, opt_ours, opt_theirs, steps=3)


def test_sgd_names_the_param_group_of_a_resized_parameter():
    """The shape error names the group by its place in param_groups (not found by ==, which
    is elementwise on tensors); the groups before it have stepped, as in torch's loop."""
    first, second = tg.nn.Parameter(torch.ones(3)), tg.nn.Parameter(torch.ones(2, 2))
    opt = optim.SGD([{"params": [first]}, {"params": [second]}], lr=0.1, momentum=0.9)
    for _ in range(2):
        first.grad, second.grad = torch.ones(3), torch.ones(2, 2)
        opt.step()
    second.grad.resize_(4)
    with pytest.raises(RuntimeError, match=r"parameter 0 of param group 1 has shape \(2, 2\)"):
        opt.step()


@pytest.mark.parametrize(
    "change", ["data", "data, after backward", "buffer", "gradient viewing its buffer"]
)
def test_sgd_notices_changes_made_through_torchs_own_data_setter(change):
    """torch's .data setter on the raw torch tensor of p.data (tapegrad's p.data is the
    parameter's own tensor) or of a buffer keeps its version counter; and a gradient set by
    hand to a view of its buffer is a new object. Once the fused plan is remembered, each
    must still give torch.optim.SGD's values, or its RuntimeError (then nothing changes)."""
    ours, theirs, opt_ours, opt_theirs = _stepped_twice()

    def edit(p, opt):
        # (torch's p.data is an alias: its p.data = t is what p.data.data = t does here)
        target = p.data if isinstance(p, tg.Tensor) else p
        if change == "data":
            target.data = p.data.clone().t().contiguous().t()  # the same values, column-major
        elif change == "data, after backward":
            target.data = torch.ones(2, 3)
        elif change == "buffer":
            opt.state[p]["momentum_buffer"].data = torch.zeros(2, 3)
        else:
            p.grad = opt.state[p]["momentum_buffer"][:]

    grad = torch.arange(9.0).reshape(3, 3)
    ours.grad, theirs.grad = grad.clone(), grad.clone()
    edit(ours, opt_ours)
    with torch.no_grad():
        edit(theirs, opt_theirs)
    try:
        opt_theirs.step()
    except RuntimeError:
        before = ours.data.clone()
        with pytest.raises(RuntimeError, match="SGD.step: parameter 0 of param group 0"):
            opt_ours.step()
        assert torch.equal(ours.data, before)
        return
    opt_ours.step()
    torch.testing.assert_close(ours.data, theirs.detach(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("tensor", ["data", "buffer"])
def test_sgd_notices_a_dtype_changed_by_torchs_own_data_setter(tensor):
    """torch's .data setter on the raw tensor of p.data or of a momentum buffer can change
    its dtype (and keeps its version counter). Once the fused call is remembered (the
    gradients come from backward, so none is set by hand), it must not be repeated:
    torch's kernel refuses mixed dtypes. The step is torch.optim.SGD's loop, which mixes
    them (a float64 buffer, or float64 data and gradient, with the float32 rest)."""
    torch.manual_seed(0)
    start, weights = torch.randn(3, 3), torch.randn(3, 3)
    ours, theirs = tg.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    opt_ours = optim.SGD([ours], lr=0.1, momentum=0.9)
    opt_theirs = torch.optim.SGD([theirs], lr=0.1, momentum=0.9, foreach=False)

    def step():
        for p, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            opt.zero_grad()
            (p * weights.to(p.dtype)).sum().backward()
            opt.step()

    for _ in range(3):
        step()
    assert opt_ours._repeat(opt_ours.param_groups[0]) is not None  # the plan is remembered
    with torch.no_grad():
        for p, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            # (torch's p.data is an alias: its p.data = t is what p.data.data = t does here)
            target = (p.data if p is ours else p) if tensor == "data" else opt.state[p]
            if tensor == "buffer":
                target = target["momentum_buffer"]
            target.data = target.data.double()
    for _ in range(2):
        step()
        assert ours.data.dtype == theirs.dtype
        assert opt_ours.state[ours]["momentum_buffer"].dtype == (
            opt_theirs.state[theirs]["momentum_buffer"].dtype
        )
        torch.testing.assert_close(ours.data, theirs.detach(), rtol=1e-6, atol=1e-6)


def test_sgd_plans_afresh_after_its_fused_kernel_refuses():
    """torch's .data setter can change a parameter's dtype behind every check but the
    kernel's own; the kernel then refuses, with the parameters before it updated. The next
    step must not repeat that call (and update them again): it plans afresh and, like torch's
    loop, steps the float64 data with the float32 gradient."""
    params = [tg.nn.Parameter(torch.full((3,), float(i))) for i in range(3)]
    opt = optim.SGD(params, lr=0.1)
    for _ in range(2):
        for p in params:
            p.grad = torch.ones(3)
        opt.step()
    params[1].data.data = params[1].data.double()
    try:
        opt.step()  # the remembered fused call: torch's kernel may refuse the mixed dtypes
    except RuntimeError:
        pass
    before = [p.data.clone() for p in params]
    opt.step()
    for p, b in zip(params, before):
        torch.testing.assert_close(p.data, b - 0.1 * torch.ones(3, dtype=b.dtype))


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_an_sgd_with_a_remembered_plan_copies_and_the_copy_steps_alike(how):
    """The remembered fused call is a cache of the original's tensors (and its layout guard
    cannot be pickled): a copy of the model and optimizer starts without it, and both then
    step to the same values."""
    import copy
    import pickle

    torch.manual_seed(0)
    model = tg.nn.Sequential(tg.nn.Linear(2, 3), tg.nn.Tanh(), tg.nn.Linear(3, 1))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = tg.Tensor(torch.randn(5, 2))

    def step(model, opt):
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()

    for _ in range(3):
        step(model, opt)
    assert opt._repeat(opt.param_groups[0]) is not None
    both = (model, opt)
    model2, opt2 = copy.deepcopy(both) if how == "deepcopy" else pickle.loads(pickle.dumps(both))
    for _ in range(3):
        step(model, opt)
        step(model2, opt2)
    assert opt2._repeat(opt2.param_groups[0]) is not None  # the copy remembers its own plan
    for p, q in zip(model.parameters(), model2.parameters()):
        assert torch.equal(p.data, q.data)


def _twins_training(make_momentum_step=3, **options):
    """A 3-vector parameter trained with gradients from backward, in tapegrad and in torch."""
    torch.manual_seed(0)
    w0, x0 = torch.randn(3), torch.randn(3)
    p, q = tg.Tensor(w0.clone(), requires_grad=True), torch.nn.Parameter(w0.clone())
    opt = optim.SGD([p], lr=0.1, momentum=0.9, **options)
    topt = torch.optim.SGD([q], lr=0.1, momentum=0.9, foreach=False, **options)
    for _ in range(make_momentum_step):
        opt.zero_grad()
        topt.zero_grad()
        (p * p).sum().backward()
        (q * q).sum().backward()
        opt.step()
        topt.step()
    return p, q, opt, topt, x0


def test_sgd_with_a_hook_whose_gradient_shares_the_momentum_buffer_follows_torch():
    """A hook on an intermediate tensor returns a tensor that shares the momentum buffer's
    memory; it reaches the leaf as it is (torch keeps it too). The remembered fused call
    would read the buffer before scaling it; torch's loop scales it first."""
    p, q, opt, topt, x0 = _twins_training()
    assert opt._repeat(opt.param_groups[0]) is not None
    for _ in range(2):
        opt.zero_grad()
        topt.zero_grad()
        y, ty = p + tg.Tensor(x0), q + x0
        y.register_hook(lambda g: opt.state[p]["momentum_buffer"].detach())
        ty.register_hook(lambda g: topt.state[q]["momentum_buffer"].detach())
        (y * y).sum().backward()
        (ty * ty).sum().backward()
        opt.step()
        topt.step()
        torch.testing.assert_close(p.data, q.detach(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("which", ["data", "gradient"])
def test_sgd_with_a_negative_bit_tensor_follows_torch(which):
    """torch._neg_view's result equals its input but carries a bit the fused kernel refuses."""
    p, q, opt, topt, _ = _twins_training()
    opt.zero_grad()
    topt.zero_grad()
    if which == "data":
        p.data = torch._neg_view(-p.data.clone())
        with torch.no_grad():
            q.data = torch._neg_view(-q.data.clone())
    (p * p).sum().backward()
    (q * q).sum().backward()
    if which == "gradient":
        p.grad = torch._neg_view(-p.grad.clone())
        q.grad = torch._neg_view(-q.grad.clone())
    opt.step()
    topt.step()
    torch.testing.assert_close(p.data, q.detach(), rtol=1e-6, atol=1e-6)


def test_sgd_refuses_like_torch_to_update_inference_buffers_outside_inference_mode():
    p, q, opt, topt, _ = _twins_training(make_momentum_step=0)
    for o, t in ((opt, p), (topt, q)):
        o.zero_grad()
        (t * t).sum().backward()
        with torch.inference_mode():
            o.step()  # the buffers start here: inference tensors
    for _ in range(2):
        for o, t in ((opt, p), (topt, q)):
            o.zero_grad()
            (t * t).sum().backward()
            with pytest.raises(RuntimeError, match="[Ii]nference"):
                o.step()


@pytest.mark.parametrize("flag", ["nesterov", "maximize"])
def test_sgd_takes_any_truthy_flag_like_torch(flag):
    p, q, opt, topt, _ = _twins_training(**{flag: 1})
    torch.testing.assert_close(p.data, q.detach(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_a_gradient_that_requires_torchs_grad_leaves_no_torch_graph(kind):
    """torch.optim steps under no_grad; so must the per-tensor paths (a transposed gradient
    set by hand takes SGD's), or p.data and the state start recording torch's graph."""
    p = tg.Tensor(torch.randn(3, 3), requires_grad=True)
    options = dict(lr=0.1, weight_decay=0.1)
    opt = optim.SGD([p], momentum=0.9, **options) if kind == "SGD" else optim.Adam([p], **options)
    for _ in range(2):
        p.grad = torch.randn(3, 3).t().requires_grad_()
        opt.step()
    state = [v for v in opt.state[p].values() if isinstance(v, torch.Tensor)]
    assert not p.data.requires_grad and p.data.grad_fn is None
    assert not any(t.requires_grad for t in state)
