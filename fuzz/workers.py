"""A campaign over local worker processes sharing one Hypothesis example database.

Each worker is one shard: a `fuzz.campaign` search in its own process, with
its own seeds (derived from the campaign seed and the worker index; worker 0
draws exactly what a one-worker campaign draws) and the campaign's
`DirectoryBasedExampleDatabase`, so a failure any worker stored is replayed
by every later campaign. Workers send their findings to this (parent)
process, which keeps the first of each signature, writes it to the results
directory at once (fsync'd) and tells the other workers to stop hunting it.

Ctrl-C reaches every process of the group: the workers stop, report their
last counts, and the parent writes the merged summary. An interrupt of the
parent alone (`kill -INT`, a scheduler's stop) is passed on to the workers
through their inboxes, with the same result. If the parent is
killed, the workers notice (their parent changes) and stop; the results
directory holds meta.json and every finding written so far, and
`gradfuzz report` renders it.

Past one machine, the same shards run on Dask distributed workers, sharing
the database through Redis (`fuzz.distributed`): the coordinator and the
shards below talk through a transport (multiprocessing queues here, Dask
queues there), and nothing else differs.
"""
from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import time
from collections import Counter
from dataclasses import replace
from types import ModuleType

from rich.console import Console
from rich.progress import Progress, TextColumn, TimeElapsedColumn

from fuzz import interrupts
from fuzz.campaign import (COMPLETED, INTERRUPTED, PROGRESS_REFRESH_SECONDS, CampaignConfig, Summary, _Campaign,
                           _StopCampaign, append_record, count_finding, load_backend, prepare_directory,
                           warm_up_torch, write_finding)

ORPHANED = "orphaned"
# What the parent puts in a worker's inbox to stop it (besides the signatures of known findings).
STOP = "__stop__"
# How long the parent waits for workers to report after the budget or Ctrl-C.
GRACE_SECONDS = 30.0


def run_parallel(config: CampaignConfig, *, console: Console) -> Summary:
    """Run ``config.workers`` shards and merge their findings into ``config.out``."""
    return _Coordinator(config, console).run()


class _Coordinator:
    """Starts the shards, shows their progress, writes their findings and merges their counts.

    The transport is this class's local one: worker processes and multiprocessing queues
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

    def run(self) -> Summary:
        config = self.config
        backend = load_backend(config.backend)
        prepare_directory(config, _Campaign(config, backend, self.console).meta())
        self.start(time.time() + config.budget_seconds)
        columns = [TextColumn("[bold]{task.description}"), TextColumn("{task.fields[status]}"), TimeElapsedColumn()]
        with Progress(*columns, console=self.console, transient=False) as progress:
            task = progress.add_task(f"fuzzing {config.backend} ({config.workers} {self.where})", status="")
            deadline = self.started + config.budget_seconds
            give_up = deadline + GRACE_SECONDS + config.shrink_limit
            try:
                while len(self.finished) < config.workers and time.monotonic() < give_up:
                    self.receive(timeout=PROGRESS_REFRESH_SECONDS)
                    interrupts.check()  # a Ctrl-C or SIGTERM whose KeyboardInterrupt Python dropped
                    if not self.alive():
                        self.receive(timeout=0)
                        break
                    progress.update(task, status=self.status_line(deadline))
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
            progress.update(task, status=self.status_line(deadline))
        self.stop()
        self.merge()
        append_record(config.out, self.summary.to_json())
        return self.summary

    # -- the transport: local worker processes ----------------------------------------

    def start(self, ends: float) -> None:
        """Start the shards; ``ends`` is the budget's end on the wall clock."""
        # spawn: a fresh interpreter per worker (torch's thread pools do not survive fork).
        context = multiprocessing.get_context("spawn")
        self.events = context.Queue()
        self.inboxes = [context.Queue() for _ in range(self.config.workers)]
        self.processes = [
            context.Process(target=_worker_main, name=f"gradfuzz-worker-{index}", daemon=True,
                            args=(replace(self.config, worker=index), _LocalChannel(self.events, self.inboxes[index],
                                                                                    os.getpid()), ends))
            for index in range(self.config.workers)]
        for process in self.processes:
            process.start()

    def alive(self) -> bool:
        return any(process.is_alive() for process in self.processes)

    def next_events(self, timeout: float) -> list:
        """The shards' events that arrived, waiting up to ``timeout`` seconds for the first."""
        try:
            events = [self.events.get(timeout=timeout) if timeout else self.events.get_nowait()]
        except queue.Empty:
            return []
        while True:
            try:
                events.append(self.events.get_nowait())
            except queue.Empty:
                return events

    def tell(self, index: int, message: str) -> None:
        self.inboxes[index].put(message)

    def stop(self) -> None:
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()

    # ----------------------------------------------------------------------------------

    def receive(self, timeout: float) -> None:
        for event in self.next_events(timeout):
            self.handle(event)

    def handle(self, event: tuple) -> None:
        kind, worker, payload = event
        if kind == "progress":
            self.examples[worker] = payload
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
        self.console.print(f"[red]finding[/red] {signature} ({record['steps']} steps, worker {worker}): "
                           f"{record['detail']}", highlight=False, soft_wrap=True)

    def status_line(self, deadline: float) -> str:
        now = time.monotonic()
        examples = sum(self.examples.values())
        return (f"{examples} examples  {examples / max(now - self.started, 1e-9):.0f}/s  "
                f"{len(self.summary.findings)} findings  {max(deadline - now, 0):.0f}s left")

    def merge(self) -> None:
        """Sum the workers' counts into the summary (findings are counted once, as accepted)."""
        summary = self.summary
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


