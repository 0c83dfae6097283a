"""A catalogue of realistic engine bugs, planted by monkeypatching the engine in this process.

Each mutant is a small function that patches `engine` (rules, helpers,
functions; the engine is in-process Python) and never edits its files. The
self-test (`fuzz.selftest`) plants one per fresh process and checks that a
short campaign finds it: a finding that the planted bug causes (an unmutated
copy of the engine, `pristine_engine`, agrees with torch on its program). Each
mutant also names the kinds and ops of the findings it is expected to show.

    >>> from fuzz.mutants import MUTANTS, apply_mutant
    >>> apply_mutant("sub-other-sign")   # engine.sub's gradient for `other` is now +g
"""
from __future__ import annotations

import functools
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Mutant:
    """One planted bug: what it breaks, how to plant it, and the findings it is expected to show."""

    name: str
    description: str
    plant: Callable[[], None]
    kinds: tuple[str, ...]       # divergence kinds it is expected to show
    ops: tuple[str, ...]         # ops such a finding names (empty: any op)
    focus: tuple[str, ...]       # the ops a targeted campaign draws
    features: bool = False       # the targeted campaign also draws autograd features (in-place steps,
    #                              hooks, retain_grad, no_grad regions, repeated and double backward)

    def expects(self, finding: dict) -> bool:
        """Whether a campaign finding is of a kind and on an op this bug is expected to show.

        A bug in a helper many ops share (a reduction's dims, a broadcast reduction) also
        shows through those ops; whether a finding is caused by the bug is decided by
        replaying it on `pristine_engine` (see fuzz.selftest), not by this.
        """
        return finding.get("kind") in self.kinds and (not self.ops or finding.get("op") in self.ops)


def _sub_other_sign():
    from engine import _ops
    # The bug: d(a - b)/db = +g.
    _ops._SUB.backward = lambda ctx, g: (g, (g if ctx.alpha == 1 else g * ctx.alpha) if ctx.needs[1] else None)


def _broadcast_not_reduced():
    from engine import _autograd
    correct = _autograd.sum_to_shape

    def sum_to_shape(grad, shape):
        # The bug: a size-1 dim that was broadcast keeps its first slice instead of the sum.
        if isinstance(grad, np.ndarray) and grad.ndim == len(shape) and grad.shape != shape:
            index = tuple(slice(0, 1) if n == 1 else slice(None) for n in shape)
            return grad[index]
        return correct(grad, shape)
    _autograd.sum_to_shape = sum_to_shape


def _relu_kink():
    from engine import _ops
    rule = _ops._RELU
    # The bug: relu'(0) = 1 (the rule looks at the input: x >= 0 passes the gradient).
    rule.saves = {"result": None, "self": None}
    rule.save_plan = (("result", None, None), ("self", None, 0))
    rule.backward = lambda ctx, g: (_ops.v_masked_zero(g, _ops.v_data(ctx.self) < 0),)


def _max_tie_first():
    from engine import _ops, _ops_reduce

    def first_extreme(ctx, g):
        # The bug: a tie sends the whole gradient to the first maximum (torch shares it evenly).
        x, result = _ops.v_data(ctx.self), _ops.v_data(ctx.result)
        mask = np.zeros(x.shape, bool)
        flat = np.flatnonzero(np.isnan(x) if np.isnan(result) else x == result)
        if flat.size:
            mask.flat[flat[0]] = True
        return (_ops.v_where(mask, g, _ops_reduce.v_const(0, g)),)
    _ops_reduce._MAX_ALL.backward = first_extreme


def _accumulate_overwrites():
    from engine import _autograd
    correct = _autograd._accumulate

    def accumulate(variable, g, create_graph):
        # The bug: AccumulateGrad replaces .grad instead of adding to it.
        variable._grad = None
        return correct(variable, g, create_graph)
    _autograd._accumulate = accumulate


