"""Stop signals for foreground commands that own child processes (testnet up, testnet chaos).

Why: the nodes and actors these commands start run in their own sessions (a Ctrl-C meant for the
command must not kill them mid-write), so if the command died on a signal they would run on,
orphaned. Ctrl-C, ``kill`` (SIGTERM) and a closed terminal (SIGHUP) therefore all raise
KeyboardInterrupt, which the command turns into an orderly stop. The handlers are installed
explicitly because a shell may start us with SIGINT ignored (a background job).
"""

from __future__ import annotations

import signal

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def interrupt_on_stop_signals() -> None:
    """From now on every stop signal raises KeyboardInterrupt in the main thread."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _interrupt)


def ignore_stop_signals() -> None:
    """While stopping: a second Ctrl-C must not cut the orderly stop short."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
