"""show_trace.py without a Llama Stack: reading each backend's answer, the verdict, the tree.

Jaeger cannot run on these machines; its answers here follow the documented wire format of
its query API v3 (OTLP-JSON TracesData under "result": hex ids, integer enums, nanosecond
times as strings), served over real HTTP by the suite's OTLP receiver where a server is
needed. Phoenix's shape is the one Phoenix 20.26.1 answers; the end-to-end tests read a real one.
"""

from __future__ import annotations

import base64
import subprocess
import sys

import pytest

from llama_stack_otel import verify as show_trace
from llama_stack_otel.verify import Span, judge, render_tree
from local.stack import PROJECT_ROOT
from tests.support.collectors import refusing
from tests.support.otlp_receiver import OTLPReceiver, ReceivedSpan, jaeger_v3_trace

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
S = 1_000_000_000  # ns


def span(span_id: str, parent: str, name: str, service: str = "PythonAgentRAG", *, start: float = 0.0,
         end: float = 1.0, error: bool = False, http: bool = False) -> Span:
    return Span(span_id=span_id, parent_id=parent, name=name, service=service, start_ns=int(start * S),
                end_ns=int(end * S), error=error,
                attributes={"http.request.method": "POST", "url.full": "http://127.0.0.1:8321/v1/x"} if http else {})


def whole() -> list[Span]:
    """A run whose one HTTP call has the server's span under it."""
    return [
        span("a" * 16, "", "Python LlamaStack request - 1", end=3.0),
        span("b" * 16, "a" * 16, "ingest_documents", start=0.1, end=2.9),
        span("c" * 16, "b" * 16, "POST", start=0.2, end=2.8, http=True),
        span("d" * 16, "c" * 16, "/v1/vector-dbs", "LlamaStack", start=0.3, end=2.7),
    ]


# --- The verdict ----------------------------------------------------------------------------------


def test_a_whole_trace_is_ok():
    verdict = judge(whole(), client_service="PythonAgentRAG")
    assert verdict.ok, verdict.problems
    assert (len(verdict.roots), len(verdict.orphans), verdict.http_calls) == (1, 0, 1)
    assert verdict.services == {"PythonAgentRAG": 3, "LlamaStack": 1}
    assert verdict.covered_ns == 3 * S


def test_no_spans_is_broken():
    assert judge([]).problems == ["no spans found for this trace"]


def test_a_missing_parent_makes_an_orphan():
    spans = whole()[:2] + whole()[3:]  # the script's HTTP span never arrived
    verdict = judge(spans, client_service="PythonAgentRAG")
    assert not verdict.ok
    assert [s.name for s in verdict.orphans] == ["/v1/vector-dbs"]
    assert "1 orphan span(s) whose parent never arrived (first: LlamaStack '/v1/vector-dbs')" in verdict.problems[0]


def test_two_roots_is_broken():
    spans = [*whole(), span("e" * 16, "", "/v1/models", "LlamaStack")]
    verdict = judge(spans, client_service="PythonAgentRAG")
    assert len(verdict.roots) == 2
    assert verdict.problems[0].startswith("2 root spans ('Python LlamaStack request - 1', '/v1/models')")


def test_only_the_clients_spans_means_no_server_spans():
    verdict = judge(whole()[:3], client_service="PythonAgentRAG")
    assert verdict.problems == ["no server spans: only PythonAgentRAG's spans arrived — is the server's telemetry "
                                "on (Llama Stack 0.4 and later: start it under opentelemetry-instrument with "
                                "OTEL_EXPORTER_OTLP_ENDPOINT set), and does its request carry the traceparent header?"]
    # Without being told, the client is the root's service.
    assert judge(whole()[:3]).problems == verdict.problems


def test_an_http_call_without_a_server_span_under_it():
    spans = [*whole(), span("f" * 16, "b" * 16, "GET", start=2.0, end=2.1, http=True)]
    verdict = judge(spans, client_service="PythonAgentRAG")
    assert verdict.problems == ["1 of 2 HTTP calls have no server span under them (first: 'GET')"]
    assert judge(spans, client_service="PythonAgentRAG", expect_server=False).ok


