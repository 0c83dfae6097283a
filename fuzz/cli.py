"""The `gradfuzz` command: fuzz campaigns, replaying findings, rendering reports."""
from __future__ import annotations

import difflib
import importlib.util
import json
import re
import shlex
import sys
from pathlib import Path

import click
from rich.console import Console

import oracle
from engine.optable import BY_NAME
from fuzz import interpreter, interrupts
from fuzz.campaign import INTERRUPTED, REDIS_SCHEMES, CampaignConfig, example_database, load_backend, run_campaign
from fuzz.compare import compare
from fuzz.program import Program
from fuzz.workloads import WORKLOADS

EXIT_CODES = """\b
Exit codes:
  0    no divergence the backend is at fault for (findings where torch's gradient
       disagrees with finite differences and the backend's agrees are reported only)
  1    divergences or crashes found (run), or the finding still diverges or
       crashes (replay)
  2    usage error (bad option or argument)
  130  interrupted: Ctrl-C, SIGINT or SIGTERM (the output directory is still complete)"""

EXIT_DIVERGED, EXIT_INTERRUPTED = 1, 130
MAX_WORKERS = 256

_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([smh]?)\s*")
_SECONDS_PER_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600}


class Duration(click.ParamType):
    """A time span: plain seconds ("90"), or with a unit: "90s", "10m", "1h"."""

    name = "duration"

    def convert(self, value, param, ctx) -> float:
        if isinstance(value, (int, float)):
            seconds = float(value)
        else:
            match = _DURATION.fullmatch(str(value))
            if not match:
                self.fail(f"{value!r} is not a duration; use seconds (90), or 90s, 10m, 1h", param, ctx)
            seconds = float(match[1]) * _SECONDS_PER_UNIT[match[2]]
        if seconds <= 0:
            self.fail(f"{value!r} is not a positive duration", param, ctx)
        return seconds


class Backend(click.ParamType):
    """An importable module name that speaks torch (validated by importing it)."""

    name = "module"

    def convert(self, value, param, ctx) -> str:
        return _checked(load_backend, value, self, param, ctx)


class Database(click.ParamType):
    """A Hypothesis example database: a directory, or a Redis server's URL (redis://host:6379/0)."""

    name = "dir|redis-url"

    def convert(self, value, param, ctx) -> Path | str:
        if isinstance(value, Path) or not str(value).startswith(REDIS_SCHEMES):
            return click.Path(file_okay=False, path_type=Path).convert(value, param, ctx)
        return _checked(example_database, value, self, param, ctx)


def _checked(check, value, kind: click.ParamType, param, ctx):
    """``value`` once ``check(value)`` accepted it; its ValueError becomes a usage error."""
    try:
        check(value)
    except ValueError as error:
        kind.fail(str(error), param, ctx)
    return value


class Scheduler(click.ParamType):
    """A Dask scheduler's address (tcp://host:8786); Dask distributed must be installed."""

    name = "address"

    def convert(self, value, param, ctx) -> str:
        if importlib.util.find_spec("distributed") is None:
            self.fail("running shards on a Dask cluster needs Dask distributed: "
                      "pip install 'gradfuzz[distributed]'", param, ctx)
        return value


