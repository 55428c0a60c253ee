"""Questions about the shape of a received trace: roots, orphans, parent chains."""

from __future__ import annotations

from tests.support.otlp_receiver import ReceivedSpan

SERVER_KIND = 2
CLIENT_KIND = 3


def roots(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    return [s for s in spans if not s.parent_span_id]


def orphans(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    """Spans whose parent is not among the spans received."""
    ids = {s.span_id for s in spans}
    return [s for s in spans if s.parent_span_id and s.parent_span_id not in ids]


def ancestors(span: ReceivedSpan, spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    """The parent chain of span, nearest first; stops at a root or a missing parent."""
    by_id = {s.span_id: s for s in spans}
    chain: list[ReceivedSpan] = []
    current = span
    while current.parent_span_id in by_id and len(chain) <= len(spans):
        current = by_id[current.parent_span_id]
        chain.append(current)
    return chain


def server_spans_for_route(spans: list[ReceivedSpan], method: str, route: str) -> list[ReceivedSpan]:
    """The HTTP server spans the Llama Stack server recorded for METHOD on a path under route."""
    return [
        s for s in spans
        if s.service == "LlamaStack" and s.kind == SERVER_KIND
        and s.attributes.get("http.request.method") == method
        and str(s.attributes.get("url.path", "")).startswith(route)
    ]


def whole_trace(receiver, trace_id: str) -> list[ReceivedSpan]:
    """Every span of a run's trace, once the server's last batch is in.

    A run's last call removes its vector DB; the server exports in ~5 s batches, so wait
    for its span of that call, then give parents that end after their children a moment
    to follow. If orphans remain, return what arrived: the caller's assertions say which.
    """
    receiver.wait_for(lambda spans: bool(server_spans_for_route(spans, "DELETE", "/v1/vector-dbs")),
                      trace_id=trace_id, timeout=60)
    try:
        return receiver.wait_for(lambda spans: not orphans(spans), trace_id=trace_id, timeout=15)
    except AssertionError:
        return receiver.spans(trace_id)
