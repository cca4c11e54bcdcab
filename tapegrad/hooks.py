"""Tensor hooks: ``t.register_hook(fn)`` calls ``fn(grad)`` with t's gradient during a sweep.

A hook on an op's output runs when the sweep reaches the op's node (its
gradient is then complete), before the node's derivative; one on a leaf
runs with the leaf's total gradient of the sweep, before it is added to
``.grad``. A hook may return a tensor to use instead, shaped like the
gradient, or None to keep it. Hooks run in the order they were registered.
"""

from __future__ import annotations

import weakref

import torch

from .errors import ShapeError

# Leaves' hooks, by id: {id(leaf): (weak reference to the leaf, [hooks])}. Op outputs keep
# theirs on their node (``node.hooks``), which the tape already holds.
leaf_hooks: dict = {}


class RemovableHandle:
    """What ``register_hook`` returns: ``handle.remove()`` unregisters the hook (once is enough)."""

    def __init__(self, hooks: list, hook):
        self._hooks = hooks
        self._hook = hook

    def remove(self) -> None:
        hooks = self._hooks
        for position, hook in enumerate(hooks):
            if hook is self._hook:
                del hooks[position]
                break

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False


def register(tensor, hook) -> RemovableHandle:
    """Register `hook` on `tensor` (see `Tensor.register_hook`)."""
    if not callable(hook):
        raise TypeError(
            f"register_hook takes a function of the gradient, got {type(hook).__name__}"
        )
    if not tensor.requires_grad:
        raise RuntimeError(
            "cannot register a hook on a tensor that doesn't require grad: no "
            "gradient will ever reach it. Create it with requires_grad=True"
        )
    node = tensor.node
    if node is not None:
        if node.hooks is None:
            node.hooks = []
        hooks = node.hooks
    else:
        key = id(tensor)
        entry = leaf_hooks.get(key)
        if entry is None or entry[0]() is not tensor:

            def forget(_, key: int = key) -> None:  # the leaf is gone: so are its hooks
                leaf_hooks.pop(key, None)

            entry = leaf_hooks[key] = (weakref.ref(tensor, forget), [])
        hooks = entry[1]
    hooks.append(hook)
    return RemovableHandle(hooks, hook)


def hooks_of(tensor) -> list:
    """The hooks registered on `tensor` (a leaf or an op output), in order."""
    node = tensor.node
    if node is not None:
        return list(node.hooks or ())
    entry = leaf_hooks.get(id(tensor))
    return list(entry[1]) if entry is not None and entry[0]() is tensor else []


def run(hooks, grad, where: str, wrap=None):
    """Pass `grad` through `hooks` in order; each may return a replacement.

    In an ordinary sweep `grad` is a torch tensor and so is what the sweep
    keeps (a tapegrad tensor returned is taken as its values); in a
    create_graph sweep a torch tensor returned is made a constant by `wrap`.
    """
    for hook in list(hooks):
        result = hook(grad)
        if result is None:
            continue
        if isinstance(grad, torch.Tensor):  # the ordinary sweep: torch tensors
            result = getattr(result, "_data", result)
        elif isinstance(result, torch.Tensor):  # create_graph: a constant replacement
            result = wrap(result)
        if not hasattr(result, "shape"):
            raise TypeError(
                f"hook {getattr(hook, '__name__', hook)!r} on {where} returned a "
                f"{type(result).__name__}; return a tensor shaped like the gradient, or None"
            )
        if result.shape != grad.shape:
            raise ShapeError(
                f"hook {getattr(hook, '__name__', hook)!r} on {where} changed the "
                f"gradient's shape from {tuple(grad.shape)} to {tuple(result.shape)}; "
                "return a gradient of the same shape"
            )
        if result.dtype != grad.dtype or result.device != grad.device:
            raise RuntimeError(  # (torch's type: "hook ... has changed the type of value")
                f"hook {getattr(hook, '__name__', hook)!r} on {where} changed the "
                f"gradient's type from {grad.dtype} on {grad.device} to {result.dtype} on "
                f"{result.device}; return a gradient of the same dtype and device "
                "(.to(grad.dtype))"
            )
        grad = result
    return grad