def _inplace_no_version_bump():
    from engine import _ops_inplace
    correct = _ops_inplace.write_result

    @functools.wraps(correct)
    def write_result(self, result):
        # The bug: the in-place write does not bump the version counter, so backward
        # uses a saved tensor that was overwritten instead of raising.
        version = self._vc[0]
        out = correct(self, result)
        self._vc[0] = version
        return out
    _ops_inplace.write_result = write_result


def _nonscalar_backward_message():
    from engine import autograd
    correct = autograd._make_grads

    def make_grads(outputs, grads):
        try:
            return correct(outputs, grads)
        except RuntimeError as error:
            if str(error) == "grad can be implicitly created only for scalar outputs":
                raise RuntimeError("grad can only be created implicitly for scalar outputs") from None
            raise
    autograd._make_grads = make_grads


def _scalar_promotes_to_float64():
    import engine
    from engine import _dtype, _ops
    correct = _ops._binary_operands

    def binary_operands(op, input, other):
        a, b, dt = correct(op, input, other)
        # The bug: a tensor (int or float32) times a Python float gives float64.
        if op == "mul" and (type(input) is float or type(other) is float) and dt is not _dtype.float64:
            return a, b, _dtype.float64
        return a, b, dt
    _ops._binary_operands = binary_operands
    # engine.mul is the argument parser's wrapper of _ops.mul, which calls the patched name.
    assert getattr(engine.mul, "__wrapped__", engine.mul) is _ops.mul


def _reduction_dim_off_by_one():
    from engine import _ops
    correct = _ops._reduction_dims

    def reduction_dims(dim, ndim):
        dims = correct(dim, ndim)
        # The bug: a reduction over dim d > 0 reduces over d - 1.
        if dims is None:
            return None
        shifted = tuple(d - 1 if d > 0 else d for d in dims)
        return shifted if len(set(shifted)) == len(shifted) else dims
    _ops._reduction_dims = reduction_dims


def _exp_saves_input():
    from engine import _ops
    rule = _ops._EXP
    # The bug: exp's rule multiplies by the input instead of the result.
    rule.saves = {"self": None}
    rule.save_plan = (("self", None, 0),)
    rule.backward = lambda ctx, g: (g * ctx.self,)


def _tanh_node_name():
    from engine import _autograd, _ops
    # The bug: tanh records a node named TanhBackward1.
    _ops._TANH.node = _autograd.node_class("TanhBackward1")


def _mul_rule_swapped():
    from engine import _ops
    # The bug: mul's gradient for `self` uses `self` instead of `other` (saves both).
    rule = _ops._MUL
    rule.saves = {"other": None, "self": None}
    rule.save_plan = (("other", None, 1), ("self", None, 0))
    rule.backward = lambda ctx, g: (g * ctx.self if ctx.needs[0] else None,
                                    g * ctx.self if ctx.needs[1] else None)


def _permute_not_inverted():
    from engine import _ops_shape
    # The bug: permute's backward applies the permutation again instead of its inverse
    # (right for swaps, wrong for a 3-cycle such as (2, 0, 1)).
    _ops_shape._PERMUTE.backward = lambda ctx, g: (_ops_shape.v_permute(g, tuple(ctx.dims)),)


def _hook_result_ignored():
    from engine import _autograd
    correct = _autograd._run_tensor_hooks

    def run_tensor_hooks(node, g, create_graph, as_tensor):
        # The bug: tensor hooks run, but the gradient they return is dropped.
        if node._pre_hooks:
            for hook in list(node._pre_hooks.values()):
                hook(as_tensor(g, node.variable.dtype if isinstance(node, _autograd.AccumulateGrad)
                               else _autograd._dtype_of(g)))
            hooks, node._pre_hooks = node._pre_hooks, None
            try:
                return correct(node, g, create_graph, as_tensor)
            finally:
                node._pre_hooks = hooks
        return correct(node, g, create_graph, as_tensor)
    _autograd._run_tensor_hooks = run_tensor_hooks


