"""A fuzz campaign: run random Programs on a backend and on torch until a time budget is spent.

The search draws programs with the program builder of `fuzz.strategies` fed by
a plain `random.Random` (seeded from the campaign seed: the same seed gives the
same programs), which is many times faster than drawing through Hypothesis
and records every choice as the Hypothesis choice it stands for; torch's
outcome of each is the builder's own evaluation of its steps
(`fast_examples`), so torch runs a program once. When a
program diverges with a signature not seen before, its recorded choices are
offered to a Hypothesis run of the same builder (`_Offer`, an example
database whose one entry is that program); Hypothesis replays it and shrinks
it to a minimal program (the test function fails only for that one signature
while it shrinks; then `_Campaign.trimmed` drops the steps the signature does not need,
which Hypothesis may leave, above all when the shrink limit stops it first). The finding is written at once (a `finding` line in
`results.jsonl`, `findings/<slug>.json`, `repro/<slug>.py`), Hypothesis saves
the shrunk program in the campaign's example database, and the search goes
on with the known signatures ignored. A new campaign with that database
replays its stored failures first. The budget, Ctrl-C and `max_findings`
stop the campaign, from inside Hypothesis too (BaseException subclasses,
which it propagates without treating them as test failures); the directory
is valid after any of them.

Output directory (Contract 5 in DESIGN.md)::

    meta.json        versions, backend, seed, budget, machine, command
    results.jsonl    {"type": "finding", ...} per finding, then one {"type": "summary", ...}
    findings/*.json  one finding each, with the full verdict (input to `gradfuzz replay`)
    repro/*.py       one standalone reproducer script each
    index.html       rendered by `reports.render_site`
"""
from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.metadata
import itertools
import json
import os
import platform
import random
import re
import shutil
import sys
import time
import unittest
import urllib.parse
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Callable

import hypothesis
import numpy
import torch
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase
from hypothesis.errors import Flaky
from hypothesis.internal.reflection import function_digest
from rich.console import Console
from rich.progress import Progress, TextColumn, TimeElapsedColumn

import oracle
from fuzz import interpreter, interrupts, strategies
from fuzz.compare import MATCH, Verdict, adjudicated, compare
from fuzz.outcome import Outcome
from fuzz.program import SUM_BACKWARD, Action, Input, Program, Ref, Step
from fuzz.repro import render_script
from fuzz.strategies import choices_blob, fast_examples, traced_programs

COMPLETED, INTERRUPTED, MAX_FINDINGS_REACHED = "completed", "interrupted", "max-findings"
# Shrinking one finding may take this share of the budget (at least MIN_SHRINK_SECONDS);
# then its smallest program so far is recorded and the search goes on.
SHRINK_SHARE, MIN_SHRINK_SECONDS = 0.1, 10.0
# A shrink (stopped at that limit, or finished) is followed by dropping steps (`_Campaign.trimmed`) for at
# most this share of the limit (at least MIN_TRIM_SECONDS).
TRIM_SHARE, MIN_TRIM_SECONDS = 0.2, 2.0
PROGRESS_REFRESH_SECONDS = 0.25


