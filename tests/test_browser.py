"""The interactive backprop page in a real headless browser (Debian's chromium, via Playwright).

Skipped only where chromium (or Playwright) is missing and this is not CI;
in CI (the CI environment variable set) a missing browser is a failure.
"""

import os
import shutil

import pytest
import torch

import tapegrad as tg
from tapegrad import nn

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _browser_or_skip():
    missing = None
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        missing = f"no chromium at {CHROMIUM} (apt-get install -y chromium)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = missing or "Playwright is not installed (pip install -e '.[test]')"
        sync_playwright = None
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the browser test must run in CI: {missing}")
        pytest.skip(missing)
    return sync_playwright, (CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium"))


@pytest.fixture(scope="module")
def page_and_steps(tmp_path_factory):
    import visualize

    g = torch.Generator().manual_seed(0)
    x, t = tg.data.generate_disc_set(6, g)
    model = nn.Sequential(
        nn.Linear(2, 4, generator=g),
        nn.ReLU(),
        nn.Linear(4, 4, generator=g),
        nn.Tanh(),
        nn.Linear(4, 1, generator=g),
        nn.Tanh(),
    )
    with tg.Tape() as tape:
        loss = nn.MSELoss()(model(x), t)
    path = visualize.write_backprop_html(
        loss, tmp_path_factory.mktemp("page") / "backprop.html", model=model
    )
    assert all(p.grad is None for p in model.parameters())  # writing the page swept nothing
    assert not any(node.released for node in tape)
    steps = list(tg.backward_steps(loss, accumulate=False))
    return path, tape, steps, model


@pytest.fixture(scope="module")
def browser():
    sync_playwright, executable = _browser_or_skip()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=ARGS)
        yield browser
        browser.close()


def test_the_page_is_self_contained(page_and_steps):
    path, _, _, _ = page_and_steps
    text = path.read_text(encoding="utf-8")
    assert "<svg" in text and "<script src" not in text and "<link" not in text
    assert "http://" not in text.replace("http://www.w3.org", "")
    assert "https://" not in text


def test_next_prev_and_arrow_keys_move_the_highlight_and_the_gradient(page_and_steps, browser):
    from visualize.html import tensor_text

    path, tape, steps, model = page_and_steps
    names = {id(p): name for name, p in model.named_parameters()}
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(path.as_uri())

    def state():
        return (
            page.get_attribute("#panel", "data-phase"),
            page.get_attribute("#panel", "data-node"),
        )

    def highlighted():
        return page.eval_on_selector_all(
            "#picture g.node.current", "gs => gs.map(g => g.querySelector('title').textContent)"
        )

    # the forward pass starts at the first node, its value shown
    assert state() == ("forward", "n0") and highlighted() == ["n0"]
    assert tensor_text(tape[0].value)["summary"] in page.inner_text("#value")
    assert page.inner_text("#tape .line.current").startswith("%0 = LinearFunction(")

    page.click("#next")  # the button
    assert state() == ("forward", "n1") and highlighted() == ["n1"]
    page.keyboard.press("ArrowRight")  # the arrow key
    assert state() == ("forward", "n2") and highlighted() == ["n2"]
    page.keyboard.press("ArrowLeft")
    page.click("#prev")
    assert state() == ("forward", "n0")
    page.click("#prev")  # nothing before the first step
    assert state() == ("forward", "n0")

    # to the last forward node, then into the sweep: the loss first, dL/dL = 1
    for _ in range(len(tape) - 1):
        page.keyboard.press("ArrowRight")
    assert state() == ("forward", f"n{len(tape) - 1}")
    page.click("#next")
    last = len(tape) - 1
    assert state() == ("backward", f"n{last}") and highlighted() == [f"n{last}"]
    assert page.inner_text("#grad").startswith("()  1")
    assert "dL/dp = 2 (p - t) / n" in page.inner_text("#panel")

    # each Next moves one node back, showing the gradient the sweep gathered there
    for step in steps[1:5]:
        page.keyboard.press("ArrowRight")
        assert state() == ("backward", f"n{step.index}")
        assert highlighted() == [f"n{step.index}"]
        shown = page.inner_text("#grad")
        expected = tensor_text(step.grad_output)
        assert shown.splitlines()[0] == f"{expected['shape']}  {expected['summary']}"
        assert shown.splitlines()[1] == expected["preview"]
        assert step.rule.splitlines()[0] in page.inner_text("#panel")
        receivers = page.eval_on_selector_all(
            "#picture g.node.receiver", "gs => gs.map(g => g.querySelector('title').textContent)"
        )
        assert [r for r in receivers if r.startswith("n")] == [
            f"n{h.index}" for h, _ in step.contributions if isinstance(h, tg.Node)
        ]
        shown_leaves = page.eval_on_selector_all(
            "#picture g.node.receiver",
            "gs => gs.filter(g => g.querySelector('title')"
            ".textContent.startsWith('t')).map(g => g.querySelector('text').textContent)",
        )
        assert sorted(shown_leaves) == sorted(
            names[id(h)] for h, _ in step.contributions if not isinstance(h, tg.Node)
        )
    assert steps[1].grad_output.shape != steps[0].grad_output.shape  # the gradient did change

    page.keyboard.press("End")
    assert state() == ("backward", "n0")
    page.keyboard.press("Home")
    assert state() == ("forward", "n0")
    assert errors == []
    assert all(url.startswith("file:") for url in requests)
    page.close()
