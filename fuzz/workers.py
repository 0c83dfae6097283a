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

Past one machine, the same shards run on Dask distributed, sharing the
database through Redis; see `run_shard` and the README.
"""
from __future__ import annotations

import multiprocessing
import os
import queue
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from types import ModuleType

from rich.console import Console
from rich.progress import Progress, TextColumn, TimeElapsedColumn

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
        # spawn: a fresh interpreter per worker (torch's thread pools do not survive fork).
        context = multiprocessing.get_context("spawn")
        self.events = context.Queue()
        self.inboxes = [context.Queue() for _ in range(config.workers)]
        processes = [context.Process(target=_worker_main, name=f"gradfuzz-worker-{index}", daemon=True,
                                     args=(replace(config, worker=index), self.events, self.inboxes[index],
                                           os.getpid(), time.time() + config.budget_seconds))
                     for index in range(config.workers)]
        for process in processes:
            process.start()
        columns = [TextColumn("[bold]{task.description}"), TextColumn("{task.fields[status]}"), TimeElapsedColumn()]
        with Progress(*columns, console=self.console, transient=False) as progress:
            task = progress.add_task(f"fuzzing {config.backend} ({config.workers} workers)", status="")
            deadline = self.started + config.budget_seconds
            give_up = deadline + GRACE_SECONDS + config.shrink_limit
            try:
                while len(self.finished) < len(processes) and time.monotonic() < give_up:
                    self.receive(timeout=PROGRESS_REFRESH_SECONDS)
                    if not any(process.is_alive() for process in processes):
                        self.drain()
                        break
                    progress.update(task, status=self.status_line(deadline))
            except KeyboardInterrupt:
                self.summary.status = INTERRUPTED
                for inbox in self.inboxes:  # (Ctrl-C in a terminal has told them already; a kill -INT has not)
                    inbox.put(STOP)
                grace = time.monotonic() + GRACE_SECONDS
                while len(self.finished) < len(processes) and time.monotonic() < grace:
                    try:
                        self.receive(timeout=PROGRESS_REFRESH_SECONDS)
                    except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
                        break
            progress.update(task, status=self.status_line(deadline))
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
        self.merge()
        append_record(config.out, self.summary.to_json())
        return self.summary

    def receive(self, timeout: float) -> None:
        try:
            event = self.events.get(timeout=timeout)
        except queue.Empty:
            return
        self.handle(event)
        self.drain()

    def drain(self) -> None:
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return
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
        for index, inbox in enumerate(self.inboxes):
            if index != worker:
                inbox.put(signature)
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


class _Shard(_Campaign):
    """One worker's campaign: findings go to the parent, which writes them."""

    def __init__(self, config: CampaignConfig, backend: ModuleType, events, inbox, parent: int, ends: float):
        super().__init__(config, backend, Console(file=open(os.devnull, "w")))
        self.events, self.inbox, self.parent = events, inbox, parent
        # The parent's budget, on the wall clock: starting a worker takes seconds of it.
        self.deadline = time.monotonic() + max(ends - time.time(), 0.0)
        self.next_poll = 0.0

    def start(self) -> None:  # the parent prepared the directory
        pass

    def finish(self) -> None:
        self.events.put(("done", self.config.worker, self.summary.to_json()))

    def emit(self, record: dict, verdict: dict, script: str, features: list[str]) -> bool:
        self.events.put(("finding", self.config.worker, (record, verdict, script, features)))
        return True

    def enough_findings(self) -> bool:
        # max_findings counts the parent's merged findings; a shard only knows its own and the others' it was told.
        return self.config.max_findings is not None and len(self.known) >= self.config.max_findings

    def poll(self) -> None:
        now = time.monotonic()
        if now < self.next_poll:
            return
        self.next_poll = now + PROGRESS_REFRESH_SECONDS
        if os.getppid() != self.parent:  # the parent was killed: nobody writes our findings any more
            raise _StopCampaign(ORPHANED)
        while True:
            try:
                message = self.inbox.get_nowait()
            except queue.Empty:
                break
            if message == STOP:  # the parent was interrupted
                raise _StopCampaign(INTERRUPTED)
            self.known.add(message)
        if self.enough_findings():
            raise _StopCampaign("max-findings")
        self.events.put(("progress", self.config.worker, self.summary.examples))

    def refresh(self, *, force: bool = False) -> None:
        pass  # the parent shows progress

    def run(self) -> Summary:
        self.progress = None
        try:
            self.search()
        except KeyboardInterrupt:
            self.summary.status = INTERRUPTED
        return self.conclude()


def _worker_main(config: CampaignConfig, events, inbox, parent: int, ends: float) -> None:
    shard = None
    try:
        import torch
        torch.set_num_threads(1)  # programs are tiny; one thread per worker process is fastest
        if config.mutant:
            from fuzz.mutants import apply_mutant
            apply_mutant(config.mutant)
        warm_up_torch()  # before its first program needs it (the budget is the parent's clock's)
        shard = _Shard(config, load_backend(config.backend), events, inbox, parent, ends)
        shard.run()
    except KeyboardInterrupt:
        events.put(("done", config.worker, (shard.summary if shard else Summary(status=INTERRUPTED)).to_json()))
    except Exception as error:  # noqa: BLE001  (reported to the parent, which goes on with the others)
        events.put(("error", config.worker, f"{type(error).__name__}: {error}"))
        if shard is not None:  # its counts so far still count
            events.put(("done", config.worker, {**shard.summary.to_json(), "status": "failed"}))


def run_shard(config: CampaignConfig, worker: int) -> dict:
    """Run shard ``worker`` of a campaign in this process, writing its own results directory.

    The building block for running shards elsewhere (Dask distributed): each
    shard writes ``config.out / f"shard-{worker}"``; pass ``database`` as a
    directory on shared storage, or run with a Redis database (see README).
    Returns the shard's summary record.
    """
    from fuzz.campaign import run_campaign
    shard = replace(config, worker=worker, workers=1, out=Path(config.out) / f"shard-{worker}")
    return run_campaign(shard, console=Console(file=open(os.devnull, "w"))).to_json()
