from __future__ import annotations

import asyncio

from llama_stack.apis.common.content_types import InterleavedContentItem
from llama_stack.apis.inference import EmbeddingsResponse, EmbeddingTaskType, TextTruncation
from llama_stack.providers.inline.inference.sentence_transformers.sentence_transformers import (
    SentenceTransformersInferenceImpl,
)
from llama_stack.providers.utils.inference.prompt_adapter import interleaved_content_as_str


class OffLoopSentenceTransformers(SentenceTransformersInferenceImpl):
    """The stock provider, with ``embeddings()`` run in a worker thread (see __init__)."""

    async def embeddings(
        self,
        model_id: str,
        contents: list[str] | list[InterleavedContentItem],
        text_truncation: TextTruncation | None = TextTruncation.none,
        output_dimension: int | None = None,
        task_type: EmbeddingTaskType | None = None,
    ) -> EmbeddingsResponse:
        model = await self.model_store.get_model(model_id)
        # Loading happens once per model and is cached by the mixin; encoding is the slow part.
        embedding_model = await asyncio.to_thread(self._load_sentence_transformer_model, model.provider_resource_id)
        texts = [interleaved_content_as_str(content) for content in contents]
        vectors = await asyncio.to_thread(embedding_model.encode, texts, show_progress_bar=False)
        return EmbeddingsResponse(embeddings=vectors)
