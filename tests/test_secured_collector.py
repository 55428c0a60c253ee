"""The script's OTLP delivery to a collector secured as in production: one that wants a header
on every export (a token), one that speaks only TLS with a certificate from a private CA, and
exports compressed with gzip — the script against the REAL Llama Stack server, its collector the
suite's OTLP receiver in those modes.

Set up right (OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_CERTIFICATE,
OTEL_EXPORTER_OTLP_COMPRESSION) the whole trace arrives and nothing is said; set up wrong the run
still finishes, exit 0, with one warning line naming the variable to set (or, for plain HTTP
to a collector that speaks only HTTPS, the https:// URL to use). The header's value — a
canary — appears nowhere: not in what the script prints, not in a span.
"""

from __future__ import annotations

import pytest

from local import credentials
from tests.support import collectors
from tests.support.otlp_receiver import OTLPReceiver
from tests.support.script import TRACE_ID_LINE

TOKEN = "canary-otlp-token-5f2b9c"  # what the collector wants, after "Bearer "
WRONG_TOKEN = "canary-wrong-token-81d3e0"
HEADERS = {"authorization": f"Bearer {TOKEN}"}
DELIVERY_WARNING = "warning: traces could not be delivered to "


@pytest.fixture(scope="module")
def run_args(llama_stack, tmp_path_factory):
    return collectors.one_doc_run_args(llama_stack.url, tmp_path_factory.mktemp("one-doc"))


@pytest.fixture(scope="module")
def private_ca(tmp_path_factory) -> credentials.Credentials:
    """A CA of the test's own and a certificate it signed for 127.0.0.1: the collector's."""
    return credentials.make(tmp_path_factory.mktemp("collector-ca"), ca_name="test collector CA")


def run(run_args, receiver: OTLPReceiver, env: dict[str, str]) -> tuple[int, str, str]:
    code, _, _, stdout, stderr = collectors.timed_run(run_args, otlp_base=receiver.base_url, env=env)
    return code, stdout, stderr


def assert_whole_run_arrived(receiver: OTLPReceiver, stdout: str) -> None:
    trace_id = TRACE_ID_LINE.search(stdout).group(1)
    spans = receiver.wait_for_span(name="clean_up", trace_id=trace_id, timeout=10)
    assert spans.service == "PythonAgentRAG"
    for span in receiver.spans(trace_id):
        assert not any(TOKEN in str(v) or WRONG_TOKEN in str(v) for v in span.attributes.values()), span


def test_tls_with_a_private_ca_a_header_and_gzip(run_args, private_ca):
    """The secured collector of docs/configuration.md: all three at once, every export accepted."""
    with OTLPReceiver(required_headers=HEADERS, tls=(private_ca.certfile, private_ca.keyfile)) as receiver:
        assert receiver.base_url.startswith("https://")
        code, stdout, stderr = run(run_args, receiver, {
            "OTEL_EXPORTER_OTLP_HEADERS": f"authorization=Bearer%20{TOKEN}",
            "OTEL_EXPORTER_OTLP_CERTIFICATE": str(private_ca.ca_file),
            "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"})
        assert (code, stderr) == (0, ""), stderr
        assert_whole_run_arrived(receiver, stdout)
        assert receiver.refused == 0
        assert receiver.encodings and set(receiver.encodings) == {"gzip"}, receiver.encodings
    assert TOKEN not in stdout + stderr


@pytest.mark.parametrize("headers", [{}, {"OTEL_EXPORTER_OTLP_HEADERS": f"authorization=Bearer%20{WRONG_TOKEN}"}],
                         ids=["no-header", "wrong-token"])
def test_a_refused_credential_names_the_headers_variable(run_args, headers):
    with OTLPReceiver(required_headers=HEADERS) as receiver:
        code, stdout, stderr = run(run_args, receiver, headers)
        assert receiver.refused > 0 and receiver.spans() == []
    assert code == 0, stderr
    assert "Ingested 1 documents" in stdout
    warning = collectors.one_warning(stderr, starting=DELIVERY_WARNING)
    assert "(HTTP 401" in warning and "set OTEL_EXPORTER_OTLP_HEADERS" in warning, warning
    assert "is the collector running" not in warning
    assert WRONG_TOKEN not in stdout + stderr and TOKEN not in stdout + stderr


def test_a_certificate_not_trusted_names_the_certificate_variable(run_args, private_ca):
    with OTLPReceiver(tls=(private_ca.certfile, private_ca.keyfile)) as receiver:
        code, stdout, stderr = run(run_args, receiver, {})
        assert receiver.spans() == []
    assert code == 0, stderr
    assert "Ingested 1 documents" in stdout
    warning = collectors.one_warning(stderr, starting=DELIVERY_WARNING)
    assert warning.startswith(f"warning: traces could not be delivered to {receiver.traces_url} (TLS"), warning
    assert "set OTEL_EXPORTER_OTLP_CERTIFICATE" in warning, warning


def test_plain_http_to_a_tls_only_collector_says_use_https(run_args, private_ca):
    with OTLPReceiver(tls=(private_ca.certfile, private_ca.keyfile)) as receiver:
        plain = receiver.base_url.replace("https://", "http://")
        code, _, _, _, stderr = collectors.timed_run(run_args, otlp_base=plain)
    assert code == 0, stderr
    warning = collectors.one_warning(stderr, starting=DELIVERY_WARNING)
    assert warning.startswith(f"warning: traces could not be delivered to {plain}/v1/traces (it speaks HTTPS, not "
                              "plain HTTP)"), warning
    assert "use an https:// endpoint (and OTEL_EXPORTER_OTLP_CERTIFICATE" in warning, warning