def test_wait_for_verdict_polls_until_whole_and_settled():
    answers = [whole()[:3], whole()[:3], whole()]  # the server's batch arrives on the third poll

    class Backend:
        label, ui = "Jaeger", "http://x"

        def fetch(self, trace_id):
            return answers.pop(0) if len(answers) > 1 else answers[0]

    now = [0.0]
    verdict = show_trace.wait_for_verdict(Backend(), TRACE, wait_s=20, clock=lambda: now[0],
                                          sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert verdict.ok and now[0] == 3.0  # whole on the third poll, and still so on the fourth


def test_wait_for_verdict_gives_up_at_the_deadline():
    class Backend:
        label, ui = "Phoenix", "http://x"

        def fetch(self, trace_id):
            return []

    now = [0.0]
    verdict = show_trace.wait_for_verdict(Backend(), TRACE, wait_s=3, clock=lambda: now[0],
                                          sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert now[0] == 3.0
    assert verdict.problems == [f"no spans of trace {TRACE} in Phoenix at http://x after 3 s — were they sent there?"]


# --- The tree --------------------------------------------------------------------------------------


def test_tree_lines_fit_and_show_service_duration_and_errors():
    spans = [*whole(), span("9" * 16, "d" * 16, "x" * 150, "LlamaStack", start=1.0, end=1.5, error=True)]
    lines = render_tree(spans, width=100)
    assert [line.split()[0] for line in lines[:2]] == ["Python", "└─"]
    assert all(len(line) <= 100 for line in lines), [len(line) for line in lines]
    assert "PythonAgentRAG" in lines[0] and lines[0].endswith("3.00 s")
    assert lines[-1].endswith("500 ms  ERROR") and "…" in lines[-1]
    assert lines[3].startswith("      └─ /v1/vector-dbs")  # three levels under the root


def test_many_tiny_siblings_collapse_into_one_line_with_a_count():
    spans = whole() + [span(f"{k:016x}", "d" * 16, "embeddings", "LlamaStack", start=1 + k / 100, end=1.002 + k / 100)
                       for k in range(40)]
    lines = render_tree(spans)
    [line] = [line for line in lines if "embeddings" in line]
    assert "embeddings ×40" in line and line.endswith("80 ms")
    assert len(lines) == 5


def test_leaves_under_a_millisecond_fold_into_one_line_per_parent():
    tiny = [span(f"{k:016x}", "d" * 16, name, "LlamaStack", start=1 + k / 100, end=1.0002 + k / 100)
            for k, name in enumerate(["fastapi.dependencies", "get_model", "fastapi.serialization"])]
    lines = render_tree(whole() + tiny)
    assert len(lines) == 5
    assert "└─ 3 spans under 1 ms: fastapi.dependencies, get_model, fastapi.…  LlamaStack" in lines[-1]


def test_two_siblings_stay_two_lines():
    spans = whole() + [span(f"{k:016x}", "d" * 16, "embeddings", "LlamaStack") for k in range(2)]
    assert sum("embeddings" in line for line in render_tree(spans)) == 2


def test_orphans_print_as_tops_marked_with_their_missing_parent():
    lines = render_tree(whole()[:2] + whole()[3:])
    assert lines[-1].startswith("/v1/vector-dbs  (parent cccccccc… never arrived)")


def test_ascii_tree_when_the_terminal_cannot_draw_lines():
    lines = render_tree(whole(), ascii_only=True)
    assert lines[1].startswith("`- ingest_documents") and all(line.isascii() for line in lines)


# --- Reading the backends' answers ---------------------------------------------------------------------


def test_jaeger_v3_otlp_json_with_hex_or_base64_ids():
    document = {"result": {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "LlamaStack"}}]},
        "scopeSpans": [{"scope": {}, "spans": [
            {"traceId": TRACE, "spanId": "00000000000000b4", "parentSpanId": "", "name": "root", "kind": 2,
             "startTimeUnixNano": "1000000000", "endTimeUnixNano": "3500000000", "status": {"code": 2, "message": "boom"},
             "attributes": [{"key": "http.request.method", "value": {"stringValue": "GET"}},
                            {"key": "http.response.status_code", "value": {"intValue": "500"}}]},
            {"traceId": base64.b64encode(bytes.fromhex(TRACE)).decode(),
             "spanId": base64.b64encode(bytes.fromhex("00000000000000c5")).decode(),
             "parentSpanId": base64.b64encode(bytes.fromhex("00000000000000b4")).decode(),
             "name": "child", "startTimeUnixNano": "1500000000", "endTimeUnixNano": "2000000000",
             "status": {"code": "STATUS_CODE_UNSET"}},
        ]}],
    }]}}
    root, child = show_trace.spans_from_otlp_json(document["result"])
    assert (root.span_id, root.parent_id, root.service, root.error, root.status_message) == (
        "00000000000000b4", "", "LlamaStack", True, "boom")
    assert root.duration_ns == 2_500_000_000 and root.attributes["http.response.status_code"] == 500
    assert root.is_http_call and not child.is_http_call
    assert (child.span_id, child.parent_id, child.error) == ("00000000000000c5", "00000000000000b4", False)


