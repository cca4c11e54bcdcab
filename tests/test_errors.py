"""Bad input and misuse: each mistake raises an error that says what, where and how to fix it.

One test per item of issue 7 (shapes, dtypes, devices, non-tensor inputs,
integer tensors, misuse of backward(), optimizer arguments). Each test
checks the error's type and that its message names the op or layer and
the shapes or dtypes involved, and, where state could be touched, that
nothing was half-changed. Stale tapes, anomaly mode, checkpoints, threads,
optimizer arguments (test_optim_errors.py) and the fuzz test have files of
their own.
"""

import pytest
import torch

import tapegrad as tg
from tapegrad import nn, optim


def leaf(*shape, dtype=torch.float32):
    return tg.tensor(torch.randn(*shape, dtype=dtype), requires_grad=True)


# --- shape mismatches --------------------------------------------------------


def test_linear_wrong_number_of_features_names_layer_expected_and_got():
    layer = nn.Linear(2, 3)
    with pytest.raises(ValueError) as info:
        layer(leaf(5, 4))
    message = str(info.value)
    assert "Linear(in_features=2, out_features=3" in message
    assert "expected input with 2 features" in message
    assert "(5, 4)" in message


def test_linear_inside_sequential_names_the_layer_by_its_dotted_name():
    model = nn.Sequential(
        nn.Linear(2, 3), nn.ReLU(), nn.Sequential(nn.Linear(3, 3), nn.Linear(4, 1))
    )
    with pytest.raises(ValueError) as info:
        model(leaf(5, 2))
    assert "in_features=4" in str(info.value) and "(5, 3)" in str(info.value)
    assert info.value.__notes__ == ["  in layer 2.1 of Sequential"]
    assert "2.1" in dict(model.named_modules())  # the name the note uses is a real one


def test_linear_on_a_scalar_is_refused():
    with pytest.raises(ValueError, match=r"Linear.*expected input with 2 features.*shape \(\)"):
        nn.Linear(2, 1)(tg.tensor(1.0))


@pytest.mark.parametrize("left, right", [((3, 4), (3, 2)), ((2, 3, 4), (5, 2)), ((4,), (3,))])
def test_matmul_incompatible_shapes_name_op_and_shapes(left, right):
    with pytest.raises(ValueError) as info:
        leaf(*left) @ leaf(*right)
    message = str(info.value)
    assert message.startswith("MatMul:")
    assert str(left) in message and str(right) in message


def test_matmul_of_a_scalar_is_refused():
    with pytest.raises(ValueError, match=r"MatMul: @ needs operands of at least 1 dimension"):
        leaf(3) @ tg.tensor(2.0)


@pytest.mark.parametrize(
    "op, name",
    [
        (lambda a, b: a + b, "Add"),
        (lambda a, b: a - b, "Sub"),
        (lambda a, b: a * b, "Mul"),
        (lambda a, b: a / b, "Div"),
    ],
)
def test_broadcasting_ops_with_incompatible_shapes_name_op_shapes_and_fix(op, name):
    a, b = leaf(3, 4), leaf(3, 3)
    with pytest.raises(RuntimeError) as info:
        op(a, b)
    message = str(info.value)
    assert message.startswith(f"{name}:")
    assert "shapes (3, 4) and (3, 3) do not broadcast" in message
    assert "reshape" in message
    assert a.tape is None and b.tape is None  # nothing was recorded


def test_broadcasting_shapes_that_do_broadcast_still_work():
    # The control for the test above: (3, 1) against (4,) is valid broadcasting.
    a, b = leaf(3, 1), leaf(4)
    (a * b).sum().backward()
    assert a.grad.shape == (3, 1) and b.grad.shape == (4,)


@pytest.mark.parametrize("loss", [nn.MSELoss(), nn.BCELoss(), nn.LossMSE(reduction="sum")])
def test_loss_refuses_prediction_n1_against_target_n(loss):
    prediction = tg.tensor(torch.rand(5, 1), requires_grad=True)
    target = tg.tensor(torch.rand(5))
    with pytest.raises(ValueError) as info:
        loss(prediction, target)
    message = str(info.value)
    assert type(loss).__name__ in message
    assert "(5, 1)" in message and "(5,)" in message
    assert "reshape" in message


def test_torch_itself_would_silently_broadcast_the_loss():
    # Why the refusal above matters: torch computes a wrong (N, N) loss without a word.
    p, t = torch.rand(5, 1), torch.rand(5)
    with pytest.warns(UserWarning):
        wrong = torch.nn.functional.mse_loss(p, t)
    right = torch.nn.functional.mse_loss(p, t.reshape(5, 1))
    assert not torch.allclose(wrong, right)


