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
import heapq
import itertools
import sys
import warnings
import weakref

import numpy as np

from . import _cpu, _memory, _sum_order, _zerotensor

_FREED_MESSAGE = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed "
    "when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to "
    "backward through the graph a second time or if you need to access saved tensors after "
    "calling backward.")


_SEQUENCE = itertools.count()
_next_seq = _SEQUENCE.__next__     # a node's creation number (backward runs later nodes first)
_RUN_AT_ONCE_SEQ = sys.maxsize     # see new_node


class _GradModeState:
    """Whether ops record (`enabled`) and whether they make inference tensors: one instance,
    `_GradMode`, read by every op (a slot of an instance costs a fraction of a class attribute)."""

    __slots__ = ("enabled", "inference")

    def __init__(self):
        self.enabled = True
        self.inference = False


_GradMode = _GradModeState()


def is_grad_enabled() -> bool:
    return _GradMode.enabled


def is_inference_mode_enabled() -> bool:
    return _GradMode.inference


class set_grad_enabled(contextlib.ContextDecorator):
    """Enable or disable graph recording: as a function call, a context manager or a decorator."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self._prev = _GradMode.enabled
        _GradMode.enabled = self.mode   # NOTE: torch applies the mode at construction

    def __enter__(self):
        return None

    def __exit__(self, *exc):
        _GradMode.enabled = self._prev
        return False

    def __call__(self, fn):
        # As a decorator the mode applies only inside the call: undo the construction-time switch.
        _GradMode.enabled = self._prev
        return super().__call__(fn)

    def __repr__(self) -> str:
        return f"torch.autograd.grad_mode.set_grad_enabled(mode={self.mode})"


class inference_mode(contextlib.ContextDecorator):
    """Like no_grad; tensors created inside are inference tensors, which autograd refuses to save."""

    def __init__(self, mode: bool = True):
        self.mode = mode

    def __enter__(self):
        self._prev = (_GradMode.enabled, _GradMode.inference)
        if self.mode:
            _GradMode.enabled, _GradMode.inference = False, True
        return None

    def __exit__(self, *exc):
        _GradMode.enabled, _GradMode.inference = self._prev
        return False


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
    """A recorded op: the base of every `XxxBackward0` class, and the context its rule reads.

    Subclasses are made per op by `node_class(name)`, so `type(t.grad_fn).__name__`
    and `t.grad_fn.name()` both read as torch's do.

    A rule is `backward(ctx, g)` with the node itself as `ctx`: what the op kept for its
    backward are attributes of the node (its instance dict: `ctx.alpha`, `ctx.self_shape`,
    and the arrays of saved tensors under torch's argument names, `ctx.self`, `ctx.result`),
    and `ctx.needs` says which inputs want a gradient. `_saved` lists the saved tensors as
    (name, tensor, version at saving) triples; it is None once they were freed.
    """

    __slots__ = ("next_functions", "_input_meta", "_backward", "needs", "_saved", "_pre_hooks", "_retained",
                 "_seq", "__dict__", "__weakref__")

    _qualified_name = "Node"
    _run_at_once = False

    def name(self) -> str:
        return self._qualified_name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} object at {id(self):#x}>"

    def _apply(self, g, create_graph: bool, release: bool = False):
        """The gradients for the inputs; with `release`, the saved tensors are freed after."""
        saved = self._saved
        if saved is None:
            raise RuntimeError(_FREED_MESSAGE)
        for name, tensor, version in saved:
            if tensor._vc[0] != version:
                # NOTE: torch names a saved output's producer (this node) and a saved input's
                # current grad_fn.
                producer = self._result_producer() if name == "result" else tensor.grad_fn
                raise RuntimeError(_modified_message(tensor, version, producer))
        if g is None:
            grads = self._undefined_grads()
        else:
            grads = self._backward(self._with_saved_tensors() if create_graph else self, g)
        if release:
            self._release()
        return grads

    def _result_producer(self):
        """The node a modified saved output is described as the output of: this node, or for
        an in-place op on a view the view's node regenerated at saving, while it lives (torch
        keeps a weak reference to it: `result_producer`, set by the in-place machinery)."""
        ref = self.__dict__.get("result_producer")
        node = ref() if ref is not None else None
        return self if node is None else node

    def _undefined_grads(self):
        # NOTE: torch runs a node whose incoming gradient is undefined (norm with p=0 gives none):
        # it unpacks its saved tensors (the checks above) and passes undefined gradients on.
        return (None,) * len(self.next_functions)

    def _with_saved_tensors(self) -> "SavedTensors":
        """The context of a create_graph backward: the saved values are the saved tensors."""
        from ._tensor import WrappedNumber  # circular: tensors link to nodes
        ctx = SavedTensors()
        ctx.__dict__.update(self.__dict__)
        ctx.needs = self.needs
        for name, tensor, _ in self._saved:
            # A wrapped Python number becomes the 0-d tensor torch saved for it.
            if type(tensor) is WrappedNumber:
                tensor = tensor.as_tensor()
            elif type(tensor) is SavedOutput:
                tensor = tensor.unpack(self)
            ctx.__dict__[name] = tensor
        return ctx

    def _save(self, name: str, tensor) -> None:
        """Save `tensor` as `ctx.<name>` with its current version (in the place of what was
        saved under that name)."""
        entry = (name, SavedOutput(tensor) if name == "result" else tensor, tensor._vc[0])
        saved = self._saved
        names = [e[0] for e in saved]
        self._saved = saved[:names.index(name)] + (entry,) + saved[names.index(name) + 1:] \
            if name in names else saved + (entry,)
        self.__dict__[name] = tensor._data

    def _release(self):
        # Saved tensors are dropped after a backward without retain_graph. Nodes
        # that saved nothing stay usable, as in torch.
        if self._saved:
            attrs = self.__dict__
            for name, _, _ in self._saved:
                attrs.pop(name, None)
            self._saved = None


class SavedOutput:
    """An op's output as its node saves it ("result"): its version counter, array, dtype and a
    weak reference to it, not the tensor itself, whose node is the saving node.

    NOTE: torch's SavedVariable saves an output without its grad_fn (and rebuilds the tensor
    with it on unpacking), so an output and its node form no reference cycle: `y = x.tanh();
    del y` frees y at once. Holding the tensor made a cycle that only Python's cycle collector
    broke, for every graph that was never run backward (or was kept with retain_graph).
    """

    __slots__ = ("_vc", "_data", "dtype", "_ref")

    def __init__(self, tensor):   # (record makes its own without this call)
        self._vc, self._data, self.dtype = tensor._vc, tensor._data, tensor.dtype
        self._ref = weakref.ref(tensor)

    @property
    def shape(self):
        return self._data.shape

    def unpack(self, node):
        """The output: the tensor itself while it lives, else one rebuilt around the saved array
        as the output of `node`, sharing its version counter (torch's unpacking)."""
        tensor = self._ref()
        if tensor is None:
            from ._tensor import Tensor  # circular: tensors link to nodes
            tensor = Tensor._make(self._data, self.dtype, True, node)
            tensor._vc = self._vc
        return tensor


class SavedTensors:
    """The context a rule reads in a create_graph backward: a node's attributes, with the
    saved tensors themselves in place of their arrays."""


# What a node that saved nothing holds in `_saved` (the backward loop tests for it by identity).
NOTHING_SAVED = ()


def new_node(cls, backward, edges: tuple, input_meta, needs, saved: tuple, attrs: dict) -> Node:
    """A node of class `cls` (a Node subclass) that runs `backward(ctx, g)`.

    `edges`: (Node | None, 0) per input; `input_meta`: (shape, dtype) per input, which the
    scheduler fits each gradient to; `needs`: per input, whether its gradient is wanted;
    `saved`: (name, tensor, version) triples; `attrs`: the rule's other values (becomes the
    node's instance dict, with the saved tensors' arrays).
    """
    node = _new(cls)
    node.__dict__ = attrs
    node._seq = _next_seq()           # creation order: backward runs later nodes first
    node._backward = backward
    node.next_functions = edges
    node._input_meta = input_meta
    node.needs = needs
    node._saved = saved
    node._pre_hooks = None            # {handle id: hook} from Tensor.register_hook
    node._retained = None             # weakref to the output tensor that retains its grad
    if cls._run_at_once:
        # NOTE: torch gives the nodes of ops without a derivative (NotImplemented) the highest
        # sequence number, like AccumulateGrad: among them, the first edge pushed runs first.
        node._seq = _RUN_AT_ONCE_SEQ
    return node


_new = object.__new__


def op_label(node) -> str:
    """How torch's messages name the op of a node: "Backward" and a 0 suffix dropped from
    generated names (ExpBackward0 -> Exp, SqueezeBackward1 -> Squeeze1), other names whole
    (torch::autograd::CopyBackwards)."""
    op = node.name()
    head, _, number = op.rpartition("Backward")
    if head and number.isdigit():
        op = head + ("" if number == "0" else number)
    return op


def _modified_message(tensor, version, producer) -> str:
    described = f"[torch.{tensor.dtype.scalar_name}Tensor [{', '.join(map(str, tensor.shape))}]]"
    if producer is not None:
        described += f", which is output 0 of {op_label(producer)},"
    return ("one of the variables needed for gradient computation has been modified by an inplace "
            f"operation: {described} is at version {tensor._vc[0]}; expected version {version} instead. "
            "Hint: enable anomaly detection to find the operation that failed to compute its gradient, "
            "with torch.autograd.set_detect_anomaly(True, check_nan=False).")


class AccumulateGrad(Node):
    """The sink node of a leaf that requires grad: adds incoming gradients to `.grad`."""

    __slots__ = ("variable",)

    def __init__(self, variable):
        # NOTE: torch gives AccumulateGrad the highest sequence number, so a leaf's gradient
        # is accumulated as soon as it is complete (before an error later in the backward).
        self._seq = sys.maxsize
        self.variable = variable
        self.next_functions = ()
        self._input_meta = ()
        self.needs = ()
        self._saved = NOTHING_SAVED
        self._pre_hooks = None
        self._retained = None

    _qualified_name = "torch::autograd::AccumulateGrad"

    def _release(self):
        pass


@functools.cache
def node_class(name: str) -> type:
    """The Node subclass torch names `name` (MulBackward0, SumBackward1, ...).

    Names in torch's C++ namespace ("torch::autograd::CopySlices") keep it in
    `name()` and drop it from the class name, as torch's repr shows them.
    """
    cls = type(name.rpartition("::")[2], (Node,), {
        "__slots__": (), "_qualified_name": name, "_run_at_once": name == "torch::autograd::NotImplemented"})
    if cls._run_at_once:
        cls._undefined_grads = lambda self: self._backward(self, None)   # raises, gradient or not
    return cls


def sum_to_shape(grad, shape: tuple):
    """Undo broadcasting: sum a gradient (array or tensor) down to the shape of its input.

    This is the only place in the engine that reduces broadcast gradients, so
    derivative rules never think about broadcasting.
    """
    if grad.shape == shape:
        return grad
    if type(grad) is np.ndarray and grad.ndim == 2 and len(shape) == 1 and shape[0] == grad.shape[1]:
        # a bias's gradient, (n, C) to (C,): the order of the general path's below, in fewer steps
        out = _sum_order.column_sum(grad)
        if out is not None:
            return out
    lead = grad.ndim - len(shape)
    dims = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and grad.shape[i + lead] != 1)
    if isinstance(grad, np.ndarray) or np.isscalar(grad):
        # NOTE: torch's sum_to is a sum over these dims; over every dim that is its full
        # reduction, whose order of additions `_cpu.full_sum` follows (fuzzer finding: var -> exp
        # under double backward, a float32 residue of sum(x - mean) that numpy's pairwise sum
        # rounds to 0)
        full = _cpu.full_sum(grad, grad.dtype) if type(grad) is np.ndarray and len(dims) == grad.ndim else None
        if full is None and type(grad) is np.ndarray and dims == tuple(range(len(dims))):
            # NOTE: a sum over leading dims (a batch's, W5's y) likewise follows torch's order
            # where `_cpu.leading_sum` covers it; numpy's differed in 1,758 of W5's 2,048 sums
            full = _cpu.leading_sum(grad, len(dims))
        if full is None and type(grad) is np.ndarray:
            # other dims too (campaign seed 27: x0 + v0 of shapes (2,) and (2, 3, 1), flattened,
            # backward with a gradient of 1e30 and -1e30: x0's gradient 0.0 in torch, -2.6 in
            # numpy's order)
            full = _sum_order.dims_sum(grad, dims)
        if full is None:
            # (np.add.reduce is what np.sum runs for an array, without its Python-level dispatch)
            full = (np.add.reduce(grad, axis=dims, keepdims=True) if type(grad) is np.ndarray
                    else np.sum(grad, axis=dims, keepdims=True))
        out = full.reshape(shape)
    else:   # (a tensor: create_graph. engine._ops records nodes, and imports this module)
        if _late_ops is None:
            _late_imports()
        ops = _late_ops
        if not shape:
            out = ops.sum(grad)   # NOTE: torch's sum_to of a 0-d input is a full sum (SumBackward0, no view)
        else:
            out = ops.sum(grad, dims, keepdim=True) if dims else grad
            if lead:
                out = ops._reshape(out, shape)
    assert out.shape == shape, f"gradient of shape {grad.shape} cannot reach an input of shape {shape}"
    return out


