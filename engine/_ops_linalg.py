"""Ops of the `engine/_ops_linalg.py` section of the op table (see engine/optable.py).

Each public function here is one op: it computes with numpy and calls
`record(rule, inputs, result, dtype, **saved_values)`; its `Rule` is defined
next to it. See `engine/_ops.py` for the conventions rules follow.

mm, bmm, mv and dot validate their arguments in torch's order (dimensions,
sizes, dtypes, then the kernels' dtype support) and call the internal products
of `_ops.py`. einsum is composed the way torch 2.13 composes it
(aten/src/ATen/native/Linear.cpp): diagonal / permute / unsqueeze each
operand, contract left to right with `sumproduct_pair` (sum, permute, view,
bmm, or mul), and view or sum the contracted dimensions away.
"""
from __future__ import annotations

import numpy as np

from . import _ops
from ._ops import (_UNSQUEEZE, _VIEW, Rule, _check_tensor, _diagonal_view, _reshape, _reshape_as_torch, record,
                   v_expand, v_masked_zero)
from ._tensor import Tensor

# torch's names of the supported dtypes: in "expected scalar type" messages and in C++ type names.
def _check_dim(t: Tensor, ndim: int, message: str):
    if t.ndim != ndim:
        raise RuntimeError(message)


# ---------------------------------------------------------------------------------
# Matrix products: public forms of the internal products
# ---------------------------------------------------------------------------------

def mm(input, mat2) -> Tensor:
    _check_tensor(input, "mm")
    _check_tensor(mat2, "mm", "mat2", 2)
    _check_dim(input, 2, "self must be a matrix")
    _check_dim(mat2, 2, "mat2 must be a matrix")
    return _ops._mm(input, mat2)


def bmm(input, mat2) -> Tensor:
    _check_tensor(input, "bmm")
    _check_tensor(mat2, "bmm", "mat2", 2)
    _check_dim(input, 3, "batch1 must be a 3D tensor")
    _check_dim(mat2, 3, "batch2 must be a 3D tensor")
    return _ops._bmm(input, mat2)


def mv(input, vec) -> Tensor:
    _check_tensor(input, "mv")
    _check_tensor(vec, "mv", "vec", 2)
    if input.ndim == 0:
        # NOTE: torch reads the output size from input.size(0) before checking dimensions.
        raise IndexError("Dimension specified as 0 but tensor has no dimensions")
    if input.ndim != 2 or vec.ndim != 1:
        raise RuntimeError(f"vector + matrix @ vector expected, got 1, {input.ndim}, {vec.ndim}")
    return _ops._mv(input, vec)


def dot(input, tensor) -> Tensor:
    _check_tensor(input, "dot")
    _check_tensor(tensor, "dot", "tensor", 2)
    if input.ndim != 1 or tensor.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {input.ndim}D and {tensor.ndim}D tensors")
    return _ops._dot(input, tensor)


def _outer(op: str, input, vec2) -> Tensor:
    _check_tensor(input, op)
    _check_tensor(vec2, op, "vec2", 2)
    for name, t in (("self", input), ("vec2", vec2)):
        if t.ndim != 1:
            raise RuntimeError(f"outer: Expected 1-D argument {name}, but got {t.ndim}-D")
    # NOTE: torch composes outer as input.reshape(-1, 1) * vec2 (ViewBackward0 -> MulBackward0),
    # so it promotes dtypes like mul.
    return _ops.mul(_reshape(input, (-1, 1), _VIEW), vec2)


def outer(input, vec2) -> Tensor:
    return _outer("outer", input, vec2)


def ger(input, vec2) -> Tensor:
    """Deprecated alias of outer (its own entry only so that argument errors name ger())."""
    return _outer("ger", input, vec2)


# ---------------------------------------------------------------------------------
# trace
# ---------------------------------------------------------------------------------

