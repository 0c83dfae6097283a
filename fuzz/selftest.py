"""Self-test: does a short campaign catch each bug of the mutant catalogue?

For each mutant of `fuzz.mutants.MUTANTS`, a fresh process plants the bug in
its engine and runs a campaign on it (by default over the mutant's focus ops)
until a finding is caused by the bug (over the focus ops: one of the kind and op
the mutant expects, else the first it caused) or the budget per bug is spent. A finding
is the bug's when an unmutated copy of the engine (`fuzz.mutants.pristine_engine`),
run on the finding's program, agrees with torch: a divergence the engine shows
anyway is not counted, and a bug in a shared helper is caught through whichever
op shows it first (whether that is a kind and op the mutant expects is recorded
as ``expected``). Output directory::

    selftest.jsonl   one {"type": "selftest", ...} record per mutant, fsync'd as each ends
    meta.json        versions, seed, budget per bug, the mutants
    <mutant>/        that mutant's campaign results directory (findings, reproducers)
    index.html       the self-test page (reports.selftest), when the reports package has it
"""
from __future__ import annotations

import io
import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from rich.console import Console
from rich.table import Table

import oracle
from fuzz import interpreter
from fuzz.campaign import CampaignConfig, _Campaign, load_backend, write_finding
from fuzz.compare import MATCH, compare
from fuzz.mutants import MUTANTS, Mutant, apply_mutant, pristine_engine
from fuzz.program import Program

# Shrinking a finding may use this share of the budget per bug: the self-test
# measures finding, and a caught bug ends its campaign once recorded.
SHRINK_SHARE = 0.25


@dataclass(frozen=True)
class SelftestConfig:
    out: Path
    budget_per_bug: float = 20.0
    mutants: tuple[str, ...] = tuple(MUTANTS)
    seed: int = 0
    all_ops: bool = False   # fuzz the whole op table instead of each mutant's focus ops
    max_steps: int = 6
    jobs: int = 1           # mutants run side by side (each in its own process)


def run_selftest(config: SelftestConfig, *, console: Console | None = None) -> list[dict]:
    """Plant each mutant in a fresh process, fuzz it, and return one record per mutant."""
    console = console or Console(stderr=True)
    unknown = [name for name in config.mutants if name not in MUTANTS]
    if unknown:
        raise ValueError(f"unknown mutants {unknown}; the catalogue: {', '.join(MUTANTS)}")
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "selftest.jsonl").write_text("")
    (out / "meta.json").write_text(json.dumps({
        "kind": "selftest", "seed": config.seed, "budget_per_bug": config.budget_per_bug,
        "all_ops": config.all_ops, "mutants": list(config.mutants),
        **_meta()}, indent=2) + "\n")
    records = []
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=config.jobs, mp_context=context, max_tasks_per_child=1) as pool:
        futures = [pool.submit(_run_one, config, name) for name in config.mutants]
        for future in futures:
            try:
                record = future.result()
            except KeyboardInterrupt:
                pool.shutdown(cancel_futures=True)
                raise
            records.append(record)
            _append(out / "selftest.jsonl", record)
            console.print(f"{'[green]caught[/green]' if record['caught'] else '[red]missed[/red]'} "
                          f"{record['mutant']}" + (f" in {record['seconds']:.1f}s ({record['examples']} examples): "
                                                   f"{record['signature']}" if record["caught"] else ""),
                          highlight=False)
    console.print(table(records))
    return records


def table(records: list[dict]) -> Table:
    """The rich table of a self-test: bug, caught?, seconds, examples, shrunk steps, the catching signature."""
    result = Table(title="gradfuzz self-test")
    for column in ("bug", "caught", "seconds", "examples", "steps", "finding"):
        result.add_column(column, justify="right" if column in ("seconds", "examples", "steps") else "left")
    for record in records:
        caught = record["caught"]
        result.add_row(record["mutant"], "[green]yes[/green]" if caught else "[red]no[/red]",
                       f"{record['seconds']:.1f}" if caught else "-", str(record["examples"]) if caught else "-",
                       str(record.get("shrunk_steps")) if caught else "-",
                       record["signature"] or f"({record['findings']} other findings)")
    caught = sum(record["caught"] for record in records)
    result.caption = f"{caught} of {len(records)} bugs caught"
    return result


