"""Every label shows what the user wrote: no internal enum, code or repr leaks into any tool.

One tape records every built-in op (tests/test_check_tape.py's), a CNN with every layer and loss,
and the derivative ops of a create_graph sweep. Each node's label is read from all the places a
learner meets it: print(tape), backward_steps / explain, the picture and the step-through page.
"""

import re

import pytest
import torch
from test_check_tape import every_builtin_op_tape

import tapegrad as tg
import visualize
from tapegrad import nn
from tapegrad.printing import constants_text, node_call

# What must never appear where an op's arguments are shown.
LEAKS = {
    "an aten reduction code": re.compile(r"reduction=\d"),
    "a torch.Size repr": re.compile(r"torch\.Size"),
    "an object repr": re.compile(r"<[^>]* at 0x|object at 0x"),
    "a private flag": re.compile(r"\bbasic="),
    "an internal argument name": re.compile(r"\b(low|high)="),
    "a bare number for a named setting of a varargs op": re.compile(r"^(Cat|Stack)\(.*, \d+\)$"),
}


def _cnn_tape():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1),
        nn.BatchNorm2d(2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Dropout(0.2),
        nn.Flatten(),
        nn.Linear(8, 3),
        nn.LeakyReLU(),
        nn.GELU(),
        nn.LayerNorm(3),
    )
    x = tg.Tensor(torch.randn(4, 1, 4, 4), requires_grad=True)
    t = torch.tensor([0, 1, 2, 0])
    table = nn.Embedding(5, 2)
    scale = tg.tensor([1.0, 2.0, 0.5, 1.5], requires_grad=True)  # so NLL's derivative records
    with tg.Tape() as tape:
        out = model(x)
        pooled, where = nn.MaxPool2d(2, return_indices=True)(x)
        loss = (
            nn.CrossEntropyLoss(reduction="sum", label_smoothing=0.1)(out, t)
            + (nn.NLLLoss(reduction="none")(out.log_softmax(1), t) * scale).sum()
            + nn.BCEWithLogitsLoss()(out, torch.rand(4, 3))
            + nn.MSELoss(reduction="sum")(out.sigmoid(), torch.rand(4, 3))
            + nn.BCELoss(reduction="none")(out.sigmoid(), torch.rand(4, 3)).mean()
            + (nn.AvgPool2d(2)(x) ** 2).sum()
            + (pooled**2).sum()
            + (table(torch.tensor([1, 1, 3])) ** 2).sum()
        )
    leaves = list(model.parameters()) + [x, table.weight]
    grads = tg.grad(loss, leaves, create_graph=True, allow_unused=True)
    total = loss + sum((g * g).sum() for g in grads if g is not None)
    return model, tape, total


@pytest.fixture(scope="module")
def nodes():
    _, builtin = every_builtin_op_tape()
    model, _, cnn = _cnn_tape()
    found = list(builtin.tape) + list(cnn.tape)
    ops = {
        name
        for module in (tg.ops, nn)
        for name in module.__all__
        if isinstance(getattr(module, name), type)
        and issubclass(getattr(module, name), tg.Function)
    }
    assert ops <= {node.name for node in found}, ops - {node.name for node in found}
    return found, model, cnn


def test_no_label_leaks_an_internal_value(nodes):
    found, _, _ = nodes
    for node in found:
        call = node_call(node)
        for what, pattern in LEAKS.items():
            assert not pattern.search(call), f"{what} in the label {call!r}"


def test_settings_read_as_the_user_wrote_them(nodes):
    found, _, _ = nodes
    calls = {node_call(node).split(" = ", 1)[1] for node in found}
    text = "\n".join(calls)
    for expected in (
        "reduction='sum'",
        "reduction='none'",
        "Clamp(leaf(3, 4), min=-0.5, max=0.5)",
        "Cat(",
        "dim=1)",
    ):
        assert expected in text, expected
    # settings at their default are left out, as the user left them out
    assert not any("reduction='mean'" in call for call in calls)


def test_buffers_and_parameters_are_named_in_labels(nodes):
    _, model, cnn = nodes
    text = str(cnn.tape)
    assert "BatchNorm2d.running_mean" in text and "Conv2d.weight" in text


def test_steps_pictures_and_the_page_show_the_same_labels(nodes, tmp_path):
    _, model, _ = nodes
    _, tape, loss = _cnn_tape()
    lines = [node_call(node) for node in tape]
    steps = "\n".join(step.format() for step in tg.backward_steps(loss, retain_graph=True))
    picture = visualize.to_dot(tape).source
    page = visualize.write_backprop_html(loss, tmp_path / "page.html").read_text()
    for line in lines:
        for what, pattern in LEAKS.items():
            assert not pattern.search(line), f"{what} in {line!r}"
    for text, where in ((steps, "backward_steps"), (picture, "the picture"), (page, "the page")):
        for what, pattern in list(LEAKS.items())[:-1]:
            assert not pattern.search(text), f"{what} in {where}"
        assert "reduction=" not in text or "reduction='" in text, where
    for node in tape:
        for constant in constants_text(node):
            assert (
                constant in picture
                or constant.replace("'", "&#x27;") in picture
                or constant.replace("'", "\\'") in picture
            ), (node.name, constant)


def test_the_html_stepper_shows_every_builtin_op(tmp_path):
    from visualize.html import write_backprop_html

    tape, loss = every_builtin_op_tape()
    page = write_backprop_html(loss, tmp_path / "every_op.html").read_text()
    for name in sorted({node.name for node in tape}):
        assert f"{name}(" in page, name  # in the forward lines and the sweep's steps