def test_phoenix_span_json():
    raw = {"name": "inference", "context": {"trace_id": TRACE, "span_id": "00000000000000c5"},
           "parent_id": "00000000000000b4", "span_kind": "UNKNOWN",
           "start_time": "2026-11-24T18:00:01.250000+00:00", "end_time": "2026-11-24T18:00:03.000000+00:00",
           "status_code": "ERROR", "status_message": "x", "attributes": {"tool_name": "knowledge_search"}}
    parsed = show_trace.span_from_phoenix(raw)
    assert (parsed.span_id, parsed.parent_id, parsed.error, parsed.duration_ns) == (
        "00000000000000c5", "00000000000000b4", True, 1_750_000_000)
    assert show_trace.span_from_phoenix({**raw, "parent_id": None, "status_code": "OK"}).parent_id == ""


def received(span_id: str, parent: str, name: str, service: str) -> ReceivedSpan:
    return ReceivedSpan(trace_id=TRACE, span_id=span_id, parent_span_id=parent, name=name, service=service, kind=1,
                        status_code=0, status_message="", start_ns=S, end_ns=2 * S,
                        attributes={"n": 1, "ok": True, "ratio": 0.5, "tags": ["a"]}, events=())


def test_the_receivers_jaeger_answer_reads_back_as_the_spans_it_holds():
    spans = [received("a" * 16, "", "root", "PythonAgentRAG"), received("b" * 16, "a" * 16, "child", "LlamaStack")]
    read = show_trace.spans_from_otlp_json(jaeger_v3_trace(spans)["result"])
    assert {(s.span_id, s.parent_id, s.name, s.service) for s in read} == {
        ("a" * 16, "", "root", "PythonAgentRAG"), ("b" * 16, "a" * 16, "child", "LlamaStack")}
    assert read[0].attributes == {"n": 1, "ok": True, "ratio": 0.5, "tags": ["a"]}


# --- Over HTTP: detection, not found, unreachable -----------------------------------------------------


def test_detects_the_jaeger_api_and_fetches_over_http():
    with OTLPReceiver() as receiver:
        receiver._add([received("a" * 16, "", "root", "PythonAgentRAG")])
        backend = show_trace.detect_backend(receiver.base_url)
        assert isinstance(backend, show_trace.Jaeger)
        assert [s.name for s in backend.fetch(TRACE)] == ["root"]
        assert backend.fetch("0" * 31 + "1") == []  # 404: not (yet) there
        assert backend.link(TRACE) == f"{receiver.base_url}/trace/{TRACE}"


def test_nothing_to_detect_where_nothing_listens():
    with refusing() as url:
        assert show_trace.detect_backend(url) is None
        with pytest.raises(show_trace.BackendError, match=r"cannot reach Jaeger at .*Connection refused"):
            show_trace.Jaeger(url).fetch(TRACE)


