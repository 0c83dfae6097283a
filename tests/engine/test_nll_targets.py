"""nll_loss / cross_entropy: the plan's quick check that every target is a class (one unsigned
comparison, taken when ignore_index cannot be a class and no weight is given) and its flat target
index give the bits of the general path (a weight of ones, an ignore_index that is a class no
target names), close to torch's, and torch's errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import engine


def _loss_and_grad(backend, logits, target, **options):
    x = backend.tensor(logits, requires_grad=True)
    if "weight" in options:
        options["weight"] = backend.tensor(options["weight"])
    loss = backend.nn.functional.cross_entropy(x, backend.tensor(target), **options)
    loss.sum().backward()
    return loss.detach().numpy(), x.grad.numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(64, 7), (300, 7), (5, 7, 3), (2, 7, 2, 3), (7,)])
def test_the_quick_path_gives_the_general_paths_bits(dtype, reduction, shape):
    rng = np.random.default_rng(len(shape) * 100 + shape[0])
    logits = (rng.standard_normal(shape) * 4).astype(dtype)
    logits.reshape(-1)[:3] = [-0.0, 0.0, 1e30]
    target = rng.integers(0, 6, () if len(shape) == 1 else (shape[0],) + shape[2:])   # (class 6 unused)
    general = _loss_and_grad(engine, logits, target, reduction=reduction, ignore_index=6,
                             weight=np.ones(7, dtype))
    for ignore_index in (-100, 7, 1000):
        quick = _loss_and_grad(engine, logits, target, reduction=reduction, ignore_index=ignore_index)
        assert [a.tobytes() for a in quick] == [a.tobytes() for a in general]
    theirs = _loss_and_grad(torch, logits, target, reduction=reduction)
    for ours, want in zip(general, theirs):
        np.testing.assert_allclose(ours, want, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-7)


@pytest.mark.parametrize("bad", [-1, -100, 7, 2 ** 40])
def test_a_target_out_of_bounds_is_refused_as_torch(bad):
    logits = np.zeros((4, 7), np.float32)
    target = np.array([0, bad, 3, 1])
    errors = []
    for backend in (engine, torch):
        with pytest.raises(IndexError) as caught:
            backend.nn.functional.nll_loss(backend.tensor(logits), backend.tensor(target), ignore_index=1000)
        errors.append(str(caught.value))
    assert errors[0] == errors[1]


def test_the_unit_weights_of_a_batch_are_shared_read_only():
    # An unweighted batch's ones and minus ones are made once per shape and dtype and shared by
    # every call: they are read-only, and a second call gives the first's bits.
    from engine.nn import functional
    logits = np.random.default_rng(1).standard_normal((64, 10)).astype(np.float32)
    target = np.arange(64) % 10
    first = [a.tobytes() for a in _loss_and_grad(engine, logits, target)]
    ones, minus_ones = functional._unit_weights((64, 1), np.dtype(np.float32))
    assert not ones.flags.writeable and not minus_ones.flags.writeable
    assert [a.tobytes() for a in _loss_and_grad(engine, logits, target)] == first


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape, target", [((0,), 2), ((2, 0), [2, 2])])
def test_an_input_without_classes_whose_targets_are_all_ignored(shape, target, reduction):
    """Campaign seed 24: nll_loss of an empty diagonal (no classes) with its 0-d target ignored
    is nan ('mean', 0 / 0) or 0 in torch, with an empty gradient; the engine raised numpy's
    IndexError taking the (ignored) targets' elements from nothing."""
    results = []
    for backend in (torch, engine):
        x = backend.zeros(*shape, requires_grad=True)
        loss = backend.nn.functional.nll_loss(x, backend.tensor(target), ignore_index=2, reduction=reduction)
        loss.sum().backward()
        results.append((loss.detach().numpy(), x.grad.numpy(), loss.grad_fn is not None))
    np.testing.assert_array_equal(results[1][0], results[0][0])
    assert results[1][1].shape == results[0][1].shape and results[1][2] == results[0][2]
