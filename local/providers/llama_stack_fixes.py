"""A fix to Llama Stack 0.2.12 itself, applied when the server loads this project's providers.

Its tracing keeps each request's stack of open spans in ``TraceContext.spans``, declared on the
class, so every request shares one list: with two requests in flight, a span of one is
parented under whatever span the other opened last, and the traces of concurrent requests
merge into one (seen here: eight concurrent runs gave one trace of ~500 spans holding every
run's vector DB calls and seven nearly empty ones). Upstream fixed it later by making the
list per instance; this does the same for the version the local stack runs.
"""

from __future__ import annotations


def give_each_request_its_own_span_stack() -> None:
    from llama_stack.providers.utils.telemetry import tracing

    trace_context = tracing.TraceContext
    if "spans" not in vars(trace_context) or getattr(trace_context, "_per_request_spans", False):
        return  # a release with the fix, or already applied
    original_init = trace_context.__init__

    def __init__(self, *args, **kwargs) -> None:
        original_init(self, *args, **kwargs)
        self.spans = []

    trace_context.__init__ = __init__
    trace_context._per_request_spans = True


give_each_request_its_own_span_stack()