def show(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(PROJECT_ROOT / "show_trace.py"), *args], capture_output=True,
                          text=True, timeout=60, cwd=PROJECT_ROOT, env={"PATH": "/usr/bin:/bin", **(env or {})})


def test_command_prints_tree_and_verdict_for_a_whole_trace():
    with OTLPReceiver() as receiver:
        receiver._add([received("a" * 16, "", "Python LlamaStack request - 1", "PythonAgentRAG"),
                       received("b" * 16, "a" * 16, "/v1/models", "LlamaStack")])
        result = show(TRACE, "--trace-ui", receiver.base_url, "--verify-wait", "0")
    assert result.returncode == 0, result.stderr
    root, child = result.stdout.splitlines()[:2]
    assert root.startswith("Python LlamaStack request - 1 ") and root.endswith("  PythonAgentRAG    1.00 s")
    assert child.startswith("└─ /v1/models ") and child.endswith("  LlamaStack        1.00 s")
    assert len(root) == len(child) == 100  # names padded: services and durations line up
    assert "trace OK" in result.stdout and f"Trace link: {receiver.base_url}/trace/{TRACE}" in result.stdout


def test_command_says_broken_and_exits_4_for_an_unknown_trace():
    with OTLPReceiver() as receiver:
        result = show(TRACE, "--trace-ui", receiver.base_url, "--trace-backend", "jaeger", "--verify-wait", "1")
    assert result.returncode == 4
    assert f"trace BROKEN: no spans of trace {TRACE} in Jaeger at {receiver.base_url} after 1 s" in result.stdout


@pytest.mark.parametrize("args, code, says", [
    (["nothex"], 2, "error: argument trace_id: a trace id is 32 hex digits, got 'nothex'"),
    ([TRACE, "--trace-ui", "localhost:16686"], 2, "is not an http(s) URL"),
    ([TRACE, "--verify-wait", "-1"], 2, "must be a number of seconds"),
    ([TRACE], 2, "error: TRACE_BACKEND='zipkin' is not one of auto, jaeger, phoenix"),
], ids=["trace-id", "ui", "wait", "backend-env"])
def test_command_bad_input_is_one_line(args, code, says):
    result = show(*args, env={"TRACE_BACKEND": "zipkin"} if "TRACE_BACKEND" in says else None)
    assert (result.returncode, result.stdout) == (code, "")
    assert says in result.stderr and len(result.stderr.splitlines()) == 1


def test_command_with_no_backend_there_is_not_checked():
    with refusing() as url:
        result = show(TRACE, "--trace-ui", url)
    assert result.returncode == 4 and result.stdout == ""
    assert result.stderr.startswith(f"trace NOT CHECKED: no Jaeger or Phoenix answers at {url}")
    assert len(result.stderr.splitlines()) == 1


def test_spans_naming_another_run_make_the_trace_broken():
    """What Llama Stack 0.2.12 did with concurrent requests: one run's trace held another's calls."""
    mine, other = "11111111-2222-4333-8444-555555555555", "99999999-2222-4333-8444-555555555555"
    spans = whole()
    spans[0] = span("a" * 16, "", f"Python LlamaStack request - {mine}", end=3.0)
    intruder = Span(span_id="e" * 16, parent_id="d" * 16, name="VectorDBsRoutingTable.register_vector_db",
                    service="LlamaStack", start_ns=S, end_ns=2 * S,
                    attributes={"__args__": f'{{"vector_db_id": "test-vector-db-{other}"}}'})
    verdict = judge([*spans, intruder], client_service="PythonAgentRAG", run_id=mine)
    assert [s.name for s in verdict.foreign] == ["VectorDBsRoutingTable.register_vector_db"]
    assert verdict.problems == [
        "1 span(s) belong to 1 other run(s) (first: LlamaStack 'VectorDBsRoutingTable.register_vector_db' names run "
        "99999999…): the server filed concurrent requests' work under this trace"]
    assert judge([*spans, intruder], client_service="PythonAgentRAG").ok  # without the run id, it cannot tell
