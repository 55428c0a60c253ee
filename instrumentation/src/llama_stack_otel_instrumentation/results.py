"""What a call answered at once tells the trace: embeddings, searches, a tool the server ran.

    embeddings   OpenAI's list (``data[].embedding``, ``usage.prompt_tokens``, ``model``), or
                 0.2.x ``inference.embeddings`` (``embeddings``)
    retrieval    a vector store's page of results (``data[].content[].text``), 0.2.x
                 ``vector_io.query`` (``chunks[].content``) or the RAG tool's query (``content``,
                 ``metadata.document_ids``)
    execute_tool 0.2.x ``tool_runtime.invoke_tool``: ``content``, ``error_message``

None of them streams: ``Whole`` is the chunk reader that never gets a chunk, which keeps the
shared interface; each reads its answer in ``whole``.
"""

from __future__ import annotations

from typing import Any

from llama_stack_otel_instrumentation.calls import EmbeddingCall, RetrievalCall, ToolCall
from llama_stack_otel_instrumentation.failures import one_line
from llama_stack_otel_instrumentation.payloads import field, text_of


class Whole:
    """A reader of an answer that comes at once: no chunk ever arrives, and by default the
    answer adds nothing to the span."""

    def __call__(self, chunk: Any) -> None:
        pass

    def whole(self, result: Any) -> None:
        pass


class EmbeddingResult(Whole):
    def __init__(self, call: EmbeddingCall) -> None:
        self.call = call

    def whole(self, result: Any) -> None:
        vectors = [field(item, "embedding") for item in field(result, "data") or []] or field(result, "embeddings") or []
        first = vectors[0] if vectors else None
        self.call.answered(dimensions=len(first) if isinstance(first, (list, tuple)) else None,
                           input_tokens=field(field(result, "usage"), "prompt_tokens"), model=field(result, "model"))


class SearchResult(Whole):
    def __init__(self, call: RetrievalCall) -> None:
        self.call = call

    def whole(self, result: Any) -> None:
        if field(result, "data") is not None:  # a vector store's search
            texts = [text_of(field(hit, "content", "")) for hit in field(result, "data") or []]
        elif field(result, "chunks") is not None:  # 0.2.x vector_io.query
            texts = [text_of(field(chunk, "content", "")) for chunk in field(result, "chunks") or []]
        else:  # 0.2.x RAG tool: one text, the documents it came from
            text = text_of(field(result, "content", ""))
            self.call.found([text], count=len(field(field(result, "metadata"), "document_ids") or []))
            return
        self.call.found(texts)


class ToolResult(Whole):
    def __init__(self, call: ToolCall) -> None:
        self.call = call

    def whole(self, result: Any) -> None:
        self.call.answered(text_of(field(result, "content", "")))
        if field(result, "error_message"):
            self.call.failed_on_server(one_line(field(result, "error_message")))
