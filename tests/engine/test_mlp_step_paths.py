"""The fast paths of an MLP training step (issue 7, W3) give what torch and the general paths
give, bit for bit: relu by np.maximum, the zeroing mask of relu's gradient, nll_loss's cached plan."""
import numpy as np
import pytest
import torch

import engine
from engine import _ops

_NANS = {np.float32: (0x7FC00001, 0xFFC12345), np.float64: (0x7FF8000000000001, 0xFFF8000000012345)}
_INTS = {np.float32: np.int32, np.float64: np.int64}


def _hard_values(dtype, n, seed):
    """Random bit patterns (every kind: NaNs with payloads, subnormals, infinities) mixed with
    random normals, signed zeros and the two NaNs, `n` of them."""
    rng = np.random.default_rng(seed)
    ints = _INTS[dtype]
    bits = rng.integers(np.iinfo(ints).min, np.iinfo(ints).max, n, dtype=ints).view(dtype)
    values = rng.standard_normal(n).astype(dtype)
    pick = rng.integers(0, 5, n)
    specials = np.array([0.0, -0.0], dtype)
    nans = np.array(_NANS[dtype], np.uint32 if dtype is np.float32 else np.uint64).view(dtype)
    values = np.where(pick == 1, bits, values)
    values = np.where(pick == 2, specials[rng.integers(0, 2, n)], values)
    values = np.where(pick == 3, nans[rng.integers(0, 2, n)], values)
    return values


