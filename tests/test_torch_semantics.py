"""torch's semantics where outside test suites found tapegrad differing, each checked against torch.

In-place arithmetic, what may hold a gradient, operands that are not
tapegrad tensors, how gradients accumulate, second sweeps through ops that
saved nothing, no_grad over generators, and what copies and pickles keep.
"""

import copy
import pickle
import threading

import numpy as np
import pytest
import torch

import tapegrad as tg
from tapegrad import nn


def pair(values, requires_grad=True, dtype=torch.float64):
    """The same leaf in tapegrad and in torch (the reference)."""
    data = torch.as_tensor(values, dtype=dtype)
    return tg.Tensor(data.clone(), requires_grad=requires_grad), data.clone().requires_grad_(
        requires_grad
    )


# --- in-place arithmetic ---------------------------------------------------------------


def test_the_hand_written_sgd_update_changes_the_parameter_in_place():
    p, rp = pair([1.0, 2.0])
    (p * p).sum().backward()
    (rp * rp).sum().backward()
    alias = p.data
    with tg.no_grad():
        p -= 0.1 * p.grad
    with torch.no_grad():
        rp -= 0.1 * rp.grad
    assert p.data is alias  # in place: same storage, not a rebinding
    torch.testing.assert_close(p.data, rp.detach())


@pytest.mark.parametrize(
    "method, args",
    [
        ("add_", (2.0,)),
        ("sub_", (0.5,)),
        ("mul_", (3.0,)),
        ("div_", (4.0,)),
        ("zero_", ()),
        ("fill_", (7.0,)),
        ("clamp_", (0.0, 1.5)),
        ("add_", (torch.tensor([1.0, 2.0], dtype=torch.float64),)),
        ("copy_", (torch.tensor([5.0, 6.0], dtype=torch.float64),)),
    ],
)
def test_in_place_methods_under_no_grad_match_torch_and_bump_the_version(method, args):
    p, rp = pair([1.0, 2.0])
    before = p.data._version
    with tg.no_grad():
        assert getattr(p, method)(*args) is p
    with torch.no_grad():
        getattr(rp, method)(*args)
    torch.testing.assert_close(p.data, rp.detach())
    assert p.data._version > before


@pytest.mark.parametrize("operator", ["+=", "-=", "*=", "/="])
def test_augmented_assignment_under_no_grad_matches_torch(operator):
    p, rp = pair([1.0, 2.0])
    other = torch.tensor([2.0, 4.0], dtype=torch.float64)
    with tg.no_grad():
        exec(f"p {operator} other", globals(), {"p": p, "other": other})
    with torch.no_grad():
        exec(f"rp {operator} other", globals(), {"rp": rp, "other": other})
    torch.testing.assert_close(p.data, rp.detach())


def test_a_tape_that_saved_the_old_values_refuses_to_sweep_after_an_in_place_update():
    p = tg.tensor([1.0, 2.0], requires_grad=True)
    loss = (p * p).sum()  # Mul saved p
    with tg.no_grad():
        p -= 0.5
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


def test_in_place_on_a_leaf_that_requires_grad_is_refused_while_recording():
    p, rp = pair([1.0, 2.0])
    with pytest.raises(RuntimeError) as ours:
        p += 1
    with pytest.raises(RuntimeError) as theirs:
        rp += 1
    assert "leaf" in str(ours.value) and "leaf" in str(theirs.value)
    assert p.data.tolist() == [1.0, 2.0]  # nothing changed


def test_in_place_on_a_recorded_tensor_is_recorded_like_torch():
    x, rx = pair([0.5, -1.0, 2.0])
    w, rw = pair([3.0, 1.0, -2.0])
    for a, b in ((x, w), (rx, rw)):
        h = a * 2
        h += b
        h *= b
        h -= 1
        h /= 4
        (h * h).sum().backward()
    torch.testing.assert_close(x.grad, rx.grad)
    torch.testing.assert_close(w.grad, rw.grad)


