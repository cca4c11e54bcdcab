"""print(tape): the Wengert list, one line per node, with names for the leaves."""

import re

import torch

import tapegrad as tg
from tapegrad import nn
from tapegrad.printing import constants_text, format_tape, summarize

LINE = re.compile(r"^  %(\d+) = (\w+)\((.*)\)\s+-> (\(.*?\))\s*(.*)$")


def disk():
    g = torch.Generator().manual_seed(0)
    x, t = tg.data.generate_disc_set(10, g)
    model = nn.Sequential(
        nn.Linear(2, 25, generator=g),
        nn.ReLU(),
        nn.Linear(25, 25, generator=g),
        nn.ReLU(),
        nn.Linear(25, 25, generator=g),
        nn.Tanh(),
        nn.Linear(25, 1, generator=g),
        nn.Tanh(),
    )
    with tg.Tape() as tape:
        loss = nn.MSELoss()(model(x), t)
    return model, tape, loss, x, t


def parse(text):
    lines = text.splitlines()
    return lines[0], [LINE.match(line).groups() for line in lines[1:]]


def test_one_line_per_node_with_index_op_inputs_shape_and_value():
    model, tape, loss, x, t = disk()
    title, rows = parse(str(tape))
    assert title == "Tape of 9 nodes"
    assert len(rows) == len(tape)
    for node, (index, op, _args, shape, rest) in zip(tape, rows):
        assert int(index) == node.index
        assert op == node.name
        assert shape == str(tuple(node.shape))
        assert rest == summarize(node.value)
    # inputs: earlier nodes by %i, parameters by the module that used them, data by shape
    assert rows[0][2] == "input(10, 2), Linear0.weight, Linear0.bias"
    assert rows[1][2] == "%0"
    assert rows[6][2] == "%5, Linear3.weight, Linear3.bias"
    assert rows[8][2] == "%7, input(10, 1)"  # reduction='mean', the default: not shown
    assert rows[8][4] == f"{loss.item():.4g}"


def test_model_and_names_give_the_dotted_parameter_names():
    model, tape, loss, x, t = disk()
    text = tape.format(model=model, names={"x": x, "t": t})
    assert text == format_tape(tape, model, {"x": x, "t": t})
    _, rows = parse(text)
    assert rows[0][2] == "x, 0.weight, 0.bias"
    assert rows[2][2] == "%1, 2.weight, 2.bias"
    assert rows[8][2] == "%7, t"


def test_columns_line_up():
    _, tape, _, _, _ = disk()
    lines = str(tape).splitlines()[1:]
    assert len({line.index("->") for line in lines}) == 1


def test_constants_are_shown_by_name_and_defaults_left_out():
    x = tg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    with tg.Tape() as tape:
        a = x * 2
        b = a**3
        c = b.sum()
        d = b.mean(1, keepdim=True)
        e = b.reshape(4)
    assert [constants_text(node) for node in tape] == [
        ["2"],
        ["3"],
        [],
        ["dim=1", "keepdim=True"],
        ["shape=(4,)"],
    ]
    _, rows = parse(str(tape))
    assert [r[2] for r in rows] == [
        "leaf(2, 2), 2",
        "%0, 3",
        "%1",
        "%1, dim=1, keepdim=True",
        "%1, shape=(4,)",
    ]
    assert c.requires_grad and d.requires_grad and e.requires_grad


def test_implicit_tapes_say_their_values_were_not_kept():
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    y = (w * 3).sum()
    title, rows = parse(str(y.tape))
    assert "values not kept" in title and "with tapegrad.Tape()" in title
    assert rows[0][4] == "" and rows[1][4] == ""


def test_gradients_and_released_nodes_are_shown_after_a_sweep():
    # Exp saved its output, which the sweep freed; Sum saved nothing, so nothing was freed
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    with tg.Tape() as tape:
        y = (w * 0).exp().sum()
    y.backward(keep_grads=True)
    lines = str(tape).splitlines()
    assert lines[2].endswith("-> (2,)        mean 1  [1, 1]  grad mean 1  [1, 1]  (released)")
    assert lines[3].endswith("-> ()          2  grad 1")


def test_a_user_op_prints_by_its_class_name():
    class Square(tg.Function):
        """y = x^2

        dL/dx = dL/dy * 2x
        """

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 2 * x

    w = tg.tensor([1.0, 2.0], requires_grad=True)
    with tg.Tape() as tape:
        Square.apply(w).sum()
    _, rows = parse(tape.format(names={"w": w}))
    assert rows[0][:3] == ("0", "Square", "w")
    assert rows[0][4] == "mean 2.5  [1, 4]"


def test_indexing_reads_like_python():
    x = tg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    with tg.Tape() as tape:
        x[1:, ::2]
        x[:, 0]
        x[0]
    assert [constants_text(node) for node in tape] == [
        ["index=(1:, ::2)"],
        ["index=(:, 0)"],
        ["index=0"],
    ]
