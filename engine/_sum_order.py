"""torch's order of additions in a float sum over some dims (its CPU kernel, cascade_sum).

Floating-point addition is not associative: where a sum has cancellations (1e30, a few
ones, -1e30), the order of the additions decides the result, and torch's is neither
numpy's pairwise summation nor a plain running sum. `dims_sum` adds in torch's order:

1. TensorIterator lays the loop out: the input's dims (those of one element dropped) with the
   output's strides (0 along the reduced dims, contiguous over the kept ones), ordered by
   `_cpu.iterator_order` (reduced dims innermost where the output tells), adjacent dims whose
   strides chain coalesced into one.
2. Its two innermost dims form the kernel's 2-d loop, called once per index of the outer dims
   (the innermost of those counting fastest). If both are kept dims, the loop adds each input
   element to its output element. Otherwise the reduced one of the two is the rows and the
   other the columns, and one of four kernels sums each column:
   - the reduced dim contiguous and at least one vector (32 bytes) long: each column's
     vectors in `row_sum`, then 0 + the elements after the last whole vector + its lanes;
   - else the column dim contiguous and at least one vector long: the columns in groups of
     4 vectors in multi_row_sum's cascade, the rest in `row_sum`;
   - else the reduced dim the denser: `row_sum` per column;
   - else the columns in groups of 4 in the cascade, the rest (fewer than 4) in `row_sum`.
3. Every result is added to its output element, which starts at 0, in the loop's order.

`_cpu.full_sum` (every dim) and `_cpu.leading_sum` (leading dims of a row-major array) are
faster special cases of the same order. Covered: float32 and float64 arrays of at most
`_cpu._GRAIN_SIZE` elements with non-negative strides (above that torch's threads split
the work, how depending on the machine); None elsewhere (the caller's numpy sum).
"""
from __future__ import annotations

import numpy as np

from . import _cpu
from ._cpu import _GRAIN_SIZE, _SHORT_ROW, _SUM_VECTOR_BYTES, _SUM_ZERO, _multi_row_sum, _row_sum, _short_row_sum, \
    iterator_order

# multi_row_sum moves its first accumulator up a level every this many rows
_LEVEL_STEP = 16


def _rows(elements: np.ndarray) -> np.ndarray:
    """torch's row_sum of each column of `elements` (rows first; further dims elementwise)."""
    return _short_row_sum(elements) if len(elements) < _SHORT_ROW else _row_sum(elements)


def _cascade(elements: np.ndarray) -> np.ndarray:
    """torch's multi_row_sum of each column of `elements` (rows first): under 16 rows a running
    sum (see `_cpu._short_sum` on starting it from the first row instead of 0)."""
    if len(elements) < _LEVEL_STEP:
        return np.add.accumulate(elements, axis=0)[-1]
    return _multi_row_sum(elements)


def dims_sum(x: np.ndarray, axes: tuple) -> np.ndarray | None:
    """The sum of the float array `x` over `axes` as torch adds it, with the reduced dims kept
    (size 1), in x's dtype; None where not covered (see the module's docstring)."""
    zero = _SUM_ZERO.get(x.dtype)
    if zero is None or not 0 < x.size <= _GRAIN_SIZE:
        return None
    key = (x.shape, x.strides, x.itemsize, axes)
    plan = _PLANS.get(key)
    if plan is None:
        plan = _plan(x.shape, x.strides, x.itemsize, axes)
        if len(_PLANS) >= _MAX_PLANS:
            _PLANS.clear()
        _PLANS[key] = plan
    if plan is None:
        return None
    kind, keep_shape = plan[0], plan[-1]
    if kind == "copy":
        return (x + zero).reshape(keep_shape)
    if kind == "pair":
        return np.add.reduce(x, axis=axes, keepdims=True) + zero
    _, shape, order, sizes, elements_order, mode, grouped, lanes, partial_order, ordered, split_shape, back, _ = plan
    view = x.reshape(shape).transpose(order).reshape(sizes)
    if mode == "add":      # both dims of the 2-d loop kept: each element added to its output
        partial = view
    else:
        # (rows, columns, outer dims...), contiguous: numpy adds whole rows of a contiguous array in order
        # (np.add.reduce over a leading axis), where a strided one would take a running sum
        elements = np.ascontiguousarray(view.transpose(elements_order))
        if mode == "vectors":
            whole = len(elements) // lanes
            vector = _rows(elements[:whole * lanes].reshape((whole, lanes) + elements.shape[1:]))
            partial = np.add.accumulate(np.concatenate((elements[whole * lanes:], vector)), axis=0)[-1]
        elif not grouped:
            partial = _rows(elements)
        elif grouped == elements.shape[1]:
            partial = _cascade(elements)
        else:
            partial = np.concatenate((_cascade(elements[:, :grouped]), _rows(elements[:, grouped:])))
        partial = partial.transpose(partial_order)
    if ordered is not None:
        partial = partial.transpose(ordered[0]).reshape(ordered[1])
        total = np.add.accumulate(partial, axis=-1)[..., -1] + zero
    else:
        total = partial + zero
    return total.reshape(split_shape).transpose(back).reshape(keep_shape)


