"""`CompiledStep`: what ``tapegrad.compile(fn)`` returns. Guards, variants, tracing, fallbacks.

step(*args):
    for each variant, most recently used first:
        if variant.guard(*args) is None:        # every check holds
            return variant.run(*args)           # the generated code
    if anomaly mode or a Tape block is on:      # the user wants the tape: run eagerly
        return fn(*args)
    trace fn on these arguments (it runs eagerly once), generate run and guard,
    keep the variant (the oldest goes when there are more than cache_size)
"""

from __future__ import annotations

import functools
import gc
import inspect
import time
import warnings

import torch

from ..tape import _state
from ..tensor import Tensor
from . import codegen, guards
from .ir import CompileError
from .plan import Plan
from .state import Walker
from .trace import Tracer


class Variant:
    """One traced specialisation: its guard, its generated code, and how it was made."""

    __slots__ = (
        "guard",
        "run",
        "code",
        "guard_code",
        "guards",
        "trace_seconds",
        "calls",
        "kernels",
        "graph",
    )

    def __init__(self, guard, run, code, guard_code, guard_obj, trace_seconds, kernels):
        self.guard, self.run, self.code, self.guard_code = guard, run, code, guard_code
        self.guards = guard_obj
        self.trace_seconds = trace_seconds
        self.calls = 0
        self.kernels = kernels
        self.graph = None


class CompiledStep:
    """A training step compiled by `tapegrad.compile`. Call it like `fn`.

    code        the generated source of the variant used last (the step as a program)
    guard_code  the source of its guard
    variants    every variant kept, most recently used first
    stats       traces, compiled calls, eager calls, the last trace's seconds
    last_miss   why the latest call that traced did not match a kept variant
    """

    def __init__(
        self, fn, *, cuda_graph: bool = False, on_value_read: str = "error", cache_size: int = 8
    ):
        if not callable(fn):
            raise TypeError(f"tapegrad.compile takes a function, got {type(fn).__name__}")
        if on_value_read not in ("error", "retrace"):
            raise ValueError(
                f"tapegrad.compile: on_value_read must be 'error' or 'retrace', "
                f"got {on_value_read!r}"
            )
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 1:
            raise ValueError(
                f"tapegrad.compile: cache_size must be a positive int, got {cache_size!r}"
            )
        if cuda_graph and not torch.cuda.is_available():
            raise CompileError(
                f"tapegrad.compile({_label(fn)}, cuda_graph=True): torch sees no "
                "CUDA device; drop cuda_graph=True on this machine"
            )
        self.fn = fn
        self.cuda_graph = bool(cuda_graph)
        self.on_value_read = on_value_read
        self.cache_size = cache_size
        self.variants: list = []
        self._stats = dict(traces=0, eager_calls=0, trace_seconds=None)
        self.last_miss = None
        self._warned: set = set()
        self.__name__ = getattr(fn, "__name__", "step")
        self.__doc__ = getattr(fn, "__doc__", None)
        self._label = _label(fn)
        self._gen_name = _python_name(self.__name__)
        self._signature: inspect.Signature | None
        try:
            self._signature = inspect.signature(fn)
        except (TypeError, ValueError):
            self._signature = None

    # --- calling ------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        variants = self.variants
        if variants and not kwargs:
            first = variants[0]
            if first.guard(*args) is None:
                first.calls += 1
                return first.run(*args)
        return self._slow(args, kwargs)

    def _slow(self, args, kwargs):
        if kwargs:
            args = self._bind(args, kwargs)
        variants = self.variants
        for i, variant in enumerate(variants):
            if variant.guard(*args) is None:
                variants.insert(0, variants.pop(i))
                variant.calls += 1
                return variant.run(*args)
        if _state.anomaly or _state.blocks:
            self._warn_once(
                "eager-mode",
                "anomaly mode or an open Tape block wants the tape "
                "recorded, so the step runs eagerly while it is on",
            )
            self._stats["eager_calls"] += 1
            return self.fn(*args)
        if variants:
            self.last_miss = variants[0].guards.explain(variants[0].guard(*args), args)
        return self._trace(args)

    def _bind(self, args, kwargs):
        if self._signature is None:
            raise TypeError(
                f"tapegrad.compile({self._label}): keyword arguments need a "
                "function with a signature; pass them positionally"
            )
        bound = self._signature.bind(*args, **kwargs)
        bound.apply_defaults()
        if bound.kwargs:
            raise TypeError(
                f"tapegrad.compile({self._label}): keyword-only arguments are not "
                "supported; make them positional"
            )
        return tuple(bound.args)

    # --- tracing ------------------------------------------------------------------
    def _trace(self, args):
        # The trace makes many short-lived containers (snapshots, the source); a collection of
        # the older generations in the middle would walk every object torch made, for nothing.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._trace_and_build(args)
        finally:
            if collecting:
                gc.enable()

    def _trace_and_build(self, args):
        start = time.perf_counter()
        walker = Walker(self.fn, args)
        tracer = Tracer(self.fn, args, walker, on_value_read=self.on_value_read, name=self._label)
        out = tracer.run()  # fn runs here, eagerly: errors are fn's own (or refusals)
        self._stats["traces"] += 1
        if tracer.value_read is not None:  # on_value_read='retrace': nothing kept
            what, _ = tracer.value_read
            self._stats["eager_calls"] += 1
            warnings.warn(
                f"tapegrad.compile({self._label}): {what}: the step reads tensor values "
                "into Python, so this call ran eagerly and the next one traces again "
                "(compiled code would take the traced branch every time)",
                RuntimeWarning,
                stacklevel=3,
            )
            return out
        self._check(tracer)
        plan = Plan(tracer)
        params = [name for name, _ in walker.roots[: walker.arg_count]]
        source, run, gen = codegen.build(plan, self._gen_name, params, self._label)
        guard = guards.build_guard(plan, gen.used_reads, gen.used_objects, self._gen_name, params)
        seconds = time.perf_counter() - start
        variant = Variant(guard.function, run, source, guard.source, guard, seconds, gen.kernels)
        if self.cuda_graph:
            from .cuda_graph import graphed

            variant.run = graphed(variant, plan, gen, self._label)
        self._stats["trace_seconds"] = seconds
        self.variants.insert(0, variant)
        if len(self.variants) > self.cache_size:
            self.variants.pop()
            self._warn_once(
                "cache",
                f"traced more than {self.cache_size} variants (cache_size); "
                "the oldest is dropped. The latest call differed in: "
                f"{self.last_miss}. "
                "A value that changes on every call makes every call trace again",
            )
        return out  # what fn returned (this call ran eagerly)

    def _check(self, tracer):
        """Refuse what the compiled code could not repeat (checked after the traced run)."""
        s0 = tracer.s0
        for owner in tracer.seen_owners.values():
            if id(owner) not in s0.objects:
                raise CompileError(
                    f"tapegrad.compile({self._label}): the step uses {type(owner).__name__} "
                    f"{owner!r:.60}, which the compiler could not find from the step's "
                    "arguments, closure or globals, so it cannot check its state before each "
                    "call. Pass it as an argument, or refer to it from the function"
                )
        for value in _all_values(tracer.out):
            node = getattr(value, "_node", None) if isinstance(value, Tensor) else None
            if node is not None and node._versions:
                raise CompileError(
                    f"tapegrad.compile({self._label}): the step returns the output of "
                    f"{node.describe()} with a tape not yet swept; a compiled step keeps no "
                    "tape, so a later backward() could not run. Call backward() inside the "
                    "step, or compute the result under tapegrad.no_grad()"
                )

    def _warn_once(self, key, message):
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(
                f"tapegrad.compile({self._label}): {message}", RuntimeWarning, stacklevel=4
            )

    # --- reading --------------------------------------------------------------------
    @property
    def stats(self) -> dict:
        """traces, compiled calls (of the variants kept), eager calls, the last trace's seconds."""
        return dict(
            self._stats,
            compiled_calls=sum(v.calls for v in self.variants),
            variants=len(self.variants),
        )

    @property
    def code(self) -> str:
        """The generated source of the variant used last ('' before the first call)."""
        return self.variants[0].code if self.variants else ""

    @property
    def guard_code(self) -> str:
        return self.variants[0].guard_code if self.variants else ""

    def __repr__(self):
        return (
            f"<tapegrad.compile of {self._label}: {len(self.variants)} variant(s), "
            f"{self._stats['traces']} trace(s)>"
        )


