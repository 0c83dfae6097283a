"""torch that crashes its process: the first `torch.neg(x)` call of a campaign dies by SIGSEGV.

`import crashing_torch as torch` is torch, except that the function form `torch.neg`
reads address 0 (a real segmentation fault, as a bug in a C extension makes) once: when
the file named by the environment variable CRASHING_TORCH_ONCE does not exist yet (it is
created just before the crash, so a campaign meets exactly one crash; remove the file to
crash again). Without the variable every call crashes.
"""
import ctypes
import os

import torch


def neg(input, *args, **kwargs):
    marker = os.environ.get("CRASHING_TORCH_ONCE")
    if marker is None or not os.path.exists(marker):
        if marker is not None:
            open(marker, "w").close()
        ctypes.string_at(0)  # SIGSEGV
    return torch.neg(input, *args, **kwargs)


def __getattr__(name):
    """Everything but `neg` is torch's."""
    return getattr(torch, name)
