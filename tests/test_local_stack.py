"""End to end on the local stack: the script, Llama Stack 0.2.12, Gemma 3 270M on llama.cpp.

Two questions through a real agent: each turn must run the model and a knowledge_search
tool execution on the server, the answers must be clean text, and the whole run must be
one trace with one root and no orphans. First with the suite's OTLP receiver as the trace
backend (TRACE_BACKEND=external), then once more on a stack of its own with Arize Phoenix,
read back through Phoenix's REST API, and the link the script printed opened in headless
Chromium.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from local.stack import PROJECT_ROOT
from tests.support.agent_run import QUESTIONS, ROOT_PREFIX, assert_clean_answers, question_args, tree_and_verdict
from tests.support.headless_chromium import wait_for_text
from tests.support.llama_stack_server import StackServer, stack_on_free_ports
from tests.support.script import (
    CURRENT_CLIENT,
    TRACE_ID_LINE,
    assert_one_line_error,
    clean_env,
    client_python,
    run_script,
    wait_for_ingestion,
    write_slow_corpus,
)
from tests.support.trace_shape import ancestors, orphans, roots, server_spans_for_route, whole_trace

TRACE_LINK_LINE = re.compile(r"^Trace link: (\S+)$", re.MULTILINE)


def is_turn(span) -> bool:
    return str(span.attributes.get("url.path", "")).endswith("/turn")


@pytest.fixture(scope="module")
def two_questions(local_stack, otlp_receiver):
    """Two questions with --verify: the suite's receiver answers Jaeger's query API, so the
    script reads its own trace back from it and judges it."""
    env = {**local_stack.script_env(), "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.base_url,
           "TRACE_UI_URL": otlp_receiver.base_url}
    run = run_script(*question_args(), "--verify", env=env, timeout=600)
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    return run, whole_trace(otlp_receiver, run.trace_id)


def test_two_clean_answers_and_nothing_on_stderr(two_questions):
    run, _ = two_questions
    assert run.stdout.count("QUESTION: ") == 2
    assert_clean_answers(run.stdout)
    assert run.stderr == ""


def test_one_whole_trace(two_questions):
    _, spans = two_questions
    [root] = roots(spans)
    assert root.name.startswith(ROOT_PREFIX)
    assert not orphans(spans), [f"{s.service}:{s.name}" for s in orphans(spans)]
    assert {s.service for s in spans} == {"PythonAgentRAG", "LlamaStack"}
    # The run describes itself on its top-level span (Phoenix showed "no attributes" there).
    documents = len(list((PROJECT_ROOT / "sample-docs").rglob("*.md")))
    assert {key: root.attributes.get(key) for key in (
        "rag_agent.run.id", "rag_agent.server.version", "rag_agent.api", "rag_agent.model",
        "rag_agent.documents.count", "rag_agent.questions.count", "rag_agent.run.outcome", "openinference.span.kind",
    )} == {"rag_agent.run.id": root.name.removeprefix(ROOT_PREFIX), "rag_agent.server.version": "0.2.12",
           "rag_agent.api": "agents", "rag_agent.model": "gemma3-270m", "rag_agent.documents.count": documents,
           "rag_agent.questions.count": len(QUESTIONS), "rag_agent.run.outcome": "ok",
           "openinference.span.kind": "CHAIN"}


def test_each_turn_ran_the_model_and_knowledge_search(two_questions):
    _, spans = two_questions
    turns = [s for s in server_spans_for_route(spans, "POST", "/v1/agents/") if is_turn(s)]
    assert len(turns) == len(QUESTIONS), [s.attributes.get("url.path") for s in turns]
    by_id = {s.span_id: s for s in spans}
    for turn in turns:
        # The server's work hangs beside its HTTP span, under the script's client span for the call.
        call = by_id[turn.parent_span_id]
        inside = [s for s in spans if call in ancestors(s, spans)]
        names = {s.name for s in inside}
        assert "inference" in names, sorted(names)
        tools = [s for s in inside if s.name == "tool_execution"]
        assert [s.attributes.get("tool_name") for s in tools] == ["knowledge_search"], sorted(names)


def test_vector_db_removed(two_questions, llama_stack):
    run, _ = two_questions
    assert run.vector_db_id not in llama_stack.vector_db_ids()


def test_verify_prints_the_tree_and_says_the_trace_is_whole(two_questions):
    run, spans = two_questions
    tree, verdict = tree_and_verdict(run.stdout)
    run_id = run.vector_db_id.removeprefix("test-vector-db-")
    assert tree[0].startswith(f"{ROOT_PREFIX}{run_id}") and "PythonAgentRAG" in tree[0]
    assert all(len(line) <= 100 for line in tree), max(tree, key=len)
    phases = [line.split("─ ", 1)[1].split("  ")[0] for line in tree if line[:3] in ("├─ ", "└─ ")]
    assert phases == ["check_server", "ingest_documents", "create_agent rag-agent", "create_session rag-agent",
                      "invoke_agent rag-agent", "invoke_agent rag-agent", "clean_up"]
    assert sum(" tool_execution " in line and "LlamaStack" in line for line in tree) == len(QUESTIONS)
    assert any(" spans under 1 ms: " in line for line in tree)  # the server's tiny spans, folded
    assert verdict[0].startswith("services: ") and "PythonAgentRAG" in verdict[0] and "LlamaStack" in verdict[0]
    assert f"trace {run.trace_id}: " in verdict[1] and " · 1 root(s) · 0 orphan(s) · " in verdict[1]
    assert verdict[2] == "trace OK"
    # The spans the script judged are the trace the receiver holds (a late batch may add some).
    assert 0 < int(verdict[1].split(": ")[1].split(" spans")[0]) <= len(spans)


def test_show_trace_judges_the_same_trace_from_outside(two_questions, otlp_receiver):
    run, _ = two_questions
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "show_trace.py"), run.trace_id,
                             "--trace-ui", otlp_receiver.base_url, "--verify-wait", "0"],
                            capture_output=True, text=True, timeout=60, env=clean_env())
    assert result.returncode == 0, result.stdout + result.stderr
    tree, verdict = tree_and_verdict(result.stdout)
    assert tree[0] == tree_and_verdict(run.stdout)[0][0] and verdict[2] == "trace OK"


# --- Phoenix -------------------------------------------------------------------------------------


def phoenix_spans(ui: str, trace_id: str) -> list[dict]:
    url = f"{ui}/v1/projects/default/spans?trace_id={trace_id}&limit=1000"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)["data"]


@pytest.fixture(scope="module")
def phoenix_stack(tmp_path_factory):
    with stack_on_free_ports(tmp_path_factory.mktemp("phoenix-stack"), trace_backend="phoenix") as running:
        yield running


@pytest.fixture(scope="module")
def phoenix_run(phoenix_stack):
    """The two questions once on the Phoenix stack, and the spans Phoenix holds for the run's
    trace once it has all of them (the vector DB's removal arrived, no orphans) or 60 s passed."""
    run = run_script(*question_args(), "--verify", env=phoenix_stack.script_env(), timeout=600)
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    deadline = time.monotonic() + 60
    while True:
        spans = phoenix_spans(phoenix_stack.trace_ui, run.trace_id)
        ids = {s["context"]["span_id"] for s in spans}
        complete = (any(s["name"].startswith("DELETE /v1/vector-dbs") for s in spans)
                    and all(s["parent_id"] in ids for s in spans if s["parent_id"]))
        if complete or time.monotonic() > deadline:
            return run, spans
        time.sleep(1)


def test_phoenix_receives_the_same_whole_trace(phoenix_stack, phoenix_run):
    run, spans = phoenix_run
    assert_clean_answers(run.stdout)
    assert run.stderr == ""  # Phoenix takes no metrics: the stack's env switches them off
    assert f"Trace link: {phoenix_stack.trace_ui}/redirects/traces/{run.trace_id}" in run.stdout

    ids = {s["context"]["span_id"] for s in spans}
    orphaned = [s["name"] for s in spans if s["parent_id"] and s["parent_id"] not in ids]
    assert not orphaned, orphaned
    root_names = [s["name"] for s in spans if not s["parent_id"]]
    assert len(root_names) == 1 and root_names[0].startswith(ROOT_PREFIX), root_names
    tools = [s for s in spans if s["name"] == "tool_execution"]
    assert [s["attributes"].get("tool_name") for s in tools] == ["knowledge_search"] * len(QUESTIONS)
    assert sum(s["name"] == "inference" for s in spans) >= 2 * len(QUESTIONS)  # search, then answer
    assert run.vector_db_id not in StackServer(phoenix_stack.llama_stack_url).vector_db_ids()


def test_verify_reads_the_trace_back_from_phoenix(phoenix_stack, phoenix_run):
    """Phoenix keeps no service names: the tree names the server by the host:port the script called."""
    run, _spans = phoenix_run
    tree, verdict = tree_and_verdict(run.stdout)
    server = phoenix_stack.llama_stack_url.removeprefix("http://")
    assert verdict[2] == "trace OK", "\n".join(tree + verdict)
    assert verdict[0].startswith("services: ") and f"{server} (" in verdict[0] and "PythonAgentRAG (" in verdict[0]
    assert sum(" tool_execution " in line and server in line for line in tree) == len(QUESTIONS)
    assert " · 1 root(s) · 0 orphan(s) · " in verdict[1]


def test_verify_on_phoenix_says_broken_when_the_traceparent_is_not_sent(phoenix_stack):
    """OTEL_PROPAGATORS=none: the server gets no traceparent, so its spans start traces of their
    own and the run's trace holds the script's spans alone."""
    env = {**phoenix_stack.script_env(), "OTEL_PROPAGATORS": "none"}
    run = run_script("--no-questions", "--docs", str(PROJECT_ROOT / "sample-docs" / "delivery"), "--verify",
                     "--verify-wait", "8", env=env, timeout=300)
    assert run.returncode == 4, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    assert run.stdout.splitlines()[-1] == (
        "trace BROKEN: no server spans: only PythonAgentRAG's spans arrived — is the server's telemetry on "
        "(Llama Stack 0.4 and later: start it under opentelemetry-instrument with OTEL_EXPORTER_OTLP_ENDPOINT set), "
        "and does its request carry the traceparent header?")
    assert run.vector_db_id not in StackServer(phoenix_stack.llama_stack_url).vector_db_ids()


def test_the_printed_phoenix_link_shows_the_run_in_a_browser(phoenix_stack, phoenix_run, tmp_path):
    """The `Trace link:` line the script printed, opened in headless Chromium: the page it ends
    on shows the run's trace id and, after it (the trace's own panel, not only the project's
    list of traces), the run's root span name. Phoenix's link is a redirect done by its React
    app, which then fetches the trace over GraphQL, so only a browser that runs the page's
    JavaScript sees this; phoenix_run has already waited until Phoenix's REST API has the trace."""
    run, spans = phoenix_run
    link = TRACE_LINK_LINE.search(run.stdout)
    assert link, run.stdout
    assert link.group(1) == f"{phoenix_stack.trace_ui}/redirects/traces/{run.trace_id}"
    # The root span carries the run's id, which the run also put in its vector DB's name.
    root_name = ROOT_PREFIX + run.vector_db_id.removeprefix("test-vector-db-")
    assert root_name in {s["name"] for s in spans if not s["parent_id"]}, "Phoenix does not have the root span"

    text = wait_for_text(link.group(1), root_name, after=run.trace_id, tmp_dir=tmp_path, timeout=60)
    panel = text.partition(run.trace_id)[2]
    assert root_name in panel, (f"{root_name!r} is not after the trace id {run.trace_id} on the page {link.group(1)} "
                                f"rendered; its text:\n{text[:3000]}")


# --- make demo -----------------------------------------------------------------------------------


def demo(local_stack, *args: str) -> subprocess.Popen:
    """`python -m local.stack demo` (what `make demo` runs) on the session's stack, which is
    already up, so it goes straight to the script; its own process group, as in a terminal."""
    return subprocess.Popen([sys.executable, "-m", "local.stack", "demo", *args], cwd=PROJECT_ROOT,
                            env=clean_env({"LOCAL_STACK_DIR": local_stack.state_dir}), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_demo_runs_the_agent_on_the_running_stack(local_stack):
    process = demo(local_stack, "--question", QUESTIONS[0])
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr
    assert "already running" in stderr and "`make stack-down` stops it" in stderr
    assert stdout.count("RESPONSE: ") == 1 and TRACE_ID_LINE.search(stdout)


def test_ctrl_c_in_the_demo_lets_the_script_clean_up(local_stack, llama_stack, tmp_path):
    write_slow_corpus(tmp_path, "Drain connections before exit. ")
    before = set(llama_stack.vector_db_ids())
    process = demo(local_stack, "--no-questions", "--docs", str(tmp_path))
    wait_for_ingestion(process)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
    _stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "error: interrupted" in stderr
    assert set(llama_stack.vector_db_ids()) == before  # the script removed its vector DB


def test_todays_client_says_which_client_this_server_needs(local_stack, llama_stack, otlp_receiver):
    """llama-stack-client 0.7 has no Agents API, which 0.2.12 serves: one line naming the client
    to install, exit 2, and nothing made on the server."""
    before = set(llama_stack.vector_db_ids())
    env = {**local_stack.script_env(), "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.base_url}
    run = run_script(*question_args(), env=env, python=client_python(CURRENT_CLIENT), timeout=120)
    assert_one_line_error(run, exit_code=2, says=(
        f"error: Llama Stack 0.2.12 serves the Agents API, which llama-stack-client {CURRENT_CLIENT} no longer has — "
        "pip install 'llama-stack-client==0.2.12' to talk to it"))
    assert "QUESTION: " not in run.stdout and "Ingesting" not in run.stdout
    assert set(llama_stack.vector_db_ids()) == before
