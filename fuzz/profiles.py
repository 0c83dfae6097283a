"""Hypothesis profiles for gradfuzz's test suites.

"ci" is bounded and deterministic (the same examples on every run, no example
database), so a red CI run is reproducible; "nightly" draws many more examples
at random and keeps a database, to find what CI does not.

In ``tests/conftest.py``::

    from fuzz.profiles import register_profiles
    register_profiles()          # "ci" unless pytest is given --hypothesis-profile nightly
"""
from __future__ import annotations

from hypothesis import HealthCheck, settings

CI, NIGHTLY = "ci", "nightly"
PROFILES = (CI, NIGHTLY)

# Programs run torch (and the engine) several times each: too slow for
# Hypothesis' default health checks, which are not about correctness.
_SLOW_EXAMPLES = [HealthCheck.too_slow, HealthCheck.data_too_large]


def register_profiles(default: str = CI) -> None:
    """Register the "ci" and "nightly" profiles and load ``default``.

    pytest's ``--hypothesis-profile NAME`` option still wins: Hypothesis'
    plugin loads it after conftest files run.
    """
    if default not in PROFILES:
        raise ValueError(f"unknown Hypothesis profile {default!r}; gradfuzz defines {PROFILES}")
    settings.register_profile(CI, max_examples=60, derandomize=True, database=None, deadline=None,
                              suppress_health_check=_SLOW_EXAMPLES, print_blob=True)
    settings.register_profile(NIGHTLY, max_examples=5000, deadline=None,
                              suppress_health_check=_SLOW_EXAMPLES, print_blob=True)
    settings.load_profile(default)
