"""In-place ops on views, against torch: the base's CopySlices node, the views' nodes
regenerated as AsStridedBackward0, and the gradients (first and second order) through them."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import engine

VIEWS = {
    "t": lambda b: b.t(),
    "transpose": lambda b: b.transpose(0, 1),
    "permute": lambda b: b.permute(1, 0),
    "rows": lambda b: b[1:],
    "columns": lambda b: b[:, 1:3],
    "select": lambda b: b[1],
    "element": lambda b: b[1, 2],
    "diagonal": lambda b: b.diagonal(),
    "diagonal-offset": lambda b: b.diagonal(1),
    "unsqueeze": lambda b: b.unsqueeze(0),
    "view": lambda b: b.view(12),
    "narrow": lambda b: b.narrow(0, 1, 2),
    "view-of-view": lambda b: b.t()[1:3],
    "expand": lambda b: b[:1].expand(3, 4),
    "ellipsis": lambda b: b[...],
}


def _write(op, v, w):
    """One in-place op on view `v`; `w` is another leaf that requires grad."""
    part = w[: v.shape[-1]] if v.ndim else w[0]
    if op == "mul_w":
        v.mul_(part)
    elif op == "copy_":
        v.copy_(part)
    elif op == "setitem":
        v[0] = w[0] * 3
    else:
        getattr(v, op)(*{"mul_": (2.0,), "fill_": (1.0,)}.get(op, ()))


def _program(module, view, op, no_grad, create_graph):
    x = module.tensor(np.arange(12.0).reshape(3, 4) / 7 + 0.5, requires_grad=True)
    w = module.tensor(np.arange(4.0) + 1.5, requires_grad=True)
    b = x * 1.5
    v = VIEWS[view](b)
    try:
        if op == "base_add_":
            b.add_(w[0] * b)
        elif no_grad:
            with module.no_grad():
                _write(op, v, w)
        else:
            _write(op, v, w)
        names = [None if t.grad_fn is None else t.grad_fn.name() for t in (v, b)]
        out = (v * v).sum() + (b * b * b).sum()
        if create_graph:
            grads = module.autograd.grad(out, (x, w), create_graph=True, allow_unused=True)
            sum(g.pow(2).sum() for g in grads if g is not None).backward()
        else:
            out.backward()
    except (RuntimeError, IndexError) as error:
        return f"{type(error).__name__}: {error}"
    return names, [None if t.grad is None else t.grad.numpy() for t in (x, w)]


WRITES = [(op, no_grad) for op in ("zero_", "fill_", "mul_", "exp_", "mul_w", "copy_", "setitem")
          for no_grad in (False, True)] + [("base_add_", False)]


@pytest.mark.parametrize("create_graph", [False, True])
@pytest.mark.parametrize("op, no_grad", WRITES)
@pytest.mark.parametrize("view", sorted(VIEWS))
def test_in_place_write_through_a_view_matches_torch(view, op, no_grad, create_graph):
    ours = _program(engine, view, op, no_grad, create_graph)
    theirs = _program(torch, view, op, no_grad, create_graph)
    if isinstance(theirs, str):
        assert ours == theirs
        return
    assert not isinstance(ours, str), ours
    assert ours[0] == theirs[0]          # node names of the view and of the base
    for got, want in zip(ours[1], theirs[1]):
        assert (got is None) == (want is None)
        if want is not None:
            np.testing.assert_allclose(got, want, rtol=1e-12)


def _views_after_base_change(module):
    x = module.tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    b = x * 2
    seen = {}
    t, row = b.t(), b[1]
    b.mul_(3)                            # another view of the base, or the base, changes
    seen["after base mul_"] = [t.grad_fn.name(), row.grad_fn.name(), t.grad_fn.next_functions[0][0].name()]
    fresh = b.t()
    seen["view made afterwards"] = fresh.grad_fn.name()
    (t * t).sum().backward()
    seen["grad"] = x.grad.numpy()
    leaf_view = x.t()
    with module.no_grad():
        x.mul_(1.0)                       # a leaf's view is replayed from its AccumulateGrad
    seen["leaf view"] = [leaf_view.grad_fn.name(), leaf_view.grad_fn.next_functions[0][0].name()]
    x.grad = None
    (leaf_view * 1).sum().backward()
    seen["leaf view grad"] = x.grad.tolist()
    return seen


def test_views_are_replayed_when_their_base_changes():
    ours, theirs = _views_after_base_change(engine), _views_after_base_change(torch)
    np.testing.assert_array_equal(ours.pop("grad"), theirs.pop("grad"))
    assert ours == theirs


def _refusals(module):
    x = module.tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    out = []
    cases = [
        ("unbind output modified", lambda b: b.unbind(0)[1].mul_(2)),
        ("split output modified", lambda b: b.split(2)[1].zero_()),
        ("split_with_sizes base modified", lambda b: (lambda parts: (b.add_(1), parts[1].grad_fn))(
            b.split_with_sizes([1, 3], 1))),
        ("no_grad view, base modified", lambda b: (lambda v: (b.add_(1), v.grad_fn))(_no_grad(module, b.t))),
        ("expanded view zeroed, backward", lambda b: (lambda v: (v.zero_(), (v * v).sum().backward()))(
            b[:1].expand(3, 4))),
    ]
    for label, case in cases:
        try:
            case(x * 1)
            out.append((label, None))
        except RuntimeError as error:
            out.append((label, str(error)))
    return out


def _no_grad(module, fn):
    with module.no_grad():
        return fn()


def test_refusals_around_views_match_torch():
    ours, theirs = _refusals(engine), _refusals(torch)
    assert all(message for _, message in theirs)
    assert ours == theirs


@pytest.mark.parametrize("key", [slice(None), (slice(None), slice(None)), Ellipsis, 0, (0, 1), None,
                                 (slice(0, 2), 1), (Ellipsis, 1), [0, 1]])
@pytest.mark.parametrize("value", ["number", "row", "full"])
def test_setitem_records_the_node_torch_records(key, value):
    names = []
    for module in (engine, torch):
        x = module.zeros(2, 3, requires_grad=True)
        b = x * 1
        v = {"number": 5.0, "row": module.ones(3), "full": module.ones(2, 3)}[value]
        try:
            b[key] = v
            names.append(b.grad_fn.name())
        except RuntimeError as error:
            names.append(str(error))
    assert names[0] == names[1]


def test_retained_gradient_follows_a_tensor_written_through_setitem():
    grads = []
    for module in (engine, torch):
        x = module.tensor([[-1.2, 0.0, -0.5], [0.0, 1.5, -3.0]], dtype=module.float64, requires_grad=True)
        v = module.sign(x)
        v.retain_grad()
        v[:, 2] = -2
        (v * 3).sum().backward()
        grads.append(v.grad.tolist())
    assert grads[0] == grads[1]


def test_matmul_results_are_not_views_of_their_intermediates():
    """torch's matmul ends with squeeze_ (1-d @ 2-d) or _unsafe_view (batched): an in-place
    op on the result records its own node, not AsStridedBackward0."""
    names = []
    for module in (engine, torch):
        out = []
        for a_shape, b_shape in [((3,), (3, 2)), ((2, 2, 3), (3, 4)), ((2, 2, 3), (2, 3, 4))]:
            a = module.ones(*a_shape, requires_grad=True)
            y = a.matmul(module.ones(*b_shape))
            y.exp_()
            out.append((y.grad_fn.name(), y._version))
        names.append(out)
    assert names[0] == names[1]


def test_a_view_requires_grad_once_its_base_does():
    seen = []
    for module in (engine, torch):
        y = module.zeros(3)
        v = y[1:]
        y.requires_grad_()
        first = (v.requires_grad, v.grad_fn)
        base = module.zeros(3)
        view = base[1:]
        w = module.ones(3, requires_grad=True)
        base.mul_(w * 2)              # the base enters the graph; the view follows it
        u = view * 3
        u.sum().backward()
        seen.append((first, view.requires_grad, u.grad_fn.name(), w.grad.tolist()))
    assert seen[0] == seen[1]


def test_views_of_no_grad_and_multi_output_views_inherit_their_refusals():
    outcomes = []
    for module in (engine, torch):
        x = module.ones(3, 4, requires_grad=True)
        b = x * 1
        with module.no_grad():
            nested = b.t()
        view_of_view = nested.diagonal()
        first = b.unbind(0)[1]
        view_of_output = first[1:]
        out = []
        for case in (lambda: view_of_view.mul_(2), lambda: view_of_output.mul_(2),
                     lambda: (b.add_(1), view_of_view.grad_fn)):
            try:
                case()
                out.append(None)
            except RuntimeError as error:
                out.append(str(error))
        outcomes.append(out)
    assert outcomes[0] == outcomes[1] and all(outcomes[0])


@pytest.mark.parametrize("view", ["base.squeeze()", "base.squeeze(1)", "base.unsqueeze(0)", "base.transpose(0, 2)",
                                  "base.view(-1)", "base[0]", "base.narrow(2, 0, 2)"])
def test_the_refusal_names_the_view_op_as_torch(view):
    # Fuzzer finding: a squeeze(dim) view of a no_grad view is "Output 0 of Squeeze1" in torch
    # (SqueezeBackward1: "Backward" and only a 0 suffix dropped).
    messages = []
    for module in (engine, torch):
        x = module.zeros(2, 1, 3, requires_grad=True)
        with module.no_grad():
            base = x.mH
        with pytest.raises(RuntimeError) as info:
            eval(view, {"base": base}).neg_()
        messages.append(str(info.value))
    assert messages[0] == messages[1]


@pytest.mark.parametrize("op", ["exp_", "neg_", "relu_", "reciprocal_", "zero_"])
def test_in_place_ops_on_empty_results_find_no_overlap_like_torch(op):
    """Fuzzer finding: numpy gives an empty product (outer of an empty vector) zero strides;
    torch counts any empty tensor as contiguous, so writing into it in place is allowed."""
    shapes = []
    for backend in (engine, torch):
        x = backend.tensor([], requires_grad=True)
        out = backend.outer(x, backend.tensor([1.0, -2.0, 0.0]))
        getattr(out, op)()
        out.sum().backward()
        shapes.append((tuple(out.shape), tuple(x.grad.shape)))
    assert shapes[0] == shapes[1]


@pytest.mark.parametrize("modify_first", [True, False])
def test_retain_grad_on_a_view_made_under_no_grad_does_nothing_even_after_its_base_changed(modify_first):
    # Fuzzer finding: torch's retain_grad does not read such a view's grad_fn (which raises once
    # its base was modified in place); retains_grad stays False; backward raises the view error.
    def program(backend):
        seen = []
        x = backend.zeros(2, 3, requires_grad=True)
        with backend.no_grad():
            v = backend.transpose(x, 0, 1)
        seen.append((v.is_leaf, v.requires_grad, v.retains_grad))
        if modify_first:
            v.detach().neg_()
        v.retain_grad()
        seen.append(v.retains_grad)
        if not modify_first:
            v.detach().neg_()
        seen.append(v.retains_grad)
        try:
            v.sum().backward()
        except RuntimeError as error:
            seen.append(str(error))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            seen.append((x.grad, v.grad))   # a leaf's, without the non-leaf warning
        seen.append([str(w.message) for w in caught])
        return seen
    assert program(engine) == program(torch)


# Views of a tensor that did not require grad when they were made (plain or chunk's multi-output
# views, or made under no_grad), whose base then took a gradient-carrying in-place op: no node until
# their grad_fn is read.
VIEWS_WITHOUT_NODE = {
    "slice": lambda b: b[:2],
    "chunk": lambda b: b.chunk(2)[0],
    "no_grad": lambda b: b[:2],
}


@pytest.mark.parametrize("action", ["retain_grad", "register_hook", "mul_", "grad"])
@pytest.mark.parametrize("view", sorted(VIEWS_WITHOUT_NODE))
def test_a_view_whose_node_is_not_set_yet_is_a_leaf_as_torchs_cpp_is_leaf(view, action):
    # Fuzzer finding (campaign seed 11): torch's retain_grad checks requires_grad (true through the
    # base) and then its C++ is_leaf, which reads the node field without regenerating it, so it does
    # nothing; the engine refused with "can't retain_grad on Tensor that has requires_grad=False".
    # Likewise .grad does not warn, and an in-place op is refused as on a leaf. register_hook reads
    # grad_fn (Python), which regenerates or raises; torch 2.13 crashes there for a plain view whose
    # grad_fn was never read, so that case reads it first.
    def program(backend):
        seen = []
        x = backend.tensor([1.0, -2.0, 3.0, 0.5], requires_grad=True)
        base = x.detach().clone()
        if view == "no_grad":
            with backend.no_grad():
                v = VIEWS_WITHOUT_NODE[view](base)
        else:
            v = VIEWS_WITHOUT_NODE[view](base)
        base.add_(x)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                if action == "register_hook":
                    if view == "slice":
                        seen.append(v.grad_fn.name())
                    v.register_hook(lambda grad: grad * 2)
                elif action == "grad":
                    seen.append(v.grad)
                else:
                    getattr(v, action)() if action == "retain_grad" else v.mul_(2.0)
                seen.append((v.requires_grad, v.retains_grad))
                (v * 3).sum().backward()
                seen.append((x.grad.tolist(), v.grad))
            except RuntimeError as error:
                seen.append(str(error))
        seen.append([str(w.message)[:40] for w in caught])
        return seen
    assert program(engine) == program(torch)


def _expanded(module, shape=(2, 1), size=(2, 3)):
    return module.tensor(np.arange(1.0, 1.0 + np.prod(shape)).reshape(shape)).expand(*size)


def _mask(module, rows):
    return module.tensor(np.array(rows, dtype=bool))


# In-place writes into a tensor whose elements share memory (expand): torch refuses some,
# warns about others, and the others write through the shared memory (each case returns the
# expanded tensor's base afterwards).
EXPANDED_WRITES = {
    "add_": lambda m: _expanded(m).add_(1.0),
    "add_ of an operand that does not broadcast": lambda m: _expanded(m).add_(m.ones(3, 3)),
    "copy_": lambda m: _expanded(m).copy_(m.ones(2, 3)),
    # (campaign seed 24: copy_ of the very same memory returns before torch's overlap checks;
    # setitem copies an expanded view of its value, whose stride 0 the partial-overlap check
    # gives up on)
    "copy_ of itself": lambda m: (lambda x: x.copy_(x))(_expanded(m)),
    "copy_ of its own expansion": lambda m: (lambda x: x.copy_(x._base.expand(2, 3)))(_expanded(m)),
    "setitem of its base": lambda m: (lambda x: x.__setitem__(slice(0, None), x._base))(
        _expanded(m, (2, 3), (4, 2, 3))),
    "setitem of itself": lambda m: (lambda x: x.__setitem__(Ellipsis, x))(_expanded(m, (2, 3), (4, 2, 3))),
    "setitem of a row of its base into a row": lambda m: (lambda x: x.__setitem__(0, x._base[0]))(
        _expanded(m, (2, 3), (4, 2, 3))),
    "setitem of its base, from the second row": lambda m: (lambda x: x.__setitem__(slice(1, None), x._base))(
        _expanded(m, (2, 3), (4, 2, 3))),
    "fill_ number": lambda m: _expanded(m).fill_(5.0),
    "fill_ tensor": lambda m: _expanded(m).fill_(m.tensor(5.0)),
    "zero_": lambda m: _expanded(m).zero_(),
    "setitem int": lambda m: _expanded(m).__setitem__(0, 5.0),
    "setitem ellipsis": lambda m: _expanded(m).__setitem__(Ellipsis, m.tensor(5.0)),
    "setitem column": lambda m: _expanded(m).__setitem__((Ellipsis, 0), 5.0),
    "setitem mask": lambda m: _expanded(m).__setitem__(_mask(m, [[True, False, False], [False, False, False]]), 5.0),
    "setitem mask of another shape": lambda m: _expanded(m).__setitem__(_mask(m, [[True] * 3] * 3), 5.0),
    "setitem mask, a view of itself as value": lambda m: (lambda x: x.__setitem__(x > 2, x[0, 1]))(
        m.tensor(np.arange(6.0).reshape(2, 3))),
    "setitem repeated index": lambda m: _expanded(m).__setitem__(m.tensor([1, 1]), m.tensor(5.0)),
    "setitem rows, last write wins": lambda m: _expanded(m, (1, 4), (3, 4)).__setitem__(
        m.tensor([0, 2, 1]), m.tensor(np.arange(12.0).reshape(3, 4))),
    "setitem columns, last write wins": lambda m: _expanded(m, (1, 4), (3, 4)).__setitem__(
        (slice(None), m.tensor([0, 2, 1])), m.tensor(np.arange(9.0).reshape(3, 3))),
    "setitem index out of bounds": lambda m: _expanded(m).__setitem__(m.tensor([5]), 1.0),
    "setitem too many indices": lambda m: _expanded(m).__setitem__(_mask(m, [[[True]] * 3] * 2), 1.0),
    "masked_fill_ some": lambda m: _expanded(m).masked_fill_(_mask(m, [[True, False, False], [False] * 3]), -1.0),
    "masked_fill_ none": lambda m: _expanded(m).masked_fill_(_mask(m, [[False] * 3] * 2), -1.0),
    "masked_fill_ 0-d tensor value": lambda m: _expanded(m).masked_fill_(
        _mask(m, [[False, False, True], [False] * 3]), m.tensor(-1.0)),
    "masked_fill_ mask that does not broadcast": lambda m: _expanded(m).masked_fill_(_mask(m, [[True] * 3] * 3), -1.0),
    "masked_fill_ larger mask": lambda m: _expanded(m).masked_fill_(m.ones(2, 2, 3, dtype=m.bool), -1.0),
    "masked_fill_ float mask": lambda m: _expanded(m).masked_fill_(m.ones(2, 3), -1.0),
    "scatter_": lambda m: _expanded(m).scatter_(0, m.zeros(1, 1, dtype=m.int64), -1.0),
    "scatter_ empty index": lambda m: _expanded(m).scatter_(0, m.zeros(0, dtype=m.int64), -1.0),
    "scatter_ index of other dims": lambda m: _expanded(m).scatter_(0, m.zeros(1, dtype=m.int64), -1.0),
    "scatter_ index out of bounds": lambda m: _expanded(m).scatter_(0, m.full((1, 1), 7), -1.0),
    "scatter_add_": lambda m: _expanded(m).scatter_add_(0, m.zeros(1, 1, dtype=m.int64), m.ones(1, 1)),
    "tril_": lambda m: _expanded(m).tril_(),
    "triu_": lambda m: _expanded(m).triu_(),
    "tril_ of expanded rows": lambda m: _expanded(m, (1, 3), (3, 3)).tril_(-1),
    "triu_ 3-d, expanded batch": lambda m: _expanded(m, (1, 3, 1), (3, 3, 2)).triu_(1),
    "tril_ 4-d, expanded first dim": lambda m: _expanded(m, (1, 2, 3, 3), (2, 2, 3, 3)).tril_(),
    "tril_ 4-d, kept size-1 dim": lambda m: _expanded(m, (1, 1, 3, 2), (2, 1, 3, 2)).tril_(),
    "tril_ 4-d, expanded columns": lambda m: _expanded(m, (1, 2, 3, 1), (1, 2, 3, 3)).tril_(),
    "tril_ 4-d, expanded second dim": lambda m: _expanded(m, (1, 1, 3, 3), (1, 2, 3, 3)).tril_(),
}


def _write_expanded(module, case):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            x = EXPANDED_WRITES[case](module)
            outcome = None if x is None else x._base.tolist() if x._base is not None else x.tolist()
        except (RuntimeError, IndexError) as error:
            outcome = f"{type(error).__name__}: {error}"
    return outcome, [str(w.message).split(" (Triggered internally")[0] for w in caught]


@pytest.mark.parametrize("case", sorted(EXPANDED_WRITES))
def test_in_place_writes_into_expanded_tensors_match_torch(case):
    """Fuzzer findings (masked_fill_ of an expanded tensor refused, scatter_'s shape error
    hidden behind the overlap error): which in-place ops torch allows on an expanded tensor,
    its warnings and errors in torch's order, and what the shared memory holds afterwards."""
    assert _write_expanded(engine, case) == _write_expanded(torch, case)