class BackwardRun:
    """Which backward call runs now: `id` changes with each. The engine gives each output of
    a multi-output torch node its own node; a rule emulating such a torch node's joint
    behaviour (layer_norm's double backward) tells one backward from the next by it.

    `plain`: the backward running now is a plain `.backward()` (no `inputs`, no create_graph):
    the gradients a rule passes to another node are seen by no one but that node's rule unless
    the node has hooks or retains its gradient (mm's backward passes a repeated row on unexpanded
    to another mm's: `_ops._mm_backward`)."""

    id = 0
    plain = False


def run_backward(roots, grads, *, retain_graph: bool, create_graph: bool, inputs=None,
                 accumulate: bool = True):
    """`_run_backward` with `BackwardRun.plain` set for its duration (see there)."""
    outer = BackwardRun.plain
    BackwardRun.plain = inputs is None and accumulate and not create_graph
    try:
        return _run_backward(roots, grads, retain_graph=retain_graph, create_graph=create_graph, inputs=inputs,
                             accumulate=accumulate)
    finally:
        BackwardRun.plain = outer


# NOTE: torch's engine asserts that no gradient reaches an integral tensor; one can only be in a
# graph when an in-place op on it was recorded (x_int.eq_(y) with y requiring grad). Its
# message is an internal assert's, with the path of the file torch 2.13 was built from.
_INTEGRAL_GRADIENT = ('isDifferentiableType(grad.scalar_type()) INTERNAL ASSERT FAILED at '
                      '"/__w/pytorch/pytorch/torch/csrc/autograd/engine.cpp":998, please report a bug to PyTorch. ')


