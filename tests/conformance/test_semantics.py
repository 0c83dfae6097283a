"""Autograd semantics across whole programs: the engine prints what torch prints.

Graph lifetime, autograd.grad, hooks, retain_grad, in-place ops and version
counters, grad modes. Each snippet's transcript (values, errors by type and
message, warnings) must be identical on both backends.
"""
from __future__ import annotations

import pytest
import torch

import engine

from .snippets import run_snippet

CASES = {
    "matmul_results_are_not_views": """
        x1 = torch.tensor([0.5, -1.0, 2.0, 1.5], requires_grad=True)
        x0 = torch.tensor([[1.0], [2.0], [-1.0], [0.5]], requires_grad=True)
        a = torch.tensor([[[1.0, 2.0], [3.0, -4.0]]] * 2, requires_grad=True)
        for r in (torch.matmul(x1, x0), torch.matmul(a, x0[:2])):
            print(r._version, r.grad_fn.name())
            r.abs_()
            print(r.grad_fn.name())
            r.sum().backward()
        print(x1.grad, x0.grad, a.grad)
    """,
    "inplace_on_views_rewrites_the_base_history": """
        x1 = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
        x2 = torch.tensor([[0.1, -0.2, 0.3], [0.4, 0.5, -0.6], [0.7, -0.8, 0.9], [1.0, 1.1, -1.2]], requires_grad=True)
        v = torch.nn.functional.linear(x1, x2, torch.tensor([0.1, 0.2, 0.3, 0.4]))   # a view in torch
        v.exp_()
        print(v.grad_fn.name(), v._base.grad_fn.name())
        (v * torch.tensor([1., 2., 3., 4.])).sum().backward()
        print(x1.grad, x2.grad)
        y = torch.tensor([[1., 2., 3.], [4., 5., 6.]], requires_grad=True)
        w = torch.tensor([2., 3., 4.], requires_grad=True)
        z = y * 1
        row = z[1]
        row.retain_grad()
        row.mul_(w)
        column = z[:, 0]
        column.add_(w[:2])
        z.t().sub_(1)
        (z * z).sum().backward()
        print(y.grad, w.grad, row.grad)
        plain = torch.zeros(2, 3)
        part = plain[0]
        part.add_(w)
        print(plain.requires_grad, plain.grad_fn.name(), part.grad_fn.name())
        (plain * 2).sum().backward()
        print(w.grad)
    """,
    "lerp_checks_dtypes_before_broadcasting_in_place": """
        x = torch.tensor([1.0, 1.0, 1.0])
        for end, weight in [(torch.zeros(2, 3), torch.zeros(2, 1, dtype=torch.float64)),
                            (torch.zeros(2, 3, dtype=torch.float64), 0.5), (torch.zeros(2, 3), 0.5)]:
            try:
                x.lerp_(end, weight)
            except RuntimeError as e:
                print(e)
    """,
    "hook_on_a_non_leaf_with_create_graph": """
        x = torch.tensor([[0.5, -1.0], [2.0, 0.0]], requires_grad=True)
        v = x * 1
        v.register_hook(lambda grad: grad * 2.0)
        v.retain_grad()
        v.sigmoid_()
        (g,) = torch.autograd.grad(v.sum(), [x], create_graph=True)
        print(g)
        g.sum().backward()
        print(x.grad, v.grad)
    """,
    "setitem_differentiated_twice": """
        x = torch.tensor([[1.5, -2.0, 3.0], [0.5, 4.0, -1.0]], requires_grad=True)
        w = torch.tensor([0.25, -0.5, 2.0], requires_grad=True)
        for index in [0, (slice(None), 1), torch.tensor([True, False]), torch.tensor([1, 1])]:
            y = x * 1
            y[index] = w[:1] * 3 if isinstance(index, tuple) else w * 3
            gx, gw = torch.autograd.grad((y * y).sum(), [x, w], create_graph=True)
            print(gx, gw)
            (gx.sum() + gw.sum()).backward()
            print(x.grad, w.grad)
            x.grad = w.grad = None
        y = x * 1
        y[0] = w
        gx, gw = torch.autograd.grad(y.sum(), [x, w], create_graph=True)
        print(gx.requires_grad, gw.requires_grad)
        (gx.sum() + gw.sum()).backward()
    """,
    "inplace_ops_refuse_operands_sharing_the_written_memory": """
        i = torch.tensor([[0, 1], [1, 0]])
        for name, modify in [
                ("scatter_ from itself", lambda x: x.scatter_(0, i, x)),
                ("scatter_add_ from itself", lambda x: x.scatter_add_(-1, i, x)),
                ("scatter_ shape before overlap", lambda x: x.scatter_(0, i, x[:1])),
                ("scatter_ from itself, index out of bounds", lambda x: x.scatter_(0, i + 5, x)),
                ("scatter_add_ from a copy", lambda x: x.scatter_add_(0, i, x * 1)),
                ("add_ itself", lambda x: x.add_(x)),
                ("add_ a row", lambda x: x.add_(x[0])),
                ("add_ its transpose", lambda x: x.add_(x.t())),
                ("mul_ one element", lambda x: x.mul_(x[0, 0])),
                ("lerp_ weight a row", lambda x: x.lerp_(x * 2, x[0])),
                ("addcmul_ itself", lambda x: x.addcmul_(x, x)),
                ("clamp_ min a row", lambda x: x.clamp_(min=x[1])),
                ("copy_ itself", lambda x: x.copy_(x)),
                ("copy_ a row", lambda x: x.copy_(x[1])),
                ("setitem a row into a row", lambda x: x.__setitem__(0, x[0])),
                ("setitem another row", lambda x: x.__setitem__(slice(0, 1), x[1])),
                ("setitem with an index tensor", lambda x: x.__setitem__(i[0], x[0])),
                ("masked_fill_ one element", lambda x: x.masked_fill_(x > 0, x[0, 0])),
                ("fill_ one element", lambda x: x.fill_(x[1, 1]))]:
            x = torch.tensor([[1.5, -2.0], [0.5, 4.0]])
            try:
                modify(x)
                print(name, x)
            except RuntimeError as e:
                print(name, e)
        x = torch.tensor([[1.5, -2.0], [0.5, 4.0]])
        v = x[0, 0]          # a view: it sees writes to x and shares its version
        x.mul_(2)
        print(v, v._version)
    """,
    "hook_on_a_view_made_under_no_grad_never_runs": """
        x = torch.tensor([[1.5, -2.0, 0.5], [0.5, 4.0, 1.0]], requires_grad=True)
        with torch.no_grad():
            v = x.narrow(1, 1, 2)
        handle = v.register_hook(lambda grad: print("hook", grad))
        torch.cosh(v).sum().backward()
        print(x.grad)
        handle.remove()
    """,
    "backward_from_a_view_made_under_no_grad_is_refused": """
        x = torch.tensor([[1.5, -2.0], [0.5, 4.0]], requires_grad=True)
        with torch.no_grad():
            v = x.transpose(0, 1)
        print(v.requires_grad, v.grad_fn)
        (v * 2).sum().backward()
        print(x.grad)
        v.backward(gradient=torch.ones(2, 2))
    """,
    "inplace_on_views_of_multi_output_ops_is_refused": """
        x = torch.tensor([[1.5, -2.0, 3.0], [0.5, 4.0, -1.0]], requires_grad=True)
        y = x * 1
        w = torch.tensor([2.0, 3.0], requires_grad=True)
        for name, modify in [
                ("unbind of a leaf", lambda: x.unbind(1)[2].zero_()),
                ("unbind", lambda: y.unbind(1)[2].mul_(2)),
                ("split", lambda: y.split(1, 1)[1].add_(1)),
                ("chunk", lambda: y.chunk(3, 1)[0].exp_()),
                ("split_with_sizes", lambda: y.split_with_sizes([1, 2], 1)[1].neg_()),
                ("a view of one", lambda: y.unbind(0)[1][0:2].zero_()),
                ("setitem, int", lambda: y.unbind(1)[2].__setitem__(0, 1.0)),
                ("setitem, slice", lambda: y.unbind(1)[2].__setitem__(slice(0, 1), 1.0)),
                ("setitem, whole", lambda: y.unbind(1)[2].__setitem__(slice(None), 1.0)),
                ("setitem, mask", lambda: y.unbind(1)[2].__setitem__(torch.tensor([True, False]), 1.0)),
                ("setitem, column", lambda: y.split(1, 0)[1].__setitem__((slice(None), 1), 1.0)),
                ("no grad, other operand requires grad", lambda: x.detach().unbind(1)[2].add_(w)),
                ("copy_ from a tensor requiring grad", lambda: x.detach().unbind(1)[0].copy_(w))]:
            try:
                modify()
                print(name, "ok")
            except RuntimeError as e:
                print(name, e)
        y.detach().unbind(1)[2].zero_()   # nothing requires grad: allowed
        with torch.no_grad():
            v = y.unbind(1)[2]
        v.zero_()
    """,
    "inplace_floor_divide_backward_names_the_inplace_op": """
        x = torch.tensor([1.5, -2.0], requires_grad=True)
        y = x * 1
        y.floor_divide_(2.0)
        print(y.grad_fn.name())
        y.sum().backward()
    """,
    "autograd_grad": """
        x = torch.tensor([1., 2.], requires_grad=True)
        y = (x * x).sum()
        print(torch.autograd.grad(y, x, retain_graph=True))
        print(torch.autograd.grad(y, [x]), x.grad)
        z = x * 3
        print(torch.autograd.grad(z, x, grad_outputs=torch.tensor([1., 0.5])))
        w = x * 2
        v = w * w
        print(torch.autograd.grad(v.sum(), w))
    """,
    "autograd_grad_unused": """
        x = torch.tensor([1., 2.], requires_grad=True)
        u = torch.tensor([3.], requires_grad=True)
        print(torch.autograd.grad((x * 2).sum(), [x, u], allow_unused=True))
        print(torch.autograd.grad((x * 2).sum(), [x, u], materialize_grads=True))
        torch.autograd.grad((x * 2).sum(), [x, u])
    """,
    "autograd_grad_input_without_grad": """
        x = torch.tensor([1., 2.], requires_grad=True)
        torch.autograd.grad((x * 2).sum(), [torch.tensor([1.])])
    """,
    "autograd_grad_empty_inputs": """
        x = torch.tensor([1., 2.], requires_grad=True)
        torch.autograd.grad((x * 2).sum(), [])
    """,
    "autograd_grad_empty_inputs_is_checked_first": """
        x = torch.tensor([1., 2.])
        torch.autograd.grad((x * 2).sum(), [])
    """,
    "autograd_grad_non_scalar": """
        x = torch.tensor([1., 2.], requires_grad=True)
        torch.autograd.grad(x * 2, x)
    """,
    "autograd_grad_create_graph_triple": """
        x = torch.tensor([0.5, -1.5], requires_grad=True)
        y = (x.exp() * x.tanh() + x ** 3).sum()
        (g,) = torch.autograd.grad(y, x, create_graph=True)
        (h,) = torch.autograd.grad(g.sum(), x, create_graph=True)
        (k,) = torch.autograd.grad(h.sum(), x)
        print(g, h, k)
    """,
    "autograd_backward_function_and_inputs": """
        x = torch.tensor([1., 2.], requires_grad=True)
        y = torch.tensor([3., 4.], requires_grad=True)
        torch.autograd.backward([(x * y).sum(), (x * x).sum()], inputs=[x])
        print(x.grad, y.grad)
        torch.autograd.backward((x * y).sum(), inputs=[y])
        print(x.grad, y.grad)
    """,
    "accumulation_across_graphs": """
        x = torch.tensor([1., 2.], requires_grad=True)
        (x * 2).sum().backward()
        (x.exp()).sum().backward()
        print(x.grad)
        x.grad = None
        (x * x).sum().backward()
        print(x.grad)
    """,
    "hooks": """
        x = torch.tensor([1., 2., 3.], requires_grad=True)
        y = x * 2
        h = y.register_hook(lambda g: g * 10)
        y.register_hook(lambda g: print("saw", g))
        x.register_hook(lambda g: print("leaf saw", g))
        y.sum().backward()
        print(x.grad)
        h.remove()
        x.grad = None
        y2 = x * 2
        y2.sum().backward()
        print(x.grad)
    """,
    "hook_on_tensor_without_grad": """
        torch.tensor([1., 2.]).register_hook(lambda g: g)
    """,
    "retain_grad": """
        x = torch.tensor([1., 2.], requires_grad=True)
        y = x * 3
        y.retain_grad()
        y.register_hook(lambda g: g * 2)
        z = (y * y).sum()
        z.backward(retain_graph=True)
        print(y.grad, x.grad, y.retains_grad, x.retains_grad)
        z.backward()
        print(y.grad, x.grad)
    """,
    "next_functions": """
        a = torch.tensor([1., 2.], requires_grad=True)
        b = torch.tensor([3., 4.], requires_grad=True)
        c = (a * b + a.exp()).sum()
        print(c.grad_fn.name())
        node = c.grad_fn.next_functions[0][0]
        print(node.name(), [(n.name() if n is not None else None, i) for n, i in node.next_functions])
        mul = node.next_functions[0][0]
        print([n.name() for n, _ in mul.next_functions], mul.next_functions[0][0] is a.grad_fn)
        print(mul.next_functions[0][0].variable is a)
    """,
    "inplace_basic": """
        a = torch.tensor([1., 2., 3.], requires_grad=True)
        b = a * 1
        b.add_(1)
        b.mul_(2)
        b.sub_(torch.tensor([1., 1., 1.]))
        b.div_(2)
        b += 1
        b *= torch.tensor([1., 2., 3.])
        b -= 0.5
        b /= 2
        b **= 2
        print(b, b._version, b.grad_fn.name())
        b.sum().backward()
        print(a.grad)
    """,
    "inplace_activations": """
        a = torch.tensor([-1., 0.5, 2.], requires_grad=True)
        for name in ["exp_", "sigmoid_", "tanh_", "relu_", "neg_"]:
            b = a * 1
            getattr(b, name)()
            b.sum().backward()
            print(name, b.grad_fn.name(), a.grad)
            a.grad = None
        b = a * 1
        b.pow_(2)
        b.sum().backward()
        print(a.grad)
    """,
    "inplace_saved_result_modified": """
        a = torch.tensor([1., 2., 3.], requires_grad=True)
        b = a.exp()
        b.add_(1)
        b.sum().backward()
    """,
    "inplace_saved_input_modified": """
        a = torch.tensor([1., 2., 3.], requires_grad=True)
        b = a * 1
        c = b * b
        b.add_(1)
        c.sum().backward()
    """,
    "inplace_unsaved_input_modified_is_fine": """
        a = torch.tensor([1., 2., 3.], requires_grad=True)
        b = a * 1
        c = b + b
        d = b.exp()
        b.mul_(3)
        (c + d).sum().backward()
        print(a.grad)
    """,
    "inplace_saved_sigmoid_output": """
        a = torch.tensor([1., 2., 3.], requires_grad=True)
        c = (a * 1).sigmoid()
        c.mul_(2)
        c.sum().backward()
    """,
    "inplace_mul_by_tensor_that_requires_grad": """
        a = torch.tensor([1., 2., 3.], requires_grad=True)
        c = torch.tensor([4., 5., 6.], requires_grad=True)
        b = a * 1
        b.mul_(c)
        b.sum().backward()
        print(a.grad, c.grad, b.grad_fn.name(), b._version)
    """,
    "inplace_zero_after_pow": """
        a = torch.tensor([2., 3.], requires_grad=True)
        b = a * 1
        c = b ** 2
        b.zero_()
        c.sum().backward()
    """,
    "inplace_on_leaf": """
        a = torch.tensor([1., 2., 3.], requires_grad=True)
        a.add_(1)
    """,
    "inplace_on_leaf_under_no_grad": """
        a = torch.tensor([1., 2., 3.], requires_grad=True)
        c = a * a
        with torch.no_grad():
            a.mul_(2)
            a -= 1
        print(a, a._version, a.is_leaf)
        c.sum().backward()
    """,
    "inplace_dtype_and_shape": """
        i = torch.tensor([1, 2])
        i += 1
        print(i)
        try:
            i *= 1.5
        except RuntimeError as e:
            print(e)
        x = torch.tensor([1., 2., 3.])
        x.add_(torch.tensor([[1., 1., 1.], [2., 2., 2.]]))
    """,
    "fill_zero_copy": """
        a = torch.tensor([1., 2., 3.], requires_grad=True)
        src = torch.tensor([4., 5., 6.], requires_grad=True)
        b = a * 2
        b.copy_(src)
        (b * b).sum().backward()
        print(b.grad_fn.name(), a.grad, src.grad)
        c = a * 2
        c.fill_(7.)
        c.sum().backward()
        print(c, c.grad_fn.name(), a.grad)
        d = torch.tensor([1., 2.])
        d.zero_()
        d.fill_(torch.tensor(3.))
        print(d)
        d.fill_(torch.tensor([1., 2.]))
    """,
    "setitem": """
        a = torch.tensor([1., 2., 3., 4.], requires_grad=True)
        v = torch.tensor([7., 8.], requires_grad=True)
        b = a * 1
        b[0] = 5
        b[2:] = v
        print(b, b.grad_fn.name())
        (b * b).sum().backward()
        print(a.grad, v.grad)
        m = torch.tensor([[1., 2.], [3., 4.]])
        m[1] = torch.tensor([9., 9.])
        m[0, 1] = -1
        print(m)
    """,
    "grad_modes": """
        x = torch.tensor([1., 2.], requires_grad=True)
        with torch.no_grad():
            with torch.enable_grad():
                y = x * 2
            z = x * 2
        print(y.requires_grad, z.requires_grad)
        torch.set_grad_enabled(False)
        print(torch.is_grad_enabled(), (x * 2).requires_grad)
        torch.set_grad_enabled(True)
        with torch.set_grad_enabled(False):
            print((x * 2).requires_grad)
        print(torch.is_grad_enabled())
        @torch.enable_grad()
        def f(t):
            return t * 2
        with torch.no_grad():
            print(f(x).requires_grad)
        with torch.inference_mode():
            w = x * 2
        print(w.requires_grad, torch.is_grad_enabled())
    """,
    "detach_and_requires_grad": """
        x = torch.tensor([1., 2.], requires_grad=True)
        y = x * 2
        d = y.detach()
        print(d.requires_grad, d.is_leaf, d.grad_fn)
        y2 = x * 3
        y2.detach_()
        print(y2.requires_grad, y2.grad_fn, y2.is_leaf)
        c = x.clone() if hasattr(x, 'clone') else x * 1
        print(c.requires_grad)
        e = torch.tensor([1., 2.]).requires_grad_()
        print(e.requires_grad)
        (x * 2).requires_grad_(False)
    """,
    "inference_tensors_are_not_saved": """
        x = torch.tensor([1., 2.], requires_grad=True)
        with torch.inference_mode():
            y = x * 2
        print(y.requires_grad, y.is_inference(), x.is_inference())
        (y + x).sum().backward()
        print(x.grad)
        (y * x).sum().backward()
    """,
    "leaf_gradients_accumulate_before_a_later_error": """
        # Whether x1.grad is set before the error depends on the order of the op's inputs.
        for make in [lambda x0, x1: x1 * torch.floor_divide(0, x0), lambda x0, x1: torch.floor_divide(0, x0) * x1,
                     lambda x0, x1: torch.maximum(torch.floor_divide(0, x0), x1),
                     lambda x0, x1: torch.maximum(x1, torch.floor_divide(0, x0))]:
            x0 = torch.tensor([1., 2.], requires_grad=True)
            x1 = torch.tensor([3., 4.], requires_grad=True)
            try:
                make(x0, x1).sum().backward()
            except RuntimeError as e:
                print(e)
            print(x0.grad, x1.grad)
    """,
    "hooks_run_in_torchs_node_order": """
        x = torch.tensor([1., 2.], requires_grad=True)
        a = x * 2
        b = x * 3
        a.register_hook(lambda g: print("a", g))
        b.register_hook(lambda g: print("b", g))
        x.register_hook(lambda g: print("x", g))
        (a * b).sum().backward()
    """,
    "retain_grad_follows_an_inplace_op": """
        x = torch.tensor([1., 4., 9.], requires_grad=True)
        v = x * 1
        v.retain_grad()
        v.sqrt_()
        loss = v.sum()
        loss.backward(retain_graph=True)
        loss.backward()
        print(v.grad, x.grad)
    """,
    "inplace_with_itself_as_another_argument": """
        x0 = torch.tensor(0.0, requires_grad=True)
        x1 = torch.tensor([0.0, 0.5, 1.0], requires_grad=True)
        v0 = x0 * torch.tensor([[1., 1., 1.], [2., 2., 2.]])
        v0.lerp_(v0, x1)
        v0.sum().backward()
    """,
    "setitem_with_tensor_indices_saves_them": """
        x = torch.tensor([1., 2., 3.], requires_grad=True)
        v = torch.tensor(5., requires_grad=True)
        y = x * 1
        y[torch.tensor([0, 0])] = v
        y[torch.tensor([False, True, False])] = 7.
        print(y, y.grad_fn.name())
        loss = (y * y).sum()
        loss.backward()
        print(x.grad, v.grad)
        loss.backward()
    """,
    "double_backward_through_l1_norm": """
        x = torch.tensor([[1., -2., 3.], [0.5, 0., -1.]], requires_grad=True)
        (g,) = torch.autograd.grad(torch.norm(x, p=1, dim=1).sum(), [x], create_graph=True)
        print(g, g.requires_grad)
        g.sum().backward()
        print(x.grad)
    """,
    "double_backward_through_relu_from_a_constant_seed": """
        x = torch.tensor([-1., 2., 0.], requires_grad=True)
        (g,) = torch.autograd.grad(torch.relu(x).sum(), [x], create_graph=True)
        print(g, g.requires_grad, g.grad_fn.name())
        g.sum().backward()
        print(x.grad)
    """,
    "inplace_broadcast_is_checked_first": """
        x = torch.tensor([1., 2.])
        x.bitwise_or_(torch.tensor([[1., 2.], [3., 4.]]))
    """,
    "matmul_folds_as_torch_decides_from_strides_and_requires_grad": """
        # Fuzzer finding: torch folds a batch into one mm / mv only when that needs no copy or
        # the smaller operand requires grad (whatever the grad mode); otherwise it runs bmm.
        flags = torch.tensor([True, False, True])
        stacked = torch.ones(2, 4, 3)
        transposed = torch.ones(2, 3, 4).transpose(1, 2)
        for big in (stacked, transposed):
            for small in (flags, torch.ones(3, 2, dtype=torch.bool)):
                try:
                    torch.matmul(big, small)
                except RuntimeError as e:
                    print(e)
        w = torch.ones(3, 2, requires_grad=True)
        for big in (stacked, transposed, transposed.detach().requires_grad_()):
            out = torch.matmul(big, w)
            print(out.grad_fn.name(), out.grad_fn.next_functions[0][0].name())
            out = torch.matmul(big, w.detach())
            print(out.grad_fn and out.grad_fn.name(), out.grad_fn and out.grad_fn.next_functions[0][0].name())
        with torch.no_grad():
            try:
                torch.matmul(transposed, torch.ones(1, 3, 2, requires_grad=True))
            except RuntimeError as e:
                print(e)
    """,
    "views_made_under_no_grad": """
        a = torch.tensor([1., 2., 3., 4.], requires_grad=True)
        with torch.no_grad():
            v = a.view(2, 2)
            c = a * 2
            parts = a.chunk(2)
        print(v.requires_grad, v.is_leaf, v.grad_fn, c.requires_grad, [p.requires_grad for p in parts])
        (v * 3).sum().backward()
        print(v.grad, a.grad)
        f = torch.flip(a, ())
        f.exp_()
        print(f.grad_fn.name())
        v.exp_()
    """,
    "inplace_comparison_with_an_operand_that_requires_grad": """
        x0 = torch.tensor([1., 2.])
        x1 = torch.tensor([1., 3.], requires_grad=True)
        r = x0.eq_(x1)
        print(r, r.grad_fn.name())
        r.sum().backward()
        print(x1.grad)
    """,
    "nan_and_inf_propagate": """
        x = torch.tensor([float('nan'), float('inf'), -float('inf'), 0.], requires_grad=True)
        y = (x.exp() + x * 2 + x.tanh() + x.sigmoid() + x.relu()).sum()
        print(y)
        y.backward()
        print(x.grad)
    """,
    "pow_with_a_tensor_exponent_saves_its_result": """
        x = torch.tensor([[0.5, 2.0], [1.5, -1.0]], requires_grad=True)
        for exponent in (torch.tensor([2, -1]), torch.tensor([2.0, 3.0])):
            y = torch.pow(x, exponent)
            y.neg_()
            try:
                y.sum().backward()
            except RuntimeError as e:
                print(e)
        print(x.grad)
    """,
    "a_view_made_under_no_grad_gets_no_gradient_and_saves_nothing_for_one": """
        x0 = torch.tensor([[1.0, -2.0, 0.5], [2.0, 4.0, -1.0]], requires_grad=True)
        with torch.no_grad():
            v0 = x0.T
        print(v0.requires_grad, v0.is_leaf, v0.grad_fn)
        x1 = torch.tensor(1.5)
        y = x1 / v0
        print(y.grad_fn.name())
        x1.mul_(-0.5)   # only the gradient of v0 would need x1: torch did not save it
        y.sum().backward()
        print(x0.grad)
        w = torch.tensor(2.0, requires_grad=True)
        z = w * v0
        z.sum().backward()
        print(w.grad, x0.grad)
    """,
    "copy_slices_refuses_a_second_backward_even_saving_nothing": """
        x = torch.tensor([1., 2., 3.], requires_grad=True)
        for modify in (lambda y: y.__setitem__(0, 2.), lambda y: y[1:].neg_()):
            y = torch.sign(x)
            modify(y)
            loss = y.sum()
            loss.backward(retain_graph=True)
            loss.backward()
            try:
                loss.backward()
            except RuntimeError as e:
                print(e)
        print(x.grad)
    """,
    "setitem_through_whole_slices_writes_the_tensor_itself": """
        x = torch.tensor([[1., 2., 3.], [4., 5., 6.]], requires_grad=True)
        empty = torch.zeros(0, 2, requires_grad=True)
        for base, index in [(x, slice(0, None)), (x, slice(None, 2)), (x, slice(0, 5)), (x, slice(-2, None)),
                            (x, (Ellipsis, slice(0, None))), (x, (slice(None), slice(0, 2))), (x, (None, slice(0, None))),
                            (x, (slice(0, None), 1)), (empty, slice(None, 0)), (empty, slice(None, -1)), (empty, slice(1, None))]:
            for value in (2.0, torch.tensor(-1.0), torch.ones(base.shape[-1])):
                y = base * 1
                y[index] = value
                print(index, y.grad_fn.name(), y)
                (y * y).sum().backward()
        print(x.grad, empty.grad)
        try:
            x.sum()[0:] = 1.0
        except Exception as e:
            print(type(e).__name__, e)
    """,
    "modified_saved_tensor_names_its_node_as_torch": """
        a = torch.tensor([1., 2.], requires_grad=True)
        b = torch.tensor([3., 4.], requires_grad=True)
        for modify in (lambda y: y.copy_(b), lambda y: y.__setitem__(0, b[0]), lambda y: y.__setitem__(slice(None), 2.0),
                       lambda y: y.__setitem__(torch.tensor([0]), 2.0), lambda y: y.lerp_(b, 0.5), lambda y: y.sub_(b)):
            y = a * 1
            w = y.sin()
            modify(y)
            try:
                w.sum().backward()
            except RuntimeError as e:
                print(e)
    """,
    "setitem_with_tensors_applies_ints_and_slices_first_as_a_view": """
        t = torch.tensor
        for idx in [(t([True, False]), 1), (0, t([1, 0])), (slice(0, 1), t([0, 2])), (t([0, 1]), slice(1, 3)),
                    (None, t([1])), (t([1]), None), (Ellipsis, t([0, 2])), (t([1]), Ellipsis, 0),
                    (0, t([True, False, True])), (t([0, 1]), 0, t([1, 2])), (slice(None), t([[0, 1]])),
                    (1, slice(None), t([0]))]:
            for value in (5.0, torch.tensor([7.0]), torch.tensor(3.0, requires_grad=True)):
                x = torch.tensor([[1., 2., 3.], [4., 5., 6.]], requires_grad=True)
                y = x * 1
                try:
                    y[idx] = value
                    print(y, y.grad_fn.name())
                    (y * y).sum().backward()
                    print(x.grad, getattr(value, 'grad', None))
                except Exception as e:
                    print(type(e).__name__, e)
    """,
    "div_with_a_rounding_mode_saves_its_operands": """
        for make in (lambda x, y: x.div(x, rounding_mode='floor'), lambda x, y: torch.div(x, y, rounding_mode='trunc'),
                     lambda x, y: torch.div(x, 2., rounding_mode='trunc'),
                     lambda x, y: torch.div(x, y.detach(), rounding_mode='floor'),
                     lambda x, y: torch.div(x.detach(), y, rounding_mode='floor'),
                     lambda x, y: torch.div(3., y, rounding_mode='floor')):
            x = torch.tensor([1.5, 2.], requires_grad=True)
            y = torch.tensor([1., 3.], requires_grad=True)
            loss = make(x, y).sum()
            loss.backward()
            print(x.grad, y.grad)
            try:
                loss.backward()
            except RuntimeError as e:
                print(e)
    """,
    "backward_twice_error_after_grad": """
        x = torch.tensor([1., 2.], requires_grad=True)
        y = (x * x).sum()
        torch.autograd.grad(y, x)
        y.backward()
    """,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_semantics_match_torch(name):
    expected = run_snippet(CASES[name], torch)
    assert run_snippet(CASES[name], engine) == expected
