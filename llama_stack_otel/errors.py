"""The expected failures of a run, their one-line messages and the exit statuses."""

from __future__ import annotations

# A server's message for an error line, folded the way the instrumentor folds it for spans.
from llama_stack_otel_instrumentation.failures import one_line

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


def translate_client_error(exc: BaseException, url: str) -> UserError | None:
    """The client's transport and HTTP errors as one-line, actionable messages; None for others."""
    from llama_stack_client import APIConnectionError, APIStatusError, APITimeoutError

    if isinstance(exc, APITimeoutError):
        return UserError(f"Llama Stack at {url} did not answer in time — raise --timeout", exit_code=EXIT_SERVER)
    if isinstance(exc, APIConnectionError):
        return UserError(f"cannot reach Llama Stack at {url} — is it running? start it with "
                         "./start-llamastack.sh start or pass --llama-stack-url", exit_code=EXIT_SERVER)
    if isinstance(exc, APIStatusError):
        request = exc.response.request
        detail = one_line(exc.message)
        answered = f"Llama Stack at {url} answered HTTP {exc.status_code} to {request.method} {request.url.path}"
        # The server's detail may quote what was sent: the terminal gets it, the trace does not.
        return UserError(f"{answered}: {detail}", exit_code=EXIT_SERVER, trace_message=answered)
    return None
