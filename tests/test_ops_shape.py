"""Shape ops, joins and splits against torch autograd (first and second order) and finite
differences.

view, reshape, flatten, squeeze, unsqueeze, permute, movedim, expand,
transpose, cat, stack, split, chunk, unbind, narrow, select, clone,
contiguous, detach: hypothesis draws shapes and dims (negative and tuple
dims, 0-d and empty tensors), inputs come contiguous and strided; every
error is the exception type torch raises for the same mistake.
"""

import io

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tapegrad as tg
import visualize
from tapegrad.steps import derivative_rule

from helpers import check_against_torch, check_both, check_second_order, randn, seeds, shapes

EXAMPLES = settings(max_examples=25, deadline=None)


def check_all(fn, *vals, requires=None):
    """helpers.check_both, with contiguous copies for the finite differences.

    (tapegrad.gradcheck perturbs an input through ``data.view(-1)``, which a
    strided input refuses; the references against torch see the strided values.)
    """
    if all(v.is_contiguous() for v in vals):
        return check_both(fn, *vals, requires=requires)
    check_against_torch(fn, *vals, requires=requires)
    check_second_order(fn, *vals, requires=requires)
    requires = requires or [True] * len(vals)
    assert tg.gradcheck(
        fn, *[tg.Tensor(v.contiguous(), requires_grad=r) for v, r in zip(vals, requires)]
    )


def strided(shape, seed, dtype=torch.float64):
    """Values of `shape` whose memory is not contiguous: a transpose, or every other row."""
    shape = tuple(shape)
    if len(shape) >= 2:
        return randn(shape[::-1], seed, dtype=dtype).permute(*range(len(shape) - 1, -1, -1))
    if len(shape) == 1:
        return randn((2 * shape[0],), seed, dtype=dtype)[::2]
    return randn(shape, seed, dtype=dtype)


def values(shape, seed, layout):
    return strided(shape, seed) if layout == "strided" else randn(shape, seed)


layouts = st.sampled_from(["contiguous", "strided"])


def raises_like_torch(fn, tensor_value):
    """fn on a torch tensor and on a tapegrad tensor raise the same exception type; returns ours."""
    with pytest.raises(Exception) as theirs:
        fn(tensor_value.clone())
    with pytest.raises(theirs.type) as ours:
        fn(tg.Tensor(tensor_value.clone(), requires_grad=tensor_value.is_floating_point()))
    return ours.value


def both(fn_tg, fn_torch):
    """One function for check_both: the tapegrad form on tapegrad tensors, the torch form on
    torch's."""

    def fn(*ts):
        return (fn_tg if isinstance(ts[0], tg.Tensor) else fn_torch)(*ts)

    return fn


def gradgrad(fn, *vals):
    assert tg.gradgradcheck(fn, *[tg.Tensor(v.clone(), requires_grad=True) for v in vals])


# --- view and reshape ---------------------------------------------------------------------------


@st.composite
def reshape_cases(draw):
    shape = draw(shapes(0, 4, min_side=0))
    numel = 1
    for size in shape:
        numel *= size
    options = [(numel,), (1, numel), tuple(reversed(shape)), (-1,)]
    if numel:
        options += [(numel, 1, -1), (-1, 1)]
    if numel == 1:
        options.append(())
    return shape, draw(st.sampled_from(options))


@EXAMPLES
@given(case=reshape_cases(), seed=seeds, as_varargs=st.booleans())
def test_view(case, seed, as_varargs):
    shape, target = case
    if as_varargs and target:
        check_all(lambda t: t.view(*target), randn(shape, seed))
    else:
        check_all(lambda t: t.view(target), randn(shape, seed))


def test_view_is_a_view_and_view_dtype():
    x = tg.tensor(randn((2, 3), 0), requires_grad=True)
    y = x.view(3, 2)
    assert y.data.data_ptr() == x.data.data_ptr() and y.node.op is tg.ops.View
    assert x.view(torch.float64).node.op is tg.ops.View  # the same dtype: a view of the tensor
    bits = x.view(torch.int64)  # other bits: no gradient, as torch
    assert not bits.requires_grad and torch.equal(bits.data, x.data.view(torch.int64))


