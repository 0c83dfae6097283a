"""A worker process that dies (torch or the backend crashed) does not end the campaign: the crash is
a finding with a reproducer, and the search goes on at the next example (tests/fuzz/crashing_torch.py
segfaults on its first `torch.neg` call)."""
import itertools
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fuzz.strategies import fast_examples, fast_programs
from fuzz.workers import _crash_frame, _crashed_side

HERE = Path(__file__).parent
ROOT = HERE.parents[1]


def _environment(**extra) -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)]), **extra}


def _gradfuzz(*arguments, **extra) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fuzz.cli", *arguments], capture_output=True, text=True,
                          env=_environment(**extra), cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def crashed_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("crashed")
    marker = out.parent / f"{out.name}.crashed"
    # The worker dies while it sends the parent a message (the worst moment for the parent to hear from
    # the next one).
    run = _gradfuzz("run", "--budget", "40s", "--seed", "3", "--backend", "crashing_torch", "--op", "neg",
                    "--op", "mul", "--max-steps", "3", "--out", str(out / "results"), CRASHING_TORCH_ONCE=str(marker),
                    CRASHING_TORCH_MID_MESSAGE="1")
    return out / "results", marker, run


def test_a_crashed_worker_is_a_finding_and_the_campaign_goes_on(crashed_run):
    out, marker, run = crashed_run
    assert run.returncode == 1, run.stderr  # a crash in the backend counts as a divergence
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    (crash,) = [record for record in records if record["type"] == "finding"]
    assert crash["signature"] == "crash|SIGSEGV|neg" and crash["kind"] == "crash" and crash["at_fault"] == "engine"
    assert "crashing_torch.py" in crash["where"] and crash["crash"]["exitcode"] == -signal.SIGSEGV
    assert "in neg" in crash["crash"]["stack"]  # faulthandler's stack of the dead process
    summary = records[-1]
    assert summary["type"] == "summary" and summary["status"] == "completed" and summary["crashes"] == 1
    # The worker was started again after the example it died in, and went on searching (the budget leaves
    # room for a loaded machine, where starting an interpreter with torch takes seconds of it).
    assert summary["examples"] > crash["crash"]["example"] + 10 and summary["verdicts"]["match"] > 10
    (page,) = [path.read_text() for path in (out / "findings").glob("*.html")]
    assert "Crash" in page and "faulthandler" in page and "crashing_torch.py" in page
    assert "crash|SIGSEGV|neg" in (out / "index.html").read_text()


def test_the_crash_reproducer_draws_the_example_again_and_crashes(crashed_run):
    out, marker, _ = crashed_run
    crash = next(json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()
                 if '"finding"' in line)
    marker.unlink()  # crashing_torch crashes again
    script = subprocess.run([sys.executable, str(out / crash["reproducer"])], capture_output=True, text=True,
                            env=_environment(CRASHING_TORCH_ONCE=str(marker)), timeout=120)
    assert script.returncode == -signal.SIGSEGV, script.stderr
    assert f"drawing example {crash['crash']['example']}" in script.stdout and "torch.neg(" in script.stdout
    marker.unlink()
    replay = _gradfuzz("replay", str(out / crash["finding_file"]), CRASHING_TORCH_ONCE=str(marker))
    assert replay.returncode == 1 and "crashes again (SIGSEGV)" in replay.stdout, replay.stdout + replay.stderr
    # The marker exists now: crashing_torch no longer crashes.
    replay = _gradfuzz("replay", str(out / crash["finding_file"]), CRASHING_TORCH_ONCE=str(marker))
    assert replay.returncode == 0 and "no longer crashes" in replay.stdout, replay.stdout + replay.stderr


def test_any_example_can_be_drawn_without_those_before_it():
    options = {"max_steps": 4}
    stream = [program.to_json() for program, _ in itertools.islice(fast_programs(random.Random(7), **options), 30)]
    for index in (0, 1, 17, 29):
        program, _, _ = next(fast_examples(random.Random(7), start=index, **options))
        assert program.to_json() == stream[index]


def test_the_crash_is_named_by_its_innermost_frame_outside_the_standard_library():
    stdlib = os.path.dirname(os.__file__)
    stack = ("Fatal Python error: Segmentation fault\n\nCurrent thread 0x00007f (most recent call first):\n"
             f'  File "{stdlib}/ctypes/__init__.py", line 519 in string_at\n'
             '  File "/site-packages/torch/_tensor.py", line 12 in numpy\n'
             '  File "/work/fuzz/interpreter.py", line 168 in snapshot\n')
    frame = _crash_frame(stack)
    assert (frame["function"], frame["file"], frame["line"]) == ("numpy", "/site-packages/torch/_tensor.py", "12")
    assert _crash_frame("no stack") is None


def test_in_process_searches_with_one_worker_only():
    result = _gradfuzz("run", "--in-process", "--workers", "2", "--budget", "1s")
    assert result.returncode == 2 and "--in-process searches in one process" in result.stderr


def test_a_crash_while_torch_runs_the_program_is_blamed_on_torch():
    """seed 26's crash: torch's numpy() of a ZeroTensor view, read while the program builder evaluated
    the program on torch (it is torch's bug; the campaign does not fail for it)."""
    torch_side = ('  File "/work/fuzz/interpreter.py", line 168 in snapshot\n'
                  '  File "/work/fuzz/interpreter.py", line 266 in finish\n'
                  '  File "/work/fuzz/strategies.py", line 972 in outcome\n'
                  '  File "/work/fuzz/campaign.py", line 499 in search\n')
    backend_side = ('  File "/work/tests/fuzz/crashing_torch.py", line 20 in neg\n'
                    '  File "/work/fuzz/interpreter.py", line 240 in run\n'
                    '  File "/work/fuzz/campaign.py", line 585 in check\n')
    in_torch = '  File "/venv/lib/python3.11/site-packages/torch/_tensor.py", line 12 in numpy\n' + backend_side
    assert (_crashed_side(torch_side), _crashed_side(backend_side), _crashed_side(in_torch)) == \
        ("torch", "engine", "torch")
