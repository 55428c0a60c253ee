"""Today's clients traced by the instrumentor from the outside, end to end, as their users install it.

A fresh cached venv per client with nothing but what examples/requirements-<client>.txt names
(the instrumentor from its folder, the client, the OTel distro, the OTLP exporter and the HTTPX
instrumentation), on Python 3.12; the example app runs in it under ``opentelemetry-instrument``
against the local OGX 1.5 stack, its spans going to the suite's OTLP receiver:

- examples/ogx_client_app.py (ogx-client 1.5.0, OpenAPI-generated): the library Agent's turn, a
  response that searches the store, a chat completion, an embedding;
- examples/agent_turn_app.py (llama-stack-client 0.7.5): the library Agent's streamed turn.

Each run is one trace: one root, no orphans, the instrumentor's GenAI spans, the HTTPX
instrumentation's spans under them and the server's spans under those (the traceparent went out:
the HTTPX instrumentation loaded besides ours), and the question nowhere in the app's spans.
The loader takes entry points in the order the venv's metadata lists them (here httpx before
ours, as it happens), so the run's stderr is checked too: no instrumentor failed to load.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import uuid
from pathlib import Path

import pytest

from local.profiles import EMBEDDING_MODEL
from local.stack import PROJECT_ROOT, StackError, find_python
from local.venvs import ensure
from tests.support.llama_stack_server import current_responses_version_only
from tests.support.script import clean_env
from tests.support.trace_shape import CLIENT_KIND, SERVER_KIND, ancestors, orphans, roots

pytestmark = pytest.mark.server

EXAMPLES = PROJECT_ROOT / "examples"


def app_venv(requirements: str) -> Path:
    """The cached venv of one example's requirements (pip reads ./instrumentation from the project's folder)."""
    try:
        python = find_python("3.12", needed_by="today's clients")
    except StackError as error:
        pytest.skip(str(error))
    with contextlib.chdir(PROJECT_ROOT):
        return ensure(f"e2e-{requirements}", [EXAMPLES / f"requirements-{requirements}.txt"], python)


def run_example(venv: Path, app: str, question: str, *, env: dict[str, str]) -> tuple[str, str]:
    """The example as a user runs it, outside the clone: (its output, its trace id)."""
    result = subprocess.run([str(venv / "bin" / "opentelemetry-instrument"), str(venv / "bin" / "python"),
                             str(EXAMPLES / app), question], env=clean_env({
                                 "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_METRICS_EXPORTER": "none",
                                 "OTEL_LOGS_EXPORTER": "none", **env}),
                            cwd=venv.parent, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    # Whatever order the loader takes the entry points in (it stops at one that raises), none failed.
    assert "Instrumenting of" not in result.stderr and "Failed to auto initialize" not in result.stderr, \
        result.stderr
    return result.stdout, result.stdout.rsplit("Trace ID: ", 1)[1].split()[0]


def one_whole_trace(spans, *, root_name: str, service: str) -> list:
    [root] = roots(spans)
    assert root.name == root_name and root.service == service
    assert not orphans(spans), [f"{s.service}:{s.name}" for s in orphans(spans)]
    return [s for s in spans if s.service == service]


def served_under(call, spans) -> list:
    """The server's spans under the HTTP client spans right under a GenAI span."""
    http = [s for s in spans if s.parent_span_id == call.span_id and s.kind == CLIENT_KIND
            and s.service == call.service]
    return [s for s in spans if s.kind == SERVER_KIND and s.service != call.service
            and s.parent_span_id in {h.span_id for h in http}]


def recorded(spans) -> str:
    return json.dumps([[s.name, s.attributes, s.events] for s in spans], default=str)


@current_responses_version_only
def test_an_ogx_client_app_is_one_trace_with_every_operation(responses_stack, otlp_receiver):
    venv = app_venv("ogx-client")
    canary = "QCANARY-" + uuid.uuid4().hex[:8]
    model = responses_stack.script_env()["INFERENCE_MODEL"]
    service = "ogx-client-app"
    output, trace_id = run_example(venv, "ogx_client_app.py", f"{canary} How should a Node.js service handle SIGTERM?",
                                   env={"LLAMA_STACK_URL": responses_stack.llama_stack_url, "INFERENCE_MODEL": model,
                                        "EMBEDDING_MODEL": f"llama-cpp-embeddings/{EMBEDDING_MODEL}",
                                        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.base_url,
                                        "OTEL_SERVICE_NAME": service})
    assert canary in output and "EMBEDDING: 384 dimensions" in output
    # The app's last call removes the file; the server sends its spans every ~5 s.
    spans = otlp_receiver.wait_for(lambda ss: any(s.name == "DELETE /v1/files/{file_id}" for s in ss)
                                   and not orphans(ss), trace_id=trace_id, timeout=60)
    mine = one_whole_trace(spans, root_name="ogx_client_app run", service=service)
    by_id = {s.span_id: s for s in spans}
    invokes = [s for s in mine if s.name == "invoke_agent"]
    assert len(invokes) == 2 and all(s.kind == CLIENT_KIND for s in invokes)  # the Agent's turn, the response
    [search] = [s for s in mine if s.name == "execute_tool file_search"]
    assert by_id[search.parent_span_id] in invokes
    [chat] = [s for s in mine if s.name == f"chat {model}"]
    [embeddings] = [s for s in mine if s.name == f"embeddings llama-cpp-embeddings/{EMBEDDING_MODEL}"]
    [conversation] = [s for s in mine if s.name == "create_conversation"]
    assert embeddings.attributes["gen_ai.embeddings.dimension.count"] == 384
    assert chat.attributes["gen_ai.usage.output_tokens"] > 0
    for call in (*invokes, chat, embeddings, conversation):
        assert served_under(call, spans), f"no server span under {call.name}'s HTTP call"
        assert by_id[call.parent_span_id].name == "ogx_client_app run"
    # The Agent's turn holds its Responses calls: no GenAI span of their own inside it.
    turn = next(s for s in invokes if s is not by_id[search.parent_span_id])
    assert not [s for s in mine if s.name.startswith(("invoke_agent", "chat")) and turn in ancestors(s, spans)]
    assert canary not in recorded(mine)


@current_responses_version_only
def test_a_llama_stack_client_07_agents_streamed_turn_is_one_invoke_agent(responses_stack, otlp_receiver):
    venv = app_venv("llama-stack-client-0.7")
    service = "agent-turn-app"
    _, trace_id = run_example(venv, "agent_turn_app.py", "How should a Node.js service handle SIGTERM?",
                              env={"LLAMA_STACK_URL": responses_stack.llama_stack_url,
                                   "INFERENCE_MODEL": responses_stack.script_env()["INFERENCE_MODEL"],
                                   "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.base_url,
                                   "OTEL_SERVICE_NAME": service})
    spans = otlp_receiver.wait_for(
        lambda ss: any(s.name == "DELETE /v1/conversations/{conversation_id}" and s.kind == SERVER_KIND for s in ss)
        and not orphans(ss), trace_id=trace_id, timeout=60)
    mine = one_whole_trace(spans, root_name="agent_turn_app run", service=service)
    [turn] = [s for s in mine if s.name.startswith("invoke_agent")]
    assert turn.attributes["gen_ai.conversation.id"].startswith("conv_")
    assert served_under(turn, spans)  # every Responses call of the turn, under the turn
    responses = [s for s in spans if s.name == "POST /v1/responses" and s.kind == SERVER_KIND]
    assert responses and all(turn in ancestors(s, spans) for s in responses)
    assert [s.name for s in mine].count("create_conversation") == 1