def test_view_of_a_strided_tensor_where_the_strides_allow_it():
    # (4, 3) transposed from (3, 4): splitting the first dim keeps a valid stride
    x = strided((4, 3), 0)
    check_all(lambda t: t.view(2, 2, 3), x)
    check_all(lambda t: t.view_as(torch.zeros(2, 2, 3)), x)


@pytest.mark.parametrize("shape, target", [((4, 3), (12,)), ((4, 3), (3, 4)), ((2, 3, 2), (6, 2))])
def test_view_refuses_what_cannot_be_a_view_like_torch(shape, target):
    x = strided(shape, 0)
    with pytest.raises(RuntimeError, match="view size is not compatible") as theirs:
        x.clone().view(target)
    assert "view size is not compatible with input tensor's size and stride" in str(theirs.value)
    error = raises_like_torch(lambda t: t.view(target), x)
    message = str(error)
    assert "view size is not compatible with input tensor's size and stride" in message
    assert str(tuple(shape)) in message and ".reshape(" in message
    check_all(lambda t: t.reshape(target), x)  # what the message says to do instead
    check_all(lambda t: t.contiguous().view(target), x)


def test_view_and_reshape_refuse_a_wrong_number_of_elements():
    x = randn((2, 3), 0)
    for fn in (lambda t: t.view(4), lambda t: t.reshape(4, 2), lambda t: t.view(-1, 4)):
        message = str(raises_like_torch(fn, x))
        assert "6 elements" in message and "(2, 3)" in message


@pytest.mark.parametrize(
    "call",
    [lambda t: t.view(), lambda t: t.permute(), lambda t: t.view("a"), lambda t: t.view(2.0, 3)],
)
def test_missing_or_wrong_sizes_are_a_type_error_like_torch(call):
    raises_like_torch(call, randn((2, 3), 0))


def test_view_is_not_reshape():
    assert tg.Tensor.view is not tg.Tensor.reshape


@EXAMPLES
@given(case=reshape_cases(), seed=seeds, layout=layouts)
def test_reshape(case, seed, layout):
    shape, target = case
    check_all(lambda t: t.reshape(target), values(shape, seed, layout))
    check_all(
        lambda t: tg.reshape(t, target) if isinstance(t, tg.Tensor) else torch.reshape(t, target),
        randn(shape, seed),
    )


def test_reshape_as_and_expand_as():
    check_all(lambda t: t.reshape_as(torch.zeros(3, 2)), randn((2, 3), 0))
    check_all(lambda t: t.expand_as(torch.zeros(2, 4, 3)), randn((4, 1), 0))


# --- flatten -----------------------------------------------------------------------------------


@st.composite
def flatten_cases(draw):
    shape = draw(shapes(0, 4, min_side=0))
    n = max(len(shape), 1)
    start = draw(st.integers(0, n - 1))
    end = draw(st.integers(start, n - 1))
    if draw(st.booleans()):
        start -= n
    if draw(st.booleans()):
        end -= n
    return shape, start, end


@EXAMPLES
@given(case=flatten_cases(), seed=seeds, layout=layouts)
def test_flatten(case, seed, layout):
    shape, start, end = case
    check_all(lambda t: t.flatten(start, end), values(shape, seed, layout))


def test_flatten_defaults_function_and_0d():
    x = randn((2, 3, 4), 0)
    check_all(lambda t: t.flatten(), x)
    check_all(lambda t: t.flatten(1), x)
    check_all(both(lambda t: tg.flatten(t, 0, 1), lambda t: torch.flatten(t, 0, 1)), x)
    check_all(lambda t: t.flatten(), randn((), 1))  # a 0-d tensor becomes shape (1,)
    y = tg.tensor(x, requires_grad=True)
    assert y.flatten(1, 1) is y  # nothing merged: the tensor itself


@pytest.mark.parametrize("args", [(1, 0), (3,), (0, 2), (-3,)])
def test_flatten_errors_like_torch(args):
    message = str(raises_like_torch(lambda t: t.flatten(*args), randn((2, 3), 0)))
    assert "flatten" in message and ("(2, 3)" in message)


# --- squeeze and unsqueeze ---------------------------------------------------------------------


