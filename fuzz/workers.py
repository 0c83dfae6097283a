"""A campaign over local worker processes sharing one Hypothesis example database.

Each worker is one shard: a `fuzz.campaign` search in its own process, with
its own seeds (derived from the campaign seed and the worker index; worker 0
draws exactly what a one-worker campaign draws) and the campaign's
`DirectoryBasedExampleDatabase`, so a failure any worker stored is replayed
by every later campaign. Workers send their findings to this (parent)
process, which keeps the first of each signature, writes it to the results
directory at once (fsync'd) and tells the other workers to stop hunting it.

A worker process that dies (torch or the backend crashed: SIGSEGV, SIGABRT, the
kernel's out-of-memory kill) does not end the campaign: the parent records a
`crash` finding (the signal, the example the worker was drawing or running,
Python's stack at the crash from `faulthandler`, and a reproducer that draws
that example again) and starts the worker again at the next example, without
replaying the stored failures (see `CampaignConfig.first_example`). A one-worker
`gradfuzz run` is such a worker too (`CampaignConfig.isolated`).

Ctrl-C reaches every process of the group: the workers stop, report their
last counts, and the parent writes the merged summary. An interrupt of the
parent alone (`kill -INT`, a scheduler's stop) is passed on to the workers
through their inboxes, with the same result. If the parent is
killed, the workers notice (their parent changes) and stop; the results
directory holds meta.json and every finding written so far, and
`gradfuzz report` renders it.

Past one machine, the same shards run on Dask distributed workers, sharing
the database through Redis (`fuzz.distributed`): the coordinator and the
shards below talk through a transport (a pipe each way per worker process
here, Dask queues there), and nothing else differs.

The local transport has no locks and no sending threads: a process that dies
while it reads or writes cannot block the others or its successor (a
multiprocessing queue, whose write lock every writer shares, can be left
locked by a process killed while its feeder thread held the lock; the parent
then hears nothing more from anyone).
"""
from __future__ import annotations

import faulthandler
import multiprocessing
import multiprocessing.connection
import os
import re
import shutil
import signal
import sysconfig
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from types import ModuleType

from rich.console import Console
from rich.progress import Progress, TextColumn, TimeElapsedColumn

from fuzz import interrupts
from fuzz.campaign import (COMPLETED, INTERRUPTED, PROGRESS_REFRESH_SECONDS, CampaignConfig, Summary, _Campaign,
                           _StopCampaign, append_record, count_finding, load_backend, prepare_directory, slug,
                           warm_up_torch, write_finding)
from fuzz.repro import render_crash_script

ORPHANED = "orphaned"
# What the parent puts in a worker's inbox to stop it (besides the signatures of known findings).
STOP = "__stop__"
# How long the parent waits for workers to report after the budget or Ctrl-C.
GRACE_SECONDS = 30.0
# Worker processes started again after dying, at most, in one campaign (a backend that crashes on
# every program should not keep the campaign starting processes), and the budget a new one needs left.
MAX_RESTARTS, MIN_RESTART_SECONDS = 20, 5.0
# One frame of faulthandler's stack: '  File "/path/to/file.py", line 12 in function'.
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+) in (?P<function>\S+)', re.MULTILINE)


def run_parallel(config: CampaignConfig, *, console: Console) -> Summary:
    """Run ``config.workers`` shards and merge their findings into ``config.out``."""
    return _Coordinator(config, console).run()


