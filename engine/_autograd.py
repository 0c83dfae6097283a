"""Graph nodes, grad mode and the backward scheduler.

A node is created for each differentiable op applied to tensors that require
grad. It holds edges to the nodes of its inputs (`next_functions`), the
metadata needed to shape the gradients it sends along them, and the tensors
its rule saved. The scheduler is iterative (dependency counting, no
recursion), so arbitrarily deep graphs backward.
"""
from __future__ import annotations

import contextlib
import functools
import warnings

import numpy as np

_FREED_MESSAGE = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed "
    "when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to "
    "backward through the graph a second time or if you need to access saved tensors after "
    "calling backward.")


class _GradMode:
    enabled = True


def is_grad_enabled() -> bool:
    return _GradMode.enabled


class no_grad(contextlib.ContextDecorator):
    """Context manager and decorator that disables graph recording, as torch.no_grad."""

    def __enter__(self):
        self._prev = _GradMode.enabled
        _GradMode.enabled = False
        return None

    def __exit__(self, *exc):
        _GradMode.enabled = self._prev
        return False


class enable_grad(contextlib.ContextDecorator):
    """Context manager and decorator that enables graph recording, as torch.enable_grad."""

    def __enter__(self):
        self._prev = _GradMode.enabled
        _GradMode.enabled = True
        return None

    def __exit__(self, *exc):
        _GradMode.enabled = self._prev
        return False


class Node:
    """A recorded op: the base of every `XxxBackward0` class.

    Subclasses are made per op by `node_class(name)`, so `type(t.grad_fn).__name__`
    and `t.grad_fn.name()` both read as torch's do.
    """

    __slots__ = ("next_functions", "_input_meta", "_rule", "ctx", "__weakref__")

    def __init__(self, rule, next_functions, input_meta, ctx):
        self._rule = rule                    # backward(ctx, g) -> tuple of grads, one per edge
        self.next_functions = next_functions  # tuple of (Node | None, 0), one per tensor input
        self._input_meta = input_meta        # (shape, dtype) per edge: gradients are fitted to these
        self.ctx = ctx

    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{self.name()} object at {id(self):#x}>"

    def _apply(self, g, create_graph: bool):
        ctx = self.ctx
        if ctx.freed:
            raise RuntimeError(_FREED_MESSAGE)
        return self._rule(ctx.as_tensors() if create_graph else ctx, g)

    def _release(self):
        # Saved tensors are dropped after a backward without retain_graph. Nodes
        # that saved nothing stay usable, as in torch.
        if self.ctx.tensors:
            self.ctx.freed = True
            self.ctx.drop_saved()


class AccumulateGrad(Node):
    """The sink node of a leaf that requires grad: adds incoming gradients to `.grad`."""

    __slots__ = ("variable",)

    def __init__(self, variable):
        self.variable = variable
        self.next_functions = ()
        self._input_meta = ()

    def name(self) -> str:
        return "torch::autograd::AccumulateGrad"

    def _release(self):
        pass


@functools.cache
def node_class(name: str) -> type:
    """The Node subclass torch names `name` (MulBackward0, SumBackward1, ...)."""
    return type(name, (Node,), {"__slots__": ()})


def sum_to_shape(grad, shape: tuple):
    """Undo broadcasting: sum a gradient (array or tensor) down to the shape of its input.

    This is the only place in the engine that reduces broadcast gradients, so
    derivative rules never think about broadcasting.
    """
    from ._ops import _reshape, sum as _sum  # circular: ops record nodes
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    dims = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and grad.shape[i + lead] != 1)
    if isinstance(grad, np.ndarray) or np.isscalar(grad):
        out = np.sum(grad, axis=dims, keepdims=True).reshape(shape)
    else:
        out = _sum(grad, dims, keepdim=True) if dims else grad
        if lead:
            out = _reshape(out, shape)
    assert out.shape == shape, f"gradient of shape {grad.shape} cannot reach an input of shape {shape}"
    return out