@dataclass(frozen=True)
class CampaignConfig:
    """What to fuzz, for how long, and where the results go."""

    out: Path
    budget_seconds: float
    seed: int = 0
    backend: str = "engine"        # an importable module that speaks torch
    max_steps: int = 6
    ops: tuple[str, ...] | None = None  # default: the whole op table
    database: Path | str | None = None  # example database: a directory or a Redis URL; default <out>/.hypothesis
    max_findings: int | None = None
    shrink_seconds: float | None = None  # per finding; default SHRINK_SHARE of the budget
    command: str = ""              # the command line, recorded in meta.json
    workers: int = 1               # shards: local worker processes (fuzz.workers) or Dask tasks
    scheduler: str | None = None   # a Dask scheduler's address: the shards run on its workers (fuzz.distributed)
    worker: int = 0                # this shard's index: worker k > 0 draws from its own seeds
    mutant: str | None = None      # a fuzz.mutants bug patched into this process's engine first
    autograd_features: bool | None = None  # see fuzz.strategies.programs (default: only without ops)
    # Run a one-worker campaign in a worker process too (fuzz.workers), which a crash of torch or the
    # backend does not end: the crash is recorded and the search goes on (`gradfuzz run` does; not
    # `--in-process`, for debuggers and profilers).
    isolated: bool = False
    # A worker started again after its process died: the example its search begins at (the ones before
    # are not drawn, see fuzz.strategies.example_rngs), and whether it replays the stored failures.
    first_example: int = 0
    replay_stored: bool = True

    @property
    def program_options(self) -> dict:
        """The program builder's options (`fuzz.strategies.programs`, `fast_examples`)."""
        return {"ops": self.ops, "max_steps": self.max_steps, "autograd_features": self.autograd_features}

    def run_seed(self, run_index: int) -> int:
        """The seed of run ``run_index`` of this shard (worker 0 of any run is the 1-worker run): run 0 seeds
        the search's random programs, run k > 0 the k-th Hypothesis run (replay or shrink)."""
        shard = f"{self.seed}:{run_index}" if self.worker == 0 else f"{self.seed}:w{self.worker}:{run_index}"
        return random.Random(shard).getrandbits(64)

    @property
    def shrink_limit(self) -> float:
        if self.shrink_seconds is not None:
            return self.shrink_seconds
        return max(MIN_SHRINK_SECONDS, SHRINK_SHARE * self.budget_seconds)


@dataclass
class Summary:
    """Counts over every program run (shrinking included) and the findings' records."""

    status: str = COMPLETED
    examples: int = 0
    valid: int = 0          # torch ran the program without raising
    raised_both: int = 0    # both backends raised
    forgiven: int = 0       # matched only after differences judged rounding or summation order (fuzz.compare)
    crashes: int = 0        # worker processes that died (fuzz.workers); their last examples have no verdicts
    duration_seconds: float = 0.0
    verdicts: Counter = field(default_factory=Counter)
    ops: dict = field(default_factory=lambda: defaultdict(_counts))
    # op -> feature (see op_features) -> counts: what the report's coverage matrix shows
    coverage: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(_counts)))
    findings: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"type": "summary", "status": self.status, "examples": self.examples, "valid": self.valid,
                "raised_both": self.raised_both, "forgiven": self.forgiven, "crashes": self.crashes, "duration_seconds": round(self.duration_seconds, 3),
                "verdicts": {MATCH: 0, **self.verdicts}, "ops": {op: dict(counts) for op, counts in sorted(self.ops.items())},
                "coverage": {op: {feature: dict(counts) for feature, counts in features.items()}
                             for op, features in sorted(self.coverage.items())},
                "findings": len(self.findings), "torch_at_fault": len(self.findings) - len(self.engine_findings)}

    @property
    def engine_findings(self) -> list[dict]:
        """The findings the backend under test is not cleared of: all but those where torch's
        gradient disagrees with finite differences and the backend's agrees (torch bugs)."""
        return [finding for finding in self.findings if finding.get("at_fault") != "torch"]


def _counts() -> dict:
    return {"examples": 0, "findings": 0}


def count_finding(summary: Summary, op: str, features) -> None:
    """Count one finding against its op and the features its program exercised."""
    summary.ops[op]["findings"] += 1
    for feature in features:
        summary.coverage[op][feature]["findings"] += 1


def op_features(program: Program, torch_outcome: Outcome) -> dict[str, set[str]]:
    """Per op of the program, the features its calls exercised in torch's run.

    A step's result dtype ("float32", "float64"); "broadcast" when its tensor
    operands differ in shape; "error" when torch raised at the step or in the
    action after it.
    """
    shapes = {tensor.name: tuple(tensor.shape) for tensor in program.inputs}  # validated against the values
    results = {result.ref: result for result in torch_outcome.values}
    features: dict[str, set[str]] = defaultdict(set)
    for step in program.steps:
        result = results.get(step.out)
        if result is None:
            break
        found = features[step.op]
        if result.error is not None:
            found.add("error")
            break
        shapes[step.out] = result.value.shape
        found.add(result.value.dtype)
        if len({shapes[name] for name in step.refs()}) > 1:
            found.add("broadcast")
    if torch_outcome.error is not None and torch_outcome.error.where == "action":
        for op in program.ops():
            features[op].add("error")
    return features