def column_sum(x: np.ndarray) -> np.ndarray | None:
    """`dims_sum(x, (0,))` of a row-major (n, C) array, as shape (C,), in a few numpy calls: the
    gradient of a bias (a batch of n rows summed per column), twice in every step of an MLP.
    None where not covered: other dtypes, n < 3 or n >= 256, C < 2, above the grain, a layout
    other than row-major, and the C that dims_sum splits into two kinds of column.

    The plan of such an array is always the same (TensorIterator keeps the columns innermost:
    the 'columns' mode with one call of the 2-d loop): groups of 4 vectors of columns (all
    columns when C, shorter than a vector, is a multiple of 4) are summed in multi_row_sum's
    cascade, and otherwise each column in row_sum's 4 interleaved partial sums; then each sum
    is added to 0. The additions below are those of `_cpu._multi_row_sum` and `_cpu._row_sum`
    for these row counts (one move up a level each 16 rows, n < 256 never moves twice), each run
    of them one np.add.reduce over a non-innermost axis of a row-major array (which adds whole
    rows in order from the first), without the +0.0 those add to their partial sums: adding a
    zero changes no sum but for the sign of a zero sum, and the last addition (+0.0 here, as
    there) sets that sign as theirs (see `_cpu._multi_row_sum`)."""
    zero = _SUM_ZERO.get(x.dtype)
    if zero is None or x.ndim != 2 or not x.flags.c_contiguous:
        return None
    n, c = x.shape
    if not (3 <= n < 4 * _SHORT_ROW and c >= 2 and n * c <= _GRAIN_SIZE):
        return None
    lanes = _SUM_VECTOR_BYTES // x.itemsize
    grouped = c - c % (4 * lanes) if c >= lanes else c - c % 4
    reduce = np.add.reduce
    if grouped == c:
        # multi_row_sum down the rows: the sums of each 16 rows, in order, then the rest
        if n < _LEVEL_STEP:
            return reduce(x, axis=0) + zero
        moves, rest = divmod(n, _LEVEL_STEP)
        moved = reduce(x[:moves * _LEVEL_STEP].reshape(moves, _LEVEL_STEP, c), axis=1)
        total = moved[0] if moves == 1 else reduce(moved, axis=0)
        if rest:
            total = (x[n - 1] if rest == 1 else reduce(x[n - rest:], axis=0)) + total
        return total + zero
    if grouped:
        return None
    if n < _SHORT_ROW:
        return _short_row_sum(x) + zero
    # row_sum down the rows: groups of 4 rows in multi_row_sum's 4 accumulators, the rows after
    # the last group into the first, then the other three
    groups = n // 4
    moves, rest = divmod(groups, _LEVEL_STEP)
    moved = reduce(x[:moves * 4 * _LEVEL_STEP].reshape(moves, _LEVEL_STEP, 4, c), axis=1)
    partial = moved[0] if moves == 1 else reduce(moved, axis=0)
    if rest:
        left = x[moves * 4 * _LEVEL_STEP:groups * 4].reshape(rest, 4, c)
        partial = (left[0] if rest == 1 else reduce(left, axis=0)) + partial
    if groups * 4 < n:
        partial = np.concatenate((partial[:1], x[groups * 4:], partial[1:]))
    return reduce(partial, axis=0) + zero