def _run_backward(roots, grads, *, retain_graph: bool, create_graph: bool, inputs=None,
                  accumulate: bool = True):
    """Backpropagate `grads` (tensors shaped like `roots`).

    With `accumulate`, gradients reaching leaves (or, when `inputs` is given, only
    those inputs) are added to `.grad`; otherwise the gradients of `inputs` are
    returned (autograd.grad), None for inputs the roots do not depend on.

    Nodes run in reverse topological order by counting, for each node, how
    many of its consumers still have to send it a gradient (HIPS autograd's
    toposort, without recursion). Without create_graph, gradients travel as
    numpy arrays and nothing is recorded; with it, they are tensors and the
    rules' arithmetic builds a graph.

    This loop runs once per node of every backward, so it is written for speed:
    hooks, captures and `needed` cost only where present. A plain backward from one root
    first runs the chain of single-consumer nodes below it without counting (`_run_chain`).
    """
    Tensor = _Tensor or _late_imports()     # (imported once: an import statement here costs ~1 us a call)
    _errstate = _late_ops._errstate

    BackwardRun.id += 1
    if not all(root.dtype.is_floating_point for root in roots):
        raise RuntimeError(_INTEGRAL_GRADIENT)
    root_nodes = [root.grad_fn if root.grad_fn is not None else root._accumulator() for root in roots]
    # A view made under no_grad has no node: its gradient goes nowhere, as in torch.
    grads = [g for node, g in zip(root_nodes, grads) if node is not None]
    root_nodes = [node for node in root_nodes if node is not None]
    seeds = [g if create_graph else g._data for g in grads]
    if inputs is None and accumulate and not create_graph and len(root_nodes) == 1:
        with no_grad(), _errstate():
            node, g = _run_chain(root_nodes[0], seeds.pop(), retain_graph)
        if node is None:
            return None
        root_nodes, seeds = [node], [g]   # the rest of the graph, from where the chain ends
        node = g = None
    captures = {}
    needed = None
    # 1. Count, for each node, the consumers that will send it a gradient.
    if inputs is None:
        dependencies = _consumer_counts(root_nodes)
    else:
        for i, t in enumerate(inputs):
            captures.setdefault(t.grad_fn if t.grad_fn is not None else t._accumulator(), []).append(i)
        graph = _reachable(root_nodes)
        needed = _needed(graph, captures)
        dependencies = dict.fromkeys(graph, 0)
        for node in needed:
            for child in graph[node]:
                dependencies[child] += 1

    # 2. Seed the roots and run nodes whose every consumer has reported.
    pending: dict[Node, object] = {}
    for node, g in zip(root_nodes, seeds):
        pending[node] = g if node not in pending else pending[node] + g
    seeds = None
    # Ready nodes run latest-created first, as torch's engine orders them (by sequence number).
    order = itertools.count()   # ties (AccumulateGrad, NotImplemented) run in push order
    ready = [(-n._seq, next(order), n) for n in pending if dependencies[n] == 0]
    heapq.heapify(ready)
    results = [None] * len(inputs) if inputs is not None else None
    push, pop = heapq.heappush, heapq.heappop

    def as_tensor(g, dt):
        return g if create_graph else Tensor._make(g if type(g) is _zerotensor.ZeroArray else np.asarray(g), dt)

    # The next node to run when it is the only one ready (a chain), with its gradient: no heap
    # or `pending` round trip.
    node = g = None
    with (enable_grad() if create_graph else no_grad()), _errstate():
        while True:
            if node is None:
                if not ready:
                    break
                node = pop(ready)[2]
                g = pending.pop(node)
            if node._pre_hooks or node._retained is not None:
                g = _run_tensor_hooks(node, g, create_graph, as_tensor)
            if captures and node in captures:
                for i in captures[node]:
                    results[i] = g
                if accumulate and g is not None:
                    _accumulate(inputs[captures[node][0]], g, create_graph)
            if type(node) is AccumulateGrad:
                if accumulate and inputs is None and g is not None:
                    # (The loop's other names for the gradient let go of it first: `_accumulate`
                    # adopts a first gradient nothing else refers to.)
                    ig = input_grads = None
                    _accumulate(node.variable, g, create_graph)
                node = None
                continue
            if needed is not None and node not in needed:
                node = None
                continue
            saved = node._saved
            if create_graph or g is None or type(saved) is not tuple:
                input_grads = node._apply(g, create_graph, not retain_graph)
            elif saved is NOTHING_SAVED:
                input_grads = node._backward(node, g)    # nothing to check: the rule runs at once
            else:
                # `_apply` spelled out for the common case: saved tensors unmodified, plain backward.
                for _, tensor, version in saved:
                    if tensor._vc[0] != version:
                        input_grads = node._apply(g, create_graph, not retain_graph)   # raises
                        break
                else:
                    input_grads = node._backward(node, g)
                    if not retain_graph:
                        node._release()
            edges, meta = node.next_functions, node._input_meta
            node = None
            for (child, _), (shape, dt), ig in zip(edges, meta, input_grads):
                if child is None or (needed is not None and child not in needed):
                    continue
                if ig is not None:
                    if ig.shape != shape:
                        ig = sum_to_shape(ig, shape)
                    if create_graph:
                        if ig.dtype is not dt:
                            if not dt.is_floating_point:
                                raise RuntimeError(_INTEGRAL_GRADIENT)
                            ig = ig.to(dt)
                    elif ig.dtype is not dt.np and ig.dtype != dt.np:
                        ig = _in_dtype(ig, dt)
                    if child in pending:
                        previous = pending.pop(child)
                        ig = (ig if previous is None else previous + ig if type(ig) is not _zerotensor.ZeroArray
                              else _zerotensor.add_gradient(previous, ig))
                elif child in pending:
                    ig = pending.pop(child)
                # `pending` holds the gradients of nodes that wait for more or sit in the heap;
                # None there: reached so far only by undefined gradients. Such a node still
                # runs, as in torch (its saved tensors are checked, its hooks see None).
                count = dependencies[child] - 1
                dependencies[child] = count
                if count:
                    pending[child] = ig
                    continue
                if node is not None:     # more than one node ready: the heap orders them
                    pending[node] = g
                    push(ready, (-node._seq, next(order), node))
                    node = None
                if ready:
                    pending[child] = ig
                    push(ready, (-child._seq, next(order), child))
                else:
                    node, g = child, ig
            if node is not None and ready:
                pending[node] = g
                push(ready, (-node._seq, next(order), node))
                node = None
    if results is None:
        return None
    return [None if g is None else as_tensor(g, t.dtype) if not create_graph else g
            for g, t in zip(results, inputs)]