@pytest.mark.parametrize("op", ["masked_fill_", "tril_", "setitem"])
def test_backward_through_a_write_into_an_expanded_view_raises_as_torch(op):
    """Fuzzer finding: masked_fill_ of an expanded 0-d result works; torch's backward then
    refuses to copy the gradient into the view's overlapping part of the base's gradient,
    unless only the value needs one."""
    outcomes = []
    for module in (engine, torch):
        out = []
        for value_requires_grad in (False, True):
            x = module.tensor([[0.5], [2.0]], requires_grad=not value_requires_grad)
            value = module.tensor(3.0, requires_grad=value_requires_grad)
            v = (x * 2).expand(2, 3)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if op == "masked_fill_":
                    v.masked_fill_(module.tensor([[True, False, False], [False] * 3]), value)
                elif op == "tril_":
                    v.tril_()
                else:
                    v[module.tensor([[True, False, False], [False] * 3])] = value
            try:
                (v * v).sum().backward()
                out.append([None if t.grad is None else t.grad.tolist() for t in (x, value)])
            except RuntimeError as error:
                out.append(str(error))
        outcomes.append(out)
    assert outcomes[0] == outcomes[1]


def _exp_of_a_row(b):
    x = b.ones(2, 3, requires_grad=True)
    base = x * 1
    view = base[0]
    view.exp_()   # ExpBackward0 saves its output: the view
    return base, view