def test_in_place_with_an_operand_that_requires_grad_makes_a_constant_require_grad():
    w, rw = pair([3.0, 1.0])
    c, rc = pair([1.0, 2.0], requires_grad=False)
    c *= w
    rc *= rw
    assert c.requires_grad and not c.is_leaf and rc.requires_grad
    c.sum().backward()
    rc.sum().backward()
    torch.testing.assert_close(w.grad, rw.grad)


def test_in_place_on_a_recorded_tensor_makes_earlier_saves_stale_like_torch():
    x, rx = pair([0.5, 1.0])
    for a in (x, rx):
        y = a.exp()  # saved its output
        y += 1
        with pytest.raises(RuntimeError, match="modified"):
            y.sum().backward()


def test_setitem_on_a_recorded_tensor_gives_both_sides_their_gradient():
    x, rx = pair([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    v, rv = pair([10.0, 20.0])
    for a, b in ((x, v), (rx, rv)):
        y = a * 1.0
        y[torch.tensor([0, 2])] = b * 3
        (y * y).sum().backward()
    torch.testing.assert_close(x.grad, rx.grad)
    torch.testing.assert_close(v.grad, rv.grad)


def test_setitem_without_gradients_writes_in_place():
    t, rt = pair([[1.0, 2.0], [3.0, 4.0]], requires_grad=False)
    t[0] = 9.0
    t[:, 1] = tg.tensor([7.0, 8.0], dtype=torch.float64)
    rt[0] = 9.0
    rt[:, 1] = torch.tensor([7.0, 8.0], dtype=torch.float64)
    torch.testing.assert_close(t.data, rt)


def test_in_place_on_a_view_of_a_recorded_tensor_is_refused_with_the_fix():
    h = tg.tensor([[1.0, 2.0]], requires_grad=True) * 2
    view = h[0]
    with pytest.raises(RuntimeError, match="out-of-place form"):
        view += 1


def test_a_view_taken_before_its_base_changed_in_place_is_refused_when_used():
    # torch rebases such views; tapegrad refuses to use one, and allows everything else
    h = tg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True) * 2
    view = h[0]
    h += 1  # h's memory changes, and with it the view's values
    with pytest.raises(RuntimeError, match="view .* changed in place .* Take the view again"):
        view * 3
    again = h[0] * 3  # a view taken after the change is fine
    assert again.tolist() == [9.0, 15.0]


def test_writing_into_a_tensor_from_its_own_shifted_copy_works_like_torch():
    x, rx = pair([1.0, 2.0, 3.0, 4.0])
    for t in (x, rx):
        y = t * 2
        y[1:] = y[:-1].clone()
        (y * y).sum().backward()
    torch.testing.assert_close(x.grad, rx.grad)


def test_optimizer_code_written_for_torch_runs_unchanged():
    """The update loop every tutorial writes, on tapegrad tensors and on torch tensors."""

    def train(make, no_grad):
        w = make([[0.5, -0.3], [0.1, 0.8]])
        x = make([[1.0, 2.0], [3.0, 4.0]], False)
        for _ in range(5):
            loss = ((x @ w).tanh() ** 2).sum()
            loss.backward()
            with no_grad():
                w -= 0.1 * w.grad
                w.grad.zero_()
        return w.data if isinstance(w, tg.Tensor) else w.detach()

    ours = train(lambda v, r=True: tg.tensor(v, dtype=torch.float64, requires_grad=r), tg.no_grad)
    theirs = train(
        lambda v, r=True: torch.tensor(v, dtype=torch.float64, requires_grad=r), torch.no_grad
    )
    torch.testing.assert_close(ours, theirs)


# --- what may hold a gradient --------------------------------------------------------------


@pytest.mark.parametrize(
    "mistake",
    [
        lambda t: setattr(t, "requires_grad", True),
        lambda t: t.requires_grad_(),
    ],
)
def test_requires_grad_on_an_integer_tensor_is_refused_like_torch(mistake):
    ours, theirs = tg.tensor([1, 2]), torch.tensor([1, 2])
    with pytest.raises(RuntimeError) as ours_error:
        mistake(ours)
    with pytest.raises(RuntimeError):
        mistake(theirs)
    assert "floating-point" in str(ours_error.value) and not ours.requires_grad


def test_requires_grad_off_on_an_op_output_is_refused_like_torch():
    y = tg.tensor([1.0], requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="only change requires_grad flags of leaf"):
        y.requires_grad = False
    y.requires_grad = True  # already true: allowed, as in torch


def test_data_of_a_float_leaf_cannot_become_integer():
    p = tg.tensor([1.0, 2.0], requires_grad=True)
    rp = torch.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError) as ours:
        p.data = torch.tensor([1, 2])
    with pytest.raises(RuntimeError):
        rp.data = torch.tensor([1, 2])
    assert "floating-point" in str(ours.value) and p.dtype == torch.float32
    p.data = torch.tensor([3.0, 4.0])  # a float tensor: fine
    assert p.tolist() == [3.0, 4.0]


