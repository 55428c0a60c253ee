"""SIGINT and SIGTERM for llama_stack_agent_rag_otel.py: stop the run, but clean up first.

The first signal raises an exception where the script is — KeyboardInterrupt for Ctrl-C,
``Terminated`` for SIGTERM — so the run unwinds through its clean-up (the agent and vector
DB are removed), the root span records which signal ended it, and the spans are still
delivered; the script then exits 130 or 143. Python's default for SIGTERM is to die on the
spot, losing every span not yet exported. A second signal, or any signal once only the
delivery of telemetry is left, exits at once.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised wherever the script is so that it unwinds like Ctrl-C does: the
    clean-up runs, the root span records it, the spans go out."""

    trace_message = "interrupted by SIGTERM"

    def __init__(self) -> None:
        super().__init__(self.trace_message)


class SignalHandling:
    """The first SIGINT or SIGTERM raises (KeyboardInterrupt, Terminated) where the script is,
    so the run cleans up and its spans still go out. A second one, or any signal once only the
    delivery of telemetry is left, exits at once."""

    def __init__(self) -> None:
        self.exit_at_once: str | None = None  # what we are doing, once a signal should end it
        # The exception a signal raised, until the run has seen it: raised where Python runs a
        # finalizer or weakref callback, it is printed and dropped instead of unwinding the run.
        self.pending: KeyboardInterrupt | None = None
        # Set once a signal has stopped the process: runs in other threads (--concurrency),
        # where no signal lands, stop at their next checkpoint too.
        self.stopping: type[KeyboardInterrupt] | None = None

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)
        report_unraisable = sys.unraisablehook

        def quiet_when_pending(unraisable: Any) -> None:
            if unraisable.exc_value is None or unraisable.exc_value is not self.pending:
                report_unraisable(unraisable)  # else checkpoint() raises it where it counts

        sys.unraisablehook = quiet_when_pending

    def _handle(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.exit_at_once:
            os.write(2, f"error: {name} while {self.exit_at_once} — exiting at once\n".encode())
            os._exit(128 + signum)
        self.exit_at_once = "cleaning up (what the run created may be left on the server)"
        self.pending = Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
        raise self.pending

    def checkpoint(self) -> None:
        """Raise the signal's exception again if it was dropped; called where the run can stop.
        In a thread other than the main one, raise once any signal has stopped the process."""
        if self.pending is not None:
            raise self.pending
        if self.stopping is not None and threading.current_thread() is not threading.main_thread():
            raise self.stopping()

    def stop_all(self, exc: KeyboardInterrupt) -> None:
        """Make every other thread's next checkpoint raise what the signal raised here."""
        self.stopping = type(exc)

    def seen(self, exc: BaseException) -> None:
        if exc is self.pending:
            self.pending = None


signals = SignalHandling()  # one per process, like the signal handlers themselves
