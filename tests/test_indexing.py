"""x[index] and x[index] = value against torch: every index form, first and second derivatives,
errors.

Reading (GetItem): ints, negative ints, slices with steps, None, ``...``,
integer tensors, numpy arrays and lists (with repeats: their gradients
add), nested lists, tuples mixing advanced indices with slices/None/...,
bool masks (tensor, numpy, list, 0-d), 0-d index tensors, empty results.
Writing (SetItem, through Tensor.__setitem__): the gradient of both sides
against torch's ``y = x * 1; y[index] = v``; refused on a leaf that
requires grad; in place under no_grad.
"""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tapegrad as tg

from helpers import check_against_torch, check_both, check_second_order, randn, seeds, shapes

EXAMPLES = settings(max_examples=25, deadline=None)


def torch_form(index):
    """The same index for torch: tapegrad tensors inside it as torch tensors."""
    if isinstance(index, (tuple, list)):
        return type(index)(torch_form(i) for i in index)
    if isinstance(index, tg.Tensor):
        return index.data
    return index


def pick(index):
    """fn(t) = t[index], for either kind of tensor."""

    def fn(t):
        return t[index] if isinstance(t, tg.Tensor) else t[torch_form(index)]

    return fn


def check_index(x, index):
    """Forward, first and second derivative against torch, finite differences, gradgradcheck."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's deprecation of some list forms
        check_both(pick(index), x)
        out = tg.Tensor(x.clone(), requires_grad=True)[index]
        if out.numel():
            assert tg.gradgradcheck(
                lambda t: t[index] * t[index], tg.Tensor(x.clone(), requires_grad=True)
            )


# --- basic indices: ints, slices with steps, None, ... --------------------------------------------


@st.composite
def basic_indices(draw):
    """A shape and a basic index for it: ints (either sign), slices with steps, None and
    Ellipsis."""
    shape = draw(shapes(1, 4, min_side=0))
    items = []
    for size in shape:
        kind = draw(st.sampled_from(["int", "slice", "all"] if size else ["slice", "all"]))
        if kind == "int":
            items.append(draw(st.integers(-size, size - 1)))
        elif kind == "slice":
            start = draw(st.none() | st.integers(-size - 1, size + 1))
            stop = draw(st.none() | st.integers(-size - 1, size + 1))
            step = draw(st.none() | st.integers(1, 3))  # torch has no negative steps
            items.append(slice(start, stop, step))
        else:
            items.append(slice(None))
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(items)))
        items = items[:cut] + [Ellipsis] + (items[cut + 1 :] if draw(st.booleans()) else [])
    for _ in range(draw(st.integers(0, 2))):
        items.insert(draw(st.integers(0, len(items))), None)
    index = tuple(items) if len(items) != 1 or draw(st.booleans()) else items[0]
    return shape, index


@EXAMPLES
@given(case=basic_indices(), seed=seeds)
def test_basic_indices(case, seed):
    shape, index = case
    check_index(randn(shape, seed), index)


def test_basic_index_gives_a_view_and_reads_like_python():
    x = tg.tensor(randn((3, 4), 0), requires_grad=True)
    y = x[1:, ::2]
    assert y.data.data_ptr() == x.data[1:].data_ptr()
    check_index(randn((3, 4), 0), (-1, slice(None, None, 2)))
    check_index(randn((3, 4), 0), (None, Ellipsis, None, 2))
    check_index(randn((3, 4), 0), 1)
    check_index(randn((3, 4), 0), -3)


def test_strided_input():
    x = randn((4, 3), 0).t()  # a transposed leaf
    for index in [(slice(None), 1), (torch.tensor([0, 0, 2]),), (x > 0,)]:
        check_against_torch(pick(index), x)
        check_both(pick(index), x.contiguous())


# --- advanced: integer tensors, numpy arrays, lists, with repeats ---------------------------------


@st.composite
def integer_indices(draw):
    """A shape and integer indices for its first dimension (repeats likely), in some form."""
    shape = draw(shapes(1, 3))
    n = draw(st.integers(0, 6))
    picked = draw(st.lists(st.integers(-shape[0], shape[0] - 1), min_size=n, max_size=n))
    form = draw(st.sampled_from(["torch", "tapegrad", "list", "numpy", "numpy32", "torch32"]))
    if form == "list" and picked:
        return shape, picked
    if form == "numpy":
        return shape, np.array(picked, dtype=np.int64)
    if form == "numpy32":
        return shape, np.array(picked, dtype=np.int32)
    if form == "torch32":
        return shape, torch.tensor(picked, dtype=torch.int32)
    index = torch.tensor(picked, dtype=torch.long)
    return shape, (tg.tensor(index) if form == "tapegrad" else index)


@EXAMPLES
@given(case=integer_indices(), seed=seeds)
def test_integer_indices_with_repeats(case, seed):
    shape, index = case
    check_index(randn(shape, seed), index)


def test_repeated_picks_add_their_gradients():
    x = tg.tensor(torch.ones(3, 2), requires_grad=True)
    x[np.array([0, 0, 2])].sum().backward()
    assert x.grad[:, 0].tolist() == [2.0, 0.0, 1.0]
    x.grad = None
    x[[0, 0, 0, 1]].sum().backward()
    assert x.grad[:, 1].tolist() == [3.0, 1.0, 0.0]
    x.grad = None
    x[tg.tensor([-1, 2])].sum().backward()
    assert x.grad[:, 0].tolist() == [0.0, 0.0, 2.0]


@pytest.mark.parametrize(
    "index",
    [
        torch.tensor([[0, 1], [2, 2]]),  # a 2-D index tensor: the result is (2, 2, 4)
        np.array([[0, 1], [1, 1]]),
        [[0, 1], [1, 0]],  # a nested list: torch reads it as a tuple
        [[0, 0, 1]],
        [torch.tensor(0), torch.tensor(2)],
        [tg.tensor(0), tg.tensor(2)],
        [np.int64(1), 2],
    ],
)
def test_nested_lists_and_2d_indices(index):
    check_index(randn((3, 4), 0), index)


@pytest.mark.parametrize(
    "index",
    [
        (torch.tensor([0, 2, 2]), slice(1, None)),  # advanced, then a slice
        (slice(None), [1, 1, 3]),  # a slice, then advanced
        (Ellipsis, torch.tensor([1, 1])),
        (None, [0, 0]),
        ([0, 1], slice(None), [1, 0]),  # separated advanced: dims go first
        ([0, 1], None, [1, 1]),
        (slice(None, None, 2), None, np.array([2, 0])),
        ([[0], [1]], [1, 2]),  # broadcast index tensors
        (tg.tensor([0, 1]), tg.tensor([1, 1]), 0),
        (1, [0, 0], slice(None)),
        (torch.tensor([True, False, True]), slice(1, None)),
        (Ellipsis, np.array([True, False])),
    ],
)
def test_tuples_mixing_advanced_and_basic(index):
    check_index(randn((3, 4, 2), 1), index)


# --- bool masks -----------------------------------------------------------------------------------


@EXAMPLES
@given(
    shape=shapes(1, 3, min_side=0),
    seed=seeds,
    prefix=st.integers(1, 3),
    form=st.sampled_from(["torch", "numpy", "tapegrad", "list"]),
)
def test_bool_masks(shape, seed, prefix, form):
    x = randn(shape, seed)
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(shape[:prefix], generator=g) > 0.5
    if form == "numpy":
        mask = mask.numpy()
    elif form == "tapegrad":
        mask = tg.tensor(mask)
    elif form == "list" and mask.dim() == 1 and mask.numel():
        mask = mask.tolist()
    check_index(x, mask)


@pytest.mark.parametrize(
    "index",
    [
        True,
        False,
        torch.tensor(True),
        torch.tensor(False),
        (Ellipsis, True),
        np.array(True),
        np.array(False),
    ],
)
def test_0d_bool_indices_add_a_dimension(index):
    check_index(randn((3, 2), 0), index)


def test_mask_from_a_comparison_and_all_false():
    x = tg.tensor(randn((4, 3), 0), requires_grad=True)
    x[x > 0].sum().backward()
    assert torch.equal(x.grad, (x.data > 0).to(x.dtype))
    check_index(randn((4, 3), 0), torch.zeros(4, 3, dtype=torch.bool))


# --- 0-d index tensors and empty results ----------------------------------------------------------


@pytest.mark.parametrize(
    "index",
    [
        torch.tensor(1),
        torch.tensor(-1),
        np.array(2),
        np.int64(0),
        tg.tensor(1),
        (torch.tensor(1), 0),
        (slice(None), torch.tensor(3)),
    ],
)
def test_0d_index_tensors_act_like_ints(index):
    check_index(randn((3, 4), 0), index)
    x = tg.tensor(randn((3, 4), 0), requires_grad=True)
    assert x[index].node.basic  # a view, as torch gives for a 0-d integer index


@pytest.mark.parametrize(
    "shape, index",
    [
        ((3, 4), []),
        ((3, 4), torch.tensor([], dtype=torch.long)),
        ((3, 4), slice(2, 2)),
        ((3, 4), np.array([], dtype=np.int64)),
        ((0, 3), slice(None)),
        ((0, 3), torch.tensor([], dtype=torch.long)),
        ((0, 3), (Ellipsis, 1)),
        ((3, 4), (slice(None), [])),
    ],
)
def test_empty_results(shape, index):
    check_index(randn(shape, 0), index)
    x = tg.tensor(randn(shape, 0), requires_grad=True)
    x[index].sum().backward()
    assert x.grad.shape == x.shape and not x.grad.any()


@pytest.mark.parametrize(
    "index",
    [
        (slice(None), 1),
        torch.tensor([0, 0, 2]),
        [[0, 1], [2, 2]],
        (Ellipsis, np.array([1, 1])),
        (None, slice(1, None, 2)),
    ],
)
def test_float32_matches_torch(index):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's deprecation of the nested list
        check_against_torch(
            pick(index), randn((3, 4), 0, dtype=torch.float32), rtol=1e-6, atol=1e-6
        )
        check_second_order(
            lambda t: pick(index)(t) * pick(index)(t),
            randn((3, 4), 1, dtype=torch.float32),
            rtol=1e-5,
            atol=1e-5,
        )


# --- errors: torch's type -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "index",
    [
        5,
        -4,
        [0, 5],
        torch.tensor([0, 5]),
        np.array([0, 5]),
        (0, 4),
        torch.tensor([0.0]),
        0.5,
        (0, 0, 0),
        torch.tensor([True, False]),
        slice(None, None, -1),
        slice(None, None, 0),
        "a",
        (tg.tensor(7),),
        np.bool_(True),
        np.float64(1.0),
    ],
)
def test_errors_like_torch(index):
    x = randn((3, 4), 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(Exception) as theirs:
            x[torch_form(index)]
        with pytest.raises(theirs.type) as ours:
            tg.tensor(x, requires_grad=True)[index]
    assert "(3, 4)" in str(ours.value)


def test_out_of_range_says_the_range():
    with pytest.raises(IndexError, match=r"out of bounds.*shape \(3, 4\).*-n to n - 1"):
        tg.tensor(randn((3, 4), 0), requires_grad=True)[3]


def test_indexing_a_0d_tensor_errors_like_torch():
    with pytest.raises(IndexError):
        torch.tensor(1.0)[0]
    with pytest.raises(IndexError):
        tg.tensor(1.0, requires_grad=True)[0]


def test_an_index_tensor_changed_in_place_after_the_forward_is_caught_like_torch():
    for make in (lambda: torch.tensor([0, 1]), lambda: torch.tensor([True, False, True])):
        index = make()
        x = torch.ones(3, requires_grad=True)
        y = x[index]
        index[0] = index[1]
        with pytest.raises(RuntimeError):
            y.sum().backward()
        index = make()
        x = tg.tensor(torch.ones(3), requires_grad=True)
        y = x[index]
        index[0] = index[1]
        with pytest.raises(RuntimeError, match="modified in place"):
            y.sum().backward()


def test_second_sweep_through_an_index_tensor_needs_retain_graph_like_torch():
    index = torch.tensor([0, 0])
    x = torch.ones(3, requires_grad=True)
    y = x[index].sum()
    y.backward()
    with pytest.raises(RuntimeError):
        y.backward()
    x = tg.tensor(torch.ones(3), requires_grad=True)
    y = x[index].sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()
    y = x[index].sum()
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.tolist() == [6.0, 0.0, 0.0]


# --- iteration and len ----------------------------------------------------------------------------


def test_iteration_records_each_element_like_indexing():
    x = tg.tensor(randn((3, 2), 0), requires_grad=True)
    rows = list(x)
    assert len(rows) == len(x) == 3 and all(r.node.op is tg.ops.GetItem for r in rows)
    assert all(torch.equal(r.data, x.data[i]) for i, r in enumerate(rows))
    total = 0.0
    for i, row in enumerate(x):
        total = total + (row * row).sum() * (i + 1)
    total.backward()
    torch.testing.assert_close(
        x.grad, 2 * x.data * torch.tensor([[1.0], [2.0], [3.0]], dtype=torch.float64)
    )
    check_both(lambda t: sum(r * r * (i + 1) for i, r in enumerate(t)), randn((3, 2), 1))


def test_0d_tensors_have_no_len_and_no_iteration_like_torch():
    for fn in (len, iter, list):
        with pytest.raises(TypeError):
            fn(torch.tensor(1.0))
        with pytest.raises(TypeError, match="0-d"):
            fn(tg.tensor(1.0, requires_grad=True))
    assert list(tg.zeros(0, 2)) == [] and len(tg.zeros(0, 2)) == 0


# --- x[index] = value -----------------------------------------------------------------------------


def assign(index, value_shape=None, number=None):
    """fn(x[, v]) = (y = x * 1; y[index] = v or number; y * y): the same code for torch and
    tapegrad."""

    def fn(x, *v):
        y = x * 1.0
        key = index if isinstance(x, tg.Tensor) else torch_form(index)
        y[key] = v[0] if v else number
        return y * y

    return fn


REPEATS = 9, 10, 11  # the cases whose index writes one position twice (see below)

SET_CASES = [
    ((3, 4), 1, (4,)),
    ((3, 4), -1, ()),
    ((3, 4), 0, (1, 4)),  # a leading size-1 dim, dropped by torch
    ((3, 4), 0, (1, 1, 4)),
    ((3, 4), slice(0, 2), (4,)),  # broadcast over the rows
    ((3, 4), slice(None, None, 2), (2, 1)),
    ((3, 4), (slice(None), 1), (3,)),
    ((3, 4), (Ellipsis, None, 2), (3, 1)),
    ((3, 4), [0, 2], (2, 4)),
    ((3, 4), [0, 0, 2], (3, 4)),  # a repeated row: each value row still gets its grad
    ((3, 4), torch.tensor([2, 0, 2]), (1,)),
    ((3, 4), np.array([1, 1]), ()),
    ((3, 4), ([0, 1], [1, 1]), (2,)),  # repeated element
    ((3, 4), (tg.tensor([0, 2]), slice(1, 3)), (2, 2)),
    ((3, 4), torch.tensor([True, False, True]), (4,)),
    ((3, 4), np.array([False, True, True]), (2, 4)),
    ((3, 4), torch.tensor(1), (4,)),
    ((2, 3, 2), ([0, 1], slice(None), [1, 0]), (2, 3)),
    ((3, 4), [], (4,)),
    ((3,), Ellipsis, (3,)),
    ((), Ellipsis, ()),
]


@pytest.mark.parametrize("case", range(len(SET_CASES)))
@pytest.mark.parametrize("requires", [(True, True), (True, False), (False, True)])
def test_setitem_gradients_of_both_sides_against_torch(case, requires):
    shape, index, value_shape = SET_CASES[case]
    x, v = randn(shape, 0), randn(value_shape, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if case in REPEATS:
            # torch's derivative, not the finite differences: see the test below
            check_against_torch(assign(index), x, v, requires=list(requires))
            check_second_order(assign(index), x, v, requires=list(requires))
        else:
            check_both(assign(index), x, v, requires=list(requires))


def test_a_position_written_twice_gives_each_write_its_gradient_as_torch():
    # y[[0, 0]] = v: one of the two writes wins (the last, on the CPU), yet torch (and so
    # tapegrad) gives both v[0] and v[1] the gradient at y[0]: finite differences would give the
    # losing write 0. Written twice, the result is unspecified in torch, and so is this derivative.
    for make in (lambda v: tg.tensor(torch.zeros(2)), lambda v: torch.zeros(2)):
        v = (
            tg.tensor([1.0, 2.0], requires_grad=True)
            if make(0).__class__ is tg.Tensor
            else torch.tensor([1.0, 2.0], requires_grad=True)
        )
        y = make(v) * 1.0
        y[[0, 0]] = v
        assert y[0].item() == 2.0
        (y * torch.tensor([3.0, 5.0])).sum().backward()
        assert v.grad.tolist() == [3.0, 3.0]


@pytest.mark.parametrize(
    "shape, index, value_shape", [c for i, c in enumerate(SET_CASES) if i not in REPEATS][:10]
)
def test_setitem_gradgradcheck_and_float32(shape, index, value_shape):
    x, v = randn(shape, 0), randn(value_shape, 1)
    assert tg.gradgradcheck(
        assign(index),
        tg.Tensor(x.clone(), requires_grad=True),
        tg.Tensor(v.clone(), requires_grad=True),
    )
    check_against_torch(assign(index), x.float(), v.float(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("number", [0.0, 2.5, 3])
def test_setitem_with_a_number(number):
    check_both(assign((slice(None), 1), number=number), randn((3, 4), 0))
    check_both(assign(torch.tensor([0, 0]), number=number), randn((3, 4), 0))


def test_setitem_is_recorded_as_setitem_and_the_tensor_becomes_its_output():
    x = tg.tensor(randn((3, 4), 0), requires_grad=True)
    y = x * 1.0
    memory = y.data.data_ptr()
    y[0] = 5.0
    assert y.node.op is tg.ops.SetItem and y.data.data_ptr() == memory
    assert torch.all(y.data[0] == 5.0)


def test_setitem_of_a_value_that_requires_grad_into_a_plain_tensor():
    # like torch: the plain tensor becomes the (non-leaf) output of the assignment
    v = tg.tensor(randn((4,), 0), requires_grad=True)
    y = tg.zeros(3, 4, dtype=torch.float64)
    y[1] = v
    assert y.requires_grad and not y.is_leaf and y.node.op is tg.ops.SetItem
    (y * y).sum().backward()
    torch.testing.assert_close(v.grad, 2 * v.data)


def test_setitem_on_a_leaf_that_requires_grad_is_refused_like_torch():
    with pytest.raises(RuntimeError):
        torch.zeros(3, requires_grad=True)[0] = 1.0
    x = tg.tensor(torch.zeros(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        x[0] = 1.0
    assert torch.equal(x.data, torch.zeros(3))


@pytest.mark.parametrize(
    "index",
    [
        0,
        (tg.tensor([0, 1]), 1),
        np.array([0, 2]),
        [1, 1],
        tg.tensor([True, False, True]),
        (Ellipsis, tg.tensor(2)),
    ],
)
def test_setitem_under_no_grad_writes_in_place(index):
    x = tg.tensor(torch.zeros(3, 4), requires_grad=True)
    reference = torch.zeros(3, 4)
    reference[torch_form(index)] = 7.0
    y = (x * 2).sum()  # a tape that does not save x (Mul by a number)
    memory, version = x.data.data_ptr(), x.data._version
    with tg.no_grad():
        x[index] = 7.0
    assert x.data.data_ptr() == memory and x.data._version > version and x.is_leaf
    assert torch.equal(x.data, reference)
    y.backward()


def test_setitem_under_no_grad_makes_a_tape_that_saved_the_tensor_refuse():
    x = tg.tensor(torch.ones(3), requires_grad=True)
    y = (x * x).sum()
    with tg.no_grad():
        x[0] = 2.0
    with pytest.raises(RuntimeError, match="modified in place"):
        y.backward()


@pytest.mark.parametrize(
    "index, value", [(5, 1.0), (0, torch.ones(3)), ([0, 7], 1.0), (torch.tensor([0.5]), 1.0)]
)
def test_setitem_errors_like_torch(index, value):
    with pytest.raises(Exception) as theirs:
        (torch.zeros(3, 4, requires_grad=True) * 1)[index] = value
    with pytest.raises(theirs.type):
        (tg.zeros(3, 4, requires_grad=True) * 1)[index] = value
    with tg.no_grad(), pytest.raises(theirs.type):
        tg.zeros(3, 4)[index] = value


def test_setitem_refuses_float32_into_float64_in_both_paths():
    # tapegrad does not convert floats silently (torch would); the same with and without recording
    v = torch.ones(4, dtype=torch.float32)
    with pytest.raises(TypeError, match="float32"):
        (tg.zeros(3, 4, dtype=torch.float64, requires_grad=True) * 1)[0] = v
    with tg.no_grad(), pytest.raises(TypeError, match="float32"):
        tg.zeros(3, 4, dtype=torch.float64)[0] = v
