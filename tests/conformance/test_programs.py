"""Programs written for torch print the same on the engine (contract 1)."""
from __future__ import annotations

import pytest
import torch

import engine

from .snippets import SEED, run_snippet

CASES = {
    **SEED,
    "printing": """
        print(torch.tensor(3.5), torch.tensor(7.), torch.tensor(-0.0), torch.tensor(2))
        print(torch.tensor([1.5, -2.25, 1e-5]), torch.tensor([1e10, 1.0]))
        print(torch.tensor([[1., 2.], [3., 4.]], dtype=torch.float64))
        print(torch.tensor([True, False]), torch.tensor([[1, -20], [300, 4]]))
        print(torch.tensor([float('nan'), float('inf'), -float('inf'), 0.5]))
        print(torch.tensor([]), torch.Tensor([[1, 2]]))
        print(torch.tensor([[0.1] * 30] * 2))
        x = torch.tensor([[1., 2.], [3., 4.]], requires_grad=True)
        print(x, x * 2, (x * 2).sum(), x.double() + 1)
        print(repr(x.shape), x.dtype, x.double().dtype, torch.tensor([1]).dtype, torch.tensor([True]).dtype)
    """,
    "tensor_api": """
        x = torch.tensor([[1., 2., 3.], [4., 5., 6.]], requires_grad=True)
        print(x.shape, x.size(), x.size(1), x.size(-1), x.ndim, x.dim(), x.numel(), len(x))
        print(x.is_leaf, x.requires_grad, x.grad_fn, x.grad)
        print(x.tolist(), x.sum().item(), type(x.sum().item()), torch.tensor(3).item())
        print(x.detach(), x.detach().requires_grad, x.detach().numpy().dtype, x.data)
        print(x.float().dtype, x.double().dtype, x.double().grad_fn.name())
        y = torch.tensor([1., 2.])
        print(y.requires_grad_(), y.requires_grad_(False), torch.Tensor([1, 2]).dtype)
        x.size(2)
    """,
    "promotion": """
        i = torch.tensor([1, 2]); b = torch.tensor([True, False]); f = torch.tensor([1., 2.])
        d = torch.tensor([1., 2.], dtype=torch.float64)
        print((i * 2).dtype, (i * 2.5).dtype, (i / 2).dtype, (b + True).dtype, (b * 2).dtype, (b * 2.5).dtype)
        print((f + i).dtype, (f + d).dtype, (i + d).dtype, (f * torch.tensor(2., dtype=torch.float64)).dtype)
        print((i * torch.tensor(2.5, dtype=torch.float64)).dtype, (torch.tensor(2) * f).dtype, (i ** 2).dtype)
        print(i.sum().dtype, b.sum().dtype, i.exp().dtype, b.sigmoid().dtype, i.relu().dtype, (2 ** i).dtype)
        print(i * 2.5, i / 2, 2.5 ** i, b + b, b * 2, -i)
    """,
    "binary_forms": """
        a = torch.tensor([1., 2., 3.], requires_grad=True)
        outs = [a + 2, 2 + a, a - 2, 2 - a, a * 2, 2 * a, a / 2, 2 / a, a ** 2, 2 ** a, -a,
                torch.add(a, 2), torch.add(2, a), torch.sub(a, a), torch.mul(2, a), torch.div(2, a),
                torch.pow(a, a), torch.pow(2, a), a.pow(3), a.add(a), a.sub(1), a.mul(a), a.div(a), a.neg()]
        for o in outs:
            print(o, [n.name() if n is not None else None for n, _ in o.grad_fn.next_functions])
        total = sum(o.sum() for o in outs)
        total.backward()
        print(a.grad)
    """,
    "alpha_and_rounding_mode": """
        a = torch.tensor([1.5, -2., 3.], requires_grad=True)
        b = torch.tensor([2., 4., -1.], requires_grad=True)
        outs = [torch.add(a, b, alpha=3), a.sub(b, alpha=0.5), torch.sub(2, a, alpha=3), torch.add(a, 2, alpha=-1),
                torch.div(a, b, rounding_mode=None), torch.div(a, b, rounding_mode="trunc"),
                a.div(b, rounding_mode="floor"), torch.div(a, 2, rounding_mode="floor")]
        for o in outs:
            print(o, [n.name() if n is not None else None for n, _ in o.grad_fn.next_functions])
        sum(o.sum() for o in outs).backward()
        print(a.grad, b.grad)
        i = torch.tensor([7, -7])
        print(torch.div(i, 2, rounding_mode="trunc"), torch.div(i, 2, rounding_mode="floor"), torch.div(i, 2.5, rounding_mode="floor"))
        print(torch.add(i, 2, alpha=3), torch.add(torch.tensor([True]), torch.tensor([True]), alpha=True))
        for bad in [lambda: torch.add(i, 1, alpha=0.5), lambda: torch.add(a, 1, alpha=True),
                    lambda: torch.div(i, torch.tensor([0, 1]), rounding_mode="floor"),
                    lambda: torch.div(a, b, rounding_mode="round")]:
            try:
                bad()
            except RuntimeError as e:
                print(e)
    """,
    "comparison_operators": """
        x = torch.tensor([1., 2., 3.])
        print(x == 2, x != 2, x < 2, 2 < x, x >= torch.tensor([3., 2., 1.]), x == None, x != None)
        x < None
    """,
    "unary_and_reductions": """
        x = torch.tensor([[-1.5, 0., 2.], [0.5, -0.25, 3.]], requires_grad=True)
        outs = [x.exp(), torch.exp(x), x.tanh(), x.sigmoid(), x.relu(), torch.relu(x), (x * x + 1).log(),
                x.sum(), x.sum(0), x.sum(1), x.sum(-1, keepdim=True), x.sum((0, 1)), x.sum(dim=[1, 0]),
                x.mean(), x.mean(0), x.mean(dim=1, keepdim=True), torch.sum(x, 1), torch.mean(x, (0,))]
        for o in outs:
            print(o)
        sum(o.sum() for o in outs).backward()
        print(x.grad)
    """,
    "kinks_and_domains": """
        x = torch.tensor([0., -0., -1., 2., float('nan')], requires_grad=True)
        y = x.relu() + x.log() + x ** 0 + x ** 2.5 + x ** -1. + torch.pow(0., x)
        print(y)
        y.backward(torch.tensor([1., 1., 1., 1., 1.]))
        print(x.grad)
        e = torch.tensor([0., 2., -1.], requires_grad=True)
        b = torch.tensor([0., 1., -2.], requires_grad=True)
        (b ** e).sum().backward()
        print(b.grad, e.grad)
        s = torch.tensor([-100., 100., 0.], requires_grad=True)
        (s.sigmoid() + s.tanh() + s.exp()).sum().backward()
        print(s.grad)
    """,
    "matmul_shapes": """
        g = torch.tensor
        a = g([1., 2., 3.], requires_grad=True)
        m = g([[1., 0., 2.], [-1., 3., 1.]], requires_grad=True)
        n = g([[1., 2.], [0., 1.], [4., -1.]], requires_grad=True)
        b3 = g([[[1., 2., 3.], [4., 5., 6.]], [[0., 1., 0.], [1., 0., 1.]]], requires_grad=True)
        outs = [a @ a, m @ a, a @ n, m @ n, b3 @ n, b3 @ a, b3 @ n.sum(1, keepdim=True),
                torch.matmul(m, n), m.matmul(n), n @ m, (b3 @ n) @ m, b3 @ (n @ m)]
        for o in outs:
            print(o, o.grad_fn.name())
        sum(o.sum() for o in outs).backward()
        print(a.grad, m.grad, n.grad, b3.grad)
    """,
    "fuzzer_findings": """
        # Found by gradfuzz: a (1, 1) @ (3, 1, 3) product is contiguous after its transpose,
        # so torch adds no clone; relu keeps the sign of -0.0, which atan2 then sees.
        x0 = torch.tensor([[[1., 2., 3.]], [[4., 5., 6.]], [[7., 8., 9.]]], requires_grad=True)
        x1 = torch.tensor([[2.]], requires_grad=True)
        print(torch.matmul(x1, x0).grad_fn.name())
        v1 = torch.tensor([-0.0, 0.0, -1.0]).relu()
        print(v1, torch.atan2(v1, v1))
    """,
    "batched_matmul": """
        p = torch.tensor([[[1., 2.], [3., 4.]]], requires_grad=True)
        q = torch.tensor([[[1., 0.], [2., 1.]], [[0., 1.], [1., 1.]]], requires_grad=True)
        v = torch.tensor([1., -1.], requires_grad=True)
        r = torch.tensor([[2., 1.], [0., 1.]], requires_grad=True)
        for o in [p @ q, q @ p, v @ q, r @ q, q @ r, q @ v]:
            print(o, o.grad_fn.name(), [n.name() for n, _ in o.grad_fn.next_functions if n is not None])
            o.sum().backward()
        print(p.grad, q.grad, v.grad, r.grad)
    """,
    "error_non_scalar": """
        x = torch.tensor([1., 2.], requires_grad=True)
        (x * 2).backward()
    """,
    "error_no_grad_wins": """
        x = torch.tensor([1., 2.])
        (x * 2).backward()
    """,
    "error_gradient_shape": """
        x = torch.tensor([1., 2., 3.], requires_grad=True)
        (x * 2).backward(torch.tensor([1., 1.]))
    """,
    "error_gradient_shape_beats_no_grad": """
        (torch.tensor([1., 2.]) * 2).backward(torch.tensor([1., 1., 1.]))
    """,
    "error_gradient_type": """
        x = torch.tensor([1., 2., 3.], requires_grad=True)
        x.sum().backward([1.0])
    """,
    "error_int_requires_grad": """
        torch.tensor([1, 2], requires_grad=True)
    """,
    "error_int_requires_grad_": """
        torch.tensor([1, 2]).requires_grad_()
    """,
    "error_broadcast": """
        torch.tensor([[1., 2., 3.], [4., 5., 6.]]) + torch.tensor([1., 2.])
    """,
    "error_broadcast_leading": """
        torch.tensor([[[1.], [2.]]]) * torch.tensor([[1., 2., 3.], [4., 5., 6.], [7., 8., 9.]])
    """,
    "error_matmul_mm": """
        torch.tensor([[1., 2., 3.]]) @ torch.tensor([[1., 2.]])
    """,
    "error_matmul_dot": """
        torch.tensor([1., 2., 3.]) @ torch.tensor([1., 2.])
    """,
    "error_matmul_mv": """
        torch.tensor([[1., 2., 3.]]).matmul(torch.tensor([1., 2.]))
    """,
    "error_matmul_vm": """
        torch.tensor([1., 2.]) @ torch.tensor([[1., 2.]])
    """,
    "error_matmul_0d": """
        torch.tensor(1.) @ torch.tensor([1., 2.])
    """,
    "error_matmul_bmm": """
        torch.tensor([[[1., 2.]]]) @ torch.tensor([[[1., 2.]]])
    """,
    "error_matmul_dtype": """
        torch.tensor([1., 2.]) @ torch.tensor([1, 2])
    """,
    "error_mean_int": """
        torch.tensor([1, 2]).mean()
    """,
    "error_dim_range": """
        torch.tensor([[1., 2.]]).sum(2)
    """,
    "error_dim_repeat": """
        torch.tensor([[1., 2.]]).sum((0, -2))
    """,
    "error_bool_sub": """
        torch.tensor([True]) - torch.tensor([False])
    """,
    "error_bool_neg": """
        -torch.tensor([True])
    """,
    "error_int_negative_power": """
        torch.tensor([1, 2]) ** -1
    """,
    "error_item": """
        torch.tensor([1., 2.]).item()
    """,
    "error_numpy_requires_grad": """
        torch.tensor([1., 2.], requires_grad=True).numpy()
    """,
    "error_non_leaf_requires_grad": """
        x = torch.tensor([1., 2.], requires_grad=True)
        (x * 2).requires_grad = False
    """,
    "error_second_backward": """
        x = torch.tensor([1., 2.], requires_grad=True)
        y = (x * x).sum()
        y.backward()
        print(x.grad)
        y.backward()
    """,
    "second_backward_without_saved_tensors": """
        x = torch.tensor([1., 2.], requires_grad=True)
        y = (x + x).sum()
        y.backward()
        y.backward()
        z = (x * 2).mean()
        z.backward(retain_graph=True)
        z.backward()
        print(x.grad)
    """,
    "non_leaf_grad_warning": """
        x = torch.tensor([1., 2.], requires_grad=True)
        y = x * 2
        y.sum().backward()
        print(y.grad, x.grad)
    """,
    "accumulation_and_zero": """
        x = torch.tensor([1., 2.], requires_grad=True)
        for _ in range(3):
            (x * x).sum().backward()
        print(x.grad)
        x.grad.zero_()
        print(x.grad)
        (x.exp() * 3).sum().backward()
        print(x.grad)
    """,
    "gradient_dtype_differs": """
        x = torch.tensor([1., 2.], requires_grad=True)
        (x * 3).backward(torch.tensor([1., 0.5], dtype=torch.float64))
        print(x.grad, x.grad.dtype)
        d = torch.tensor([1., 2.], dtype=torch.float64, requires_grad=True)
        (d * torch.tensor([2., 3.])).sum().backward()
        print(d.grad)
    """,
    "mixed_dtype_gradients": """
        f = torch.tensor([1., 2.], requires_grad=True)
        d = torch.tensor(3., dtype=torch.float64, requires_grad=True)
        y = f * d
        print(y, y.dtype)
        y.sum().backward()
        print(f.grad, d.grad)
    """,
    "broadcast_gradients": """
        a = torch.tensor([[1.], [2.]], requires_grad=True)
        b = torch.tensor([[1., 2., 3.]], requires_grad=True)
        c = torch.tensor(2., requires_grad=True)
        d = torch.tensor([[[1., 2., 3.]]], requires_grad=True)
        ((a * b + c) / d - b ** 2).sum().backward()
        print(a.grad, b.grad, c.grad, d.grad)
    """,
    "no_grad": """
        x = torch.tensor([1., 2.], requires_grad=True)
        with torch.no_grad():
            y = x * 2
        print(y, y.requires_grad, torch.is_grad_enabled())
        @torch.no_grad()
        def f(t):
            return t * 3
        print(f(x), f(x).grad_fn)
    """,
    "sgd_training_loop": """
        w = torch.tensor([[0.5, -0.3], [0.1, 0.8]], requires_grad=True)
        b = torch.tensor([0.1, -0.1], requires_grad=True)
        xs = torch.tensor([[1., 2.], [3., -1.], [0.5, 0.5]])
        ys = torch.tensor([[1., 0.], [0., 1.], [1., 1.]])
        opt = torch.optim.SGD([w, b], lr=0.1)
        for step in range(5):
            opt.zero_grad()
            loss = ((xs @ w + b).sigmoid() - ys).pow(2).mean()
            loss.backward()
            opt.step()
            print(step, loss)
        print(w, b)
        opt = torch.optim.SGD([w], lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)
        for step in range(3):
            opt.zero_grad()
            (xs @ w).tanh().sum().backward()
            opt.step()
        print(w)
    """,
    "create_graph_double_backward": """
        x = torch.tensor([0.5, -1., 2.], requires_grad=True)
        y = (x ** 3 + x.exp() * x.tanh() + x.sigmoid() / (x * x + 1)).sum()
        y.backward(create_graph=True)
        g = x.grad
        print(g)
        x.grad = None
        g.sum().backward()
        print(x.grad)
    """,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_program_prints_the_same_on_engine(name):
    expected = run_snippet(CASES[name], torch)
    assert run_snippet(CASES[name], engine) == expected
