"""Another app, traced by the instrumentor from the outside — end to end, as a user installs it.

A venv of its own with only requirements.txt (which installs the instrumentor from its folder) and
this project (``pip install .`` of a copy of the package), and the example apps in examples/ —
plain llama-stack-client, no tracing code but one top-level span — run under
``opentelemetry-instrument`` against the local stacks, their spans going to the suite's OTLP
receiver: on Llama Stack 0.2.12 an agent with the RAG tool and two streamed questions, on OGX 1.5
(the current Responses-API stack) the same through the Responses API. One trace per run, the
instrumentor's GenAI spans in it, the server's spans under the HTTP calls, and the questions in the
spans only when the content variable asks for it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from local import stack
from local.stack import PROJECT_ROOT
from tests.support.llama_stack_server import current_responses_version_only
from tests.support.script import clean_env
from tests.support.trace_shape import CLIENT_KIND, SERVER_KIND, ancestors, orphans, roots, server_spans_for_route

pytestmark = pytest.mark.server

EXAMPLES = PROJECT_ROOT / "examples"


@pytest.fixture(scope="session")
def app_venv(tmp_path_factory) -> Path:
    """A fresh venv: requirements.txt (with the instrumentor, ./instrumentation), then the project
    installed from a copy (pip builds in the source tree; the clone stays clean)."""
    work = tmp_path_factory.mktemp("instrumented-app")
    source = work / "source"
    for folder in ("llama_stack_otel", "instrumentation"):
        shutil.copytree(PROJECT_ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "requirements.txt"):
        shutil.copy(PROJECT_ROOT / name, source / name)
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    for args in (["-r", str(source / "requirements.txt")], [str(source)]):
        # cwd: requirements.txt names the instrumentor by its path from the project's folder
        result = subprocess.run(pip + args, capture_output=True, text=True, timeout=600, cwd=source)
        assert result.returncode == 0, result.stdout + result.stderr
    return venv


def run_app(venv: Path, app: str, questions: list[str], *, env: dict[str, str], timeout: float = 600):
    """The example as a user runs it: under opentelemetry-instrument, outside the clone."""
    result = subprocess.run([str(venv / "bin" / "opentelemetry-instrument"), str(venv / "bin" / "python"),
                             str(EXAMPLES / app), *questions], env=clean_env({
                                 "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_METRICS_EXPORTER": "none",
                                 "OTEL_LOGS_EXPORTER": "none", **env}),
                            cwd=venv.parent, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.stdout.count("QUESTION: ") == len(questions)
    return result.stdout.rsplit("Trace ID: ", 1)[1].split()[0]


def recorded(spans) -> str:
    return json.dumps([[s.name, s.attributes, s.events] for s in spans], default=str)


def the_invocations(spans, *, service: str, tool: str, questions: int, served: list):
    """One root, no orphans; per question an invoke_agent of the app with its execute_tool, and
    the server's span of the call (served) under the app's HTTP span under that invoke_agent."""
    [root] = roots(spans)
    assert not orphans(spans), [f"{s.service}:{s.name}" for s in orphans(spans)]
    mine = [s for s in spans if s.service == service]
    by_id = {s.span_id: s for s in spans}
    invokes = [s for s in mine if s.name.startswith("invoke_agent")]
    assert len(invokes) == questions and all(s.kind == CLIENT_KIND for s in invokes)
    assert all(s.attributes["openinference.span.kind"] == "AGENT" for s in invokes)
    tools = [s for s in mine if s.name == f"execute_tool {tool}"]
    assert sorted(by_id[s.parent_span_id].span_id for s in tools) == sorted(s.span_id for s in invokes)
    served = [s for s in served if by_id[s.parent_span_id].kind == CLIENT_KIND]
    assert len(served) == questions
    for server_span in served:
        call = by_id[server_span.parent_span_id]
        assert call.service == service and by_id[call.parent_span_id] in invokes
        assert root in ancestors(server_span, spans)
    return root, mine, invokes


@pytest.fixture(scope="module")
def agent_runs(app_venv, local_stack, otlp_receiver):
    """The agent example on the 0.2.12 stack: two questions with content off; one with SPAN_ONLY."""
    canary = "QCANARY-" + uuid.uuid4().hex[:8]
    questions = [f"{canary} Should I use npm to start a node.js application?",
                 "How should a Node.js service handle SIGTERM?"]
    env = {"LLAMA_STACK_URL": local_stack.llama_stack_url, "INFERENCE_MODEL": stack.MODEL_ID,
           "TOOL_CHOICE": stack.TOOL_CHOICE, "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.base_url}
    runs = {}
    for mode, asked, extra in (("private", questions, {}),
                               ("opted_in", questions[:1],
                                {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY"})):
        service = f"agent-rag-app-{mode}"
        trace_id = run_app(app_venv, "agent_rag_app.py", asked,
                           env={**env, "OTEL_SERVICE_NAME": service, **extra})
        # The last call unregisters the vector DB; the server sends its spans every ~5 s.
        otlp_receiver.wait_for(lambda ss: bool(server_spans_for_route(ss, "DELETE", "/v1/vector-dbs"))
                               and not orphans(ss), trace_id=trace_id, timeout=60)
        runs[mode] = (service, len(asked), otlp_receiver.spans(trace_id))
    return canary, runs


def test_the_agent_app_is_one_trace_with_the_instrumentors_spans(agent_runs):
    _, runs = agent_runs
    service, questions, spans = runs["private"]
    turns = [s for s in server_spans_for_route(spans, "POST", "/v1/agents/")
             if str(s.attributes.get("url.path", "")).endswith("/turn")]
    root, mine, invokes = the_invocations(spans, service=service, tool="knowledge_search", questions=questions,
                                          served=turns)
    assert root.name == "agent_rag_app run" and root.service == service
    [create] = [s for s in mine if s.name == "create_agent"]
    [session] = [s for s in mine if s.name == "create_session"]
    assert create.parent_span_id == session.parent_span_id == root.span_id
    assert {s.attributes["gen_ai.agent.id"] for s in invokes} == {create.attributes["gen_ai.agent.id"]}
    assert {s.attributes["gen_ai.conversation.id"] for s in invokes} == {session.attributes["gen_ai.conversation.id"]}
    assert all(s.attributes["gen_ai.request.model"] == stack.MODEL_ID for s in [create, *invokes])
    assert all(s.attributes["gen_ai.response.time_to_first_chunk"] > 0 for s in invokes)


def test_the_agent_apps_content_only_when_asked_for(agent_runs):
    canary, runs = agent_runs
    service, _, spans = runs["private"]
    assert canary not in recorded([s for s in spans if s.service == service])
    assert canary in recorded([s for s in spans if s.service != service])  # it did reach the server
    service, _, spans = runs["opted_in"]
    [invoke] = [s for s in spans if s.service == service and s.name == "invoke_agent"]
    assert canary in json.loads(invoke.attributes["gen_ai.input.messages"])[0]["parts"][0]["content"]


@current_responses_version_only
def test_the_responses_app_on_the_current_responses_stack(app_venv, responses_stack, otlp_receiver):
    # One question: the 270M model answers at length here (about a minute a question on 2 cores).
    questions = ["How should a Node.js service handle SIGTERM?"]
    service = "responses-rag-app"
    trace_id = run_app(app_venv, "responses_rag_app.py", questions, env={
        "LLAMA_STACK_URL": responses_stack.llama_stack_url,
        "INFERENCE_MODEL": responses_stack.script_env()["INFERENCE_MODEL"],
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.base_url, "OTEL_SERVICE_NAME": service})
    spans = otlp_receiver.wait_for(
        lambda ss: any(s.name == "DELETE /v1/files/{file_id}" for s in ss) and not orphans(ss),
        trace_id=trace_id, timeout=60)
    served = [s for s in spans if s.name == "POST /v1/responses" and s.kind == SERVER_KIND]
    root, _, _ = the_invocations(spans, service=service, tool="file_search", questions=len(questions), served=served)
    assert root.name == "responses_rag_app run"