def _layouts(dtype, seed):
    for n in (*range(1, 34), 1000, 64 * 256):
        yield _hard_values(dtype, n, seed + n)
    base = _hard_values(dtype, 6 * 40, seed).reshape(6, 40)
    yield from (base, base.T, base[::2, 3::5], np.array(base[0, 0]), base[:0], base.reshape(2, 3, 40))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_relu_and_its_gradient_are_torchs_bit_for_bit_in_every_layout(dtype):
    ints = _INTS[dtype]
    for i, values in enumerate(_layouts(dtype, 11)):
        grad = _hard_values(dtype, values.size, 1000 + i).reshape(values.shape)
        got, want = [], []
        for backend, out in ((engine, got), (torch, want)):
            # (both row-major copies, as engine.tensor makes: the layouts are the next test's)
            x = (engine.tensor(values, requires_grad=True) if backend is engine
                 else torch.from_numpy(np.array(values, order="C")).requires_grad_())
            y = backend.relu(x)
            y.backward(engine.tensor(grad) if backend is engine else torch.from_numpy(np.array(grad)))
            out.extend([y.detach().numpy(), x.grad.numpy()])
        for g, w in zip(got, want):
            assert g.shape == w.shape and g.dtype == w.dtype
            np.testing.assert_array_equal(g.view(ints), w.view(ints))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_relu_by_maximum_is_the_mask_path_bit_for_bit(dtype):
    for values in _layouts(dtype, 5):
        fast = _ops._relu_values(values)
        mask_path = _ops._zero_where(values < 0, values)
        assert fast.shape == mask_path.shape and fast.strides == mask_path.strides
        np.testing.assert_array_equal(fast.view(_INTS[dtype]), mask_path.view(_INTS[dtype]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_maximum_self_check_refuses_a_maximum_that_is_not_relu(dtype):
    # The operands swapped: maximum(-0.0, +0.0) is +0.0 there (numpy returns the second of two zeros).
    assert not _ops._check_maximum_is_relu(np.dtype(dtype), lambda zeros, x: np.maximum(x, zeros))
    # fmax drops NaNs: fmax(0, NaN) is 0.
    assert not _ops._check_maximum_is_relu(np.dtype(dtype), np.fmax)
    # A scalar-zero maximum that loses -0.0 everywhere.
    assert not _ops._check_maximum_is_relu(np.dtype(dtype), lambda zeros, x: np.where(x < 0, zeros, x) + zeros)
    assert not _ops._check_maximum_is_relu(np.dtype(np.int32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_zero_where_is_np_where_bit_for_bit_and_laid_out_as_before(dtype):
    ints = _INTS[dtype]
    rng = np.random.default_rng(3)
    for x in _layouts(dtype, 21):
        for mask in (rng.random(x.shape) < 0.5, np.asfortranarray(rng.random(x.shape) < 0.5),
                     np.broadcast_to(rng.random(x.shape[-1:] if x.ndim else ()) < 0.5, x.shape)):
            got = _ops._zero_where(mask, x)
            want = np.where(mask, np.zeros((), dtype), x)
            np.testing.assert_array_equal(got.view(ints), want.view(ints))
            # the layout of the earlier one-call computation
            before = np.bitwise_and(x.view(ints), np.subtract(mask, 1, dtype=ints)).view(dtype)
            assert got.strides == before.strides



def _nll_case(backend, logits, target, **kwargs):
    x = backend.tensor(logits, requires_grad=True)
    if not isinstance(target, (engine.Tensor, torch.Tensor)):
        target = backend.tensor(target)
    loss = backend.nn.functional.cross_entropy(x, target, **kwargs)
    (loss if loss.ndim == 0 else loss.sum()).backward()
    return loss.detach().numpy(), x.grad.numpy()


def test_nll_plan_is_reused_for_equal_targets_and_made_anew_for_changed_ones():
    from engine.nn import functional as F
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 64)
    args = (F._NLL_LOSS, (64, 10, 1))
    first = F._unweighted_plan(*args, labels.copy(), np.dtype(np.float32), -100, "mean")
    assert F._unweighted_plan(*args, labels.copy(), np.dtype(np.float32), -100, "mean") is first
    changed = labels.copy()
    changed[5] = (changed[5] + 1) % 10
    assert F._unweighted_plan(*args, changed, np.dtype(np.float32), -100, "mean") is not first
    for other in ((np.dtype(np.float64), -100, "mean"), (np.dtype(np.float32), 3, "mean"),
                  (np.dtype(np.float32), -100, "sum")):
        assert F._unweighted_plan(*args, labels.copy(), *other) is not first
    with pytest.raises(IndexError, match="Target 10 is out of bounds"):
        bad = labels.copy()
        bad[0] = 10
        F._unweighted_plan(*args, bad, np.dtype(np.float32), -100, "mean")


def _cross_entropy_steps(backend, logits, labels, kwargs):
    """Losses and gradients of three calls on one target tensor, changed through numpy (no
    version bump) after the first: torch reads the new values."""
    target = backend.tensor(labels)
    results = []
    for step, x in enumerate(logits):
        results.extend(_nll_case(backend, x, target, **kwargs))
        if step == 0:
            target.numpy()[:8] = (target.numpy()[:8] + 3) % 10
    return results


@pytest.mark.parametrize("kwargs", [{}, {"ignore_index": 3}, {"reduction": "sum"}, {"reduction": "none"}])
def test_cross_entropy_with_cached_plans_is_as_without_and_reads_a_changed_target(kwargs, monkeypatch):
    from engine.nn import functional as F
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, 64)
    logits = [rng.standard_normal((64, 10)).astype(np.float32) * 10.0 ** step for step in range(3)]
    cached = _cross_entropy_steps(engine, logits, labels, kwargs)
    monkeypatch.setattr(F, "_NLL_PLAN_MAX_TARGETS", -1)      # every plan made anew
    fresh = _cross_entropy_steps(engine, logits, labels, kwargs)
    for got, want in zip(cached, fresh):
        np.testing.assert_array_equal(got.view(np.int32), want.view(np.int32))
    # The losses read the changed target as torch's do (its values: where log_softmax agrees).
    losses = _cross_entropy_steps(torch, logits, labels, kwargs)[::2]
    for got, want in zip(cached[::2], losses):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)   # (a changed target: off by ~1)


def test_v_t_returns_the_base_of_a_transposed_array_only_where_it_is_that_array():
    from engine import _memory
    rng = np.random.default_rng(2)
    owner = rng.standard_normal((6, 4))
    assert _ops.v_t(owner.T) is owner                     # the transpose of a transposed array: the array
    recycled = _memory.empty((256, 200), np.float64)       # (a product in recycled memory: its base is a block)
    assert _ops.v_t(recycled.T) is recycled
    for x in (owner[1:].T, owner[:, ::2].T, owner.T[::-1], owner.view(np.int64).view(np.float64).T,
              owner[:0].T):
        t = _ops.v_t(x)
        np.testing.assert_array_equal(t, x.T)
        if t is t.base:
            assert t.shape == x.T.shape
    # A float view of an int array (the base holds other types): the view, not the base.
    ints = np.arange(12, dtype=np.int64).reshape(3, 4)
    floats = ints.view(np.float64)
    assert _ops.v_t(floats.T).dtype == np.float64
    # Two arrays over one buffer at different offsets, of one shape and strides: not the same array.
    buffer = np.zeros(16)
    second = np.ndarray((2, 4), np.float64, buffer=buffer, offset=64)
    got = _ops.v_t(second.T)
    assert got.__array_interface__["data"] == second.__array_interface__["data"]
    # The base of a gradient computed transposed, as the weight's .grad (adopted, no copy).
    w = engine.tensor(rng.standard_normal((256, 300)).astype(np.float32), requires_grad=True)
    x = engine.tensor(rng.standard_normal((64, 300)).astype(np.float32))
    engine.nn.functional.linear(x, w).sum().backward()
    assert w.grad.numpy().flags.c_contiguous