def _base_modified(b):
    base, view = _exp_of_a_row(b)
    base.zero_()
    return view, None


def _view_modified_again(b):
    base, view = _exp_of_a_row(b)
    view.mul_(2)
    return base, None


def _view_node_held(b):
    base, view = _exp_of_a_row(b)
    held = view.grad_fn
    view.mul_(2)
    return base, held


def _view_node_linked_by_a_later_op(b):
    base, view = _exp_of_a_row(b)
    later = view * 1
    base.zero_()
    return later, None


def _seed_4_program(b):
    # (fuzzer finding) nothing reads the view's node after exp_: it lives on in the view.
    base = b.matmul(b.zeros(2, dtype=b.float64, requires_grad=True),
                    b.zeros(1, 2, 1, dtype=b.float64, requires_grad=True))
    view = base.unsqueeze(0)
    view.clamp_(min=2)
    view.exp_()
    base.zero_()
    return base, view


def _seed_20_program(b):
    # (fuzzer finding) the view modified twice; its node after exp_ is linked by neg_'s node only.
    x = b.zeros(3, 4, dtype=b.float64, requires_grad=True)
    base = b.scatter_add(x, 1, b.tensor([[0, 0, 1], [3, 3, 3], [2, 0, 2]]),
                         b.zeros(3, 3, dtype=b.float64, requires_grad=True))
    view = b.transpose(base, 0, 1)
    view.exp_()
    view.neg_()
    return view, None