class _StopCampaign(BaseException):
    """Raised inside the Hypothesis test to end the campaign; not a test failure."""

    def __init__(self, status: str):
        super().__init__(status)
        self.status = status


class _StopShrinking(BaseException):
    """Raised inside the Hypothesis test when shrinking one finding has had its time."""


class _NewDivergence(Exception):
    """The test failure Hypothesis shrinks: a divergence with the signature being hunted."""


@dataclass(frozen=True)
class _Failure:
    program: Program
    verdict: Verdict
    engine: Outcome
    torch: Outcome
    examples: int  # when the signature was first seen, before shrinking
    seconds: float


def load_backend(name: str) -> ModuleType:
    """Import the backend module by name; ValueError if it cannot be imported or does not speak torch."""
    try:
        module = importlib.import_module(name)
    except Exception as error:  # noqa: BLE001  (any import failure is a bad --backend)
        raise ValueError(f"cannot import backend module {name!r}: {type(error).__name__}: {error}") from error
    missing = [attribute for attribute in ("tensor", "float32", "float64") if not hasattr(module, attribute)]
    if missing:
        raise ValueError(f"backend module {name!r} does not speak torch: it has no {', '.join(missing)}")
    return module


def without_step(program: Program, index: int) -> Program | None:
    """``program`` without step ``index``, its readers (and the action) reading the step's first
    operand instead, inputs nobody reads any more dropped; None if that is no valid program (a
    step without a tensor operand whose output is read).
    """
    step = program.steps[index]
    refs = step.refs()
    first = refs[0] if refs else None

    def rename(name: str) -> str:
        return first if name == step.out else name
    later = [other.renamed(rename, other.out) for other in program.steps[index + 1:]]
    if first is None and (any(step.out in other.refs() for other in program.steps[index + 1:])
                          or program.action.target == step.out):
        return None
    steps = program.steps[:index] + tuple(later)
    action = replace(program.action, target=rename(program.action.target))
    read = {name for other in steps for name in other.refs()} | {action.target}
    try:
        return Program(tuple(tensor for tensor in program.inputs if tensor.name in read), steps, action,
                       program.format)
    except ValueError:
        return None


def slug(signature: str) -> str:
    """A file name for a signature: ``gradient|mul|float32`` -> ``gradient-mul-float32``.

    Op names differ by case alone (``T`` and ``t``): a name with capitals gets a short
    digest of the signature, so no two findings share a file, on case-insensitive file
    systems too.
    """
    name = re.sub(r"[^a-z0-9]+", "-", signature.lower()).strip("-")
    if signature != signature.lower():
        name += "-" + hashlib.sha1(signature.encode()).hexdigest()[:6]
    return name


def run_campaign(config: CampaignConfig, *, console: Console | None = None) -> Summary:
    """Fuzz ``config.backend`` against torch until the budget is spent; write the results directory.

    Ctrl-C ends the campaign with status "interrupted" after writing the
    findings so far, the summary and the HTML; it is not re-raised.
    """
    console = console or Console(stderr=True)
    if config.scheduler is not None:
        from fuzz.distributed import run_distributed
        return run_distributed(config, console=console)
    if config.workers > 1 or config.isolated:
        from fuzz.workers import run_parallel
        return run_parallel(config, console=console)
    if config.mutant:
        from fuzz.mutants import apply_mutant
        apply_mutant(config.mutant)
    # Programs are tiny: one torch thread is fastest (more spin-wait on each other's cores), as in workers.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        backend = load_backend(config.backend)
        warm_up_torch(backend)  # before the clock starts, as worker processes do
        return _Campaign(config, backend, console).run()
    finally:
        torch.set_num_threads(threads)


REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
# How long a Redis database keeps an entry nobody reads (Hypothesis' default is 8 days; a failure found
# by a monthly campaign should still be replayed by the next one).
REDIS_EXPIRY = timedelta(days=400)