def _trace_backward(ctx, g):
    # NOTE: torch's trace_backward scatters g onto the diagonal of a zero matrix (saving only sizes).
    rows, cols = ctx.self_shape
    off_diagonal = ~np.eye(rows, cols, dtype=bool)
    return (v_masked_zero(v_expand(g, ctx.self_shape), off_diagonal),)


_TRACE = Rule("TraceBackward0", _trace_backward)


def trace(input) -> Tensor:
    _check_tensor(input, "trace")
    _ops._not_for_bool(input, "trace")   # NOTE: torch refuses bool before it checks the dims
    if input.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix, but got tensor with dim {input.ndim}")
    dt = input.dtype
    with _ops._errstate():   # (inf + -inf on the diagonal is NaN, silently: campaign finding)
        data = np.trace(input._data, dtype=dt.np)
    return record(_TRACE, (input,), data, dt, self_shape=input.shape)


# ---------------------------------------------------------------------------------
# Views einsum is made of: permute and diagonal (internal until the shape section has them)
# ---------------------------------------------------------------------------------

def v_permute(x, dims):
    return _permute(x, dims) if isinstance(x, Tensor) else np.transpose(x, dims)


def v_diagonal(x, dim1: int, dim2: int):
    return _diagonal(x, dim1, dim2) if isinstance(x, Tensor) else _diagonal_view(x, 0, dim1, dim2)


def v_diagonal_embed(x, shape, dim1: int, dim2: int):
    """The inverse of `v_diagonal`: a zero tensor of `shape` with `x` on the (dim1, dim2) diagonal."""
    if isinstance(x, Tensor):
        return _diagonal_embed(x, shape, dim1, dim2)
    out = np.zeros(shape, x.dtype)
    index = np.arange(x.shape[-1])
    np.moveaxis(out, (dim1, dim2), (-2, -1))[..., index, index] = x
    return out


_PERMUTE = Rule("PermuteBackward0", lambda ctx, g: (v_permute(g, tuple(np.argsort(ctx.dims))),))


def _permute(t: Tensor, dims) -> Tensor:
    dims = tuple(int(d) for d in dims)
    return record(_PERMUTE, (t,), np.transpose(t._data, dims), t.dtype, dims=dims)


_DIAGONAL = Rule("DiagonalBackward0",
                 lambda ctx, g: (v_diagonal_embed(g, ctx.self_shape, ctx.dim1, ctx.dim2),))
_DIAGONAL_BACKWARD = Rule("DiagonalBackwardBackward0",
                          lambda ctx, g: (v_diagonal(g, ctx.dim1, ctx.dim2),))


def _diagonal(t: Tensor, dim1: int, dim2: int) -> Tensor:
    return record(_DIAGONAL, (t,), _diagonal_view(t._data, 0, dim1, dim2), t.dtype,
                  self_shape=t.shape, dim1=dim1, dim2=dim2)


def _diagonal_embed(t: Tensor, shape, dim1: int, dim2: int) -> Tensor:
    return record(_DIAGONAL_BACKWARD, (t,), v_diagonal_embed(t._data, shape, dim1, dim2), t.dtype,
                  dim1=dim1, dim2=dim2)


def _movedim_last_to(t: Tensor, dim: int) -> Tensor:
    """t.movedim(-1, dim): a permute, recorded even when it moves nothing (as torch does)."""
    order = list(range(t.ndim - 1))
    order.insert(dim, t.ndim - 1)
    return _permute(t, order)


def _unsqueeze(t: Tensor, dim: int) -> Tensor:
    shape = t.shape
    return _reshape(t, shape[:dim] + (1,) + shape[dim:], _UNSQUEEZE)


# ---------------------------------------------------------------------------------
# einsum
# ---------------------------------------------------------------------------------

_LETTERS = 26
_ELLIPSIS = 2 * _LETTERS     # label code of "..."; letters are 0-51, uppercase first


def _label_code(c: str) -> int:
    return ord(c) - ord("A") if c.isupper() else ord(c) - ord("a") + _LETTERS