SAVED_VIEW_OUTPUT_MODIFIED = [_base_modified, _view_modified_again, _view_node_held, _view_node_linked_by_a_later_op,
                              _seed_4_program, _seed_20_program]


@pytest.mark.parametrize("retain_graph", [False, True])
@pytest.mark.parametrize("program", SAVED_VIEW_OUTPUT_MODIFIED)
def test_a_saved_view_output_modified_names_the_views_node_while_it_lives(program, retain_graph):
    # Fuzzer findings: torch's error named "output 0 of AsStrided" where the engine said Exp.
    # torch regenerates a view's node right after an in-place op on it and keeps a weak
    # reference to it in the saved output: the error names it while it lives (held by the
    # view until regenerated again, by a later op, or by the node of a later in-place op on the
    # view, which a backward without retain_graph releases before it reaches the saved output),
    # else the op's own node.
    outcomes = []
    for backend in (engine, torch):
        out, held = program(backend)
        with pytest.raises(RuntimeError) as info:
            out.sum().backward(retain_graph=retain_graph)
        outcomes.append(str(info.value))
        del held
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("view", ["squeeze", "squeeze dim", "squeeze dims", "transpose", "select", "unsqueeze"])
def test_refusal_of_a_view_of_a_no_grad_view_names_its_op_as_torch(view):
    """Fuzzer finding: torch names the view's node without "Backward" and a 0 suffix, so
    squeeze(dim) is Squeeze1 and squeeze(dims) Squeeze2 (the engine dropped the number)."""
    make = {"squeeze": lambda v: v.squeeze(), "squeeze dim": lambda v: v.squeeze(1),
            "squeeze dims": lambda v: v.squeeze((0, 1)), "transpose": lambda v: v.transpose(0, 1),
            "select": lambda v: v[0], "unsqueeze": lambda v: v.unsqueeze(0)}[view]
    messages = []
    for module in (engine, torch):
        x = module.zeros(4, 1, 3, requires_grad=True)
        with module.no_grad():
            base = x.mH
        try:
            make(base).neg_()
            messages.append(None)
        except RuntimeError as error:
            messages.append(str(error))
    assert messages[1] is not None and messages[0] == messages[1]


