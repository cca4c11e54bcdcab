"""One self-contained HTML page to step through backprop on a tape: forward, then the sweep.

    visualize.write_backprop_html(loss, "backprop.html", model=model)

The page holds the tape's picture (the SVG of `to_dot`, inlined), the
Wengert list (``print(tape)``), and one panel per step; Next / Prev (or the
arrow keys, Home / End) move through

- the forward pass, node by node in tape order: what the op computes and
  the value it produced (kept by ``with tapegrad.Tape()``);
- the reverse sweep (`tapegrad.backward_steps`), node by node from the
  loss: the incoming gradient dL/dy, the rule the op applies, and what it
  sends to each input.

The current node is highlighted in the picture and in the list; in the
sweep the nodes that receive its contributions are outlined too. No
server, no network: the data are JSON inside the page, the script and the
styles are inline. Writing the page changes nothing: the sweep is run
with ``accumulate=False``, so no ``.grad`` is written and no saved tensor
freed.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

import torch

from tapegrad.printing import format_node, input_label, leaf_names, node_call, summarize
from tapegrad.steps import backward_steps, forward_rule, reached_nodes, rule_text
from tapegrad.tape import Node

from .engine import pipe
from .graph import to_dot

PREVIEW = 6  # values shown from each tensor, besides its mean and range


def write_backprop_html(
    loss, path, model=None, names: dict | None = None, grad=None, renderer: str = "auto"
) -> Path:
    """Write the interactive backprop page for `loss` to `path` (parent folders are made).

    model, names: name the leaves (``0.weight``, ``{"x": x}``), as in `to_dot` and
    ``tape.format``. grad: dL/d(loss) for a loss of more than one element.
    Call it before ``loss.backward()`` (or after ``backward(retain_graph=True)``):
    the sweep it shows needs the tape's saved tensors. Returns the path.
    """
    if getattr(loss, "_node", None) is None:
        raise ValueError(
            "write_backprop_html: the loss was not recorded on a tape (it is a leaf, "
            "or was computed under no_grad()); pass the output of recorded ops"
        )
    nodes = reached_nodes(loss)
    released = [node for node in nodes if node.released]
    if released:
        raise RuntimeError(
            f"write_backprop_html: {released[0].describe()} was already swept and "
            "its saved tensors freed; write the page before loss.backward(), or "
            "call loss.backward(retain_graph=True)"
        )
    labels = leaf_names(loss.tape, model, names)
    steps = [_forward_step(node, labels) for node in nodes]
    steps += [_backward_step(step, labels) for step in backward_steps(loss, grad, accumulate=False)]
    width = max(len(node_call(node, labels)) for node in nodes)
    lines = [{"index": node.index, "text": format_node(node, labels, width)} for node in nodes]
    svg = pipe(to_dot(loss, model=model, values=True).source, "svg", renderer).decode("utf-8")
    page = _PAGE.format(
        title=html.escape(f"Backprop through {len(nodes)} nodes"),
        style=_STYLE,
        script=_SCRIPT,
        svg=svg[svg.index("<svg") :],
        data=_json({"steps": steps, "lines": lines}),
    )
    path = Path(os.fspath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def tensor_text(value) -> dict:
    """{'shape', 'summary', 'preview'} of a tensor, for the panel."""
    if not isinstance(value, torch.Tensor):
        return {"shape": "", "summary": "" if value is None else repr(value), "preview": ""}
    flat = value.detach().reshape(-1)
    shown = ", ".join(f"{v:.4g}" for v in flat[:PREVIEW].tolist())
    more = f", … ({flat.numel()} values)" if flat.numel() > PREVIEW else ""
    return {
        "shape": str(tuple(value.shape)),
        "summary": summarize(value),
        "preview": f"[{shown}{more}]",
    }


def _forward_step(node: Node, labels: dict) -> dict:
    return {
        "phase": "forward",
        "index": node.index,
        "node": f"n{node.index}",
        "call": node_call(node, labels),
        "computes": forward_rule(node.op),
        "value": tensor_text(node.value) if node.value is not None else None,
        "receivers": [],
        "leaf_receivers": [],
    }


def _backward_step(step, labels: dict) -> dict:
    node = step.node
    sends = [
        {"to": input_label(holder, labels), "grad": tensor_text(grad)}
        for holder, grad in step.contributions
    ]
    return {
        "phase": "backward",
        "index": node.index,
        "node": f"n{node.index}",
        "call": node_call(node, labels),
        "computes": forward_rule(node.op),
        "value": tensor_text(node.value) if node.value is not None else None,
        "grad": tensor_text(step.grad_output),
        "rule": rule_text(node.op),
        "sends": sends,
        "receivers": [
            f"n{holder.index}" for holder, _ in step.contributions if isinstance(holder, Node)
        ],
        "leaf_receivers": [
            input_label(holder, labels)
            for holder, _ in step.contributions
            if not isinstance(holder, Node)
        ],
    }


def _json(data) -> str:
    # "</" would end the <script> element early; JSON allows "<\/" for it.
    return json.dumps(data, ensure_ascii=False).replace("</", "<\\/")


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<header>
  <h1>{title}</h1>
  <nav>
    <button id="prev" type="button" title="previous step (Left arrow)">&#9664; Prev</button>
    <span id="counter"></span>
    <button id="next" type="button" title="next step (Right arrow)">Next &#9654;</button>
    <span class="hint">arrow keys step, Home / End jump</span>
  </nav>
</header>
<main>
  <section id="picture">{svg}</section>
  <section id="side">
    <div id="panel" data-step="0" data-phase="" data-node=""></div>
    <h2>The tape</h2>
    <pre id="tape"></pre>
  </section>
</main>
<script type="application/json" id="data">{data}</script>
<script>{script}</script>
</body>
</html>
"""

