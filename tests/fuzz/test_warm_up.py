"""warm_up_torch: a campaign pays torch's, the builder's and its backend's one-off costs before its clock starts."""
import itertools
import random
import types

import torch

import engine
import oracle
from fuzz import campaign, interpreter, strategies
from fuzz.compare import compare


def test_warm_up_programs_run_alike_on_torch_and_the_engine():
    for program in campaign._WARM_UP_PROGRAMS:
        engine_outcome, torch_outcome = interpreter.run(program, engine), oracle.run_torch(program)
        assert engine_outcome.error is None and torch_outcome.error is None
        assert compare(engine_outcome, torch_outcome, program, backend=engine, adjudicate=False).kind == "match"
    # add(x, y, alpha=a) in each dtype: where the engine checks its BLAS's fused multiply-add, once per dtype
    assert {program.inputs[0].dtype for program in campaign._WARM_UP_PROGRAMS} == {"float32", "float64"}
    assert all(any(step.op == "add" and "alpha" in step.kwargs for step in program.steps)
               for program in campaign._WARM_UP_PROGRAMS)


def test_a_backend_is_warmed_up_once_per_process(monkeypatch):
    calls = []
    backend = types.ModuleType("counting_torch")
    backend.__getattr__ = lambda name: (calls.append(name), getattr(torch, name))[1]  # torch, counting lookups
    monkeypatch.setattr(campaign, "_WARMED_UP", {None})  # (torch and the builder: warmed up already)
    campaign.warm_up_torch(backend)
    assert calls.count("add") == len(campaign._WARM_UP_PROGRAMS)
    campaign.warm_up_torch(backend)
    campaign.warm_up_torch()
    assert calls.count("add") == len(campaign._WARM_UP_PROGRAMS)


def test_warm_up_draws_programs_once_per_process(monkeypatch):
    drawn = []
    monkeypatch.setattr(campaign, "_WARMED_UP", set())
    monkeypatch.setattr(campaign, "fast_examples", lambda rng, **options: (drawn.append(options) or (None, None, None)
                                                                            for _ in iter(int, 1)))
    campaign.warm_up_torch()
    campaign.warm_up_torch()
    assert len(drawn) == campaign.WARM_UP_EXAMPLES


def test_after_the_builders_warm_up_its_programs_fill_no_per_op_table():
    strategies.warm_up()
    tables = (strategies._makers, strategies._samples_of_rank, strategies.torch_accepts_scalar)
    misses, layouts = [table.cache_info().misses for table in tables], len(strategies._LAYOUTS)
    for _ in itertools.islice(strategies.fast_examples(random.Random(3), max_steps=10), 300):
        pass
    assert [table.cache_info().misses for table in tables] == misses
    assert len(strategies._LAYOUTS) == layouts
