"""Linear algebra ops beyond the table: torch's errors, einsum's composition, trace's gradient."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import engine


def _outcome(backend, call):
    try:
        result = call(backend)
    except Exception as exc:  # noqa: BLE001  (the exception is what is compared)
        return type(exc).__name__, str(exc)
    return "ok", str(result.dtype), tuple(result.shape)


def _m(b, *shape, dtype="float32"):
    return b.ones(*shape, dtype=getattr(b, dtype))


MISUSE = {
    "mm 1-d self": lambda b: b.mm(_m(b, 3), _m(b, 3, 4)),
    "mm 1-d mat2": lambda b: b.mm(_m(b, 2, 3), _m(b, 3)),
    "mm 0-d": lambda b: b.mm(b.tensor(1.0), b.tensor(2.0)),
    "mm shapes": lambda b: b.mm(_m(b, 2, 3), _m(b, 2, 3)),
    "mm shapes before dtype": lambda b: b.mm(_m(b, 2, 3), _m(b, 2, 3, dtype="float64")),
    "mm dtypes": lambda b: b.mm(_m(b, 2, 3), _m(b, 3, 3, dtype="float64")),
    "mm long float": lambda b: b.mm(_m(b, 2, 3, dtype="int64"), _m(b, 3, 3)),
    "mm bool": lambda b: b.mm(_m(b, 2, 3, dtype="bool"), _m(b, 3, 3, dtype="bool")),
    "mm int64": lambda b: b.mm(_m(b, 2, 3, dtype="int64"), _m(b, 3, 3, dtype="int64")),
    "mm number": lambda b: b.mm(_m(b, 2, 3), 3),
    "mm number first": lambda b: b.mm(2, _m(b, 2, 3)),
    "bmm 2-d": lambda b: b.bmm(_m(b, 2, 3), _m(b, 3, 4)),
    "bmm 2-d batch2": lambda b: b.bmm(_m(b, 2, 2, 3), _m(b, 3, 4)),
    "bmm sizes": lambda b: b.bmm(_m(b, 2, 2, 3), _m(b, 3, 3, 3)),
    "bmm dtypes": lambda b: b.bmm(_m(b, 2, 2, 3), _m(b, 2, 3, 3, dtype="float64")),
    "bmm bool": lambda b: b.bmm(_m(b, 2, 2, 3, dtype="bool"), _m(b, 2, 3, 3, dtype="bool")),
    # (fuzzer finding: bmm refuses a bool first operand before comparing dtypes)
    "bmm bool float": lambda b: b.bmm(_m(b, 2, 2, 3, dtype="bool"), _m(b, 2, 3, 3)),
    "bmm float bool": lambda b: b.bmm(_m(b, 2, 2, 3), _m(b, 2, 3, 3, dtype="bool")),
    "matmul bool batch float matrix": lambda b: b.matmul(_m(b, 1, 2, 3, dtype="bool"), _m(b, 1, 3, 2)),
    "mv 1-d": lambda b: b.mv(_m(b, 3), _m(b, 3)),
    "mv 2-d vec": lambda b: b.mv(_m(b, 2, 3), _m(b, 2, 3)),
    "mv 0-d": lambda b: b.mv(b.tensor(1.0), b.tensor(2.0)),
    "mv size": lambda b: b.mv(_m(b, 2, 3), _m(b, 4)),
    "mv dtypes": lambda b: b.mv(_m(b, 2, 3), _m(b, 3, dtype="float64")),
    "mv dtypes long": lambda b: b.mv(_m(b, 2, 3, dtype="int64"), _m(b, 3)),
    "mv bool": lambda b: b.mv(_m(b, 2, 3, dtype="bool"), _m(b, 3, dtype="bool")),
    "mv number": lambda b: b.mv(_m(b, 2, 3), 2),
    "dot 2-d": lambda b: b.dot(_m(b, 2, 2), _m(b, 2, 2)),
    "dot 0-d": lambda b: b.dot(b.tensor(1.0), b.tensor(2.0)),
    "dot size": lambda b: b.dot(_m(b, 3), _m(b, 4)),
    "dot size before bool": lambda b: b.dot(_m(b, 2, dtype="bool"), _m(b, 3, dtype="bool")),
    "dot dtypes before size": lambda b: b.dot(_m(b, 2, dtype="int64"), _m(b, 3)),
    "matmul of vectors, dtypes before size": lambda b: b.matmul(_m(b, 5), _m(b, 6, dtype="float64")),
    "dot dtypes": lambda b: b.dot(_m(b, 3, dtype="int64"), _m(b, 3)),
    "dot bool": lambda b: b.dot(_m(b, 3, dtype="bool"), _m(b, 3, dtype="bool")),
    "dot number": lambda b: b.dot(_m(b, 3), 2),
    "dot method": lambda b: _m(b, 2, 3).dot(_m(b, 3)),
    "outer 2-d": lambda b: b.outer(_m(b, 2, 3), _m(b, 3)),
    "outer 0-d": lambda b: b.outer(_m(b, 3), b.tensor(2.0)),
    "outer promotes": lambda b: b.outer(_m(b, 3, dtype="int64"), _m(b, 2, dtype="float64")),
    "outer bool": lambda b: b.outer(_m(b, 3, dtype="bool"), _m(b, 2, dtype="bool")),
    "outer number": lambda b: b.outer(_m(b, 3), 2),
    "ger number": lambda b: b.ger(_m(b, 3), 2),
    "ger method 2-d": lambda b: _m(b, 3).ger(_m(b, 2, 2)),
    "trace 1-d": lambda b: b.trace(_m(b, 3)),
    "trace 3-d": lambda b: b.trace(_m(b, 2, 2, 2)),
    "trace 0-d": lambda b: b.trace(b.tensor(1.0)),
    "trace bool": lambda b: b.trace(_m(b, 2, 2, dtype="bool")),
    "trace int64": lambda b: b.trace(_m(b, 2, 3, dtype="int64")),
    "trace empty": lambda b: b.trace(_m(b, 0, 3)),
    "einsum no operand": lambda b: b.einsum("ij"),
    "einsum fewer operands": lambda b: b.einsum("ij,jk", _m(b, 2, 3)),
    "einsum more operands": lambda b: b.einsum("ij", _m(b, 2, 3), _m(b, 2, 3)),
    "einsum too many subscripts": lambda b: b.einsum("ijk", _m(b, 2, 3)),
    "einsum too few subscripts": lambda b: b.einsum("i", _m(b, 2, 3)),
    "einsum ellipsis too many": lambda b: b.einsum("...ijk", _m(b, 2, 3)),
    "einsum size mismatch": lambda b: b.einsum("ij,jk", _m(b, 2, 3), _m(b, 2, 3)),
    "einsum repeated size": lambda b: b.einsum("ii", _m(b, 2, 3)),
    "einsum unknown output": lambda b: b.einsum("ij->k", _m(b, 2, 3)),
    "einsum output twice": lambda b: b.einsum("ij->ii", _m(b, 2, 3)),
    "einsum bad subscript": lambda b: b.einsum("i1", _m(b, 2, 3)),
    "einsum bad output subscript": lambda b: b.einsum("ij->i1", _m(b, 2, 3)),
    "einsum bad ellipsis": lambda b: b.einsum("..ij", _m(b, 2, 3)),
    "einsum two output ellipses": lambda b: b.einsum("...ij->...j...", _m(b, 2, 3)),
    "einsum ellipsis broadcast": lambda b: b.einsum("...ij,...j->...i", _m(b, 2, 2, 3), _m(b, 3, 3)),
    "einsum bmm dtypes": lambda b: b.einsum("ij,jk", _m(b, 2, 3), _m(b, 3, 4, dtype="float64")),
    "einsum mul promotes": lambda b: b.einsum("ij,ij->ij", _m(b, 2, 3), _m(b, 2, 3, dtype="float64")),
    "einsum bool bmm": lambda b: b.einsum("i,i", _m(b, 3, dtype="bool"), _m(b, 3, dtype="bool")),
    "einsum bool sum": lambda b: b.einsum("ij->", _m(b, 2, 3, dtype="bool")),
    "einsum int64": lambda b: b.einsum("ij,jk", _m(b, 2, 3, dtype="int64"), _m(b, 3, 4, dtype="int64")),
    "einsum equation type": lambda b: b.einsum(3, _m(b, 2, 3)),
    "einsum operand type": lambda b: b.einsum("ij", 3),
    "einsum sublist range": lambda b: b.einsum(_m(b, 2, 3), [0, 60]),
    "einsum spaces": lambda b: b.einsum("i j -> j i", _m(b, 2, 3)),
}


@pytest.mark.parametrize("name", MISUSE)
def test_errors_and_result_types_match_torch(name):
    assert _outcome(engine, MISUSE[name]) == _outcome(torch, MISUSE[name])


# Equations beyond the table's samples: the engine composes einsum as torch does, so the top
# node, the values and the gradients (first and second order) agree.
EQUATIONS = [
    ("ij,jk->ki", [(2, 3), (3, 4)]), ("i,i->", [(3,), (3,)]), ("ii,i->i", [(3, 3), (3,)]),
    ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)]), ("i,i,i->", [(3,), (3,), (3,)]),
    ("...i,...i->...", [(2, 1, 3), (4, 3)]), ("ij,ji->", [(3, 3), (3, 3)]), ("iij,jk->ik", [(2, 2, 3), (3, 4)]),
    ("Ab,bA->A", [(2, 3), (3, 2)]), ("ab...,b...->a", [(2, 3, 4), (3, 4)]), ("i,->i", [(3,), ()]),
    ("...,...", [(2, 1), (3,)]), ("bij,bjk->", [(2, 2, 3), (1, 3, 2)]), ("ij,jk->ijk", [(2, 3), (3, 4)]),
]


def _einsum_run(backend, equation, arrays):
    operands = [backend.tensor(a.tolist() if a.ndim else float(a), dtype=backend.float64, requires_grad=True)
                for a in arrays]
    out = backend.einsum(equation, *operands)
    weights = np.linspace(-1, 1, out.numel()).reshape(tuple(out.shape))
    total = (out * backend.tensor(weights.tolist() if out.ndim else 0.5, dtype=backend.float64)).sum()
    grads = backend.autograd.grad(total, operands, create_graph=True) if backend is torch else None
    if backend is engine:
        total.backward(create_graph=True)   # the engine has no autograd.grad yet
        grads = [t.grad for t in operands]
        for t in operands:
            t.grad = None
    second = sum((g * g).sum() for g in grads)
    if backend is torch:
        second = torch.autograd.grad(second, operands, allow_unused=True)
    else:
        second.backward()
        second = [t.grad for t in operands]
    return (out.grad_fn.name(), out.detach().numpy(), [g.detach().numpy() for g in grads],
            [None if s is None else s.detach().numpy() for s in second])


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")
@pytest.mark.parametrize("equation, shapes", EQUATIONS, ids=[e for e, _ in EQUATIONS])
def test_einsum_composition_matches_torch(equation, shapes):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s) for s in shapes]
    got, want = _einsum_run(engine, equation, arrays), _einsum_run(torch, equation, arrays)
    assert got[0] == want[0]
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12, atol=1e-12)
    for g, w in zip(got[2] + got[3], want[2] + want[3]):
        if w is None or g is None:
            assert not np.any(w if g is None else g)
        else:
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


def test_einsum_diagonal_is_a_view_as_in_torch():
    for backend in (engine, torch):
        x = backend.tensor([[1.0, 2.0], [3.0, 4.0]])
        backend.einsum("ii->i", x).zero_()
        assert x.tolist() == [[0.0, 2.0], [3.0, 0.0]], backend.__name__


def test_trace_gradient_is_the_identity_pattern_and_saves_nothing():
    # d trace(A) / dA = eye(n, m) (also for non-square A); TraceBackward0 saves only sizes,
    # so a second backward without retain_graph works in torch and in the engine.
    for backend in (engine, torch):
        a = backend.tensor(np.arange(6.0).reshape(2, 3).tolist(), dtype=backend.float64, requires_grad=True)
        out = backend.trace(a)
        out.backward()
        out.backward()
        assert a.grad.tolist() == (2 * np.eye(2, 3)).tolist(), backend.__name__


def _loss(a, b):
    """A scalar through einsum, mm, trace, mv, dot and outer."""
    ab = engine.mm(a, b)
    return (engine.einsum("ij,jk->", a, b) + engine.trace(ab)
            + engine.dot(engine.mv(ab, engine.ones(4, dtype=engine.float64)),
                         engine.ones(2, dtype=engine.float64))
            + engine.outer(engine.mv(a, engine.ones(3, dtype=engine.float64)),
                           engine.ones(2, dtype=engine.float64)).sum())


def test_gradients_match_finite_differences_in_float64():
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal((2, 3)), rng.standard_normal((3, 4))]
    leaves = [engine.tensor(x.tolist(), dtype=engine.float64, requires_grad=True) for x in arrays]
    _loss(*leaves).backward()
    eps = 1e-6
    for k, x0 in enumerate(arrays):
        numeric = np.zeros_like(x0)
        for idx in np.ndindex(x0.shape):
            values = []
            for delta in (eps, -eps):
                moved = [x.copy() for x in arrays]
                moved[k][idx] += delta
                values.append(float(_loss(*(engine.tensor(x.tolist(), dtype=engine.float64) for x in moved))))
            numeric[idx] = (values[0] - values[1]) / (2 * eps)
        np.testing.assert_allclose(leaves[k].grad.numpy(), numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("values", [True, [True, False], [[True, False], [False, True]], 1, [[1, 2], [3, 4]]])
def test_trace_refuses_bool_before_it_checks_the_dims_as_torch(values):
    # Fuzzer finding: torch.trace(tensor(True)) raises NotImplementedError, not the matrix error.
    outcomes = []
    for backend in (engine, torch):
        try:
            outcomes.append(backend.trace(backend.tensor(values)).tolist())
        except Exception as exc:  # noqa: BLE001 - the exception is the observation
            outcomes.append((type(exc).__name__, str(exc)))
    assert outcomes[0] == outcomes[1]



@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_trace_of_opposite_infinities_is_nan_without_a_warning_as_torch(dtype, recwarn):
    # Campaign finding (session 8): numpy warned "invalid value encountered in reduce" summing
    # inf and -inf on the diagonal; torch gives NaN silently.
    values = [[float("inf"), -0.5], [3.5, float("-inf")]]
    results = [str(b.trace(b.tensor(values, dtype=getattr(b, dtype))).item()) for b in (engine, torch)]
    assert results == ["nan", "nan"]
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]

def _einsum_cases(count: int):
    rng = np.random.default_rng(0)
    for _ in range(count):
        a = "".join(rng.permutation(list("ijkl"))[:rng.integers(1, 4)])
        b = "".join(rng.permutation(list("ijkl"))[:rng.integers(1, 4)])
        labels = sorted(set(a) | set(b))
        out = "".join(rng.permutation(labels)[:rng.integers(0, len(labels) + 1)])
        sizes = {label: int(rng.integers(1, 4)) for label in "ijkl"}
        yield f"{a},{b}->{out}", [sizes[c] for c in a], [sizes[c] for c in b]


@pytest.mark.parametrize("dtypes", [("float32", "float64"), ("float64", "float32")])
def test_einsum_of_mixed_dtypes_raises_bmms_message_with_torchs_operand_order(dtypes):
    # Fuzzer finding: 'ij,kj->ki' of a float64 and a float32 operand. torch's sumproduct_pair
    # swaps the operands when every right-only output dim comes before every left-only one, so
    # bmm's message names the second operand's dtype as the expected one.
    seen = set()
    for equation, left, right in _einsum_cases(400):
        outcomes = []
        for backend in (torch, engine):
            operands = [backend.ones(shape, dtype=getattr(backend, dtype)) for shape, dtype in zip((left, right), dtypes)]
            try:
                backend.einsum(equation, *operands)
                outcomes.append(None)
            except RuntimeError as error:
                outcomes.append(str(error))
        assert outcomes[1] == outcomes[0], (equation, left, right)
        seen.add(outcomes[0])
    assert len(seen) == 3  # both orders of the message occur, and success (no contraction: a product)


EMPTY_PRODUCTS = [("mm", (0, 3), (3, 2)), ("mm", (2, 0), (0, 3)), ("mm", (2, 3), (3, 0)), ("bmm", (2, 0, 3), (2, 3, 2)),
                  ("bmm", (2, 3, 0), (2, 0, 2)), ("bmm", (0, 3, 2), (0, 2, 3)), ("mv", (0, 3), (3,)), ("mv", (3, 0), (0,)),
                  ("matmul", (0, 3), (2, 3, 2)), ("matmul", (3, 0), (2, 0, 2)), ("matmul", (2, 3, 0), (0,)),
                  ("matmul", (1, 0, 3), (3,)), ("dot", (0,), (0,))]


@pytest.mark.parametrize("op, shape1, shape2", EMPTY_PRODUCTS)
@pytest.mark.parametrize("dtypes", [("int64", "float64"), ("float32", "bool"), ("bool", "bool"), ("int64", "int64")])
def test_products_with_nothing_to_multiply_skip_the_kernels_dtype_checks_as_torch(op, shape1, shape2, dtypes):
    """Fuzzer finding: matmul of an empty int64 matrix by a float64 batch is an empty float64 in
    torch (bmm checks dtypes in its kernel, which an empty product never runs, and takes
    batch2's dtype); mm, mv and bmm of bool work when an operand is empty."""
    outcomes = []
    for m in (torch, engine):
        a, b = (m.ones(shape, dtype=getattr(m, dt)) for shape, dt in zip((shape1, shape2), dtypes))
        try:
            out = getattr(m, op)(a, b)
            outcomes.append((str(out.dtype), tuple(out.shape), out.tolist()))
        except (RuntimeError, NotImplementedError) as error:
            outcomes.append((type(error).__name__, str(error)))
    assert outcomes[1] == outcomes[0]


def test_trace_of_a_one_by_one_product_under_double_backward_is_torchs():
    # Fuzzer finding (10-min campaign, session 7): trace's gradient is masked by bit AND (a float
    # view of an int array); transposing its 1x1 transpose returned numpy's base, the int array,
    # so x0.grad was 1065353216 (the bits of 1.0) instead of 1.
    results = []
    for lib in (torch, engine):
        x0 = lib.tensor([[0.5, -1.0, 2.0]], requires_grad=True)
        x1 = lib.tensor([[1.5], [0.25], [-2.0]], requires_grad=True)
        grads = lib.autograd.grad(lib.trace(lib.mm(x0, x1)), [x0, x1], create_graph=True)
        sum(g.sum() for g in grads).backward()
        results.append((x0.grad.tolist(), x1.grad.tolist()))
    assert results[0] == results[1]


_ZERO_PRODUCTS = {
    "mm": lambda m, a, b: m.mm(a, b),
    "matmul 2d": lambda m, a, b: m.matmul(a, b),
    "matmul folded": lambda m, a, b: m.matmul(a.expand(2, *a.shape), b),
    "matmul batched": lambda m, a, b: m.matmul(a.expand(2, *a.shape), b.expand(2, *b.shape)),
    "bmm": lambda m, a, b: m.bmm(a.expand(2, *a.shape), b.expand(2, *b.shape)),
    "linear": lambda m, a, b: m.nn.functional.linear(a, b.t()),
    "linear bias +0": lambda m, a, b: m.nn.functional.linear(a, b.t(), m.zeros(b.shape[1], dtype=a.dtype)),
}


@pytest.mark.parametrize("shape", [(2, 1, 3), (1, 1, 3), (3, 1, 1), (2, 2, 3)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op", sorted(_ZERO_PRODUCTS))
def test_zero_products_keep_the_sign_torchs_kernel_gives_them(op, dtype, shape):
    """Fuzzer finding (seed 9): rsqrt of matmul(zeros(2, 2, 1), -ones(1, 3)) was +inf in the
    engine, -inf in torch. torch's mm of an inner size of 1 with several rows and columns
    gives the exact products (-0.0); its matrix-vector path, bmm and numpy's GEMM give +0.0."""
    m_rows, k, n_cols = shape

    def run(m):
        a = m.zeros(m_rows, k, dtype=getattr(m, dtype))
        b = -m.ones(k, n_cols, dtype=getattr(m, dtype))
        return np.signbit(_ZERO_PRODUCTS[op](m, a, b).numpy()).tolist()
    assert run(engine) == run(torch)


@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 1, 3), (1, 1, 40), (3, 1, 1), (50, 1, 1), (2, 1, 3), (1, 2, 3)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_linear_with_a_bias_of_minus_zero_keeps_zero_signs_as_torch(dtype, shape):
    """torch's float32 addmm of an inner size of 1 adds the exact products to the bias for a
    single row or column too: -0.0 + (-0.0 * 2) stays -0.0, where the engine gave +0.0 (9 of 216
    cases probed in session 9); float64 sums those shapes into +0.0 as mm."""
    m_rows, k, n_cols = shape
    rng = np.random.default_rng(sum(shape))
    a = rng.choice([0.0, -0.0], size=(m_rows, k))
    a[0, 0] = -0.0
    w = rng.choice([2.0, -1.0, 0.5], size=(n_cols, k))
    w[0, 0] = 2.0     # (the first output is -0.0 + -0.0 * 2.0)
    bias = -np.zeros(n_cols)

    def run(m):
        dt = getattr(m, dtype)
        out = m.nn.functional.linear(m.tensor(a.tolist(), dtype=dt), m.tensor(w.tolist(), dtype=dt),
                                     m.tensor(bias.tolist(), dtype=dt)).numpy()
        return out.tolist(), np.signbit(out).tolist()
    assert run(engine) == run(torch)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mm_gradients_of_an_inner_size_of_1_keep_zero_signs_as_torch(dtype):
    """The gradient of mm(a (3, 2), b (2, 1)) is g @ b.T, an mm of inner size 1: exact products."""
    def run(m):
        a = m.ones(3, 2, dtype=getattr(m, dtype), requires_grad=True)
        b = m.tensor([[-0.0], [0.0]], dtype=getattr(m, dtype), requires_grad=True)
        m.mm(a, b).backward(m.ones(3, 1, dtype=getattr(m, dtype)))
        return np.signbit(a.grad.numpy()).tolist(), np.signbit(b.grad.numpy()).tolist()
    assert run(engine) == run(torch)


@pytest.mark.parametrize("seen_by", [None, "retain_grad", "hook", "autograd.grad"])
@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mm_of_a_sums_gradient_computes_one_row_or_column_with_torchs_values_and_layout(monkeypatch, dtype,
                                                                                         transposed, seen_by):
    """The gradient of `(h @ v).sum()` is ones broadcast: each of mm's two gradient products
    repeats one row (g @ v.T) or one column (h.T @ g). From an inner size of
    REPEATS_MIN_INNER on (where BLAS's blocking already sums in another order than torch's), the
    engine computes that row or column only (W4: 3 of 6 1024-cubed GEMMs): h's gradient, a
    repeated row, goes on unexpanded to h = x @ w's backward, which then computes one row of
    x's gradient, unless someone sees h's gradient (a retained gradient, a hook, autograd.grad),
    who gets it laid out as torch's. Every gradient has torch's values and layout (a weight used
    as `v.t()` too)."""
    from engine import _ops
    n = _ops.REPEATS_MIN_INNER
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal(shape).astype(dtype) for shape in ((n, 3), (3, n), (n, n))]
    if transposed:
        arrays[2] = np.ascontiguousarray(arrays[2].T)
    shapes = []
    matmul = _ops._matmul
    monkeypatch.setattr(_ops, "_matmul", lambda a, b: shapes.append((a.shape, b.shape)) or matmul(a, b))

    def run(m):
        x, w, v = (m.tensor(a, requires_grad=True) for a in arrays)
        h = x @ w
        seen = []
        if seen_by == "retain_grad":
            h.retain_grad()
        elif seen_by == "hook":
            h.register_hook(lambda grad: seen.append(grad.numpy().copy()) or None)
        loss = (h @ (v.t() if transposed else v)).sum()
        shapes.clear()
        if seen_by == "autograd.grad":
            grads = m.autograd.grad(loss, (x, w, v, h))
        else:
            loss.backward()
            grads = (x.grad, w.grad, v.grad) + ((h.grad,) if seen_by == "retain_grad" else ())
        return [(g.numpy(), g.numpy().strides) for g in grads] + [(g, g.strides) for g in seen]
    got = run(engine)
    assert ((1, n), (n, n)) in shapes and ((n, n), (n, 1)) in shapes
    assert ((n, n), (n, n)) not in shapes    # (the backward's full products are those of x and w)
    assert (((1, n), (n, 3)) in shapes) == (seen_by is None)   # x's gradient from one row
    want = run(torch)
    assert len(got) == len(want)
    tolerance = {"float32": 1e-5, "float64": 1e-12}[dtype]
    for (g, g_strides), (t, t_strides) in zip(got, want):
        assert g_strides == t_strides
        np.testing.assert_allclose(g, t, rtol=tolerance, atol=tolerance * np.abs(t).max())
