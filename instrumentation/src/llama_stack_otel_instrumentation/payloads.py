"""Reading what goes to and comes from Llama Stack, whether the client parsed it into its
pydantic types (resource methods) or left it as JSON (the generic ``client.post``)."""

from __future__ import annotations

import json
from typing import Any


def field(obj: Any, name: str, default: Any = None) -> Any:
    """obj[name] of a dict, obj.name of anything else; default when missing or None."""
    if obj is None:
        return default
    value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
    return default if value is None else value


def text_of(content: Any) -> str:
    """Llama Stack's interleaved content (a string, a text item, or a list of them) as text."""
    content = getattr(content, "actual_instance", None) or content  # an OpenAPI-generated client's union
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        return "\n".join(text_of(item) for item in content)
    return str(field(content, "text", ""))


def last_user_text(messages: Any) -> str:
    """The text of the last user message of a turn's messages or a response's input."""
    if isinstance(messages, str):
        return messages
    for message in reversed(list(messages or [])):
        if field(message, "role", "user") == "user":
            content = field(message, "content", "")
            if isinstance(content, list):  # Responses API parts: input_text items
                return "\n".join(str(field(part, "text", "")) for part in content
                                 if field(part, "type") in ("input_text", "text"))
            return text_of(content)
    return ""


def text_parts(text: str) -> list[dict[str, str]]:
    """Text in the GenAI conventions' message-part form."""
    return [{"type": "text", "content": text}]


def as_json(value: Any) -> str:
    """A content attribute's value: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, default=str)
