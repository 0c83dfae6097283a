"""The bench page, rendered from a bench.json written by hand (format in fuzz/bench.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reports.bench import load_bench, render_bench
from reports_testkit import assert_self_contained, keyed_rows, parse, section, table_rows

MACHINE = {"platform": "Linux-6.1-x86_64", "processor": "Example CPU @ 3 GHz", "cpu_count": 8, "usable_cpus": 8,
           "numpy_blas": "blas scipy-openblas 0.3.27", "torch_threads": 8}


def side(median, calls=10, n=5):
    rounds = [median * (1 + 0.01 * (i - n // 2)) for i in range(n)]
    return {"status": "ok", "calls_per_round": calls, "rounds": rounds, "warmup": [median * 1.5],
            "median": median, "q1": rounds[1], "q3": rounds[-2], "min": rounds[0]}


def workload(description, target, engine, torch, ratio, **peers):
    estimate, low, high = ratio
    entry = {"description": description, "target": target,
             "backends": {"engine": side(engine), "torch": side(torch), **peers},
             "ratios": {"engine": {"estimate": estimate, "low": low, "high": high}}}
    entry["ratio"] = entry["ratios"]["engine"]
    return entry


def bench_json(workloads, **extra):
    return {
        "kind": "bench", "format": 1, "started": "2026-11-27T11:00:00+00:00", "duration_seconds": 95.5,
        "command": "gradfuzz bench", "tested": "engine", "reference": "torch",
        "backends": ["engine", "torch", "mygrad"],
        "settings": {"rounds": 5, "warmup": 1, "min_time": 0.05,
                     "bootstrap": {"resamples": 2000, "confidence": 0.95, "seed": 0,
                                   "method": "paired percentile bootstrap over rounds of the ratio of medians"}},
        "versions": {"python": "3.11.7", "numpy": "2.4.6", "gradfuzz": "0.1.0", "torch": "2.13.0+cpu",
                     "mygrad": "2.5.0"},
        "machine": MACHINE, "workloads": workloads, "memory": None, "previous": None, **extra,
    }


CURRENT = {
    "W1": workload("A chain of 50 elementwise ops", 0.5, 4e-4, 1e-3, (0.4, 0.35, 0.46),
                   mygrad={"status": "not expressible", "error": None}),
    "W3": workload("One MLP training step", 1.0, 0.0205, 0.02, (1.025, 0.97, 1.08),
                   mygrad=side(0.03)),
    "W4": workload("Two 1024 x 1024 matmuls", 1.05, 0.3, 0.2, (1.5, 1.4, 1.6),
                   mygrad={"status": "failed", "error": "TypeError: boom <b>"}),
    "W2-float64": workload("20 elementwise ops (float64)", None, 2e-3, 4e-3, (0.5, 0.45, 0.55)),
}
CURRENT["W3"]["ratios"]["mygrad"] = {"estimate": 1.5, "low": 1.4, "high": 1.6}
# engine / mygrad from the same rounds: the engine is faster, one more target met.
CURRENT["W3"]["versus"] = {"mygrad": {"estimate": 0.683, "low": 0.6, "high": 0.75}}
PREVIOUS = bench_json({
    "W1": workload("A chain of 50 elementwise ops", 0.5, 8e-4, 1e-3, (0.8, 0.7, 0.9)),
    "W3": workload("One MLP training step", 1.0, 0.02, 0.02, (1.0, 0.95, 1.05)),
}, started="2026-11-20T11:00:00+00:00")
MEMORY = {"workload": "W3", "repeats": 5, "measures": "Peak RSS growth: how far the peak rose.",
          "backends": {"engine": {"source": "VmHWM", "baseline_bytes": 50 * 2**20, "peak_growth_bytes": 3 * 2**20},
                       "torch": {"source": "VmHWM", "baseline_bytes": 360 * 2**20,
                                 "peak_growth_bytes": 20 * 2**20},
                       "mygrad": {"error": "ModuleNotFoundError: No module named 'mygrad'"}}}


def write(directory: Path, data: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "bench.json").write_text(json.dumps(data))
    return directory


@pytest.fixture
def run(tmp_path):
    previous = {"source": "runs/2026-11-20", "started": PREVIOUS["started"], "machine": MACHINE,
                "workloads": {name: {"ratio": entry["ratio"], "medians": {"engine": 1.0, "torch": 1.0}}
                              for name, entry in PREVIOUS["workloads"].items()}}
    return write(tmp_path / "bench", bench_json(CURRENT, memory=MEMORY, previous=previous))


def test_ratios_targets_and_change_vs_previous(run):
    path = render_bench(run)
    assert path == run / "index.html"
    page = parse(path)
    assert page.find("title").text == "gradfuzz bench · engine vs torch"
    # 3 workloads with a target (1 met) + 1 workload where the peer ran (engine faster).
    assert page.find("span", id="status").text == "2 of 4 targets met"
    table = section(page, "ratios").find("table")
    header = [th.clean_text for th in table.find("thead").find_all("th")]
    assert header == ["workload", "what", "engine", "torch", "ratio", "95% CI", "target", "status",
                      "engine / mygrad", "previous", "change"]
    rows = keyed_rows(table)
    assert rows["W1"][1:] == ["400 µs", "1 ms", "0.4", "0.35 – 0.46", "≤ 0.5", "met", "—", "0.8", "-50%"]
    assert rows["W3"][1:] == ["20.5 ms", "20 ms", "1.02", "0.97 – 1.08", "≤ 1", "missed (unsure)", "0.683", "1",
                              "+2%"]
    assert rows["W4"][-5:] == ["≤ 1.05", "missed", "—", "—", "—"]
    assert rows["W2-float64"][-5:] == ["—", "no target", "—", "—", "—"]
    versus = table.find("tr", data_workload="W3").find_all("td")[8]
    assert "good" in versus.attrs["class"].split() and versus.attrs["title"] == "95% CI 0.6 – 0.75"
    previous = section(page, "previous").clean_text
    assert "runs/2026-11-20" in previous and "Same machine" in previous


def test_chart_absolute_times_memory_and_machine(run):
    page = parse(render_bench(run))
    figure = section(page, "ratios").find("figure")
    assert figure.find_all("svg") and "W2-float64" in figure.text
    absolute = table_rows(section(page, "absolute").find("table"))
    by_key = {(row[0], row[1]): row[2:] for row in absolute}
    assert by_key[("W1", "engine")][0] == "400 µs" and by_key[("W1", "engine")][-2:] == ["0.4", "0.35 – 0.46"]
    assert by_key[("W1", "torch")][-2:] == ["1 (reference)", "—"]
    assert by_key[("W1", "mygrad")] == ["not expressible"]
    assert by_key[("W3", "mygrad")][-2:] == ["1.5", "1.4 – 1.6"]
    assert by_key[("W4", "mygrad")] == ["failed: TypeError: boom <b>"]  # escaped, shown as text
    memory = section(page, "memory")
    assert "Peak RSS growth" in memory.text
    assert table_rows(memory.find("table")) == [["engine", "3.0 MiB", "50.0 MiB"], ["torch", "20.0 MiB", "360.0 MiB"],
                                                ["mygrad", "ModuleNotFoundError: No module named 'mygrad'"]]
    machine = keyed_rows(section(page, "machine").find("table"))
    assert machine["processor"] == ["Example CPU @ 3 GHz"] and machine["torch threads"] == ["8"]
    assert keyed_rows(section(page, "versions").find("table"))["torch"] == ["2.13.0+cpu"]
    assert "noisy" in page.find("header").text


def test_page_is_self_contained_and_small(run):
    path = render_bench(run)
    html = path.read_text()
    assert_self_contained(parse(path), html)
    assert len(html.encode()) < 150_000


def test_previous_given_at_render_time_replaces_the_recorded_one(run, tmp_path):
    write(tmp_path / "other", PREVIOUS | {"machine": {**MACHINE, "cpu_count": 2}})
    page = parse(render_bench(run, previous=tmp_path / "other"))
    rows = keyed_rows(section(page, "ratios").find("table"))
    assert rows["W1"][-2:] == ["0.8", "-50%"]
    assert "different machine" in section(page, "previous").text


def test_without_previous_or_memory_and_with_a_backend_missing(tmp_path):
    broken = workload("One MLP training step", 1.0, 0.02, 0.02, (1.0, 0.9, 1.1))
    broken["backends"]["torch"] = {"status": "failed", "error": "RuntimeError: no"}
    broken["ratios"], broken["ratio"] = {}, None
    directory = write(tmp_path / "plain", bench_json({"W3": broken}))
    page = parse(render_bench(directory))
    assert not page.find_all("section", id="previous")
    rows = keyed_rows(section(page, "ratios").find("table"))
    assert rows["W3"][-3:] == ["≤ 1", "no data", "—"] and "torch: failed (RuntimeError: no)" in rows["W3"][0]
    assert not section(page, "ratios").find_all("figure")
    assert "not measured" in section(page, "memory").text


def test_a_variant_of_the_reference_is_shown_but_no_target(tmp_path):
    # torch on one thread beside a peer library: the engine beats mygrad (a target) and is slower than
    # torch-1thread (shown without a verdict); files from before "peer_targets" count every peer.
    w3 = workload("One MLP training step", 1.0, 0.0205, 0.02, (1.025, 0.97, 1.08),
                  mygrad=side(0.03), **{"torch-1thread": side(0.018)})
    w3["versus"] = {"mygrad": {"estimate": 0.683, "low": 0.6, "high": 0.75},
                    "torch-1thread": {"estimate": 1.14, "low": 1.1, "high": 1.2}}
    backends = ["engine", "torch", "mygrad", "torch-1thread"]
    page = parse(render_bench(write(tmp_path / "new", bench_json({"W3": w3}, backends=backends,
                                                                   peer_targets=["mygrad"]))))
    assert page.find("span", id="status").text == "1 of 2 targets met"
    table = section(page, "ratios").find("table")
    assert [th.clean_text for th in table.find("thead").find_all("th")][-2:] == ["engine / mygrad",
                                                                                 "engine / torch-1thread"]
    cells = table.find("tr", data_workload="W3").find_all("td")
    assert "good" in cells[8].attrs["class"].split()
    assert cells[9].clean_text == "1.14" and not {"good", "bad"} & set(cells[9].attrs["class"].split())
    assert "torch-1thread" in section(page, "ratios").text and "no target" in section(page, "ratios").text
    old = parse(render_bench(write(tmp_path / "old", bench_json({"W3": w3}, backends=backends))))
    assert old.find("span", id="status").text == "1 of 3 targets met"


def test_a_busy_machine_is_flagged_per_workload_and_in_the_heading(tmp_path):
    busy = workload("One MLP training step", 1.0, 0.0205, 0.02, (1.025, 0.97, 1.08))
    busy["background_cpu"] = 0.45
    quiet = workload("Two 1024 x 1024 matmuls", 1.05, 0.3, 0.2, (1.5, 1.4, 1.6))
    quiet["background_cpu"] = 0.02
    page = parse(render_bench(write(tmp_path / "busy", bench_json({"W3": busy, "W4": quiet},
                                                                    background_cpu=0.45))))
    assert page.find("span", id="busy").text == "busy machine: not reliable"
    rows = keyed_rows(section(page, "ratios").find("table"))
    assert "other processes kept 45% of the CPUs busy meanwhile: not reliable" in rows["W3"][0]
    assert "other processes" not in rows["W4"][0]
    assert rows["W3"][6] == "missed (unsure) (busy)" and rows["W4"][6] == "missed"
    run = keyed_rows(section(page, "run").find("table"))
    assert run["other load"] == ["other processes kept up to 45% of the usable CPUs busy while a workload was timed"]
    calm = parse(render_bench(write(tmp_path / "calm", bench_json({"W4": quiet}, background_cpu=0.02))))
    assert not calm.find_all("span", id="busy")
    older = parse(render_bench(write(tmp_path / "older", bench_json({"W4": quiet}))))
    assert keyed_rows(section(older, "run").find("table"))["other load"] == ["not measured"]


def test_load_bench_rejects_other_files(tmp_path):
    (tmp_path / "bench.json").write_text(json.dumps({"kind": "campaign"}))
    with pytest.raises(ValueError, match="not a gradfuzz bench.json"):
        load_bench(tmp_path)
    with pytest.raises(ValueError, match="cannot read"):
        load_bench(tmp_path / "missing")


def test_rendering_imports_no_engine_torch_or_fuzz(run):
    code = ("import sys; from reports.bench import render_bench; render_bench(sys.argv[1]); "
            "print(sorted(m for m in ('engine', 'torch', 'fuzz') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2], check=True)
    assert done.stdout.strip() == "[]"
