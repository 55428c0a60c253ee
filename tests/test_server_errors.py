"""Expected failures against a REAL Llama Stack server: one line, a non-zero exit, no
traceback, the error on the run's root span, and nothing left behind on the server."""

from __future__ import annotations

import signal
import time
import urllib.error
from urllib.parse import urlsplit

import pytest

from local.stack import PROJECT_ROOT
from tests.support.llama_stack_server import start_server
from tests.support.loopback_proxy import LoopbackProxy
from tests.support.script import (
    TRACE_ID_LINE,
    assert_one_line_error,
    read_until,
    run_script,
    start_script,
    wait_for_ingestion,
    write_slow_corpus,
)
from tests.support.trace_shape import orphans, roots, server_spans_for_route


def root_of(otlp_receiver, trace_id: str):
    spans = otlp_receiver.wait_for(lambda ss: bool(roots(ss)), trace_id=trace_id, timeout=15)
    [root] = roots(spans)
    return root


def test_model_not_registered_lists_the_models_it_has(llama_stack, otlp_receiver):
    before = llama_stack.vector_db_ids()
    run = run_script("--llama-stack-url", llama_stack.url, "--otlp-endpoint", otlp_receiver.traces_url,
                     "--model", "no-such-model")
    assert_one_line_error(run, exit_code=2, says="model 'no-such-model' is not registered on the server")
    assert "its LLMs: gemma3-270m)" in run.stderr  # the local stack serves one
    assert llama_stack.vector_db_ids() == before
    assert root_of(otlp_receiver, run.trace_id).status_code == 2


def test_unknown_embedding_model_is_reported_from_the_server(llama_stack, otlp_receiver):
    run = run_script("--no-questions", "--llama-stack-url", llama_stack.url,
                     "--otlp-endpoint", otlp_receiver.traces_url, "--embedding-model", "no-such-embedder")
    assert_one_line_error(run, exit_code=3, says="answered HTTP 400 to POST /v1/vector-dbs")


def wait_until_idle(llama_stack, *, within_s: float = 0.3, timeout: float = 120) -> None:
    """Until the server answers a listing at once: one still embedding for an earlier test's
    interrupted run can take seconds for any call, and the test below times out on purpose."""
    deadline = time.monotonic() + timeout
    while True:
        started = time.monotonic()
        llama_stack.vector_db_ids()
        if time.monotonic() - started < within_s:
            return
        assert time.monotonic() < deadline, f"the server stayed busy for {timeout} s"
        time.sleep(1)


def test_a_timeout_during_ingestion_still_removes_the_vector_db(llama_stack, otlp_receiver, tmp_path):
    """--timeout 2 against an insert that takes far longer (40 files to embed): the insert, not
    one of the quick calls before it, must be what times out; so the server must be idle first."""
    write_slow_corpus(tmp_path, "Node services need graceful shutdown. ")
    before = llama_stack.vector_db_ids()
    wait_until_idle(llama_stack)
    run = run_script("--no-questions", "--llama-stack-url", llama_stack.url, "--docs", str(tmp_path),
                     "--otlp-endpoint", otlp_receiver.traces_url, "--timeout", "2")
    assert_one_line_error(run, exit_code=3, says="did not answer in time")
    assert llama_stack.vector_db_ids() == before
    # The clean-up is part of the trace too: the server recorded the unregister under this run.
    spans = otlp_receiver.wait_for(lambda ss: bool(server_spans_for_route(ss, "DELETE", "/v1/vector-dbs")),
                                   trace_id=run.trace_id, timeout=60)
    root = root_of(otlp_receiver, run.trace_id)
    assert root.status_code == 2 and "did not answer in time" in root.status_message
    # The phase that was waiting records the timeout too.
    assert root.attributes["rag_agent.failed_phase"] == "ingest_documents"
    [ingest] = [s for s in spans if s.name == "ingest_documents"]
    assert ingest.status_code == 2
    assert any(name == "exception" and attrs["exception.type"].endswith("APITimeoutError") for name, attrs in ingest.events)