class _Coordinator:
    """Starts the shards, shows their progress, writes their findings and merges their counts.

    The transport is this class's local one: worker processes and a pipe each way per process
    (`fuzz.distributed` overrides `start`, `alive`, `next_events`, `tell` and `stop`).
    """

    where = "workers"

    def __init__(self, config: CampaignConfig, console: Console):
        self.config = config
        self.console = console
        self.summary = Summary()
        self.started = time.monotonic()
        self.examples: dict[int, int] = {}
        self.finished: dict[int, dict] = {}
        self.lost_examples = 0  # the last counts of worker processes that died
        self.crashes = 0
        # When the shards' budgets end on the wall clock: the campaign's, or the latest a local worker
        # reported (it searches for the whole budget from the moment it is ready, see `start`).
        self.latest_end = time.time() + config.budget_seconds

    def run(self) -> Summary:
        config = self.config
        backend = load_backend(config.backend)
        prepare_directory(config, _Campaign(config, backend, self.console).meta())
        self.start(self.latest_end)
        columns = [TextColumn("[bold]{task.description}"), TextColumn("{task.fields[status]}"), TimeElapsedColumn()]
        with Progress(*columns, console=self.console, transient=False) as progress:
            where = self.where if config.workers != 1 else self.where[:-1]   # "1 worker", "1 Dask task"
            task = progress.add_task(f"fuzzing {config.backend} ({config.workers} {where})", status="")
            try:
                while (len(self.finished) < config.workers
                       and time.time() < self.latest_end + GRACE_SECONDS + config.shrink_limit):
                    self.receive(timeout=PROGRESS_REFRESH_SECONDS)
                    interrupts.check()  # a Ctrl-C or SIGTERM whose KeyboardInterrupt Python dropped
                    for index in self.crashed():
                        self.revive(index)
                    if not self.alive():
                        self.receive(timeout=0)
                        break
                    progress.update(task, status=self.status_line())
            except KeyboardInterrupt:
                self.summary.status = INTERRUPTED
                for index in range(config.workers):  # (Ctrl-C in a terminal has told them already; a kill -INT has not)
                    self.tell(index, STOP)
                grace = time.monotonic() + GRACE_SECONDS
                while len(self.finished) < config.workers and time.monotonic() < grace:
                    try:
                        self.receive(timeout=PROGRESS_REFRESH_SECONDS)
                    except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
                        break
            progress.update(task, status=self.status_line())
        self.stop()
        self.merge()
        append_record(config.out, self.summary.to_json())
        return self.summary

    # -- the transport: local worker processes ----------------------------------------

    def start(self, ends: float) -> None:
        """Start the shards; ``ends`` is the budget's end on the wall clock (Dask shards end then; a local
        worker process searches for the whole budget from the moment it is ready, and reports when
        that ends: starting an interpreter with torch takes seconds, more on a busy machine)."""
        # spawn: a fresh interpreter per worker (torch's thread pools do not survive fork).
        self.context = multiprocessing.get_context("spawn")
        # Until a worker reports its end; one that dies before it reports gets until `latest_end`.
        self.ends = {index: None for index in range(self.config.workers)}
        # Per worker process: the parent's ends of its two pipes (None once it closed its events pipe).
        self.events: dict[int, multiprocessing.connection.Connection | None] = {}
        self.inboxes: dict[int, multiprocessing.connection.Connection | None] = {}
        # Per worker: the example it draws or runs, and 1 while a Hypothesis run replays or shrinks.
        self.marks = [self.context.RawArray("q", 2) for _ in range(self.config.workers)]
        self.faults = Path(tempfile.mkdtemp(prefix="gradfuzz-faults-"))  # faulthandler's stacks
        self.configs = [replace(self.config, worker=index) for index in range(self.config.workers)]
        self.processes = [self.launch(index) for index in range(self.config.workers)]

    def launch(self, index: int):
        """Start worker ``index``'s process with its config (``self.configs[index]``)."""
        self.marks[index][:] = [self.configs[index].first_example - 1, 0]
        (self.faults / f"worker-{index}.txt").unlink(missing_ok=True)
        for connection in (self.events.get(index), self.inboxes.get(index)):  # a dead predecessor's
            if connection is not None:
                connection.close()
        events, events_end = self.context.Pipe(duplex=False)
        inbox_end, inbox = self.context.Pipe(duplex=False)
        channel = _LocalChannel(events_end, inbox_end, os.getpid(), self.marks[index],
                                str(self.faults / f"worker-{index}.txt"))
        process = self.context.Process(target=_worker_main, name=f"gradfuzz-worker-{index}", daemon=True,
                                       args=(self.configs[index], channel, self.ends[index]))
        process.start()
        # The worker holds the only other ends: when it dies, reading its events ends (EOF, even in the
        # middle of a message) and writing to its inbox fails, instead of waiting for it.
        events_end.close()
        inbox_end.close()
        self.events[index], self.inboxes[index] = events, inbox
        return process

    def alive(self) -> bool:
        return any(process.is_alive() for process in self.processes)

    def crashed(self) -> list[int]:
        """The workers whose process died without reporting its end (killed by a signal, or exited)."""
        dead = [index for index, process in enumerate(self.processes)
                if index not in self.finished and not process.is_alive()]
        if dead:
            self.receive(timeout=0)  # a "done" sent just before the end is not a crash
        # (SIGINT and SIGTERM are stop requests that reached a worker before it could take them: not crashes)
        return [index for index in dead if index not in self.finished
                and self.processes[index].exitcode not in (0, -signal.SIGINT, -signal.SIGTERM)]

    def revive(self, index: int) -> None:
        """Record worker ``index``'s crash as a finding and start it again at the next example."""
        config, process = self.configs[index], self.processes[index]
        example, hypothesis = self.marks[index][0], bool(self.marks[index][1])
        stack_path = self.faults / f"worker-{index}.txt"
        stack = stack_path.read_text(errors="replace") if stack_path.exists() else ""
        self.record_crash(index, process.exitcode, example, hypothesis, stack)
        self.lost_examples += self.examples.pop(index, 0)
        self.crashes += 1
        self.ends[index] = ends = self.ends[index] or self.latest_end  # a new process gets what is left
        if self.crashes > MAX_RESTARTS or time.time() > ends - MIN_RESTART_SECONDS:
            self.finished[index] = None  # no more restarts: the campaign ends with the other workers
            return
        self.configs[index] = replace(config, first_example=max(example + 1, config.first_example),
                                      replay_stored=False)
        self.processes[index] = self.launch(index)
        for found in self.summary.findings:  # what the campaign found, as the other workers were told
            self.tell(index, found["signature"])

    def record_crash(self, index: int, exitcode: int, example: int, hypothesis: bool, stack: str) -> None:
        config = self.configs[index]
        cause = signal.Signals(-exitcode).name if exitcode < 0 and -exitcode in signal.valid_signals() \
            else f"exit status {exitcode}"
        frame = _crash_frame(stack)
        where = f"{frame['function']} ({Path(frame['file']).name}:{frame['line']})" if frame else "unknown"
        at_example = not hypothesis and example >= config.first_example
        if hypothesis:
            doing = (f"while a Hypothesis run replayed or shrank a failure (after example {example})"
                     if example >= 0 else "while a Hypothesis run replayed the stored failures")
        else:
            doing = f"drawing or running example {example}" if at_example else "while starting, before its first example"
        signature = f"crash|{cause}|{frame['function'] if frame else 'unknown'}"
        name = slug(signature)
        record = {
            "type": "finding", "signature": signature, "kind": "crash", "op": None, "dtype": None,
            "where": where, "detail": f"worker process {index} died ({cause}) {doing}, in {where}",
            "adjudication": None, "at_fault": _crashed_side(stack),
            "steps": None, "shrunk": False, "backend": config.backend, "program": None,
            "reproducer": f"repro/{name}.py", "finding_file": f"findings/{name}.json",
            "found_after_examples": sum(self.examples.values()) + self.lost_examples,
            "found_after_seconds": round(time.monotonic() - self.started, 3),
            "crash": {"worker": index, "exitcode": exitcode, "example": example, "hypothesis": hypothesis,
                      "seed": config.run_seed(0), "program_options": config.program_options,
                      "mutant": config.mutant, "stack": stack},
        }
        script = render_crash_script(record) if at_example else None
        if script is None:
            record["reproducer"] = None
        self.accept(index, record, {"kind": "crash", "signature": signature, "detail": record["detail"]},
                    script, [])

    def next_events(self, timeout: float) -> list:
        """The shards' events that arrived, waiting up to ``timeout`` seconds for the first."""
        open_ = {connection: index for index, connection in self.events.items() if connection is not None}
        if not open_:
            time.sleep(timeout)
            return []
        events = []
        for connection in multiprocessing.connection.wait(list(open_), timeout):
            try:
                while connection.poll():
                    events.append(connection.recv())
            except (EOFError, OSError):  # the process ended (a crash may cut its last message short)
                connection.close()
                self.events[open_[connection]] = None
        return events

    def tell(self, index: int, message: str) -> None:
        inbox = self.inboxes.get(index)
        try:
            if inbox is not None:
                inbox.send(message)
        except OSError:  # the process died (`crashed` finds it) or ended
            pass

    def stop(self) -> None:
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
        for connection in [*self.events.values(), *self.inboxes.values()]:
            if connection is not None:
                connection.close()
        shutil.rmtree(self.faults, ignore_errors=True)

    # ----------------------------------------------------------------------------------

    def receive(self, timeout: float) -> None:
        for event in self.next_events(timeout):
            self.handle(event)

    def handle(self, event: tuple) -> None:
        kind, worker, payload = event
        if kind == "progress":
            self.examples[worker] = payload
        elif kind == "started":  # a local worker is ready; its budget ends at `payload` on the wall clock
            self.ends[worker] = payload
            self.latest_end = max(self.latest_end, payload)
        elif kind == "finding":
            self.accept(worker, *payload)
        elif kind == "done":
            self.finished[worker] = payload  # after an "error" too: the counts it had
            self.examples[worker] = payload["examples"]
        elif kind == "error":
            self.console.print(f"[red]worker {worker} failed[/red]: {payload}", highlight=False)
            self.finished.setdefault(worker, None)

    def accept(self, worker: int, record: dict, verdict: dict, script: str, features: list[str]) -> None:
        """Keep the first finding of each signature; tell the other workers it is known."""
        signature = record["signature"]
        if any(found["signature"] == signature for found in self.summary.findings):
            return
        record = {**record, "worker": worker}
        write_finding(self.config.out, record, verdict, script)
        self.summary.findings.append(record)
        if record["op"] is not None:
            count_finding(self.summary, record["op"], features)
        for index in range(self.config.workers):
            if index != worker:
                self.tell(index, signature)
        size = f"{record['steps']} steps, " if record["steps"] is not None else ""
        self.console.print(f"[red]finding[/red] {signature} ({size}worker {worker}): "
                           f"{record['detail']}", highlight=False, soft_wrap=True)

    def status_line(self) -> str:
        examples = sum(self.examples.values()) + self.lost_examples
        crashes = f"  {self.crashes} crashes" if self.crashes else ""
        return (f"{examples} examples  {examples / max(time.monotonic() - self.started, 1e-9):.0f}/s  "
                f"{len(self.summary.findings)} findings{crashes}  {max(self.latest_end - time.time(), 0):.0f}s left")

    def merge(self) -> None:
        """Sum the workers' counts into the summary (findings are counted once, as accepted)."""
        summary = self.summary
        summary.examples += self.lost_examples
        summary.crashes = self.crashes
        statuses = Counter()
        for worker, examples in self.examples.items():
            if self.finished.get(worker) is None:  # it never reported back: its last progress count
                summary.examples += examples
        for worker_summary in self.finished.values():
            if worker_summary is None:
                continue
            statuses[worker_summary["status"]] += 1
            summary.examples += worker_summary["examples"]
            summary.valid += worker_summary["valid"]
            summary.raised_both += worker_summary["raised_both"]
            summary.forgiven += worker_summary.get("forgiven", 0)
            summary.verdicts.update(worker_summary["verdicts"])
            for op, counts in worker_summary["ops"].items():
                summary.ops[op]["examples"] += counts["examples"]
            for op, features in worker_summary["coverage"].items():
                for feature, counts in features.items():
                    summary.coverage[op][feature]["examples"] += counts["examples"]
        if summary.status != INTERRUPTED:
            summary.status = INTERRUPTED if statuses[INTERRUPTED] else COMPLETED
            if self.config.max_findings is not None and len(summary.findings) >= self.config.max_findings:
                summary.status = "max-findings"
        summary.duration_seconds = time.monotonic() - self.started