class OpName(click.ParamType):
    """The name of an op in the engine's op table."""

    name = "op"

    def convert(self, value, param, ctx) -> str:
        if value not in BY_NAME:
            close = difflib.get_close_matches(value, BY_NAME, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else "; see engine/optable.py for the ops"
            self.fail(f"{value!r} is not an op of the op table{hint}", param, ctx)
        return value


def _render_site(directory: Path, console: Console) -> Path | None:
    """Render the HTML report; None (with a note) while the reports package is not available."""
    try:
        from reports import render_site
    except ImportError as error:
        console.print(f"[yellow]no HTML report: the reports package is not available ({error})[/yellow]")
        return None
    return render_site(directory)


@click.group(epilog=EXIT_CODES)
def main() -> None:
    """gradfuzz: differential fuzzing of an autograd engine against torch.autograd."""


@main.command(epilog=EXIT_CODES)
@click.option("--budget", type=Duration(), default="60s", show_default=True,
              help="How long to fuzz: seconds, or 90s, 10m, 1h.")
@click.option("--seed", type=int, default=0, show_default=True, help="The same seed draws the same programs.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("gradfuzz-out"),
              show_default=True, help="Output directory; its previous results are replaced.")
@click.option("--backend", type=Backend(), default="engine", show_default=True,
              help="Module under test, compared with torch.")
@click.option("--max-steps", type=click.IntRange(min=1), default=6, show_default=True,
              help="Most ops in one program.")
@click.option("--op", "ops", type=OpName(), multiple=True,
              help="Fuzz only this op of the op table (repeatable); default: every op the fuzzer draws.")
@click.option("--database", type=Database(), default=None,
              help="Hypothesis example database to share between runs and workers: a directory or a Redis "
                   "URL (redis://host:6379/0) [default: OUT/.hypothesis].")
@click.option("--max-findings", type=click.IntRange(min=1), default=None,
              help="Stop after this many findings.")
@click.option("--shrink-budget", type=Duration(), default=None,
              help="Most time spent shrinking one finding [default: 10% of the budget, at least 10s].")
@click.option("--workers", type=click.IntRange(min=1, max=MAX_WORKERS), default=None,
              help="Shards, each its own Hypothesis run (seeded from --seed and its index) sharing the example "
                   "database; findings are merged by signature. Local worker processes [default: 1], or with "
                   "--scheduler Dask tasks [default: one per Dask worker thread].")
@click.option("--scheduler", type=Scheduler(), default=None,
              help="Run the shards on the Dask cluster of this scheduler (tcp://host:8786); share failures "
                   "between machines with --database redis://...")
@click.option("--in-process", is_flag=True,
              help="Search in this process instead of a worker process (one worker only; for debuggers and "
                   "profilers): then a crash of torch or the backend ends the campaign.")
def run(budget: float, seed: int, out: Path, backend: str, max_steps: int, ops: tuple[str, ...],
        database: Path | str | None, max_findings: int | None, shrink_budget: float | None, workers: int | None,
        scheduler: str | None, in_process: bool) -> None:
    """Fuzz BACKEND against torch for a time budget and write OUT/results.jsonl, meta.json and index.html.

    Failures stored in the example database (earlier campaigns') are replayed first. The search runs in
    worker processes: one that dies (torch or the backend crashed) is recorded as a `crash` finding with
    a reproducer, and started again at the next program.
    """
    if in_process and ((workers or 1) > 1 or scheduler):
        raise click.UsageError("--in-process searches in one process: leave out --workers and --scheduler")
    console = Console(stderr=True)
    command = shlex.join(["gradfuzz", "run", "--budget", f"{budget:g}", "--seed", str(seed), "--out", str(out),
                          "--backend", backend, "--max-steps", str(max_steps)]
                         + (["--workers", str(workers)] if workers else [])
                         + (["--scheduler", scheduler] if scheduler else [])
                         + [argument for op in ops for argument in ("--op", op)])
    config = CampaignConfig(out=out, budget_seconds=budget, seed=seed, backend=backend, max_steps=max_steps,
                            ops=ops or None, database=database, max_findings=max_findings,
                            shrink_seconds=shrink_budget, command=command,
                            workers=workers or (0 if scheduler else 1), scheduler=scheduler, isolated=not in_process)
    # SIGTERM (what `timeout`, schedulers and container runtimes send) stops the run as Ctrl-C does,
    # so it still writes its summary and report, and neither can be lost (see fuzz.interrupts).
    with interrupts.latched():
        try:
            summary = run_campaign(config, console=console)
        except ValueError as error:  # a scheduler that cannot be reached, a database that cannot be opened
            raise click.UsageError(str(error)) from None
        torch_at_fault = len(summary.findings) - len(summary.engine_findings)
        console.print(f"{summary.status}: {summary.examples} examples in {summary.duration_seconds:.1f}s "
                      f"({summary.examples / max(summary.duration_seconds, 1e-9):.0f}/s), "
                      f"{len(summary.findings)} findings"
                      + (f" ({torch_at_fault} where torch disagrees with finite differences and {backend} agrees)"
                         if torch_at_fault else ""))
        for finding in summary.findings:
            steps = finding["steps"]
            size = f"  ({steps} step{'s' * (steps != 1)})" if steps is not None else ""
            reproducer = out / finding["reproducer"] if finding["reproducer"] else "(no reproducer)"
            console.print(f"  {finding['signature']}{size}  {reproducer}", highlight=False, soft_wrap=True)
        try:
            index = _render_site(out, console)
        except KeyboardInterrupt:
            console.print(f"interrupted while writing the report; `gradfuzz report {out}` writes it")
            sys.exit(EXIT_INTERRUPTED)
        if index is not None:
            console.print(f"report: {index}")
        if summary.status == INTERRUPTED:
            sys.exit(EXIT_INTERRUPTED)
        sys.exit(EXIT_DIVERGED if summary.engine_findings else 0)


@main.command(epilog=EXIT_CODES)
@click.argument("finding_json", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--backend", type=Backend(), default=None,
              help="Module under test [default: the one the finding was made with].")
def replay(finding_json: Path, backend: str | None) -> None:
    """Rerun one finding (findings/<slug>.json) on the backend and on torch; print both outcomes and the verdict.

    A crash finding (a worker process died) is rerun by its reproducer in a new process."""
    try:
        finding = json.loads(finding_json.read_text())
        if finding.get("kind") == "crash":
            _replay_crash(finding_json, finding)
            return
        program = Program.from_json(finding["program"])
        backend = backend or finding["backend"]
    except (ValueError, KeyError, TypeError) as error:
        raise click.BadParameter(f"{finding_json} is not a gradfuzz finding: {error}",
                                 param_hint="FINDING_JSON") from error
    module = load_backend(backend)
    engine_outcome, torch_outcome = interpreter.run(program, module), oracle.run_torch(program)
    verdict = compare(engine_outcome, torch_outcome, program, backend=module)
    console = Console()
    console.rule(f"{backend} outcome")
    console.print_json(data=engine_outcome.to_json())
    console.rule("torch outcome")
    console.print_json(data=torch_outcome.to_json())
    console.rule("verdict")
    console.print_json(data=verdict.to_json())
    if verdict.diverged:
        same = "same signature" if verdict.signature == finding.get("signature") else "a different signature"
        console.print(f"still diverges ({same}): {verdict.signature}", highlight=False)
        sys.exit(EXIT_DIVERGED)
    console.print("no longer diverges")


def _replay_crash(finding_json: Path, finding: dict) -> None:
    """Run a crash finding's reproducer (repro/<slug>.py of its results directory) in a new process."""
    import signal
    import subprocess
    if not finding.get("reproducer"):
        raise click.ClickException(f"{finding['signature']} has no reproducer: the worker died while a Hypothesis "
                                   "run replayed or shrank a failure, not at one program")
    script = finding_json.resolve().parent.parent / finding["reproducer"]
    if not script.is_file():
        raise click.ClickException(f"the reproducer {script} is missing")
    console = Console()
    console.rule(f"{finding['signature']}: running {script}")
    code = subprocess.run([sys.executable, str(script)]).returncode
    console.rule("verdict")
    if code < 0:
        console.print(f"crashes again ({signal.Signals(-code).name})", highlight=False)
        sys.exit(EXIT_DIVERGED)
    if code != 0:
        console.print(f"the reproducer failed (exit status {code})", highlight=False)
        sys.exit(EXIT_DIVERGED)
    console.print("no longer crashes")


@main.command(epilog=EXIT_CODES)
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
def report(directory: Path) -> None:
    """Re-render DIRECTORY/index.html from its meta.json and results.jsonl."""
    console = Console(stderr=True)
    index = _render_site(directory, console)
    if index is None:
        raise click.ClickException("cannot render the report without the reports package")
    console.print(f"report: {index}")


class BugList(click.ParamType):
    """Comma-separated names of the mutant catalogue (fuzz/mutants.py)."""

    name = "bugs"

    def convert(self, value, param, ctx) -> tuple[str, ...]:
        from fuzz.mutants import MUTANTS
        if isinstance(value, tuple):
            return value
        names = tuple(name.strip() for name in str(value).split(",") if name.strip())
        if not names:
            self.fail("name at least one bug", param, ctx)
        for name in names:
            if name not in MUTANTS:
                close = difflib.get_close_matches(name, MUTANTS, n=3)
                hint = f"did you mean {', '.join(close)}?" if close else f"the catalogue: {', '.join(MUTANTS)}"
                self.fail(f"{name!r} is not a bug of the catalogue; {hint}", param, ctx)
        return names


SELFTEST_EXIT_CODES = """\b
Exit codes:
  0    every bug was caught
  1    some bug was not caught
  2    usage error (bad option or argument)
  130  interrupted: Ctrl-C, SIGINT or SIGTERM"""


@main.command(epilog=SELFTEST_EXIT_CODES)
@click.option("--budget-per-bug", type=Duration(), default="20s", show_default=True,
              help="How long to fuzz each planted bug.")
@click.option("--bugs", type=BugList(), default=None,
              help="Comma-separated bugs of the catalogue (fuzz/mutants.py) [default: all].")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("gradfuzz-selftest"),
              show_default=True, help="Output directory.")