# --- dtype and device mismatches ----------------------------------------------


@pytest.mark.parametrize(
    "op, name",
    [
        (lambda a, b: a + b, "Add"),
        (lambda a, b: a * b, "Mul"),
        (lambda a, b: a / b, "Div"),
        (lambda a, b: a @ b, "MatMul"),
    ],
)
def test_dtype_mismatch_between_inputs_of_one_op(op, name):
    a, b = leaf(3, 3), leaf(3, 3, dtype=torch.float64)
    with pytest.raises(TypeError) as info:
        op(a, b)
    message = str(info.value)
    assert message.startswith(f"{name}:")
    assert "torch.float32" in message and "torch.float64" in message
    assert ".float()" in message or ".double()" in message


def test_dtype_mismatch_between_model_and_input_names_layer():
    model = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    with pytest.raises(TypeError) as info:
        model(tg.tensor(torch.randn(4, 2, dtype=torch.float64)))
    message = str(info.value)
    assert "Linear(in_features=2, out_features=3" in message
    assert "torch.float64" in message and "torch.float32" in message
    assert "model.double()" in message
    assert info.value.__notes__ == ["  in layer 0 of Sequential"]
    model.double()  # the fix the message gives works
    assert model(tg.tensor(torch.randn(4, 2, dtype=torch.float64))).dtype == torch.float64


def test_dtype_mismatch_between_prediction_and_target():
    with pytest.raises(
        TypeError,
        match=r"MSELoss: prediction is torch.float32 but target is "
        r"torch.float64",
    ):
        nn.MSELoss()(leaf(4, 1), tg.tensor(torch.rand(4, 1, dtype=torch.float64)))


def test_device_mismatch_between_inputs_names_op_and_devices():
    # torch's "meta" device stands in for a second device on a CPU-only machine.
    a = leaf(3)
    b = tg.tensor(torch.ones(3, device="meta"))
    with pytest.raises(RuntimeError) as info:
        a + b
    message = str(info.value)
    assert message.startswith("Add:")
    assert "different devices (cpu, meta)" in message and ".to(device)" in message


def test_device_mismatch_between_model_and_input_names_layer():
    layer = nn.Linear(4, 2)
    with pytest.raises(RuntimeError) as info:
        layer(tg.tensor(torch.ones(3, 4, device="meta")))
    message = str(info.value)
    assert "Linear(in_features=4, out_features=2" in message
    assert "input is on meta but the weights are on cpu" in message
    assert "model.to(device)" in message


@pytest.mark.cuda
def test_device_mismatch_cuda_between_inputs():
    a = leaf(3)
    b = tg.tensor(torch.ones(3, device="cuda"), requires_grad=True)
    with pytest.raises(RuntimeError) as info:
        a + b
    assert str(info.value).startswith("Add:")
    assert "different devices (cpu, cuda:0)" in str(info.value)


@pytest.mark.cuda
def test_device_mismatch_cuda_between_model_and_input():
    layer = nn.Linear(4, 2)
    with pytest.raises(
        RuntimeError,
        match=r"Linear\(in_features=4.*input is on cuda:0 but the "
        r"weights are on cpu",
    ):
        layer(tg.tensor(torch.ones(3, 4, device="cuda")))


# --- non-tensor and non-numeric inputs ----------------------------------------


@pytest.mark.parametrize("bad", ["1.0", None, [1.0, 2.0, 3.0], {"a": 1}])
def test_non_numeric_operand_of_arithmetic(bad):
    x = leaf(3)
    with pytest.raises(TypeError) as info:
        x + bad
    message = str(info.value)
    assert message.startswith("Add:")
    assert f"an input is a {type(bad).__name__}" in message
    assert "tapegrad.tensor(...)" in message


def test_list_operand_of_matmul_is_a_type_error_naming_the_op():
    with pytest.raises(TypeError, match=r"(?s)MatMul: .*an input is a list.*tapegrad.tensor"):
        leaf(3, 2) @ [[1.0], [2.0]]


@pytest.mark.parametrize("bad", ["x", None, [[1.0, 2.0]], 3.0])
def test_linear_refuses_non_tensor_input(bad):
    with pytest.raises(
        TypeError,
        match=r"Linear\(in_features=2, out_features=1, bias=True\) takes "
        rf"a tensor, got {type(bad).__name__}",
    ):
        nn.Linear(2, 1)(bad)


@pytest.mark.parametrize("bad", ["x", None, [[0.5]]])
def test_loss_refuses_non_tensor_target(bad):
    with pytest.raises(
        TypeError,
        match=rf"MSELoss: target must be a tensor, got "
        rf"{type(bad).__name__}",
    ):
        nn.MSELoss()(leaf(1, 1), bad)


