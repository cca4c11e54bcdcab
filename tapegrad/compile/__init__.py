"""tapegrad.compile: a traced training step, replayed as generated straight-line code.

A tape is a straight-line program: once a step has run, the kernels it called and the
order it called them in are known, and replaying them needs no Python object per op.

    step = tapegrad.compile(train_step)

    step(*args):
        for each kept variant, most recent first:
            if variant.guard(*args) is None:      # generated: the arguments' layout, and the
                return variant.run(*args)         # state the step reads, as traced (guards.py)
        before = snapshot of the state train_step can reach                      (state.py)
        run train_step(*args) eagerly, recording                                 (trace.py)
            every torch call (the forward's ops, the sweep's derivatives, the update),
            each tensor as a value of the program, and where each call came from
        after = snapshot again; what changed is what the step writes             (plan.py)
        run   = one Python function: a line per kernel, the Python state written
                where eager writes it, each value deleted after its last use   (codegen.py)
        guard = one Python function checking everything the trace depended on
        keep (guard, run) as a variant; return what train_step returned

What the generated code leaves out is only what eager does around the kernels: no
Tensor wrappers, no tape nodes, no per-op checks (they ran while tracing, and the guards
make sure they would pass the same way). It calls the same torch kernels with the same
arguments in the same order, so every result is the same, bit for bit, and so is the
Python state a user can read afterwards: ``p.grad`` (a new tensor, as the sweep makes
it), the optimizer's state, the version counters (a tape recorded before a compiled
step still refuses to sweep after it).

What the guards check: the arguments' type, dtype, device, shape and contiguity; the
recording mode; and the state reachable from the step (its closure, its globals, the
modules and optimizers they hold): every parameter, buffer and submodule by identity,
every number by value. An object's attribute is checked when code that ran reads it by
name (``self.lr``, ``getattr(self, "training")``), so an attribute no code reads can
change without a retrace. A call that fails the guard is traced again; a few variants
are kept (the last partial batch), and ``step.last_miss`` says what differed.

What is not compiled, and what happens instead:
    your own Function              its forward and backward are called from the
                                   generated code, as they are (with a fresh ctx)
    an optimizer step that keeps   called as it is (``optimizer.step()`` for Adam,
    Python numbers of its own      whose bias corrections use its Python step count)
    a value read into Python       refused with an error naming the line; or, with
    (.item(), if loss > 1, print)  on_value_read='retrace', run eagerly with a warning
    hooks, create_graph,           refused, by name
    retain_grad, keep_grads,
    scheduler.step()               (call it after the compiled step instead)
    anomaly mode, Tape blocks      the call runs eagerly (they want the tape)

Python state the compiler cannot reach (a global of another module that a helper
reads, a counter in an object of a library class, an iterator advanced by the step) is
not guarded or replayed: keep such values in reach of the step, or pass them in.

``step.code`` is the generated function, ``step.guard_code`` its guard; see
docs/backprop.md, "The tape as a program".
"""

from .ir import CompileError, ValueRead
from .step import CompiledStep, Variant, compile

__all__ = ["compile", "CompiledStep", "Variant", "CompileError", "ValueRead"]
