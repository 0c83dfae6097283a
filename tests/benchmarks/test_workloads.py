"""Engine vs torch on the issue-7 workloads, grouped so each workload compares the two.

CI runs these once each as a smoke test (pytest-benchmark is disabled by the
default options); the comparison is `pytest tests/benchmarks --benchmark-enable`
(see README), whose JSON holds both backends' rounds for the ratios, and the
peers' (HIPS autograd, MyGrad, where installed) and torch on one thread beside them.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import engine

from fuzz.bench import TARGETS
from fuzz.workloads import PEERS, VARIANTS, WORKLOADS, build


def _describe(benchmark, workload: str, backend: str) -> None:
    """Group the backends of a workload together, and say in the JSON (`extra_info`) which workload and
    backend a benchmark times and the workload's engine/torch target, so ratios read from
    `--benchmark-json` need no parsing of test names."""
    benchmark.group = workload
    benchmark.extra_info.update(workload=workload, backend=backend, target=TARGETS.get(workload))


@pytest.mark.parametrize("backend", [engine, torch], ids=["engine", "torch"])
@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_workload(benchmark, workload, backend):
    _describe(benchmark, workload, backend.__name__)
    run = WORKLOADS[workload](backend)
    result = benchmark(run)
    assert np.all(np.isfinite(result.detach().numpy()))


@pytest.mark.parametrize("other", sorted(PEERS) + sorted(VARIANTS))
@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_workload_on_peer(benchmark, workload, other):
    """The peers (where installed) and torch's variants, in the same group as engine and torch."""
    if other in PEERS:
        pytest.importorskip(other)  # the test extra installs both peers
    run = build(workload, other)
    assert run is not None, f"{other} has no adapter for {workload}"
    _describe(benchmark, workload, other)
    result = benchmark(run)
    result = result.detach().numpy() if isinstance(result, torch.Tensor) else np.asarray(result)
    assert np.all(np.isfinite(result))


@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_workloads_compute_the_same_on_both_backends(workload):
    got = WORKLOADS[workload](engine)().detach().numpy().astype(np.float64)
    want = WORKLOADS[workload](torch)().detach().numpy().astype(np.float64)
    # Norm-wise: float32 sums of 1024 products differ elementwise with summation order.
    assert got.shape == want.shape
    assert np.linalg.norm(got - want) <= 1e-5 * max(np.linalg.norm(want), 1.0)


@pytest.mark.parametrize("peer", sorted(PEERS))
@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_peer_adapters_compute_what_torch_computes(workload, peer):
    """A peer's adapter is the same workload in its own API: same inputs, same result."""
    pytest.importorskip(peer)  # the test extra installs both peers, so CI runs these
    run = build(workload, peer)
    assert run is not None, f"{peer} has no adapter for {workload}"
    got = np.asarray(run(), dtype=np.float64)
    want = WORKLOADS[workload](torch)().detach().numpy().astype(np.float64)
    assert got.shape == want.shape
    assert np.linalg.norm(got - want) <= 1e-5 * max(np.linalg.norm(want), 1.0)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_a_variant_runs_torch_on_its_threads_and_restores_them(variant, monkeypatch):
    seen = []
    real = torch.tanh
    monkeypatch.setattr(torch.Tensor, "tanh", lambda self: seen.append(torch.get_num_threads()) or real(self))
    before = torch.get_num_threads()
    run = build("W1", variant)
    got = run().detach().numpy()
    assert seen and set(seen) == {VARIANTS[variant][1]} and torch.get_num_threads() == before
    np.testing.assert_array_equal(got, WORKLOADS["W1"](torch)().detach().numpy())
