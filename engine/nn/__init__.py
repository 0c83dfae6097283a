"""engine.nn: neural-network building blocks, as torch.nn."""
from . import functional  # noqa: F401
from .modules import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, Linear, Module, MSELoss, NLLLoss,
                      Parameter, ReLU, Sequential, SmoothL1Loss)

__all__ = ["functional", "Parameter", "Module", "Linear", "Sequential", "ReLU", "MSELoss", "L1Loss",
           "SmoothL1Loss", "BCELoss", "BCEWithLogitsLoss", "NLLLoss", "CrossEntropyLoss"]