@pytest.fixture(scope="module")
def server_without_vector_io(otlp_receiver, tmp_path_factory):
    server = start_server(state_dir=tmp_path_factory.mktemp("no-vector-io"), otlp_base_url=otlp_receiver.base_url,
                          run_config=PROJECT_ROOT / "tests" / "run-no-vector-io.yaml")
    yield server
    server.stop()


def test_no_vector_io_provider(server_without_vector_io, otlp_receiver):
    run = run_script("--no-questions", "--llama-stack-url", server_without_vector_io.url,
                     "--otlp-endpoint", otlp_receiver.traces_url)
    assert_one_line_error(run, exit_code=3, says="has no vector_io provider")


def remove_vector_db(llama_stack, vector_db_id: str) -> None:
    """Remove what an interrupted run left behind. The run's own DELETE may still be under way on
    the server (which answers 500 to a second one meanwhile): retry until the DB is gone."""
    deadline = time.monotonic() + 90
    while vector_db_id in llama_stack.vector_db_ids():
        try:
            llama_stack.call("DELETE", f"/v1/vector-dbs/{vector_db_id}")
        except urllib.error.HTTPError:
            assert time.monotonic() < deadline, f"could not remove {vector_db_id}"
            time.sleep(1)


def assert_delivered_with_signal(otlp_receiver, stdout: str, stderr: str, *, signal_name: str,
                                 exception_type: str, phase: str) -> None:
    """The root span ends in ERROR naming the signal, the phase it hit failed, and every span
    the script ended arrived (the script reports any it could not deliver)."""
    assert "could not be delivered" not in stderr and "spans lost" not in stderr, stderr
    trace_id = TRACE_ID_LINE.search(stdout).group(1)
    spans = otlp_receiver.wait_for(
        lambda ss: bool(roots(ss)) and any(s.name == "clean_up" for s in ss), trace_id=trace_id, timeout=15)
    [root] = roots(spans)
    assert root.status_code == 2 and signal_name in root.status_message, root.status_message
    assert root.attributes["rag_agent.failed_phase"] == phase
    assert any(name == "exception" and str(attrs.get("exception.type")).split(".")[-1] == exception_type
               for name, attrs in root.events)
    [failed] = [s for s in spans if s.name == phase]
    assert failed.status_code == 2 and signal_name in failed.status_message
    mine = [s for s in spans if s.service == "PythonAgentRAG"]
    assert not orphans(mine), [s.name for s in orphans(mine)]


SIGNALS = [  # signal, exit status, the error line, the exception the root records
    (signal.SIGINT, 130, "error: interrupted", "KeyboardInterrupt"),
    (signal.SIGTERM, 143, "error: terminated (SIGTERM)", "Terminated"),
]