def _run_chain(node, g, retain_graph: bool):
    """Run a plain backward from `node` (gradient `g`, an array) down the chain of nodes that
    each have one input in the graph, and return where the chain ends: (node, its gradient)
    for the general loop to run the rest from, or (None, None) when everything has run.

    Every node of such a chain has one consumer, so it runs as soon as its consumer has:
    the order, values and errors are the general loop's, without counting consumers first
    (the chain is most of a typical graph: `x * 2`, `y.exp()`, `z + 1`). A node that branches,
    has hooks or a retained gradient, receives no gradient or fails its saved-tensor check
    ends the chain: the general loop runs it as ever, and the subgraph below it is reached
    from it alone, so counting from it counts all its consumers.
    """
    while True:
        if g is None or node._pre_hooks or node._retained is not None:
            return node, g
        if type(node) is AccumulateGrad:
            # (The names of the gradient other than `g` let go of it first: `_accumulate`
            # adopts a first gradient nothing else refers to.)
            ig = input_grads = None
            _accumulate(node.variable, g, False)
            return None, None
        edges = node.next_functions
        if len(edges) == 1:
            child, k = edges[0][0], 0
        elif len(edges) == 2 and (edges[0][0] is None or edges[1][0] is None):
            k = edges[0][0] is None    # (an index: False is 0)
            child = edges[k][0]
        else:
            return node, g
        saved = node._saved
        if type(saved) is not tuple:
            return node, g     # freed: the general loop raises torch's error
        for _, tensor, version in saved:
            if tensor._vc[0] != version:
                return node, g     # the general loop raises torch's error
        input_grads = node._backward(node, g)
        if saved and not retain_graph:     # (`Node._release`, spelled out: a tuple is never CopySlices')
            attrs = node.__dict__
            for name, _, _ in saved:
                attrs.pop(name, None)
            node._saved = None
        if child is None:
            return None, None
        ig = input_grads[k]
        if ig is not None:
            shape, dt = node._input_meta[k]
            if ig.shape != shape:
                ig = sum_to_shape(ig, shape)
            if ig.dtype is not dt.np and ig.dtype != dt.np:
                ig = _in_dtype(ig, dt)
        node, g = child, ig