def _label_char(code: int) -> str:
    return chr(code + ord("A")) if code < _LETTERS else chr(code - _LETTERS + ord("a"))


def _is_letter(c: str) -> bool:
    return c.isascii() and c.isalpha()


def _parse_operands(lhs: str, num_ops: int) -> list[list[int]]:
    labels = [[] for _ in range(num_ops)]
    current, seen_ellipsis, i = 0, False, 0
    while i < len(lhs):
        c = lhs[i]
        if c == ".":
            if seen_ellipsis:
                raise RuntimeError(f"einsum(): found '.' for operand {current} for which an ellipsis was already found")
            if not (i + 2 < len(lhs) and lhs[i + 1] == "." and lhs[i + 2] == "."):
                raise RuntimeError(f"einsum(): found '.' for operand {current} that is not part of any ellipsis")
            i += 2
            labels[current].append(_ELLIPSIS)
            seen_ellipsis = True
        elif c == ",":
            current += 1
            if current >= num_ops:
                raise RuntimeError("einsum(): fewer operands were provided than specified in the equation")
            seen_ellipsis = False
        elif c != " ":
            if not _is_letter(c):
                raise RuntimeError(f"einsum(): invalid subscript given at index {i} in the equation "
                                   "string, subscripts must be in [a-zA-Z]")
            labels[current].append(_label_code(c))
        i += 1
    if current != num_ops - 1:
        raise RuntimeError("einsum(): more operands were provided than specified in the equation")
    return labels


def _sublist_equation(args) -> tuple[str, tuple]:
    """torch.einsum(op1, sublist1, op2, sublist2, ..., [sublist_out]) as an equation string."""
    def subscript(n):
        if n is Ellipsis:
            return "..."
        if 0 <= n < 2 * _LETTERS:
            return _label_char(n)
        raise ValueError("einsum(): subscript in subscript list is not within the valid range [0, 52)")

    equation = ",".join("".join(subscript(s) for s in sub) for sub in args[1::2])
    if len(args) % 2 == 1:
        return equation + "->" + "".join(subscript(s) for s in args[-1]), args[:-1:2]
    return equation, args[::2]


def einsum(*args) -> Tensor:
    """torch.einsum: an equation string (or sublists) and the operands, composed as torch composes it.

    NOTE: torch 2.13 contracts left to right when opt_einsum is unavailable (as in the reference
    install); with opt_einsum torch may pick another order for three or more operands, which
    changes the intermediate nodes (not the values).
    """
    if len(args) < 2:
        raise ValueError("einsum(): must specify the equation string and at least one operand, "
                         "or at least one operand and its subscripts list")
    if isinstance(args[0], Tensor):
        equation, operands = _sublist_equation(args)
    else:
        equation, operands = args[0], args[1:]
    if not isinstance(equation, str):
        raise TypeError(f"einsum(): argument 'equation' (position 1) must be str, not {type(equation).__name__}")
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])     # the old interface: operands in one list
    for i, t in enumerate(operands):
        if not isinstance(t, Tensor):
            raise TypeError(f"expected Tensor as element {i} in argument 1, but got {type(t).__name__}")
    if not operands:
        raise RuntimeError("einsum(): must provide at least one operand")
    return _einsum(equation, list(operands))