@pytest.mark.parametrize(
    "bad, kind",
    [
        (torch.ones(3), RuntimeError),
        (torch.ones(2, dtype=torch.float64), RuntimeError),
        ([1.0, 2.0], TypeError),
    ],
)
def test_assigning_a_gradient_checks_what_the_constructor_checks(bad, kind):
    p, rp = pair([1.0, 2.0], dtype=torch.float32)
    with pytest.raises(kind):
        p.grad = bad
    with pytest.raises(kind):
        rp.grad = bad
    assert p.grad is None


# --- operands that are not tapegrad tensors ------------------------------------------------


@pytest.mark.parametrize(
    "make", [lambda: np.array([0.5, 0.25]), lambda: torch.tensor([0.5, 0.25], dtype=torch.float64)]
)
@pytest.mark.parametrize("side", ["left", "right"])
def test_a_float64_array_or_tensor_meets_a_float32_leaf_and_is_refused(make, side):
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match="different dtypes"):
        _ = w * make() if side == "right" else make() * w
    assert w.grad is None


@pytest.mark.parametrize(
    "operand",
    [
        np.float64(0.5),
        np.float32(0.5),
        np.int64(2),
        0.5,
        2,
        np.array([0.5, 0.25], dtype=np.float32),
        torch.tensor([0.5, 0.25]),
    ],
)
@pytest.mark.parametrize("op", ["+", "-", "*", "/", "**"])
def test_numbers_and_same_dtype_arrays_follow_one_rule_on_either_side(operand, op):
    w, rw = pair([1.0, 2.0], dtype=torch.float32)
    as_torch = torch.as_tensor(operand) if isinstance(operand, np.ndarray) else operand
    names = {"w": w, "operand": operand, "rw": rw, "as_torch": as_torch}
    for left in (True, False):
        w.grad = rw.grad = None
        ours = eval(f"w {op} operand" if left else f"operand {op} w", globals(), names)
        theirs = eval(f"rw {op} as_torch" if left else f"as_torch {op} rw", globals(), names)
        assert ours.dtype == torch.float32 == theirs.dtype
        torch.testing.assert_close(ours.data, theirs.detach())
        ours.sum().backward()
        theirs.sum().backward()
        assert w.grad.dtype == torch.float32
        torch.testing.assert_close(w.grad, rw.grad)


# --- accumulation and sweep semantics ------------------------------------------------------


def test_gradients_accumulate_into_the_existing_grad_in_place():
    x, rx = pair([1.0, 2.0])
    for a in (x, rx):
        (a * 3).sum().backward()
    held, rheld = x.grad, rx.grad
    for a in (x, rx):
        (a * a).sum().backward()
    assert x.grad is held and rx.grad is rheld
    torch.testing.assert_close(held, rheld)


def test_a_second_sweep_through_ops_that_saved_nothing_works_like_torch():
    b, rb = pair([1.0, 2.0])
    g = torch.tensor([0.5, 1.5], dtype=torch.float64)
    for t in (b, rb):
        c = t + 1
        c.backward(g)
        c.backward(g)
    torch.testing.assert_close(b.grad, rb.grad)
    torch.testing.assert_close(b.grad, 2 * g)