def _in_dtype(g: np.ndarray, dt):
    """A plain-backward gradient cast to the dtype of the input it reaches."""
    if not dt.is_floating_point:
        raise RuntimeError(_INTEGRAL_GRADIENT)
    return g.astype(dt.np)


def _consumer_counts(root_nodes) -> dict:
    """node -> how many edges of the graph reachable from the roots lead to it (one
    iterative pass; each node's edges are read once)."""
    counts = dict.fromkeys(root_nodes, 0)
    stack = list(counts)
    pop, push = stack.pop, stack.append
    while stack:
        for child, _ in pop().next_functions:
            if child is not None:
                if child in counts:
                    counts[child] += 1
                else:
                    counts[child] = 1
                    push(child)
    return counts


def _reachable(root_nodes) -> dict:
    """node -> its child nodes, over everything reachable from the roots (iteratively)."""
    graph = {}
    stack = list(root_nodes)
    while stack:
        node = stack.pop()
        if node in graph:
            continue
        children = [child for child, _ in node.next_functions if child is not None]
        graph[node] = children
        stack.extend(c for c in children if c not in graph)
    return graph


def _needed(graph: dict, captures: dict) -> set:
    """The nodes from which a captured node can be reached: the only ones autograd.grad runs."""
    parents: dict = {}
    for node, children in graph.items():
        for child in children:
            parents.setdefault(child, []).append(node)
    needed = set()
    stack = [n for n in captures if n in graph]
    while stack:
        node = stack.pop()
        if node in needed:
            continue
        needed.add(node)
        stack.extend(parents.get(node, ()))
    return needed


