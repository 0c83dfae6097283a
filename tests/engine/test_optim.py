"""Optimizers give torch's updates: SGD (momentum, dampening, nesterov, weight decay) and Adam."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import engine

W0 = [[0.5, -0.3, 0.2], [0.1, 0.8, -0.6]]
B0 = [0.1, -0.1, 0.05]
XS = [[1.0, 2.0], [3.0, -1.0], [0.5, 0.5], [-2.0, 1.0]]
YS = [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]

CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.05, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.01)),
    ("Adam", dict(lr=0.02, amsgrad=True)),
    ("Adam", dict(lr=0.02, betas=(0.3, 0.99))),   # lerp weight >= 0.5 takes torch's other formula
]


def _train(backend, name, options, steps=8):
    w = backend.tensor(W0, requires_grad=True)
    b = backend.tensor(B0, requires_grad=True)
    xs, ys = backend.tensor(XS), backend.tensor(YS)
    opt = getattr(backend.optim, name)([w, b], **options)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = ((xs @ w + b).sigmoid() - ys).pow(2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return np.array(losses), w.detach().numpy().copy(), b.detach().numpy().copy()


@pytest.mark.parametrize("name, options", CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)])
def test_training_matches_torch(name, options):
    got = _train(engine, name, options)
    want = _train(torch, name, options)
    for g, w in zip(got, want):
        torch.testing.assert_close(torch.from_numpy(g), torch.from_numpy(w))


@pytest.mark.parametrize("options", [dict(lr=0.01), dict(lr=0.01, momentum=0.9, dampening=0.1, weight_decay=1e-4),
                                     dict(lr=0.03, momentum=0.9, nesterov=True, weight_decay=5e-4)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sgd_steps_are_torchs_bit_for_bit(options, dtype):
    # torch's add(x, y, alpha=a) is a fused multiply-add: rounding a * y first put 3,651 of
    # 200,000 float32 parameters an ulp off torch's after one step.
    rng = np.random.default_rng(0)
    start = rng.uniform(-0.06, 0.06, (256, 784)).astype(dtype)
    grads = [rng.standard_normal((256, 784)).astype(dtype) * 1e-2 for _ in range(3)]

    def steps(backend):
        w = backend.tensor(start, requires_grad=True)
        opt = backend.optim.SGD([w], **options)
        for grad in grads:
            w.grad = backend.tensor(grad)
            opt.step()
        return w.detach().numpy()
    got, want = steps(engine), steps(torch)
    assert got.tobytes() == want.tobytes(), f"{np.count_nonzero(got != want)} of {got.size} parameters differ"


def test_zero_grad_set_to_none_false_keeps_zeroed_tensors():
    w = engine.tensor([1.0, 2.0], requires_grad=True)
    opt = engine.optim.SGD([w], lr=0.1)
    (w * w).sum().backward()
    opt.zero_grad(set_to_none=False)
    assert w.grad.tolist() == [0.0, 0.0]
    opt.zero_grad()
    assert w.grad is None


@pytest.mark.parametrize("make", [lambda p: engine.optim.SGD(p, lr=-1), lambda p: engine.optim.Adam(p, betas=(1.0, 0.9)),
                                  lambda p: engine.optim.SGD(p, lr=0.1, nesterov=True)])
def test_invalid_hyperparameters_are_refused(make):
    with pytest.raises(ValueError):
        make([engine.tensor([1.0], requires_grad=True)])


def _double_rounding_cases(n: int):
    """Float32 parameters, gradients and a learning rate where the float64 sum p - lr * g lands
    exactly halfway between two float32 numbers without being exact (every third element), and
    where the result is subnormal (every third, from 1 on); the rest random."""
    rng = np.random.default_rng(1)
    lr = 1 - 2.0 ** -23
    k = rng.integers(-100, 100, n).astype(np.float64)
    param = rng.standard_normal(n)
    grad = rng.standard_normal(n)
    # p + g * (1 - 2**-23) with p = (1 + 2**-23) 2**k and g = (1 + 2**-23) 2**(k - 24) is exactly
    # (1 + 2**-23 + 2**-24 - 2**-70) 2**k: float64 rounds it to the float32 halfway point above.
    param[0::3] = (1 + 2.0 ** -23) * 2.0 ** k[0::3]
    grad[0::3] = -(1 + 2.0 ** -23) * 2.0 ** (k[0::3] - 24)
    param[1::3] = rng.standard_normal(param[1::3].size) * 2.0 ** -140
    grad[1::3] = rng.standard_normal(grad[1::3].size) * 2.0 ** -141
    return param.astype(np.float32), grad.astype(np.float32), float(np.float32(lr))


@pytest.mark.parametrize("shape", [(7,), (3, 33000), (70001,)])   # one, several and a partial block
def test_fused_steps_round_once_where_float64_would_round_twice(shape):
    n = int(np.prod(shape))
    param, grad, lr = _double_rounding_cases(n)
    param, grad = param.reshape(shape), grad.reshape(shape)

    def step(backend):
        w = backend.tensor(param, requires_grad=True)
        w.grad = backend.tensor(grad)
        backend.optim.SGD([w], lr=lr).step()
        return w.detach().numpy(), backend.add(backend.tensor(param), backend.tensor(grad), alpha=-lr).numpy()
    for got, want in zip(step(engine), step(torch)):
        twice = (param - np.float32(lr) * grad)   # (float32 product, then sum: rounded twice)
        assert np.count_nonzero(twice != want) > n // 4   # the cases are hard ones
        assert got.tobytes() == want.tobytes(), f"{np.count_nonzero(got != want)} of {n} differ"


def _fma_exact(a, b, c) -> np.ndarray:
    """a * b + c of float32 arrays rounded once to float32 (to nearest, ties to even), from the
    exact rational sum: the reference for _fma."""
    from fractions import Fraction
    out = np.empty(c.shape, np.float32)
    for i, (x, y, z) in enumerate(zip(a.tolist(), b.tolist(), c.tolist())):
        exact = Fraction(x) * Fraction(y) + Fraction(z)
        near = np.float32(float(exact))   # (rounded twice: at most one float32 off)
        candidates = [near, np.nextafter(near, np.float32(np.inf)), np.nextafter(near, np.float32(-np.inf))]
        out[i] = min(candidates, key=lambda f: (abs(Fraction(float(f)) - exact), int(f.view(np.int32)) & 1))
        if out[i] == 0 and exact == 0:
            out[i] = np.float32(x) * np.float32(y) + np.float32(z)   # (the sign of an exact zero)
    return out


@pytest.mark.parametrize("operands", ["array * scalar + array", "array * array + array", "scalar * array + scalar",
                                      "array * scalar + array, in place"])
def test_float32_fma_blocks_round_once(operands, monkeypatch):
    # The row-major path of engine._ops._fma, over several blocks (made small here for the exact
    # reference's sake) and a partial one: the float32 sums with the product's bounds must differ
    # at every hard element, which sends it to the exact float64 computation; here 12 elements in
    # 5,000 are hard, in random blocks.
    from engine import _ops
    monkeypatch.setattr(_ops, "_FMA_BLOCK", 1024)
    monkeypatch.setattr(_ops, "_FMA_BOUNDED_MIN", 1024)
    n = 4 * _ops._FMA_BLOCK + 904
    rng = np.random.default_rng(3)
    param = rng.standard_normal(n).astype(np.float32)
    grad = rng.standard_normal(n).astype(np.float32)
    scale = rng.standard_normal(n).astype(np.float32)
    hard_param, hard_grad, lr = _double_rounding_cases(12)
    at = rng.choice(n, 12, replace=False)
    param[at], grad[at], scale[at] = hard_param, hard_grad, np.float32(-lr)
    # Subnormal results: 2**-75 (1 + 2**-23) * 2**-75 (1 - 2**-23) + 513 * 2**-149 is 2**-196 below
    # the float32 halfway point 513.5 * 2**-149, to which float64 rounds it (then float32 to 514).
    tiny_at = rng.choice(np.setdiff1d(np.arange(n), at), 6, replace=False)
    sign = np.where(np.arange(6) % 2, np.float32(1), np.float32(-1))
    grad[tiny_at] = sign * np.float32(2.0 ** -75 * (1 + 2.0 ** -23))
    scale[tiny_at] = np.float32(2.0 ** -75 * (1 - 2.0 ** -23))
    param[tiny_at] = sign * np.float32(513 * 2.0 ** -149)
    a, b, c = {"array * scalar + array": (grad, np.float32(-lr), param),
               "array * array + array": (grad, scale, param),
               "scalar * array + scalar": (np.float32(-lr), np.where(np.isin(np.arange(n), at), hard_grad[0], grad),
                                          hard_param[0]),
               "array * scalar + array, in place": (grad, np.float32(-lr), param)}[operands]
    want = _fma_exact(*np.broadcast_arrays(np.asarray(a), np.asarray(b), np.asarray(c)))
    if operands.endswith("in place"):
        got = _ops._fma(a, b, c.copy(), out=None)
        inplace = c.copy()
        assert _ops._fma(a, b, inplace, out=inplace) is inplace
        assert inplace.tobytes() == want.tobytes()
    else:
        got = _ops._fma(a, b, c)
    assert got.tobytes() == want.tobytes(), f"{np.count_nonzero(got != want)} of {n} differ"
    plain = (np.asarray(a, np.float64) * np.asarray(b, np.float64) + np.asarray(c, np.float64)).astype(np.float32)
    # The hard elements are hard: about half the halfway cases, and the subnormal ones.
    assert np.count_nonzero(plain != want) >= (10 if operands == "array * array + array" else 4)


_NAN_A, _NAN_C = np.array([0x7FC00001, 0xFFC12345], np.uint32).view(np.float32)
_EDGE_CASES = [   # (a, b, c) of float32 _fma: its product zero, subnormal, the largest float32, infinite or NaN
    (-(2.0 ** -140), 2.0 ** -20, 0.0),          # the product underflows to -0.0: +0.0 + it is -0.0
    (2.0 ** -140, 2.0 ** -20, -0.0),            # ... to +0.0
    (2.0 ** -140, 2.0 ** -9, 2.0 ** -149),      # a subnormal product (2**-149 exactly) and sum
    (3 * 2.0 ** -76, 2.0 ** -74, 2.0 ** -149),  # 1.5 units: the sum 2.5 units rounds to 2
    (0.0, 0.01, -0.0), (-0.0, 0.01, -0.0), (0.0, -0.01, 1.0),   # zero products
    (1.5 * 2.0 ** 127, 2.0, -3.0e38),           # the float32 product overflows, the result does not
    (3.4028235e38, 1.0, 1.0e32),                # the largest float32 product, rounded to inf
    (3.4028235e38, 1.0, -1.0e32), (-3.4028235e38, 1.0, -2.0e31),
    (np.inf, 0.01, 1.0), (np.inf, 0.01, -np.inf), (1.0, 0.01, np.inf), (0.0, np.inf, 1.0),
    (_NAN_A, 0.01, _NAN_C), (_NAN_A, 0.01, 1.0), (1.0, 0.01, _NAN_C),   # NaN payloads: the product's first
]


@pytest.mark.parametrize("bounded", [True, False])
def test_float32_fma_bounds_at_the_edges_of_float32(bounded, monkeypatch):
    # The row-major _fma brackets the exact product by the float32 product one unit either side
    # (from _FMA_BOUNDED_MIN elements on; below, it computes in float64 only). Where that product
    # is zero, subnormal, the largest float32, infinite or NaN, the result is still the exact one
    # rounded once (torch's add with alpha is one fused multiply-add).
    from engine import _ops
    monkeypatch.setattr(_ops, "_FMA_BOUNDED_MIN", 0 if bounded else 1 << 14)
    f = np.float32
    for a, b, c in _EDGE_CASES:
        for n in (1, 19):   # (19: numpy's SIMD loops and their scalar tails)
            x, z = np.full(n, f(a)), np.full(n, f(c))
            want = torch.from_numpy(z.copy()).add(torch.from_numpy(x), alpha=float(f(b))).numpy()
            got = _ops._fma(x, f(b), z)
            assert got.tobytes() == want.tobytes(), (a, b, c, n, got[-1], want[-1])
            if np.isfinite([f(a), f(b), f(c), want[0]]).all():   # (the reference: finite values)
                assert _fma_exact(x, np.full(n, f(b)), z).tobytes() == want.tobytes()


def _blas_head(dtype, n: int) -> int:
    from engine import _axpy
    head = _axpy.head(np.dtype(dtype), n)
    if not head:
        pytest.skip("no BLAS axpy here that rounds once (numpy without its OpenBLAS, or a CPU without FMA)")
    return head


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("inplace", [False, True])
def test_fma_by_the_blas_is_torchs_add_at_the_edges(dtype, inplace):
    # From 128 elements on, _fma with one single-value factor (an optimizer's step, add with alpha)
    # is the BLAS's axpy (one FMA instruction per element) on a head of whole kernel blocks, the
    # rest computed exactly: the edge cases above and the halfway and subnormal sums, at both ends
    # of the head and in the tail, against torch's add.
    from engine import _ops
    n = 300
    assert _blas_head(dtype, n) == 256
    rng = np.random.default_rng(4)
    for a, b, c in _EDGE_CASES:
        x, z = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
        hard_z, hard_x, lr = _double_rounding_cases(n)
        hard = rng.random(n) < 0.5
        x[hard], z[hard] = hard_x[hard], hard_z[hard]
        at = [0, 1, 127, 128, 254, 255, 256, 257, 299]
        x[at], z[at] = np.float32(a), np.float32(c)
        scale = dtype(np.float32(b))
        want = torch.from_numpy(z.copy()).add(torch.from_numpy(x), alpha=float(scale)).numpy()
        out = z.copy()
        got = _ops._fma(x, scale, out, out=out if inplace else None)
        assert got.tobytes() == want.tobytes(), (a, b, c, np.flatnonzero(got.view(np.uint8) != want.view(np.uint8)))
        # The hard cases' factor: -lr, a single value first.
        want = torch.from_numpy(z.copy()).add(torch.from_numpy(x), alpha=-lr).numpy()
        out = z.copy()
        got = _ops._fma(dtype(-lr), x, out, out=out if inplace else None)
        assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("fault", [None, "rounds twice", "the addend's NaN"])
def test_a_blas_axpy_that_does_not_round_once_is_not_used(fault, monkeypatch):
    # The BLAS is used only after a self-check: an axpy that rounds the product first, or returns
    # the addend's NaN where the product is a NaN too (an FMA instruction may), is refused, and
    # _fma computes as without it; an axpy that rounds once is taken (the check refuses not all).
    import ctypes
    from engine import _axpy, _ops

    def axpy(n, alpha, x_at, incx, y_at, incy):
        x = np.ctypeslib.as_array((ctypes.c_float * n).from_address(x_at))
        y = np.ctypeslib.as_array((ctypes.c_float * n).from_address(y_at))
        with np.errstate(all="ignore"):
            if fault == "rounds twice":
                y[:] = y + np.float32(alpha) * x
            else:
                both = np.isnan(x) & np.isnan(y)
                y[:] = np.where(both, y, _ops._fma_float32_exact(x, np.float32(alpha), y)) if fault else \
                    _ops._fma_float32_exact(x, np.float32(alpha), y)
    _blas_head(np.float32, 1000)
    monkeypatch.setattr(_axpy, "_library", {np.dtype(np.float32): axpy})
    monkeypatch.setattr(_axpy, "_kernels", {})
    monkeypatch.setattr(_axpy, "_whole", {})
    monkeypatch.setattr(_axpy, "_checked", {})
    assert _axpy.head(np.dtype(np.float32), 1000) == (0 if fault else 896)
    param, grad, lr = _double_rounding_cases(1000)
    want = torch.from_numpy(param.copy()).add(torch.from_numpy(grad), alpha=-lr).numpy()
    assert _ops._fma(grad, np.float32(-lr), param).tobytes() == want.tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_large_step_by_openblas_own_kernel_in_one_call_is_torchs(dtype, monkeypatch):
    # Where OpenBLAS's own axpy kernel of its core is found and passes the self-check, `fused`
    # calls it once for the whole head (cblas's axpy: one call per _CHUNK elements, as it splits
    # longer calls over threads); the step is torch's add bit for bit, across chunk boundaries.
    from engine import _axpy
    _blas_head(dtype, 1000)
    dtype = np.dtype(dtype)
    if dtype not in _axpy._whole:
        pytest.skip("no OpenBLAS core kernel found here (another BLAS build or CPU family)")
    n = 3 * _axpy._CHUNK + 300
    hard_z, hard_x, lr = _double_rounding_cases(n)
    x, z = hard_x.astype(dtype), hard_z.astype(dtype)
    want = torch.from_numpy(z.copy()).add(torch.from_numpy(x), alpha=-lr).numpy()
    calls = []
    kernel = _axpy._whole[dtype]
    monkeypatch.setitem(_axpy._whole, dtype, lambda *args: calls.append(args[0]) or kernel(*args))
    w = engine.tensor(z.copy(), requires_grad=True)
    w.grad = engine.tensor(x)
    engine.optim.SGD([w], lr=lr).step()
    assert calls == [n - n % _axpy._UNIT]
    assert w.detach().numpy().tobytes() == want.tobytes()


def test_an_openblas_kernel_that_does_not_round_once_is_not_used(monkeypatch):
    # The core kernel is checked as cblas's axpy is: one that rounds the product first is refused,
    # and the chunked cblas calls compute the head.
    import ctypes
    from engine import _axpy, _ops

    def kernel(n, alpha, x_at, incx, y_at, incy):
        x = np.ctypeslib.as_array((ctypes.c_float * n).from_address(x_at))
        y = np.ctypeslib.as_array((ctypes.c_float * n).from_address(y_at))
        with np.errstate(all="ignore"):
            y[:] = y + np.float32(alpha) * x
    _blas_head(np.float32, 1000)
    monkeypatch.setattr(_axpy, "_kernels", {np.dtype(np.float32): kernel})
    monkeypatch.setattr(_axpy, "_whole", {})
    monkeypatch.setattr(_axpy, "_checked", {})
    assert _axpy.head(np.dtype(np.float32), 1000) == 896
    assert np.dtype(np.float32) not in _axpy._whole
    param, grad, lr = _double_rounding_cases(30000)
    want = torch.from_numpy(param.copy()).add(torch.from_numpy(grad), alpha=-lr).numpy()
    assert _ops._fma(grad, np.float32(-lr), param).tobytes() == want.tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [2, 10, 127, 128, 300])
def test_small_arrays_and_tails_are_fused_as_torchs_add(dtype, n):
    # Fewer than a BLAS block's elements (a bias, a head's tail) go through one padded BLAS block:
    # rounded once, as torch's add with alpha, at the halfway and subnormal sums, the edge cases
    # above, and a product that overflows where the result does not (float64: the exact
    # computation gave inf there, torch 9.97e307). In SGD's step too.
    _blas_head(dtype, 1000)
    from engine import _ops
    rng = np.random.default_rng(n)
    hard_z, hard_x, lr = _double_rounding_cases(n)
    x, z = hard_x.astype(dtype), hard_z.astype(dtype)
    edge = [(a, c) for a, b, c in _EDGE_CASES if b == 0.01][: n // 2]
    at = rng.choice(n, len(edge), replace=False)
    x[at], z[at] = [dtype(np.float32(a)) for a, _ in edge], [dtype(np.float32(c)) for _, c in edge]
    cases = [(x, z, dtype(np.float32(-lr)))]
    if dtype == np.float64:
        cases.append((np.full(n, -1.5 * 2.0 ** 1023), np.full(n, -1.7e308), dtype(-2.0)))
    for x, z, alpha in cases:
        want = torch.from_numpy(z.copy()).add(torch.from_numpy(x), alpha=float(alpha)).numpy()
        with np.errstate(all="ignore"):
            got = _ops._fma(x, alpha, z.copy())
        assert got.tobytes() == want.tobytes(), np.flatnonzero(got.view(np.uint8) != want.view(np.uint8))
        w = engine.tensor(z.copy(), requires_grad=True)
        w.grad = engine.tensor(x)
        engine.optim.SGD([w], lr=-float(alpha)).step()
        assert w.detach().numpy().tobytes() == want.tobytes()