@pytest.mark.parametrize("signum, exit_code, error_line, exception_type", SIGNALS, ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_ingestion_cleans_up_and_delivers_the_trace(llama_stack, otlp_receiver, tmp_path, signum,
                                                                    exit_code, error_line, exception_type):
    write_slow_corpus(tmp_path, "Drain connections before exit. ", files=10)
    before = set(llama_stack.vector_db_ids())
    process = start_script("--no-questions", "--llama-stack-url", llama_stack.url, "--docs", str(tmp_path),
                           "--otlp-endpoint", otlp_receiver.traces_url)
    wait_for_ingestion(process)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == exit_code, stderr
    assert stderr.strip().splitlines() == [error_line]
    assert set(llama_stack.vector_db_ids()) == before
    assert_delivered_with_signal(otlp_receiver, stdout, stderr, signal_name=signal.Signals(signum).name,
                                 exception_type=exception_type, phase="ingest_documents")


def test_a_second_ctrl_c_exits_at_once(llama_stack, tmp_path):
    """The first Ctrl-C starts the clean-up; the server stops answering (a stalled proxy), so the
    clean-up's DELETE waits; a second Ctrl-C ends the script there and then, saying so."""
    write_slow_corpus(tmp_path, "Close the listener first. ", files=10)
    proxy = LoopbackProxy(urlsplit(llama_stack.url).port)
    process = start_script("--no-questions", "--llama-stack-url", proxy.url, "--docs", str(tmp_path))
    left_behind = wait_for_ingestion(process)
    try:
        proxy.stall()
        process.send_signal(signal.SIGINT)
        time.sleep(1.0)
        assert process.poll() is None, "the clean-up ended before the second Ctrl-C could reach it"
        process.send_signal(signal.SIGINT)
        second = time.monotonic()
        _stdout, stderr = process.communicate(timeout=60)
        assert time.monotonic() - second < 2.0
        assert process.returncode == 130, stderr
        assert stderr.strip().splitlines()[-1].startswith("error: SIGINT while cleaning up"), stderr
        assert "Traceback" not in stderr
    finally:
        proxy.cut()
        remove_vector_db(llama_stack, left_behind)  # the run was cut short in its clean-up


def test_llama_stack_going_away_mid_run(llama_stack, otlp_receiver, tmp_path):
    """The server refuses connections from the middle of ingestion on: one error line naming the
    URL, exit 3, the error on the ingest_documents span and on the root, those spans delivered."""
    write_slow_corpus(tmp_path, "Health checks must fail fast. ", files=10)
    proxy = LoopbackProxy(urlsplit(llama_stack.url).port)
    process = start_script("--no-questions", "--llama-stack-url", proxy.url, "--docs", str(tmp_path),
                           "--otlp-endpoint", otlp_receiver.traces_url)
    left_behind = wait_for_ingestion(process)
    try:
        proxy.cut()
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 3, stderr
        errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
        assert errors == [f"error: cannot reach Llama Stack at {proxy.url} — is it running? start it with "
                          "./start-llamastack.sh start or pass --llama-stack-url"], stderr
        # The clean-up could not reach it either, and says how to finish it by hand.
        assert f"curl -X DELETE {proxy.url}/v1/vector-dbs/{left_behind}" in stderr
        assert "Traceback" not in stderr and "could not be delivered" not in stderr
        spans = otlp_receiver.wait_for(lambda ss: bool(roots(ss)), trace_id=TRACE_ID_LINE.search(stdout).group(1),
                                       timeout=15)
        [root] = roots(spans)
        assert root.status_code == 2 and "cannot reach Llama Stack" in root.status_message
        assert root.attributes["rag_agent.failed_phase"] == "ingest_documents"
        [ingest] = [s for s in spans if s.name == "ingest_documents"]
        assert ingest.status_code == 2
        assert any(name == "exception" and attrs["exception.type"].endswith("APIConnectionError")
                   for name, attrs in ingest.events)
    finally:
        remove_vector_db(llama_stack, left_behind)


@pytest.mark.parametrize("signum, exit_code, error_line, exception_type", SIGNALS, ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_a_streamed_answer(local_stack, llama_stack, otlp_receiver, signum, exit_code, error_line,
                                           exception_type):
    """On the local stack's LLM: the signal comes while the answer streams (a turn takes 10-20 s
    here); the agent and the vector DB are removed, the trace arrives whole, the root names the signal."""
    before = set(llama_stack.vector_db_ids())
    env = {**local_stack.script_env(), "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.base_url}
    process = start_script("--tool-choice", "knowledge_search", "--question", "How should a service handle SIGTERM?",
                           env=env)
    head = read_until(process, "RESPONSE: ", timeout=180)
    process.send_signal(signum)
    rest, stderr = process.communicate(timeout=120)
    stdout = head + rest
    assert process.returncode == exit_code, stderr
    assert stderr.strip().splitlines() == [error_line]
    assert set(llama_stack.vector_db_ids()) == before
    assert_delivered_with_signal(otlp_receiver, stdout, stderr, signal_name=signal.Signals(signum).name,
                                 exception_type=exception_type, phase="invoke_agent rag-agent")
    # The agent was removed too: the clean-up had one to delete and left nothing behind.
    [clean_up] = [s for s in otlp_receiver.spans(TRACE_ID_LINE.search(stdout).group(1)) if s.name == "clean_up"]
    assert clean_up.attributes["rag_agent.agents.count"] == 1 and clean_up.status_code != 2
