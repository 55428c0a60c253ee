"""The script's signal handling, in process: a signal whose exception Python drops (raised
inside a weakref callback or a finalizer, where exceptions are only reported) still stops
the run at its next checkpoint, and the dropped exception is not printed as a traceback."""

from __future__ import annotations

import signal
import sys
import weakref

import pytest

from llama_stack_otel import signals as interrupts


@pytest.fixture
def handling(monkeypatch):
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)
    handling = interrupts.SignalHandling()
    handling.install()
    yield handling
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def test_a_dropped_signal_exception_is_raised_at_the_next_checkpoint(handling, capsys):
    class Thing:
        pass

    thing = Thing()
    # The handler runs inside the callback, as when a signal arrives during garbage collection.
    reference = weakref.ref(thing, lambda _: handling._handle(signal.SIGTERM, None))
    del thing
    assert reference() is None
    assert "Traceback" not in capsys.readouterr().err  # dropped quietly: the checkpoint reports it
    with pytest.raises(interrupts.Terminated) as caught:
        handling.checkpoint()
    handling.seen(caught.value)
    handling.checkpoint()  # seen: nothing more to raise


def test_the_first_signal_raises_and_names_itself(handling):
    with pytest.raises(interrupts.Terminated, match="interrupted by SIGTERM"):
        handling._handle(signal.SIGTERM, None)
    assert handling.exit_at_once  # a second signal now ends the process at once
