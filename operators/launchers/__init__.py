"""Step launchers: one interface, a factory, one module per backend (Flagger's router pattern)."""

from operators.launchers.base import StepLauncher, StepOutcome, StepRequest
from operators.launchers.factory import launcher_for

__all__ = ["StepLauncher", "StepOutcome", "StepRequest", "launcher_for"]