def _no_grad_records():
    from engine import _autograd
    # The bug: `with no_grad():` leaves graph recording on.
    _autograd.no_grad.__enter__ = lambda self: None
    _autograd.no_grad.__exit__ = lambda self, *exc: False


def _cumsum_forward_scan():
    from engine import _ops_reduce
    # The bug: cumsum's gradient is the cumulative sum of g in the forward direction
    # (it must run from the end: output j depends on inputs i <= j).
    _ops_reduce._CUMSUM.backward = lambda ctx, g: (g if ctx.dim is None else _ops_reduce.v_cumsum(g, ctx.dim),)


def _roll_not_inverted():
    from engine import _ops_shape
    # The bug: roll's gradient is rolled by +shifts, like the input, instead of back by -shifts.
    # Under sum().backward() every gradient element is 1 and any roll leaves it unchanged.
    _ops_shape._ROLL.backward = lambda ctx, g: (_ops_shape.v_roll(g, tuple(ctx.shifts), ctx.dims),)


def _softmax_last_dim():
    from engine.nn import functional
    # The bug: softmax's backward sums g * y over the last dim, whatever dim the forward used.
    functional._SOFTMAX.backward = lambda ctx, g: (
        (g - functional.v_sum(g * ctx.result, -1, True)) * ctx.result,)


def _zero_dim_promotes():
    from engine import _dtype
    correct = _dtype.result_type

    def result_type(tensors, scalars=()):
        # The bug: a 0-d tensor takes part in promotion like a dimensioned one, so a float64
        # 0-d tensor times a float32 vector gives float64 (torch: float32).
        tensors = list(tensors)
        widest = None
        for t in tensors:
            widest = _dtype.promote(widest, t.dtype)
        result = correct(tensors, scalars)
        return widest if widest is not None and result.category == widest.category else result
    _dtype.result_type = result_type


def _freed_graph_message():
    from engine import _autograd
    # The bug: the "backward through the graph a second time" error advises the wrong flag.
    _autograd._FREED_MESSAGE = _autograd._FREED_MESSAGE.replace("Specify retain_graph=True",
                                                                "Specify retain_graph=False")


def _index_select_overwrites():
    from engine import _ops_index

    def index_add(g, shape, dim, index):
        out = np.zeros(shape, g.dtype)
        if not shape:
            return out + g.reshape(())
        # The bug: gradients of a repeated index overwrite each other (torch adds them).
        out[(slice(None),) * dim + (index.reshape(-1),)] = g
        return out
    _ops_index._index_add_np = index_add


def _int_division_truncates():
    from engine import _ops
    correct = _ops._binary

    def binary(op, rule, fn, input, other, float_result=False):
        # The bug: true division of integer tensors stays integral (torch: the default float dtype).
        return correct(op, rule, fn, input, other, float_result=float_result and op != "div")
    _ops._binary = binary


def _retained_before_hooks():
    from engine import _autograd
    correct = _autograd._run_tensor_hooks

    def run_tensor_hooks(node, g, create_graph, as_tensor):
        # The bug: retain_grad stores the gradient before the tensor's hooks replace it
        # (torch runs the retain_grad store last).
        if g is None or not node._pre_hooks or node._retained is None:
            return correct(node, g, create_graph, as_tensor)
        retained, node._retained = node._retained, None
        hooks, node._pre_hooks = node._pre_hooks, None
        try:
            node._retained = retained
            correct(node, g, create_graph, as_tensor)
            node._retained, node._pre_hooks = None, hooks
            return correct(node, g, create_graph, as_tensor)
        finally:
            node._retained, node._pre_hooks = retained, hooks
    _autograd._run_tensor_hooks = run_tensor_hooks


def _view_own_version():
    from engine import _ops
    correct = _ops._link_view

    def link_view(out, inputs):
        correct(out, inputs)
        # The bug: a view counts its own versions, so modifying it in place does not
        # invalidate what backward saved of its base (torch shares one counter).
        out._vc = [out._vc[0]]
    _ops._link_view = link_view


