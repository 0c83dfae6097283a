"""torch with one planted bug, to prove that gradfuzz catches and shrinks divergences.

`import broken_torch as torch` is torch, except that the function form
`torch.mul(a, b)` sends twice the correct gradient to its operands. Its node is
still named MulBackward0, so values and grad_fn names match torch and only
gradients differ. Methods and operators (`a.mul(b)`, `a * b`) are torch's own.
"""
import torch


class _DoubledMulGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.operands = (a, b)  # either may be a Python number
        return torch.mul(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.operands

        def gradient(this, other):
            if not (isinstance(this, torch.Tensor) and this.requires_grad):
                return None
            return (2 * grad * other).sum_to_size(this.shape)  # the bug: 2 *
        return gradient(a, b), gradient(b, a)


_DoubledMulGradient._backward_cls.__name__ = "MulBackward0"


def mul(input, other):
    return _DoubledMulGradient.apply(input, other)


def __getattr__(name):
    """Everything but `mul` is torch's."""
    return getattr(torch, name)
