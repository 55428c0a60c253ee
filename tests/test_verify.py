"""--verify and --concurrency end to end on the local stack, with the suite's OTLP receiver as
the trace backend (it answers Jaeger's query API v3; see tests/support/otlp_receiver.py).

The verdict both ways: a run whose requests carry no traceparent must come out BROKEN with
exit 4, and eight runs at once must come out as eight whole traces, none holding a span of
another run — the problem distributed tracing exists to solve, and one Llama Stack 0.2.12
had (its span stack was shared between concurrent requests; local/providers/llama_stack_fixes.py).
"""

from __future__ import annotations

import re
import signal
import time
from collections import Counter

import pytest

from local.stack import PROJECT_ROOT
from tests.support.agent_run import ROOT_PREFIX
from tests.support.collectors import refusing
from tests.support.script import run_script, start_script, write_slow_corpus
from tests.support.trace_shape import orphans, roots, server_spans_for_route

DOCS = PROJECT_ROOT / "sample-docs" / "delivery"  # two short documents: ingestion in seconds
RUN_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# Where a span names the run it belongs to: the root's name, the vector DB's and the session's ids.
RUN_MARK = re.compile(rf"(?:request - |test-vector-db-|rag-session-)({RUN_ID})")


@pytest.fixture
def stack_env(local_stack, otlp_receiver):
    return {**local_stack.script_env(), "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.base_url,
            "TRACE_UI_URL": otlp_receiver.base_url}


def runs_named(span) -> set[str]:
    texts = [span.name, *(str(v) for v in span.attributes.values())]
    return {found for text in texts for found in RUN_MARK.findall(text)}


def test_without_the_traceparent_the_verdict_is_broken(stack_env, otlp_receiver, llama_stack):
    run = run_script("--no-questions", "--docs", str(DOCS), "--verify-wait", "8",
                     env={**stack_env, "OTEL_PROPAGATORS": "none", "VERIFY_TRACE": "1"}, timeout=300)
    assert run.returncode == 4, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    assert run.stdout.splitlines()[-1].startswith("trace BROKEN: no server spans: only PythonAgentRAG's spans arrived")
    assert run.stderr == ""
    # The server did handle the run's calls: its spans went to traces of their own.
    vector_db_id = run.vector_db_id
    stray = otlp_receiver.wait_for(
        lambda spans: any(vector_db_id in str(s.attributes.get("url.path", "")) for s in spans
                          if s.service == "LlamaStack"), timeout=30)
    assert {s.trace_id for s in stray if vector_db_id in str(s.attributes.get("url.path", ""))} != {run.trace_id}
    assert vector_db_id not in llama_stack.vector_db_ids()


def test_verify_with_no_trace_backend_there_is_not_checked(stack_env, llama_stack):
    with refusing() as nowhere:
        run = run_script("--no-questions", "--docs", str(DOCS), "--verify",
                         env={**stack_env, "TRACE_UI_URL": nowhere}, timeout=300)
    assert run.returncode == 4
    assert run.stderr.splitlines() == [f"trace NOT CHECKED: no Jaeger or Phoenix answers at {nowhere} — pass "
                                       "--trace-ui (and --trace-backend) for the trace UI the spans went to"]
    assert f"Trace link: {nowhere}/trace/{run.trace_id}" in run.stdout  # Jaeger's form when none answers
    assert run.vector_db_id not in llama_stack.vector_db_ids()


def test_eight_concurrent_runs_give_eight_whole_traces(stack_env, otlp_receiver, llama_stack):
    run = run_script("--docs", str(DOCS), "--concurrency", "8", "--verify", env=stack_env, timeout=900)
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    assert run.stderr == ""
    lines = run.stdout.splitlines()
    trace_ids = dict(re.findall(r"^\[(\d)\] Trace ID: ([0-9a-f]{32})$", run.stdout, re.M))
    run_ids = dict(re.findall(rf"^\[(\d)\] Ingesting 2 documents .* into vector DB test-vector-db-({RUN_ID})",
                              run.stdout, re.M))
    assert sorted(trace_ids) == sorted(run_ids) == [str(k) for k in range(1, 9)]
    assert len(set(trace_ids.values())) == 8
    assert sum(line.startswith("[") and " RESPONSE: " in line for line in lines) == 8  # answers print whole
    assert lines.count("trace OK") == 8 and lines[-1] == "8 of 8 traces whole"

    for k, trace_id in trace_ids.items():
        run_id = run_ids[k]
        spans = otlp_receiver.wait_for(
            lambda spans: bool(server_spans_for_route(spans, "DELETE", "/v1/vector-dbs")) and not orphans(spans),
            trace_id=trace_id, timeout=60)
        [root] = roots(spans)
        assert root.name == ROOT_PREFIX + run_id
        # No span of this trace names another run; the server's own work for this run is here.
        foreign = Counter(other for s in spans for other in runs_named(s) - {run_id})
        assert not foreign, f"run [{k}]'s trace holds spans of runs {dict(foreign)}"
        names = Counter(s.name for s in spans if s.service == "LlamaStack")
        assert names["tool_execution"] == 1 and names["inference"] >= 2, names
        assert any(run_id in str(s.attributes.get("url.path", "")) for s in spans if s.service == "LlamaStack")
    assert not {f"test-vector-db-{r}" for r in run_ids.values()} & set(llama_stack.vector_db_ids())


def test_ctrl_c_stops_every_concurrent_run_and_each_cleans_up(stack_env, llama_stack, tmp_path):
    write_slow_corpus(tmp_path, "Each run embeds these lines for a while. ", files=12)
    process = start_script("--docs", str(tmp_path), "--concurrency", "3", env=stack_env)
    started = [process.stdout.readline() for _ in range(3)]
    assert all(" Ingesting " in line for line in started), started
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr
    assert sorted(line for line in stderr.splitlines() if line.endswith("error: interrupted")) == [
        f"[{k}] error: interrupted" for k in (1, 2, 3)]
    vector_dbs = [line.split("into vector DB ")[1].split()[0] for line in started]
    assert not set(vector_dbs) & set(llama_stack.vector_db_ids())
    assert len(re.findall(r"^\[\d\] Trace ID: ", stdout, re.M)) == 3  # every run's spans went out


@pytest.mark.parametrize("args, env, says", [
    (["--verify"], {"OTEL_SDK_DISABLED": "true"}, "--verify checks the run's trace, and OTEL_SDK_DISABLED=true"),
    (["--concurrency", "0"], {}, "--concurrency: must be a positive integer"),
    (["--concurrency", "65"], {}, "--concurrency: must be at most 64"),
    (["--verify-wait", "-1"], {}, "--verify-wait: must be a number of seconds"),
    (["--trace-ui", "localhost:16686"], {}, "--trace-ui 'localhost:16686' is not an http(s) URL"),
], ids=["verify-without-tracing", "concurrency-0", "concurrency-65", "verify-wait", "trace-ui"])
def test_bad_verify_and_concurrency_settings_are_one_line(args, env, says):
    run = run_script("--llama-stack-url", "http://127.0.0.1:9", *args, env=env, timeout=60)
    assert run.returncode == 2 and run.stdout == ""
    assert says in run.stderr and len(run.stderr.splitlines()) == 1, run.stderr
