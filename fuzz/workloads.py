"""The performance workloads (issue 7), each runnable on any backend that speaks torch.

Each `make_<name>(backend)` builds the inputs once and returns a zero-argument
function that runs one round of the workload; the benchmarks (and `gradfuzz
bench`) time that function for `engine` and for `torch` side by side.

Peers that do not speak torch (HIPS autograd, MyGrad) get one small adapter per
workload in `PEERS`, written in their own API on the same inputs; `build` returns
None for a workload a peer cannot express. Neither peer is a dependency: their
adapters import them when called.
"""
from __future__ import annotations

import importlib
from typing import Callable

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


# -- peers that do not speak torch ---------------------------------------------------

def _autograd_w1():
    import autograd.numpy as anp
    from autograd import grad
    data = _rng().uniform(-0.5, 0.5, 4).astype(np.float32)

    def f(x):
        for _ in range(10):
            x = anp.sin(anp.exp(anp.tanh(x * 0.9 + 0.1)))
        return anp.sum(x)
    return lambda: grad(f)(data)


def _autograd_w2(dtype="float32"):
    import autograd.numpy as anp
    from autograd import grad
    data = _rng().uniform(-1, 1, (256, 256)).astype(dtype)

    def f(x):
        for _ in range(4):
            # NOTE: autograd has sigmoid only in autograd.scipy (needs scipy); 0.5 * (tanh(x / 2) + 1)
            # is the same function at three elementwise ops instead of one.
            x = anp.exp(anp.tanh(x * 0.5 + 0.25))
            x = 0.5 * (anp.tanh(0.5 * x) + 1)
        return anp.sum(x)
    return lambda: grad(f)(data)


def _autograd_w3():
    import autograd.numpy as anp
    from autograd import value_and_grad
    rng = _rng()
    xs = rng.standard_normal((64, 784)).astype(np.float32)
    labels = rng.integers(0, 10, 64)
    params = [rng.uniform(-0.03, 0.03, (256, 784)).astype(np.float32), np.zeros(256, np.float32),
              rng.uniform(-0.06, 0.06, (10, 256)).astype(np.float32), np.zeros(10, np.float32)]

    def loss(params):
        w1, b1, w2, b2 = params
        logits = anp.maximum(xs @ w1.T + b1, 0) @ w2.T + b2
        top = anp.max(logits, axis=1, keepdims=True)
        logp = logits - top - anp.log(anp.sum(anp.exp(logits - top), axis=1, keepdims=True))
        return -anp.mean(logp[np.arange(64), labels])
    step = value_and_grad(loss)

    def run():
        value, grads = step(params)
        for p, g in zip(params, grads):
            p -= 0.01 * g  # SGD in place, as optim.SGD does
        return value
    return run


def _autograd_w4():
    import autograd.numpy as anp
    from autograd import grad
    rng = _rng()
    a, b, c = (rng.standard_normal((1024, 1024)).astype(np.float32) for _ in range(3))
    g = grad(lambda x, w, v: anp.sum((x @ w) @ v), argnum=(0, 1, 2))
    return lambda: g(a, b, c)[0]


def _autograd_w5():
    import autograd.numpy as anp
    from autograd import grad
    rng = _rng()
    a = rng.standard_normal((128, 1, 64)).astype(np.float32)
    b = rng.standard_normal((1, 32, 64)).astype(np.float32)

    def f(x, y):
        z = x * y
        return anp.sum(anp.mean(anp.sum(z, axis=2), axis=0) + anp.sum(anp.max(z, axis=1)))
    g = grad(f, argnum=(0, 1))
    return lambda: g(a, b)[0]


def _mygrad_w1():
    import mygrad as mg
    data = _rng().uniform(-0.5, 0.5, 4).astype(np.float32)

    def run():
        x = mg.tensor(data)
        y = x
        for _ in range(10):
            y = mg.sin(mg.exp(mg.tanh(y * 0.9 + 0.1)))
        mg.sum(y).backward()
        return x.grad
    return run