@st.composite
def squeeze_cases(draw):
    shape = draw(st.lists(st.sampled_from([1, 1, 2, 3, 0]), min_size=0, max_size=4).map(tuple))
    n = max(len(shape), 1)
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        return shape, None
    if kind == "int":
        return shape, draw(st.integers(-n, n - 1))
    dims = draw(st.lists(st.integers(0, n - 1), min_size=0, max_size=n, unique=True))
    return shape, tuple(d - n if draw(st.booleans()) else d for d in dims)


@EXAMPLES
@given(case=squeeze_cases(), seed=seeds)
def test_squeeze(case, seed):
    shape, dim = case
    fn = (lambda t: t.squeeze()) if dim is None else (lambda t: t.squeeze(dim))
    check_all(fn, randn(shape, seed))


def test_squeeze_function_list_dims_and_strided():
    x = strided((1, 3, 1), 0)
    check_all(both(lambda t: tg.squeeze(t, [0, -1]), lambda t: torch.squeeze(t, (0, -1))), x)
    check_all(lambda t: t.squeeze(1), x)  # size 3: kept, as torch


@pytest.mark.parametrize("dim", [3, -4, (0, 0), (0, 5)])
def test_squeeze_errors_like_torch(dim):
    message = str(raises_like_torch(lambda t: t.squeeze(dim), randn((1, 2, 1), 0)))
    assert "squeeze" in message.lower()


@EXAMPLES
@given(shape=shapes(0, 3, min_side=0), seed=seeds, data=st.data())
def test_unsqueeze(shape, seed, data):
    n = len(shape) + 1
    dim = data.draw(st.integers(-n, n - 1))
    check_all(lambda t: t.unsqueeze(dim), randn(shape, seed))
    check_all(
        both(lambda t: tg.unsqueeze(t, dim), lambda t: torch.unsqueeze(t, dim)),
        strided(shape, seed),
    )


@pytest.mark.parametrize("dim", [3, -4])
def test_unsqueeze_errors_like_torch(dim):
    message = str(raises_like_torch(lambda t: t.unsqueeze(dim), randn((2, 3), 0)))
    assert "[-3, 2]" in message


# --- permute, movedim, transpose ----------------------------------------------------------------


@st.composite
def permute_cases(draw):
    shape = draw(shapes(0, 4, min_side=0))
    order = draw(st.permutations(range(len(shape))))
    return shape, tuple(d - len(shape) if draw(st.booleans()) else d for d in order)


@EXAMPLES
@given(case=permute_cases(), seed=seeds, layout=layouts, as_varargs=st.booleans())
def test_permute(case, seed, layout, as_varargs):
    shape, order = case
    x = values(shape, seed, layout)
    if as_varargs and order:
        check_all(lambda t: t.permute(*order), x)
    else:
        check_all(lambda t: t.permute(order), x)


@pytest.mark.parametrize("order", [(0,), (0, 0), (0, 2), (0, 1, 2)])
def test_permute_errors_like_torch(order):
    message = str(raises_like_torch(lambda t: t.permute(order), randn((2, 3), 0)))
    assert "permute" in message.lower() and "(2, 3)" in message


@st.composite
def movedim_cases(draw):
    shape = draw(shapes(1, 4))
    n = len(shape)
    k = draw(st.integers(1, n))
    source = draw(
        st.lists(st.integers(-n, n - 1), min_size=k, max_size=k, unique_by=lambda d: d % n)
    )
    destination = draw(
        st.lists(st.integers(-n, n - 1), min_size=k, max_size=k, unique_by=lambda d: d % n)
    )
    if k == 1 and draw(st.booleans()):
        return shape, source[0], destination[0]
    return shape, tuple(source), tuple(destination)


@EXAMPLES
@given(case=movedim_cases(), seed=seeds)
def test_movedim(case, seed):
    shape, source, destination = case
    check_all(lambda t: t.movedim(source, destination), randn(shape, seed))


