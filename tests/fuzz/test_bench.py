"""gradfuzz bench: the bootstrap on synthetic rounds, and a quick real run on two small workloads."""
from __future__ import annotations

import json

import numpy as np
import pytest

from fuzz import bench, workloads
from fuzz.bench import bootstrap_ratio, measure_memory, run_bench

QUICK = {"rounds": 4, "warmup": 1, "min_time": 0.001, "memory_repeats": 0}


def test_bootstrap_puts_a_known_ratio_inside_its_interval():
    rng = np.random.default_rng(1)
    drift = np.linspace(1.0, 1.3, 40)  # the machine slows down; interleaved rounds see it on both sides
    torch_rounds = 1e-3 * drift * rng.lognormal(0, 0.05, 40)
    engine_rounds = 2.5e-3 * drift * rng.lognormal(0, 0.05, 40)
    ratio = bootstrap_ratio(engine_rounds, torch_rounds)
    assert ratio["low"] <= 2.5 <= ratio["high"]
    assert ratio["low"] <= ratio["estimate"] <= ratio["high"]
    assert ratio["high"] - ratio["low"] < 0.5
    assert bootstrap_ratio(engine_rounds, torch_rounds) == ratio  # seeded


def test_bootstrap_pairs_rounds_so_shared_drift_does_not_widen_the_interval():
    drift = np.linspace(1.0, 3.0, 30)
    ratio = bootstrap_ratio(0.5 * drift, drift)
    assert ratio == {"estimate": 0.5, "low": 0.5, "high": 0.5}
    unpaired = bootstrap_ratio(0.5 * drift, drift[:-1])  # unequal counts: resampled independently
    assert unpaired["low"] < 0.5 < unpaired["high"]


def test_bootstrap_needs_rounds_on_both_sides():
    with pytest.raises(ValueError):
        bootstrap_ratio([], [1.0])


def test_quick_run_writes_bench_json_and_the_report(tmp_path, monkeypatch):
    # A peer without adapters (json stands in for an installed library) expresses nothing.
    monkeypatch.setitem(workloads.PEERS, "json", {})
    first = run_bench(tmp_path / "first", workloads=["W1", "W2-float32"], **QUICK)
    index = run_bench(tmp_path / "second", workloads=["W1", "W2-float32"], previous=tmp_path / "first",
                      extra_backends=("json", "gradfuzz_no_such_backend"), **QUICK)
    assert first == tmp_path / "first" / "index.html" and first.is_file()
    assert index == tmp_path / "second" / "index.html"
    data = json.loads((tmp_path / "second" / "bench.json").read_text())
    assert data["kind"] == "bench" and data["format"] == bench.FORMAT
    assert (data["tested"], data["reference"]) == ("engine", "torch")
    assert data["settings"]["rounds"] == 4 and data["settings"]["warmup"] == 1
    assert set(data["machine"]) >= {"platform", "processor", "cpu_count", "torch_threads", "numpy_blas"}
    assert set(data["versions"]) >= {"python", "numpy", "torch", "gradfuzz"}
    assert list(data["workloads"]) == ["W1", "W2-float32"]
    for name, entry in data["workloads"].items():
        assert entry["target"] == bench.TARGETS[name]
        for backend in ("engine", "torch"):
            side = entry["backends"][backend]
            assert side["status"] == "ok" and side["calls_per_round"] >= 1
            assert len(side["rounds"]) == 4 and len(side["warmup"]) == 1
            assert all(t > 0 for t in side["rounds"]) and side["min"] <= side["median"]
        assert entry["backends"]["json"] == {"status": "not expressible", "error": None}
        assert entry["backends"]["gradfuzz_no_such_backend"]["status"] == "not installed"
        ratio = entry["ratio"]
        assert ratio == entry["ratios"]["engine"] and list(entry["ratios"]) == ["engine"]
        assert 0 < ratio["low"] <= ratio["estimate"] <= ratio["high"]
        median_ratio = entry["backends"]["engine"]["median"] / entry["backends"]["torch"]["median"]
        assert ratio["estimate"] == pytest.approx(median_ratio)
    assert data["memory"] is None  # no W3, and memory_repeats=0
    shares = [entry["background_cpu"] for entry in data["workloads"].values()]
    assert all(share is None or 0 <= share <= 1 for share in shares)
    assert data["background_cpu"] == max((s for s in shares if s is not None), default=None)
    assert data["settings"]["busy_share"] == bench.BUSY_SHARE
    assert data["previous"]["source"] == str(tmp_path / "first")
    assert set(data["previous"]["workloads"]["W1"]["medians"]) == {"engine", "torch"}
    html = index.read_text()
    assert "W2-float32" in html and "<svg" in html and "not expressible" in html