def example_database(location: Path | str) -> ExampleDatabase:
    """The Hypothesis example database at ``location``: a directory, or the URL of a Redis server
    (``redis://host:6379/0``), which shards on several machines share.

    Raises ValueError, saying what to install, for a Redis URL without the redis package.
    """
    if isinstance(location, str) and location.startswith(REDIS_SCHEMES):
        try:
            import redis
            from hypothesis.extra.redis import RedisExampleDatabase
        except ImportError as error:
            raise ValueError(f"a Redis example database needs the redis package ({error}): "
                             "pip install 'gradfuzz[distributed]'") from None
        return RedisExampleDatabase(redis.Redis.from_url(location), expire_after=REDIS_EXPIRY,
                                    key_prefix=b"gradfuzz:")
    return DirectoryBasedExampleDatabase(location)


def prepare_directory(config: CampaignConfig, meta: dict) -> None:
    """Start a results directory: drop the previous run's files, write meta.json and an empty results.jsonl.

    meta.json is complete from the start, so a killed run still leaves a loadable directory.
    """
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    for owned in ("findings", "repro"):
        shutil.rmtree(out / owned, ignore_errors=True)
        (out / owned).mkdir()
    _write_synced(out / "meta.json", json.dumps(meta, indent=2) + "\n")
    _write_synced(out / "results.jsonl", "")


def append_record(out: Path, record: dict) -> None:
    """Append one line to ``out/results.jsonl`` and fsync it: a SIGKILL loses at most the line being written."""
    with open(out / "results.jsonl", "a") as results:
        results.write(json.dumps(record) + "\n")
        results.flush()
        os.fsync(results.fileno())


def write_finding(out: Path, record: dict, verdict: dict, script: str | None) -> None:
    """A finding's reproducer (if it has one), its findings/<slug>.json, then its results.jsonl line (last: the
    index of record)."""
    if script is not None:
        _write_synced(out / record["reproducer"], script)
    _write_synced(out / record["finding_file"], json.dumps({**record, "verdict": verdict}, indent=2) + "\n")
    append_record(out, record)


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())


class _Offer(ExampleDatabase):
    """The campaign's database as one Hypothesis run sees it: one entry to replay.

    A new failure's choices are offered under the secondary key: Hypothesis
    replays secondary entries in its reuse phase and shrinks those that fail
    (a primary entry that replays exactly is taken as shrunk already). A stored
    failure is offered under the primary key (``stored=True``): it is replayed,
    not shrunk again. Writes (a shrunk program, under the primary key) go to the
    campaign's database, so the next campaign replays the finding first.
    """

    def __init__(self, database: ExampleDatabase, blob: bytes, *, stored: bool = False):
        super().__init__()
        self.database, self.blob, self.stored = database, blob, stored

    def fetch(self, key: bytes):
        secondary, pareto = key.endswith(b".secondary"), key.endswith(b".pareto")
        if (secondary and not self.stored) or (self.stored and not secondary and not pareto):
            yield self.blob

    def save(self, key: bytes, value: bytes) -> None:
        self.database.save(key, value)

    def delete(self, key: bytes, value: bytes) -> None:
        self.database.delete(key, value)

    def move(self, src: bytes, dest: bytes, value: bytes) -> None:
        self.database.move(src, dest, value)


class KeepFailures(ExampleDatabase):
    """An example database that never forgets a failing example because it passed once.

    Hypothesis deletes a stored failure when replaying it no longer fails. In a
    campaign a stored failure passes on purpose: its signature is known and
    ignored by later Hypothesis runs. Dropping those deletions (from the
    primary key only; shrinking moves examples, which still happens) keeps
    every finding for the next campaign, which replays it first.
    """

    def __init__(self, database: ExampleDatabase):
        super().__init__()
        self.database = database

    def save(self, key: bytes, value: bytes) -> None:
        self.database.save(key, value)

    def fetch(self, key: bytes):
        return self.database.fetch(key)

    def delete(self, key: bytes, value: bytes) -> None:
        if key.endswith((b".secondary", b".pareto")):
            self.database.delete(key, value)

    def move(self, src: bytes, dest: bytes, value: bytes) -> None:
        self.database.move(src, dest, value)


