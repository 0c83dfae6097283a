"""`gradfuzz bench`: the issue-7 workloads timed on the engine and on torch, as a report.

Every workload runs on every backend in interleaved rounds (after warm-up
rounds), so drift and noise of the machine hit all backends alike. A round
times a batch of calls long enough to read the clock well (``min_time``) and
keeps the time per call. Per workload the headline is the engine/torch ratio
of median round times, with a 95% confidence interval from a paired bootstrap
over rounds. Peak memory of W3 is measured per backend in a fresh process.

Everything lands in ``OUT/bench.json`` (format below, raw rounds included);
``reports.bench.render_bench`` renders ``OUT/index.html`` from that file alone.

    {"kind": "bench", "format": 1, "started", "duration_seconds", "command",
     "tested": "engine", "reference": "torch", "backends": [...],
     "peer_targets": [...],        # peers the tested backend must beat (absent in older files: every peer)
     "settings": {"rounds", "warmup", "min_time", "busy_share", "bootstrap": {...}},
     "versions": {...}, "machine": {...},
     "background_cpu": share | null,   # max over workloads (below)
     "workloads": {"W1": {"description", "target",
                          "background_cpu": share | null,   # CPUs other processes kept busy while it ran
                          "backends": {"engine": {"status": "ok", "calls_per_round",
                                                  "rounds": [s, ...], "warmup": [...],
                                                  "median", "q1", "q3", "min"},
                                       "autograd": {"status": "not expressible" | "not installed" | "failed",
                                                    "error"}},
                          "ratios": {"engine": {"estimate", "low", "high"}, ...},   # each vs the reference
                          "ratio": <ratios[tested]>}},
     "memory": {"workload": "W3", "repeats", "measures",
                "backends": {"engine": {"baseline_bytes", "peak_growth_bytes"} | {"error"}}},
     "previous": null | {"source", "started", "machine", "workloads": {name: {"ratio", "medians"}}}}
"""
from __future__ import annotations

import datetime as _dt
import gc
import importlib
import importlib.metadata
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from reports.bench import DEFAULT_BUSY_SHARE, load_bench, previous_summary

from .workloads import PEERS, VARIANTS, WORKLOADS, build

FORMAT = 1
DEFAULT_ROUNDS, DEFAULT_WARMUP, DEFAULT_MIN_TIME = 30, 3, 0.05
QUICK = {"rounds": 5, "warmup": 1, "min_time": 0.002, "memory_repeats": 1}
RESAMPLES, CONFIDENCE, SEED = 2000, 0.95, 0

# The issue-7 targets: the engine's time over torch's, at most.
TARGETS = {"W1": 0.5, "W2-float32": 1.3, "W3": 1.0, "W4": 1.05, "W5": 2.0}

MEMORY_WORKLOAD, MEMORY_REPEATS = "W3", 5
MEMORY_MEASURES = (
    "Peak RSS growth: how far the peak resident set size of a fresh Python process rose while it ran "
    "{workload} {repeats} times, measured after imports and after the workload's inputs were built. It counts "
    "every allocator (numpy's, torch's caching allocator, thread pools started on first use), so it compares "
    "backends where tracemalloc (numpy's allocations only) cannot; it is a high-water mark of resident pages, "
    "not live bytes, and misses growth below the peak that importing reached. Source: {source}.")
MEMORY_SOURCES = {
    "VmHWM": "VmHWM of /proc/self/status (Linux); getrusage's ru_maxrss would carry the parent's peak "
             "into the child across fork and exec",
    "ru_maxrss": "getrusage(RUSAGE_SELF).ru_maxrss",
}

