"""What shape a request asks its answer to take: tools and tool choice, or a JSON format.

Reads the three APIs' spellings into one ``Shape``:

- Anthropic Messages: ``tools`` (``name``, ``input_schema``), ``tool_choice`` (``auto``, ``any``,
  ``tool`` + ``name``, ``none``), ``output_config.format`` (or the older ``output_format``).
- Chat Completions: ``tools`` (``function``: ``name``, ``parameters``), ``tool_choice``
  (``none``, ``auto``, ``required``, a named function, ``allowed_tools``), ``response_format``.
- Responses: ``tools`` (``type: function``, ``name``, ``parameters``), ``tool_choice`` (the same
  values, flattened), ``text.format``.

Tools the simulator cannot call (provider-hosted ones without a schema) are left out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import structured
from .oracle import Api, JsonMode, Tool, ToolMode

EMPTY_OBJECT: Mapping[str, Any] = {"type": "object", "properties": {}}
"""The input schema of a function declared without ``parameters``."""


class ShapeError(ValueError):
    """A malformed ``tools``, ``tool_choice`` or format; the message names the field."""


@dataclass(frozen=True)
class Shape:
    """The tools a request offers, how it lets the model use them, and the format it asks for.

    ``definitions`` is the JSON text of the tools and the schema, which counts as input tokens.
    """

    tools: tuple[Tool, ...] = ()
    tool_mode: ToolMode = "none"
    forced_tool: str | None = None
    json_mode: JsonMode = "text"
    json_schema: Mapping[str, Any] | None = field(default=None, hash=False)
    definitions: str = ""


def read(api: Api, body: Mapping[str, Any]) -> Shape:
    """The shape ``body`` asks for, in ``api``'s spelling; ``ShapeError`` when malformed."""
    if body.get("tool_choice") is not None and not body.get("tools"):
        raise ShapeError("tool_choice: only allowed when tools are given.")
    allowed: frozenset[str] | None = None
    if api == "anthropic":
        tools = _tools(body, _anthropic_tool)
        mode, forced = _anthropic_choice(body.get("tool_choice"), tools)
        json_mode, schema = _anthropic_format(body)
    elif api == "chat":
        tools = _tools(body, _chat_tool)
        mode, forced, allowed = _openai_choice(body.get("tool_choice"), tools, nested=True)
        json_mode, schema = _openai_format(body.get("response_format"), "response_format", True)
    else:
        tools = _tools(body, _responses_tool)
        mode, forced, allowed = _openai_choice(body.get("tool_choice"), tools, nested=False)
        text = body.get("text")
        fmt = text.get("format") if isinstance(text, Mapping) else None
        json_mode, schema = _openai_format(fmt, "text.format", False)
    offered = tools if mode != "none" else ()
    if allowed is not None:
        offered = tuple(t for t in offered if t.name in allowed)
    definitions = [{"name": t.name, "schema": t.schema} for t in tools]
    if schema is not None:
        definitions.append({"schema": schema})
    return Shape(
        tools=offered,
        tool_mode=mode if offered else "none",
        forced_tool=forced,
        json_mode=json_mode,
        json_schema=schema,
        definitions=json.dumps(definitions, sort_keys=True) if definitions else "",
    )