@pytest.mark.parametrize("gradient_of", ["transpose", "base"])
def test_an_in_place_op_on_a_view_backwards_from_a_non_contiguous_gradient(gradient_of):
    # Fuzzer finding: neg_ on a reshape of a base, then backward from base.T with an explicit
    # gradient: the op's gradient was written into a copy of the (transposed) incoming gradient
    # and lost, so the base's gradient was +1 where torch's is -1.
    def program(b):
        x = b.zeros(2, 3, dtype=b.float64, requires_grad=True)
        base = x * 1
        b.reshape(base, (3, 2)).neg_()
        out = base.T if gradient_of == "transpose" else base
        out.backward(gradient=b.tensor(np.arange(6.0).reshape(tuple(out.shape)).tolist(), dtype=b.float64))
        return x.grad.numpy().tolist()
    assert program(engine) == program(torch)


OPERAND_OVERLAPS = {
    "broadcast_to of a 0-d, times it": lambda m, x: m.broadcast_to(x, (1,)).mul_(x),
    "expand of a 0-d, plus it": lambda m, x: x.expand(1, 1).add_(x),
    "view of a 0-d, minus it": lambda m, x: x.view(1).sub_(x),
    "expand of a row, plus it": lambda m, x: x.view(1).expand(1, 1).add_(x.view(1)),
    "broadcast_to of a 0-d, plus a view of it": lambda m, x: m.broadcast_to(x, (1, 1)).add_(x.view(1, 1)),
}


@pytest.mark.parametrize("case", sorted(OPERAND_OVERLAPS))
def test_in_place_ops_refuse_an_operand_sharing_the_tensors_memory_through_broadcast_to(case):
    """Fuzzer finding: broadcast_to(v, (1,)).mul_(v) of a 0-d v: torch sees the same memory with
    other strides (a partial overlap) and refuses; numpy's broadcast_to reaches its base through
    a DummyArray, and the engine took the two for unrelated memory."""
    outcomes = []
    for m in (torch, engine):
        x = m.neg(m.tensor(2.0, requires_grad=True))
        try:
            outcomes.append(("ok", OPERAND_OVERLAPS[case](m, x).tolist()))
        except RuntimeError as error:
            outcomes.append(("RuntimeError", str(error)))
    assert outcomes[1] == outcomes[0]


@pytest.mark.parametrize("view", ["narrow(0, -2, 0)", "[:, 1:1]", "[5:]"])
def test_gradient_through_an_empty_view_replayed_as_as_strided_is_outside_the_graph(view):
    """Fuzzer finding: an empty narrow of a leaf, modified in place under no_grad, replays as
    AsStridedBackward0; torch's as_strided_backward returns zeros outside the graph for a view
    with a size-0 dim, so the create_graph gradient does not require grad and a second backward
    raises, where the engine had recorded AsStridedBackwardBackward0."""
    outcomes = []
    for m in (torch, engine):
        x = m.tensor(np.arange(12.0).reshape(4, 3).tolist(), requires_grad=True)
        v = eval("x." + view if view[0] != "[" else "x" + view)
        with m.no_grad():
            v.tanh_()
        (g,) = m.autograd.grad((v * v).sum(), [x], create_graph=True)
        try:
            g.sum().backward()
            outcomes.append((g.requires_grad, g.tolist(), "ok"))
        except RuntimeError as error:
            outcomes.append((g.requires_grad, g.tolist(), str(error)))
    assert outcomes[1] == outcomes[0]