def _crashed_side(stack: str) -> str:
    """Whom a crash is blamed on: "torch" if it died while torch ran the program (the program builder
    evaluates each step on torch, the oracle runs programs the builder could not), or inside torch's
    own Python code; otherwise the backend under test ("engine", as for divergences)."""
    for frame in _FRAME.finditer(stack):
        path = Path(frame["file"])
        if path.name == "strategies.py" and path.parent.name == "fuzz" or path.parent.name == "oracle" \
                or "torch" in path.parts and "site-packages" in path.parts:
            return "torch"
    return "engine"


def _crash_frame(stack: str):
    """The innermost frame of faulthandler's ``stack`` outside Python's standard library (ctypes,
    threading), or None."""
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    frames = list(_FRAME.finditer(stack))
    for frame in frames:
        if not Path(frame["file"]).resolve().is_relative_to(stdlib):
            return frame
    return frames[0] if frames else None


class _LocalChannel:
    """A shard's side of the local transport: its ends of the two pipes to the parent (events
    out, messages in), and the parent's pid (a shard whose parent changed was orphaned).
    Events are written whole by the calling thread (no sending thread a crash could cut off)."""

    def __init__(self, events, inbox, parent: int, mark=None, faults: str | None = None):
        self.events, self.inbox, self.parent = events, inbox, parent
        self.mark = mark      # shared with the parent: [example, 1 if in a Hypothesis run]
        self.faults = faults  # where faulthandler writes Python's stack if the process dies

    def send(self, event: tuple) -> None:
        try:
            self.events.send(event)
        except OSError:  # the parent is gone: `orphaned` stops the shard
            pass

    def messages(self) -> list[str]:
        received = []
        try:
            while self.inbox.poll():
                received.append(self.inbox.recv())
        except (EOFError, OSError):  # the parent is gone: `orphaned` stops the shard
            pass
        return received

    def orphaned(self) -> bool:
        return os.getppid() != self.parent


