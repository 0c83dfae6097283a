"""Campaigns end to end, against torch with one planted bug (tests/fuzz/broken_torch.py)."""
import io
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from rich.console import Console

from fuzz.campaign import CampaignConfig, Summary, run_campaign
from fuzz.cli import main
from fuzz.program import Program

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
FINDING_FIELDS = {"type", "signature", "kind", "op", "dtype", "detail", "adjudication", "steps", "program",
                  "reproducer", "finding_file", "found_after_examples", "found_after_seconds", "outcomes"}
SUMMARY_FIELDS = {"type", "status", "examples", "valid", "raised_both", "forgiven", "duration_seconds", "verdicts",
                  "ops", "findings"}


def quiet_campaign(out: Path, **config) -> object:
    return run_campaign(CampaignConfig(out=out, **config), console=Console(file=io.StringIO()))


@pytest.fixture(scope="module")
def broken_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("broken")
    # Shrinking takes a few CPU seconds; 30 s of wall clock leave room for a machine busy with other work.
    summary = quiet_campaign(out, budget_seconds=90, seed=0, backend="broken_torch", max_findings=1,
                             shrink_seconds=30)
    return out, summary


def read_records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_the_planted_gradient_bug_is_found_and_shrunk(broken_run):
    out, summary = broken_run
    (finding,) = summary.findings
    assert (finding["kind"], finding["op"], finding["signature"]) == ("gradient", "mul", f"gradient|mul|{finding['dtype']}")
    assert finding["steps"] <= 3 and finding["shrunk"] is True
    assert finding["adjudication"] == "torch agrees with finite differences"
    program = Program.from_json(finding["program"])
    assert any(step.op == "mul" and step.form == "function" for step in program.steps)
    assert summary.status == "max-findings"


def test_results_directory_follows_the_documented_format(broken_run):
    out, summary = broken_run
    finding, final = read_records(out)
    assert FINDING_FIELDS <= set(finding) and finding["type"] == "finding"
    assert set(finding["outcomes"]) == {"engine", "torch"}
    assert SUMMARY_FIELDS <= set(final) and final["type"] == "summary" and final["findings"] == 1
    assert final["examples"] == sum(final["verdicts"].values()) >= finding["found_after_examples"]
    assert final["ops"]["mul"]["findings"] == 1 and final["verdicts"]["gradient"] >= 1
    meta = json.loads((out / "meta.json").read_text())
    assert {"gradfuzz", "torch", "numpy", "python", "backend", "seed", "budget_seconds", "started", "command",
            "machine"} <= set(meta)
    assert (meta["backend"], meta["seed"], meta["torch"]) == ("broken_torch", 0, torch.__version__)
    assert {"platform", "processor", "cpus"} <= set(meta["machine"])
    stored = json.loads((out / finding["finding_file"]).read_text())
    assert stored["verdict"]["signature"] == finding["signature"] and stored["program"] == finding["program"]


def test_the_reproducer_runs_on_both_backends_and_prints_the_difference(broken_run):
    out, summary = broken_run
    script = out / summary.findings[0]["reproducer"]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)])}
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=environment,
                            timeout=120, cwd=out)
    assert result.returncode == 1, result.stderr  # 1 while the difference is there
    assert "broken_torch: float" in result.stdout and "torch: float" in result.stdout
    assert "DIFFERENT" in result.stdout  # the gradient
    assert "gradfuzz" not in script.read_text().split('"""', 2)[2]  # runs without gradfuzz installed


def test_replay_reruns_a_finding_and_still_sees_it(broken_run):
    out, summary = broken_run
    result = CliRunner().invoke(main, ["replay", str(out / summary.findings[0]["finding_file"])])
    assert result.exit_code == 1, result.output
    assert "still diverges (same signature)" in result.output
    fixed = CliRunner().invoke(main, ["replay", str(out / summary.findings[0]["finding_file"]), "--backend", "torch"])
    assert fixed.exit_code == 0 and "no longer diverges" in fixed.output


