"""Creation functions and conversions against torch: values, dtypes, devices, requires_grad, errors.

zeros ones full empty rand randn arange linspace eye and the *_like ones;
.numpy() .tolist() .float() .double() .to(...) .cpu() .cuda() len().
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tapegrad as tg

from helpers import check_against_torch, check_both, check_second_order, randn, shapes

EXAMPLES = settings(max_examples=25, deadline=None)
DTYPES = [None, torch.float32, torch.float64, torch.int64, torch.bool]


def same(ours, theirs):
    assert isinstance(ours, tg.Tensor) and ours.is_leaf and ours.node is None
    assert (
        ours.shape == theirs.shape and ours.dtype == theirs.dtype and ours.device == theirs.device
    )
    torch.testing.assert_close(ours.data, theirs, equal_nan=True)


# --- filled with one value ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["zeros", "ones", "empty"])
@EXAMPLES
@given(
    shape=shapes(0, 4, min_side=0),
    dtype=st.sampled_from(DTYPES),
    form=st.sampled_from(["varargs", "tuple", "list", "size"]),
)
def test_sized_factories(name, shape, dtype, form):
    args = {
        "varargs": shape or (shape,),
        "tuple": (shape,),
        "list": (list(shape),),
        "size": (torch.Size(shape),),
    }[form]
    ours = getattr(tg, name)(*args, dtype=dtype)
    theirs = getattr(torch, name)(*args, dtype=dtype)
    if name == "empty":
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    else:
        same(ours, theirs)
    assert not ours.requires_grad


@pytest.mark.parametrize("name", ["zeros", "ones", "empty", "rand", "randn"])
def test_requires_grad_device_and_default_dtype(name):
    x = getattr(tg, name)(2, 3, requires_grad=True)
    assert x.requires_grad and x.is_leaf and x.dtype == torch.get_default_dtype()
    assert x.device == torch.device("cpu")
    assert getattr(tg, name)(2, device="cpu", dtype=torch.float64).dtype == torch.float64
    (x * 2).sum().backward()
    assert torch.equal(x.grad, torch.full((2, 3), 2.0))


@pytest.mark.parametrize("value, dtype", [(1.5, None), (1, None), (True, None), (2, torch.float64)])
def test_full_follows_torch_dtype_rule(value, dtype):
    same(tg.full((2, 3), value, dtype=dtype), torch.full((2, 3), value, dtype=dtype))
    same(tg.full([], value, dtype=dtype), torch.full([], value, dtype=dtype))
    x = tg.full((2,), 1.5, requires_grad=True)
    assert x.requires_grad


def test_eye_arange_linspace():
    same(tg.eye(3), torch.eye(3))
    same(tg.eye(2, 4, dtype=torch.float64), torch.eye(2, 4, dtype=torch.float64))
    same(tg.arange(5), torch.arange(5))
    same(tg.arange(1, 7, 2), torch.arange(1, 7, 2))
    same(tg.arange(0.0, 1.0, 0.25), torch.arange(0.0, 1.0, 0.25))
    same(tg.arange(4, dtype=torch.float64), torch.arange(4, dtype=torch.float64))
    same(tg.arange(start=2, end=5), torch.arange(start=2, end=5))
    same(tg.linspace(0, 1, 5), torch.linspace(0, 1, 5))
    same(tg.linspace(-1, 1, 1, dtype=torch.float64), torch.linspace(-1, 1, 1, dtype=torch.float64))
    t = tg.linspace(0, 1, 3, requires_grad=True)
    assert t.requires_grad and tg.eye(2, requires_grad=True).requires_grad


def test_random_factories_follow_their_generator_like_torch():
    for name in ("rand", "randn"):
        ours = getattr(tg, name)(
            3, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64
        )
        theirs = getattr(torch, name)(
            3, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64
        )
        same(ours, theirs)
        torch.manual_seed(5)
        a = getattr(tg, name)((4,))
        torch.manual_seed(5)
        same(a, getattr(torch, name)((4,)))
    assert 0 <= tg.rand(1000).data.min() and tg.rand(1000).data.max() < 1


# --- shaped like another tensor --------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["zeros_like", "ones_like", "empty_like", "rand_like", "randn_like"]
)
@pytest.mark.parametrize("dtype", [None, torch.float64])
def test_like_factories(name, dtype):
    base = randn((2, 3), 0, dtype=torch.float32).t()
    for source in (base, tg.tensor(base, requires_grad=True)):
        ours = getattr(tg, name)(source, dtype=dtype)
        theirs = getattr(torch, name)(base, dtype=dtype)
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
        assert ours.stride() == theirs.stride()  # preserve_format, as torch
        assert not ours.requires_grad and ours.is_leaf
        if name in ("zeros_like", "ones_like"):
            same(ours, theirs)
    assert getattr(tg, name)(base, requires_grad=True).requires_grad


def test_full_like_and_the_generator_of_random_like():
    base = tg.tensor(randn((2, 3), 0), requires_grad=True)
    same(tg.full_like(base, 7), torch.full_like(base.data, 7))
    same(tg.full_like(base, 2, dtype=torch.int64), torch.full_like(base.data, 2, dtype=torch.int64))
    for name in ("rand_like", "randn_like"):
        ours = getattr(tg, name)(base, generator=torch.Generator().manual_seed(1))
        same(ours, getattr(torch, name)(base.data, generator=torch.Generator().manual_seed(1)))


# --- errors: torch's types, tapegrad's messages -------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.zeros(-1),
        lambda m: m.zeros(),
        lambda m: m.rand(dtype=torch.float64),
        lambda m: m.ones(2, -3),
        lambda m: m.zeros(2.5),
        lambda m: m.rand("3"),
        lambda m: m.full(2, 1.0),
        lambda m: m.arange(0, 5, 0),
        lambda m: m.linspace(0, 1, -1),
        lambda m: m.eye(-1),
        lambda m: m.zeros(2, dtype=torch.int64, requires_grad=True),
        lambda m: m.full((2,), 1, requires_grad=True),
        lambda m: m.arange(3, requires_grad=True),
        lambda m: m.zeros_like([1.0, 2.0]),
    ],
)
def test_factory_errors_like_torch(call):
    with pytest.raises(Exception) as theirs:
        call(torch)
    with pytest.raises(theirs.type) as ours:
        call(tg)
    assert "tapegrad." in str(ours.value)


def test_integer_dtype_with_requires_grad_names_the_fix():
    with pytest.raises(RuntimeError, match="dtype=torch.float32"):
        tg.zeros(2, dtype=torch.int64, requires_grad=True)


# --- conversions -----------------------------------------------------------------------------


def test_to_returns_itself_when_nothing_changes_like_torch():
    x = tg.tensor(randn((2, 3), 0, dtype=torch.float32), requires_grad=True)
    for same_target in [
        (torch.float32,),
        ("cpu",),
        (torch.device("cpu"),),
        ("cpu", torch.float32),
        (tg.zeros(1),),
        (torch.zeros(1),),
        (),
    ]:
        assert (
            x.to(*same_target) is x
            and x.data.to(*[getattr(t, "data", t) for t in same_target]) is x.data
        )
    assert x.to(dtype=torch.float32, device="cpu") is x
    assert x.float() is x and x.cpu() is x
    y = x.to(torch.float32, copy=True)
    assert y is not x and y.node.op is tg.ops.To and y.data.data_ptr() != x.data.data_ptr()


@pytest.mark.parametrize(
    "call",
    [
        lambda t: t.to(torch.float64),
        lambda t: t.to(dtype=torch.float64),
        lambda t: t.double(),
        lambda t: t.to("cpu", torch.float64),
        lambda t: t.to(None, torch.float64),
        lambda t: t.to(torch.zeros(1, dtype=torch.float64)),
        lambda t: t.to(tg.zeros(1, dtype=torch.float64)),
        lambda t: t.to(torch.float64, non_blocking=True),
        lambda t: t.to(torch.float64, False, True),
    ],
)
def test_to_another_dtype_is_recorded_and_differentiable(call):
    x = randn((2, 3), 0, dtype=torch.float32)
    check_against_torch(
        lambda t: (call(t) if isinstance(t, tg.Tensor) else t.double()) ** 2,
        x,
        rtol=1e-6,
        atol=1e-6,
    )
    ours = call(tg.tensor(x, requires_grad=True))
    assert ours.dtype == torch.float64 and ours.node.op is tg.ops.To


def test_float_double_second_order_and_gradgradcheck():
    # through float32 the values round: torch's references, and finite differences with a large eps
    for fn in (
        lambda t: t.float().double() * t,
        lambda t: (t.to(torch.float32) ** 2).to(torch.float64),
    ):
        check_against_torch(fn, randn((3,), 0), rtol=1e-6, atol=1e-6)
        check_second_order(fn, randn((2, 2), 1), rtol=1e-6, atol=1e-6)
    x = tg.Tensor(randn((3,), 2), requires_grad=True)
    assert tg.gradgradcheck(lambda t: t.float().double() ** 3, x, eps=1e-3, atol=1e-2, rtol=1e-2)
    check_both(lambda t: t.to(torch.float64, copy=True) ** 3, randn((3,), 3))  # no rounding


def test_to_an_integer_dtype_has_no_gradient_like_torch():
    x = tg.tensor(randn((3,), 0) * 3, requires_grad=True)
    for target in (torch.int64, torch.bool):
        y = x.to(target)
        assert not y.requires_grad and y.is_leaf and torch.equal(y.data, x.data.to(target))
        assert torch.tensor([1.0], requires_grad=True).to(target).requires_grad is False


def test_to_memory_format_and_the_printed_node():
    x = tg.tensor(torch.randn(2, 3, 4, 5), requires_grad=True)
    y = x.to(memory_format=torch.channels_last)
    assert y is not x and y.is_contiguous(memory_format=torch.channels_last)
    with tg.Tape() as tape:
        x.double()
    assert "To(leaf(2, 3, 4, 5), dtype=torch.float64)" in str(tape)


@pytest.mark.parametrize(
    "call",
    [
        lambda t: t.to("cpu", "float"),
        lambda t: t.to(torch.float64, bogus=1),
        lambda t: t.to("nowhere"),
        lambda t: t.to(torch.float64, dtype=torch.float32),
        lambda t: t.to(torch.float64, False, False, torch.preserve_format, 1),
    ],
)
def test_to_refuses_what_torch_refuses(call):
    x = randn((2,), 0)
    with pytest.raises(Exception) as theirs:
        call(x)
    with pytest.raises((theirs.type, TypeError)):
        call(tg.tensor(x, requires_grad=True))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_cuda_without_cuda_raises_torchs_error_with_a_fix():
    x = tg.tensor(randn((2,), 0), requires_grad=True)
    for call in (
        lambda t: t.cuda(),
        lambda t: t.to("cuda"),
        lambda t: t.cuda(0),
        lambda t: t.to("cuda:0", torch.float64),
    ):
        with pytest.raises(Exception) as theirs:
            call(x.data)
        with pytest.raises(theirs.type, match="torch.cuda.is_available"):
            call(x)


@pytest.mark.cuda
def test_cuda_round_trip_keeps_the_gradient_on_the_cpu():
    x = tg.tensor(randn((2, 3), 0), requires_grad=True)
    y = x.cuda()
    assert y.device.type == "cuda" and y.cuda() is y and y.to("cuda") is y
    (y.cpu() * y.cpu()).sum().backward()
    assert x.grad.device.type == "cpu"
    torch.testing.assert_close(x.grad, 2 * x.data)
    z = tg.zeros(2, device="cuda")
    assert z.device.type == "cuda" and tg.zeros_like(y).device == y.device


def test_numpy_refuses_requires_grad_like_torch_and_shares_memory():
    x = tg.tensor(randn((2, 3), 0), requires_grad=True)
    with pytest.raises(RuntimeError):
        x.data.clone().requires_grad_().numpy()
    with pytest.raises(RuntimeError, match=r"detach\(\)\.numpy\(\)"):
        x.numpy()
    a = x.detach().numpy()
    assert isinstance(a, np.ndarray) and a.dtype == np.float64
    a[0, 0] = 42.0
    assert x.data[0, 0].item() == 42.0  # shares memory, as torch
    b = x.numpy(force=True)
    assert b[0, 0] == 42.0
    assert (x * 2).numpy(force=True)[0, 0] == 84.0


def test_tolist_and_item_work_on_tensors_that_require_grad():
    x = tg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    assert x.tolist() == [[1.0, 2.0], [3.0, 4.0]] == torch.tensor([[1.0, 2.0], [3.0, 4.0]]).tolist()
    assert (x * 2).tolist()[1] == [6.0, 8.0]
    assert tg.tensor(3.0).tolist() == 3.0 and x[0, 1].item() == 2.0


def test_len_is_the_first_dimension():
    assert len(tg.zeros(4, 2)) == len(torch.zeros(4, 2)) == 4
    assert len(tg.zeros(0)) == 0
    with pytest.raises(TypeError):
        len(torch.tensor(1.0))
    with pytest.raises(TypeError, match="numel"):
        len(tg.tensor(1.0))


def test_functions_are_exported_like_torch():
    for name in [
        "zeros",
        "ones",
        "full",
        "empty",
        "rand",
        "randn",
        "arange",
        "linspace",
        "eye",
        "zeros_like",
        "ones_like",
        "full_like",
        "rand_like",
        "randn_like",
        "empty_like",
        "cat",
        "stack",
        "split",
        "chunk",
        "unbind",
        "flatten",
        "squeeze",
        "unsqueeze",
        "permute",
        "movedim",
        "transpose",
        "reshape",
        "clone",
    ]:
        assert name in tg.__all__ and callable(getattr(tg, name)) and hasattr(torch, name), name
