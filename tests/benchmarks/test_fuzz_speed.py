"""Differential examples per second on small programs (<= 10 ops, <= 64 elements per tensor).

End to end, as a campaign does it (`_Campaign.search`): the program builder
(`fuzz.strategies.fast_examples`, which evaluates every drawn step on torch
and runs the action there, so torch's outcome comes with the program) draws
from a seeded `random.Random`, the engine runs the program, the comparator
compares the outcomes, and the campaign counts it. Divergences count as
examples but are not shrunk here (shrinking is a campaign's other work,
measured by the self-test). A second benchmark times the same pipeline
without generation, on programs and torch outcomes built beforehand, to show
how much of the time is generation.

CI runs each once as a smoke test (pytest-benchmark is disabled by default),
still checking that every example got a verdict; measure with
`pytest tests/benchmarks/test_fuzz_speed.py --benchmark-enable`. The examples/s
figures are in the benchmark's extra_info (`--benchmark-json`).
"""
from __future__ import annotations

import io
import itertools
import random
import time

import numpy as np
import pytest
import torch
from rich.console import Console

import engine
import oracle
from fuzz import interpreter
from fuzz.campaign import CampaignConfig, _Campaign, warm_up_torch
from fuzz.compare import compare
from fuzz.outcome import Outcome
from fuzz.program import Program
from fuzz.strategies import fast_examples

MAX_STEPS, MAX_DIMS, MAX_SIDE = 10, 3, 4  # at most 4**3 = 64 elements per drawn tensor
SECONDS = 5.0  # per round (one short round in CI's smoke run)
EXAMPLES = 200


def _campaign(tmp_path, seconds: float, seed: int) -> _Campaign:
    config = CampaignConfig(out=tmp_path, budget_seconds=seconds, seed=seed, backend="engine", max_steps=MAX_STEPS)
    campaign = _Campaign(config, engine, Console(file=io.StringIO()))
    campaign.refresh = lambda **_: None  # no progress display
    campaign.known = _Everything()       # count divergences, never stop to shrink them
    return campaign


class _Everything(set):
    def __contains__(self, item) -> bool:
        return True


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # per core
    warm_up_torch(engine)  # as a campaign does before its clock starts
    yield
    torch.set_num_threads(threads)


def test_differential_examples_per_second_end_to_end(benchmark, tmp_path):
    seconds = SECONDS if benchmark.enabled else 1.0
    rounds, cpu_rounds, summaries = [], [], []

    def run():
        campaign = _campaign(tmp_path / f"round{len(rounds)}", seconds, seed=len(rounds))
        started, cpu_started = time.perf_counter(), time.process_time()
        campaign.search()  # until its budget: exactly the campaign's loop
        rounds.append(campaign.summary.examples / (time.perf_counter() - started))
        cpu_rounds.append(campaign.summary.examples / (time.process_time() - cpu_started))
        summaries.append(campaign.summary)
    benchmark.pedantic(run, rounds=3 if benchmark.enabled else 1, iterations=1)
    benchmark.extra_info["examples_per_second"] = round(max(rounds), 1)
    benchmark.extra_info["examples_per_second_rounds"] = [round(rate, 1) for rate in rounds]
    # Per second of this process's CPU time: what one core gives when other processes share it.
    benchmark.extra_info["examples_per_cpu_second_rounds"] = [round(rate, 1) for rate in cpu_rounds]
    for summary in summaries:
        assert summary.status == "completed" and summary.examples > 0
        assert sum(summary.verdicts.values()) == summary.examples and summary.verdicts["match"] > 0
        assert summary.valid > 0


@pytest.fixture(scope="module")
def drawn_examples() -> list[tuple[Program, Outcome]]:
    search = fast_examples(random.Random(0), max_steps=MAX_STEPS, max_dims=MAX_DIMS, max_side=MAX_SIDE)
    return [(program, torch_outcome or oracle.run_torch(program))
            for program, torch_outcome, _ in itertools.islice(search, EXAMPLES)]


def test_differential_examples_per_second_without_generation(benchmark, drawn_examples):
    """The ceiling generation cannot raise: engine run + compare per program (torch's outcome is the builder's)."""
    drawn_programs = [program for program, _ in drawn_examples]

    def run():
        started, cpu_started = time.perf_counter(), time.process_time()
        verdicts = [compare(interpreter.run(program, engine), torch_outcome, program, backend=engine,
                            adjudicate=False)
                    for program, torch_outcome in drawn_examples]
        return verdicts, len(drawn_examples) / (time.perf_counter() - started), \
            len(drawn_examples) / (time.process_time() - cpu_started)
    verdicts, rate, cpu_rate = benchmark.pedantic(run, rounds=3 if benchmark.enabled else 1, iterations=1)
    benchmark.extra_info["examples_per_second"] = round(rate, 1)
    benchmark.extra_info["examples_per_cpu_second"] = round(cpu_rate, 1)
    assert len(verdicts) == len(drawn_programs) > 0 and all(verdict.kind for verdict in verdicts)
    assert all(len(program.steps) <= MAX_STEPS for program in drawn_programs)
    # Small programs: at most 64 elements per input (op-table samples bring their own shapes, also small).
    assert all(int(np.prod(t.shape, dtype=np.int64)) <= MAX_SIDE ** MAX_DIMS
               for program in drawn_programs for t in program.inputs)