@pytest.mark.parametrize("op", ["sum", "mean"])
def test_reduction_over_a_non_integer_dim(op):
    with pytest.raises(
        TypeError,
        match=rf"{op.capitalize()}: dim must be None, an int or a tuple "
        r"of ints, got 'rows'",
    ):
        getattr(leaf(3, 4), op)("rows")


@pytest.mark.parametrize("bad", ["abc", None, [[1.0, 2.0], [3.0]], object()])
def test_tensor_factory_refuses_non_numeric_data(bad):
    with pytest.raises(TypeError, match=r"tapegrad.tensor\(\): cannot build a tensor from"):
        tg.tensor(bad)


def test_tensor_class_refuses_non_tensor_data():
    with pytest.raises(TypeError, match=r"use tapegrad.tensor\(\.\.\.\)"):
        tg.Tensor([1.0, 2.0])


def test_pow_refuses_an_exponent_that_is_neither_a_number_nor_a_tensor():
    with pytest.raises(
        TypeError, match=r"the exponent of \*\* must be a number or a tensor, got str"
    ):
        leaf(3) ** "2"
    with pytest.raises(TypeError, match=r"the base of \*\* must be a tensor or a number, got str"):
        "2" ** leaf(3)


# --- integer tensors asked for a gradient ---------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: tg.tensor([1, 2, 3], requires_grad=True),
        lambda: tg.Tensor(torch.tensor([1, 2, 3]), requires_grad=True),
        lambda: tg.tensor([True, False], requires_grad=True),
        lambda: tg.tensor([1, 2, 3]).requires_grad_(),
        lambda: nn.Parameter(torch.tensor([1, 2, 3])),
    ],
)
def test_integer_tensors_cannot_require_grad(make):
    with pytest.raises(
        RuntimeError,
        match=r"only floating-point and complex tensors can require "
        r"gradients, got torch\.(int64|bool)",
    ) as caught:
        make()
    assert isinstance(caught.value, TypeError)  # tapegrad's type, and torch's (RuntimeError)


def test_integer_tensor_left_unchanged_by_refused_requires_grad():
    t = tg.tensor([1, 2, 3])
    with pytest.raises(TypeError):
        t.requires_grad_()
    assert t.requires_grad is False


def test_module_to_integer_dtype_is_refused():
    with pytest.raises(TypeError, match=r"floating-point dtype, got torch.int64"):
        nn.Linear(2, 1).to(torch.int64)


# --- misuse of backward() --------------------------------------------------------


def test_backward_on_non_scalar_without_grad():
    y = leaf(3, 4) * 2
    with pytest.raises(RuntimeError, match=r"single-element tensor.*shape \(3, 4\).*\.sum\(\)"):
        y.backward()


def test_backward_with_gradient_of_the_wrong_shape():
    x = leaf(3, 4)
    with pytest.raises(
        RuntimeError,
        match=r"grad has shape \(4, 3\) but the tensor has shape "
        r"\(3, 4\)",
    ):
        (x * 2).backward(torch.ones(4, 3))
    assert x.grad is None


def test_backward_with_gradient_of_the_wrong_dtype_or_type():
    x = leaf(3)
    with pytest.raises(TypeError, match=r"grad is torch.float64.*tensor is torch.float32"):
        (x * 2).backward(torch.ones(3, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"backward\(grad=\.\.\.\) takes a tensor, got list"):
        (x * 2).backward([1.0, 1.0, 1.0])


def test_user_function_returning_gradient_of_wrong_shape_names_op_and_index():
    class Bad(tg.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad.sum(0)  # (4,) for an input of shape (3, 4)

    x, w = leaf(3, 4), leaf(3, 4)
    x.grad = torch.ones(3, 4)
    y = (Bad.apply(x * 1.0) + w * x).sum()  # the sweep adds into w and x before reaching Bad
    with pytest.raises(
        RuntimeError,
        match=r"Bad \(tape index 1\): backward returned a gradient of "
        r"shape \(4,\) for input 0, whose shape is \(3, 4\)",
    ):
        y.backward()
    assert torch.equal(x.grad, torch.ones(3, 4)) and w.grad is None  # rolled back


def test_user_function_returning_wrong_number_of_gradients():
    class Bad(tg.Function):
        @staticmethod
        def forward(ctx, x, scale):
            return x * scale

        @staticmethod
        def backward(ctx, grad):
            return grad * 2  # one gradient, two inputs

    with pytest.raises(RuntimeError, match=r"Bad.backward returned 1 gradient\(s\) for 2 input"):
        Bad.apply(leaf(3), 2.0).sum().backward()


def test_setting_grad_of_the_wrong_shape():
    x = leaf(3)
    with pytest.raises(
        RuntimeError,
        match=r"assigned grad has shape \(2,\), but the tensor has "
        r"shape \(3,\)",
    ):
        x.grad = torch.ones(2)
    assert x.grad is None


def test_setting_grad_of_the_wrong_dtype():
    x = leaf(3)
    with pytest.raises(
        RuntimeError,
        match=r"assigned grad is torch.float64 but the tensor is "
        r"torch.float32",
    ):
        x.grad = torch.ones(3, dtype=torch.float64)
    assert x.grad is None


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: optim.SGD(ps, lr=0.1),
        lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
        lambda ps: optim.Adam(ps, lr=0.1),
    ],
)
def test_a_wrong_dtype_grad_cannot_half_update_a_model(make):
    # Were it accepted, the step would update the first parameters and then fail.
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    opt = make(model.parameters())
    params = list(model.parameters())
    for p in params:
        p.grad = torch.ones_like(p.data)
    with pytest.raises(TypeError):
        params[-1].grad = torch.ones(params[-1].shape, dtype=torch.float64)
    before = [p.data.clone() for p in params]
    opt.step()
    assert all(not torch.equal(b, p.data) for b, p in zip(before, params))


