"""gradfuzz's fuzzer: the Program IR, Hypothesis strategies, the interpreter that
runs a Program on any backend speaking torch, the comparator, reproducers, and
the campaign runner behind the `gradfuzz` command."""
