"""Small matrix products summed in the order torch's BLAS (MKL) sums them, where it is known.

NOTE: numpy's products (OpenBLAS) differ from torch's (MKL's sgemm / dgemm) in the last bit of
30-60 % of the elements of a small float32 product: each element of a BLAS product is a sum of k
products, and the two libraries add them in different orders, with or without fused
multiply-adds. A 1-ulp difference is amplified by what follows (exp, reciprocal, sin of a
product), so fuzz campaigns reported them as value and gradient findings.

torch's addmm_impl_cpu_ (mm, addmm, linear, matmul's 2-d and folded paths) calls one
column-major gemm: a row-major result of shape (m, n) with n > 1 is computed as its transpose,
C (M = n, N = m) = op(B) @ op(A) with B, A the torch operands swapped; a result with n == 1
(a column) is computed directly (M = m, N = 1). Each operand is passed as it is stored ('N': its
column-major layout, 'T': transposed; else a contiguous copy). `gemm_call` works this out from
the operands' strides (the engine's arrays have torch's strides).

MKL's rule on an AMD Zen 3 CPU (AVX2, no AVX512; MKL 2024.2 of torch 2.13), found by probing
the summation tree of every element (the FPRev method: leaves M, -M and ones) and then the
rounding of each step, for M, N <= 16, K <= 16 (K <= 32 for M, N <= 8), 1 or 2 threads:

    K == 1                    the exact products (already handled by the engine's callers)
    M >= 12 and N >= 4        'F': for each element, sequentially over k, acc = fma(a, b, acc)
    otherwise mostly          'S': sequentially over k, acc = acc + fl(a * b)
  except (other orders: several partial sums, which the engine does not emulate, see _SPLIT):
    transa 'T', N == 1:       M >= 4 and K >= 5, or K >= 9 (a dot-product kernel with 2 or 4
                              lanes over k, for the first rows in fours; from K = 9 on its first
                              lanes depend on the operands' addresses: also for M == N == 1)
    transa 'N', N >= 2:       K >= 8 and M in 6, 7, 9, 10, 11; M == 5 and N >= 4; M in 13..15
                              and N < 4 (halves of k summed apart, in some elements)
    transa 'T', transb 'N':   N >= 2 and (M >= 4 and K >= 4, or M >= 2 and K >= 8): lanes over
                              k (a linear layer's weight.t() with 4 or more outputs), emulated
                              for M <= 8 where M % 4 == 0 or K < 8 ('L', see _lanes)
The accumulator starts at +0.0 (a sum of products that are all -0.0 is +0.0). With a bias
(addmm, linear: torch copies it into the result and calls gemm with beta = 1) the bias is the
accumulator's first value on the 'S' path when transa is 'N', and is added after the products
otherwise (transa 'T': a linear layer's weight.t(); the 'F' path).
Float64 (dgemm) has no 'F' path (its large products mix orders by tile) and other exceptions
(`_split64`).

Not MKL: torch's bmm of fewer than 400 multiply-adds per matrix (k * m * n) is its own loop
(baddbmm_cpu_kernel): sequential from +0.0, rounded products, on every CPU (`bmm`). torch's mv is
MKL's gemv, summed as gemm's transa 'T', N == 1 case (`mv`); dot (MKL's sdot / ddot) sums in
lanes that depend on the second operand's alignment (`dot`, at the end of this module).

On an AVX512 machine MKL runs other kernels (not measured here): nothing is emulated there
(`_cpu.AVX512`), and the engine keeps numpy's products, as before.
"""
from __future__ import annotations

import numpy as np

from . import _cpu

