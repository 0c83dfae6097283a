"""A campaign whose shards run on a Dask distributed cluster, past one machine.

`gradfuzz run --scheduler tcp://host:8786 --database redis://host:6379/0` runs
the shards of `fuzz.workers` as Dask tasks on the cluster's workers. This
process stays the coordinator, as for local workers: it shows progress, writes
each new finding to the results directory at once and tells the other shards
to stop hunting it, and merges the counts. Only the transport differs:

- events (progress, findings, the final counts) come back through one Dask
  queue, and each shard has a Dask queue as its inbox (known signatures, the
  stop message of an interrupt);
- the coordinator beats a heart (a Dask variable holding its clock); a shard
  whose coordinator has not beaten for ORPHAN_SECONDS stops, as a local
  worker does when its parent process goes away;
- the shards share the campaign's example database: a Redis URL (as above),
  or a directory on storage every worker sees. A directory that only this
  machine sees still works, but each machine then keeps its own failures.

Run one single-threaded worker process per core (`dask worker ADDRESS
--nworkers N --nthreads 1`): a shard is a Python loop that holds the GIL, so
two shards in one worker process run at the speed of one. Worker processes
must import the backend under test and gradfuzz itself.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import replace

from rich.console import Console

from fuzz.campaign import CampaignConfig, Summary
from fuzz.workers import _Coordinator, _worker_main

# How long to try reaching the scheduler.
CONNECT_SECONDS = 10
# How long a shard goes on without a heartbeat from its coordinator before it stops.
ORPHAN_SECONDS = 30.0
# How often the coordinator beats (and each shard looks at the heart, when it polls its inbox).
HEARTBEAT_SECONDS = 2.0


def run_distributed(config: CampaignConfig, *, console: Console) -> Summary:
    """Run ``config.workers`` shards on the Dask cluster at ``config.scheduler`` (all its worker
    threads when ``config.workers`` is 0) and merge their findings into ``config.out``."""
    try:
        import distributed
    except ImportError as error:
        raise ValueError(f"--scheduler needs Dask distributed ({error}): pip install 'gradfuzz[distributed]'") from None
    if config.mutant:
        raise ValueError("a planted bug (mutant) patches the process it runs in for good; "
                         "run the self-test locally, not on a Dask cluster")
    try:
        client = distributed.Client(config.scheduler, timeout=CONNECT_SECONDS, set_as_default=False)
    except (OSError, TimeoutError) as error:
        raise ValueError(f"cannot reach the Dask scheduler at {config.scheduler!r} ({error}); "
                         "start one with `dask scheduler` and workers with `dask worker ADDRESS`") from None
    with client:
        if not config.workers:
            config = replace(config, workers=max(sum(client.nthreads().values()), 1))
        return _DaskCoordinator(config, console, client).run()


class _DaskCoordinator(_Coordinator):
    """The coordinator of `fuzz.workers` with Dask tasks and queues as its transport."""

    where = "Dask tasks"

    def __init__(self, config: CampaignConfig, console: Console, client):
        super().__init__(config, console)
        self.client = client
        self.campaign = f"gradfuzz-{uuid.uuid4().hex}"
        self.next_beat = 0.0

    def start(self, ends: float) -> None:
        from distributed import Queue, Variable
        self.events = Queue(f"{self.campaign}-events", client=self.client)
        self.inboxes = [Queue(f"{self.campaign}-inbox-{index}", client=self.client)
                        for index in range(self.config.workers)]
        self.heart = Variable(f"{self.campaign}-heartbeat", client=self.client)
        self.beat()
        self.futures = [
            self.client.submit(_worker_main, replace(self.config, worker=index),
                               _DaskChannel(self.campaign, index), ends,
                               key=f"{self.campaign}-shard-{index}", pure=False)
            for index in range(self.config.workers)]

    def beat(self) -> None:
        now = time.monotonic()
        if now >= self.next_beat:
            self.heart.set(time.time())
            self.next_beat = now + HEARTBEAT_SECONDS

    def alive(self) -> bool:
        return not all(future.done() for future in self.futures)

    def crashed(self) -> list[int]:
        return []  # (Dask reschedules or fails the task of a worker that died; stop() reports a failed one)

    def next_events(self, timeout: float) -> list:
        self.beat()
        # (Queue.get(timeout=...) logs the timeout as an error on the scheduler: poll instead.)
        deadline = time.monotonic() + timeout
        while True:
            events = self.events.get(batch=True)
            if events or time.monotonic() >= deadline:
                return events
            time.sleep(min(0.1, max(deadline - time.monotonic(), 0.0)))

    def tell(self, index: int, message: str) -> None:
        self.inboxes[index].put(message)

    def stop(self) -> None:
        deadline = time.monotonic() + 5
        while self.alive() and time.monotonic() < deadline:  # (a shard that never reported is cancelled below)
            time.sleep(0.1)
        for future in self.futures:
            if future.status == "error":
                self.console.print(f"[red]shard task failed[/red]: {future.exception()}", highlight=False)
        self.client.cancel(self.futures)
        self.heart.delete()


class _DaskChannel:
    """A shard's side of the Dask transport, made in the coordinator and sent with the task (it
    holds names only: the queues are looked up in the worker)."""

    def __init__(self, campaign: str, index: int):
        self.campaign, self.index = campaign, index
        self.next_look = 0.0
        self.lost = False
        self.queues: dict = {}   # (made in the worker, once: making one registers it with the scheduler)

    def __getstate__(self) -> dict:
        return {"campaign": self.campaign, "index": self.index}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["campaign"], state["index"])

    def _queue(self, name: str):
        if name not in self.queues:
            from distributed import Queue
            self.queues[name] = Queue(f"{self.campaign}-{name}")
        return self.queues[name]

    def send(self, event: tuple) -> None:
        self._queue("events").put(event)

    def messages(self) -> list[str]:
        return self._queue(f"inbox-{self.index}").get(batch=True)

    def orphaned(self) -> bool:
        """Whether the coordinator stopped beating ORPHAN_SECONDS ago (looked at every HEARTBEAT_SECONDS)."""
        now = time.monotonic()
        if now >= self.next_look:
            from distributed import Variable
            self.next_look = now + HEARTBEAT_SECONDS
            try:
                beaten = Variable(f"{self.campaign}-heartbeat").get(timeout=HEARTBEAT_SECONDS)
            except (TimeoutError, OSError):
                beaten = None
            self.lost = beaten is None or time.time() - beaten > ORPHAN_SECONDS
        return self.lost
