"""engine.nn.functional: the `nn.functional.*` ops of the op table, as torch.nn.functional."""
from __future__ import annotations