class _LocalChannel:
    """A shard's side of the local transport: the parent's event queue, its own inbox, and
    the parent's pid (a shard whose parent changed was orphaned)."""

    def __init__(self, events, inbox, parent: int):
        self.events, self.inbox, self.parent = events, inbox, parent

    def send(self, event: tuple) -> None:
        self.events.put(event)

    def messages(self) -> list[str]:
        received = []
        while True:
            try:
                received.append(self.inbox.get_nowait())
            except queue.Empty:
                return received

    def orphaned(self) -> bool:
        return os.getppid() != self.parent


class _Shard(_Campaign):
    """One worker's campaign: findings go to the parent, which writes them."""

    def __init__(self, config: CampaignConfig, backend: ModuleType, channel, ends: float):
        super().__init__(config, backend, Console(file=open(os.devnull, "w")))
        self.channel = channel
        # The parent's budget, on the wall clock: starting a worker takes seconds of it.
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

    def run(self) -> Summary:
        self.progress = None
        try:
            self.search()
        except KeyboardInterrupt:
            self.summary.status = INTERRUPTED
        return self.conclude()


def _worker_main(config: CampaignConfig, channel, ends: float) -> None:
    """A shard's process (or Dask task): run its campaign and report to the parent through ``channel``."""
    shard = None
    try:
        # Ctrl-C in a terminal reaches every process of the group; one lost in a garbage-collector
        # callback still stops the shard (the parent's STOP message would too, seconds later).
        interrupts.install((signal.SIGINT,))
        import torch
        torch.set_num_threads(1)  # programs are tiny; one thread per worker process is fastest
        if config.mutant:
            from fuzz.mutants import apply_mutant
            apply_mutant(config.mutant)
        warm_up_torch()  # before its first program needs it (the budget is the parent's clock's)
        shard = _Shard(config, load_backend(config.backend), channel, ends)
        shard.run()
    except KeyboardInterrupt:
        channel.send(("done", config.worker, (shard.summary if shard else Summary(status=INTERRUPTED)).to_json()))
    except Exception as error:  # noqa: BLE001  (reported to the parent, which goes on with the others)
        channel.send(("error", config.worker, f"{type(error).__name__}: {error}"))
        if shard is not None:  # its counts so far still count
            channel.send(("done", config.worker, {**shard.summary.to_json(), "status": "failed"}))