def _tools(body: Mapping[str, Any], read_one: Any) -> tuple[Tool, ...]:
    raw = body.get("tools")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ShapeError("tools: must be an array.")
    tools = [read_one(item, f"tools.{i}") for i, item in enumerate(raw)]
    found = tuple(t for t in tools if t is not None)
    names = [t.name for t in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ShapeError(f"tools: tool names must be unique; repeated: {', '.join(duplicates)}.")
    return found


def _schema(schema: Any, where: str) -> Mapping[str, Any]:
    try:
        structured.check_schema(schema)
    except structured.SchemaError as exc:
        raise ShapeError(f"{where}: {exc}") from None
    assert isinstance(schema, Mapping)
    return schema


def _name(item: Mapping[str, Any], where: str) -> str:
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise ShapeError(f"{where}.name: Field required (a non-empty string).")
    return name


def _anthropic_tool(item: Any, where: str) -> Tool | None:
    if not isinstance(item, Mapping):
        raise ShapeError(f"{where}: must be an object.")
    name = _name(item, where)
    if item.get("type", "custom") != "custom" or "input_schema" not in item:
        return None
    schema = _schema(item["input_schema"], f"{where}.input_schema")
    if schema.get("type") != "object":
        raise ShapeError(f"{where}.input_schema.type: Input should be 'object'.")
    return Tool(name, schema)


def _chat_tool(item: Any, where: str) -> Tool | None:
    if not isinstance(item, Mapping):
        raise ShapeError(f"{where}: must be an object.")
    if item.get("type", "function") != "function":
        return None
    function = item.get("function")
    if not isinstance(function, Mapping):
        raise ShapeError(f"{where}.function: Field required.")
    return _function(function, f"{where}.function")


def _responses_tool(item: Any, where: str) -> Tool | None:
    if not isinstance(item, Mapping):
        raise ShapeError(f"{where}: must be an object.")
    if item.get("type") != "function":
        return None
    return _function(item, where)


def _function(item: Mapping[str, Any], where: str) -> Tool:
    name = _name(item, where)
    parameters = item.get("parameters")
    schema = EMPTY_OBJECT if parameters is None else _schema(parameters, f"{where}.parameters")
    return Tool(name, schema)


def _named(tools: tuple[Tool, ...], name: Any, where: str) -> str:
    if not any(t.name == name for t in tools):
        offered = ", ".join(t.name for t in tools) or "none"
        raise ShapeError(f"{where}: no tool named {name!r} among the tools (offered: {offered}).")
    return str(name)


def _anthropic_choice(choice: Any, tools: tuple[Tool, ...]) -> tuple[ToolMode, str | None]:
    if choice is None:
        return "auto", None
    kind = choice.get("type") if isinstance(choice, Mapping) else None
    if kind == "auto":
        return "auto", None
    if kind == "none":
        return "none", None
    if kind == "any":
        return "required", None
    if kind == "tool":
        return "required", _named(tools, choice.get("name"), "tool_choice.name")
    raise ShapeError(
        "tool_choice: must be {'type': 'auto'}, {'type': 'any'}, {'type': 'none'} or "
        f"{{'type': 'tool', 'name': ...}}, not {choice!r}."
    )


def _openai_choice(
    choice: Any, tools: tuple[Tool, ...], nested: bool
) -> tuple[ToolMode, str | None, frozenset[str] | None]:
    """The mode, the forced tool, and the names ``allowed_tools`` restricts the choice to."""
    if choice is None:
        return "auto", None, None
    if choice in ("none", "auto", "required"):
        return choice, None, None
    kind = choice.get("type") if isinstance(choice, Mapping) else None
    if kind == "function":
        function = choice.get("function") if nested else choice
        name = function.get("name") if isinstance(function, Mapping) else None
        return "required", _named(tools, name, "tool_choice"), None
    if kind == "allowed_tools":
        allowed = choice.get("allowed_tools") if nested else choice
        if isinstance(allowed, Mapping) and allowed.get("mode") in ("auto", "required"):
            mode: ToolMode = allowed["mode"]
            return mode, None, _allowed_names(allowed.get("tools"), nested)
    raise ShapeError(
        "tool_choice: must be 'none', 'auto', 'required', a named function or allowed_tools, "
        f"not {choice!r}."
    )


def _allowed_names(tools: Any, nested: bool) -> frozenset[str]:
    if not isinstance(tools, list):
        raise ShapeError("tool_choice.allowed_tools.tools: must be an array.")
    names = set()
    for tool in tools:
        function = tool.get("function") if nested and isinstance(tool, Mapping) else tool
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            names.add(function["name"])
    return frozenset(names)


def _anthropic_format(body: Mapping[str, Any]) -> tuple[JsonMode, Mapping[str, Any] | None]:
    config = body.get("output_config")
    fmt = config.get("format") if isinstance(config, Mapping) else None
    where = "output_config.format"
    if fmt is None:
        fmt, where = body.get("output_format"), "output_format"
    if fmt is None:
        return "text", None
    if not isinstance(fmt, Mapping) or fmt.get("type") != "json_schema":
        raise ShapeError(f"{where}.type: must be 'json_schema'.")
    return "json_schema", _schema(fmt.get("schema"), f"{where}.schema")


def _openai_format(fmt: Any, where: str, nested: bool) -> tuple[JsonMode, Mapping[str, Any] | None]:
    if fmt is None:
        return "text", None
    kind = fmt.get("type") if isinstance(fmt, Mapping) else None
    if kind == "text":
        return "text", None
    if kind == "json_object":
        return "json_object", None
    if kind == "json_schema":
        spec = fmt.get("json_schema") if nested else fmt
        if not isinstance(spec, Mapping):
            raise ShapeError(f"{where}.json_schema: Field required.")
        inner = f"{where}.json_schema" if nested else where
        _name(spec, inner)
        schema = spec.get("schema")
        return "json_schema", EMPTY_OBJECT if schema is None else _schema(schema, f"{inner}.schema")
    raise ShapeError(f"{where}.type: must be 'text', 'json_object' or 'json_schema'.")