def _detach_copies():
    from engine import _tensor
    # The bug: detach() copies the data (torch shares storage: in-place writes show through).
    _tensor.Tensor.detach = lambda self: _tensor.Tensor._make(self._data.copy(), self.dtype)


GRADIENT_KINDS = ("gradient", "gradient-none")
MUTANTS = {mutant.name: mutant for mutant in (
    Mutant("sub-other-sign", "wrong sign: sub's gradient for `other` is +g", _sub_other_sign,
           GRADIENT_KINDS, ("sub",), ("sub", "add", "neg", "sum", "exp")),
    Mutant("broadcast-not-reduced", "missing broadcast reduction: a broadcast size-1 dim keeps one slice",
           _broadcast_not_reduced, GRADIENT_KINDS + ("shape", "error-vs-success"), (),
           ("add", "mul", "sub", "sum", "neg")),
    Mutant("relu-kink", "wrong kink convention: relu'(0) = 1", _relu_kink, GRADIENT_KINDS, ("relu",),
           ("relu", "add", "mul", "sum")),
    Mutant("max-tie-first", "wrong tie convention: max() gives a tie's gradient to the first maximum",
           _max_tie_first, GRADIENT_KINDS, ("max",), ("max", "add", "mul", "abs")),
    Mutant("accumulate-overwrites", "dropped accumulation: AccumulateGrad overwrites .grad",
           _accumulate_overwrites, GRADIENT_KINDS, (), ("add", "mul", "sum", "exp"), features=True),
    Mutant("inplace-no-version-bump", "missing version-counter bump: in-place ops keep the version",
           _inplace_no_version_bump, ("error-vs-success", "gradient", "value"), (), ("mul", "exp", "add", "sum"),
           features=True),
    Mutant("nonscalar-backward-message", "wrong error message: backward() on a non-scalar output",
           _nonscalar_backward_message, ("error-message",), (), ("mul", "add", "exp", "sum")),
    Mutant("scalar-promotes-float64", "wrong dtype promotion: a tensor times a Python float is float64",
           _scalar_promotes_to_float64, ("dtype", "error-type", "error-message", "error-vs-success"), ("mul",),
           ("mul", "add", "sum")),
    Mutant("reduction-dim-off-by-one", "off-by-one: a reduction over dim d > 0 reduces dim d - 1",
           _reduction_dim_off_by_one, ("shape", "value", "gradient", "error-vs-success", "error-message"),
           ("sum", "mean"), ("sum", "mean", "mul", "add")),
    Mutant("exp-saves-input", "wrong saved value: exp's rule uses the input, not the result",
           _exp_saves_input, GRADIENT_KINDS, ("exp",), ("exp", "add", "mul", "sum")),
    Mutant("tanh-node-name", "wrong grad_fn name: tanh records TanhBackward1", _tanh_node_name,
           ("grad-fn",), ("tanh",), ("tanh", "add", "mul", "sum")),
    Mutant("mul-rule-swapped", "wrong operand in a rule: mul's gradient for `self` uses `self`",
           _mul_rule_swapped, GRADIENT_KINDS, ("mul",), ("mul", "add", "sum", "neg")),
    Mutant("permute-not-inverted", "wrong inverse: permute's gradient applies the permutation, not its inverse",
           _permute_not_inverted, GRADIENT_KINDS + ("shape",), ("permute",), ("permute", "sum", "mul", "add")),
    Mutant("hook-result-ignored", "dropped hook result: a tensor hook's returned gradient is ignored",
           _hook_result_ignored, GRADIENT_KINDS, (), ("mul", "add", "sum", "exp"), features=True),
    Mutant("no-grad-records", "grad mode ignored: ops under no_grad() record a graph",
           _no_grad_records, GRADIENT_KINDS + ("grad-fn", "error-vs-success", "error-message", "error-type"), (),
           ("mul", "add", "sum", "exp"), features=True),
    Mutant("cumsum-forward-scan", "wrong scan direction: cumsum's gradient sums g forwards, not from the end",
           _cumsum_forward_scan, GRADIENT_KINDS, ("cumsum",), ("cumsum", "sum", "mul", "add")),
    Mutant("roll-not-inverted", "wrong direction: roll's gradient is rolled like the input, not back",
           _roll_not_inverted, GRADIENT_KINDS, ("roll",), ("roll", "mul", "add", "sum")),
    Mutant("softmax-last-dim", "wrong dim in a rule: softmax's backward reduces over the last dim",
           _softmax_last_dim, GRADIENT_KINDS, ("nn.functional.softmax",),
           ("nn.functional.softmax", "mul", "add", "sum")),
    Mutant("zero-dim-promotes", "wrong dtype promotion: a 0-d tensor promotes like a dimensioned one",
           _zero_dim_promotes, ("dtype", "error-type", "error-message", "error-vs-success"), (),
           ("mul", "add", "maximum", "where", "sum")),
    Mutant("freed-graph-message", "wrong error message: a second backward through a freed graph",
           _freed_graph_message, ("error-message",), (), ("exp", "mul", "sigmoid", "sum"), features=True),
    Mutant("index-select-overwrites", "dropped accumulation: index_select's gradient overwrites at repeated indices",
           _index_select_overwrites, GRADIENT_KINDS, ("index_select",), ("index_select", "mul", "add", "sum")),
    Mutant("int-division-truncates", "wrong dtype promotion: int / int stays an integer tensor",
           _int_division_truncates, ("dtype", "value", "error-type", "error-message", "error-vs-success"), ("div",),
           ("div", "mul", "add", "sum")),
    Mutant("retained-before-hooks", "wrong order: retain_grad keeps the gradient before the tensor's hooks change it",
           _retained_before_hooks, GRADIENT_KINDS, ("retain_grad", "register_hook"), ("mul", "add", "exp", "sum"),
           features=True),
    Mutant("view-own-version", "missing shared version counter: a view counts its own in-place writes",
           _view_own_version, ("error-vs-success", "gradient", "value"), (), ("mul", "exp", "transpose", "sum"),
           features=True),
    Mutant("detach-copies", "wrong aliasing: detach() copies instead of sharing storage",
           _detach_copies, ("value", "gradient", "error-vs-success"), (), ("mul", "exp", "add", "sum"), features=True),
)}


