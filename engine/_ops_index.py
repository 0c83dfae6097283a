"""Ops of the `engine/_ops_index.py` section of the op table (see engine/optable.py).

Each public function here is one op: it computes with numpy and calls
`record(rule, inputs, result, dtype, **saved_values)`; its `Rule` is defined
next to it. See `engine/_ops.py` for the conventions rules follow.
"""
from __future__ import annotations
