"""Large arrays: elementwise computations split over threads (engine/_parallel.py) and
recycled memory (engine/_memory.py).

A split computation must give the values (bit for bit, NaN payloads and signed zeros
included) and the memory layout of one call on the whole, for every layout of its
operands; the engine's ops on large tensors must agree with themselves unsplit and
with torch's result layouts.
"""
from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch

import engine
from engine import _memory, _ops, _parallel

# Elements from which the tests' kernels split: cheap ones split from _parallel.MIN_NUMEL (1M) in
# the engine, from this many here (the `threads` fixture), so the arrays stay small.
N = _parallel.COSTLY_MIN_NUMEL


@pytest.fixture
def threads(monkeypatch):
    """Set the engine's thread count for one test, restored after it; helpers are used
    whatever the machine's load (see _parallel.spare_cpu), so the tests split (cheap kernels
    from N elements)."""
    before = _parallel.get_num_threads()
    _parallel.set_dynamic(False)
    monkeypatch.setattr(_parallel, "MIN_NUMEL", N)
    yield _parallel.set_num_threads
    _parallel.set_num_threads(before)
    _parallel.set_dynamic(True)


def _values(shape, dtype, seed):
    """Random values with the edge cases of float arithmetic sprinkled in."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, shape).astype(dtype)
    flat = x.reshape(-1)
    tiny = np.finfo(dtype).tiny
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, tiny / 4, -tiny, np.finfo(dtype).max, 90.0, -90.0],
                        dtype)
    flat[rng.integers(0, flat.size, 200)] = rng.choice(specials, 200)
    return x


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    ints = {4: np.int32, 8: np.int64}[a.itemsize]
    return a.shape == b.shape and a.strides == b.strides and np.array_equal(a.view(ints), b.view(ints))


# Operands as the engine meets them: row-major, transposed, strided (not dense), broadcast
# along leading or middle dims, expanded to every element, a number.
def _layouts(dtype):
    big = _values((2 * N // 256, 256), dtype, 0)
    return {
        "row-major": (big, _values(big.shape, dtype, 1)),
        "transposed": (big.T, _values(big.shape, dtype, 2).T),
        "mixed": (big, _values((big.shape[1], big.shape[0]), dtype, 3).T),
        "strided": (_values((N // 128, 513), dtype, 4)[:, ::2], _values((N // 128, 257), dtype, 5)),
        "broadcast": (_values((128, 1, 1024), dtype, 6), _values((1, 8, 1024), dtype, 7)),
        "expanded": (np.broadcast_to(np.asarray(0.75, dtype), big.shape), big),
        "number": (big, np.asarray(0.5, dtype)),
        "odd 1-d": (_values(N + 37, dtype, 8), _values(N + 37, dtype, 9)),
    }


def _sigmoid_backward(g, y, out):
    return _ops._sigmoid_backward_into(g, y, out)


KERNELS = {
    "multiply": (np.multiply, 2), "add": (np.add, 2), "true_divide": (np.true_divide, 2),
    "tanh": (np.tanh, 1), "exp": (np.exp, 1), "log": (np.log, 1), "sin": (np.sin, 1),
    "sigmoid": (_ops._sigmoid, 1), "tanh backward": (_ops._tanh_backward_into, 2),
    "sigmoid backward": (_sigmoid_backward, 2),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("layout", list(_layouts(np.float32)))
def test_split_is_bit_identical_to_one_call(threads, kernel, layout, dtype):
    fn, arity = KERNELS[kernel]
    operands = _layouts(dtype)[layout][:arity]
    shape = np.broadcast_shapes(*(x.shape for x in operands))
    results = []
    for n in (1, 2, 3):
        threads(n)
        out = _ops._empty_result(shape, dtype, [x for x in operands if x.ndim])
        with _ops._errstate():
            results.append(_parallel.split(fn, out, *operands))
    assert _same_bits(results[0], results[1]) and _same_bits(results[0], results[2])


def test_blocks_cut_the_outermost_memory_axis_on_aligned_boundaries():
    out = np.empty((300, 1000), np.float32).T            # outermost memory axis: 1
    x = np.ones((1000, 1), np.float32)                   # broadcast along it: not cut
    blocks = _parallel._blocks(out, (x, np.asarray(2.0, np.float32)), 4)
    # (rows of 4000 bytes: blocks of an even number of them start on 64-byte boundaries)
    assert [b[0].shape for b in blocks] == [(1000, 76), (1000, 76), (1000, 76), (1000, 72)]
    assert all(b[1][0] is x for b in blocks)
    one_d = np.empty(1000, np.float32)
    starts = [b[0].__array_interface__["data"][0] - one_d.__array_interface__["data"][0]
              for b in _parallel._blocks(one_d, (one_d,), 4)]
    assert all(start % 64 == 0 for start in starts) and len(starts) == 4
    assert _parallel._blocks(np.empty((1, 1), np.float32), (), 4) is None


def test_a_helper_takes_blocks_and_the_caller_waits_for_them(threads):
    threads(2)
    caller, helper_started = threading.get_ident(), threading.Event()
    seen = []

    def kernel(x, out):
        # The caller's blocks wait until a helper has taken one, so both threads compute.
        if threading.get_ident() == caller:
            assert helper_started.wait(30)
        else:
            helper_started.set()
        seen.append(threading.get_ident())
        np.negative(x, out=out)

    x = _values(4 * N, np.float32, 0)
    out = _parallel.split(kernel, np.empty_like(x), x)
    assert _same_bits(out, -x) and len(set(seen)) == 2


def test_the_caller_computes_what_no_helper_takes(threads):
    """A helper that gets no CPU (here: busy) never makes the caller wait."""
    threads(2)
    _parallel._pool.ensure(1)
    release = threading.Event()

    class Blocking:
        def help(self):
            release.wait(30)

    for _ in range(_parallel._pool.helpers):
        _parallel._pool.tasks.put(Blocking())
    try:
        x = _values(4 * N, np.float32, 0)
        assert _same_bits(_parallel.split(np.negative, np.empty_like(x), x), -x)
    finally:
        release.set()


def test_a_helpers_error_reaches_the_caller(threads):
    threads(2)
    caller = threading.get_ident()

    def kernel(x, out):
        if threading.get_ident() != caller:
            raise FloatingPointError("in a helper")
        np.negative(x, out=out)

    x = _values(8 * N, np.float32, 0)
    for _ in range(20):   # until a helper takes a block (it nearly always does)
        try:
            _parallel.split(kernel, np.empty_like(x), x)
        except FloatingPointError as error:
            assert str(error) == "in a helper"
            break


def test_number_of_threads_setting():
    with pytest.raises(ValueError, match="positive integer"):
        _parallel.set_num_threads(0)
    code = "from engine import _parallel; print(_parallel.get_num_threads())"
    env = {**os.environ, "ENGINE_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(engine.__file__)))
    assert out.stdout.strip() == "1"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_splits_with_its_own_threads(threads):
    threads(2)
    x = _values(4 * N, np.float32, 0)
    _parallel.split(np.negative, np.empty_like(x), x)   # the parent's helpers exist
    pid = os.fork()
    if pid == 0:   # pragma: no cover - the child reports through its exit status
        ok = _same_bits(_parallel.split(np.negative, np.empty_like(x), x), -x)
        os._exit(0 if ok else 1)
    assert os.waitpid(pid, 0)[1] == 0


def test_helpers_are_used_only_while_other_processes_leave_a_cpu_free(monkeypatch):
    """spare_cpu: the machine's busy CPU time minus this process's own, over the last interval."""
    clock, machine, own = [100.0], [[0.0, 0.0]], [0.0]
    monkeypatch.setattr(_parallel.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(_parallel.time, "process_time", lambda: own[0])
    monkeypatch.setattr(_parallel, "_machine_times", lambda: tuple(machine[0]))
    monkeypatch.setattr(_parallel, "_cpus", 2)
    for name in ("checked", "busy", "idle", "own", "spare"):   # restored after the test
        monkeypatch.setattr(_parallel._Load, name, getattr(_parallel._Load, name))
    _parallel._Load.checked, _parallel._Load.spare = -1.0, True   # as in a new process
    assert _parallel.spare_cpu()                  # first reading: nothing to compare with yet

    def interval(others: float, mine: float) -> bool:   # CPUs busy over one interval
        clock[0] += 1.0
        machine[0][0] += others + mine
        own[0] += mine
        return _parallel.spare_cpu()

    assert interval(others=0.1, mine=1.9)         # this process alone keeps both CPUs busy
    assert not interval(others=1.0, mine=1.0)     # another process keeps one CPU busy
    clock[0] += _parallel.LOAD_INTERVAL / 2
    assert not _parallel.spare_cpu()              # not read again within the interval
    assert interval(others=0.4, mine=1.0)


# -- the engine's ops on large tensors -----------------------------------------------------

# Leaves (contiguous, as tensor() makes them) and the views of them an op gets, per layout.
VIEWS = {
    "row-major": ((N // 128, 256), (N // 128, 256), lambda x, y: (x, y)),
    "transposed": ((256, N // 128), (256, N // 128), lambda x, y: (x.T, y.T)),
    "mixed": ((N // 128, 256), (256, N // 128), lambda x, y: (x, y.T)),
    "strided": ((N // 64, 513), (N // 64, 257), lambda x, y: (x[:, ::2], y)),
    "broadcast": ((128, 1, 1024), (1, 8, 1024), lambda x, y: (x, y)),
    "expanded": ((1, 256), (N // 128, 256), lambda x, y: (x.expand(N // 128, 256), y)),
}


def _strides(t: engine.Tensor) -> tuple:
    """An engine tensor's strides in elements, as torch's stride()."""
    return tuple(s // t._data.itemsize for s in t._data.strides)


def _program(x, y):
    """W2's chain and W5's broadcast product in one: every split path, forward and backward."""
    z = (x * 0.5 + 0.25).tanh().exp().sigmoid()
    w = x * y + y
    return z, w, z.sum() + w.sum()


def _run(backend, layout, dtype):
    first, second, view = VIEWS[layout]
    leaves = [backend.tensor(_values(shape, dtype, seed), requires_grad=True)
              for seed, shape in enumerate((first, second))]
    z, w, total = _program(*view(*leaves))
    total.backward()
    return [t.detach().numpy() for t in (z, w)] + [t.grad.numpy() for t in leaves], (z, w)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", list(VIEWS))
def test_large_ops_match_themselves_unsplit_and_torchs_layout(threads, layout, dtype):
    threads(1)
    single, _ = _run(engine, layout, dtype)
    threads(2)
    split, (z, w) = _run(engine, layout, dtype)
    for a, b in zip(single, split):
        assert _same_bits(a, b)
    _, (tz, tw) = _run(torch, layout, dtype)
    assert _strides(z) == tz.stride() and _strides(w) == tw.stride()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_costly_kernels_split_from_torchs_grain_size(threads, monkeypatch, dtype):
    """W2's (256, 256) chain: tanh, exp, sigmoid and the backward kernels of tanh and sigmoid
    (many instructions per element) split from COSTLY_MIN_NUMEL, here torch's grain size (32K elements; ops take
    the large-tensor path from _ops._LARGE, 64K) on, a multiply or add only from MIN_NUMEL; the
    results are bit for bit those of one thread."""
    monkeypatch.setattr(_parallel, "COSTLY_MIN_NUMEL", 1 << 15)   # (the default waits for a quiet A/B)
    split_kernels = []
    run = _parallel._run
    monkeypatch.setattr(_parallel, "_run", lambda kernel, blocks: (split_kernels.append(kernel), run(kernel, blocks)))
    values = _values((256, 256), dtype, 0)
    results = []
    for n in (1, 2):
        threads(n)
        split_kernels.clear()
        x = engine.tensor(values, requires_grad=True)
        y = (x * 0.5 + 0.25).tanh().exp().sigmoid()
        y.backward(engine.tensor(_values((256, 256), dtype, 1)))
        results.append((y.detach().numpy(), x.grad.numpy()))
    for a, b in zip(*results):
        assert _same_bits(a, b)
    assert set(split_kernels) == {np.tanh, np.exp, _ops._sigmoid, _ops._tanh_backward_into,
                                  _ops._sigmoid_backward_into}


def test_a_large_product_of_small_broadcast_operands_is_a_large_result(threads):
    """W5's (128, 1, 64) * (1, 32, 64): 8K and 2K elements make 256K, computed as large results
    are (recycled memory, split from MIN_NUMEL), with torch's values and layout."""
    threads(2)
    a, b = _values((128, 1, 64), np.float32, 0), _values((1, 32, 64), np.float32, 1)
    for op in ("mul", "add", "sub"):
        mine = getattr(engine.tensor(a), op)(engine.tensor(b))
        theirs = getattr(torch.tensor(a), op)(torch.tensor(b))
        assert _memory.is_recycled(mine._data), op
        assert _same_bits(mine._data, theirs.numpy()) and _strides(mine) == theirs.stride(), op