def test_no_grad_on_a_generator_function_holds_while_it_runs():
    x = tg.tensor([1.0], requires_grad=True)

    @tg.no_grad()
    def evaluate():
        for scale in (1.0, 2.0):
            yield x * scale

    results = list(evaluate())
    assert all(not r.requires_grad for r in results)
    assert tg.is_grad_enabled()

    @tg.no_grad
    def bare():
        yield x * 3

    assert not next(bare()).requires_grad


def test_enable_grad_and_set_grad_enabled():
    x = tg.tensor([1.0], requires_grad=True)
    with tg.no_grad():
        assert not (x * 2).requires_grad
        with tg.enable_grad():
            assert (x * 2).requires_grad
    with tg.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert tg.is_grad_enabled()
    tg.set_grad_enabled(False)
    try:
        assert not tg.is_grad_enabled()
    finally:
        tg.set_grad_enabled(True)

    @tg.set_grad_enabled(False)
    def evaluate():
        return x * 2

    assert tg.is_grad_enabled() and not evaluate().requires_grad


# --- modules --------------------------------------------------------------------------------


def test_assigning_a_computed_tensor_to_a_parameter_name_is_refused_like_torch():
    l1, l2 = nn.Linear(2, 2), nn.Linear(2, 2)
    t1, t2 = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    with pytest.raises(TypeError):
        l2.weight = l1.weight * 2
    with pytest.raises(TypeError):
        t2.weight = t1.weight * 2
    assert [name for name, _ in l2.named_parameters()] == ["weight", "bias"]


def test_recording_an_op_on_complex_tensors_is_refused_rather_than_wrong():
    # torch's complex gradients are conjugate Wirtinger derivatives; tapegrad's rules are real
    z = tg.Tensor(torch.tensor([1 + 2j, 3 - 1j]), requires_grad=True)
    with pytest.raises(TypeError, match="complex tensors is not supported"):
        z * z
    with tg.no_grad():
        assert (z * z).dtype == torch.complex64  # computing without recording is fine


# --- found by trying tapegrad as a new user would -----------------------------------------------


def test_writing_a_recorded_value_into_a_view_of_a_buffer_is_refused_not_lost():
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    buffer = tg.zeros(2, 3)
    with pytest.raises(RuntimeError, match="memory is shared with another tensor"):
        buffer.T[:, 0] = x  # torch would make buffer require grad through the view
    a = tg.zeros(3)
    view = a[0:2]
    with pytest.raises(RuntimeError, match="memory is shared"):
        a += x
    del view
    a += x  # no view left: a takes x's gradient path
    (a * a).sum().backward()
    assert x.grad.tolist() == [2.0, 4.0, 6.0]


def test_a_buffer_filled_with_recorded_values_is_recorded_like_torch():
    x, rx = pair([1.0, 2.0, 3.0])
    for t, zeros in ((x, tg.zeros), (rx, torch.zeros)):
        out = zeros(2, 3, dtype=torch.float64)
        out[0] = t * 2
        out[1] = t.exp() if isinstance(t, torch.Tensor) else t.exp()
        (out * out).sum().backward()
    torch.testing.assert_close(x.grad, rx.grad)


def test_a_hook_keeps_the_gradient_it_saw_and_dot_grad_has_its_own_memory():
    x, rx = pair([1.0, 2.0])
    ours, theirs = [], []
    x.register_hook(lambda g: ours.append(g))
    rx.register_hook(lambda g: theirs.append(g))
    fixed = torch.tensor([10.0, 10.0], dtype=torch.float64)
    for scale in (1, 2, 3):
        (x * scale).sum().backward()
        (rx * scale).sum().backward()
    assert [g.tolist() for g in ours] == [g.tolist() for g in theirs] == [[1, 1], [2, 2], [3, 3]]
    y = tg.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    y.register_hook(lambda g: fixed)
    for _ in range(3):
        y.sum().backward()
    assert y.grad.tolist() == [30.0, 30.0] and fixed.tolist() == [10.0, 10.0]


