"""The self-test catches representative planted engine bugs within a small budget."""
import io
import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from rich.console import Console

from fuzz.cli import main
from fuzz.mutants import MUTANTS
from fuzz.selftest import SelftestConfig, run_selftest

# One per family: a wrong rule, a kink convention, node metadata, a reduction's dims.
REPRESENTATIVE = ("sub-other-sign", "relu-kink", "tanh-node-name", "reduction-dim-off-by-one")


def test_the_catalogue_names_at_least_ten_bugs_with_what_catches_them():
    assert len(MUTANTS) >= 10
    for mutant in MUTANTS.values():
        assert mutant.description and mutant.kinds and mutant.focus and callable(mutant.plant)


def test_every_bug_of_the_catalogue_plants_into_the_engine_and_none_reaches_the_pristine_copy():
    # A mutant patches engine internals by name: one whose target was renamed or reshaped
    # would fail here (AttributeError, ...) instead of silently testing nothing. The pristine
    # copy the self-test replays findings on keeps torch's behaviour.
    code = ("from fuzz.mutants import MUTANTS, apply_mutant, pristine_engine\n"
            "pristine = pristine_engine()\n"
            "for name in MUTANTS: apply_mutant(name)\n"
            "import engine\n"
            "for module in (engine, pristine):\n"
            "    x = module.tensor([1.0, 2.0, 3.0], requires_grad=True)\n"
            "    module.roll(x, 1).backward(module.tensor([1.0, 2.0, 3.0]))\n"
            "    print(x.grad.tolist())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    # The planted roll bug is live in the engine; the copy gives torch's [2.0, 3.0, 1.0].
    assert done.stdout.split("\n")[:2] == ["[3.0, 1.0, 2.0]", "[2.0, 3.0, 1.0]"]


def test_representative_bugs_are_caught_quickly(tmp_path):
    config = SelftestConfig(out=tmp_path, budget_per_bug=15, mutants=REPRESENTATIVE, jobs=2)
    records = run_selftest(config, console=Console(file=io.StringIO()))
    assert [record["mutant"] for record in records] == list(REPRESENTATIVE)
    for record in records:
        assert record["caught"], record
        mutant = MUTANTS[record["mutant"]]
        kind, op, _ = record["signature"].split("|")
        assert kind in mutant.kinds and op in mutant.ops and record["expected"]
        assert record["seconds"] < 15 and (tmp_path / record["finding_file"]).is_file()
    lines = [json.loads(line) for line in (tmp_path / "selftest.jsonl").read_text().splitlines()]
    assert [line["type"] for line in lines] == ["selftest"] * len(REPRESENTATIVE)
    assert json.loads((tmp_path / "meta.json").read_text())["kind"] == "selftest"
    from reports.selftest import render_selftest
    page = render_selftest(tmp_path).read_text()
    assert "4 of 4 planted bugs caught" in page and "relu-kink" in page


def test_a_finding_counts_only_when_the_planted_bug_causes_it(tmp_path):
    # The finding's program is replayed on the pristine engine: where it agrees with torch, the
    # planted bug made the divergence. Torch's stack under repeated backward (the engine is right,
    # torch is not) diverges without any bug, so a finding on it is not the bug's.
    from fuzz.campaign import CampaignConfig
    from fuzz.mutants import pristine_engine
    from fuzz.program import SUM_BACKWARD, Action, Input, Program, Ref, Step
    from fuzz.selftest import _MutantCampaign
    from tests.fuzz.test_compare import stacked_twice

    campaign = _MutantCampaign(CampaignConfig(out=tmp_path, budget_seconds=1), MUTANTS["relu-kink"], pristine_engine())
    relu = Program((Input("x0", (3,), "float32", [-1.0, 0.0, 2.0], True),),
                   (Step("nn.functional.relu", "function", (Ref("x0"),), {}, "v0"),), Action(SUM_BACKWARD, "v0"))
    assert campaign.caused_by_the_bug({"program": relu.to_json()})
    assert not campaign.caused_by_the_bug({"program": stacked_twice(False).to_json()})


def test_an_unknown_bug_is_a_usage_error():
    result = CliRunner().invoke(main, ["selftest", "--bugs", "relu-kink,relu-kinks"])
    assert result.exit_code == 2 and "'relu-kinks' is not a bug of the catalogue" in result.output
    assert "did you mean relu-kink" in result.output and "Traceback" not in result.output


# A dropped accumulation shows only across two backward calls; hooks, no_grad and in-place steps
# need autograd steps (a missing version bump went uncaught for want of them: none were drawn over
# its focus ops); a permutation's inverse needs a 3-cycle; a scan's direction needs a cumsum.
AUTOGRAD_AND_SHAPE = ("accumulate-overwrites", "hook-result-ignored", "no-grad-records", "inplace-no-version-bump",
                      "permute-not-inverted", "cumsum-forward-scan", "roll-not-inverted")


def test_autograd_and_shape_bugs_are_caught_and_shrunk_to_a_few_steps(tmp_path):
    # Found and shrunk within a minute each (shrinking may take a quarter of it).
    config = SelftestConfig(out=tmp_path, budget_per_bug=60, mutants=AUTOGRAD_AND_SHAPE, jobs=2)
    records = run_selftest(config, console=Console(file=io.StringIO()))
    for record in records:
        assert record["caught"] and record["shrunk_steps"] <= 3, record
        mutant = MUTANTS[record["mutant"]]
        kind, op, _ = record["signature"].split("|")
        assert kind in mutant.kinds and (not mutant.ops or op in mutant.ops)
        assert (tmp_path / record["finding_file"]).is_file()