def test_large_unary_op_of_a_non_dense_input_is_laid_out_as_torchs():
    values = _values((3, N // 64, 130), np.float32, 0)
    for fn in ("exp", "tanh", "sigmoid", "neg"):
        mine = getattr(engine.tensor(values).permute(2, 0, 1)[::2], fn)()
        theirs = getattr(torch.tensor(values).permute(2, 0, 1)[::2], fn)()
        assert _strides(mine) == theirs.stride(), fn


# -- recycled memory for large arrays (engine/_memory.py) ------------------------------------

def test_recycled_arrays_never_share_memory_while_alive():
    shape = (512, 256)
    first = _memory.empty(shape, np.float32)
    view = first.T[::2]
    address = first.__array_interface__["data"][0]
    del first
    gc.collect()
    # A view keeps its memory: no array made now may use it.
    others = [_memory.empty(shape, np.float32) for _ in range(4)]
    assert all(not np.shares_memory(view, o) for o in others)
    assert all(not np.shares_memory(a, b) for i, a in enumerate(others) for b in others[i + 1:])
    assert view.base.base.__class__.__name__ == "_Block" and _memory.is_recycled(view.base)
    del view, others
    gc.collect()
    # Once the view is gone too, the memory comes back for an array of its size.
    again = [_memory.empty(shape, np.float32) for _ in range(6)]
    assert any(a.__array_interface__["data"][0] == address for a in again)


@pytest.mark.parametrize("dtype", [np.float32, "float32", np.dtype(np.float32), np.float64, np.int16], ids=str)
@pytest.mark.parametrize("shape", [(256, 256), [256, 256], (3, 5), (0, 70000), ()], ids=str)
def test_recycled_empty_gives_numpys_layout_for_any_spelling_of_shape_and_dtype(shape, dtype):
    for _ in range(3):     # (the first call of a layout computes it, later ones look it up)
        a = _memory.empty(shape, dtype)
        expected = np.empty(shape, dtype)
        assert (a.shape, a.dtype, a.strides) == (expected.shape, expected.dtype, expected.strides)
        assert a.flags.c_contiguous and a.flags.writeable
        assert _memory.is_recycled(a) == (expected.nbytes >= _memory.MIN_BYTES)
        a[...] = 7
        assert (a == 7).all()


def test_large_tensors_in_recycled_memory_keep_torchs_view_semantics():
    values = _values((512, 256), np.float32, 0)
    for backend in (engine, torch):
        x = backend.tensor(values)
        view = x.t()
        view.mul_(2.0)                       # writes through to x, bumps the shared version
        assert x._version == view._version == 1
        assert np.array_equal(x.numpy()[3], 2 * values[3], equal_nan=True)
        with pytest.raises(RuntimeError, match="single memory location"):
            x[:256].add_(x[:256].t())        # partial overlap: torch refuses
    # A large gradient that only the backward holds becomes .grad without a copy, as in torch.
    leaf = engine.tensor(values, requires_grad=True)
    (leaf * 3.0).sum().backward()
    grad = leaf.grad.numpy()
    assert grad.flags.c_contiguous and (_memory.is_recycled(grad) or grad.base is None)