def test_movedim_function_and_aliases():
    x = randn((2, 3, 4), 0)
    check_all(both(lambda t: tg.movedim(t, 0, -1), lambda t: torch.movedim(t, 0, -1)), x)
    check_all(lambda t: t.moveaxis([0, 1], [2, 0]), x)
    check_all(lambda t: t.swapaxes(0, 2), x)
    check_all(lambda t: t.swapdims(-1, 1), x)


@pytest.mark.parametrize(
    "source, destination", [((0, 0), (0, 1)), (2, 0), ((0, 1), (0,)), ((0, 1), 0)]
)
def test_movedim_errors_like_torch(source, destination):
    raises_like_torch(lambda t: t.movedim(source, destination), randn((2, 3), 0))


@st.composite
def transpose_cases(draw):
    shape = draw(shapes(0, 4, min_side=0))
    n = max(len(shape), 1)
    return shape, draw(st.integers(-n, n - 1)), draw(st.integers(-n, n - 1))


@EXAMPLES
@given(case=transpose_cases(), seed=seeds, layout=layouts)
def test_transpose_any_two_dims(case, seed, layout):
    shape, d0, d1 = case
    check_all(lambda t: t.transpose(d0, d1), values(shape, seed, layout))


@pytest.mark.parametrize("dims", [(0, 2), (-3, 0)])
def test_transpose_errors_like_torch(dims):
    message = str(raises_like_torch(lambda t: t.transpose(*dims), randn((2, 3), 0)))
    assert "[-2, 1]" in message


# --- expand -------------------------------------------------------------------------------------


@st.composite
def expand_cases(draw):
    shape = draw(st.lists(st.sampled_from([1, 1, 2, 3]), min_size=0, max_size=3).map(tuple))
    sizes = []
    for size in shape:
        if size == 1:
            sizes.append(draw(st.sampled_from([1, 3, -1, 0])))
        else:
            sizes.append(draw(st.sampled_from([size, -1])))
    lead = draw(st.lists(st.integers(1, 3), max_size=2))
    return shape, tuple(lead) + tuple(sizes)


@EXAMPLES
@given(case=expand_cases(), seed=seeds, as_varargs=st.booleans())
def test_expand(case, seed, as_varargs):
    shape, sizes = case
    if as_varargs and sizes:
        check_all(lambda t: t.expand(*sizes), randn(shape, seed))
    else:
        check_all(lambda t: t.expand(sizes), randn(shape, seed))


@pytest.mark.parametrize("sizes", [(3, 3), (-1, 2, 3), (3,)])
def test_expand_errors_like_torch(sizes):
    message = str(raises_like_torch(lambda t: t.expand(*sizes), randn((2, 3), 0)))
    assert "(2, 3)" in message


# --- cat and stack -------------------------------------------------------------------------------


def cat_of(tensors, dim=0):
    return (tg.cat if isinstance(tensors[0], tg.Tensor) else torch.cat)(tensors, dim)


def stack_of(tensors, dim=0):
    return (tg.stack if isinstance(tensors[0], tg.Tensor) else torch.stack)(tensors, dim)


@st.composite
def cat_cases(draw):
    shape = draw(shapes(1, 3))
    n = len(shape)
    dim = draw(st.integers(-n, n - 1))
    count = draw(st.integers(1, 3))
    pieces = []
    for _ in range(count):
        piece = list(shape)
        piece[dim] = draw(st.integers(0, 3))
        pieces.append(tuple(piece))
    requires = draw(st.lists(st.booleans(), min_size=count, max_size=count))
    if not any(requires):
        requires[0] = True
    return pieces, dim, requires


@EXAMPLES
@given(case=cat_cases(), seed=seeds)
def test_cat(case, seed):
    pieces, dim, requires = case
    vals = [randn(shape, seed + i) for i, shape in enumerate(pieces)]
    check_all(lambda *ts: cat_of(list(ts), dim), *vals, requires=requires)


def test_cat_of_strided_inputs_with_a_constant_and_aliases():
    a, b = strided((3, 2), 0), strided((3, 4), 1)
    c = randn((3, 1), 2)  # a plain torch tensor: a constant
    check_all(lambda s, t: cat_of([s, c, t], 1), a, b)
    check_all(lambda s, t: cat_of((s, t, s), -1), a, b)  # the same input twice: grads add
    check_all(both(lambda s: tg.concat([s, s], 0), lambda s: torch.concat([s, s], 0)), a)
    check_all(both(lambda s: tg.concatenate([s], 1), lambda s: torch.concatenate([s], 1)), a)


