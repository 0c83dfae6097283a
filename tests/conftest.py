"""Shared test configuration: Hypothesis profiles.

The bounded, deterministic "ci" profile is the default; run the larger one with
`pytest --hypothesis-profile nightly`.
"""
from fuzz.profiles import register_profiles

register_profiles()
