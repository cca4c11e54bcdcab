"""tapegrad.compile: a traced training step, replayed as generated straight-line code.

A tape is a straight-line program: once a step has run, the kernels it called and the
order it called them in are known, and replaying them needs no Python object per op.

    step = tapegrad.compile(train_step)

    step(*args):
        if a kept variant's guard holds for args and the state:   (guards.py)
            return variant.run(*args)          # generated code: the same kernels, in order
        before = snapshot of the state train_step can reach        (state.py)
        run train_step(*args) eagerly, recording                   (trace.py)
            every torch call it makes (the forward's ops, the sweep's derivatives, the
            optimizer's update), with the tape node, sweep step or optimizer it came from
        after = snapshot again; after - before = what it wrote     (plan.py)
            (each leaf's .grad, optimizer state on a first step, ...)
        run  = one Python function: a line per kernel, then those writes   (codegen.py)
        guard = one Python function: the arguments' shapes, dtypes, devices,
                and `before` (identity of parameters and buffers, values of numbers)
        keep (guard, run) as a variant; return what train_step returned

What the generated code does differently from eager is only what it leaves out: no
Tensor wrappers, no Nodes, no tape, no per-op checks (they ran once, while tracing,
and the guards make sure they would pass the same way). It calls the same torch
kernels with the same arguments in the same order, so every result is the same, bit
for bit. The Python state a user can read afterwards is the same too: ``p.grad`` (a
new tensor, as the sweep makes), the optimizer's state, the version counters (a
stale tape recorded before a compiled step still refuses to sweep).

What is not compiled, and what happens instead:
    your own Function             its forward and backward are called from the
                                  generated code (with a fresh ctx), as they are
    an optimizer step that keeps  called as it is, e.g. ``optimizer.step()`` for Adam,
    Python numbers (Adam's step)  whose bias corrections are Python floats
    a value read into Python      refused with an error naming the line (or, with
    (.item(), if loss > 1)        on_value_read='retrace', run eagerly with a warning)
    hooks, create_graph,          refused, by name
    retain_grad, keep_grads
    anomaly mode, Tape blocks     the call runs eagerly (they want the tape)

Everything the generated code and its guards read is found by walking from the step:
its arguments, closure, globals, and the modules and optimizers those hold. Python
state it cannot reach (a global of another module that a helper reads, a counter in
an object of a library class) is not guarded: keep such values in reach, or pass them
as arguments. ``step.code`` shows the generated function; ``step.guard_code`` its
guard; ``step.last_miss`` why the last trace happened.
"""

from .step import CompiledStep, Variant, compile
from .ir import CompileError, ValueRead

__all__ = ["compile", "CompiledStep", "Variant", "CompileError", "ValueRead"]