def test_cat_skips_1d_empty_tensors_like_torch():
    a, e = randn((2, 3), 0), randn((0,), 1)
    check_all(lambda s, t: cat_of([s, t, s], 0), a, e)
    check_all(lambda s, t: cat_of([t, s], 1), a, e)


@pytest.mark.parametrize(
    "make, kind",
    [
        (lambda: [], ValueError),
        (lambda: [randn((2, 3), 0), randn((3, 3), 1)], None),  # fine along dim 0
        (lambda: [randn((2, 3), 0), randn((2, 2), 1)], RuntimeError),
        (lambda: [randn((2, 3), 0), randn((3,), 1)], RuntimeError),
        (lambda: [randn((), 0), randn((), 1)], RuntimeError),
    ],
)
def test_cat_errors_like_torch(make, kind):
    vals = make()
    if kind is None:
        torch.cat(vals)
        tg.cat([tg.tensor(v) for v in vals])
        return
    with pytest.raises(kind):
        torch.cat(vals)
    with pytest.raises(kind) as ours:
        tg.cat([tg.tensor(v, requires_grad=True) for v in vals])
    if vals:
        message = str(ours.value)
        assert message.startswith("cat(): ") and str(tuple(vals[0].shape)) in message
        assert "broadcast" not in message


def test_cat_errors_on_dims_arguments_and_dtypes():
    x = randn((2, 3), 0)
    with pytest.raises(IndexError):
        torch.cat([x, x], 2)
    with pytest.raises(IndexError, match=r"\[-2, 1\]"):
        tg.cat([tg.tensor(x), tg.tensor(x)], 2)
    with pytest.raises(TypeError):
        torch.cat(x)
    with pytest.raises(TypeError, match="list or tuple"):
        tg.cat(tg.tensor(x))
    with pytest.raises(TypeError):
        torch.cat([x, 1])
    with pytest.raises(TypeError, match="element 1 is a int"):
        tg.cat([tg.tensor(x), 1])
    # tapegrad does not promote float32 with float64 (torch would): TypeError, caught as
    # RuntimeError too
    with pytest.raises(RuntimeError, match="float32"):
        tg.cat([tg.tensor(x, requires_grad=True), tg.tensor(x.float())])


@st.composite
def stack_cases(draw):
    shape = draw(shapes(0, 3, min_side=0))
    n = len(shape) + 1
    count = draw(st.integers(1, 3))
    requires = draw(st.lists(st.booleans(), min_size=count, max_size=count))
    if not any(requires):
        requires[-1] = True
    return shape, draw(st.integers(-n, n - 1)), count, requires


@EXAMPLES
@given(case=stack_cases(), seed=seeds, layout=layouts)
def test_stack(case, seed, layout):
    shape, dim, count, requires = case
    vals = [values(shape, seed + i, layout) for i in range(count)]
    check_all(lambda *ts: stack_of(list(ts), dim), *vals, requires=requires)


@pytest.mark.parametrize(
    "make, dim",
    [
        (lambda: [], 0),
        (lambda: [randn((2, 3), 0), randn((3, 3), 1)], 0),
        (lambda: [randn((2, 3), 0)] * 2, 3),
        (lambda: [randn((2, 3), 0)] * 2, -4),
    ],
)
def test_stack_errors_like_torch(make, dim):
    vals = make()
    with pytest.raises(Exception) as theirs:
        torch.stack(vals, dim)
    with pytest.raises(theirs.type):
        tg.stack([tg.tensor(v, requires_grad=True) for v in vals], dim)


# --- split, chunk, unbind, narrow, select -----------------------------------------------------


def weighted(pieces):
    """A loss that treats each piece differently (squared, so the second derivative is not zero)."""
    assert pieces, "no pieces: the loss would not depend on the input"
    total = 0.0
    for i, piece in enumerate(pieces):
        total = total + (piece * piece * (i + 1.0)).sum() + piece.sum() * (i - 0.5)
    return total


