"""torch with one planted bug that a uniform gradient cannot see.

`import rolled_torch as torch` is torch, except that the function form
`torch.roll(input, shifts, dims)` rolls its gradient the same way as its input
instead of back. Under `sum().backward()` every gradient element is 1, so the
bug shows only when a later op weighs the elements differently. Its node is
still named RollBackward0. Methods (`x.roll(...)`) are torch's own.
"""
import torch


class _RolledTwice(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, shifts, dims):
        ctx.shifts, ctx.dims = shifts, dims
        return torch.roll(input, shifts, dims)

    @staticmethod
    def backward(ctx, grad):
        return torch.roll(grad, ctx.shifts, ctx.dims), None, None  # the bug: not -shifts


_RolledTwice._backward_cls.__name__ = "RollBackward0"


def roll(input, shifts, dims=None):
    return _RolledTwice.apply(input, shifts, dims)


def __getattr__(name):
    """Everything but `roll` is torch's."""
    return getattr(torch, name)