def ordered_sum(x: np.ndarray, axes=None, keepdims: bool = False) -> np.ndarray:
    """np.sum(x, axis=axes, keepdims=keepdims) of a numeric array, in torch's order where the
    engine follows it (`_cpu.full_sum` over every dim, `dims_sum` over some)."""
    every = axes is None or len(axes) == x.ndim
    if every:
        total = _cpu.full_sum(x, x.dtype)
        if total is not None:
            return total.reshape((1,) * x.ndim) if keepdims else total
    total = dims_sum(x, tuple(range(x.ndim)) if axes is None else tuple(axes))
    if total is None:
        return np.sum(x, axis=axes, keepdims=keepdims)
    return total if keepdims else total.reshape([n for a, n in enumerate(x.shape) if axes is not None and a not in axes])


# Plans of dims_sum by (shape, strides, itemsize, axes): the loop's layout is worked out once per layout.
_PLANS: dict = {}
_MAX_PLANS = 4096


def _plan(x_shape: tuple, x_strides: tuple, itemsize: int, axes: tuple):
    """How dims_sum sums an array of this layout over `axes` (None: not covered)."""
    if any(s < 0 or s % itemsize for s in x_strides):
        return None
    keep_shape = tuple(1 if a in axes else n for a, n in enumerate(x_shape))
    dims = [a for a in range(len(x_shape)) if x_shape[a] > 1]
    if not any(a in axes for a in dims):
        return ("copy", keep_shape)     # each element added to a zeroed output
    if sum(a in axes for a in dims) == 1 and all(x_shape[a] <= 2 for a in axes):
        return ("pair", keep_shape)     # one reduced dim of 2: 0 + a + b in any order is one rounding

    # 1. the iterator's dims, innermost first, coalesced
    shape = [x_shape[a] for a in dims]
    in_strides = [x_strides[a] // itemsize for a in dims]
    out_strides, step = [0] * len(dims), 1
    for p in reversed(range(len(dims))):
        if dims[p] not in axes:
            out_strides[p], step = step, step * shape[p]
    order = iterator_order(shape, [out_strides, in_strides], reduction=True)
    groups, sizes, istr, ostr = [], [], [], []
    for p in reversed(order):
        if groups and sizes[-1] * istr[-1] == in_strides[p] and sizes[-1] * ostr[-1] == out_strides[p]:
            groups[-1].append(p)
            sizes[-1] *= shape[p]
        else:
            groups.append([p])
            sizes.append(shape[p])
            istr.append(in_strides[p])
            ostr.append(out_strides[p])
    if len(sizes) == 1:    # a 1-d loop is a 2-d one of one column
        sizes, istr, ostr = sizes + [1], istr + [0], ostr + [0]
    n = len(sizes)
    # the loop as an array (x.reshape(shape).transpose(order).reshape(sizes[::-1]): a view, as
    # coalesced dims chain), the outermost dim first: iterator dim k is its axis n - 1 - k

    # 2. what each call of the 2-d loop adds to each output element
    elements_order = partial_order = None
    mode, grouped = "add", 0
    lanes = _SUM_VECTOR_BYTES // itemsize
    if ostr[0] and ostr[1]:
        loop_dims = list(range(n - 1, -1, -1))
    else:
        rows, columns = (1, 0) if ostr[0] else (0, 1)
        elements_order = [n - 1 - rows, n - 1 - columns] + list(range(n - 2))   # (rows, columns, outer dims...)
        size0, size1 = sizes[rows], sizes[columns]
        if istr[rows] == 1 and size0 >= lanes:
            mode = "vectors"
        else:
            mode = "columns"
            if istr[columns] == 1 and size1 >= lanes:
                grouped = size1 - size1 % (4 * lanes)
            elif istr[rows] < istr[columns]:
                grouped = 0
            else:
                grouped = size1 - size1 % 4
        partial_order = list(range(1, n - 1)) + [0]     # (outer dims..., columns)
        loop_dims = list(range(n - 1, 1, -1)) + [columns]

    # 3. added to the zeroed outputs in the loop's order (the outer dims', then the columns')
    kept = [k for k, d in enumerate(loop_dims) if ostr[d]]
    reduced = [k for k, d in enumerate(loop_dims) if not ostr[d]]
    ordered = (kept + reduced, [sizes[loop_dims[k]] for k in kept] + [-1]) if reduced else None
    # the kept dims back in x's order
    split = [dims[p] for k in kept for p in reversed(groups[loop_dims[k]])]
    return ("sum", shape, order, sizes[::-1], elements_order, mode, grouped, lanes, partial_order, ordered,
            [x_shape[a] for a in split], list(np.argsort(split)), keep_shape)
