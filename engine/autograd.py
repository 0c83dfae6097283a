"""engine.autograd: `backward` and `grad`, with torch.autograd's signatures and errors."""
from __future__ import annotations

import numpy as np

from ._autograd import run_backward
from ._tensor import Tensor


def _as_tuple(value, what: str) -> tuple:
    if isinstance(value, Tensor):
        return (value,)
    if value is None:
        return ()
    try:
        return tuple(value)
    except TypeError:
        raise TypeError(f"{what} must be a Tensor or a sequence of Tensors, got {type(value).__name__}") from None


def _make_grads(outputs: tuple, grads: tuple) -> list:
    """torch.autograd's _make_grads: check explicit gradients, create implicit ones."""
    made = []
    for i, (out, grad) in enumerate(zip(outputs, grads)):
        if isinstance(grad, Tensor):
            if grad.shape != out.shape:
                raise RuntimeError(
                    f"Mismatch in shape: grad_output[{i}] has a shape of {grad.shape} and "
                    f"output[{i}] has a shape of {out.shape}.")
            made.append(grad if grad.dtype is out.dtype else grad.to(out.dtype))
        elif grad is None:
            if out.requires_grad:
                if out.numel() != 1:
                    raise RuntimeError("grad can be implicitly created only for scalar outputs")
                if not out.dtype.is_floating_point:
                    raise RuntimeError(
                        f"grad can be implicitly created only for real scalar outputs but got {out.dtype}")
                made.append(Tensor._make(np.ones(out.shape, out.dtype.np), out.dtype))
            else:
                made.append(None)
        else:
            raise TypeError(f"gradients can be either Tensors or None, but got {type(grad).__name__}")
    return made


def _prepare(outputs, grad_outputs):
    outputs = _as_tuple(outputs, "outputs")
    grads = _as_tuple(grad_outputs, "grad_tensors")
    if not grads:
        grads = (None,) * len(outputs)
    if len(grads) != len(outputs):
        raise RuntimeError(f"got {len(grads)} tensors and {len(outputs)} gradients")
    grads = _make_grads(outputs, grads)
    for i, out in enumerate(outputs):
        # NOTE: a view made under no_grad of a tensor that requires grad requires grad too, but
        # has neither a node nor an accumulator: torch refuses to start a backward from it.
        if not out.requires_grad or (out.grad_fn is None and out._base is not None):
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn")
    return outputs, grads


def backward_implicit(output: Tensor) -> None:
    """`output.backward()` without arguments, the common call: what `backward` does for it, its
    checks in the same order, in fewer steps (W1, W3: one backward a round)."""
    if output.requires_grad:
        data = output._data
        if data.size != 1:
            raise RuntimeError("grad can be implicitly created only for scalar outputs")
        dt = output.dtype
        if not dt.is_floating_point:
            raise RuntimeError(f"grad can be implicitly created only for real scalar outputs but got {dt}")
        if output.grad_fn is not None or output._base is None:   # (see _prepare)
            ones = np.array(1, dt.np) if not data.ndim else np.ones(data.shape, dt.np)
            run_backward((output,), [Tensor._make(ones, dt)], retain_graph=False, create_graph=False)
            return
    raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, grad_variables=None,
             inputs=None):
    """Accumulate the gradients of `tensors` into the leaves' `.grad` (or only into `inputs`)."""
    if grad_variables is not None:
        grad_tensors = grad_variables
    if inputs is not None:
        inputs = _as_tuple(inputs, "inputs")
        if not inputs:
            raise RuntimeError("`inputs` argument to `backward()` cannot be empty.")
    outputs, grads = _prepare(tensors, grad_tensors)
    if retain_graph is None:
        retain_graph = create_graph
    run_backward(outputs, grads, retain_graph=retain_graph, create_graph=create_graph, inputs=inputs)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, only_inputs=True,
         allow_unused=None, is_grads_batched=False, materialize_grads=False):
    """The gradients of `outputs` with respect to `inputs`, returned rather than accumulated."""
    if materialize_grads and allow_unused is False:
        raise ValueError("Expected allow_unused to be True or not passed when materialize_grads=True, "
                         "but got: allow_unused=False.")
    if is_grads_batched:
        raise NotImplementedError("engine.autograd.grad does not support is_grads_batched=True")
    if allow_unused is None:
        allow_unused = materialize_grads
    inputs = _as_tuple(inputs, "inputs")
    if not inputs:   # NOTE: torch checks this before anything about the outputs
        raise RuntimeError("`inputs` argument to `grad()` cannot be empty.")
    outputs, grads = _prepare(outputs, grad_outputs)
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    if retain_graph is None:
        retain_graph = create_graph
    result = run_backward(outputs, grads, retain_graph=retain_graph, create_graph=create_graph,
                          inputs=inputs, accumulate=False)
    unused = [i for i, g in enumerate(result) if g is None]   # `is`: tensors compare elementwise
    if unused and not allow_unused:
        raise RuntimeError(f"The differentiated Tensor at index {unused[0]} appears to not have "
                           "been used in the graph. Set allow_unused=True if this is the desired behavior.")
    if materialize_grads:
        result = [Tensor._make(np.zeros(t.shape, t.dtype.np), t.dtype) if g is None else g
                  for g, t in zip(result, inputs)]
    return tuple(result)