def test_user_function_returning_gradient_of_wrong_dtype():
    class Bad(tg.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return (grad * 2).double()

    x = leaf(3)
    with pytest.raises(
        TypeError,
        match=r"Bad \(tape index 0\): backward returned a torch.float64 "
        r"gradient for input 0, which is torch.float32",
    ):
        Bad.apply(x).sum().backward()
    assert x.grad is None


def test_second_sweep_over_a_released_tape():
    # Sum saved nothing and could be swept again (as in torch); Mul saved x and freed it
    x = leaf(3)
    y = (x * x).sum()
    y.backward()
    first = x.grad.clone()
    with pytest.raises(
        RuntimeError,
        match=r"backward\(\) through Mul \(tape index 0\) a second "
        r"time.*retain_graph=True",
    ):
        y.backward()
    assert torch.equal(x.grad, first)


def test_second_sweep_through_a_shared_released_part_rolls_back():
    x = leaf(3)
    h = x.exp()
    a, b = h.sum(), (h * 3).sum()
    a.backward()
    after_a = x.grad.clone()
    with pytest.raises(RuntimeError, match=r"Exp \(tape index 0\) a second time"):
        b.backward()  # b's own nodes run first, then it meets the freed Exp
    assert torch.equal(x.grad, after_a)


def test_retain_graph_allows_a_second_sweep():
    x = leaf(3)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert torch.allclose(x.grad, 4 * x.data)


def test_backward_of_a_tensor_recorded_under_no_grad():
    x = leaf(3)
    with tg.no_grad():
        y = (x * 2).sum()
    assert y.tape is None
    with pytest.raises(RuntimeError, match=r"does not require grad.*no_grad\(\)"):
        y.backward()


def test_backward_of_a_tensor_that_needs_no_grad():
    y = tg.tensor([1.0, 2.0]).sum()
    with pytest.raises(RuntimeError, match=r"does not require grad.*requires_grad=True"):
        y.backward()


def test_backward_from_inside_another_sweep():
    class Nested(tg.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            z = tg.tensor([1.0], requires_grad=True)
            (z * z).sum().backward()  # a sweep started from inside a sweep
            return grad * 2

    x = leaf(2)
    x.grad = torch.full((2,), 7.0)
    y = (Nested.apply(x) * 3 + x).sum()  # the sweep adds into x before reaching Nested
    with pytest.raises(RuntimeError, match=r"called from inside a backward\(\)"):
        y.backward()
    assert torch.equal(x.grad, torch.full((2,), 7.0))  # rolled back
    # The failed sweep left nothing behind: a new sweep on this thread works.
    z = leaf(2)
    (z * z).sum().backward()
    assert torch.allclose(z.grad, 2 * z.data)


def test_retain_grad_on_tensor_that_needs_no_grad():
    with pytest.raises(RuntimeError, match=r"retain_grad\(\) on a tensor that does not require"):
        tg.tensor([1.0]).retain_grad()


def test_grad_of_a_non_leaf_cannot_be_set():
    y = leaf(2) * 2
    with pytest.raises(
        RuntimeError,
        match=r"only a leaf tensor's .grad can be set.*Mul "
        r"\(tape index 0\)",
    ):
        y.grad = torch.ones(2)