def _mygrad_w2(dtype="float32"):
    import mygrad as mg
    from mygrad.nnet.activations import sigmoid
    data = _rng().uniform(-1, 1, (256, 256)).astype(dtype)

    def run():
        x = mg.tensor(data)
        y = x
        for _ in range(4):
            y = sigmoid(mg.exp(mg.tanh(y * 0.5 + 0.25)))
        mg.sum(y).backward()
        return x.grad
    return run


def _mygrad_w3():
    import mygrad as mg
    from mygrad.nnet.activations import relu
    from mygrad.nnet.losses import softmax_crossentropy
    rng = _rng()
    xs = rng.standard_normal((64, 784)).astype(np.float32)
    labels = rng.integers(0, 10, 64)
    params = [mg.tensor(rng.uniform(-0.03, 0.03, (256, 784)).astype(np.float32)),
              mg.tensor(np.zeros(256, np.float32)),
              mg.tensor(rng.uniform(-0.06, 0.06, (10, 256)).astype(np.float32)),
              mg.tensor(np.zeros(10, np.float32))]

    def run():
        w1, b1, w2, b2 = params
        loss = softmax_crossentropy(relu(xs @ w1.T + b1) @ w2.T + b2, labels)
        loss.backward()
        for p in params:
            p.data -= 0.01 * p.grad  # SGD in place, as optim.SGD does
        return loss
    return run


def _mygrad_w4():
    import mygrad as mg
    rng = _rng()
    a, b, c = (rng.standard_normal((1024, 1024)).astype(np.float32) for _ in range(3))

    def run():
        x, w, v = mg.tensor(a), mg.tensor(b), mg.tensor(c)
        mg.sum((x @ w) @ v).backward()
        return x.grad
    return run


def _mygrad_w5():
    import mygrad as mg
    rng = _rng()
    a = rng.standard_normal((128, 1, 64)).astype(np.float32)
    b = rng.standard_normal((1, 32, 64)).astype(np.float32)

    def run():
        x, y = mg.tensor(a), mg.tensor(b)
        z = x * y
        mg.sum(mg.mean(mg.sum(z, axis=2), axis=0) + mg.sum(mg.max(z, axis=1))).backward()
        return x.grad
    return run


# Per peer, its adapter per workload; a workload missing here is not expressible in the peer.
PEERS: dict[str, dict[str, Callable[[], Callable]]] = {
    "autograd": {"W1": _autograd_w1, "W2-float32": _autograd_w2, "W2-float64": lambda: _autograd_w2("float64"),
                 "W3": _autograd_w3, "W4": _autograd_w4, "W5": _autograd_w5},
    "mygrad": {"W1": _mygrad_w1, "W2-float32": _mygrad_w2, "W2-float64": lambda: _mygrad_w2("float64"),
               "W3": _mygrad_w3, "W4": _mygrad_w4, "W5": _mygrad_w5},
}


# Torch run on a set number of intra-op threads: a reference variant, not a peer the engine
# must beat. On a small machine torch's elementwise kernels split over every core and the
# engine's mostly do not; torch on one thread separates what threads give torch from what its
# per-op cost is.
VARIANTS: dict[str, tuple[str, int]] = {"torch-1thread": ("torch", 1)}


def _on_threads(module, threads: int, run: Callable) -> Callable:
    """`run` with torch's intra-op threads set to `threads` during each call (and restored after:
    the reference's rounds, interleaved with this variant's, keep their own setting)."""
    def on_threads():
        before = module.get_num_threads()
        module.set_num_threads(threads)
        try:
            return run()
        finally:
            module.set_num_threads(before)
    return on_threads


def build(workload: str, backend: str) -> Callable | None:
    """One round of ``workload`` on ``backend`` as a zero-argument function, inputs built.

    ``backend`` is a peer of ``PEERS``, a variant of ``VARIANTS`` or the name of a module that
    speaks torch (``engine``, ``torch``). None: the peer cannot express the workload.
    Raises ImportError when the backend is not installed, KeyError for an unknown workload.
    """
    make = WORKLOADS[workload]
    if backend in VARIANTS:
        name, threads = VARIANTS[backend]
        module = importlib.import_module(name)
        return _on_threads(module, threads, make(module))
    if backend in PEERS:
        importlib.import_module(backend)
        adapter = PEERS[backend].get(workload)
        return adapter() if adapter is not None else None
    return make(importlib.import_module(backend))
