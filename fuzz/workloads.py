"""The performance workloads (issue 7), each runnable on any backend that speaks torch.

Each `make_<name>(backend)` builds the inputs once and returns a zero-argument
function that runs one round of the workload; the benchmarks time that function
for `engine` and for `torch` side by side.
"""
from __future__ import annotations

import numpy as np

SEED = 0


def _rng():
    return np.random.default_rng(SEED)


def make_w1(backend):
    """A chain of 50 elementwise ops (mul, add, tanh, exp, sin) on shape (4,), then sum and backward."""
    data = _rng().uniform(-0.5, 0.5, 4).astype(np.float32)

    def run():
        x = backend.tensor(data, requires_grad=True)
        y = x
        for _ in range(10):
            y = (y * 0.9 + 0.1).tanh().exp().sin()
        y.sum().backward()
        return x.grad
    return run


def make_w2(backend, dtype="float32"):
    """20 elementwise ops on (256, 256), then sum and backward."""
    data = _rng().uniform(-1, 1, (256, 256)).astype(dtype)

    def run():
        x = backend.tensor(data, requires_grad=True)
        y = x
        for _ in range(4):
            y = (y * 0.5 + 0.25).tanh().exp().sigmoid()
        y.sum().backward()
        return x.grad
    return run


def make_w3(backend):
    """One MLP training step: batch 64, 784 -> 256 -> 10, relu, cross_entropy, SGD, float32."""
    rng = _rng()
    xs = rng.standard_normal((64, 784)).astype(np.float32)
    labels = rng.integers(0, 10, 64)
    w1 = backend.tensor(rng.uniform(-0.03, 0.03, (256, 784)).astype(np.float32), requires_grad=True)
    b1 = backend.tensor(np.zeros(256, np.float32), requires_grad=True)
    w2 = backend.tensor(rng.uniform(-0.06, 0.06, (10, 256)).astype(np.float32), requires_grad=True)
    b2 = backend.tensor(np.zeros(10, np.float32), requires_grad=True)
    x, y = backend.tensor(xs), backend.tensor(labels)
    F = backend.nn.functional
    opt = backend.optim.SGD([w1, b1, w2, b2], lr=0.01)

    def run():
        opt.zero_grad()
        loss = F.cross_entropy(F.linear(F.relu(F.linear(x, w1, b1)), w2, b2), y)
        loss.backward()
        opt.step()
        return loss
    return run


def make_w4(backend):
    """Two 1024 x 1024 matmuls, sum, backward."""
    rng = _rng()
    a, b, c = (rng.standard_normal((1024, 1024)).astype(np.float32) for _ in range(3))

    def run():
        x = backend.tensor(a, requires_grad=True)
        w = backend.tensor(b, requires_grad=True)
        v = backend.tensor(c, requires_grad=True)
        ((x @ w) @ v).sum().backward()
        return x.grad
    return run


def make_w5(backend):
    """Broadcasting (128, 1, 64) * (1, 32, 64), reductions over dims, backward."""
    rng = _rng()
    a = rng.standard_normal((128, 1, 64)).astype(np.float32)
    b = rng.standard_normal((1, 32, 64)).astype(np.float32)

    def run():
        x = backend.tensor(a, requires_grad=True)
        y = backend.tensor(b, requires_grad=True)
        z = x * y
        (z.sum(dim=2).mean(dim=0) + z.amax(dim=1).sum()).sum().backward()
        return x.grad
    return run


WORKLOADS = {"W1": make_w1, "W2-float32": make_w2, "W2-float64": lambda b: make_w2(b, "float64"),
             "W3": make_w3, "W4": make_w4, "W5": make_w5}
