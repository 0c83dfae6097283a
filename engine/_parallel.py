"""Large elementwise computations split over threads, as torch's intra-op parallelism.

torch runs an elementwise kernel on a large tensor on all its intra-op threads, each on
a contiguous range of the output. numpy's loops run on the calling thread only, but
release the GIL while they run. `split(kernel, out, *operands)` does what torch does:
it cuts the output into blocks along its outermost memory axis (the operands with it,
where they are not broadcast along that axis) and runs `kernel(*operand_blocks,
out=out_block)` on the blocks on a small pool of threads, the calling thread included.

An elementwise kernel computes each element from the elements at its own index only,
so the blocks' results are bit for bit those of one call on the whole: the split never
changes a value, only which thread computes it. Block boundaries keep every block
64-byte aligned where the whole was, so numpy's SIMD loops see the same alignment.
Reductions are never split: their summation order is a matter of parity with torch.

Threads: ``ENGINE_NUM_THREADS`` in the environment (read at import; ``1`` turns splitting
off), else the CPUs this process may run on (os.sched_getaffinity), at most
`MAX_THREADS`; `set_num_threads` changes it at run time. Work is claimed block by block,
so a helper thread that gets no CPU is never waited for before it starts: the calling
thread computes the blocks no helper has claimed.

Helpers are used only while the machine has a CPU to spare (`spare_cpu`), as libgomp
adjusts its team to the load with OMP_DYNAMIC: on CPUs that other processes keep busy, a
helper that has claimed a block can be preempted in it, and the caller waits a time slice
for it. Measured on this project's 2-CPU machine at load 4-15, splitting a 64K-element
float32 tanh doubled the CPU time and never shortened the call (tanh 26 -> 52 us, exp 45 ->
89 us). ``ENGINE_DYNAMIC_THREADS=0`` (or `set_dynamic(False)`) splits regardless of load.
"""
from __future__ import annotations

import math
import os
import queue
import threading
import time

import numpy as np

# Elements below which an elementwise op runs in one call. Splitting costs ~10-20 us of Python
# and thread hand-offs per op (more when other processes hold the cores), as much as numpy's
# float32 tanh takes on 64K elements. A multiply or add on 256K float32 elements takes 60-120 us
# on one thread (W5's: (128, 1, 64) * (1, 32, 64) 121 us, its backward's products 66 and 85 us),
# so two threads save at most 30-60 us against a 40-150 us hand-off (measured idle, session 12):
# split over two threads (set_dynamic(False), load ~7, session 16) those three took 164, 111 and
# 130 us, 1M-element multiplies 292 against 231 us (p10). Cheap kernels split from 1M elements on.
MIN_NUMEL = 1 << 20
# NOTE: torch splits every elementwise kernel from 32K elements. Splitting the costly ones
# (transcendentals, sigmoid, tanh's backward) from 64K elements was measured idle and lost:
# W2-float32 (20 ops on (256, 256)) 2.7 ms per round on one thread, 3.7-5.2 ms split.
# NOTE: the hand-off is a thread's wake-up: 25-40 us on this project's KVM machines (idle vCPUs
# halt). Helpers that spin instead (pthread_spin_lock through ctypes, the GIL released) were
# measured in session 17: one 64K float32 exp 84 -> 62 us, tanh 169 -> 138 (p50), but a W2 round
# got slower (2.9 -> 3.2-5.1 ms): a helper back from its block needs the GIL to report and to
# spin again, and takes it at random points of the caller's Python, which then sleeps 25-40 us
# (GIL convoys). Kernels of several numpy calls (sigmoid, tanh's backward) lost even alone.
# A helper process over shared memory (its own GIL, spinning on a shared flag) split a 64K exp
# 84 -> 70 us and tanh 168 -> 135 with the same bits (prototype, not built).
# Elements from which a kernel marked `costly` is split: torch's grain size
# (at::internal::GRAIN_SIZE). numpy's transcendental loops take 10-100x a multiply's time
# (65,536 float32 elements on this project's AMD EPYC, AVX2: multiply 8 us, exp 110, tanh 172,
# log 126, sin 120, tan 780; float64 exp 333, tanh 881), so their blocks outweigh a hand-off.
# Measured idle (session 12, load 0.2-0.7, this AMD EPYC VM): a split's hand-off costs 40-150 us,
# so at 1 << 15 W2-float32 went 3.65 -> 6.50 ms per round (float64 10.54 -> 10.69). One call,
# 1 thread / 2 threads: float32 tanh 172/283 us at 64K, 534/411 at 128K; exp 89/202 at 64K,
# 609/469 at 256K; float64 tanh 674/429 at 32K, exp 631/477 at 64K; tanh/sigmoid backward never
# gain up to 256K. Left at 256K (MIN_NUMEL until session 16); a dtype-aware threshold (float64 tanh from 32K) is open.
COSTLY_MIN_NUMEL = 1 << 18
_costly: set = {np.tanh, np.exp, np.log, np.sin, np.cos, np.tan, np.sinh, np.cosh, np.arctan, np.arcsin, np.arccos,
                np.arctanh, np.arcsinh, np.arccosh, np.expm1, np.log1p, np.log2, np.log10, np.exp2}