# Ranges probed (see the module's NOTE): outside them the engine keeps numpy's products.
_MAX_SIDE = 64      # M and N (the rule above was probed to 16, and checked to 64)
_MAX_INNER = 16     # K (32 where M, N <= 8 on the 'N' paths)
_ENABLED = not _cpu.AVX512
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def gemm_call(a: np.ndarray, b: np.ndarray) -> tuple[bool, bool, int, int, int]:
    """(transa, transb, M, N, K) of the column-major gemm torch's addmm_impl_cpu_ calls for
    a @ b (a: m x k, b: k x n, strides as torch's) into a fresh row-major result.

    NOTE: mirrors addmm_impl_cpu_: the result (strides (n, 1)) is taken as is when n == 1
    (`transpose_c` false), else as its transpose, swapping the operands; each operand is
    'N' when it is column-major in gemm's view, 'T' when row-major, else copied contiguous."""
    m, k = a.shape
    n = b.shape[1]
    item = a.itemsize
    transpose_c = n != 1
    if transpose_c:
        first, second, M, N = b, a, n, m
    else:
        first, second, M, N = a, b, m, n
    i0, i1 = (1, 0) if transpose_c else (0, 1)
    s1 = [s // item for s in first.strides]
    s2 = [s // item for s in second.strides]
    if s1[i0] == 1 and s1[i1] >= max(1, M):
        transa = False
    elif s1[i1] == 1 and s1[i0] >= max(1, k):
        transa = True
    else:
        transa = not transpose_c
    if s2[i0] == 1 and s2[i1] >= max(1, k):
        transb = False
    elif s2[i1] == 1 and s2[i0] >= max(1, N):
        transb = True
    else:
        transb = not transpose_c
    return transa, transb, M, N, k


def order(transa: bool, transb: bool, M: int, N: int, K: int, dtype=np.float32) -> str | None:
    """MKL's order of a gemm call on this CPU: 'S' (sequential over k, each product rounded,
    then added), 'F' (sequential fused multiply-adds), or None (another order, or not probed)."""
    if M > _MAX_SIDE or N > _MAX_SIDE or K > (_MAX_INNER if max(M, N) > 8 or transa else 2 * _MAX_INNER):
        return None
    if dtype == np.float64:
        if (M >= 12 and N >= 4) or (transa and transb and N > 1):
            return None     # (mixed orders by tile; 'T', 'T' with N > 1 not probed in float64)
    elif K >= 2 and M >= 12 and N >= 4:
        return "F"
    if transa and not transb and N >= 2 and M >= 4 and K >= 4:
        # MKL's dot-product kernel of a linear layer's product (see _lanes)
        return "L" if M <= 8 and (M % 4 == 0 or K < 8) else None
    if (_split64 if dtype == np.float64 else _split)(transa, transb, M, N, K):
        return None
    return "S"


def _split64(transa: bool, transb: bool, M: int, N: int, K: int) -> bool:
    """_split for float64 (dgemm): as float32's but for odd M on the 'N' path and from K = 10
    for a column."""
    if N == 1 and (transa or M == 1) and K >= 9:
        return True
    if transa and N == 1:
        return M >= 4 and K >= 5
    if not transa:
        return N >= 2 and K >= 8 and ((M % 2 == 1 and M >= 3) or M >= 12)
    if not transb:
        return N >= 2 and ((M >= 4 and K >= 4) or (M >= 2 and K >= 8))
    return False


def _split(transa: bool, transb: bool, M: int, N: int, K: int) -> bool:
    """Whether MKL sums (some elements of) this product in partial sums (the exceptions in the
    module's NOTE)."""
    if N == 1 and (transa or M == 1) and K >= 9:
        return True
    if transa and N == 1:
        return M >= 4 and K >= 5
    if not transa:
        return N >= 2 and K >= 8 and (M in (6, 7, 9, 10, 11) or (M == 5 and N >= 4) or (13 <= M <= 15 and N < 4))
    if not transb:
        return N >= 2 and ((M >= 4 and K >= 4) or (M >= 2 and K >= 8))
    return False


def mm(a: np.ndarray, b: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray | None:
    """a @ b (+ bias, broadcast to the result, as addmm) of two float matrices of one dtype,
    summed as torch's MKL sums it, as a new row-major array; None where the engine does not
    know MKL's order (then the caller computes it as before)."""
    if not _ENABLED or a.dtype not in _DTYPES or b.dtype != a.dtype:
        return None
    k = a.shape[1]
    if k < 2 or k > 2 * _MAX_INNER or a.shape[0] > _MAX_SIDE or b.shape[1] > _MAX_SIDE:
        return None     # (`order` knows no K above 2 * _MAX_INNER: W3's products return here)
    transa, transb, M, N, K = call = gemm_call(a, b)
    kind = order(*call, a.dtype)
    if kind is None:
        return None
    if kind == "L":
        out = _lanes(a, b)
        return out if bias is None else _plus(out, bias)
    if kind == "S":
        if bias is None:
            return _sequential(a, b, None)
        if (transa and transb) or (transb and not transa) or (transa and N == 1):
            # (the bias's place was probed for 'N', 'N' and 'T', 'N'; with transa 'T' and N == 1
            # the sum of zeros keeps a -0.0 bias in float32, not in float64: not emulated)
            return None
        return _plus(_sequential(a, b, None), bias) if transa else _sequential(a, b, bias)
    return _fused(a, b, bias)


_LANES = {np.dtype(np.float32): 4, np.dtype(np.float64): 2}   # of MKL's 16-byte vectors


def _lanes(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b as MKL's gemm 'T', 'N' kernel (M = n >= 4, N = m >= 2: a linear layer's x @ w.t(),
    a gradient g @ w.t()) sums it: each element is a dot product of a row of `a` and a column
    of `b` (a row of w), vectorized over k with 16-byte vectors aligned on a's row: the h
    products before the row's first 16-byte boundary are summed in order (the head), the
    vectors' lanes accumulate in order, the head first into lane 0, the lanes are added
    (float32: (l0 + l2) + (l1 + l3); float64: l0 + l1), then the products after the last
    whole vector in order. A row with fewer than a vector's products after its head is
    summed in order from +0.0. The first 4 * (n // 4) columns only: the others in order.

    NOTE: where a row starts depends on the address of torch's tensor: its storage is
    64-byte aligned, so it is the offset of the row from the start of the storage, which the
    engine's array has from its memory's owner (a view's offset), or 0 where torch copies the
    operand (`gemm_call`'s third case)."""
    m, k = a.shape
    n = b.shape[1]
    lanes = _LANES[a.dtype]
    item = a.itemsize
    out = _sequential(a, b, None)
    q = 4 * (n // 4)
    if not q:
        return out
    if a.strides[1] == item and a.strides[0] >= k * item:
        start = _offset(a)
        rows = [(start + i * a.strides[0]) % 16 for i in range(m)]
    else:
        rows = [(i * k * item) % 16 for i in range(m)]      # (torch's contiguous copy)
    heads = np.array([((16 - offset) % 16) // item for offset in rows])
    if not ((k - heads) >= lanes).any():
        return out
    products = np.multiply(a[:, :, None], b[None, :, :q])       # (m, k, q)
    for h in np.unique(heads):
        h = int(h)
        whole = (k - h) // lanes
        if whole < 1:
            continue        # (in order: `out` already)
        rows_h = np.flatnonzero(heads == h)
        x = products[rows_h]                                     # (r, k, q)
        vectors = x[:, h:h + whole * lanes].reshape(len(rows_h), whole, lanes, q)
        acc = list(np.add.accumulate(vectors, axis=1)[:, -1].transpose(1, 0, 2))     # lanes of (r, q)
        if h:
            # the head, in order, then lane 0's products after it
            acc[0] = np.add.accumulate(np.concatenate((x[:, :h], vectors[:, :, 0]), axis=1), axis=1)[:, -1]
        while len(acc) > 1:
            half = len(acc) // 2
            acc = [acc[j] + acc[j + half] for j in range(half)]
        total = acc[0]
        if h + whole * lanes < k:
            total = np.add.accumulate(np.concatenate((total[:, None], x[:, h + whole * lanes:]), axis=1),
                                      axis=1)[:, -1]
        out[rows_h, :q] = total
    return out


def _offset(a: np.ndarray) -> int:
    """The byte offset of `a`'s first element from the start of its memory's owner."""
    root = a
    while isinstance(root.base, np.ndarray):
        root = root.base
    return a.__array_interface__["data"][0] - root.__array_interface__["data"][0]


def _plus(out: np.ndarray, bias: np.ndarray) -> np.ndarray:
    return np.add(out, bias, out=out)


def bmm(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """a @ b of two float batches (b, m, k) @ (b, k, n) of one dtype as torch's bmm computes it
    where k * m * n < 400 (its own loop: sequential from +0.0, each product rounded), else None.
    Not MKL: on every CPU."""
    if a.dtype not in _DTYPES or b.dtype != a.dtype or a.ndim != 3 or b.ndim != 3:
        return None
    k = a.shape[2]
    if not 0 < k * a.shape[1] * b.shape[2] < 400 or a.shape[0] == 0:
        return None
    products = np.multiply(a[:, :, :, None], b[:, None, :, :])     # (batch, m, k, n)
    out = np.add.accumulate(products, axis=2)[:, :, -1, :]
    return np.add(out, 0.0, out=np.empty(out.shape, a.dtype))     # (see _sequential)


def mv(a: np.ndarray, v: np.ndarray) -> np.ndarray | None:
    """a @ v of a row-major float matrix (m, k) and a vector of its dtype as torch's mv (MKL's
    gemv, transposed: gemm's transa 'T', N == 1 case) sums it, where that is sequential (from
    +0.0, rounded products), else None."""
    if not _ENABLED or a.dtype not in _DTYPES or v.dtype != a.dtype or a.ndim != 2:
        return None
    m, k = a.shape
    if k < 2 or m > _MAX_SIDE or a.strides[1] != a.itemsize or a.strides[0] < k * a.itemsize:
        return None
    if k >= 9 or (k >= 5 and m >= 4):
        return None
    return _sequential(a, v.reshape(k, 1), None).reshape(m)


def _sequential(a: np.ndarray, b: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """'S': acc = bias or +0.0, then acc = acc + fl(a[:, p] * b[p, :]) for p in order.

    NOTE: computed as every product at once, summed by np.add.accumulate along k (which adds
    in order, from the first product rather than from +0.0: the sums differ only where every
    addend is -0.0, which adding +0.0 at the end turns into MKL's +0.0)."""
    m, k = a.shape
    n = b.shape[1]
    products = np.multiply(a[:, :, None], b[None, :, :])          # (m, k, n)
    if bias is not None:
        first = np.empty((m, 1, n), a.dtype)
        np.copyto(first[:, 0, :], bias)
        return np.add.accumulate(np.concatenate((first, products), axis=1), axis=1)[:, -1, :]
    out = np.add.accumulate(products, axis=1)[:, -1, :]
    return np.add(out, 0.0, out=np.empty((m, n), a.dtype))


def _fused(a: np.ndarray, b: np.ndarray, bias: np.ndarray | None) -> np.ndarray | None:
    """'F': acc = +0.0, acc = fma(a[:, p], b[p, :], acc) for p in order, then + bias. Float32
    only (computed in float64 with the rounding of each fma made exact); None for float64."""
    if a.dtype != np.float32:
        return None
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    out = np.zeros((a.shape[0], b.shape[1]), np.float32)
    for p in range(a.shape[1]):
        out = _fma32(out, np.multiply(a64[:, p:p + 1], b64[p:p + 1, :]))
    if bias is not None:
        out = np.add(out, bias, dtype=np.float32)
    return np.ascontiguousarray(out)


def _fma32(acc: np.ndarray, product: np.ndarray) -> np.ndarray:
    """fl32(acc + product) rounded once: acc float32, product the exact float64 product of two
    float32 numbers (48 significant bits at most).

    NOTE: acc + product in float64 is rounded, and rounding that to float32 again can land on
    the wrong side of a float32 tie; the error of the float64 sum (TwoSum, exact) tells which
    side the exact sum is on, and a sum that rounded to a tie is nudged toward it."""
    x = acc.astype(np.float64)
    s = x + product
    v = s - x
    err = (x - (s - v)) + (product - v)
    r = s.astype(np.float32)
    back = r.astype(np.float64)
    other = np.nextafter(r, np.where(s > back, np.float32(np.inf), np.float32(-np.inf))).astype(np.float64)
    tie = (s != back) & ((back + other) * 0.5 == s) & (err != 0)
    if tie.any():
        r = np.where(tie, np.nextafter(s, np.where(err > 0, np.inf, -np.inf)), s).astype(np.float32)
    return r


# ---------------------------------------------------------------------------------------------
# dot: MKL's sdot / ddot (torch.dot passes both strides as incx / incy, no copy; x = self, y = other)
#
# Probed by FPRev trees (n = 2..40, offsets 0..16 elements, strides 1, 2, 3, 5, 7; 1 thread) on
# this AVX2 machine:
#   float32, both strides 1, n - h >= 4, where h = the elements of y before its first 16-byte
#     boundary (its offset in torch's 64-byte aligned storage):
#       x and y equally aligned (offsets equal mod 4 elements): the head (h elements, in order) is
#       lane 0's start; 4 accumulators of 4 lanes take 16 elements a block, then 8 (acc0, acc1),
#       then 4 (acc0); the tail (< 4) in order into acc0's lane 0; ((a0 + a1) + a2) + a3 then
#       (l0 + l2) + (l1 + l3)
#       otherwise: the head, one vector of 4, the rest in order into lane 0, (l0 + l2) + (l1 + l3)
#   float32 otherwise (n - h < 4, or a stride != 1): in order
#   float64: as float32's equal case with 2 lanes (blocks of 8, then pairs into acc0, the odd
#     element into lane 0, then l0 + l1), h = 1 where y is not 16-byte aligned (x's alignment
#     does not matter); with strides != 1 the same with h = 0 up to n = 8 (beyond: not emulated)
# ---------------------------------------------------------------------------------------------

def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """The 0-d a . b of two float vectors of one dtype as torch's dot (MKL) sums it, or None."""
    if not _ENABLED or a.dtype not in _DTYPES or b.dtype != a.dtype or a.ndim != 1 or b.ndim != 1:
        return None
    n = a.shape[0]
    if n > 64 or n != b.shape[0]:
        return None
    item = a.itemsize
    if n < 2:
        return None
    p = np.multiply(a, b)
    dt = a.dtype
    contiguous = a.strides[0] == item and b.strides[0] == item
    if dt == np.float32:
        if not contiguous:
            return _in_order(p)
        ob, oa = _offset(b) // item, _offset(a) // item
        h = (4 - ob % 4) % 4
        if n - h < 4:
            return _in_order(p)
        if oa % 4 != ob % 4:
            lanes = p[h:h + 4].copy()
            lanes[0] = _in_order(np.concatenate((p[:h], p[h:h + 1], p[h + 4:])))
            return (lanes[0] + lanes[2]) + (lanes[1] + lanes[3])
        return _lanes_sum(p, h, 4, (16, 8, 4))
    if contiguous:
        h = (_offset(b) // item) % 2
    elif a.strides[0] > 0 and b.strides[0] > 0 and n <= 8:
        h = 0       # (strided float64 from n = 9 on sums in another order: not emulated)
    else:
        return None
    if n - h < 2:
        return _in_order(p)
    return _lanes_sum(p, h, 2, (8, 2))


def _in_order(p: np.ndarray) -> np.ndarray:
    return np.add(np.add.accumulate(p)[-1], p.dtype.type(0.0))


def _lanes_sum(p: np.ndarray, h: int, lanes: int, steps: tuple) -> np.ndarray:
    """MKL's dot with 4 accumulators of `lanes` lanes (see the dot section's NOTE)."""
    acc = np.zeros((4, lanes), p.dtype)
    i = h
    n = p.shape[0]
    block = steps[0]
    nb = (n - h) // block
    head = p[:h]
    if nb:
        blocks = p[h:h + nb * block].reshape(nb, 4, lanes)
        acc = np.add.accumulate(np.concatenate((acc[None], blocks)), axis=0)[-1]
        i += nb * block
    for step in steps[1:]:
        while n - i >= step:
            for j in range(step // lanes):
                acc[j] = acc[j] + p[i + j * lanes:i + (j + 1) * lanes]
            i += step
            if lanes == 2:
                continue
            break
    # the head is lane 0's first value: re-sum lane 0 of acc0 in order
    first = _acc0_lane0(p, h, i, lanes, steps)
    acc[0, 0] = _in_order(np.concatenate((head, first, p[i:])))
    total = ((acc[0] + acc[1]) + acc[2]) + acc[3]
    if lanes == 4:
        return np.add(total[0] + total[2], total[1] + total[3], dtype=p.dtype)
    return np.add(total[0], total[1], dtype=p.dtype)


def _acc0_lane0(p: np.ndarray, h: int, end: int, lanes: int, steps: tuple) -> np.ndarray:
    """The products acc0's lane 0 takes between h and end, in order."""
    idx = []
    n_block = steps[0]
    i = h
    while end - i >= n_block:
        idx.append(i)
        i += n_block
    while i < end:
        idx.append(i)
        step = 8 if lanes == 4 and end - i >= 8 else (4 if lanes == 4 else 2)
        i += step
    return p[idx]