def _run_tensor_hooks(node, g, create_graph, as_tensor):
    """Tensor hooks in registration order, then the retain_grad store (torch runs it last)."""
    if g is None:
        return _run_tensor_hooks_undefined(node)
    dt = node.variable.dtype if isinstance(node, AccumulateGrad) else None
    if node._pre_hooks:
        for hook in list(node._pre_hooks.values()):
            t = as_tensor(g, dt or (g.dtype if create_graph else _dtype_of(g)))
            replacement = hook(t)
            if replacement is not None:
                _check_hook_result(hook, t, replacement)
                g = replacement if create_graph else replacement._data
    if node._retained is not None:
        tensor = node._retained()
        if tensor is not None:
            grad = as_tensor(g, tensor.dtype)
            grad = grad if create_graph else grad._detached_copy()
            # NOTE: a retained non-leaf gradient accumulates out of place, as in torch.
            tensor._grad = grad if tensor._grad is None else tensor._grad + grad
    return g


def _check_hook_result(hook, grad, replacement) -> None:
    """NOTE: torch refuses a hook's replacement of another dtype or shape
    (check_variable_result); a hook without a __name__ is named '<unknown>'. (A hook that
    scales a 0-d ZeroTensor by a Python float changes its dtype: see _zerotensor.)"""
    name = getattr(hook, "__name__", "<unknown>")
    if replacement.dtype is not grad.dtype:
        raise RuntimeError(f"hook '{name}' has changed the type of value (was torch.{grad.dtype.scalar_name}Tensor "
                           f"got torch.{replacement.dtype.scalar_name}Tensor)")
    if replacement.shape != grad.shape:
        raise RuntimeError(f"hook '{name}' has changed the size of value")