def _einsum(equation: str, operands: list) -> Tensor:
    num_ops = len(operands)
    arrow = equation.find("->")
    lhs = equation if arrow < 0 else equation[:arrow]
    op_labels = _parse_operands(lhs, num_ops)

    # Label counts and the number of dimensions the ellipsis covers.
    label_count = [0] * (2 * _LETTERS)
    ell_num_dim = 0
    for i, (t, labels) in enumerate(zip(operands, op_labels)):
        has_ellipsis = _ELLIPSIS in labels
        nlabels = len(labels) - has_ellipsis
        for s in labels:
            if s != _ELLIPSIS:
                label_count[s] += 1
        if has_ellipsis:
            ell_num_dim = max(ell_num_dim, t.ndim - nlabels)
        if (nlabels > t.ndim) if has_ellipsis else (nlabels != t.ndim):
            raise RuntimeError(
                f"einsum(): the number of subscripts in the equation ({nlabels}) "
                + (f"is more than the number of dimensions ({t.ndim}) for operand {i}" if has_ellipsis else
                   f"does not match the number of dimensions ({t.ndim}) for operand {i} and no ellipsis was given"))

    # Where each label goes in the aligned shape: output dims first, then contracted dims.
    perm_index_of = [-1] * (2 * _LETTERS)
    perm_index = ell_index = 0
    ell_in_output = False
    if arrow < 0:
        # Implicit output: the ellipsis dims, then the labels seen once, in alphabetical order.
        perm_index, ell_in_output = ell_num_dim, True
        for s in range(2 * _LETTERS):
            if label_count[s] == 1:
                perm_index_of[s] = perm_index
                perm_index += 1
    else:
        rhs = equation[arrow + 2:]
        i = 0
        while i < len(rhs):
            c = rhs[i]
            if c == ".":
                if ell_in_output:
                    raise RuntimeError("einsum(): found '.' for output but an ellipsis (...) was already found")
                if not (i + 2 < len(rhs) and rhs[i + 1] == "." and rhs[i + 2] == "."):
                    raise RuntimeError("einsum(): found '.' for output that is not part of any ellipsis (...)")
                i += 2
                ell_index, perm_index, ell_in_output = perm_index, perm_index + ell_num_dim, True
            elif c != " ":
                if not _is_letter(c):
                    raise RuntimeError(f"einsum(): invalid subscript given at index {len(lhs) + 2 + i} in the "
                                       "equation string, subscripts must be in [a-zA-Z]")
                s = _label_code(c)
                if label_count[s] == 0 or perm_index_of[s] != -1:
                    raise RuntimeError(f"einsum(): output subscript {c} " + (
                        "appears more than once in the output" if perm_index_of[s] != -1 else
                        "does not appear in the equation for any input operand"))
                perm_index_of[s] = perm_index
                perm_index += 1
            i += 1
    out_num_dim = perm_index
    if not ell_in_output:
        ell_index, perm_index = perm_index, perm_index + ell_num_dim
    for s in range(2 * _LETTERS):
        if label_count[s] and perm_index_of[s] == -1:
            perm_index_of[s] = perm_index
            perm_index += 1

    # Align every operand: diagonals for repeated labels, unsqueeze missing labels, permute.
    label_size = [1] * (2 * _LETTERS)
    ell_sizes = [1] * ell_num_dim
    dim_counts = [0] * perm_index
    ops = []
    for i, (t, labels) in enumerate(zip(operands, op_labels)):
        op = t
        permutation = [-1] * perm_index
        dim = 0
        for s in labels:
            if s == _ELLIPSIS:
                covered = t.ndim - (len(labels) - 1)
                for j in range(ell_num_dim - covered, ell_num_dim):
                    size = op.shape[dim]
                    if size != 1:
                        if ell_sizes[j] not in (1, size):
                            raise RuntimeError(
                                f"einsum(): dimension {dim} covered by ellipsis in operand {i}has size {size} "
                                f"which does not broadcast with previously seen ellipsis with size {ell_sizes[j]} "
                                "for the respective dimension")
                        ell_sizes[j] = size
                        dim_counts[ell_index + j] += 1
                    permutation[ell_index + j] = dim
                    dim += 1
            elif permutation[perm_index_of[s]] == -1:
                size = op.shape[dim]
                if size != 1:
                    if label_size[s] not in (1, size):
                        raise RuntimeError(
                            f"einsum(): subscript {_label_char(s)} has size {size} for operand {i} which does "
                            f"not broadcast with previously seen size {label_size[s]}")
                    label_size[s] = size
                    dim_counts[perm_index_of[s]] += 1
                permutation[perm_index_of[s]] = dim
                dim += 1
            else:
                prev = permutation[perm_index_of[s]]
                if op.shape[dim] != op.shape[prev]:
                    raise RuntimeError(
                        f"einsum(): subscript {_label_char(s)} is repeated for operand {i} but the sizes "
                        f"don't match, {op.shape[dim]} != {op.shape[prev]}")
                op = _movedim_last_to(_diagonal(op, prev, dim), prev)
        for k, value in enumerate(permutation):
            if value == -1:
                op = _unsqueeze(op, dim)
                permutation[k] = dim
                dim += 1
        ops.append(_permute(op, permutation))

    # Contract left to right, summing each contracted dim as soon as no other operand has it.
    while len(ops) > 1:
        a, b = ops.pop(0), ops.pop(0)
        sum_dims, a_dims, b_dims = [], [], []
        for d in range(out_num_dim, perm_index):
            if a.shape[d] != 1 and b.shape[d] != 1:
                dim_counts[d] -= 1
                if dim_counts[d] == 1:
                    sum_dims.append(d)
                    dim_counts[d] = 0
            elif dim_counts[d] == 1:
                if a.shape[d] != 1:
                    a_dims.append(d)
                    dim_counts[d] = 0
                elif b.shape[d] != 1:
                    b_dims.append(d)
                    dim_counts[d] = 0
        if a_dims:
            a = _ops.sum(a, a_dims, keepdim=True)
        if b_dims:
            b = _ops.sum(b, b_dims, keepdim=True)
        ops.insert(0, _sumproduct_pair(a, b, sum_dims))

    result = ops[0]
    if perm_index > out_num_dim:
        if num_ops > 1:
            # All contracted dims have size 1 by now: view them away.
            return _reshape(result, result.shape[:out_num_dim], _VIEW)
        return _ops.sum(result, list(range(out_num_dim, perm_index)))
    return result