MAX_THREADS = 8
BLOCKS_PER_THREAD = 2   # more blocks than threads: the faster thread takes the remainder
_ALIGN = 64             # bytes: a cache line, the widest SIMD register


def _default_threads() -> int:
    value = os.environ.get("ENGINE_NUM_THREADS")
    if value:
        return max(1, int(value))
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:   # pragma: no cover - platforms without affinity masks
        available = os.cpu_count() or 1
    return max(1, min(available, MAX_THREADS))


_threads = _default_threads()
_dynamic = os.environ.get("ENGINE_DYNAMIC_THREADS", "1") != "0"


def get_num_threads() -> int:
    """Threads an elementwise computation on a large array is split over (1: not split)."""
    return _threads


def set_num_threads(n: int) -> None:
    """Split large elementwise computations over `n` threads (1 turns splitting off)."""
    global _threads
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"number of threads must be a positive integer, got {n!r}")
    _threads = n


def set_dynamic(on: bool) -> None:
    """Use helper threads only while the machine has a CPU to spare (True, the default), or
    whenever a computation is large enough (False)."""
    global _dynamic
    _dynamic = bool(on)


# How often the CPU use of other processes is read again, in seconds.
LOAD_INTERVAL = 0.25


class _Load:
    """CPU time of the machine (/proc/stat) and of this process at the last reading."""

    checked = -1.0          # time.monotonic() of the last reading; < 0: none yet
    busy = idle = own = 0.0
    spare = True


def _machine_times():
    """(busy, idle) CPU seconds of all CPUs since boot, or None where /proc/stat is unreadable."""
    try:
        with open("/proc/stat", "rb") as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
    tick = _TICK
    return (user + nice + system + irq + softirq + steal) / tick, (idle + iowait) / tick


try:
    _TICK = os.sysconf("SC_CLK_TCK")
except (AttributeError, ValueError, OSError):   # pragma: no cover - platforms without sysconf
    _TICK = 100


def spare_cpu() -> bool:
    """Whether the CPUs that other processes used over the last `LOAD_INTERVAL` left one free
    for a helper thread, besides the calling thread's own (read at most once per interval;
    True where the machine's CPU times cannot be read)."""
    now = time.monotonic()
    if now - _Load.checked < LOAD_INTERVAL:
        return _Load.spare
    times = _machine_times()
    own = time.process_time()
    if times is not None and _Load.checked >= 0:
        elapsed = now - _Load.checked
        others = (times[0] - _Load.busy) - (own - _Load.own)   # CPU seconds of other processes
        _Load.spare = others / elapsed <= _cpus - 1.5
    if times is not None:
        _Load.busy, _Load.idle = times
    _Load.own, _Load.checked = own, now
    return _Load.spare


try:
    _cpus = len(os.sched_getaffinity(0))
except AttributeError:   # pragma: no cover
    _cpus = os.cpu_count() or 1


class _Task:
    """One split computation: `blocks[i]` is (out block, operand blocks); whoever takes block i
    from `claims` computes it; `done[i]` is released when a helper thread has."""

    __slots__ = ("kernel", "blocks", "claims", "done", "error")

    def __init__(self, kernel, blocks):
        self.kernel = kernel
        self.blocks = blocks
        self.claims = iter(range(len(blocks)))   # next() on it is atomic under the GIL
        self.done = []
        for _ in blocks:
            lock = threading.Lock()
            lock.acquire()
            self.done.append(lock)
        self.error = None

    def help(self):
        """A helper thread's part: take blocks until none is left."""
        for i in self.claims:
            out, operands = self.blocks[i]
            try:
                _call(self.kernel, out, operands)
            except BaseException as error:   # noqa: BLE001 - handed to the calling thread
                self.error = error
            finally:
                self.done[i].release()