_STYLE = """
body { font-family: Helvetica, Arial, sans-serif; margin: 0; color: #222; }
header { padding: 8px 16px; border-bottom: 1px solid #ccc; background: #fafafa;
         position: sticky; top: 0; z-index: 1; }
h1 { font-size: 18px; margin: 0 0 6px 0; }
h2 { font-size: 15px; margin: 16px 0 4px 0; }
nav button { font-size: 15px; padding: 4px 14px; }
#counter { display: inline-block; min-width: 260px; text-align: center; font-weight: bold; }
.hint { color: #777; font-size: 12px; margin-left: 12px; }
main { display: flex; gap: 16px; padding: 12px 16px; align-items: flex-start; }
#picture { flex: 1 1 55%; overflow: auto; }
#picture svg { max-width: 100%; height: auto; }
#side { flex: 1 1 45%; min-width: 360px; }
#panel { border: 1px solid #ccc; border-radius: 6px; padding: 10px 14px; background: #fff; }
#panel .call { font-family: monospace; font-size: 15px; font-weight: bold; }
#panel .label { color: #666; font-size: 12px; text-transform: uppercase; margin-top: 8px; }
#panel pre { margin: 2px 0; white-space: pre-wrap; }
#panel.forward { border-left: 6px solid #4a90d9; }
#panel.backward { border-left: 6px solid #d62728; }
#tape { font-size: 12px; background: #f6f6f6; padding: 6px; overflow-x: auto; }
#tape .line.current { background: #ffe08a; font-weight: bold; }
#tape .line.done { color: #999; }
g.node.current > g > a > path, g.node.current > g > a > polygon, g.node.current > path,
g.node.current > polygon, g.node.current > ellipse { stroke: #d62728; stroke-width: 4px; }
g.node.receiver > g > a > path, g.node.receiver > g > a > polygon, g.node.receiver > path,
g.node.receiver > polygon { stroke: #ff9f1c; stroke-width: 3px; stroke-dasharray: 5 3; }
g.node.done { opacity: 0.55; }
"""

