"""Pick the launcher backend from ``launcher.kind``; the only place that switches on it."""

from __future__ import annotations

from collections.abc import Callable

from operators.launchers.base import StepLauncher
from slipway.config import LauncherConfig


def _local(config: LauncherConfig) -> StepLauncher:
    from operators.launchers.local import LocalSubprocessLauncher

    return LocalSubprocessLauncher(config)


_BACKENDS: dict[str, Callable[[LauncherConfig], StepLauncher]] = {"local": _local}


def launcher_for(config: LauncherConfig) -> StepLauncher:
    try:
        return _BACKENDS[config.kind](config)
    except KeyError:
        raise ValueError(
            f"launcher kind {config.kind!r} is not available here (known: {', '.join(sorted(_BACKENDS))})"
        ) from None
