"""The `gradfuzz` command line: usage errors exit 2 with a message, a clean run exits 0."""
import json

import pytest
from click.testing import CliRunner

from fuzz.cli import Duration, main


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("10m", 600), ("1h", 3600), ("60", 60), ("1.5m", 90),
                                           (" 2s ", 2)])
def test_durations(text, seconds):
    assert Duration().convert(text, None, None) == seconds


@pytest.mark.parametrize("arguments, message", [
    (["run", "--budget", "soon"], "'soon' is not a duration"),
    (["run", "--budget", "0s"], "not a positive duration"),
    (["run", "--budget", "10d"], "is not a duration"),
    (["run", "--backend", "no_such_backend_module"], "cannot import backend module 'no_such_backend_module'"),
    (["run", "--backend", "json"], "does not speak torch: it has no tensor, float32, float64"),
    (["run", "--max-steps", "0"], "0 is not in the range x>=1"),
    (["run", "--op", "frobnicate"], "'frobnicate' is not an op of the op table"),
    (["replay", "does-not-exist.json"], "does not exist"),
    (["report", "no-such-directory"], "does not exist"),
    (["fuzz"], "No such command 'fuzz'"),
    (["run", "--workers", "0"], "0 is not in the range 1<=x<=256"),
    (["run", "--workers", "many"], "'many' is not a valid integer"),
    (["run", "--seed", "abc"], "'abc' is not a valid integer"),
    (["run", "--budget", "-5s"], "is not a duration"),
    (["run", "--shrink-budget", "x"], "'x' is not a duration"),
    (["run", "--max-findings", "0"], "0 is not in the range x>=1"),
    (["run", "--unknown-flag"], "No such option '--unknown-flag'"),
    (["run", "extra-argument"], "Got unexpected extra argument"),
])
def test_bad_arguments_exit_2_with_a_message_and_no_traceback(arguments, message, tmp_path):
    result = CliRunner().invoke(main, arguments + (["--out", str(tmp_path)] if arguments[0] == "run" else []))
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert "Usage: " in result.output


def test_an_output_path_that_is_a_file_is_a_usage_error(tmp_path):
    afile = tmp_path / "taken"
    afile.write_text("")
    result = CliRunner().invoke(main, ["run", "--out", str(afile)])
    assert result.exit_code == 2 and "is a file" in result.output and "Usage: " in result.output


def test_replay_rejects_a_file_that_is_not_a_finding(tmp_path):
    bogus = tmp_path / "finding.json"
    bogus.write_text(json.dumps({"program": {"inputs": "x"}}))
    result = CliRunner().invoke(main, ["replay", str(bogus)])
    assert result.exit_code == 2 and "is not a gradfuzz finding" in result.output


def test_help_documents_the_exit_codes():
    result = CliRunner().invoke(main, ["run", "--help"])
    assert result.exit_code == 0
    assert "0    no divergence" in result.output and "2    usage error" in result.output


def test_torch_against_itself_exits_0_and_writes_the_results_directory(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", "--budget", "2s", "--backend", "torch", "--seed", "3",
                                       "--out", str(out), "--max-steps", "3"])
    assert result.exit_code == 0, result.output
    assert "0 findings" in result.output
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [record["type"] for record in records] == ["summary"]
    assert records[0]["status"] == "completed" and records[0]["examples"] == records[0]["verdicts"]["match"] > 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["command"].startswith("gradfuzz run --budget 2 --seed 3") and meta["budget_seconds"] == 2
    assert (out / "index.html").is_file()
    rerendered = CliRunner().invoke(main, ["report", str(out)])
    assert rerendered.exit_code == 0 and "index.html" in rerendered.output