_SCRIPT = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("data").textContent);
  var steps = data.steps;
  var panel = document.getElementById("panel");
  var counter = document.getElementById("counter");
  var boxes = {};     // graph node name ("n3") -> its <g> in the SVG
  var leafBoxes = {}; // a leaf's name as its box shows it ("0.weight") -> its <g>
  document.querySelectorAll("#picture g.node").forEach(function (g) {
    var title = g.querySelector("title");
    if (title) { boxes[title.textContent] = g; }
    var text = g.querySelector("text");
    if (text && title && title.textContent.charAt(0) === "t") { leafBoxes[text.textContent] = g; }
  });
  var tape = document.getElementById("tape");
  var lines = {};     // tape index -> its line in the list
  data.lines.forEach(function (line) {
    var div = document.createElement("div");
    div.className = "line";
    div.textContent = line.text;
    tape.appendChild(div);
    lines[line.index] = div;
  });

  function add(parent, className, text, tag) {
    var el = document.createElement(tag || "div");
    el.className = className;
    el.textContent = text;
    parent.appendChild(el);
    return el;
  }
  function tensor(parent, label, t) {
    add(parent, "label", label);
    if (!t) {
      return add(parent, "missing", "not kept: record inside `with tapegrad.Tape():`", "pre");
    }
    return add(parent, "tensor",
               (t.shape ? t.shape + "  " : "") + t.summary + "\n" + t.preview, "pre");
  }

  var current = 0;
  function show(i) {
    current = Math.max(0, Math.min(steps.length - 1, i));
    var step = steps[current];
    var forwardCount = steps.filter(function (s) { return s.phase === "forward"; }).length;
    var phaseStep = step.phase === "forward" ? current + 1 : current + 1 - forwardCount;
    var phaseTotal = step.phase === "forward" ? forwardCount : steps.length - forwardCount;
    counter.textContent = (step.phase === "forward" ? "Forward " : "Backward ") + phaseStep +
      " / " + phaseTotal + "  (step " + (current + 1) + " of " + steps.length + ")";
    panel.className = step.phase;
    panel.dataset.step = String(current);
    panel.dataset.phase = step.phase;
    panel.dataset.node = step.node;
    panel.textContent = "";
    add(panel, "call", step.call);
    if (step.computes) {
      add(panel, "label", "computes");
      add(panel, "computes", step.computes, "pre");
    }
    if (step.phase === "forward") {
      tensor(panel, "value", step.value).id = "value";
    } else {
      tensor(panel, "incoming gradient dL/dy", step.grad).id = "grad";
      add(panel, "label", "rule applied");
      add(panel, "rule", step.rule, "pre");
      add(panel, "label", "sends");
      if (!step.sends.length) { add(panel, "send", "nothing: no input needs a gradient", "pre"); }
      step.sends.forEach(function (send) {
        add(panel, "send", send.to + " += " + send.grad.shape + "  " + send.grad.summary +
            "\n" + send.grad.preview, "pre");
      });
    }
    Object.keys(boxes).forEach(function (name) {
      boxes[name].classList.remove("current", "receiver", "done");
    });
    Object.keys(lines).forEach(function (k) { lines[k].classList.remove("current", "done"); });
    for (var j = 0; j < current; j++) {
      if (steps[j].phase === step.phase) {
        if (boxes[steps[j].node]) { boxes[steps[j].node].classList.add("done"); }
        lines[steps[j].index].classList.add("done");
      }
    }
    if (boxes[step.node]) {
      boxes[step.node].classList.remove("done");
      boxes[step.node].classList.add("current");
    }
    lines[step.index].classList.remove("done");
    lines[step.index].classList.add("current");
    step.receivers.forEach(function (name) {
      if (boxes[name]) { boxes[name].classList.add("receiver"); }
    });
    (step.leaf_receivers || []).forEach(function (name) {
      if (leafBoxes[name]) { leafBoxes[name].classList.add("receiver"); }
    });
  }

  document.getElementById("next").addEventListener("click", function () { show(current + 1); });
  document.getElementById("prev").addEventListener("click", function () { show(current - 1); });
  document.addEventListener("keydown", function (event) {
    var moves = { ArrowRight: current + 1, ArrowDown: current + 1, ArrowLeft: current - 1,
                  ArrowUp: current - 1, Home: 0, End: steps.length - 1 };
    if (event.key in moves) { event.preventDefault(); show(moves[event.key]); }
  });
  show(0);
})();
"""