class _MutantCampaign(_Campaign):
    """A campaign that ends as soon as a finding caused by the planted bug is one it expects.

    With ``prefer_expected`` (a campaign over the mutant's focus ops), a finding the bug
    causes but of another kind or op (a wrong permutation's gradient of the wrong shape
    raising in backward, rather than the gradient itself) is kept as the catch only if no
    expected one comes before the budget ends; otherwise (the whole table) the first
    finding the bug causes ends the campaign.
    """

    def __init__(self, config: CampaignConfig, mutant: Mutant, pristine: ModuleType, *, prefer_expected: bool = False):
        import engine
        super().__init__(config, engine, Console(file=io.StringIO()))
        self.mutant = mutant
        self.pristine = pristine
        self.prefer_expected = prefer_expected
        self.caught: dict | None = None
        self.fallback: dict | None = None   # the first finding the bug causes, expected or not

    def emit(self, record: dict, verdict: dict, script: str, features: list[str]) -> bool:
        write_finding(self.config.out, record, verdict, script)
        if self.caught is None and self.caused_by_the_bug(record):
            if self.prefer_expected and not self.mutant.expects(record):
                self.fallback = self.fallback or record
            else:
                self.caught = record
        return True

    def caused_by_the_bug(self, finding: dict) -> bool:
        """Whether the engine without the planted bug agrees with torch on the finding's program."""
        program = Program.from_json(finding["program"])
        pristine = interpreter.run(program, self.pristine)
        return compare(pristine, oracle.run_torch(program), program, adjudicate=False).kind == MATCH

    def enough_findings(self) -> bool:
        return self.caught is not None or super().enough_findings()


def _run_one(config: SelftestConfig, name: str) -> dict:
    """In a fresh process: plant mutant ``name``, fuzz the engine, report whether it was caught."""
    import torch
    torch.set_num_threads(1)
    pristine = pristine_engine()   # (loaded before the bug is planted, though it shares no module with it)
    mutant = apply_mutant(name)
    campaign_config = CampaignConfig(
        out=config.out / name, budget_seconds=config.budget_per_bug, seed=config.seed, backend="engine",
        max_steps=config.max_steps, ops=None if config.all_ops else mutant.focus,
        autograd_features=True if mutant.features else None,
        shrink_seconds=SHRINK_SHARE * config.budget_per_bug, mutant=name,
        command=f"gradfuzz selftest --bugs {name}")
    load_backend("engine")
    started = time.monotonic()
    campaign = _MutantCampaign(campaign_config, mutant, pristine, prefer_expected=not config.all_ops)
    summary = campaign.run()
    caught = campaign.caught or campaign.fallback
    try:
        from reports import render_site
        render_site(campaign_config.out)
    except ImportError:
        pass
    return {
        "type": "selftest", "mutant": name, "description": mutant.description, "caught": caught is not None,
        "signature": caught["signature"] if caught else None,
        "seconds": caught["found_after_seconds"] if caught else None,
        "examples": caught["found_after_examples"] if caught else summary.examples,
        "shrunk_steps": caught["steps"] if caught else None,
        "finding_file": f"{name}/{caught['finding_file']}" if caught else None,
        "findings": len(summary.findings), "total_examples": summary.examples,
        "duration_seconds": round(time.monotonic() - started, 3),
        "ops": list(campaign_config.ops) if campaign_config.ops else None,
        "expects": {"kinds": list(mutant.kinds), "ops": list(mutant.ops)},
        "expected": mutant.expects(caught) if caught else None,
    }


def _append(path: Path, record: dict) -> None:
    with open(path, "a") as file:
        file.write(json.dumps(record) + "\n")
        file.flush()
        os.fsync(file.fileno())


def _meta() -> dict:
    import platform

    import hypothesis
    import numpy
    import torch
    return {"torch": torch.__version__, "numpy": numpy.__version__, "hypothesis": hypothesis.__version__,
            "python": platform.python_version()}


def render(out: Path, console: Console) -> Path | None:
    """The self-test's HTML page, when the reports package can render one."""
    try:
        from reports.selftest import render_selftest
    except ImportError as error:
        console.print(f"[yellow]no HTML page: {error}[/yellow]")
        return None
    return render_selftest(out)