def run_backward(roots, grads, *, retain_graph: bool, create_graph: bool):
    """Backpropagate `grads` (tensors shaped like `roots`) into the leaves' `.grad`.

    Nodes run in reverse topological order by counting, for each node, how
    many of its consumers still have to send it a gradient (HIPS autograd's
    toposort, without recursion). Without create_graph, gradients travel as
    numpy arrays and nothing is recorded; with it, they are tensors and the
    rules' arithmetic builds a graph.
    """
    # 1. Count dependencies over the reachable graph.
    dependencies: dict[Node, int] = {}
    stack = []
    for root in roots:
        node = root.grad_fn if root.grad_fn is not None else root._accumulator()
        if node not in dependencies:
            dependencies[node] = 0
            stack.append(node)
    while stack:
        node = stack.pop()
        for child, _ in node.next_functions:
            if child is None:
                continue
            if child in dependencies:
                dependencies[child] += 1
            else:
                dependencies[child] = 1
                stack.append(child)

    # 2. Seed the roots and run nodes whose every consumer has reported.
    pending: dict[Node, object] = {}
    for root, g in zip(roots, grads):
        node = root.grad_fn if root.grad_fn is not None else root._accumulator()
        g = g if create_graph else g._data
        pending[node] = g if node not in pending else pending[node] + g
    ready = [n for n in pending if dependencies[n] == 0]

    with (enable_grad() if create_graph else no_grad()), np.errstate(all="ignore"):
        while ready:
            node = ready.pop()
            g = pending.pop(node)
            if isinstance(node, AccumulateGrad):
                _accumulate(node.variable, g, create_graph)
                continue
            input_grads = node._apply(g, create_graph)
            if not retain_graph:
                node._release()
            for (child, _), (shape, dt), ig in zip(node.next_functions, node._input_meta, input_grads):
                if child is None:
                    continue
                if ig is not None:
                    if ig.shape != shape:
                        ig = sum_to_shape(ig, shape)
                    if create_graph:
                        if ig.dtype is not dt:
                            ig = ig.to(dt)
                    elif ig.dtype != dt.np:
                        ig = ig.astype(dt.np)
                    pending[child] = ig if child not in pending else pending[child] + ig
                dependencies[child] -= 1
                if dependencies[child] == 0:
                    if child in pending:
                        ready.append(child)
                    else:
                        # Every path to this node carried no gradient: nothing flows on.
                        _drain(child, dependencies, pending, ready, retain_graph)


def _drain(node, dependencies, pending, ready, retain_graph):
    """Release a node that received no gradient and propagate the absence."""
    stack = [node]
    while stack:
        n = stack.pop()
        if not retain_graph:
            n._release()
        for child, _ in n.next_functions:
            if child is None:
                continue
            dependencies[child] -= 1
            if dependencies[child] == 0:
                if child in pending:
                    ready.append(child)
                else:
                    stack.append(child)


_CREATE_GRAPH_WARNING = (
    "Using backward() with create_graph=True will create a reference cycle between the parameter "
    "and its gradient which can cause a memory leak. We recommend using autograd.grad when "
    "creating the graph to avoid this. If you have to use this function, make sure to reset the "
    ".grad fields of your parameters to None after use to break the cycle and avoid the leak.")
_warned_create_graph = False


def _accumulate(variable, g, create_graph):
    """AccumulateGrad: store or add `g` into the leaf's `.grad`, as torch does."""
    from ._ops import _copy  # circular: ops record nodes
    from ._tensor import Tensor
    global _warned_create_graph
    if create_graph:
        if g.requires_grad and not _warned_create_graph:
            # NOTE: torch warns once per process (TORCH_WARN_ONCE).
            _warned_create_graph = True
            warnings.warn(_CREATE_GRAPH_WARNING, UserWarning, stacklevel=4)
        if variable._grad is None:
            # NOTE: torch deep-copies a first gradient (node CopyBackwards) and adds out of
            # place afterwards (node AddBackward0), so .grad stays differentiable.
            variable._grad = _copy(g) if g.requires_grad else g._detached_copy()
        else:
            variable._grad = variable._grad + g
    elif variable._grad is None:
        variable._grad = Tensor._make(np.array(g, dtype=variable.dtype.np), variable.dtype)
    elif variable._grad.requires_grad:
        variable._grad = (variable._grad + Tensor._make(np.asarray(g), variable.dtype)).detach()
    else:
        # NOTE: torch accumulates in place, so references to .grad see the sum.
        np.add(variable._grad._data, g, out=variable._grad._data)