META_BEFORE_OVERLAP = {
    "clamp_ without bounds": lambda m: m.zeros(1, 3).expand(2, 3).clamp_(),
    "clamp_ with a bound": lambda m: m.zeros(1, 3).expand(2, 3).clamp_(0.5),
    "clamp_ of int64 to a float bound": lambda m: m.zeros(1, 3, dtype=m.int64).expand(2, 3).clamp_(0.5),
    "addcdiv_ of int64": lambda m: m.zeros(1, 3, dtype=m.int64).expand(2, 3).addcdiv_(
        m.ones(3, dtype=m.int64), m.ones(3, dtype=m.int64)),
    "lerp_ to another dtype": lambda m: m.zeros(1, 3).expand(2, 3).lerp_(m.ones(3, dtype=m.float64), 0.5),
    "lerp_": lambda m: m.zeros(1, 3).expand(2, 3).lerp_(m.ones(3), 0.5),
    "view of a leaf, clamp_ without bounds": lambda m: m.zeros(1, 3, requires_grad=True).expand(2, 3).clamp_(),
}


@pytest.mark.parametrize("case", sorted(META_BEFORE_OVERLAP))
def test_in_place_ops_check_their_arguments_before_the_overlap_of_an_expanded_tensor(case):
    """Fuzzer finding: clamp_() of an expanded tensor raises torch's "At least one of 'min' or
    'max'" (its meta function runs before TensorIterator refuses the overlap), not the overlap
    error; the autograd refusals come before both."""
    messages = []
    for m in (torch, engine):
        with pytest.raises(RuntimeError) as info:
            META_BEFORE_OVERLAP[case](m)
        messages.append(str(info.value))
    assert messages[1] == messages[0]


def _stale_unbind_output(m, rows=2):
    """Row 0 of a leaf's unbind, after the leaf's memory was modified in place through a detached
    alias: reading its node raises (a multi-output view cannot be regenerated)."""
    leaf = m.arange(2.0 * rows).reshape(rows, 2).requires_grad_() if rows else m.tensor([0.0, 1.0], requires_grad=True)
    view = m.unbind(leaf)[0]
    leaf.detach().neg_()
    return view


def _copy_into_int64(m):
    return m.zeros(2, dtype=m.int64).copy_(_stale_unbind_output(m)).tolist()


EDGES_BEFORE_KERNEL = {
    "clamp_max_ sharing memory": lambda m: (lambda v: v.detach().clamp_max_(v))(_stale_unbind_output(m, 0)),
    "clamp_min_ sharing memory": lambda m: (lambda v: v.detach().clamp_min_(v))(_stale_unbind_output(m, 0)),
    "add_ not broadcasting": lambda m: m.zeros(1).add_(_stale_unbind_output(m)),
    "add_ into int64": lambda m: m.zeros(2, dtype=m.int64).add_(_stale_unbind_output(m)),
    "lerp_ of another dtype": lambda m: m.zeros(2, dtype=m.float64).lerp_(_stale_unbind_output(m), 0.5),
    "add_ into an expanded tensor": lambda m: m.zeros(1).expand(2).add_(_stale_unbind_output(m)),
    "pow_ not broadcasting": lambda m: m.zeros(3).pow_(_stale_unbind_output(m)),
    "masked_fill_ with a 0-d value": lambda m: m.zeros(3).masked_fill_(m.ones(2, dtype=m.bool),
                                                                       _stale_unbind_output(m, 0)),
    "fill_ with a 1-d value": lambda m: m.zeros(2).fill_(_stale_unbind_output(m)),
    "fill_ of an expanded tensor": lambda m: m.zeros(2).expand(2, 2).fill_(_stale_unbind_output(m, 0)),
    "copy_ not broadcasting": lambda m: m.zeros(3).copy_(_stale_unbind_output(m)),
    "setitem by index": lambda m: m.zeros(3).__setitem__(m.tensor([0, 1, 2]), _stale_unbind_output(m)),
    "copy_ into int64 (not recorded)": _copy_into_int64,
}


@pytest.mark.parametrize("case", sorted(EDGES_BEFORE_KERNEL))
def test_in_place_ops_read_their_arguments_nodes_before_the_kernels_checks(case):
    """10-minute campaign finding: x.clamp_max_(v) where v is an unbind output of x's memory
    whose base was modified in place raises torch's multi-output view error (its autograd kernel
    collects the arguments' nodes first), not the kernel's overlap, shape or dtype error."""
    outcomes = []
    for m in (torch, engine):
        try:
            outcomes.append(EDGES_BEFORE_KERNEL[case](m))
        except RuntimeError as error:
            outcomes.append(str(error))
    assert outcomes[1] == outcomes[0]
    assert case.endswith("(not recorded)") or "Output 0 of Unbind is a view" in outcomes[0]


def _stale_view(m, kind: str):
    """Output 0 of a split (or a view made under no_grad) of a tensor that requires grad,
    whose base was then modified in place: reading its node raises."""
    base = m.arange(4.0, requires_grad=True) * 1
    if kind == "no_grad view":
        with m.no_grad():
            view = base[:2]
    else:
        view = base.split(2)[0]
    base.mul_(2)
    return view


_F = lambda m: m.nn.functional   # noqa: E731
# An op's own error on a stale view: torch raises the view's error first where its autograd
# wrapper reads the input's node before the kernel checks (every differentiable op not composed
# of others, and compositions whose check is in an inner op: reshape, softmax, matmul, where,
# var, ...), the op's error where the composition or Python checks first (flatten, narrow,
# chunk, indexing, outer, einsum, mse_loss), and where the op is not differentiable.
NODES_BEFORE_CHECKS = {
    "clamp": lambda m, a: a.clamp(), "add": lambda m, a: a + m.ones(3), "radd": lambda m, a: m.ones(3) + a,
    "sum": lambda m, a: a.sum(dim=5), "view": lambda m, a: a.view(3), "reshape": lambda m, a: a.reshape(3),
    "softmax": lambda m, a: _F(m).softmax(a, dim=5), "matmul": lambda m, a: m.matmul(a, m.ones(3)),
    "cat": lambda m, a: m.cat([a, m.ones(2, 2)]), "gelu": lambda m, a: _F(m).gelu(a, approximate="x"),
    "where": lambda m, a: m.where(m.tensor([True, False, True]), a, 0.0), "var": lambda m, a: a.var(dim=4),
    "split": lambda m, a: a.split(0), "norm": lambda m, a: a.norm(dim=3), "nll_loss": lambda m, a: _F(m).nll_loss(a, m.tensor([5])),
    "layer_norm": lambda m, a: _F(m).layer_norm(a, (3,)), "expand_as": lambda m, a: a.expand_as(m.ones(3)),
}
CHECKS_BEFORE_NODES = {
    "flatten": lambda m, a: a.flatten(3), "narrow": lambda m, a: a.narrow(0, 1, 5), "chunk": lambda m, a: a.chunk(0),
    "getitem": lambda m, a: a[5], "outer": lambda m, a: m.outer(a, m.ones(2, 2)), "einsum": lambda m, a: m.einsum("ij->i", a),
    "mse_loss": lambda m, a: _F(m).mse_loss(a, m.ones(3)), "argmax": lambda m, a: a.argmax(3),
    "eq": lambda m, a: a == m.ones(3),
}


