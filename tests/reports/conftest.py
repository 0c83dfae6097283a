"""Results directories for the report tests, written by hand (see reports_testkit)."""

from __future__ import annotations

import pytest

from reports_testkit import (
    CONFORMANCE_META, META, conformance, coverage, finding, grad_finding, make_run, outcome, summary,
    tensor,
)

# Ops of the 20-finding campaign, each blamed for one or two findings.
CAMPAIGN_OPS = ["add", "sub", "mul", "div", "matmul", "exp", "log", "sin", "cos", "tanh",
                "relu", "sigmoid", "pow", "sqrt", "sum", "mean", "amax", "clamp"]


@pytest.fixture
def clean_run(tmp_path):
    return make_run(tmp_path / "clean", [summary(coverage=coverage(["add", "mul"]))])


@pytest.fixture
def two_findings_run(tmp_path):
    grad_engine = outcome(
        values=[tensor([[1.0, 2.0], [3.0, 4.0]], [2, 2], grad_fn="MulBackward0", ref="v1")],
        grads={"x0": tensor([2.0, 3.0], [2]), "x1": None},
    )
    grad_torch = outcome(
        values=[tensor([[1.0, 2.0], [3.0, 4.0]], [2, 2], grad_fn="MulBackward0", ref="v1")],
        grads={"x0": tensor([2.0, 5.0], [2]), "x1": None},
        warnings=[{"category": "UserWarning", "message": "torch warns"}],
    )
    error_engine = outcome(
        values=[{"ref": "v1", "error": {"type": "ValueError", "message": "bad shapes"}}],
        error={"type": "ValueError", "message": "bad shapes", "where": "step 1"},
    )
    error_torch = outcome(
        values=[{"ref": "v1", "error": {"type": "RuntimeError", "message": "size mismatch"}}],
        error={"type": "RuntimeError", "message": "size mismatch", "where": "step 1"},
    )
    records = [
        finding("gradient", "mul", engine=grad_engine, torch=grad_torch, where="grad x0",
                detail="max abs error 2.0 at (1,) in grad of x0",
                adjudication="torch agrees with finite differences", steps=2,
                found_after_examples=123, found_after_seconds=4.2),
        finding("error-type", "matmul", "float64", engine=error_engine, torch=error_torch),
        summary(examples=5000, valid=4100, raised_both=900,
                verdicts={"match": 4990, "gradient": 3, "error-type": 7},
                ops={"mul": {"examples": 900, "findings": 1},
                     "matmul": {"examples": 400, "findings": 1},
                     "add": {"examples": 1200, "findings": 0}},
                findings=2),
    ]
    return make_run(tmp_path / "two", records)


@pytest.fixture
def interrupted_run(tmp_path):
    records = [
        finding("value", "exp"),
        finding("gradient", "exp", "float64"),
        finding("dtype", "add"),
    ]
    return make_run(tmp_path / "interrupted", records)


@pytest.fixture
def campaign_run(tmp_path):
    """20 findings over 18 ops with realistic outcomes, and a coverage matrix."""
    findings = []
    for n in range(20):
        op = CAMPAIGN_OPS[n % len(CAMPAIGN_OPS)]
        dtype = ("float32", "float64")[(n // len(CAMPAIGN_OPS) + n) % 2]  # 20 distinct signatures
        findings.append(grad_finding(op, dtype, scale=1 + n, found_after_examples=100 * n + 7,
                                     found_after_seconds=1.5 * n))
    found = {}
    for record in findings:
        found.setdefault(record["op"], {}).setdefault(record["dtype"], 0)
        found[record["op"]][record["dtype"]] += 1
    ops = {op: {"examples": 400 + 25 * n, "findings": sum(found.get(op, {}).values())}
           for n, op in enumerate(CAMPAIGN_OPS)}
    record = summary(examples=12_000, valid=10_500, raised_both=1_500, duration_seconds=600.0,
                     verdicts={"match": 11_900, "gradient": 100}, ops=ops, findings=20,
                     coverage=coverage(CAMPAIGN_OPS, found))
    return make_run(tmp_path / "campaign", [*findings, record])


@pytest.fixture
def nightly(tmp_path):
    """Four nightly runs: A and B, then C appears, then B is fixed, then A is
    fixed and D appears while the last run is interrupted."""
    folder = tmp_path / "nightly"
    plan = [("2026-11-24", ["exp", "log"], 4000, "completed"),
            ("2026-11-25", ["exp", "log", "sin"], 4200, "completed"),
            ("2026-11-26", ["exp", "sin"], 3900, "completed"),
            ("2026-11-27", ["sin", "tanh"], 1500, "interrupted")]
    for day, ops, examples, status in plan:
        records = [grad_finding(op) for op in ops]
        records.append(summary(status=status, examples=examples, findings=len(ops),
                               ops={op: {"examples": 100, "findings": 1} for op in ops},
                               duration_seconds=600.0 if status == "completed" else 210.0))
        make_run(folder / day, records, meta={**META, "started": f"{day}T02:00:00+00:00", "seed": day})
    (folder / "notes.txt").write_text("not a run")
    (folder / "scratch").mkdir()  # a directory that is not a run
    return folder


@pytest.fixture
def conformance_run(tmp_path):
    """A conformance run: two ops in two dtypes and in-place, one failure, a
    skipped test, and a module without an op parameter."""
    failure = ("def test_op_matches_torch(op, dtype_name, index):\n>       check(op)\n"
               "E       AssertionError: Tensor-likes are not close!\n"
               "E       Mismatched elements: 1 / 6 (16.7%)\n")
    records = [
        conformance("mul", "float32"), conformance("mul", "float32", index=1),
        conformance("mul", "float64"),
        conformance("mul", "inplace", test="test_inplace_variant_matches_torch", dtype="float32"),
        conformance("exp", "float32"),
        conformance("exp", "float64", "failed", message="AssertionError: Tensor-likes are not close!",
                    longrepr=failure, duration=0.25),
        conformance("exp", "inplace", "skipped", test="test_inplace_variant_matches_torch",
                    message="no in-place variant", dtype="float32"),
        conformance("tests/engine/test_format.py", "tests", test="test_repr", group="module",
                    module="tests/engine/test_format.py", duration=0.5),
        {"type": "summary", "status": "complete", "tests": 8,
         "outcomes": {"passed": 6, "failed": 1, "skipped": 1}, "duration_seconds": 1.2, "exitstatus": 1},
    ]
    return make_run(tmp_path / "conformance", records, meta=CONFORMANCE_META)