class _Pool:
    """Helper threads, started on first use, each waiting for tasks on one shared queue."""

    def __init__(self):
        self.tasks = queue.SimpleQueue()
        self.helpers = 0
        self.lock = threading.Lock()

    def ensure(self, helpers: int) -> None:
        if self.helpers >= helpers:
            return
        with self.lock:
            while self.helpers < helpers:
                threading.Thread(target=_serve, args=(self.tasks,), name="engine-elementwise", daemon=True).start()
                self.helpers += 1


def _serve(tasks: queue.SimpleQueue) -> None:
    # NOTE: numpy's error state is per thread; torch never warns about floating-point errors,
    # and the engine computes with numpy's warnings off (callers hold _ops._errstate()).
    with np.errstate(all="ignore"):
        while True:
            tasks.get().help()


_pool = _Pool()


def _after_fork_in_child() -> None:
    global _pool
    _pool = _Pool()   # threads do not survive a fork; their queue would only fill up


os.register_at_fork(after_in_child=_after_fork_in_child)


class _Scratch(threading.local):
    """Per thread: one buffer for a kernel's temporary, kept between calls."""

    buffer = np.empty(0, np.uint8)


_scratch = _Scratch()
SCRATCH_MAX_BYTES = 1 << 23   # larger temporaries are allocated and freed as usual


def scratch(shape: tuple, dtype) -> np.ndarray:
    """An uninitialized row-major array for a kernel's temporary, valid until this thread's
    next call: the same memory serves every call.

    NOTE: glibc returns a freed array above its mmap threshold to the system and the next one
    page-faults its memory in again (128 faults for the 512 KB float64 temporary of a float32
    tanh backward on 256 x 256); torch's fused kernels need no such temporary.
    """
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > SCRATCH_MAX_BYTES:
        return np.empty(shape, dtype)
    buffer = _scratch.buffer
    if buffer.nbytes < nbytes:
        buffer = _scratch.buffer = np.empty(nbytes, np.uint8)
    return buffer[:nbytes].view(dtype).reshape(shape)


def costly(kernel):
    """Mark `kernel` as one that `split` divides from `COSTLY_MIN_NUMEL` elements on; returns it."""
    _costly.add(kernel)
    return kernel


def split(kernel, out: np.ndarray, *operands, min_numel: int | None = None) -> np.ndarray:
    """`kernel(*operands, out=out)`, an elementwise computation that writes every element of
    `out`, split over threads when `out` has `min_numel` elements or more (default: `MIN_NUMEL`,
    `COSTLY_MIN_NUMEL` for a kernel marked `costly`); returns `out`.

    Operands are arrays that broadcast to `out`'s shape (or numbers). `out` may be an operand
    itself but must not overlap one otherwise. Callers compute under `_ops._errstate()`.
    """
    if min_numel is None:
        min_numel = COSTLY_MIN_NUMEL if kernel in _costly else MIN_NUMEL
    if _threads > 1 and out.size >= min_numel and (not _dynamic or spare_cpu()):
        blocks = _blocks(out, operands, _threads * BLOCKS_PER_THREAD)
        if blocks is not None:
            _run(kernel, blocks)
            return out
    _call(kernel, out, operands)
    return out


# Kernels whose value at an element depends only on the two operands' values there, by one
# correctly rounded IEEE operation, whichever numpy loop (SIMD or scalar, strided or not) runs it.
_ARITHMETIC = {np.multiply, np.add, np.subtract, np.true_divide}
# A run of fewer elements than this is short: numpy's iterator (which buffers such operands in
# numpy 2.4) costs more per run than the arithmetic does.
SHORT_RUN = 256


def _run_length(shape: tuple, x: np.ndarray) -> int:
    """Elements of the trailing dims of `shape` over which `x`, broadcast to `shape`, is read in one
    run, as numpy's iterator coalesces dims (a row-major block, or one value repeated)."""
    lead = len(shape) - x.ndim
    run, inner = 1, None
    for d in range(len(shape) - 1, -1, -1):
        n = shape[d]
        if n == 1:
            continue
        stride = x.strides[d - lead] if d >= lead and x.shape[d - lead] != 1 else 0
        if inner is not None and stride != inner[0] * inner[1]:
            break
        run *= n
        inner = (stride, n)
    return run