@pytest.mark.parametrize("grad_mode", [True, False])
@pytest.mark.parametrize("kind", ["split", "no_grad view"])
@pytest.mark.parametrize("case", sorted(NODES_BEFORE_CHECKS) + sorted(CHECKS_BEFORE_NODES))
def test_ops_read_their_inputs_nodes_before_their_own_checks_as_torch(case, kind, grad_mode):
    """Campaign finding (seed 12): clamp() of a split output whose base was modified in place
    raised clamp's "At least one of 'min' or 'max' must not be None" in the engine, torch's
    Split message in torch: its autograd wrapper reads the inputs' nodes before the kernel's
    checks. Under no_grad nothing reads them."""
    call = {**NODES_BEFORE_CHECKS, **CHECKS_BEFORE_NODES}[case]
    outcomes = []
    for m in (torch, engine):
        view = _stale_view(m, kind)
        with warnings.catch_warnings(), m.set_grad_enabled(grad_mode):
            warnings.simplefilter("ignore")
            try:
                call(m, view)
                outcomes.append("ok")
            except (RuntimeError, IndexError, ValueError) as error:
                outcomes.append(f"{type(error).__name__}: {error}")
    assert outcomes[1] == outcomes[0]
    assert ("modified inplace" in outcomes[0]) == (grad_mode and case in NODES_BEFORE_CHECKS)


def _graph_names(fn, depth=0) -> list:
    if fn is None or depth > 8:
        return []
    return [fn.name()] + [name for next_fn, _ in fn.next_functions for name in _graph_names(next_fn, depth + 1)]


def _leaf_grad_or_error(out, leaf):
    try:
        out.sum().backward()
    except RuntimeError as exc:
        return str(exc)
    return leaf.grad.tolist()


@pytest.mark.parametrize("batch, order, other, batch_first", [
    ((1, 1, 2), None, (1,), False),       # 1-d @ 3-d: the batch transposed is contiguous (a view)
    ((2, 1, 3), None, (1,), False),
    ((1, 3, 2), None, (3,), False),       # transposed, its strides allow a view (ReshapeAliasBackward0)
    ((2, 3, 2), None, (3,), False),       # transposed, a copy (CloneBackward0)
    ((1, 3, 2), None, (4, 3), False),     # 2-d @ 3-d
    ((1, 3, 2), (0, 2, 1), (3, 4), True),  # a permuted batch @ 2-d: a view ...
    ((2, 3, 2), (0, 2, 1), (3, 4), True),  # ... or a copy
])
def test_matmul_folds_a_batch_with_reshape_so_in_place_changes_of_it_are_caught(batch, order, other, batch_first):
    """torch folds a batch against a matrix or vector with reshape: a view of the batch where
    its strides allow, which the mm / mv saves, so changing the batch in place before backward
    raises; a copy otherwise (campaign seed 18: matmul of a 1-d and a 3-d tensor, then neg_ of
    the 3-d one; the engine's fold was a copy that did not share the version counter)."""
    seen = []
    for module in (engine, torch):
        leaf = module.ones(*other, requires_grad=True)
        base = module.arange(float(np.prod(batch)), requires_grad=True) * 1
        big = base.reshape(batch) if order is None else base.reshape(batch).permute(*order)
        out = module.matmul(big, leaf) if batch_first else module.matmul(leaf, big)
        names = _graph_names(out.grad_fn)
        base.neg_()
        seen.append((names, _leaf_grad_or_error(out, leaf)))
    assert seen[0] == seen[1]


@pytest.mark.parametrize("equation, first, second", [
    ("ij,jk->ik", (2, 3), (3, 4)), ("bij,bjk->bik", (2, 2, 3), (2, 3, 4)), ("ij,kj->ik", (2, 3), (4, 3)),
    ("ijk,jl->ilk", (2, 3, 4), (3, 5)), ("ji,jk->ik", (3, 2), (3, 4)), ("bij,bkj->bik", (2, 2, 3), (2, 4, 3)),
])
def test_einsum_reshapes_its_operands_as_torch_so_in_place_changes_are_caught_alike(equation, first, second):
    """einsum's permuted operands go to bmm through reshape: a view, an aliasing view
    (ReshapeAliasBackward0) or a copy (CloneBackward0) by their strides, as in torch."""
    seen = []
    for module in (engine, torch):
        leaf = module.ones(*second, requires_grad=True)
        base = module.arange(float(np.prod(first)), requires_grad=True) * 1
        out = module.einsum(equation, base.reshape(first), leaf)
        names = _graph_names(out.grad_fn)
        base.neg_()
        seen.append((names, _leaf_grad_or_error(out, leaf)))
    assert seen[0] == seen[1]


