"""The instrumentation tests run in one venv per client release (make test-instrumentation):
these fixtures say which client is installed, and put the global OpenTelemetry state back."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def no_content_variable(monkeypatch):
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
