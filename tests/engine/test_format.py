"""engine._format.format_tensor must print exactly like torch 2.13's repr/str."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from engine._format import format_tensor

NAN, INF = math.nan, math.inf
DTYPES = {"float32": np.float32, "float64": np.float64, "int64": np.int64, "bool": np.bool_}
FLOAT_NAMES = ("float32", "float64")
_rng = np.random.default_rng(1234)


def f32(values):
    return np.array(values, dtype=np.float32)


def f64(values):
    return np.array(values, dtype=np.float64)


def i64(values):
    return np.array(values, dtype=np.int64)


def bools(values):
    return np.array(values, dtype=np.bool_)


def dtype_name(arr: np.ndarray) -> str:
    return {np.dtype(v): k for k, v in DTYPES.items()}[arr.dtype]


def check_against_torch(arr: np.ndarray, variant: str = "plain") -> None:
    """Compare with torch for a plain, a leaf requires_grad, or a MulBackward0 tensor."""
    name = dtype_name(arr)
    if variant == "plain":
        tensor, suffixes = torch.tensor(arr), []
    elif variant == "requires_grad":
        tensor, suffixes = torch.tensor(arr, requires_grad=True), ["requires_grad=True"]
    else:
        tensor = torch.tensor(arr, requires_grad=True) * 2
        suffixes = ["grad_fn=<MulBackward0>"]
    expected = repr(tensor)
    assert str(tensor) == expected
    actual = format_tensor(tensor.detach().numpy(), name, suffixes)
    assert actual == expected, f"\nexpected:\n{expected}\nactual:\n{actual}"


TRICKY_CASES = {
    # float notation choice and rounding
    "integral": f32([1.0, 2.0, 7.0]),
    "integral_negative": f32([-1.0, 20.0, -300.0]),
    "fractions": f32([1.5, -2.25, 3.125]),
    "not_representable": f32([0.1, 0.2, 0.3]),
    "rounds_up_to_one": f32([0.99995, 0.5]),
    "ratio_just_1000": f32([1.0, 1000.0]),
    "ratio_over_1000": f32([1.0, 1000.5]),
    "ratio_over_1000_integral": f32([1.0, 2000.0]),
    "max_exactly_1e8": f32([1e8, 2e7]),
    "max_over_1e8": f32([1e9, 2e9]),
    "min_exactly_1e-4": f64([1e-4, 2e-4]),
    "min_under_1e-4": f32([1e-5, 2e-5]),
    "wide_integral": f32([99999999.0, -12345678.0]),
    "wide_fraction": f32([123456.789, -0.5]),
    "large_magnitudes": f32([3.4e38, -1e30, 7.0]),
    "small_magnitudes": f32([1e-30, -3e-20, 1e-45]),
    "float64_extremes": f64([1e-300, 1e300, -5e-324]),
    "float64_ratio_overflows": f64([5e-324, 1.7e308]),
    # special values
    "nan_inf_mix": f32([NAN, INF, -INF, 1.0]),
    "only_nan": f32([NAN]),
    "only_infs": f32([INF, -INF, NAN]),
    "nan_with_fraction": f32([NAN, 1.5, -INF]),
    "nan_with_sci": f32([NAN, 1e10, -INF, 0.0]),
    "negative_zero": f32([-0.0]),
    "negative_zero_and_zero": f32([-0.0, 0.0]),
    "negative_zero_with_fraction": f32([-0.0, 1.5]),
    "negative_zero_with_sci": f32([-0.0, 1e-7]),
    "all_zeros": f32([0.0, 0.0, 0.0]),
    # wrapping of long rows
    "wrap_1d_float": f32(np.arange(30) * 1.5),
    "wrap_1d_linspace": f32(np.linspace(-1, 1, 50)),
    "wrap_1d_sci": f32(np.geomspace(1e-6, 1e6, 25)),
    "wrap_1d_int": i64(np.arange(-50, 50) * 7),
    "wrap_1d_bool": bools(np.arange(40) % 3 == 0),
    "wrap_1d_float64": f64(np.arange(40) / 7),
    "row_wider_than_line": f64([1.23456789e10] * 3 + [1e-300]),
    "wrap_2d": f32(_rng.standard_normal((3, 20))),
    "wrap_2d_int": i64(_rng.integers(-(10**6), 10**6, (4, 15))),
    # nesting
    "2d_small": f32([[1.0, 2.5], [-3.0, 4.0]]),
    "2d_single_column": f32([[1.0], [2.0], [3.0]]),
    "3d_int": i64(np.arange(24).reshape(2, 3, 4)),
    "3d_float_wrapping": f32(_rng.standard_normal((2, 2, 15)) * 100),
    "4d": f32(np.arange(16).reshape(2, 2, 2, 2) / 4),
    # summarization
    "summarized_1d": f32(np.arange(2000)),
    "summarized_1d_just_over": i64(np.arange(1001)),
    "not_summarized_at_threshold": f32(np.arange(1000) / 3),
    "summarized_1d_bool": bools(np.arange(1001) % 2 == 0),
    "summarized_1d_width_from_edges_only": f32([1.0] * 3 + [1e9] * 1000 + [2.0] * 3),
    "summarized_2d": f32(_rng.standard_normal((40, 40))),
    "summarized_2d_wide": f64(_rng.standard_normal((2, 600))),
    "summarized_2d_tall": i64(np.arange(1200).reshape(600, 2)),
    "summarized_3d": f32(np.arange(1331).reshape(11, 11, 11) - 600.5),
    # 0-d
    "scalar_fraction": f32(3.5),
    "scalar_integral": f32(7.0),
    "scalar_negative_zero": f32(-0.0),
    "scalar_nan": f32(NAN),
    "scalar_inf": f64(-INF),
    "scalar_tiny": f32(1e-9),
    "scalar_float64": f64(1 / 3),
    "scalar_int": i64(-3),
    "scalar_true": bools(True),
    "scalar_false": bools(False),
    # empties
    "empty_1d": f32([]),
    "empty_1d_float64": f64([]),
    "empty_1d_int": i64([]),
    "empty_1d_bool": bools([]),
    "empty_2x0": np.zeros((2, 0), np.float32),
    "empty_0x3": np.zeros((0, 3), np.float32),
    "empty_0x3_float64": np.zeros((0, 3), np.float64),
    "empty_0x0x2_int": np.zeros((0, 0, 2), np.int64),
    "empty_3x0_bool": np.zeros((3, 0), np.bool_),
    # bool and int64
    "bool_mixed": bools([True, False]),
    "bool_single": bools([True]),
    "bool_2d": bools([[False, False], [True, False]]),
    "int_negatives": i64([-1, 5, -100]),
    "int_extremes": i64([2**62, -(2**63), 0]),
    "int_zero": i64([0]),
    # float64 suffix placement
    "float64_simple": f64([0.1, 0.2]),
    "float64_line_almost_full": f64(np.arange(14)),
    "float64_line_full": f64(np.arange(15)),
    "float64_2d": f64([[1.0, 2.0], [3.0, 4.0]]),
    "float32_line_full": f32(np.arange(17) + 0.5),
}


@pytest.mark.parametrize("arr", TRICKY_CASES.values(), ids=TRICKY_CASES.keys())
def test_tricky_cases_match_torch(arr):
    check_against_torch(arr)


GRAD_CASES = {k: v for k, v in TRICKY_CASES.items() if dtype_name(v) in FLOAT_NAMES}


@pytest.mark.parametrize("variant", ["requires_grad", "grad_fn"])
@pytest.mark.parametrize("arr", GRAD_CASES.values(), ids=GRAD_CASES.keys())
def test_autograd_suffixes_match_torch(arr, variant):
    check_against_torch(arr, variant)


def test_float32_is_the_default_for_data_of_another_dtype():
    # The engine may hand over float64 storage for a float32 tensor.
    assert format_tensor(f64([0.1, 1.0]), "float32", []) == "tensor([0.1000, 1.0000])"


@st.composite
def random_arrays(draw):
    """Arrays up to 3-d with up to 40 elements per dim, in one of several value styles."""
    name = draw(st.sampled_from(sorted(DTYPES)))
    ndim = draw(st.integers(0, 3))
    shape = tuple(draw(st.lists(st.integers(0, 40), min_size=ndim, max_size=ndim)))
    size = math.prod(shape)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    if name == "bool":
        values = rng.random(size) < draw(st.sampled_from([0.0, 0.5, 1.0]))
    elif name == "int64":
        digits = draw(st.integers(0, 18))
        low = 0 if draw(st.booleans()) else -(10**digits)
        values = rng.integers(low, 10**digits, size, endpoint=True)
    else:
        width = 32 if name == "float32" else 64
        style = draw(st.sampled_from(["magnitudes", "palette"]))
        if style == "palette":
            # Few distinct, adversarial values chosen by Hypothesis (boundaries, rounding).
            palette = draw(st.lists(st.floats(width=width), min_size=1, max_size=6))
            values = rng.choice(np.array(palette, dtype=np.float64), size)
        else:
            max_exp = 38 if width == 32 else 300
            lo, hi = sorted(draw(st.lists(st.integers(-max_exp, max_exp), min_size=2, max_size=2)))
            values = rng.uniform(1, 10, size) * 10.0 ** rng.integers(lo, hi, size, endpoint=True)
            if draw(st.booleans()):
                values = np.round(values)
            if draw(st.booleans()):
                values *= rng.choice([-1.0, 1.0], size)
        special_rate = draw(st.sampled_from([0.0, 0.0, 0.1, 0.5]))
        specials = rng.choice(np.array([NAN, INF, -INF, 0.0, -0.0]), size)
        values = np.where(rng.random(size) < special_rate, specials, values)

    with np.errstate(over="ignore"):  # float32 overflow to inf is a wanted case
        arr = np.asarray(values, dtype=DTYPES[name]).reshape(shape)
    variant = "plain"
    if name in FLOAT_NAMES:
        variant = draw(st.sampled_from(["plain", "plain", "requires_grad", "grad_fn"]))
    return arr, variant


@settings(max_examples=300, deadline=None, derandomize=True)
@given(random_arrays())
def test_random_arrays_match_torch(case):
    arr, variant = case
    check_against_torch(arr, variant)
