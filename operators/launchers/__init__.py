"""Step launchers: one interface, a factory, one module per backend (Flagger's router pattern)."""

from operators.launchers.base import StepLauncher, StepOutcome, StepRequest, read_step_result
from operators.launchers.factory import launcher_for, mapped_step_operator, step_operator

__all__ = [
    "StepLauncher",
    "StepOutcome",
    "StepRequest",
    "launcher_for",
    "mapped_step_operator",
    "read_step_result",
    "step_operator",
]
