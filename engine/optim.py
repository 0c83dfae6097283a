"""Optimizers, as torch.optim: parameter groups, `zero_grad()` and `step()`."""
from __future__ import annotations

import math

import numpy as np

from ._ops import _errstate, _fma, _fma_by_axpy
from ._tensor import Tensor


class Optimizer:
    """Base class: holds parameter groups with their hyperparameters and per-parameter state."""

    def __init__(self, params, defaults: dict):
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.defaults = defaults
        self.state: dict = {}
        self.param_groups = []
        for group in groups:
            group = {**defaults, **group, "params": list(group["params"])}
            for p in group["params"]:
                if not isinstance(p, Tensor):
                    raise TypeError(f"optimizer can only optimize Tensors, but one of the params is {type(p).__name__}")
                if not p.is_leaf:
                    raise ValueError("can't optimize a non-leaf Tensor")
            self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True):
        """Reset the gradients of all parameters (to None by default, as torch 2.x)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p._grad is None:
                    continue
                if set_to_none:
                    p._grad = None
                else:
                    p._grad._data[...] = 0


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, dampening, Nesterov and weight decay."""

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov, maximize=maximize))

    def step(self, closure=None):
        """Update each parameter with a gradient in place, as torch.optim.SGD (for-loop form)."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            if not (group["weight_decay"] or group["momentum"] or group["maximize"]):
                _plain_steps(group["params"], group["lr"])
                continue
            for p in group["params"]:
                if p._grad is None:
                    continue
                np_dt = p.dtype.np
                d_p = p._grad._data
                if group["maximize"]:
                    d_p = -d_p
                # NOTE: torch's for-loop SGD makes each `x.add(y, alpha=a)` one fused multiply-add
                # (x + a * y rounded once, a cast to the parameter's dtype): weight decay, the
                # momentum buffer's update, nesterov and the step itself (rounding twice left 3,651
                # of 200,000 float32 parameters an ulp off torch's after one step).
                if group["weight_decay"]:
                    d_p = _fma(p._data, np_dt.type(group["weight_decay"]), d_p)
                if group["momentum"]:
                    buf = self.state.setdefault(id(p), {}).get("momentum_buffer")
                    if buf is None:
                        buf = d_p.copy()
                    else:
                        buf *= np_dt.type(group["momentum"])
                        _fma(d_p, np_dt.type(1 - group["dampening"]), buf, out=buf)
                    self.state[id(p)]["momentum_buffer"] = buf
                    d_p = _fma(buf, np_dt.type(group["momentum"]), d_p) if group["nesterov"] else buf
                with _errstate():
                    _fma(d_p, np_dt.type(-group["lr"]), p._data, out=p._data)
                p._vc[0] += 1
        return loss


def _plain_steps(params, lr: float) -> None:
    """SGD's step without weight decay or momentum: p + (-lr) * grad rounded once, in place. A
    row-major parameter and gradient of one dtype go straight to the BLAS's axpy (what `_fma`
    would choose for them, without its general checks: W3's three small parameters 3 x ~30 us
    -> ~3 x 8 us); other parameters through `_fma`."""
    for p in params:
        grad = p._grad
        if grad is None:
            continue
        x, y = grad._data, p._data
        alpha = p.dtype.np.type(-lr)
        if not (x.dtype == y.dtype and x.shape == y.shape and y.flags.c_contiguous and _fma_by_axpy(x, alpha, y, y)):
            with _errstate():
                _fma(x, alpha, y, out=y)
        p._vc[0] += 1


class Adam(Optimizer):
    """Adam (and AMSGrad), with torch's single-tensor update order and bias corrections."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, maximize: bool = False):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize))

    def step(self, closure=None):
        """One Adam update of every parameter with a gradient, in place."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p._grad is None:
                    continue
                f = p.dtype.np.type
                grad = -p._grad._data if group["maximize"] else p._grad._data
                state = self.state.setdefault(id(p), {})
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = np.zeros_like(p._data)
                    state["exp_avg_sq"] = np.zeros_like(p._data)
                    if group["amsgrad"]:
                        state["max_exp_avg_sq"] = np.zeros_like(p._data)
                state["step"] += 1
                step = state["step"]
                if group["weight_decay"]:
                    grad = grad + f(group["weight_decay"]) * p._data
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                # NOTE: torch's lerp_(grad, 1 - beta1) computes self + w * (end - self) for w < 0.5.
                weight = 1 - beta1
                if weight < 0.5:
                    exp_avg += f(weight) * (grad - exp_avg)
                else:
                    exp_avg[...] = grad - (grad - exp_avg) * f(1 - weight)
                exp_avg_sq *= f(beta2)
                exp_avg_sq += f(1 - beta2) * grad * grad
                bias_correction1 = 1 - beta1 ** step
                bias_correction2_sqrt = math.sqrt(1 - beta2 ** step)
                step_size = group["lr"] / bias_correction1
                if group["amsgrad"]:
                    np.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
                    second = state["max_exp_avg_sq"]
                else:
                    second = exp_avg_sq
                denom = np.sqrt(second) / f(bias_correction2_sqrt) + f(group["eps"])
                p._data += f(-step_size) * (exp_avg / denom)
                p._vc[0] += 1
        return loss
