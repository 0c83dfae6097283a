"""Campaigns past one machine: shards on a Dask distributed cluster, failures shared through Redis.

A LocalCluster of two worker processes stands in for the cluster, and fakeredis'
TCP server for a Redis server (each a real network endpoint the shards reach).
"""
from __future__ import annotations

import io
import json
import socket
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from fuzz.campaign import CampaignConfig, run_campaign
from fuzz.cli import main

distributed = pytest.importorskip("distributed")
fakeredis = pytest.importorskip("fakeredis")


@pytest.fixture(scope="module")
def cluster():
    # Two single-threaded worker processes, as `dask worker ADDRESS --nworkers 2 --nthreads 1`.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as local:
        yield local


@pytest.fixture
def redis_url():
    with socket.socket() as probe:   # a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = fakeredis.TcpFakeServer(("127.0.0.1", port), server_type="redis")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{port}/0"
    server.shutdown()
    server.server_close()


def _campaign(out: Path, **config):
    return run_campaign(CampaignConfig(out=out, backend="broken_torch", ops=("mul", "neg", "sum"), max_steps=3,
                                       shrink_seconds=3, **config), console=Console(file=io.StringIO()))


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_shards_on_a_dask_cluster_merge_their_findings_into_one_directory(cluster, tmp_path):
    # (workers=0: one shard per worker thread of the cluster, here 2; Dask shards end at the parent's
    # clock, their start-up and warm-up inside it: the budget leaves room for a loaded machine, and the
    # campaign ends at its second finding)
    summary = _campaign(tmp_path, budget_seconds=90, seed=1, max_findings=2, workers=0,
                        scheduler=cluster.scheduler_address)
    records = _records(tmp_path)
    findings = [record for record in records if record["type"] == "finding"]
    assert findings and len({f["signature"] for f in findings}) == len(findings)   # de-duplicated by signature
    assert {f["worker"] for f in findings} <= {0, 1} and any(f["op"] == "mul" for f in findings)
    assert records[-1]["type"] == "summary" and records[-1]["findings"] == len(findings) == len(summary.findings)
    assert records[-1]["examples"] == sum(records[-1]["verdicts"].values()) > 0
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert (meta["workers"], meta["scheduler"]) == (2, cluster.scheduler_address)
    for finding in findings:
        assert (tmp_path / finding["finding_file"]).is_file() and (tmp_path / finding["reproducer"]).is_file()


def test_a_failure_stored_in_redis_is_replayed_first_by_the_next_campaign_on_the_cluster(cluster, redis_url,
                                                                                         tmp_path):
    first = _campaign(tmp_path / "first", budget_seconds=60, seed=0, max_findings=1, database=redis_url)
    (found,) = first.findings
    import redis
    assert redis.Redis.from_url(redis_url).keys(b"gradfuzz:*")   # the shrunk failure is stored there
    again = _campaign(tmp_path / "again", budget_seconds=60, seed=12345, max_findings=1, database=redis_url,
                      workers=1, scheduler=cluster.scheduler_address)
    (replayed,) = again.findings
    assert replayed["signature"] == found["signature"]
    assert replayed["found_after_examples"] <= 3
    assert json.loads((tmp_path / "again" / "meta.json").read_text())["database"] == redis_url


def test_the_recorded_database_url_leaves_out_its_password(redis_url, tmp_path):
    with_password = redis_url.replace("redis://", "redis://user:secret@")
    _campaign(tmp_path, budget_seconds=30, seed=0, max_findings=1, database=with_password)
    assert json.loads((tmp_path / "meta.json").read_text())["database"] == redis_url


def test_an_unreachable_scheduler_is_a_usage_error_not_a_traceback(tmp_path):
    with socket.socket() as probe:   # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = CliRunner().invoke(main, ["run", "--budget", "5s", "--out", str(tmp_path),
                                       "--scheduler", f"tcp://127.0.0.1:{port}"])
    assert result.exit_code == 2, result.output
    assert "cannot reach the Dask scheduler" in result.output and "Usage:" in result.output
    assert "Traceback" not in result.output


def test_a_shard_whose_coordinator_stopped_beating_stops_with_its_counts(cluster, tmp_path):
    """A coordinator killed (or its machine lost) beats no more: its shards stop as orphans and report."""
    import time
    from fuzz.distributed import _DaskChannel
    from fuzz.workers import _worker_main
    campaign = "gradfuzz-test-orphan"
    with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
        distributed.Variable(f"{campaign}-heartbeat", client=client).set(time.time() - 3600)
        config = CampaignConfig(out=tmp_path, budget_seconds=120, backend="torch", ops=("mul", "sum"), max_steps=2)
        started = time.monotonic()
        client.submit(_worker_main, config, _DaskChannel(campaign, 0), time.time() + 120, pure=False).result(timeout=90)
        events = distributed.Queue(f"{campaign}-events", client=client).get(batch=True)
    (done,) = [payload for kind, _, payload in events if kind == "done"]
    assert done["status"] == "orphaned" and time.monotonic() - started < 90