def _call(kernel, out: np.ndarray, operands: tuple) -> None:
    """kernel(*operands, out=out), on one thread.

    An arithmetic kernel over a row-major `out` where one operand is read in short runs and the
    other in long ones (W5's (128, 1, 64) * (1, 32, 64): runs of 64 and 2,048 elements) copies
    the short-run operand into `out` first (a broadcast copy) and then computes in place with
    the other: numpy's iterator runs over the long runs, 262,144 float32 products in 96 us
    instead of 121 (p10). Every element is the same operation on the same two values, in the
    same order: the same bits."""
    if kernel in _ARITHMETIC and len(operands) == 2 and out.ndim > 1 and out.flags.c_contiguous:
        x, y = operands
        # (A single value, a number's 0-d array, is never read in short runs: W2's `y * 0.5`; nor
        # are two row-major operands of one shape, read in one run each: W2's `g * result`.)
        if (type(x) is np.ndarray and type(y) is np.ndarray and x.size > 1 and y.size > 1
                and not (x.shape == y.shape and x.flags.c_contiguous and y.flags.c_contiguous)
                and x.dtype == out.dtype and y.dtype == out.dtype
                and not np.may_share_memory(out, x) and not np.may_share_memory(out, y)):
            shape = out.shape
            run_x, run_y = _run_length(shape, x), _run_length(shape, y)
            if run_x < SHORT_RUN and run_y >= 8 * run_x:
                np.copyto(out, x)
                kernel(out, y, out=out)
                return
            if run_y < SHORT_RUN and run_x >= 8 * run_y:
                np.copyto(out, y)
                kernel(x, out, out=out)
                return
    kernel(*operands, out=out)


# Cut plans by the layout of `out` and the operands (see _blocks): W2 splits ~30 computations of
# one layout per round, and planning one took ~5-10 us of Python, half of a split's own cost.
_plans: dict = {}
_PLANS_MAX = 512


def _blocks(out: np.ndarray, operands: tuple, count: int):
    """`out` and `operands` cut into at most `count` blocks along `out`'s outermost memory axis,
    as (out block, operand blocks) pairs; None when that axis cannot be cut."""
    key = (count, out.shape, out.strides,
           *[(x.shape, x.strides) if isinstance(x, np.ndarray) else None for x in operands])
    try:
        plan = _plans[key]
    except KeyError:
        plan = _plan(out, operands, count)
        if len(_plans) >= _PLANS_MAX:
            _plans.clear()
        _plans[key] = plan
    if plan is None:
        return None
    return [(out[cut], tuple(x if own is None else x[own] for x, own in zip(operands, cuts))) for cut, cuts in plan]


def _plan(out: np.ndarray, operands: tuple, count: int):
    """How _blocks cuts: per block, the index of `out`'s block and per operand the index of its
    block (None: not cut, broadcast along the axis or a number); None when nothing can be cut."""
    axes = [i for i in range(out.ndim) if out.shape[i] > 1]
    if not axes:
        return None
    axis = max(axes, key=lambda i: abs(out.strides[i]))
    length = out.shape[axis]
    sliced = []   # per operand: its axis aligned with `axis`, or None when it is not cut
    quantum = _ALIGN // math.gcd(_ALIGN, abs(out.strides[axis]))
    for x in operands:
        own = axis - (out.ndim - x.ndim) if isinstance(x, np.ndarray) else -1
        if own >= 0 and x.shape[own] == length:
            sliced.append(own)
            quantum = math.lcm(quantum, _ALIGN // math.gcd(_ALIGN, abs(x.strides[own]) or _ALIGN))
        else:
            sliced.append(None)
    count = min(count, length // quantum)
    if count < 2:
        return None
    step = -(-length // (count * quantum)) * quantum
    plan = []
    for start in range(0, length, step):
        cut = slice(start, start + step)
        plan.append(((slice(None),) * axis + (cut,),
                     tuple(None if own is None else (slice(None),) * own + (cut,) for own in sliced)))
    return plan


def _run(kernel, blocks: list) -> None:
    task = _Task(kernel, blocks)
    helpers = min(_threads - 1, len(blocks) - 1)
    _pool.ensure(helpers)
    for _ in range(helpers):
        _pool.tasks.put(task)
    mine = set()
    try:
        for i in task.claims:
            mine.add(i)
            out, operands = blocks[i]
            _call(kernel, out, operands)
    finally:
        mine.update(task.claims)   # after an error: the blocks nobody took stay undone
        # Blocks a helper took are finished before `out` is handed on (or an error raised).
        for i, lock in enumerate(task.done):
            if i not in mine:
                lock.acquire()
    if task.error is not None:
        raise task.error
