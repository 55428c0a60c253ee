"""The lines for a secured server or collector, without one: what the client's and the
exporter's errors become (test_secure_stack.py and test_secured_collector.py meet the real ones).
The cases a real server does not easily give: a 403, an answer that quotes the key, a TLS
failure that is not about the certificate, a metrics-only refusal."""

from __future__ import annotations

import ssl

import httpx
import pytest
import requests
from llama_stack_client import APIConnectionError, APIStatusError

from llama_stack_otel import delivery, errors

URL = "https://llama-stack.internal:8321"
KEY = "canary-key-0e9d4c7b"


def status_error(status: int, message: str) -> APIStatusError:
    request = httpx.Request("GET", f"{URL}/v1/models")
    return APIStatusError(message, response=httpx.Response(status, request=request), body=None)


def connection_error(cause: BaseException) -> APIConnectionError:
    exc = APIConnectionError(request=httpx.Request("GET", f"{URL}/v1/version"))
    exc.__cause__ = httpx.ConnectError(str(cause))
    exc.__cause__.__cause__ = cause
    return exc


def certificate_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {message}")
    error.verify_code, error.verify_message = code, message
    return error


def test_a_403_with_a_key_says_the_key_may_not_do_this_and_never_shows_it(monkeypatch):
    monkeypatch.setenv("LLAMA_STACK_API_KEY", KEY)
    line = errors.translate_client_error(status_error(403, f"Error code: 403 - user {KEY} may not list"), URL)
    assert line.exit_code == errors.EXIT_SERVER
    assert "HTTP 403 to GET /v1/models" in str(line) and "LLAMA_STACK_API_KEY is not allowed" in str(line)
    assert KEY not in str(line) and KEY not in line.trace_message
    assert "[LLAMA_STACK_API_KEY]" in str(line)  # the server's words, the key blanked out
    assert "may not list" not in line.trace_message  # the server's words stay out of the trace


def test_a_401_without_a_key_asks_for_one(monkeypatch):
    monkeypatch.delenv("LLAMA_STACK_API_KEY", raising=False)
    line = str(errors.translate_client_error(status_error(401, "Authentication required"), URL))
    assert line.endswith("— the server wants an API key: set LLAMA_STACK_API_KEY")


@pytest.mark.parametrize("cause, says", [
    (certificate_error(19, "self-signed certificate in certificate chain"),
     "is not trusted (self-signed certificate in certificate chain) — set SSL_CERT_FILE to the CA certificate (PEM) "
     "that signed the certificate for llama-stack.internal"),
    (certificate_error(62, "Hostname mismatch, certificate is not valid for 'llama-stack.internal'."),
     "is not valid for llama-stack.internal"),
    (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"), "does it serve https on that port?"),
], ids=["untrusted", "hostname", "not-tls"])
def test_tls_failures_name_ssl_cert_file_and_the_host(cause, says):
    line = errors.translate_client_error(connection_error(cause), URL)
    assert line.exit_code == errors.EXIT_SERVER
    assert says in str(line) and "SSL_CERT_FILE" in str(line), str(line)
    assert "\n" not in str(line)


def test_a_collector_refusing_only_the_metrics_names_the_headers_variable():
    watched = delivery.Delivery(traces_endpoint="https://otel.internal:4318/v1/traces", timeout_ms=1500)
    watched.new_metric_exporter("https://otel.internal:4318/v1/metrics")
    watched.metric_exporter.failed_exports = 1
    watched.metrics.problem = "HTTP 403 Forbidden"
    line = watched.summary()
    assert line.startswith("metrics could not be delivered to https://otel.internal:4318/v1/metrics (HTTP 403")
    assert line.endswith("set OTEL_EXPORTER_OTLP_HEADERS to the header it wants (e.g. Authorization=Bearer%20<token>)")


def test_an_untrusted_collector_certificate_is_told_apart_from_a_refused_connection():
    error = certificate_error(20, "unable to get local issuer certificate")
    wrapped = requests.exceptions.SSLError("HTTPSConnectionPool(...): Max retries exceeded")
    wrapped.__context__ = error
    problem = delivery.describe_failure(wrapped, 1.5)
    assert problem == "TLS: its certificate is not trusted: unable to get local issuer certificate"
    assert "OTEL_EXPORTER_OTLP_CERTIFICATE" in delivery.advice_for(problem)
    assert delivery.advice_for("connection refused") is None  # the usual "is the collector running?"