# Run in a fresh interpreter per backend: import, build, baseline, run, peak.
_MEMORY_SCRIPT = """
import json, resource, sys
from fuzz.workloads import build

def peak():
    # NOTE: on Linux ru_maxrss starts at the parent's peak (kept through fork and exec);
    # VmHWM belongs to this process's own address space.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return "VmHWM", int(line.split()[1]) * 1024
    except OSError:
        pass
    unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB elsewhere
    return "ru_maxrss", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit

workload, backend, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
run = build(workload, backend)
if run is None:
    print(json.dumps({"error": "not expressible"})); sys.exit()
source, before = peak()
for _ in range(repeats):
    run()
after = peak()[1]
print(json.dumps({"source": source, "baseline_bytes": before, "peak_growth_bytes": after - before}))
"""


# -- statistics ---------------------------------------------------------------------

def bootstrap_ratio(numerator: Sequence[float], denominator: Sequence[float], *, resamples: int = RESAMPLES,
                    confidence: float = CONFIDENCE, seed: int = SEED) -> dict[str, float]:
    """The ratio of medians ``median(numerator) / median(denominator)`` with a
    percentile bootstrap confidence interval.

    Rounds are resampled in pairs (round i of both sides together) when both
    sides have the same number of rounds, as interleaved rounds do: drift that
    slowed both sides in one round stays paired. Seeded, numpy only.

    >>> r = bootstrap_ratio([2.0, 2.1, 1.9, 2.0], [1.0, 1.0, 1.1, 0.9])
    >>> r["low"] <= r["estimate"] == 2.0 <= r["high"]
    True
    """
    a, b = np.asarray(numerator, float), np.asarray(denominator, float)
    if not len(a) or not len(b):
        raise ValueError("both sides need at least one round")
    rng = np.random.default_rng(seed)
    first = rng.integers(0, len(a), (resamples, len(a)))
    second = first if len(a) == len(b) else rng.integers(0, len(b), (resamples, len(b)))
    ratios = np.median(a[first], axis=1) / np.median(b[second], axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return {"estimate": float(np.median(a) / np.median(b)), "low": float(low), "high": float(high)}


def _describe(rounds: Sequence[float]) -> dict[str, float]:
    q1, median, q3 = np.percentile(rounds, [25, 50, 75])
    return {"median": float(median), "q1": float(q1), "q3": float(q3), "min": float(min(rounds))}


# -- the machine's other load --------------------------------------------------------

# Other processes' share of the CPUs above which a workload's ratios are marked unreliable: torch's
# and OpenBLAS's thread pools slow down many times over when a core they count on is taken (W3 ran
# 20x slower on the engine, 100x on torch, next to one test suite on two cores).
BUSY_SHARE = DEFAULT_BUSY_SHARE


def _usable_cpus() -> int | None:
    """The CPUs this process may run on (None where the platform does not say)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None


def _busy_cpu_seconds() -> float | None:
    """Seconds the CPUs spent busy since boot, every process together (Linux's /proc/stat: user,
    nice, system, irq, softirq and steal, the time a virtual CPU waited for the host); None where
    there is no /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = stat.readline().split()
        ticks = [int(value) for value in fields[1:9]]
        ticks += [0] * (8 - len(ticks))
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class BackgroundLoad:
    """Measures, over a `with` block, the share of the usable CPUs that other processes kept busy:
    (busy CPU time of the machine - this process's own, all its threads) / (wall time x CPUs).
    `share` is None where the machine's busy time cannot be read."""

    share: float | None = None

    def __enter__(self) -> "BackgroundLoad":
        self._start = (time.perf_counter(), _busy_cpu_seconds(), time.process_time())
        return self

    def __exit__(self, *exc) -> None:
        wall0, busy0, own0 = self._start
        wall, busy, own = time.perf_counter() - wall0, _busy_cpu_seconds(), time.process_time() - own0
        if busy is None or busy0 is None or wall <= 0:
            return
        cpus = _usable_cpus() or os.cpu_count() or 1
        # (/proc/stat counts in clock ticks, 10 ms: a short block reads a little above or below 0)
        self.share = round(min(max((busy - busy0 - own) / (wall * cpus), 0.0), 1.0), 3)


# -- timing -------------------------------------------------------------------------

def _calibrate(run: Callable, min_time: float) -> int:
    """How many calls make one round last at least ``min_time``."""
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            run()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time or calls >= 1 << 20:
            return calls
        calls = max(calls * 2, math.ceil(calls * 1.2 * min_time / max(elapsed, 1e-9)))


def _time_round(run: Callable, calls: int) -> float:
    gc.collect()  # garbage of the other backend's round is not this round's cost
    start = time.perf_counter()
    for _ in range(calls):
        run()
    return (time.perf_counter() - start) / calls


def _time_workload(name: str, backends: Sequence[str], rounds: int, warmup: int,
                   min_time: float) -> dict[str, dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {}
    runs: dict[str, Callable] = {}
    for backend in backends:
        try:
            run = build(name, backend)
        except ImportError as error:
            entries[backend] = {"status": "not installed", "error": str(error)}
            continue
        except Exception as error:  # noqa: BLE001 - a broken backend is reported, not fatal
            entries[backend] = {"status": "failed", "error": f"{type(error).__name__}: {error}"}
            continue
        if run is None:
            entries[backend] = {"status": "not expressible", "error": None}
            continue
        runs[backend] = run
        entries[backend] = {"status": "ok", "rounds": [], "warmup": []}
    for backend, run in list(runs.items()):
        try:
            run()  # first call: lazy initialisation, not timed
            entries[backend]["calls_per_round"] = _calibrate(run, min_time)
        except Exception as error:  # noqa: BLE001
            entries[backend] = {"status": "failed", "error": f"{type(error).__name__}: {error}"}
            del runs[backend]
    order = list(runs)
    for index in range(warmup + rounds):
        # Alternate the order too, so no backend always runs right after another.
        for backend in (order if index % 2 == 0 else order[::-1]):
            seconds = _time_round(runs[backend], entries[backend]["calls_per_round"])
            entries[backend]["warmup" if index < warmup else "rounds"].append(seconds)
    for backend in order:
        entries[backend].update(_describe(entries[backend]["rounds"]))
    return entries


# -- memory -------------------------------------------------------------------------

def measure_memory(backend: str, workload: str = MEMORY_WORKLOAD, repeats: int = MEMORY_REPEATS,
                   timeout: float = 300) -> dict[str, Any]:
    """Peak RSS growth of a fresh process running ``workload`` ``repeats`` times on ``backend``."""
    root = str(Path(__file__).resolve().parents[1])  # so an uninstalled checkout works too
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    try:
        done = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, workload, backend, str(repeats)],
                              capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:g} s"}
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else f"exit code {done.returncode}"}
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": f"unreadable output: {done.stdout[-200:]!r}"}


