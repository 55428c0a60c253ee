"""The machinery behind llama_stack_agent_rag_otel.py: everything but the lesson.

Modules, by what they hold:
    cli        flags, environment variables, the checks made before a run
    config     settings and defaults
    documents  the markdown folder, stripped to text
    backends   one RAG run per Llama Stack generation (agents: 0.2.x; responses: 0.4+, OGX)
    telemetry  the app's phase spans, the run's metric, what content may be recorded
    semconv    attribute names (GenAI semantic conventions and the project's own)
    names      how a run names what it creates
    delivery   bounded OTLP export and accounting of every span
    signals    Ctrl-C and SIGTERM: clean up first, then exit 130 / 143
    console    where a run's lines go
    errors     expected failures, one line each, and the exit statuses
    runner     running one or many requests, then links and --verify
    verify     fetch a trace from Jaeger or Phoenix, print it as a tree, judge it

The GenAI spans of the client calls (create_agent, invoke_agent, execute_tool, ...) are the
client instrumentor's, a distribution of its own in instrumentation/
(llama_stack_otel_instrumentation), which this package depends on.
"""

__version__ = "0.5.0"