@click.option("--all-ops", is_flag=True, help="Fuzz the whole op table, not each bug's focus ops.")
@click.option("--jobs", type=click.IntRange(min=1, max=MAX_WORKERS), default=1, show_default=True,
              help="Bugs fuzzed side by side, each in its own process.")
def selftest(budget_per_bug: float, bugs: tuple[str, ...] | None, seed: int, out: Path, all_ops: bool,
             jobs: int) -> None:
    """Plant each bug of a catalogue of engine bugs, one per fresh process, and check that fuzzing catches it."""
    from fuzz.mutants import MUTANTS
    from fuzz.selftest import SelftestConfig, render, run_selftest
    console = Console(stderr=True)
    config = SelftestConfig(out=out, budget_per_bug=budget_per_bug, mutants=bugs or tuple(MUTANTS), seed=seed,
                            all_ops=all_ops, jobs=jobs)
    with interrupts.latched():
        try:
            records = run_selftest(config, console=console)
        except KeyboardInterrupt:
            console.print("interrupted")
            sys.exit(EXIT_INTERRUPTED)
    page = render(out, console)
    if page is not None:
        console.print(f"report: {page}")
    sys.exit(0 if all(record["caught"] for record in records) else EXIT_DIVERGED)


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
def history(folder: Path) -> None:
    """Render FOLDER/index.html: trends over the run directories in FOLDER (nightly campaigns)."""
    from reports import render_history
    Console(stderr=True).print(f"history: {render_history(folder)}")