@st.composite
def split_cases(draw):
    shape = draw(shapes(1, 3, min_side=0, max_side=5))
    n = len(shape)
    dim = draw(st.integers(-n, n - 1))
    length = shape[dim]
    if draw(st.booleans()):
        size = draw(st.integers(1, 6)) if length else draw(st.integers(0, 3))
        return shape, dim, size
    sizes = []
    left = length
    while left:
        take = draw(st.integers(0, left))
        sizes.append(take)
        left -= take
    if not sizes or draw(st.booleans()):
        sizes.append(0)
    return shape, dim, sizes


@EXAMPLES
@given(case=split_cases(), seed=seeds, layout=layouts)
def test_split(case, seed, layout):
    shape, dim, sizes = case
    x = values(shape, seed, layout)
    check_all(lambda t: weighted(t.split(sizes, dim)), x)
    check_all(
        both(
            lambda t: weighted(tg.split(t, sizes, dim)),
            lambda t: weighted(torch.split(t, sizes, dim)),
        ),
        x,
    )
    for position in range(len(torch.split(x, sizes, dim))):
        check_all(lambda t: t.split(sizes, dim)[position], x)  # one piece: zeros elsewhere


@EXAMPLES
@given(
    shape=shapes(1, 3, min_side=0, max_side=6), seed=seeds, chunks=st.integers(1, 7), data=st.data()
)
def test_chunk(shape, seed, chunks, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = randn(shape, seed)
    assert [p.shape for p in tg.tensor(x).chunk(chunks, dim)] == [
        p.shape for p in x.chunk(chunks, dim)
    ]
    check_all(lambda t: weighted(t.chunk(chunks, dim)), x)
    check_all(
        both(
            lambda t: weighted(tg.chunk(t, chunks, dim)),
            lambda t: weighted(torch.chunk(t, chunks, dim)),
        ),
        x,
    )


@EXAMPLES
@given(shape=shapes(1, 3, min_side=0), seed=seeds, data=st.data())
def test_unbind(shape, seed, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = strided(shape, seed)
    assert len(tg.tensor(x).unbind(dim)) == shape[dim]
    if not shape[dim]:
        return
    check_all(lambda t: weighted(t.unbind(dim)), x)
    check_all(
        both(lambda t: weighted(tg.unbind(t, dim)), lambda t: weighted(torch.unbind(t, dim))), x
    )


def test_pieces_are_views_and_their_gradients_add_up():
    x = tg.tensor(torch.arange(6.0, dtype=torch.float64), requires_grad=True)
    a, b, c = x.split([1, 2, 3])
    assert b.data.data_ptr() == x.data.data_ptr() + 8
    assert [n.node.op.__name__ for n in (a, b, c)] == ["GetItem"] * 3
    (a.sum() * 1 + b.sum() * 2 + c.sum() * 3).backward()
    assert x.grad.tolist() == [1.0, 2.0, 2.0, 3.0, 3.0, 3.0]


@pytest.mark.parametrize(
    "fn",
    [
        lambda t: t.split([1, 1], 1),
        lambda t: t.split(-1),
        lambda t: t.split(0),
        lambda t: t.split(1, 2),
        lambda t: t.split([3, -1], 1),
        lambda t: t.chunk(0),
        lambda t: t.chunk(1, -3),
        lambda t: t.unbind(2),
        lambda t: t.narrow(0, 3, 0),
        lambda t: t.narrow(1, 1, 5),
        lambda t: t.narrow(0, 0, -1),
        lambda t: t.narrow(2, 0, 1),
        lambda t: t.select(0, 2),
        lambda t: t.select(2, 0),
    ],
)
def test_split_chunk_unbind_narrow_select_errors_like_torch(fn):
    raises_like_torch(fn, randn((2, 3), 0))


@pytest.mark.parametrize(
    "fn",
    [
        lambda t: t.split(1),
        lambda t: t.chunk(1),
        lambda t: t.unbind(0),
        lambda t: t.narrow(0, 0, 1),
        lambda t: t.select(0, 0),
    ],
)
def test_cutting_a_0d_tensor_errors_like_torch(fn):
    raises_like_torch(fn, randn((), 0))


@EXAMPLES
@given(shape=shapes(1, 3, min_side=0), seed=seeds, data=st.data())
def test_narrow_and_select(shape, seed, data):
    n = len(shape)
    dim = data.draw(st.integers(-n, n - 1))
    size = shape[dim]
    start = data.draw(st.integers(-size, size))
    length = data.draw(st.integers(0, size - (start % size if size and start < size else size)))
    x = strided(shape, seed)
    check_all(lambda t: t.narrow(dim, start, length), x)
    if size:
        index = data.draw(st.integers(-size, size - 1))
        check_all(lambda t: t.select(dim, index), x)


# --- clone, contiguous, detach -----------------------------------------------------------------


@EXAMPLES
@given(shape=shapes(0, 3, min_side=0), seed=seeds, layout=layouts)
def test_clone_and_contiguous(shape, seed, layout):
    x = values(shape, seed, layout)
    check_all(lambda t: t.clone(), x)
    check_all(lambda t: t.contiguous() * 1.0, x)
    check_all(both(lambda t: tg.clone(t), lambda t: torch.clone(t)), x)


def test_clone_copies_and_keeps_the_layout_like_torch():
    x = tg.tensor(strided((3, 4), 0), requires_grad=True)
    y = x.clone()
    assert y.data.data_ptr() != x.data.data_ptr() and y.node.op is tg.ops.Clone
    assert y.stride() == x.data.clone().stride()  # preserve_format, as torch
    assert x.clone(memory_format=torch.contiguous_format).is_contiguous()


def test_contiguous_records_only_a_copy():
    x = tg.tensor(randn((3, 4), 0), requires_grad=True)
    assert x.contiguous() is x  # already contiguous: itself, as torch
    t = x.t()
    assert not t.is_contiguous()
    c = t.contiguous()
    assert c.is_contiguous() and c.node.op is tg.ops.Contiguous and c.stride() == (3, 1)
    assert c.data.data_ptr() != x.data.data_ptr()
    (c * c).sum().backward()
    torch.testing.assert_close(x.grad, 2 * x.data)


def test_detach_shares_memory_and_is_cut_from_the_tape():
    x = tg.tensor(randn((3,), 0), requires_grad=True)
    y = x * 2
    d = y.detach()
    assert d.is_leaf and not d.requires_grad and d.node is None and d.tape is None
    assert d.data.data_ptr() == y.data.data_ptr()
    with tg.no_grad():
        d[0] = 100.0  # shares memory: y sees it (as torch)
    assert y.data[0].item() == 100.0
    (y.sum() + (d * x).sum()).backward()  # no gradient flows through d to y's tape
    torch.testing.assert_close(x.grad, 2 + d.data)


# --- second order through each op, and one gradgradcheck per op ------------------------------

GRADGRAD = {
    "view": lambda t: t.view(6, 2) * t.reshape(6, 2),
    "reshape": lambda t: t.reshape(-1) ** 2,
    "flatten": lambda t: t.flatten() * t.flatten(),
    "squeeze": lambda t: t.unsqueeze(0).squeeze(0) ** 3,
    "unsqueeze": lambda t: t.unsqueeze(1) * t,
    "permute": lambda t: t.permute(1, 0, 2) * t.permute(1, 0, 2),
    "movedim": lambda t: t.movedim(0, 2).tanh() * t.movedim(0, 2),
    "transpose": lambda t: t.transpose(0, -1) ** 2,
    "expand": lambda t: t[:, :1].expand(2, 3, 2) * t,
    "cat": lambda t: cat_of([t, t * t], 1).tanh(),
    "stack": lambda t: stack_of([t, t * t], -1).tanh(),
    "split": lambda t: weighted(t.split([1, 2], 1)),
    "chunk": lambda t: weighted(t.chunk(2, -1)),
    "unbind": lambda t: weighted(t.unbind(2)),
    "narrow": lambda t: t.narrow(1, 1, 2) ** 2,
    "select": lambda t: t.select(1, 1) ** 2,
    "clone": lambda t: t.clone() * t,
    "contiguous": lambda t: t.transpose(0, 1).contiguous() ** 2,
}


@pytest.mark.parametrize("name", GRADGRAD)
def test_second_derivative_and_gradgradcheck(name):
    x = randn((2, 3, 2), 0)
    check_all(GRADGRAD[name], x)
    gradgrad(GRADGRAD[name], x)


@pytest.mark.parametrize("name", GRADGRAD)
def test_float32_matches_torch(name):
    check_against_torch(
        GRADGRAD[name], randn((2, 3, 2), 1, dtype=torch.float32), rtol=1e-5, atol=1e-5
    )


def test_gradgradcheck_of_cat_stack_with_two_inputs():
    a, b = randn((2, 3), 0), randn((1, 3), 1)
    assert tg.gradgradcheck(
        lambda s, t: tg.cat([s * t, t], 0).tanh(),
        tg.Tensor(a.clone(), requires_grad=True),
        tg.Tensor(b.clone(), requires_grad=True),
    )
    assert tg.gradgradcheck(
        lambda s, t: tg.stack([s, s * t.expand(2, 3)], 1).tanh(),
        tg.Tensor(a.clone(), requires_grad=True),
        tg.Tensor(b.clone(), requires_grad=True),
    )


# --- the teaching tools --------------------------------------------------------------------------

NEW_OPS = ["View", "Squeeze", "Permute", "Clone", "Contiguous", "Cat", "Stack"]


def shape_ops_loss(a, b):
    """A scalar that records every op of this file onto the current tape (a: (3, 4), b: (4,))."""
    v = a.view(2, 6).view(3, 4)  # View
    s = a.unsqueeze(0).squeeze(0)  # Unsqueeze, Squeeze
    p = a.reshape(3, 2, 2).permute(2, 0, 1).movedim(0, -1)  # Reshape, Permute x2
    c = a.t().contiguous().clone()  # Transpose, Contiguous, Clone
    j = tg.cat([v, s * b], 1)  # Cat (and Mul)
    k = tg.stack([a, b.expand(3, 4)], 0)  # Stack, Expand
    pieces = j.split([3, 5], 1) + k.chunk(2, 2) + a.unbind(1)  # GetItem, one per piece
    total = (p.flatten() * p.flatten()).sum() + (c * c).sum()  # flatten: Reshape
    for i, piece in enumerate(pieces):
        total = total + (piece * piece).sum() * (i + 1)
    return total


def test_the_teaching_tools_show_every_new_op():
    g = torch.Generator().manual_seed(0)
    a = tg.Tensor(torch.randn(3, 4, generator=g, dtype=torch.float64), requires_grad=True)
    b = tg.Tensor(torch.randn(4, generator=g, dtype=torch.float64), requires_grad=True)
    with tg.Tape() as tape:
        loss = shape_ops_loss(a, b)
    names = {node.name for node in tape}
    assert set(NEW_OPS) <= names
    report = tg.check_tape(loss)
    assert report, str(report)
    assert set(NEW_OPS) <= {row.name for row in report.rows}
    text = str(tape)
    for name in NEW_OPS:
        assert f" = {name}(" in text, name
    steps = list(tg.backward_steps(loss, retain_graph=True))
    stepped = {step.node.name for step in steps}
    assert set(NEW_OPS) <= stepped
    for step in steps:
        assert step.rule.startswith("dL/d"), step.node.name
    out = io.StringIO()
    tg.explain(loss, retain_graph=True, file=out)
    for name in NEW_OPS:
        assert f" = {name}(" in out.getvalue(), name
    source = visualize.to_dot(tape).source
    for name in NEW_OPS:
        assert name in source, name


def test_new_ops_state_their_maths():
    for name in NEW_OPS:
        op = getattr(tg.ops, name)
        assert derivative_rule(op).startswith("dL/d"), name
        assert op.__doc__.lstrip().startswith("y = "), name


def test_a_create_graph_sweep_through_every_new_op_matches_finite_differences():
    g = torch.Generator().manual_seed(1)
    a = tg.Tensor(torch.randn(3, 4, generator=g, dtype=torch.float64), requires_grad=True)
    b = tg.Tensor(torch.randn(4, generator=g, dtype=torch.float64), requires_grad=True)
    assert tg.gradgradcheck(shape_ops_loss, a, b)
