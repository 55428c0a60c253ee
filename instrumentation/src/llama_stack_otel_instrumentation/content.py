"""Whether message content may go on spans: off unless the user opts in.

``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` is read the way OpenTelemetry's GenAI
instrumentations read it, both ways they do: true/false (also 1/0, yes/no, on/off) and
opentelemetry-util-genai's modes, of which SPAN_ONLY and SPAN_AND_EVENT put content on spans
(no events are emitted here). A value it does not take means no content and one warning: an
app is not failed for a typo in a telemetry variable.
"""

from __future__ import annotations

import logging
import os

CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
YES = ("1", "true", "yes", "on", "span_only", "span_and_event")
NO = ("", "0", "false", "no", "off", "no_content", "event_only")

_log = logging.getLogger(__name__)


def capture_content_from_env() -> bool:
    raw = os.environ.get(CAPTURE_CONTENT_ENV, "").strip().lower()
    if raw in YES:
        return True
    if raw not in NO:
        _log.warning("%s=%r is not a value it takes (true/false, SPAN_ONLY, ...); recording no content",
                     CAPTURE_CONTENT_ENV, os.environ[CAPTURE_CONTENT_ENV])
    return False