def _run_tensor_hooks_undefined(node):
    """NOTE: torch calls a tensor's hooks with None when its gradient is undefined, refuses a
    replacement, and leaves a retained gradient as it was."""
    for hook in list(node._pre_hooks.values() if node._pre_hooks else ()):
        if hook(None) is not None:
            raise RuntimeError("can't replace a None gradient with a non-None value")
    return None


def _dtype_of(value):
    """The engine dtype of a gradient: a tensor's own (create_graph), or its array's."""
    from ._dtype import dtype, from_numpy
    if isinstance(getattr(value, "dtype", None), dtype):
        return value.dtype
    return from_numpy(np.asarray(value).dtype)


_Tensor = _late_ops = None   # (engine._tensor.Tensor and engine._ops, imported on first use: they import this module)


def _late_imports():
    global _Tensor, _late_ops
    from . import _ops as _late_ops
    from ._tensor import Tensor as _Tensor
    return _Tensor


_CREATE_GRAPH_WARNING = (
    "Using backward() with create_graph=True will create a reference cycle between the parameter "
    "and its gradient which can cause a memory leak. We recommend using autograd.grad when "
    "creating the graph to avoid this. If you have to use this function, make sure to reset the "
    ".grad fields of your parameters to None after use to break the cycle and avoid the leak.")
