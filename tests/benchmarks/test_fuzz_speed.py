"""Differential examples per second on small programs (<= 10 ops, <= 64 elements per tensor).

End to end: Hypothesis draws a program (`fuzz.strategies.programs`, which
evaluates every drawn step on torch), the engine runs it, torch runs it, the
comparator compares the outcomes, and the campaign counts it: exactly the
body of a campaign (`_Campaign.check`). A second benchmark times the same
pipeline without generation, on programs drawn beforehand, to show how much
of the time is generation.

CI runs each once as a smoke test (pytest-benchmark is disabled by default),
still checking that every example got a verdict; measure with
`pytest tests/benchmarks/test_fuzz_speed.py --benchmark-enable`. The examples/s
figures are in the benchmark's extra_info (`--benchmark-json`).
"""
from __future__ import annotations

import io
import time

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings
from rich.console import Console

import engine
import oracle
from fuzz import interpreter
from fuzz.campaign import CampaignConfig, _Campaign
from fuzz.compare import compare
from fuzz.program import Program
from fuzz.strategies import programs

MAX_STEPS, MAX_DIMS, MAX_SIDE = 10, 3, 4  # at most 4**3 = 64 elements per tensor
EXAMPLES = 100


def _campaign(tmp_path) -> _Campaign:
    config = CampaignConfig(out=tmp_path, budget_seconds=3600, backend="engine", max_steps=MAX_STEPS)
    campaign = _Campaign(config, engine, Console(file=io.StringIO()))
    campaign.refresh = lambda **_: None  # no progress display
    campaign.known = _Everything()       # count divergences, never stop to shrink them
    return campaign


class _Everything(set):
    def __contains__(self, item) -> bool:
        return True


def _draw_and_check(campaign: _Campaign, examples: int, seed: int) -> None:
    @settings(max_examples=examples, database=None, derandomize=False, deadline=None,
              phases=(Phase.generate,), suppress_health_check=list(HealthCheck))
    @given(programs(max_steps=MAX_STEPS, max_dims=MAX_DIMS, max_side=MAX_SIDE))
    def differential(program: Program) -> None:
        campaign.check(program)
    differential._hypothesis_internal_use_seed = seed
    differential()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # per core
    yield
    torch.set_num_threads(threads)


def test_differential_examples_per_second_end_to_end(benchmark, tmp_path):
    campaign = _campaign(tmp_path)
    rounds = []

    def run():
        before, started = campaign.summary.examples, time.perf_counter()
        _draw_and_check(campaign, EXAMPLES, seed=len(rounds))
        rounds.append((campaign.summary.examples - before) / (time.perf_counter() - started))
    benchmark.pedantic(run, rounds=3 if benchmark.enabled else 1, iterations=1)
    benchmark.extra_info["examples_per_second"] = round(max(rounds), 1)
    summary = campaign.summary
    assert summary.examples == EXAMPLES * len(rounds)
    assert sum(summary.verdicts.values()) == summary.examples and summary.verdicts["match"] > 0
    assert summary.valid > 0 and max(rounds) > 0


@pytest.fixture(scope="module")
def drawn_programs() -> list[Program]:
    drawn = []

    @settings(max_examples=EXAMPLES, database=None, derandomize=True, deadline=None,
              phases=(Phase.generate,), suppress_health_check=list(HealthCheck))
    @given(programs(max_steps=MAX_STEPS, max_dims=MAX_DIMS, max_side=MAX_SIDE))
    def collect(program: Program) -> None:
        drawn.append(program)
    collect()
    return drawn


def test_differential_examples_per_second_without_generation(benchmark, drawn_programs):
    """The ceiling generation cannot raise: engine run + torch run + compare per program."""
    def run():
        started = time.perf_counter()
        verdicts = [compare(interpreter.run(program, engine), oracle.run_torch(program), program, backend=engine)
                    for program in drawn_programs]
        return verdicts, len(drawn_programs) / (time.perf_counter() - started)
    verdicts, rate = benchmark.pedantic(run, rounds=3 if benchmark.enabled else 1, iterations=1)
    benchmark.extra_info["examples_per_second"] = round(rate, 1)
    assert len(verdicts) == len(drawn_programs) > 0 and all(verdict.kind for verdict in verdicts)
    assert all(len(program.steps) <= MAX_STEPS for program in drawn_programs)
    # Small programs: at most 64 elements per input (op-table samples may use a side above MAX_SIDE).
    assert all(int(np.prod(t.shape, dtype=np.int64)) <= MAX_SIDE ** MAX_DIMS
               for program in drawn_programs for t in program.inputs)
