"""What a span may say about a failure: by default the shape of it, never text that can echo content.

A server's error message can quote what was sent (a document, a question), so without the
content opt-in a span gets the exception's type, an HTTP failure's status and route, or the
exception's own ``trace_message`` when it has one (an app's errors can carry a message written
for traces), and a stack trace without the messages.
"""

from __future__ import annotations

import traceback

from opentelemetry.trace import Span, StatusCode

from llama_stack_otel_instrumentation.content import CAPTURE_CONTENT_ENV
from llama_stack_otel_instrumentation.semconv import ERROR_TYPE


def one_line(text: object, *, limit: int = 200) -> str:
    """A server's message for an error line: its white space folded, at most limit characters."""
    return " ".join(str(text).split())[:limit]


def content_message(exc: BaseException) -> str:
    """An exception's text for a span that may hold content — but not an answer's HTTP headers
    (Set-Cookie, WWW-Authenticate, ...), which ogx-client 1.2+'s ApiException lists in its text."""
    if getattr(exc, "headers", None) is not None and hasattr(exc, "status") and hasattr(exc, "body"):
        return f"({exc.status}) {getattr(exc, 'reason', None) or ''}: {exc.body}"
    return str(exc)


def safe_error_message(exc: BaseException, *, capture_content: bool) -> str:
    """What an exception event may say."""
    if capture_content:
        return content_message(exc)
    own = getattr(exc, "trace_message", None)
    if own:
        return str(own)
    response = getattr(exc, "response", None)
    request = getattr(response, "request", None)
    if request is not None and hasattr(exc, "status_code"):
        return f"HTTP {exc.status_code} to {request.method} {request.url.path}"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted by SIGINT (Ctrl-C)"
    return f"{type(exc).__name__} (message withheld; {CAPTURE_CONTENT_ENV}=true records it)"


def record_failure(span: Span, exc: BaseException, *, capture_content: bool) -> None:
    """The exception event, error status and error.type, with safe_error_message's text."""
    message = safe_error_message(exc, capture_content=capture_content)
    attributes = {"exception.message": message}
    if not capture_content or message != str(exc):
        # A formatted traceback ends with (and chains) the full messages: keep the frames only.
        frames = "".join(traceback.format_tb(exc.__traceback__))
        attributes["exception.stacktrace"] = (f"Traceback (most recent call last):\n{frames}"
                                              f"{type(exc).__qualname__}: {message}")
    span.record_exception(exc, attributes=attributes)
    span.set_status(StatusCode.ERROR, message)
    span.set_attribute(ERROR_TYPE, type(exc).__qualname__)