# In-place ops whose operand reads memory the op writes, in another layout, where torch does not
# judge the overlap (the tensor is not dense): torch's kernel walks the elements in its iterator's
# order, so later elements read what earlier ones wrote (two vectors at a time on its vector path).
READS_WHAT_IT_WRITES = {
    "addcmul_ of its transpose": lambda m, b: (lambda v: v.addcmul_(v, v.t()))(b[:4, :4].t()),
    "add_ of its transpose": lambda m, b: (lambda v: v.add_(v.t()))(b[:3, :3]),
    "sub_ alpha": lambda m, b: (lambda v: v.sub_(v.t(), alpha=0.5))(b[:5, :5]),
    "shifted columns": lambda m, b: (lambda base: base[:, 1:5].add_(base[:, 0:4]))(b[:, :6]),
    "shifted columns, one vector loop": lambda m, b: (lambda base: base[:3, 1:17].add_(base[:3, 0:16]))(b[:, :20]),
    "shifted columns, vector loop and tail": lambda m, b: (lambda base: base[:3, 1:21].mul_(base[:3, 0:20]))(b),
    "shifted rows": lambda m, b: (lambda base: base[1:, :].add_(base[:-1, :]))(b[:5, :20]),
    "lerp_ end": lambda m, b: (lambda v: v.lerp_(v.t(), 0.25))(b[:4, :4]),
    "lerp_ weight": lambda m, b: (lambda v: v.lerp_(m.ones(4, 4), v.t()))(b[:4, :4]),
    "broadcast row": lambda m, b: (lambda v: v.add_(v[0]))(b[:4, :4]),
    "broadcast column": lambda m, b: (lambda v: v.add_(v[:, :1]))(b[:4, :4]),
    "addcdiv_ float64": lambda m, b: (lambda v: v.addcdiv_(v.t(), v + 1))(b.double()[:4, :4]),
    "copy_ of its transpose": lambda m, b: (lambda v: v.copy_(v.t()))(b[:4, :4]),
    "another dtype is copied first": lambda m, b: (lambda v: v.add_(v.t().double()))(b[:4, :4]),
}


@pytest.mark.parametrize("case", READS_WHAT_IT_WRITES.values(), ids=READS_WHAT_IT_WRITES.keys())
def test_in_place_ops_reading_what_they_write_see_earlier_writes_as_torch(case):
    """(campaign seed 18: v.t().addcmul_(v.t(), v) of a non-contiguous v: engine 2.0, torch 3.0)"""
    results = []
    for module in (engine, torch):
        buffer = module.tensor((np.arange(1, 481, dtype=np.float32).reshape(20, 24) / 7).tolist())
        results.append(np.asarray(case(module, buffer).tolist()))
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.parametrize("through", ["plain", "permuted view", "narrowed view"])
@pytest.mark.parametrize("op", ["scatter_add_", "scatter_"])
def test_an_invalid_src_gradient_names_the_node_torch_validates(op, through):
    """scatter's src gradient is shaped like the index; torch's engine refuses it when src is
    larger, naming the node whose outputs it validates: the op's own node, or CopySlices when
    the op was applied to a view (campaign seed 23: scatter_add_ on a permuted floor result)."""
    messages = []
    for backend in (torch, engine):
        x = backend.zeros(2, 3, 4, requires_grad=True)
        src = backend.ones(3, 4, 2, requires_grad=True)
        index = backend.tensor([[[1, 1], [0, 0], [1, 0]], [[1, 1], [0, 0], [1, 0]]])
        base = x * 1
        target = {"plain": lambda: base.permute(1, 2, 0).contiguous(), "permuted view": lambda: base.permute(1, 2, 0),
                  "narrowed view": lambda: base.narrow(2, 0, 2).permute(1, 2, 0)}[through]()
        getattr(target, op)(-1, index[:, :2] if through == "narrowed view" else index, src)
        with pytest.raises(RuntimeError) as raised:
            target.sum().backward()
        messages.append(str(raised.value).split("\n")[0])
    assert messages[1] == messages[0]
    assert ("CopySlices" in messages[0]) == (through != "plain")


SETITEM_OVERLAPS = {
    "int tensor indexed by itself": lambda B: _put(B.tensor([0, 1]), lambda x: (x,), 5),
    "index and value the tensor itself": lambda B: _put(B.tensor([0, 1]), lambda x: (x,), "self"),
    "empty tensor, out-of-bounds index, itself as value": lambda B: _put(B.zeros(0, 0), lambda x: (B.tensor([0, 0]),),
                                                                           "self"),
    "too many indices before the overlap": lambda B: _put(B.zeros(2), lambda x: (B.tensor([0]), B.tensor([0])), "self"),
    "mask of the wrong shape, itself as value": lambda B: _put(B.zeros(2, 2), lambda x: (B.tensor([[True, False, True]]),),
                                                               "self"),
    "bool tensor masked by itself, itself as value": lambda B: _put(B.tensor([True, False]), lambda x: (x,), "self"),
    "bool tensor masked by itself, a number": lambda B: _put(B.tensor([True, False]), lambda x: (x,), True),
    "masked by a mask, a view of itself as value": lambda B: _put(B.tensor([0, 1]), lambda x: (B.tensor([True, False]),),
                                                                  "head"),
    "a clone as index": lambda B: _put(B.tensor([0, 1]), lambda x: (x.clone(),), 5),
}


def _put(x, index, value):
    x[index(x)] = {"self": x, "head": x[:1]}.get(value, value) if isinstance(value, str) else value
    return x.tolist()


@pytest.mark.parametrize("case", SETITEM_OVERLAPS)
def test_setitem_refuses_overlap_before_reading_the_index_as_torch(case):
    """x[index] = value by index_put_: torch refuses a value or index sharing x's memory before
    it checks bounds or mask shapes (campaign seed 23: eye(0)[tensor([0, 0])] = itself raised
    the bounds error in the engine), but after indexing's count of indices, and not where
    masked_fill_ takes a one-element value."""
    outcomes = []
    for backend in (torch, engine):
        try:
            outcomes.append(SETITEM_OVERLAPS[case](backend))
        except (RuntimeError, IndexError) as e:
            outcomes.append(f"{type(e).__name__}: {e}".split("\n")[0])
    assert outcomes[1] == outcomes[0]
