"""Expected failures against a REAL Llama Stack server: one line, a non-zero exit, no
traceback, the error on the run's root span, and nothing left behind on the server."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from conftest import SCRIPT, TRACE_ID_LINE, run_script
from llama_stack_server import PROJECT_ROOT, start_server
from test_cli import assert_one_line_error
from trace_shape import roots, server_spans_for_route


def write_slow_corpus(folder, sentence: str) -> None:
    """Enough text (about 280 KB) that embedding it takes well over a second here."""
    for i in range(40):
        (folder / f"doc{i:02}.md").write_text(f"# Part {i}\n\n" + sentence * 200)


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


def test_a_timeout_during_ingestion_still_removes_the_vector_db(llama_stack, otlp_receiver, tmp_path):
    write_slow_corpus(tmp_path, "Node services need graceful shutdown. ")
    before = llama_stack.vector_db_ids()
    run = run_script("--no-questions", "--llama-stack-url", llama_stack.url, "--docs", str(tmp_path),
                     "--otlp-endpoint", otlp_receiver.traces_url, "--timeout", "1")
    assert_one_line_error(run, exit_code=3, says="did not answer in time")
    assert llama_stack.vector_db_ids() == before
    # The clean-up is part of the trace too: the server recorded the unregister under this run.
    otlp_receiver.wait_for(lambda ss: bool(server_spans_for_route(ss, "DELETE", "/v1/vector-dbs")),
                           trace_id=run.trace_id, timeout=60)
    assert root_of(otlp_receiver, run.trace_id).status_code == 2


@pytest.fixture(scope="module")
def server_without_vector_io(otlp_receiver, tmp_path_factory):
    server = start_server(state_dir=tmp_path_factory.mktemp("no-vector-io"), traces_url=otlp_receiver.traces_url,
                          run_config=PROJECT_ROOT / "tests" / "run-no-vector-io.yaml")
    yield server
    server.stop()


def test_no_vector_io_provider(server_without_vector_io, otlp_receiver):
    run = run_script("--no-questions", "--llama-stack-url", server_without_vector_io.url,
                     "--otlp-endpoint", otlp_receiver.traces_url)
    assert_one_line_error(run, exit_code=3, says="has no vector_io provider")


def test_ctrl_c_during_ingestion_cleans_up_and_delivers_the_trace(llama_stack, otlp_receiver, tmp_path):
    write_slow_corpus(tmp_path, "Drain connections before exit. ")
    before = set(llama_stack.vector_db_ids())
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--no-questions", "--llama-stack-url", llama_stack.url, "--docs", str(tmp_path),
         "--otlp-endpoint", otlp_receiver.traces_url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    # The script says so before it sends the documents. (Polling the server's list of
    # vector DBs instead times out: it is busy embedding them.)
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith("Ingesting "):
            break
    assert seen and seen[-1].startswith("Ingesting "), (seen, process.communicate())
    time.sleep(1)  # the insert request is on its way
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    stdout = "".join(seen) + stdout
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines() == ["error: interrupted"]
    assert set(llama_stack.vector_db_ids()) == before
    trace_id = TRACE_ID_LINE.search(stdout).group(1)
    root = root_of(otlp_receiver, trace_id)
    assert root.status_code == 2
    assert any(name == "exception" and attrs.get("exception.type") == "KeyboardInterrupt" for name, attrs in root.events)