def test_a_retained_gradient_is_a_tensor_of_its_own():
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    h = x * 2
    h.retain_grad()
    h.sum().backward()
    h.grad[0] = 7.0  # sum's derivative is a broadcast view: not in .grad
    assert h.grad.tolist() == [7.0, 1.0, 1.0]
    h.grad.mul_(0.5)


def test_retain_grad_follows_a_tensor_through_an_in_place_op():
    x, rx = pair([1.0, 2.0])
    for t in (x, rx):
        y = t * 1
        y.retain_grad()
        y.mul_(3)
        (y * torch.tensor([1.0, 10.0], dtype=torch.float64)).sum().backward()
        grads = (y.grad.tolist(),)
        if t is x:
            ours = grads
    assert ours == grads == ([1.0, 10.0],)


def test_sgd_refuses_data_replaced_by_another_shape_instead_of_reading_past_it():
    p = tg.tensor([1.0, 2.0], requires_grad=True)
    opt = tg.optim.SGD([p], lr=1.0)
    (p * 1).sum().backward()
    p.data = torch.zeros(1000)
    with pytest.raises(RuntimeError):
        opt.step()


def test_tensor_copies_what_it_is_given_like_torch_tensor():
    initial = torch.tensor([1.0, 2.0])
    w = tg.tensor(initial, requires_grad=True)
    with tg.no_grad():
        w -= 1
    a = tg.tensor([1.0, 2.0])
    b = tg.tensor(a)
    b += 1
    assert initial.tolist() == [1.0, 2.0] and a.tolist() == [1.0, 2.0]


def test_an_in_place_op_whose_operand_is_the_tensor_itself():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1
    y.mul_(y)  # y = x^2
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 4.0]
    a, b = tg.tensor([1.0, 2.0], requires_grad=True), tg.tensor([3.0, 4.0], requires_grad=True)
    p = a * b
    p.mul_(a)  # p = a^2 b
    (g,) = tg.grad(p.sum(), [b], create_graph=True)
    assert g.tolist() == [1.0, 4.0]


def test_second_derivatives_of_piecewise_linear_networks_are_zeros_like_torch():
    x, rx = pair([[0.3, -0.7]])
    g = torch.Generator().manual_seed(0)
    w1, w2 = (
        torch.randn(2, 4, generator=g, dtype=torch.float64),
        torch.randn(4, 1, generator=g, dtype=torch.float64),
    )
    for t, grad, _act in ((x, tg.grad, "relu"), (rx, torch.autograd.grad, "relu")):
        u = ((t @ w1).relu() @ w2).sum()
        (first,) = grad(u, t, create_graph=True)
        (second,) = grad(first[0, 0], t)
        assert second.tolist() == [[0.0, 0.0]]
    leaky = tg.nn.LeakyReLU(0.1)
    y = tg.tensor([[0.5, -0.5]], dtype=torch.float64, requires_grad=True)
    (first,) = tg.grad(leaky(y).sum(), y, create_graph=True)
    assert tg.grad(first.sum(), y)[0].tolist() == [[0.0, 0.0]]


def test_materialize_grads_gives_zeros_for_unused_inputs():
    x, z = tg.tensor([1.0], requires_grad=True), tg.tensor([2.0], requires_grad=True)
    gx, gz = tg.grad((x * 3).sum(), [x, z], materialize_grads=True)
    assert gx.tolist() == [3.0] and gz.tolist() == [0.0]


def test_integer_and_half_conversions():
    x = tg.tensor([1.5, -2.5], requires_grad=True)
    assert x.long().dtype == torch.int64 and not x.long().requires_grad
    assert x.int().dtype == torch.int32 and x.bool().dtype == torch.bool
    h = x.half()
    assert h.dtype == torch.float16 and h.requires_grad
    h.float().sum().backward()
    assert x.grad.dtype == torch.float32 and x.grad.tolist() == [1.0, 1.0]


def test_bce_loss_takes_torchs_weight_argument():
    p, rp = pair([0.2, 0.7, 0.9])
    target = torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64)
    weight = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    nn.BCELoss(weight=weight)(p, tg.Tensor(target)).backward()
    torch.nn.BCELoss(weight=weight)(rp, target).backward()
    torch.testing.assert_close(p.grad, rp.grad)
    assert "weight" in dict(nn.BCELoss(weight=weight).named_buffers())