class _Shard(_Campaign):
    """One worker's campaign: findings go to the parent, which writes them."""

    def __init__(self, config: CampaignConfig, backend: ModuleType, channel, ends: float | None):
        super().__init__(config, backend, Console(file=open(os.devnull, "w")))
        self.channel = channel
        if ends is None:  # the whole budget from now (the parent learns when it ends)
            channel.send(("started", config.worker, time.time() + config.budget_seconds))
        else:  # the parent's budget, on the wall clock (what is left of it)
            self.deadline = time.monotonic() + max(ends - time.time(), 0.0)
        self.next_poll = 0.0

    def start(self) -> None:  # the parent prepared the directory
        pass

    def finish(self) -> None:
        self.channel.send(("done", self.config.worker, self.summary.to_json()))

    def emit(self, record: dict, verdict: dict, script: str, features: list[str]) -> bool:
        self.channel.send(("finding", self.config.worker, (record, verdict, script, features)))
        return True

    def enough_findings(self) -> bool:
        # max_findings counts the parent's merged findings; a shard only knows its own and the others' it was told.
        return self.config.max_findings is not None and len(self.known) >= self.config.max_findings

    def poll(self) -> None:
        now = time.monotonic()
        if now < self.next_poll:
            return
        self.next_poll = now + PROGRESS_REFRESH_SECONDS
        if self.channel.orphaned():  # the parent was killed: nobody writes our findings any more
            raise _StopCampaign(ORPHANED)
        for message in self.channel.messages():
            if message == STOP:  # the parent was interrupted
                raise _StopCampaign(INTERRUPTED)
            self.known.add(message)
        if self.enough_findings():
            raise _StopCampaign("max-findings")
        self.channel.send(("progress", self.config.worker, self.summary.examples))

    def refresh(self, *, force: bool = False) -> None:
        pass  # the parent shows progress

    def at_example(self, index: int, *, hypothesis: bool = False) -> None:
        mark = getattr(self.channel, "mark", None)
        if mark is not None:
            mark[0], mark[1] = index, hypothesis

    def run(self) -> Summary:
        self.progress = None
        try:
            self.search()
        except KeyboardInterrupt:
            self.summary.status = INTERRUPTED
        return self.conclude()


