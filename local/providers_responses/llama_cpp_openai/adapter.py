from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from llama_cpp_grammar import object_grammar

from .config import LlamaCppOpenAIConfig
from .server_api import ROUTER_GIVES_PROVIDER_MODEL_ID, VLLMInferenceAdapter, api

OpenAIChatCompletion = api.OpenAIChatCompletion
OpenAIChatCompletionChunk = api.OpenAIChatCompletionChunk
OpenAIChatCompletionRequestWithExtraBody = api.OpenAIChatCompletionRequestWithExtraBody
OpenAIChatCompletionResponseMessage = api.OpenAIChatCompletionResponseMessage
OpenAIChatCompletionToolCall = api.OpenAIChatCompletionToolCall
OpenAIChatCompletionToolCallFunction = api.OpenAIChatCompletionToolCallFunction
OpenAIChoice = api.OpenAIChoice
OpenAIChoiceDelta = api.OpenAIChoiceDelta
OpenAIChunkChoice = api.OpenAIChunkChoice

log = logging.getLogger(__name__)

def plain(value: Any) -> Any:
    """A pydantic model or a plain value, as plain data."""
    return value.model_dump(exclude_none=True) if hasattr(value, "model_dump") else value


def tool_function(tool: Any) -> dict:
    return plain(tool).get("function") or {}


def forced_tool(tools: list[Any] | None, choice: Any) -> dict | None:
    """The function the request insists on, or None when the model may answer as it likes:
    "required" (any tool: the first), a named function, or an allowed-tools list in
    required mode (its first tool)."""
    functions = [tool_function(t) for t in tools or []]
    functions = [f for f in functions if f.get("name")]
    if not functions:
        return None
    choice = plain(choice)
    if choice == "required":
        return functions[0]
    if not isinstance(choice, dict):
        return None
    by_name = {f["name"]: f for f in functions}
    named = (choice.get("function") or {}).get("name") or choice.get("name")
    if named:
        return by_name.get(named)
    allowed = choice.get("allowed_tools") or {}
    if allowed.get("mode") == "required":
        names = [(t.get("function") or {}).get("name") or t.get("name") for t in allowed.get("tools", [])]
        return next((by_name[n] for n in names if n in by_name), functions[0])
    return None


def role(message: Any) -> str:
    return str(plain(message).get("role", ""))


def text_of(message: Any) -> str:
    content = plain(message).get("content")
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")


def answered_by_tool(messages: list[Any]) -> bool:
    """True once a tool result came after the latest user message: the forced call is done."""
    for message in reversed(messages):
        if role(message) == "tool":
            return True
        if role(message) == "user":
            return False
    return False


def arguments_grammar(function: dict) -> str:
    """A llama.cpp grammar admitting exactly one JSON object of the function's required arguments."""
    schema = function.get("parameters") or {}
    properties = schema.get("properties") or {}
    names = [n for n in schema.get("required") or [] if n in properties] or list(properties)[:1]
    return object_grammar([(name, str(properties[name].get("type", "string"))) for name in names])


class LlamaCppOpenAIAdapter(VLLMInferenceAdapter):
    config: LlamaCppOpenAIConfig

    async def openai_chat_completion(
        self, params: OpenAIChatCompletionRequestWithExtraBody
    ) -> OpenAIChatCompletion | AsyncIterator[OpenAIChatCompletionChunk]:
        params = params.model_copy()
        if not params.stop and self.config.stop:
            params.stop = list(self.config.stop)
        # Greedy unless the caller asks otherwise, as 0.2.12's agents are: llama-server's default
        # sampling (0.8) left a 270M model's answer empty now and then (a full suite failed on it).
        if params.temperature is None:
            params.temperature = 0.0
        function = forced_tool(params.tools, params.tool_choice)
        if function is None or answered_by_tool(params.messages):
            return await super().openai_chat_completion(params)
        arguments = await self.write_arguments(params, function)
        call = OpenAIChatCompletionToolCall(index=0, id=f"call_{uuid.uuid4().hex[:24]}", type="function",
                                            function=OpenAIChatCompletionToolCallFunction(name=function["name"],
                                                                                          arguments=arguments))
        completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if params.stream:
            return self.stream_call(call, model=params.model, completion_id=completion_id, created=created)
        return OpenAIChatCompletion(
            id=completion_id, created=created, model=params.model,
            choices=[OpenAIChoice(index=0, finish_reason="tool_calls",
                                  message=OpenAIChatCompletionResponseMessage(tool_calls=[call]))])

    async def write_arguments(self, params: OpenAIChatCompletionRequestWithExtraBody, function: dict) -> str:
        """The model writes the arguments, held to the grammar; if they come back cut off or
        not JSON, the question itself is the query, as a search tool takes it."""
        question = next((text_of(m) for m in reversed(params.messages) if role(m) == "user"), "")
        instruction = (f"Write the arguments for the tool {function['name']} "
                       f"({function.get('description', '')}) that answer this question: {question}")
        response = await self.client.chat.completions.create(
            model=params.model if ROUTER_GIVES_PROVIDER_MODEL_ID else await self._get_provider_model_id(params.model),
            messages=[{"role": "user", "content": instruction}],
            max_tokens=self.config.tool_call_max_tokens, temperature=0.0, stream=False,
            extra_body={"grammar": arguments_grammar(function)},
        )
        text = (response.choices[0].message.content or "").strip()
        try:
            parsed = json.loads(text)
            if isinstance(parsed, dict) and parsed:
                return json.dumps(parsed)
        except ValueError:
            pass
        log.info("forced tool call: arguments %r unusable, searching for the question", text[:80])
        properties = list(((function.get("parameters") or {}).get("properties") or {"query": {}}))
        return json.dumps({properties[0]: question})

    @staticmethod
    async def stream_call(call: OpenAIChatCompletionToolCall, *, model: str, completion_id: str,
                          created: int) -> AsyncIterator[OpenAIChatCompletionChunk]:
        for delta, finish in ((OpenAIChoiceDelta(role="assistant", tool_calls=[call]), None),
                              (OpenAIChoiceDelta(), "tool_calls")):
            yield OpenAIChatCompletionChunk(id=completion_id, created=created, model=model,
                                            choices=[OpenAIChunkChoice(index=0, delta=delta, finish_reason=finish)])