PRISTINE_ENGINE = "gradfuzz_pristine_engine"


def pristine_engine() -> ModuleType:
    """A second, independent copy of the engine package, which no mutant patches.

    The self-test replays a finding on it to tell whether the planted bug causes the
    finding or the engine showed it anyway.
    """
    return engine_copy(PRISTINE_ENGINE)


def engine_copy(name: str) -> ModuleType:
    """The engine package loaded once more, as module ``name`` (the same copy on later calls).

    Loaded from the same files under another module name, it has module objects (rules,
    helpers, functions) of its own: patching `engine._ops` leaves the copy's `_ops` as
    written, and patching the copy leaves `engine` as it is. (The engine imports its own
    modules relatively, so a copy never reaches back into `engine`.)
    """
    if name in sys.modules:
        return sys.modules[name]
    import engine
    package = Path(engine.__file__).parent
    spec = importlib.util.spec_from_file_location(name, package / "__init__.py",
                                                  submodule_search_locations=[str(package)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def apply_mutant(name: str) -> Mutant:
    """Plant mutant ``name`` into this process's engine (irreversibly: use a fresh process)."""
    if name not in MUTANTS:
        raise ValueError(f"unknown mutant {name!r}; the catalogue: {', '.join(MUTANTS)}")
    mutant = MUTANTS[name]
    mutant.plant()
    return mutant
