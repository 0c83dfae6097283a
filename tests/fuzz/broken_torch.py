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
        # Tensors are saved as torch's MulBackward0 saves them (an in-place change after the call
        # makes backward raise torch's version error); either operand may be a Python number.
        ctx.save_for_backward(*(x for x in (a, b) if isinstance(x, torch.Tensor)))
        ctx.numbers = tuple(None if isinstance(x, torch.Tensor) else x for x in (a, b))
        return torch.mul(a, b)

    @staticmethod
    def backward(ctx, grad):
        saved = iter(ctx.saved_tensors)
        a, b = (next(saved) if number is None else number for number in ctx.numbers)

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