# --- copy.copy, copy.deepcopy, pickle -----------------------------------------------


def _copies(lib, make) -> dict:
    """requires_grad, .grad and leafness of each kind of copy of `make(lib)`'s tensor."""
    result = {}
    for how, copier in (
        ("deepcopy", copy.deepcopy),
        ("copy", copy.copy),
        ("pickle", lambda t: pickle.loads(pickle.dumps(t))),
    ):
        t = make(lib)
        try:
            c = copier(t)
        except RuntimeError:
            result[how] = "RuntimeError"
            continue
        grad = None if c.grad is None else c.grad.tolist()
        shares = c.data.data_ptr() == t.data.data_ptr()
        result[how] = (type(c).__name__, c.requires_grad, c.is_leaf, grad, shares, c.tolist())
    return result


def _leaf(lib):
    x = (lib.tensor if lib is tg else torch.tensor)([1.0, 2.0], requires_grad=True)
    (x * 2).sum().backward()
    return x


def _op_output(lib):
    x = (lib.tensor if lib is tg else torch.tensor)([1.0, 2.0], requires_grad=True)
    return x * 3


def _parameter(lib):
    p = lib.nn.Parameter(torch.tensor([1.0, 2.0]))
    (p * 5).sum().backward()
    return p


@pytest.mark.parametrize("make", [_leaf, _op_output, _parameter])
def test_copy_deepcopy_and_pickle_of_tensors_keep_what_torch_keeps(make):
    # torch: deepcopy keeps a leaf's .grad, a Parameter's not, and refuses an op's output;
    # pickle and copy.copy keep no .grad and give a leaf (copy.copy shares the values).
    assert _copies(tg, make) == _copies(torch, make)


def test_deepcopy_keeps_views_shared_and_buffers_persistence():
    base = tg.tensor([1.0, 2.0, 3.0, 4.0])
    view = tg.Tensor(base.data[1:3])
    buffer = nn.Buffer(torch.ones(2), persistent=False)
    a, b, c = copy.deepcopy([base, view, buffer])
    a.data[1] = 10.0  # the copies share memory as the originals do (torch's deepcopy)
    assert b.tolist() == [10.0, 3.0] and base.tolist() == [1.0, 2.0, 3.0, 4.0]
    assert isinstance(c, nn.Buffer) and c.persistent is False
    assert pickle.loads(pickle.dumps(buffer)).persistent is False