# -- the machine --------------------------------------------------------------------

def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _processor() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _blas() -> str | None:
    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]  # numpy >= 1.26
    except Exception:  # noqa: BLE001 - older numpy, or another layout
        return None
    parts = []
    for kind in ("blas", "lapack"):
        info = deps.get(kind) or {}
        if info.get("name"):
            parts.append(f"{kind} {info['name']} {info.get('version', '')}".strip())
    return ", ".join(parts) or None


def machine_info(backends: Iterable[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(machine, versions) for bench.json."""
    machine: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": _processor(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": _usable_cpus(),
        "numpy_blas": _blas(),
    }
    versions: dict[str, Any] = {"python": platform.python_version(), "numpy": np.__version__,
                                "gradfuzz": _version("gradfuzz")}
    try:
        import torch
        versions["torch"] = torch.__version__
        machine["torch_threads"] = torch.get_num_threads()
    except ImportError:
        versions["torch"] = None
    for peer in PEERS:
        if peer in backends:
            versions[peer] = _version(peer)
    return machine, versions


# -- the run ------------------------------------------------------------------------

def run_bench(out_dir: str | Path, *, workloads: Sequence[str] | None = None, rounds: int = DEFAULT_ROUNDS,
              min_time: float = DEFAULT_MIN_TIME, warmup: int = DEFAULT_WARMUP, previous: str | Path | None = None,
              backends: Sequence[str] = ("engine", "torch"), extra_backends: Sequence[str] = (),
              memory_repeats: int = MEMORY_REPEATS, command: str | None = None,
              progress: Callable[[str], None] | None = None) -> Path:
    """Time ``workloads`` (default: all) on ``backends`` plus ``extra_backends``,
    write ``out_dir/bench.json`` and ``out_dir/index.html``; return the page's path.

    The first backend is the one tested, the second the reference that ratios
    divide by. ``extra_backends`` are peers of ``fuzz.workloads.PEERS``, variants of
    ``fuzz.workloads.VARIANTS`` (torch on one thread; no target to beat) (or
    modules that speak torch); one that is not installed is recorded as such.
    ``previous`` (an earlier bench.json or its directory) is summarized into
    this run's file so the report shows the change. Memory is measured when
    W3 is among the workloads and ``memory_repeats`` > 0.
    """
    names = list(workloads or WORKLOADS)
    unknown = [name for name in names if name not in WORKLOADS]
    if unknown:
        raise ValueError(f"unknown workloads {unknown}; known: {', '.join(WORKLOADS)}")
    if len(backends) < 2:
        raise ValueError("backends names the tested backend and the reference, in that order")
    if rounds < 2:
        raise ValueError("rounds must be at least 2")
    say = progress or (lambda message: None)
    everyone = list(dict.fromkeys([*backends, *extra_backends]))
    tested, reference = backends[0], backends[1]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    earlier = previous_summary(load_bench(previous), str(previous)) if previous is not None else None
    started, clock = _dt.datetime.now(_dt.timezone.utc), time.perf_counter()

    results: dict[str, Any] = {}
    for name in names:
        say(f"{name}: {rounds} rounds on {', '.join(everyone)}")
        with BackgroundLoad() as load:
            entries = _time_workload(name, everyone, rounds, warmup, min_time)
        if load.share is not None and load.share > BUSY_SHARE:
            say(f"{name}: other processes kept {load.share:.0%} of the CPUs busy meanwhile: "
                "its ratios are not reliable (measure on an idle machine)")
        ratios = {}
        if entries.get(reference, {}).get("status") == "ok":
            for backend in everyone:
                if backend != reference and entries[backend].get("status") == "ok":
                    ratios[backend] = bootstrap_ratio(entries[backend]["rounds"], entries[reference]["rounds"])
        # The tested backend against each peer, from the same interleaved rounds (issue 7 asks
        # for an engine faster than every peer on every workload).
        versus = {}
        if entries.get(tested, {}).get("status") == "ok":
            for peer in everyone:
                if peer not in (tested, reference) and entries[peer].get("status") == "ok":
                    versus[peer] = bootstrap_ratio(entries[tested]["rounds"], entries[peer]["rounds"])
        results[name] = {"description": _description(name), "background_cpu": load.share,
                         "target": TARGETS.get(name), "backends": entries, "ratios": ratios,
                         "ratio": ratios.get(tested), "versus": versus}

    memory = None
    if MEMORY_WORKLOAD in names and memory_repeats > 0:
        say(f"memory: {MEMORY_WORKLOAD} x{memory_repeats} in a fresh process per backend")
        measured = {backend: measure_memory(backend, repeats=memory_repeats) for backend in everyone}
        sources = {side["source"] for side in measured.values() if side.get("source")}
        source = "; ".join(MEMORY_SOURCES.get(name, name) for name in sorted(sources)) or "none"
        memory = {"workload": MEMORY_WORKLOAD, "repeats": memory_repeats, "backends": measured,
                  "measures": MEMORY_MEASURES.format(workload=MEMORY_WORKLOAD, repeats=memory_repeats,
                                                     source=source)}

    machine, versions = machine_info(everyone)
    data = {
        "kind": "bench", "format": FORMAT, "started": started.isoformat(timespec="seconds"),
        "duration_seconds": round(time.perf_counter() - clock, 3), "command": command,
        "tested": tested, "reference": reference, "backends": everyone,
        "background_cpu": max((entry["background_cpu"] for entry in results.values()
                               if entry["background_cpu"] is not None), default=None),
        # Issue 7 asks for an engine faster than the peer libraries; a variant of the reference
        # (torch on one thread) is shown beside them but is no target.
        "peer_targets": [backend for backend in everyone if backend not in (tested, reference)
                         and backend not in VARIANTS],
        "settings": {"rounds": rounds, "warmup": warmup, "min_time": min_time, "busy_share": BUSY_SHARE,
                     "bootstrap": {"resamples": RESAMPLES, "confidence": CONFIDENCE, "seed": SEED,
                                   "method": "paired percentile bootstrap over rounds of the ratio of medians"}},
        "versions": versions, "machine": machine, "workloads": results, "memory": memory, "previous": earlier,
    }
    path = out_dir / "bench.json"
    partial = path.with_name(f".bench.json.{os.getpid()}.partial")
    partial.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(partial, path)
    from reports.bench import render_bench
    return render_bench(out_dir)


def _description(name: str) -> str:
    make = WORKLOADS[name]
    if name.startswith("W2-"):  # one builder, two dtypes
        return f"{(WORKLOADS['W2-float32'].__doc__ or '').strip()} ({name[3:]})"
    return (make.__doc__ or name).strip()


def rich_table(data: dict[str, Any]):
    """The ratios of a bench.json as a rich Table (for the CLI)."""
    from rich.table import Table
    tested, reference = data["tested"], data["reference"]
    table = Table(title=f"{tested} time / {reference} time (medians; below 1: {tested} faster)")
    background = data.get("background_cpu")
    if background is not None and background > (data.get("settings") or {}).get("busy_share", BUSY_SHARE):
        table.caption = (f"[red]busy machine: other processes kept up to {background:.0%} of the CPUs busy; "
                         "these ratios are not a measurement[/red]")
    peers = [b for b in data.get("backends", ()) if b not in (tested, reference)]
    for column in ("workload", tested, reference, "ratio", "95% CI", "target", "status",
                   *(f"{tested} / {peer}" for peer in peers)):
        table.add_column(column, justify="left" if column in ("workload", "status") else "right", no_wrap=True)
    for name, entry in data["workloads"].items():
        sides = entry["backends"]
        ratio, target = entry.get("ratio"), entry.get("target")
        verdict = ""
        if ratio and target is not None:
            verdict = "[green]met[/green]" if ratio["estimate"] <= target else "[red]missed[/red]"
        versus = [(entry.get("versus") or {}).get(peer) for peer in peers]
        targets = data.get("peer_targets", peers)

        def shown(peer, r):
            if not r:
                return "-"
            if peer not in targets:     # (a variant of the reference: no colour, no verdict)
                return f"{r['estimate']:.3g}"
            return f"[{'green' if r['estimate'] < 1 else 'red'}]{r['estimate']:.3g}[/]"
        table.add_row(name, _ms(sides.get(tested)), _ms(sides.get(reference)),
                      f"{ratio['estimate']:.3g}" if ratio else "-",
                      f"{ratio['low']:.3g}–{ratio['high']:.3g}" if ratio else "-",
                      f"≤ {target:g}" if target is not None else "", verdict,
                      *(shown(peer, r) for peer, r in zip(peers, versus)))
    return table


def _ms(entry: dict[str, Any] | None) -> str:
    if not entry or entry.get("status") != "ok":
        return (entry or {}).get("status", "-")
    return f"{entry['median'] * 1e3:.3g} ms"
