"""CUDA graphs: a variant's kernels captured once into a ``torch.cuda.CUDAGraph``, then replayed.

    call 1 of a variant:  run the generated code on a side stream (a real step: torch's lazy
                          start-up happens here, not in the capture)
    call 2:               copy the inputs into static tensors; capture the generated code
                          into a graph (its kernels are recorded, not run); note what its
                          Python did (the state it wrote, the version counters it bumped);
                          replay the graph: that is the step
    call 3 on:            copy the inputs in, replay, write the same state, bump the same
                          counters

What a graph changes, and why: the graph's tensors live at fixed addresses, so the
step's results are the same tensor objects on every call (``p.grad`` is overwritten in
place by the next call, and so is the returned loss: clone what you keep). A step with
Python of its own between kernels (a user op, an optimizer called as is) cannot be in
a graph: it is refused, by name.
"""

from __future__ import annotations

import torch

from .. import _kernels
from . import state as st
from .ir import CompileError, Opaque
from .plan import diff


def graphed(variant, plan, gen, label):
    """A run function that replays `variant` through a CUDA graph (see the module docstring)."""
    if not torch.cuda.is_available():
        raise CompileError(
            f"tapegrad.compile({label}, cuda_graph=True): torch sees no CUDA "
            "device; drop cuda_graph=True on this machine"
        )
    for event in plan.tracer.events:
        if isinstance(event, Opaque):
            raise CompileError(
                f"tapegrad.compile({label}, cuda_graph=True): {event.label} runs Python of its "
                "own during the step (the compiled code calls it as it is), which a CUDA graph "
                "would skip on replay; use cuda_graph=False for this step"
            )
    devices = {str(t.device) for t in plan.tracer.held_tensors()}
    if any(not d.startswith("cuda") for d in devices):
        raise CompileError(
            f"tapegrad.compile({label}, cuda_graph=True): the step reads tensors "
            f"on {', '.join(sorted(devices))}; a CUDA graph needs them all on "
            "one CUDA device (move the model and the data with .to('cuda'))"
        )
    params = [name for name, _ in plan.roots[: plan.arg_count]]
    walker = plan.tracer.walker.without_arguments()
    return GraphedRun(
        variant.run, _input_reader(plan, params), _substitute(plan, params), walker, label
    )


def _input_reader(plan, params):
    """A function of the arguments returning their tensors, in the order of plan.inputs."""
    exprs = list(plan.inputs.values())
    listed = ", ".join(exprs) + ("," if exprs else "")
    source = f"def read({', '.join(params)}):\n    return ({listed})\n"
    namespace = {}
    exec(compile(source, "<tapegrad.compile graph inputs>", "exec"), namespace)
    return namespace["read"]


def _substitute(plan, params):
    """A function (args, static tensors) -> the arguments with their tensors replaced."""
    from ..tensor import Tensor

    exprs = list(plan.inputs.values())

    def substitute(args, statics):
        by_expr = dict(zip(exprs, statics))
        out = []
        for name, value in zip(params, args):
            if isinstance(value, torch.Tensor):
                out.append(by_expr.get(name, value))
            elif isinstance(value, Tensor):
                copy = Tensor._wrap(by_expr.get(f"{name}._data", value._data))
                copy._requires_grad = value._requires_grad
                out.append(copy)
            else:
                out.append(value)
        return tuple(out)

    return substitute


class GraphedRun:
    """Calls of one variant: warm up, capture, then replay (see the module docstring)."""

    def __init__(self, run, read_inputs, substitute, walker, label):
        self.run, self.read_inputs, self.substitute = run, read_inputs, substitute
        self.walker, self.label = walker, label
        self.calls = 0
        self.graph = None

    def __call__(self, *args):
        if self.graph is not None:
            for static, new in zip(self.statics, self.read_inputs(*args)):
                static.copy_(new)
            self.graph.replay()
            for tensors, times in self.bumps:
                for _ in range(times):
                    _kernels.bump_versions(tensors)
            for write in self.writes:
                write()
            return self.out
        self.calls += 1
        if self.calls == 1:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                out = self.run(*args)
            torch.cuda.current_stream().wait_stream(side)
            return out
        return self._capture(args)

    def _capture(self, args):
        self.statics = [t.clone() for t in self.read_inputs(*args)]
        static_args = self.substitute(args, self.statics)
        tensors = _tensors_of(self.walker.snapshot(named=False)) + list(self.statics)
        before = [t._version for t in tensors]
        state_before = self.walker.snapshot(named=False)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = self.run(*static_args)
        state_after = self.walker.snapshot(named=False)
        # The capture ran the code's Python once: the counters it bumped, the state it wrote.
        deltas = {}
        for t, version in zip(tensors, before):
            if t._version != version:
                deltas.setdefault(t._version - version, []).append(t)
        self.bumps = [(ts, times) for times, ts in deltas.items() if times > 0]
        self.writes = [_writer(change) for change in diff(state_before, state_after)]
        self.out = out
        self.graph = graph
        graph.replay()  # the step itself (capture runs no kernel)
        return out


def _tensors_of(snapshot) -> list:
    seen, found = set(), []
    for obj in snapshot.objects.values():
        obj = st.unwrap(obj)
        if isinstance(obj, torch.Tensor) and id(obj) not in seen:
            seen.add(id(obj))
            found.append(obj)
    return found


def _writer(change):
    """A function that writes `change.new` into its place again."""
    entry, key, new = change.entry, change.key, st.unwrap(change.new)
    obj = entry.obj
    if change.action == "list":
        items = [st.unwrap(v) for v in change.new]
        return lambda: obj.__setitem__(slice(None), items)
    if change.action == "del":
        target = obj.__dict__ if entry.kind == st.OBJECT else obj
        return lambda: target.pop(key, None)
    if entry.kind == st.SLOTS:
        return lambda: setattr(obj, key, new)
    if entry.kind == st.CELL:
        return lambda: setattr(obj, "cell_contents", new)
    if entry.kind == st.OBJECT:
        d = obj.__dict__
        return lambda: d.__setitem__(key, new)
    return lambda: obj.__setitem__(key, new)
