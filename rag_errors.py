"""The expected failures of llama_stack_agent_rag_otel.py and its exit statuses, shared by the
script and its Llama Stack 0.4+ path (rag_responses.py)."""

from __future__ import annotations

EXIT_ERROR = 1  # unexpected failure (a bug, or something we did not foresee)
EXIT_USAGE = 2  # bad input or configuration: fix the command line or the files
EXIT_SERVER = 3  # Llama Stack unreachable, or it refused what we asked
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
