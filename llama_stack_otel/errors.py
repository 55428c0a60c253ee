"""The expected failures of a run, their one-line messages and the exit statuses."""

from __future__ import annotations

import os
import socket
import ssl
from urllib.parse import urlsplit


def one_line(text: object, *, limit: int = 200) -> str:
    """A server's message for an error line, folded the way the instrumentor folds it for spans.
    Imported when first needed: the instrumentor's package brings OpenTelemetry's instrumentation
    machinery with it (45 ms), which --help and a bad flag need not wait for."""
    from llama_stack_otel_instrumentation.failures import one_line as fold

    return fold(text, limit=limit)


EXIT_OK = 0
EXIT_ERROR = 1  # unexpected failure (a bug, or something we did not foresee)
EXIT_USAGE = 2  # bad input or configuration: fix the command line or the files
EXIT_SERVER = 3  # Llama Stack unreachable, or it refused or failed what we asked
EXIT_TRACE_BROKEN = 4  # --verify: the trace is not whole (or could not be checked)
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT), as shells report it: 128 + the signal number
EXIT_TERMINATED = 143  # SIGTERM


class UserError(Exception):
    """An expected failure: its message is one line telling the user what to do.
    ``trace_message`` is what the trace may say: without server text that can echo content."""

    def __init__(self, message: str, *, exit_code: int = EXIT_USAGE, trace_message: str | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.trace_message = trace_message or message


def model_not_registered(model: str, llms: list[str]) -> UserError:
    have = ", ".join(llms) if llms else "none"
    return UserError(f"model {model!r} is not registered on the server (its LLMs: {have}) — pass --model or set "
                     "INFERENCE_MODEL")


# The variables a secured server asks for: llama-stack-client sends the first as a bearer token,
# and httpx (under the client) trusts the CA certificates in the file the second names.
API_KEY_ENV = "LLAMA_STACK_API_KEY"
CA_FILE_ENV = "SSL_CERT_FILE"
# OpenSSL's verify code for a certificate that does not name the host connected to.
X509_V_ERR_HOSTNAME_MISMATCH = 62


def tls_failure(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error under a transport error (httpx and requests wrap it), if that is what it was."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def certificate_problem(error: ssl.SSLError) -> tuple[str, bool]:
    """What was wrong, in OpenSSL's words, and whether it was the host name (else: trust)."""
    if isinstance(error, ssl.SSLCertVerificationError):
        reason = str(error.verify_message or getattr(error, "reason", None) or "certificate verify failed")
        return reason, error.verify_code == X509_V_ERR_HOSTNAME_MISMATCH or "mismatch" in reason
    # The ssl module sets reason (WRONG_VERSION_NUMBER, ...) on the errors it raises.
    return str(getattr(error, "reason", None) or error.strerror or type(error).__name__), False


def tls_error(url: str, error: ssl.SSLError) -> UserError:
    """One line for a TLS handshake with Llama Stack that failed: whose certificate, for which host, what to set."""
    host = urlsplit(url).hostname or url
    reason, wrong_host = certificate_problem(error)
    if not isinstance(error, ssl.SSLCertVerificationError):
        message = (f"TLS with Llama Stack at {url} failed ({reason}) — does it serve https on that port? "
                   f"(if it serves plain HTTP, use an http:// URL; {CA_FILE_ENV} names the CA file to trust)")
    elif wrong_host:
        message = (f"the TLS certificate of Llama Stack at {url} is not valid for {host} ({reason}) — use the host "
                   f"name the certificate was made for in --llama-stack-url, or a certificate made for {host}; "
                   f"{CA_FILE_ENV} names the CA file this client trusts")
    else:
        message = (f"the TLS certificate of Llama Stack at {url} is not trusted ({reason}) — set {CA_FILE_ENV} to "
                   f"the CA certificate (PEM) that signed the certificate for {host}")
    return UserError(message, exit_code=EXIT_SERVER)


def speaks_tls(url: str, *, timeout: float = 2.0) -> bool:
    """Whether the server at an http:// URL, which dropped the connection, answers a TLS
    handshake instead: what a TLS-only server does to plain HTTP. Only asked after a failure;
    nothing is sent but the handshake, and the certificate does not matter here."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return False
    probe = ssl.create_default_context()
    probe.check_hostname = False
    probe.verify_mode = ssl.CERT_NONE
    try:
        with (socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout) as sock,
              probe.wrap_socket(sock, server_hostname=parts.hostname)):
            return True
    except OSError:  # refused, reset, timed out, or not TLS (ssl.SSLError is an OSError)
        return False


def without_key(text: str) -> str:
    """A server's words with the API key, should they quote it, blanked out."""
    key = os.environ.get(API_KEY_ENV, "")
    return text.replace(key, "[LLAMA_STACK_API_KEY]") if len(key) >= 4 else text


def auth_advice(status: int) -> str:
    """What to do about a 401 or 403, depending on whether a key was sent."""
    if not os.environ.get(API_KEY_ENV):
        return f"the server wants an API key: set {API_KEY_ENV}"
    if status == 401:
        return f"the server refused the key in {API_KEY_ENV}: set it to a key the server accepts"
    return f"the key in {API_KEY_ENV} is not allowed to do this: use a key with that permission"


def translate_client_error(exc: BaseException, url: str) -> UserError | None:
    """The client's transport and HTTP errors as one-line, actionable messages; None for others."""
    from llama_stack_client import APIConnectionError, APIError, APIStatusError, APITimeoutError

    if isinstance(exc, APITimeoutError):
        return UserError(f"Llama Stack at {url} did not answer in time — raise --timeout", exit_code=EXIT_SERVER)
    if isinstance(exc, APIConnectionError):
        tls = tls_failure(exc)
        if tls is not None:
            return tls_error(url, tls)
        if speaks_tls(url):
            https = "https://" + url.removeprefix("http://")
            return UserError(f"Llama Stack at {url} speaks HTTPS, not plain HTTP — use {https} (and {CA_FILE_ENV} "
                             "for the CA that signed its certificate)", exit_code=EXIT_SERVER)
        return UserError(f"cannot reach Llama Stack at {url} — is it running? start it with "
                         "./start-llamastack.sh start or pass --llama-stack-url", exit_code=EXIT_SERVER)
    if isinstance(exc, APIStatusError):
        request = exc.response.request
        detail = one_line(without_key(str(exc.message)))  # blanked before it is cut short
        answered = f"Llama Stack at {url} answered HTTP {exc.status_code} to {request.method} {request.url.path}"
        if exc.status_code in (401, 403):
            advice = auth_advice(exc.status_code)
            return UserError(f"{answered} ({detail}) — {advice}", exit_code=EXIT_SERVER,
                             trace_message=f"{answered} — {advice}")
        # The server's detail may quote what was sent: the terminal gets it, the trace does not.
        return UserError(f"{answered}: {detail}", exit_code=EXIT_SERVER, trace_message=answered)
    if isinstance(exc, APIError):  # an error event in a stream: llama-stack-client 0.7 raises it as such
        request = exc.request
        failed = f"Llama Stack at {url} reported an error in its answer to {request.method} {request.url.path}"
        return UserError(f"{failed}: {one_line(without_key(str(exc.message)))}", exit_code=EXIT_SERVER, trace_message=failed)
    return None