def test_a_peer_that_ran_is_compared_with_the_engine_round_by_round(tmp_path):
    pytest.importorskip("mygrad")  # the test extra installs it
    run_bench(tmp_path, workloads=["W1"], extra_backends=("mygrad",), **QUICK)
    data = json.loads((tmp_path / "bench.json").read_text())
    entry = data["workloads"]["W1"]
    sides = entry["backends"]
    assert sides["mygrad"]["status"] == "ok" and set(entry["ratios"]) == {"engine", "mygrad"}
    versus = entry["versus"]["mygrad"]
    assert versus["estimate"] == pytest.approx(sides["engine"]["median"] / sides["mygrad"]["median"])
    assert 0 < versus["low"] <= versus["estimate"] <= versus["high"]
    from rich.console import Console
    console = Console(width=200, record=True)
    console.print(bench.rich_table(data))
    assert "engine / mygrad" in console.export_text()


def test_torch_on_one_thread_is_a_variant_without_a_target(tmp_path):
    import torch
    threads = torch.get_num_threads()
    run_bench(tmp_path, workloads=["W1"], extra_backends=("torch-1thread",), **QUICK)
    data = json.loads((tmp_path / "bench.json").read_text())
    assert data["backends"] == ["engine", "torch", "torch-1thread"] and data["peer_targets"] == []
    entry = data["workloads"]["W1"]
    assert entry["backends"]["torch-1thread"]["status"] == "ok" and "torch-1thread" in entry["versus"]
    assert torch.get_num_threads() == threads
    assert "torch-1thread" in (tmp_path / "index.html").read_text()


@pytest.mark.skipif(bench._busy_cpu_seconds() is None, reason="no /proc/stat: the load is not measured here")
def test_background_load_counts_other_processes_and_not_this_ones_threads():
    import os
    import subprocess
    import sys
    import time
    cpus = len(os.sched_getaffinity(0))
    spin = "import time\nend = time.perf_counter() + 1.0\nwhile time.perf_counter() < end: pass"
    with bench.BackgroundLoad() as busy:
        subprocess.run([sys.executable, "-c", spin], check=True)   # one other process on one CPU for 1 s
    # (the child's interpreter start-up adds its own share; other load on the machine may add more)
    assert busy.share >= 0.6 / cpus
    with bench.BackgroundLoad() as own:
        end = time.perf_counter() + 0.5
        while time.perf_counter() < end:   # this process's own CPU time is not "other load"
            pass
    assert own.share <= busy.share - 0.4 / cpus


def test_run_bench_rejects_unknown_workloads(tmp_path):
    with pytest.raises(ValueError, match="W9"):
        run_bench(tmp_path, workloads=["W9"])


def test_memory_is_measured_in_a_fresh_process():
    memory = measure_memory("engine", "W1", repeats=1)
    assert set(memory) == {"source", "baseline_bytes", "peak_growth_bytes"}, memory
    assert memory["baseline_bytes"] > 10 * 2**20 and memory["peak_growth_bytes"] >= 0
    assert "error" in measure_memory("gradfuzz_no_such_backend", "W1", repeats=1)
