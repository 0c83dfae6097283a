"""torch that crashes its process: the first `torch.neg(x)` call of a campaign dies by SIGSEGV.

`import crashing_torch as torch` is torch, except that the function form `torch.neg`
reads address 0 (a real segmentation fault, as a bug in a C extension makes) once: when
the file named by the environment variable CRASHING_TORCH_ONCE does not exist yet (it is
created just before the crash, so a campaign meets exactly one crash; remove the file to
crash again). Without the variable every call crashes.

With CRASHING_TORCH_MID_MESSAGE set, the process dies in the middle of telling the campaign's
parent process something, as it may when a crash comes while it sends: the first bytes of a
message are in the pipe to the parent and the rest never comes (a multiprocessing queue's
write lock, held by the sending thread, is never released).
"""
import ctypes
import gc
import os
import struct

import torch


def neg(input, *args, **kwargs):
    marker = os.environ.get("CRASHING_TORCH_ONCE")
    if marker is None or not os.path.exists(marker):
        if marker is not None:
            open(marker, "w").close()
        if os.environ.get("CRASHING_TORCH_MID_MESSAGE"):
            _cut_a_message_short()
        ctypes.string_at(0)  # SIGSEGV
    return torch.neg(input, *args, **kwargs)


def _cut_a_message_short():
    for channel in [thing for thing in gc.get_objects() if type(thing).__name__ == "_LocalChannel"]:
        if hasattr(channel.events, "_wlock"):  # a multiprocessing queue
            channel.events._wlock.acquire()
        else:  # a Connection: the length of a message, and a little of it
            os.write(channel.events.fileno(), struct.pack("!i", 1000) + b"\x80\x05")


def __getattr__(name):
    """Everything but `neg` is torch's."""
    return getattr(torch, name)
