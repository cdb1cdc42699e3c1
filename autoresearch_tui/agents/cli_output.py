"""What a coding-agent CLI printed: its final text and the tokens (and cost) it reports.

The presets ask each CLI for its machine-readable output where it has one: Claude Code and Qwen
Code print one JSON document (`--output-format json`), Gemini CLI one JSON document with stats,
Codex (`exec --json`) and opencode (`run --format json`) one JSON event per line; aider prints
`Tokens: 3.1k sent, 250 received. Cost: ...` lines. Anything else is plain text.
"""

from __future__ import annotations

import json
import re
from typing import Any

_AIDER_TOKENS = re.compile(r"^Tokens: ([\d.]+)([kKmM]?) sent, ([\d.]+)([kKmM]?) received\.(?:.*Cost: \$([\d.]+) message)?")
_SCALE = {"": 1, "k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6}


def read_output(output: str) -> tuple[str, dict[str, Any]]:
    """(the agent's own text, {"tokens_in", "tokens_out", "cost_usd"} where reported)."""
    values = _json_values(output)
    for value in values:
        if isinstance(value, list):  # qwen: the whole transcript, the result last
            value = next((d for d in reversed(value) if isinstance(d, dict) and d.get("type") == "result"), None)
        if isinstance(value, dict) and ("result" in value or "response" in value or "stats" in value):
            return _document(value)
    events = [v for v in values if isinstance(v, dict) and "type" in v]
    if events:
        return _events(events)
    return output, _aider(output)


def _json_values(output: str) -> list[Any]:
    """Every JSON value that starts a line (stderr lines may sit between them)."""
    decoder = json.JSONDecoder()
    values: list[Any] = []
    pos = 0
    while pos < len(output):
        end = output.find("\n", pos)
        end = len(output) if end < 0 else end
        if output.startswith(("{", "["), pos):
            try:
                value, stop = decoder.raw_decode(output, pos)
            except ValueError:
                pass
            else:
                values.append(value)
                end = max(end, stop)
        pos = end + 1
    return values


def _document(doc: dict) -> tuple[str, dict[str, Any]]:
    usage: dict[str, Any] = {}
    if "result" in doc:  # claude, qwen
        u = doc.get("usage") or {}
        usage["tokens_in"] = sum(int(u.get(k) or 0) for k in (
            "input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))
        usage["tokens_out"] = int(u.get("output_tokens") or 0)
        if doc.get("total_cost_usd") is not None:
            usage["cost_usd"] = float(doc["total_cost_usd"])
        return str(doc.get("result") or ""), usage
    models = ((doc.get("stats") or {}).get("models") or {}).values()  # gemini
    usage["tokens_in"] = sum(int((m.get("tokens") or {}).get("prompt") or 0) for m in models)
    usage["tokens_out"] = sum(int((m.get("tokens") or {}).get("candidates") or 0) for m in models)
    text = doc.get("response") or (doc.get("error") or {}).get("message") or ""
    return str(text), usage


def _events(events: list[dict]) -> tuple[str, dict[str, Any]]:
    texts: list[str] = []
    tokens_in = tokens_out = 0
    cost = None
    for event in events:
        kind = event.get("type")
        item = event.get("item") or {}
        part = event.get("part") or {}
        if kind == "item.completed" and item.get("type") == "agent_message":  # codex
            texts.append(str(item.get("text") or ""))
        elif kind == "turn.completed":
            u = event.get("usage") or {}
            tokens_in += int(u.get("input_tokens") or 0)
            tokens_out += int(u.get("output_tokens") or 0)
        elif kind == "text" and part.get("text"):  # opencode
            texts.append(str(part["text"]))
        elif kind == "step_finish":
            t = part.get("tokens") or {}
            cache = t.get("cache") or {}
            tokens_in += int(t.get("input") or 0) + int(cache.get("read") or 0) + int(cache.get("write") or 0)
            tokens_out += int(t.get("output") or 0) + int(t.get("reasoning") or 0)
            if part.get("cost") is not None:
                cost = (cost or 0.0) + float(part["cost"])
        elif kind == "error":
            texts.append(str(event.get("message") or (event.get("error") or {}).get("message") or ""))
    usage: dict[str, Any] = {"tokens_in": tokens_in, "tokens_out": tokens_out}
    if cost:
        usage["cost_usd"] = cost
    return "\n".join(texts), usage


def _aider(output: str) -> dict[str, Any]:
    usage: dict[str, Any] = {}
    for line in output.splitlines():
        m = _AIDER_TOKENS.match(line.strip())
        if m:
            usage["tokens_in"] = usage.get("tokens_in", 0) + round(float(m.group(1)) * _SCALE[m.group(2)])
            usage["tokens_out"] = usage.get("tokens_out", 0) + round(float(m.group(3)) * _SCALE[m.group(4)])
            if m.group(5):
                usage["cost_usd"] = usage.get("cost_usd", 0.0) + float(m.group(5))
    return usage