def warm_up_torch(backend: ModuleType | None = None) -> None:
    """Import what torch would import in the middle of the first program that needs it; with
    ``backend``, also pay the backend's one-off costs of a first program.

    NOTE: torch 2.13 wraps some Python backward formulas (reached by double backward through
    decomposed ops) in `torch._disable_dynamo`, which imports torch._dynamo on its first call:
    1.5 s of CPU (2-5 s under load) inside one example, in every process. It cannot be avoided
    without leaving those programs out, so each process searching does it before its clock starts.
    A backend may have such costs too (the engine checks its BLAS's fused multiply-add once per
    dtype, on the first `add(x, y, alpha=a)`: 80-230 ms): `_WARM_UP_PROGRAMS` run on it once
    (their outcomes are not compared or counted; a failure in them is the first example's to find).
    """
    import torch._dynamo  # noqa: F401
    if None not in _WARMED_UP:
        _WARMED_UP.add(None)
        # The program builder's first programs pay for its tables (value pools by kind, each op's
        # samples by rank) and torch's first calls of a kind (torch.tensor of each dtype, ...): its
        # per-op tables are filled, and programs drawn here from a stream of their own (the search's
        # programs do not change).
        strategies.warm_up()
        for _ in itertools.islice(fast_examples(random.Random(WARM_UP_SEED), max_steps=10), WARM_UP_EXAMPLES):
            pass
    if backend is None or backend.__name__ in _WARMED_UP:
        return
    _WARMED_UP.add(backend.__name__)
    for program in _WARM_UP_PROGRAMS:
        try:
            interpreter.run(program, backend)
        except Exception:  # noqa: BLE001  (a program the interpreter cannot run on it: the search will say)
            pass


_WARMED_UP: set[str | None] = set()  # what this process warmed up: None (torch, the builder), backends by name
WARM_UP_SEED, WARM_UP_EXAMPLES = 2 ** 32 + 1, 100  # (~0.1 s)
# y + alpha * x and its gradient, in each dtype (what a campaign's first programs run most).
_WARM_UP_PROGRAMS = tuple(
    Program(inputs=(Input("x0", (3,), dtype, [1.0, -2.0, 0.5], True), Input("x1", (3,), dtype, [0.25, 3.0, -1.0], True)),
            steps=(Step("add", "function", (Ref("x0"), Ref("x1")), {"alpha": 2.0}, "v0"),
                   Step("mul", "operator", (Ref("v0"), Ref("x0")), {}, "v1"),
                   Step("sum", "method", (Ref("v1"),), {"dim": 0}, "v2")),
            action=Action(SUM_BACKWARD, "v2"))
    for dtype in ("float32", "float64"))