def test_the_same_seed_finds_the_same_minimal_program(tmp_path):
    def first_finding(out: Path, seed: int) -> dict:
        # (a shrink cut short by its time limit would end elsewhere: 60 s leave room for a busy machine)
        return quiet_campaign(out, budget_seconds=90, seed=seed, backend="broken_torch", max_findings=1,
                              ops=("mul", "add", "neg", "exp", "sum", "matmul"), max_steps=4,
                              shrink_seconds=60).findings[0]
    first, again = first_finding(tmp_path / "first", 7), first_finding(tmp_path / "again", 7)
    assert again["program"] == first["program"] and again["found_after_examples"] == first["found_after_examples"]
    assert first_finding(tmp_path / "other", 8)["found_after_examples"] != first["found_after_examples"]


def test_ctrl_c_leaves_a_complete_directory(tmp_path, monkeypatch):
    calls = {"tensor": 0}

    def tensor(*args, **kwargs):
        calls["tensor"] += 1
        if calls["tensor"] == 40:
            raise KeyboardInterrupt
        return torch.tensor(*args, **kwargs)

    interrupting = types.ModuleType("interrupting_torch")
    interrupting.__getattr__ = lambda name: getattr(torch, name)
    interrupting.tensor = tensor
    monkeypatch.setitem(sys.modules, "interrupting_torch", interrupting)
    summary = quiet_campaign(tmp_path, budget_seconds=60, backend="interrupting_torch")
    assert summary.status == "interrupted" and summary.examples > 0
    *_, final = read_records(tmp_path)
    assert final["type"] == "summary" and final["status"] == "interrupted"
    assert json.loads((tmp_path / "meta.json").read_text())["backend"] == "interrupting_torch"


def test_shrinking_stops_at_its_time_limit_and_keeps_the_smallest_program_so_far(tmp_path):
    summary = quiet_campaign(tmp_path, budget_seconds=90, seed=0, backend="broken_torch", max_findings=1,
                             shrink_seconds=0.0)
    (finding,) = summary.findings
    assert finding["kind"] == "gradient" and finding["shrunk"] is False
    assert (tmp_path / finding["reproducer"]).is_file()


def test_a_backend_that_diverges_only_once_is_still_reported(tmp_path, monkeypatch):
    calls = {"exp": 0}

    def exp(tensor):
        calls["exp"] += 1
        return torch.exp(tensor) + 1.0 if calls["exp"] == 1 else torch.exp(tensor)  # wrong once, then right

    flaky = types.ModuleType("flaky_torch")
    flaky.__getattr__ = lambda name: getattr(torch, name)
    flaky.exp = exp
    monkeypatch.setitem(sys.modules, "flaky_torch", flaky)
    summary = quiet_campaign(tmp_path, budget_seconds=3, backend="flaky_torch", ops=("exp", "neg"))
    (finding,) = summary.findings
    assert (finding["kind"], finding["op"], finding["shrunk"]) == ("value", "exp", False)
    assert summary.status == "completed"


def test_a_second_campaign_with_the_same_database_replays_the_finding_first(broken_run, tmp_path):
    out, summary = broken_run
    again = quiet_campaign(tmp_path, budget_seconds=60, seed=12345, backend="broken_torch", max_findings=1,
                           database=out / ".hypothesis")
    (finding,) = again.findings
    assert finding["signature"] == summary.findings[0]["signature"]
    assert finding["found_after_examples"] <= 3 and finding["found_after_seconds"] < 5


def _environment() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)])}


def test_two_workers_merge_their_findings_into_one_directory(tmp_path):
    # (The budget leaves room for a loaded machine, where starting two interpreters with torch takes
    # seconds of it; the two dtypes' findings end the run earlier.)
    summary = quiet_campaign(tmp_path, budget_seconds=40, seed=1, backend="broken_torch", workers=2,
                             ops=("mul", "neg", "sum"), max_steps=3, shrink_seconds=3, max_findings=2)
    records = read_records(tmp_path)
    findings = [record for record in records if record["type"] == "finding"]
    assert findings and len({f["signature"] for f in findings}) == len(findings)  # de-duplicated by signature
    assert {f["worker"] for f in findings} <= {0, 1} and any(f["op"] == "mul" for f in findings)
    assert records[-1]["type"] == "summary" and records[-1]["findings"] == len(findings) == len(summary.findings)
    assert records[-1]["examples"] == sum(records[-1]["verdicts"].values()) > 0
    assert json.loads((tmp_path / "meta.json").read_text())["workers"] == 2
    for finding in findings:
        assert (tmp_path / finding["finding_file"]).is_file() and (tmp_path / finding["reproducer"]).is_file()