class _KeepsALock:
    """A tensor subclass's state: drops an unpicklable lock in __getstate__, remade in
    __setstate__ (as a user would write it for torch)."""

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("lock", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.lock = threading.Lock()
        self.restored = True


class LockedTapegrad(_KeepsALock, tg.Tensor):
    pass


class LockedTorch(_KeepsALock, torch.Tensor):
    pass


class Tagged(tg.Tensor):
    __slots__ = ("tag", "__secret", "__dict__")


def test_a_tensor_subclass_state_goes_through_its_getstate_and_setstate_as_torch():
    found = {}
    for kind in (LockedTapegrad, LockedTorch):
        t = kind(torch.ones(2)) if kind is LockedTapegrad else torch.ones(2).as_subclass(kind)
        t.lock, t.tag = threading.Lock(), "mine"
        again = pickle.loads(pickle.dumps(t))
        shallow = copy.copy(t)
        found[kind] = [
            type(again) is kind,
            again.tag,
            getattr(again, "restored", False),
            shallow.lock is not t.lock,
            getattr(shallow, "restored", False),
        ]
    assert found[LockedTapegrad] == found[LockedTorch] == [True, "mine", True, True, True]


def test_private_slots_and_self_references_of_a_subclass_survive_copies():
    t = Tagged(torch.ones(2), requires_grad=True)
    t.tag, t._Tagged__secret = "visible", "private"
    t.me = t  # its own __dict__ holds it
    for copier in (copy.deepcopy, copy.copy, lambda x: pickle.loads(pickle.dumps(x))):
        c = copier(t)
        assert (c.tag, c._Tagged__secret) == ("visible", "private")
    clone = copy.deepcopy(t)
    assert clone.me is clone and clone is not t


class _ExtendsTheDefault:
    """A subclass's __getstate__ built on its base's (super()), and a __setstate__ that
    runs even when there is nothing to set."""

    def __getstate__(self):
        state = super().__getstate__()
        state = dict(state) if state else {}
        state.pop("scratch", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.restored = True


class ExtendsTapegrad(_ExtendsTheDefault, tg.Tensor):
    pass


class ExtendsTorch(_ExtendsTheDefault, torch.Tensor):
    pass


def test_a_subclass_getstate_built_on_super_and_its_setstate_run_as_torch():
    found = {}
    for kind in (ExtendsTapegrad, ExtendsTorch):
        t = kind(torch.ones(2)) if kind is ExtendsTapegrad else torch.ones(2).as_subclass(kind)
        t.tag, t.scratch = "kept", "dropped"
        bare = kind(torch.ones(1)) if kind is ExtendsTapegrad else torch.ones(1).as_subclass(kind)
        copies = [copy.copy(t), pickle.loads(pickle.dumps(t)), copy.copy(bare)]
        found[kind] = [(c.__dict__.get("tag"), hasattr(c, "scratch"), c.restored) for c in copies]
    assert found[ExtendsTapegrad] == found[ExtendsTorch]
    assert found[ExtendsTapegrad][0] == ("kept", False, True)


# --- what an audit of the surface's docstrings found ---------------------------------------


def _outcome(action):
    try:
        result = action()
    except Exception as error:  # noqa: BLE001 (the type is what is compared)
        return type(error).__name__
    data = result.data if isinstance(result, tg.Tensor) else result
    return data.tolist(), data.dtype, bool(getattr(result, "requires_grad", False))


@pytest.mark.parametrize(
    "write",
    [
        lambda i, w: i.add_(w),
        lambda i, w: i.mul_(w),
        lambda i, w: i.copy_(w),
        lambda i, w: (i.__setitem__(0, w[0]), i)[1],
        lambda i, w: (i.__setitem__(slice(0, 2), w[:2]), i)[1],
    ],
    ids=["add_", "mul_", "copy_", "x[0] = w[0]", "x[:2] = w[:2]"],
)
def test_an_integer_tensor_written_in_place_with_a_value_needing_grad_does_as_torch(write):
    # an integer tensor can't hold a gradient: torch's own op runs (converting, or refusing)
    found = {}
    for lib in (tg, torch):
        i = lib.tensor([1, 2, 3])
        w = lib.tensor([0.7, 1.5, 2.5], requires_grad=True)
        found[lib] = _outcome(lambda: write(i, w))
    assert found[tg] == found[torch]


def test_fill_takes_a_zero_d_tensor_of_the_other_float_dtype_recorded_or_not_as_torch():
    value = torch.tensor(2.5, dtype=torch.float64)
    plain = tg.ones(2).fill_(value)
    recorded = (tg.ones(2, requires_grad=True) * 1).fill_(tg.tensor(2.5, dtype=torch.float64))
    assert plain.tolist() == recorded.tolist() == torch.ones(2).fill_(value).tolist()
    assert plain.dtype == recorded.dtype == torch.float32


def test_comparisons_with_none_and_split_sizes_as_torch():
    for lib in (tg, torch):
        x = lib.ones(2)
        assert (x == None) is False and (x != None) is True  # noqa: E711 (the point)
        with pytest.raises(TypeError):
            x < None  # noqa: B015
        for sizes in (1.5, "a", [1.0, 1.0]):
            with pytest.raises(TypeError):
                x.split(sizes)


def test_an_index_out_of_range_on_a_leaf_that_requires_grad_is_an_index_error_as_torch():
    for lib in (tg, torch):
        x = lib.ones(3, requires_grad=True)
        with pytest.raises(IndexError):
            x[5] = 1.0
        with pytest.raises(RuntimeError):
            x[1] = 1.0
