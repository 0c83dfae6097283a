"""Small matrix products summed in torch's order (engine/_blas.py), bit for bit against torch.

torch's mm / addmm / linear / mv call MKL, which on an AVX2 CPU without AVX512 sums the k products
of each element of a small product one after the other (rounded products, or fused multiply-adds
for larger ones), except in the cases _blas lists; numpy's OpenBLAS sums them in another order
and differed in the last bit in 30-60 % of the elements. MKL's AVX512 kernels were not probed:
there the engine keeps numpy's products and these tests are skipped. torch's small bmm is its own
loop and is checked on every CPU.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import engine
from engine import _blas
from engine._cpu import AVX512

MKL_AVX2 = pytest.mark.skipif(AVX512, reason="MKL's AVX512 kernels sum in other orders (not emulated)")
DTYPES = ("float32", "float64")


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _bits(x) -> np.ndarray:
    x = x.detach().numpy() if hasattr(x, "detach") else np.asarray(x)
    return x.view(np.uint64 if x.dtype == np.float64 else np.uint32)


def _same(ours, theirs) -> bool:
    ours = ours.detach().numpy()
    theirs = theirs.detach().numpy()
    return ours.shape == theirs.shape and ours.dtype == theirs.dtype and bool((_bits(ours) == _bits(theirs)).all())


def _stored(x: np.ndarray, transposed: bool):
    """x as a torch tensor and as an engine tensor, row-major or stored transposed."""
    if transposed:
        return torch.tensor(x.T.copy()).t(), engine.tensor(x.T.copy()).t()
    return torch.tensor(x), engine.tensor(x)


SHAPES = [(m, k, n) for m, k, n in itertools.product((1, 2, 3, 4, 5, 8), (2, 3, 4, 5, 8, 12), (1, 2, 3, 4, 6, 8))] + [
    (4, 3, 12), (5, 6, 16), (16, 4, 16), (12, 8, 13), (16, 2, 3), (6, 16, 16)]


@MKL_AVX2
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["NN", "TN", "NT", "TT"])
def test_mm_is_torchs_where_the_order_is_known(dtype, layout):
    rng = np.random.default_rng(1)
    covered = 0
    for m, k, n in SHAPES:
        for _ in range(2):
            a = rng.standard_normal((m, k)).astype(dtype)
            b = rng.standard_normal((k, n)).astype(dtype)
            ta, ea = _stored(a, layout[0] == "T")
            tb, eb = _stored(b, layout[1] == "T")
            if _blas.mm(ea._data, eb._data) is None:
                continue
            covered += 1
            assert _same(engine.mm(ea, eb), torch.mm(ta, tb)), (m, k, n, layout)
    assert covered > 0


@MKL_AVX2
@pytest.mark.parametrize("dtype", DTYPES)
def test_small_contiguous_products_are_covered(dtype):
    """Every product of contiguous matrices with sides <= 4 (the fuzzer's) is emulated, but for
    a column result (n == 1) of 4 or more rows and 5 or more products (MKL's dot-product kernel)."""
    for m, k, n in itertools.product(range(1, 5), range(2, 5), range(1, 5)):
        a, b = np.ones((m, k), dtype), np.ones((k, n), dtype)
        assert _blas.mm(a, b) is not None, (m, k, n)
    for m, k in itertools.product(range(4, 9), range(5, 9)):
        assert _blas.mm(np.ones((m, k), dtype), np.ones((k, 1), dtype)) is None


@MKL_AVX2
def test_the_rule_table():
    """The table of _blas.order, in MKL's terms (transa, transb, M, N, K): sequential rounded
    products ('S'), sequential fused multiply-adds ('F', float32 from M >= 12 and N >= 4), and
    the cases summed in partial sums (None)."""
    order = _blas.order
    assert order(False, False, 4, 4, 4) == "S"
    assert order(False, False, 16, 4, 40) is None      # (K beyond what was probed)
    assert order(False, False, 12, 4, 8) == "F" and order(True, False, 16, 16, 16) == "F"
    assert order(False, False, 11, 16, 7) == "S" and order(False, False, 11, 16, 8) is None
    assert order(True, True, 4, 1, 4) == "S" and order(True, True, 4, 1, 5) is None     # a column result
    assert order(True, False, 3, 4, 4) == "S" and order(True, False, 4, 4, 4) == "L"    # linear's weight.t()
    assert order(True, False, 5, 4, 8) is None and order(True, False, 8, 4, 16) == "L"
    assert order(False, False, 12, 4, 8, np.float64) is None and order(False, False, 3, 3, 8, np.float64) is None


@MKL_AVX2
@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_sums_in_lanes_aligned_on_the_rows_of_its_input(dtype):
    """A linear layer's product x @ w.t() with 4 or more outputs is MKL's dot-product kernel:
    16-byte vectors over k, aligned on the address of each row of x, so the order depends on
    where the row starts in torch's (64-byte aligned) storage: views at offsets give others."""
    rng = np.random.default_rng(7)
    checked = 0
    for m, k, n in itertools.product((1, 2, 3, 4, 5), (4, 5, 6, 7, 8, 9, 12), (4, 5, 6, 8)):
        base = rng.standard_normal((m + 1) * k + 3).astype(dtype)
        w = rng.standard_normal((n, k)).astype(dtype)
        bias = rng.standard_normal(n).astype(dtype)
        for start in (0, 1, 2, 3):
            tx = torch.tensor(base)[start:start + m * k].view(m, k)
            ex = engine.tensor(base)[start:start + m * k].view(m, k)
            if _blas.mm(ex._data, w.T) is None:
                continue
            checked += 1
            assert _same(engine.nn.functional.linear(ex, engine.tensor(w)),
                         torch.nn.functional.linear(tx, torch.tensor(w))), (m, k, n, start)
            if _blas.mm(ex._data, w.T, bias) is not None:
                assert _same(engine.nn.functional.linear(ex, engine.tensor(w), engine.tensor(bias)),
                             torch.nn.functional.linear(tx, torch.tensor(w), torch.tensor(bias))), (m, k, n, start)
    assert checked > 100


@MKL_AVX2
@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_products_are_torchs(dtype):
    """From 12 columns and 4 rows on, MKL's float32 sgemm sums by fused multiply-adds (rounded
    once each), which the engine computes in float64 with each rounding made exact."""
    rng = np.random.default_rng(2)
    for m, k, n in [(4, 8, 12), (4, 16, 16), (8, 5, 13), (16, 16, 16)]:
        a = rng.standard_normal((m, k)).astype(dtype) * 3
        b = rng.standard_normal((k, n)).astype(dtype)
        out = _blas.mm(a, b)
        if dtype == "float64":
            assert out is None
            continue
        assert (_bits(out) == _bits(torch.mm(torch.tensor(a), torch.tensor(b)))).all(), (m, k, n)


def test_fma32_rounds_once():
    """_fma32 is the correctly rounded fl32(acc + product) where the float64 sum is a float32 tie."""
    acc = np.array([1.0, 1.0, -1.0], np.float32)
    # the exact sums are just above, just below and just below in magnitude of a tie
    ulp = 2.0 ** -23
    tiny = 2.0 ** -60
    product = np.array([ulp / 2 + tiny, ulp / 2 - tiny, -(ulp / 2 + tiny)])
    got = _blas._fma32(acc, product)
    assert got.tolist() == [np.float32(1 + ulp), 1.0, np.float32(-1 - ulp)]


@MKL_AVX2
@pytest.mark.parametrize("dtype", DTYPES)
def test_addmm_and_linear_place_the_bias_as_torch(dtype):
    """The bias (copied into the result, gemm with beta = 1) is MKL's first addend where transa is
    'N' (addmm of row-major matrices) and its last where transa is 'T' (linear's weight.t())."""
    rng = np.random.default_rng(3)
    covered = 0
    for m, k, n in SHAPES:
        a = rng.standard_normal((m, k)).astype(dtype)
        b = rng.standard_normal((k, n)).astype(dtype)
        w = rng.standard_normal((n, k)).astype(dtype)
        for bias in (rng.standard_normal(n).astype(dtype), rng.standard_normal((m, n)).astype(dtype)):
            ours = engine.nn.functional.linear(engine.tensor(a), engine.tensor(w), engine.tensor(bias))
            theirs = torch.nn.functional.linear(torch.tensor(a), torch.tensor(w), torch.tensor(bias))
            if _blas.mm(a, w.T, bias) is not None:
                covered += 1
                assert _same(ours, theirs), ("linear", m, k, n, bias.shape)
            # a weight stored transposed: linear's product is of row-major matrices (addmm's
            # transa 'N' path)
            ours = engine.nn.functional.linear(engine.tensor(a), engine.tensor(b).t(), engine.tensor(bias))
            theirs = torch.nn.functional.linear(torch.tensor(a), torch.tensor(b).t(), torch.tensor(bias))
            if _blas.mm(a, b, bias) is not None:
                covered += 1
                assert _same(ours, theirs), ("addmm", m, k, n, bias.shape)
    assert covered > 100


@MKL_AVX2
@pytest.mark.parametrize("dtype", DTYPES)
def test_gradients_of_products_are_torchs(dtype):
    """The backward products (grad @ w.t(), x.t() @ grad, as torch lays them out) follow the same
    rule; campaigns reported gradients amplified by reciprocal and sin after mm."""
    rng = np.random.default_rng(4)
    checked = 0
    for m, k, n in [(2, 3, 4), (3, 2, 2), (4, 4, 1), (1, 3, 3), (2, 4, 3), (4, 3, 2), (3, 3, 3)]:
        a = rng.standard_normal((m, k)).astype(dtype)
        b = rng.standard_normal((k, n)).astype(dtype)
        g = rng.standard_normal((m, n)).astype(dtype)
        ea, eb = engine.tensor(a, requires_grad=True), engine.tensor(b, requires_grad=True)
        ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
        (engine.mm(ea, eb) * engine.tensor(g)).sum().backward()
        (torch.mm(ta, tb) * torch.tensor(g)).sum().backward()
        if _blas.mm(g, b.T) is not None:
            checked += 1
            assert _same(ea.grad, ta.grad), (m, k, n)
        if _blas.mm(a.T, g) is not None:
            checked += 1
            assert _same(eb.grad, tb.grad), (m, k, n)
    assert checked >= 8


@MKL_AVX2
@pytest.mark.parametrize("dtype", DTYPES)
def test_a_sum_of_negative_zero_products_is_positive_zero(dtype):
    """MKL's accumulator starts at +0.0: mm of zeros by -ones is +0.0 (k >= 2); a bias of -0.0
    stays -0.0 where it is the first addend (addmm), and becomes +0.0 where it is the last
    (linear's weight.t())."""
    for m, k, n in [(2, 2, 3), (4, 3, 4), (1, 3, 4), (3, 4, 2)]:
        zeros, minus = torch.zeros(m, k, dtype=getattr(torch, dtype)), -torch.ones(k, n, dtype=getattr(torch, dtype))
        ez, em = engine.zeros(m, k, dtype=getattr(engine, dtype)), -engine.ones(k, n, dtype=getattr(engine, dtype))
        assert _same(engine.mm(ez, em), torch.mm(zeros, minus))
        bias_t = torch.full((n,), -0.0, dtype=getattr(torch, dtype))
        bias_e = engine.full((n,), -0.0, dtype=getattr(engine, dtype))
        assert _blas.mm(ez._data, em._data, bias_e._data) is not None
        assert _same(engine.nn.functional.linear(ez, em.t(), bias_e),          # bias first: -0.0
                     torch.nn.functional.linear(zeros, minus.t(), bias_t))
        if m > 1:
            # (a single row, 'T' with N == 1: not emulated, see _blas.mm)
            assert _blas.mm(ez._data, em.t().contiguous().t()._data, bias_e._data) is not None
            assert _same(engine.nn.functional.linear(ez, em.t().contiguous(), bias_e),   # bias last: +0.0
                         torch.nn.functional.linear(zeros, minus.t().contiguous(), bias_t))


@pytest.mark.parametrize("dtype", DTYPES)
def test_small_bmm_is_torchs_loop(dtype):
    """torch's bmm below 400 multiply-adds per matrix is its own loop (baddbmm_cpu_kernel):
    sequential from +0.0 with rounded products, on every CPU; matmul's batched path uses it."""
    rng = np.random.default_rng(5)
    for m, k, n in itertools.product((1, 2, 3, 4, 7), (2, 3, 4, 5, 9), (1, 2, 4, 6)):
        a = rng.standard_normal((3, m, k)).astype(dtype)
        b = rng.standard_normal((3, k, n)).astype(dtype)
        assert _same(engine.bmm(engine.tensor(a), engine.tensor(b)), torch.bmm(torch.tensor(a), torch.tensor(b)))
        # a 3-d by 3-d matmul (not folded)
        assert _same(engine.matmul(engine.tensor(a), engine.tensor(b)), torch.matmul(torch.tensor(a), torch.tensor(b)))
    assert _blas.bmm(np.ones((2, 8, 8)), np.ones((2, 8, 8))) is None    # 512 multiply-adds: MKL's batched gemm


@MKL_AVX2
@pytest.mark.parametrize("dtype", DTYPES)
def test_mv_is_torchs_where_sequential(dtype):
    """torch's mv (MKL's gemv of a row-major matrix) sums sequentially for fewer than 4 rows
    (k < 12 in float32, k < 10 in float64) or fewer than 5 columns; otherwise in lanes (numpy's)."""
    rng = np.random.default_rng(6)
    covered = 0
    for m, k in itertools.product(range(1, 9), range(2, 13)):
        a = rng.standard_normal((m, k)).astype(dtype)
        v = rng.standard_normal(k).astype(dtype)
        if _blas.mv(a, v) is None:
            continue
        covered += 1
        assert _same(engine.mv(engine.tensor(a), engine.tensor(v)), torch.mv(torch.tensor(a), torch.tensor(v))), (m, k)
        assert _same(engine.matmul(engine.tensor(a), engine.tensor(v)), torch.matmul(torch.tensor(a), torch.tensor(v)))
    assert covered > 30


@MKL_AVX2
def test_linear_then_exp_is_torchs():
    """Campaign finding (seed 16): linear(x0, x1) then prod differed by 1 ulp of the product,
    amplified; the product is now torch's."""
    x0 = [[0.5, -0.7384260296821594, -1.3529356718063354], [-2.2038795948028564, -2.6470787525177, -2.2171037197113037]]
    x1 = [[1.3183190822601318, 0.0, -1.675469994544983], [2.4782307147979736, -2.0, -1.0],
          [-3.717745304107666, -3.583428144454956, -2.40432071685791], [0.3959076404571533, 2.955634593963623, -3.9587743282318115]]
    ours = engine.nn.functional.linear(engine.tensor(x0), engine.tensor(x1))
    theirs = torch.nn.functional.linear(torch.tensor(x0), torch.tensor(x1))
    assert _same(ours, theirs)
    assert _same(engine.prod(ours, dim=-1), torch.prod(theirs, dim=-1))


def test_nothing_is_emulated_for_mkls_avx512_kernels(monkeypatch):
    """Where MKL runs its AVX512 kernels (not probed) the engine keeps numpy's products."""
    monkeypatch.setattr(_blas, "_ENABLED", False)
    a = np.ones((3, 4), np.float32)
    assert _blas.mm(a, a.T) is None and _blas.mv(a, a[0]) is None


@MKL_AVX2
@pytest.mark.parametrize("dtype", DTYPES)
def test_dot_is_torchs(dtype):
    """torch.dot (MKL's sdot / ddot: lanes aligned on the second operand's 16-byte boundaries)."""
    rng = np.random.default_rng(3)
    for n in range(1, 65):
        for oa, ob in ((0, 0), (1, 1), (0, 1), (1, 0), (2, 3), (3, 3)):
            a = rng.standard_normal(n + 8).astype(dtype)
            b = rng.standard_normal(n + 8).astype(dtype)
            theirs = torch.dot(torch.tensor(a)[oa:oa + n], torch.tensor(b)[ob:ob + n])
            ours = engine.dot(engine.tensor(a)[oa:oa + n], engine.tensor(b)[ob:ob + n])
            assert _same(ours, theirs), (n, oa, ob)
        theirs = torch.dot(torch.tensor(a)[:2 * (n // 2):2], torch.tensor(b)[:n // 2])
        ours = engine.dot(engine.tensor(a)[:2 * (n // 2):2], engine.tensor(b)[:n // 2])
        assert (dtype == "float64" and n // 2 > 8) or _same(ours, theirs), n   # (not emulated there)


@MKL_AVX2
def test_dot_of_the_campaign_vector_is_torchs():
    """Campaign seed 23: normalize(x) . normalize(x) is 1.0 in torch (numpy's order: 1 - 2**-24)."""
    x = [2.0, -0.5, 0.5, 2.3146026134490967]
    for lib in (torch, engine):
        y = lib.nn.functional.normalize(lib.tensor(x), dim=0)
        assert lib.dot(y, y).item() == 1.0
        assert lib.matmul(y, y).item() == 1.0