def _campaign_with_a_finding(out: Path, workers: int) -> subprocess.Popen:
    """A `gradfuzz run` of the planted bug in its own session, once its first finding is written (or 90 s)."""
    import time
    command = [sys.executable, "-m", "fuzz.cli", "run", "--budget", "120s", "--backend", "broken_torch",
               "--out", str(out), "--workers", str(workers), "--op", "mul", "--op", "neg", "--max-steps", "3"]
    process = subprocess.Popen(command, env=_environment(), cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and '"type": "finding"' not in _text(out / "results.jsonl"):
        time.sleep(0.2)
    return process


@pytest.mark.parametrize("workers", [1, 2])
def test_a_killed_campaign_leaves_a_directory_that_loads_and_renders(tmp_path, workers):
    import signal
    import time
    from reports.results import load_results
    out = tmp_path / "out"
    process = _campaign_with_a_finding(out, workers)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    results = load_results(out)
    assert results.meta["backend"] == "broken_torch" and results.summary is None
    assert results.findings and results.findings[0]["op"] == "mul" and results.status == "interrupted"
    rendered = CliRunner().invoke(main, ["report", str(out)])
    assert rendered.exit_code == 0, rendered.output
    assert "mul" in (out / "index.html").read_text()
    if workers > 1:  # orphaned workers notice and stop
        deadline = time.monotonic() + 20
        while _session(process.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _session(process.pid) == []



@pytest.mark.parametrize("whom, workers", [("group", 1), ("group", 2), ("parent", 2), ("term", 1), ("term", 2)])
def test_an_interrupted_campaign_stops_soon_and_keeps_every_workers_counts(tmp_path, workers, whom):
    # Ctrl-C in a terminal interrupts the whole process group; `kill -INT` the parent alone;
    # `timeout` or a scheduler sends SIGTERM to the parent. Each way the workers stop and report:
    # before, an interrupted parent waited its 30 s grace for workers that kept fuzzing, then wrote
    # a summary of 0 examples, and SIGTERM ended the run without a summary.
    import signal
    import time
    out = tmp_path / "out"
    process = _campaign_with_a_finding(out, workers)
    try:
        time.sleep(2)  # some examples after the first finding
        interrupted = time.monotonic()
        if whom == "group":
            os.killpg(process.pid, signal.SIGINT)
        else:
            os.kill(process.pid, signal.SIGTERM if whom == "term" else signal.SIGINT)
        assert process.wait(timeout=60) == 130
        stopped_after = time.monotonic() - interrupted
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    summary = read_records(out)[-1]
    assert summary["type"] == "summary" and summary["status"] == "interrupted"
    # Every worker reported its own counts (not only a progress figure): examples are the verdicts' sum.
    assert summary["examples"] == sum(summary["verdicts"].values()) > 0 and summary["findings"] >= 1
    assert stopped_after < 20, f"stopped {stopped_after:.1f} s after the interrupt"

@pytest.mark.parametrize("where", ["garbage-collector callback", "__del__"])
def test_an_interrupt_that_python_drops_still_stops_the_campaign(tmp_path, where):
    """A signal handled while the main thread runs a garbage-collector callback (Hypothesis installs one
    while it shrinks) or a __del__ method raises KeyboardInterrupt there, where Python prints
    "Exception ignored" and drops it. A one-worker campaign sent SIGTERM while shrinking its first
    finding ran on to the end of its budget (2 of 3 CI runs in session 10); it stops at its next example."""
    import gc
    import signal
    import time
    from fuzz import interrupts

    class Finalized:
        def __del__(self):
            signal.raise_signal(signal.SIGTERM)

    start = time.monotonic()

    def in_a_callback(phase, info):
        if phase == "start" and time.monotonic() > start + 1 and not interrupts.requested():
            signal.raise_signal(signal.SIGTERM)

    def count(self, *args, **kwargs):
        counted(self, *args, **kwargs)
        if where == "__del__" and time.monotonic() > start + 1 and not interrupts.requested():
            Finalized()  # dropped at once: its __del__ runs here

    from fuzz.campaign import _Campaign
    counted = _Campaign.count
    with interrupts.latched(), pytest.MonkeyPatch.context() as patch:
        patch.setattr(_Campaign, "count", count)
        if where != "__del__":
            gc.callbacks.append(in_a_callback)
        try:
            summary = quiet_campaign(tmp_path, budget_seconds=40, seed=0, backend="engine")
        finally:
            if in_a_callback in gc.callbacks:
                gc.callbacks.remove(in_a_callback)
        assert interrupts.requested()   # the signal came, and its KeyboardInterrupt was lost where it was raised
    assert summary.status == "interrupted" and summary.duration_seconds < 20
    assert read_records(tmp_path)[-1]["status"] == "interrupted"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL and not interrupts.requested()  # handlers put back


def _session(leader: int) -> list[str]:
    """The processes still alive in the session ``leader`` started."""
    return subprocess.run(["pgrep", "-s", str(leader)], capture_output=True, text=True).stdout.split()


def _text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def test_findings_of_ops_differing_by_case_get_their_own_files():
    from fuzz.campaign import slug
    names = {slug(f"error-vs-success|{op}|float64") for op in ("T", "t", "H", "h", "mT", "mt")}
    assert len({name.lower() for name in names}) == 6   # case-insensitive file systems too
    assert slug("gradient|mul|float32") == "gradient-mul-float32"


@pytest.mark.parametrize("at_fault, exit_code", [("torch", 0), ("engine", 1)])
def test_findings_where_only_torch_disagrees_with_finite_differences_do_not_fail_the_run(
        tmp_path, monkeypatch, at_fault, exit_code):
    finding = {"signature": "gradient|stack|float64", "steps": 1, "reproducer": "repro/x.py", "at_fault": at_fault}

    def campaign(config, console):
        return Summary(duration_seconds=1.0, examples=10, findings=[finding])

    monkeypatch.setattr("fuzz.cli.run_campaign", campaign)
    monkeypatch.setattr("fuzz.cli._render_site", lambda out, console: None)
    result = CliRunner().invoke(main, ["run", "--budget", "1s", "--out", str(tmp_path)])
    assert result.exit_code == exit_code, result.output
    output = " ".join(result.output.split())
    assert ("1 findings (1 where torch disagrees with finite differences and engine agrees)" in output) \
        == (at_fault == "torch")
    assert Summary(findings=[finding]).to_json()["torch_at_fault"] == (at_fault == "torch")


def test_the_summary_counts_the_examples_that_matched_only_once_rounding_was_forgiven(tmp_path):
    """x1's gradient through x1 @ x0 sums -3.6, -1e30, 1e30 and -3.3: 0 in one BLAS's order, -3.3 in
    another's (torch's and numpy's on the machine of campaign seed 9; on other CPUs the two agree, so
    the engine's side is given the other order's sum here): a match with a rounding note, which the
    summary counts apart from plain matches."""
    from dataclasses import replace

    import engine
    import oracle
    from fuzz import interpreter
    from fuzz.campaign import _Campaign
    from fuzz.outcome import Array
    from fuzz.compare import compare
    from fuzz.program import SUM_BACKWARD, Action, Input, Ref, Step
    program = Program((Input("x0", (3, 4), "float64", [[-3.6, -1e30, 1e30, -3.3], [1.0] * 4, [2.0] * 4], True),
                       Input("x1", (2, 3), "float64", [[0.0] * 3] * 2, True)),
                      (Step("mm", "function", (Ref("x1"), Ref("x0")), {}, "v0"),), Action(SUM_BACKWARD, "v0"))
    campaign = _Campaign(CampaignConfig(out=tmp_path, budget_seconds=1), engine, Console(file=io.StringIO()))
    for _ in range(2):
        ours, theirs = interpreter.run(program, engine), oracle.run_torch(program)
        gradient = ours.grads["x1"].data.copy()
        assert set(gradient[:, 0]) <= {0.0, -3.3}
        gradient[:, 0] = -3.3 if theirs.grads["x1"].data[0, 0] == 0 else 0.0
        ours = replace(ours, grads={**ours.grads, "x1": Array("float64", gradient)})
        verdict = compare(ours, theirs, program, backend=engine)
        campaign.count(program, verdict, ours, theirs)
    assert verdict.kind == "match" and "within rounding" in verdict.notes[-1]
    assert (campaign.summary.examples, campaign.summary.forgiven, campaign.summary.verdicts["match"]) == (2, 2, 2)