def _worker_main(config: CampaignConfig, channel, ends: float | None) -> None:
    """A shard's process (or Dask task): run its campaign and report to the parent through ``channel``."""
    shard = None
    try:
        # Ctrl-C in a terminal reaches every process of the group; one lost in a garbage-collector
        # callback still stops the shard (the parent's STOP message would too, seconds later).
        interrupts.install((signal.SIGINT,))
        if getattr(channel, "faults", None):  # Python's stack, if torch or the backend crashes the process
            # (the file stays open: faulthandler writes to its descriptor; this thread's stack only)
            faulthandler.enable(open(channel.faults, "w"), all_threads=False)
        import torch
        torch.set_num_threads(1)  # programs are tiny; one thread per worker process is fastest
        if config.mutant:
            from fuzz.mutants import apply_mutant
            apply_mutant(config.mutant)
        backend = load_backend(config.backend)
        # torch's, the builder's and the backend's one-off costs, before the shard's clock starts
        warm_up_torch(backend)
        shard = _Shard(config, backend, channel, ends)
        shard.run()
    except KeyboardInterrupt:
        channel.send(("done", config.worker, (shard.summary if shard else Summary(status=INTERRUPTED)).to_json()))
    except Exception as error:  # noqa: BLE001  (reported to the parent, which goes on with the others)
        channel.send(("error", config.worker, f"{type(error).__name__}: {error}"))
        if shard is not None:  # its counts so far still count
            channel.send(("done", config.worker, {**shard.summary.to_json(), "status": "failed"}))