def _sumproduct_pair(left: Tensor, right: Tensor, sum_dims: list) -> Tensor:
    """(left * right).sum(sum_dims, keepdim=True) by permutes and one bmm, as torch's sumproduct_pair."""
    if not sum_dims:
        return _ops.mul(left, right)
    lro, lo, ro = [], [], []
    lro_size = lo_size = ro_size = sum_size = 1
    for i in range(left.ndim):
        in_left, in_right = left.shape[i] != 1, right.shape[i] != 1
        if i in sum_dims:
            if in_left and in_right:
                sum_size *= left.shape[i]
            elif in_left:
                left = _ops.sum(left, i, keepdim=True)
            elif in_right:
                right = _ops.sum(right, i, keepdim=True)
        elif in_left and in_right:
            lro.append(i)
            lro_size *= left.shape[i]
        elif in_left:
            lo.append(i)
            lo_size *= left.shape[i]
        else:
            ro.append(i)
            ro_size *= right.shape[i]
    # NOTE: torch swaps the operands when every right-only dim precedes every left-only dim, so
    # that bmm writes the output in its memory order; bmm's dtype message shows the swap.
    if lo and ro and ro[-1] < lo[0]:
        left, right, lo, ro, lo_size, ro_size = right, left, ro, lo, ro_size, lo_size
    out_size = ([left.shape[d] for d in lro] + [left.shape[d] for d in lo] + [1] * len(sum_dims)
                + [right.shape[d] for d in ro])
    left_order = lro + lo + sum_dims + ro
    right_order = lro + sum_dims + ro + lo
    out_order = list(np.argsort(lro + lo + sum_dims + ro))
    # NOTE: torch's reshapes here record ViewBackward0, ReshapeAliasBackward0 or
    # UnsafeViewBackward0 <- CloneBackward0 depending on memory strides.
    left = _reshape_as_torch(_permute(left, left_order), (lro_size, lo_size, sum_size))
    right = _reshape_as_torch(_permute(right, right_order), (lro_size, sum_size, ro_size))
    out = _reshape_as_torch(bmm(left, right), tuple(out_size))
    return _permute(out, out_order)