class _Campaign:
    def __init__(self, config: CampaignConfig, backend: ModuleType, console: Console):
        self.config = config
        self.backend = backend
        self.console = console
        self.summary = Summary()
        self.known: set[str] = set()
        self.hunted: str | None = None       # the signature Hypothesis is shrinking
        self.smallest: _Failure | None = None  # the last (so smallest) failing program with that signature
        self.first_sighting = (0, 0.0)       # examples and seconds when the hunted signature first showed
        self.hunt_started = 0.0
        # New signatures seen while another one was being shrunk, by signature: the
        # next Hypothesis runs usually meet them again and shrink them; those they
        # do not are recorded unshrunk when the campaign ends.
        self.unhunted: dict[str, _Failure] = {}
        self.last_drawn: tuple[Program | None, Outcome | None] = (None, None)
        self.started = time.monotonic()
        self.deadline = self.started + config.budget_seconds
        self.next_refresh = 0.0
        self.example = -1  # the search's example now (-1: none yet)

    def run(self) -> Summary:
        self.start()
        columns = [TextColumn("[bold]{task.description}"), TextColumn("{task.fields[status]}"), TimeElapsedColumn()]
        with Progress(*columns, console=self.console, transient=False) as progress:
            self.progress, self.task = progress, progress.add_task(f"fuzzing {self.config.backend}", status="")
            try:
                self.search()
            except KeyboardInterrupt:
                self.summary.status = INTERRUPTED
            self.refresh(force=True)
        return self.conclude()

    def conclude(self) -> Summary:
        """Keep what a stopped search still holds, then write the summary."""
        if self.smallest is not None:  # stopped while shrinking: keep the smallest program so far
            self.record(self.smallest, shrunk=False)
        for signature, failure in self.unhunted.items():
            if signature not in self.known and not self.enough_findings():
                self.record(failure, shrunk=False)
        self.summary.duration_seconds = time.monotonic() - self.started
        self.finish()
        return self.summary

    def start(self) -> None:
        # The directory describes one run: drop the previous run's findings.
        prepare_directory(self.config, self.meta())

    def finish(self) -> None:
        append_record(self.config.out, self.summary.to_json())

    def search(self) -> None:
        """Replay the stored failures, then search with fast random programs until the budget or
        max_findings stops it, shrinking each new divergence through Hypothesis."""
        config = self.config
        self.database = KeepFailures(example_database(config.database or config.out / ".hypothesis"))
        self.runs = 0
        try:
            # Stored failures first, one Hypothesis run each (a run stops at its first failure).
            stored = self.database.fetch(function_digest(self.hypothesis_test(self.database, 0).hypothesis.inner_test)) \
                if config.replay_stored else ()
            for blob in sorted(stored, key=lambda blob: (len(blob), blob)):
                self.hypothesis_run(_Offer(self.database, blob, stored=True))
                if self.enough_findings():
                    self.summary.status = MAX_FINDINGS_REACHED
                    return
            search = fast_examples(random.Random(config.run_seed(0)), start=config.first_example,
                                   **config.program_options)
            for program, torch_outcome, source in self.marked(search):
                failure = self.check(program, torch_outcome)
                if failure is None:
                    continue
                earlier = self.unhunted.pop(failure.verdict.signature, None)
                self.hunted, self.hunt_started = failure.verdict.signature, time.monotonic()
                self.first_sighting = (earlier.examples, earlier.seconds) if earlier else \
                    (failure.examples, failure.seconds)
                self.smallest = replace(failure, examples=self.first_sighting[0], seconds=self.first_sighting[1])
                if not self.hypothesis_run(_Offer(self.database, choices_blob(source))):
                    # Hypothesis did not see it again (the backend has state): report it as it was found.
                    self.record(self.smallest, shrunk=False)
                    self.hunted = self.smallest = None
                if self.enough_findings():
                    self.summary.status = MAX_FINDINGS_REACHED
                    return
        except _StopCampaign as stop:
            self.summary.status = stop.status

    def enough_findings(self) -> bool:
        return self.config.max_findings is not None and len(self.summary.findings) >= self.config.max_findings

    def marked(self, examples):
        """``examples`` (`fast_examples` from ``config.first_example`` on), each announced to `at_example`
        before it is drawn (drawing runs torch too)."""
        self.example = self.config.first_example
        while True:
            self.at_example(self.example)
            yield next(examples)
            self.example += 1

    def at_example(self, index: int, *, hypothesis: bool = False) -> None:
        """Hook for worker processes: the search draws and runs example ``index`` now, or (``hypothesis``)
        a Hypothesis run replays or shrinks (`fuzz.workers` keeps this where the parent can read it if
        the process dies)."""

    def hypothesis_run(self, database: ExampleDatabase) -> bool:
        """One Hypothesis run that replays ``database``'s entries (and generates nothing); a failing
        entry is shrunk (unless it replays a stored one exactly) and recorded. Whether a finding was
        recorded."""
        self.runs += 1
        self.at_example(self.example, hypothesis=True)
        try:
            self.hypothesis_test(database, self.config.run_seed(self.runs))()
        except (_NewDivergence, _StopShrinking, Flaky) as stop:
            # Flaky: the backend did not diverge again on the same program (it has state);
            # the program that diverged is still worth a report.
            if self.smallest is not None:
                if not isinstance(stop, Flaky) and len(self.smallest.program.steps) > 1:
                    # (after a finished shrink too: Hypothesis can leave a step that only passes the
                    # gradient on, where removing it needs choices changed in two places)
                    self.smallest = self.trimmed(self.smallest)
                self.record(self.smallest, shrunk=isinstance(stop, _NewDivergence))
            self.hunted = self.smallest = None
            return True
        except unittest.SkipTest:  # Hypothesis' word for a database with nothing to replay
            pass
        return False

    def hypothesis_test(self, database: ExampleDatabase, run_seed: int) -> Callable[[], None]:
        config = self.config

        # The strategy reports torch's outcome of each program it draws (see shrink_check).
        # NOTE: Hypothesis keys the example database by the test's source text, decorators
        # included for a nested function: changing the lines below would orphan the failures
        # earlier campaigns stored.
        programs = functools.partial(traced_programs, self.drawn)

        # NOTE: @seed outside @settings would switch the database off (Hypothesis does that for
        # reproducible seeds); inside, the settings' database still replays its entries.
        @settings(database=database, max_examples=10**9, deadline=None, suppress_health_check=list(HealthCheck),
                  phases=(Phase.reuse, Phase.shrink), report_multiple_bugs=False, verbosity=Verbosity.quiet,
                  print_blob=False)
        @hypothesis.seed(run_seed)
        @given(programs(**config.program_options))
        def gradfuzz_campaign(program: Program) -> None:
            self.shrink_check(program)

        return gradfuzz_campaign

    def check(self, program: Program, torch_outcome: Outcome | None = None) -> _Failure | None:
        """Run, compare, count; the failure if the program diverges with a signature not known.
        ``torch_outcome``: torch's, if known already (the program builder's, `fast_examples`)."""
        interrupts.check()  # a Ctrl-C or SIGTERM whose KeyboardInterrupt Python dropped
        if time.monotonic() > self.deadline:
            raise _StopCampaign(COMPLETED)
        self.poll()
        engine_outcome = interpreter.run(program, self.backend)
        if torch_outcome is None:
            torch_outcome = oracle.run_torch(program)
        verdict = compare(engine_outcome, torch_outcome, program, backend=self.backend, adjudicate=False)
        self.count(program, verdict, engine_outcome, torch_outcome)
        self.refresh()
        if not verdict.diverged or verdict.signature in self.known:
            return None
        return _Failure(program, verdict, engine_outcome, torch_outcome, self.summary.examples,
                        time.monotonic() - self.started)

    def shrink_check(self, program: Program) -> None:
        """The Hypothesis test body: `check`, failing only on the hunted signature (the first new one
        when replaying stored failures)."""
        if self.hunted is not None and time.monotonic() > self.hunt_started + self.config.shrink_limit:
            raise _StopShrinking
        drawn, torch_outcome = self.last_drawn
        failure = self.check(program, torch_outcome if drawn is program else None)
        if failure is None:
            return
        signature = failure.verdict.signature
        if self.hunted is None:
            earlier = self.unhunted.pop(signature, None)
            self.hunted, self.hunt_started = signature, time.monotonic()
            self.first_sighting = (earlier.examples, earlier.seconds) if earlier else (failure.examples, failure.seconds)
        if signature == self.hunted:
            self.smallest = replace(failure, examples=self.first_sighting[0], seconds=self.first_sighting[1])
            raise _NewDivergence(signature)
        self.unhunted.setdefault(signature, failure)

    def trimmed(self, failure: _Failure) -> _Failure:
        """``failure`` without the steps its signature does not need, after Hypothesis' shrink (stopped
        at the shrink limit, or finished): each step in turn, last first, is dropped (its readers read
        its first operand instead) while the program still diverges with the same signature.

        Hypothesis shrinks the ~40 choices a program is drawn from; under load a 60 s campaign's 10 s
        limit often ends that before it has tried dropping the steps that only pass the gradient on
        (a neg, clone or retain_grad before the op at fault). A few runs of the program (at most one
        per step and success) do that here. At most TRIM_SHARE of the shrink limit (at least
        MIN_TRIM_SECONDS) is spent; the runs are not counted as examples.
        """
        until = time.monotonic() + max(MIN_TRIM_SECONDS, TRIM_SHARE * self.config.shrink_limit)
        signature = failure.verdict.signature
        index = len(failure.program.steps) - 1
        while index >= 0 and time.monotonic() < until:
            candidate = without_step(failure.program, index)
            index -= 1
            if candidate is None:
                continue
            interrupts.check()
            engine_outcome = interpreter.run(candidate, self.backend)
            torch_outcome = oracle.run_torch(candidate)
            verdict = compare(engine_outcome, torch_outcome, candidate, backend=self.backend, adjudicate=False)
            if verdict.diverged and verdict.signature == signature:
                failure = replace(failure, program=candidate, verdict=verdict, engine=engine_outcome,
                                  torch=torch_outcome)
        return failure

    def drawn(self, program: Program, torch_outcome: Outcome | None) -> None:
        """The Hypothesis strategy's report of the program it drew for the test and torch's outcome of it."""
        self.last_drawn = (program, torch_outcome)

    def poll(self) -> None:
        """Hook for parallel shards: learn signatures other workers found (see fuzz.workers)."""

    def count(self, program: Program, verdict: Verdict, engine: Outcome, torch_: Outcome) -> None:
        summary = self.summary
        summary.examples += 1
        summary.valid += torch_.error is None
        summary.raised_both += engine.error is not None and torch_.error is not None
        summary.forgiven += int(bool(verdict.notes) and not verdict.diverged)
        summary.verdicts[verdict.kind] += 1
        for op in set(program.ops()):
            summary.ops[op]["examples"] += 1
        for op, features in op_features(program, torch_).items():
            for feature in features:
                summary.coverage[op][feature]["examples"] += 1

    def record(self, failure: _Failure, *, shrunk: bool) -> None:
        verdict = adjudicated(failure.verdict, failure.program, failure.engine, failure.torch)
        name = slug(verdict.signature)
        self.known.add(verdict.signature)
        record = {
            "type": "finding", "signature": verdict.signature, "kind": verdict.kind, "op": verdict.op,
            "dtype": verdict.dtype, "where": verdict.where, "detail": verdict.detail,
            "adjudication": verdict.adjudication, "at_fault": "torch" if verdict.torch_at_fault else "engine",
            "steps": len(failure.program.steps), "shrunk": shrunk,
            "backend": self.config.backend, "program": failure.program.to_json(),
            "reproducer": f"repro/{name}.py", "finding_file": f"findings/{name}.json",
            "found_after_examples": failure.examples, "found_after_seconds": round(failure.seconds, 3),
            "outcomes": {"engine": failure.engine.to_json(), "torch": failure.torch.to_json()},
        }
        features = sorted(op_features(failure.program, failure.torch).get(verdict.op, ()))
        if not self.emit(record, verdict.to_json(),
                         render_script(failure.program, backend=self.config.backend, verdict=verdict), features):
            return
        self.summary.findings.append(record)
        if verdict.op is not None:
            count_finding(self.summary, verdict.op, features)
        blame = " [yellow](torch disagrees with finite differences; the backend agrees)[/yellow]" \
            if verdict.torch_at_fault else ""
        self.console.print(f"[red]finding[/red] {verdict.signature} ({len(failure.program.steps)} steps){blame}: "
                           f"{verdict.detail}", highlight=False, soft_wrap=True)

    def emit(self, record: dict, verdict: dict, script: str, features: list[str]) -> bool:
        """Write one finding; False if it is not new (parallel shards override this)."""
        write_finding(self.config.out, record, verdict, script)
        return True

    def refresh(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self.next_refresh:
            return
        self.next_refresh = now + PROGRESS_REFRESH_SECONDS
        elapsed = max(now - self.started, 1e-9)
        summary = self.summary
        self.progress.update(self.task, status=(
            f"{summary.examples} examples  {summary.examples / elapsed:.0f}/s  "
            f"{len(summary.findings)} findings  {max(self.deadline - now, 0):.0f}s left"))

    def meta(self) -> dict:
        config = self.config
        return {
            "gradfuzz": _version("gradfuzz"),
            "torch": torch.__version__,
            "numpy": numpy.__version__,
            "hypothesis": hypothesis.__version__,
            "python": platform.python_version(),
            "backend": config.backend,
            "backend_version": getattr(self.backend, "__version__", None),
            "seed": config.seed,
            "budget_seconds": config.budget_seconds,
            "max_steps": config.max_steps,
            "ops": list(config.ops) if config.ops else None,
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": config.command or " ".join(sys.argv),
            "workers": config.workers,
            "scheduler": config.scheduler,
            "database": _without_credentials(config.database),
            "mutant": config.mutant,
            "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                        "cpus": os.cpu_count()},
        }


def _without_credentials(location: Path | str | None) -> str | None:
    """A database location as meta.json records it: a URL without its user and password."""
    if location is None or not str(location).startswith(REDIS_SCHEMES):
        return None if location is None else str(location)
    parts = urllib.parse.urlsplit(str(location))
    host = parts.hostname or ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{host}:{parts.port}" if parts.port else host))


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None  # running from a source tree that is not installed