@main.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("gradfuzz-bench"),
              show_default=True, help="Output directory for bench.json and index.html.")
@click.option("--workload", "workloads", type=click.Choice(list(WORKLOADS)), multiple=True,
              help="Time only this workload (repeatable); default: all.")
@click.option("--rounds", type=click.IntRange(min=2), default=None,
              help="Timed rounds per backend, after warm-up [default: 30; 5 with --quick].")
@click.option("--previous", type=click.Path(exists=True, path_type=Path), default=None,
              help="An earlier run's bench.json (or its directory): the report shows the change per workload.")
@click.option("--quick", is_flag=True, help="Few short rounds, one memory repeat: a smoke test (CI), not a measurement.")
@click.option("--peer", "peers", type=click.Choice(["autograd", "mygrad", "torch-1thread"]), multiple=True,
              help="Also time this peer library, if installed (HIPS autograd, MyGrad), or torch on one intra-op "
                   "thread (torch-1thread: shown, no target); repeatable.")
def bench(out: Path, workloads: tuple[str, ...], rounds: int | None, previous: Path | None, quick: bool,
          peers: tuple[str, ...]) -> None:
    """Time the performance workloads on the engine and on torch; write OUT/bench.json and OUT/index.html.

    Ratios are engine time / torch time (medians over interleaved rounds, 95% bootstrap CI): below 1 the
    engine is faster. Timings are noisy; compare ratios within one run.
    """
    from fuzz.bench import DEFAULT_ROUNDS, QUICK, rich_table, run_bench
    from reports.bench import load_bench
    console = Console(stderr=True)
    settings = {"rounds": rounds or (QUICK["rounds"] if quick else DEFAULT_ROUNDS)}
    command = shlex.join(["gradfuzz", "bench", "--out", str(out), "--rounds", str(settings["rounds"])]
                         + [argument for name in workloads for argument in ("--workload", name)]
                         + (["--previous", str(previous)] if previous else []) + (["--quick"] if quick else [])
                         + [argument for peer in peers for argument in ("--peer", peer)])
    if quick:
        settings.update(warmup=QUICK["warmup"], min_time=QUICK["min_time"], memory_repeats=QUICK["memory_repeats"])
    try:
        index = run_bench(out, workloads=workloads or None, previous=previous, extra_backends=peers,
                          command=command, progress=lambda message: console.print(message, highlight=False),
                          **settings)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except ValueError as error:  # e.g. --previous is not a bench.json
        raise click.ClickException(str(error)) from error
    Console().print(rich_table(load_bench(out)))
    console.print(f"report: {index}")


if __name__ == "__main__":
    main()