_warned_create_graph = False


def _accumulate(variable, g, create_graph):
    """AccumulateGrad: store or add `g` into the leaf's `.grad`, as torch does."""
    Tensor = _Tensor or _late_imports()
    global _warned_create_graph
    if create_graph:
        if g.requires_grad and not _warned_create_graph:
            # NOTE: torch warns once per process (TORCH_WARN_ONCE).
            _warned_create_graph = True
            warnings.warn(_CREATE_GRAPH_WARNING, UserWarning, stacklevel=4)
        if variable._grad is None:
            # NOTE: torch deep-copies a first gradient (node CopyBackwards) and adds out of
            # place afterwards (node AddBackward0), so .grad stays differentiable.
            variable._grad = _late_ops._copy(g) if g.requires_grad else g._detached_copy()
        else:
            variable._grad = variable._grad + g
    elif variable._grad is None:
        if type(g) is _zerotensor.ZeroArray:
            # NOTE: torch's AccumulateGrad steals a ZeroTensor gradient too: .grad is one.
            variable._grad = Tensor._make(g.astype(variable.dtype.np, copy=False), variable.dtype)
            return
        if _adoptable(g, variable._data):
            # NOTE: torch's AccumulateGrad steals a first gradient that nothing else references
            # and that is laid out like the leaf, instead of copying it.
            variable._grad = Tensor._make(g, variable.dtype)
            return
        # NOTE: torch's gradient layout contract: a leaf's first gradient is laid out like the
        # leaf (the gradient of a weight used transposed arrives transposed), so that updates
        # such as SGD's `p += lr * grad` run over both arrays in the same memory order.
        grad = np.empty_like(variable._data, dtype=variable.dtype.np)
        np.copyto(grad, g, casting="unsafe")
        variable._grad = Tensor._make(grad, variable.dtype)
    elif variable._grad.requires_grad:
        variable._grad = (variable._grad + Tensor._make(np.asarray(g), variable.dtype)).detach()
    else:
        # NOTE: torch accumulates in place, so references to .grad see the sum (and a
        # ZeroTensor .grad, see _zerotensor, refuses it).
        if type(variable._grad._data) is _zerotensor.ZeroArray:
            raise RuntimeError(_zerotensor.IMMUTABLE_MESSAGE)
        np.add(variable._grad._data, g, out=variable._grad._data)


def _references(g) -> int:
    return sys.getrefcount(g)


def _count_unshared() -> int:
    """How many references `_adoptable` sees to an array only its caller holds (as the
    backward loop holds a gradient: one local name, passed on as an argument)."""
    def accumulate(g, data):
        return _references(g)
    g = np.empty(0)
    return accumulate(g, None)


_UNSHARED = _count_unshared()


def _adoptable(g, data: np.ndarray) -> bool:
    """Whether a plain-backward gradient can become a leaf's `.grad` as it is (torch's
    AccumulateGrad condition: `new_grad.use_count() <= num_expected_refs` and the layout
    contract): an array that owns its memory (numpy's or `_memory`'s), that nothing but the backward loop refers to
    (not a tensor's data, a user's gradient, a value a hook kept or an array another edge
    received), of the leaf's dtype, shape and strides (and of more than one element: below that a
    copy costs nothing)."""
    return (type(g) is np.ndarray and (g.base is None or _memory.is_recycled(g)) and g.dtype is data.dtype
            and g.shape == data.shape
            and g.strides == data.strides and g.flags.writeable and data.size > 1
            and _references(g) <= _UNSHARED + 1)   # + 1: `_accumulate`'s own name for it
