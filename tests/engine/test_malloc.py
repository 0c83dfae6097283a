"""engine._malloc: freed memory is kept for the next large array (glibc only)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROUND = """
import resource, sys
import numpy as np
import engine
data = np.random.default_rng(0).uniform(-1, 1, (256, 256)).astype(np.float32)
def run():
    x = engine.tensor(data, requires_grad=True)
    y = x
    for _ in range(4):
        y = (y * 0.5 + 0.25).tanh().exp().sigmoid()
    y.sum().backward()
for _ in range(3):
    run()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    run()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


def _faults_per_round(**env) -> float:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    environment.update(env)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-c", ROUND], capture_output=True, text=True, check=True,
                         env=environment, cwd=root)
    return float(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux") or not os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc"),
                    reason="glibc's malloc only")
def test_a_round_of_large_elementwise_ops_reuses_freed_memory_instead_of_page_faulting():
    """With glibc's adaptive thresholds each round gave its memory back and faulted it in
    again (~1000 faults of 4 KiB for ~4 MiB of arrays); with fixed ones it stays."""
    kept = _faults_per_round()
    assert kept < 300
    assert kept < _faults_per_round(ENGINE_KEEP_MALLOC_DEFAULTS="1")


def test_the_users_malloc_settings_stand():
    from engine import _malloc
    os.environ["MALLOC_TRIM_THRESHOLD_"] = "1000"
    try:
        assert _malloc.keep_freed_memory() is False
    finally:
        del os.environ["MALLOC_TRIM_THRESHOLD_"]
