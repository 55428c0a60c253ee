"""What a chat completion tells the trace, streamed or whole: the answer, why it ended, usage,
the model that answered and the completion's id.

Two shapes: OpenAI's (``/v1/chat/completions``; 0.2.x ``/v1/openai/v1/chat/completions``) —
choices with a message or, streamed, chunks with deltas, a finish reason per choice and usage
(in the last chunk when streamed) — and Llama Stack 0.2.x's own (``/v1/inference/chat-completion``)
— a completion message with a stop reason, or start / progress / complete events, with usage as
``metrics``.
"""

from __future__ import annotations

from typing import Any

from llama_stack_otel_instrumentation.calls import ModelCall
from llama_stack_otel_instrumentation.payloads import field, text_of
from llama_stack_otel_instrumentation.turns import reported_usage


class ChatEvents:
    """Reads an OpenAI-style chat completion into its ``ModelCall``."""

    def __init__(self, call: ModelCall) -> None:
        self.call = call

    def __call__(self, chunk: Any) -> None:
        self.call.response(model=field(chunk, "model"), response_id=field(chunk, "id"))
        for choice in field(chunk, "choices") or []:
            self.call.text_arrived(str(field(field(choice, "delta"), "content", "")))
            if field(choice, "finish_reason"):
                self.call.finished(str(field(choice, "finish_reason")))
        self.usage(field(chunk, "usage"))

    def whole(self, completion: Any) -> None:
        self.call.response(model=field(completion, "model"), response_id=field(completion, "id"))
        texts = []
        for choice in field(completion, "choices") or []:
            texts.append(text_of(field(field(choice, "message"), "content", "")))
            if field(choice, "finish_reason"):
                self.call.finished(str(field(choice, "finish_reason")))
        self.call.answered("".join(texts))
        self.usage(field(completion, "usage"))

    def usage(self, usage: Any) -> None:
        if usage is not None and field(usage, "prompt_tokens") is not None:
            self.call.usage(int(field(usage, "prompt_tokens")), int(field(usage, "completion_tokens", 0)))


class InferenceEvents:
    """Reads a Llama Stack 0.2.x chat completion (``inference.chat_completion``) into its ``ModelCall``."""

    def __init__(self, call: ModelCall) -> None:
        self.call = call

    def __call__(self, chunk: Any) -> None:
        event = field(chunk, "event")
        delta = field(event, "delta")
        if field(delta, "type") == "text":
            self.call.text_arrived(str(field(delta, "text", "")))
        if field(event, "stop_reason"):
            self.call.finished(str(field(event, "stop_reason")))
        self.usage(chunk, event)

    def whole(self, response: Any) -> None:
        message = field(response, "completion_message")
        self.call.answered(text_of(field(message, "content", "")))
        if field(message, "stop_reason"):
            self.call.finished(str(field(message, "stop_reason")))
        self.usage(response)

    def usage(self, *sources: Any) -> None:
        usage = reported_usage(*sources)
        if usage is not None:
            self.call.usage(*usage)