def _all_values(value, found=None):
    found = [] if found is None else found
    found.append(value)
    if type(value) in (tuple, list):
        for v in value:
            _all_values(v, found)
    elif type(value) is dict:
        for v in value.values():
            _all_values(v, found)
    return found


def _label(fn) -> str:
    return getattr(fn, "__name__", None) or type(fn).__name__


def _python_name(name: str) -> str:
    import re

    text = re.sub(r"\W+", "_", name).strip("_") or "step"
    if text[0].isdigit() or text == "lambda":
        text = "step_" + text
    return text


def compile(
    fn=None, *, cuda_graph: bool = False, on_value_read: str = "error", cache_size: int = 8
):
    """Compile a training step: traced on its first call, replayed as generated code after.

        step = tapegrad.compile(train_step)     # or @tapegrad.compile
        for x, t in batches(...):
            loss = step(x, t)                   # first call: eager + trace; then generated code
        print(step.code)                        # the step as straight-line Python

    fn takes tensors (tapegrad or torch) and runs a forward pass, ``backward()``, and
    optionally ``optimizer.step()`` / ``zero_grad()``. Later calls whose arguments and
    state pass the guards run generated code that calls the same torch kernels in the
    same order: results are the same, bit for bit, as eager, and so is the Python state
    left behind (``.grad``, optimizer state, version counters). Tensors the step returns
    come back without a tape (it was swept inside the step).

    cuda_graph: on CUDA, replay each variant through a ``torch.cuda.CUDAGraph``.
    on_value_read: 'error' (default) refuses a step that reads tensor values into Python
        (``.item()``, ``if loss > 1``); 'retrace' runs such calls eagerly, with a warning.
    cache_size: how many variants (e.g. full and last partial batch) are kept.
    """
    if fn is None:
        return functools.partial(
            compile, cuda_graph=cuda_graph, on_value_read=on_value_read, cache_size=cache_size
        )
    return CompiledStep(
        fn, cuda_graph=cuda_graph, on_value_read=on_value_read, cache_size=cache_size
    )
