"""The wizard's fields: the config schema's keys that carry a wizard label, in the schema's order."""

from __future__ import annotations

from dataclasses import dataclass

from autoresearch_tui.engine import preflight
from autoresearch_tui.engine.config import KEYS

# The agents come from the registry (preflight.agent_names); a label here is optional.
AGENT_LABELS: dict[str, str] = {
    "builtin": "builtin — offline constant tuner (no API key)",
    "command": "command — your own agent command (agent_cmd)",
    "claude": "claude — Claude Code CLI", "codex": "codex — OpenAI Codex CLI", "gemini": "gemini — Gemini CLI",
    "aider": "aider — aider CLI", "opencode": "opencode — opencode CLI",
    "openai": "openai — OpenAI-compatible API", "anthropic": "anthropic — Anthropic API",
}
SCOPE_LABELS: dict[str, str] = {"all": "all (architecture, hyperparameters, optimizer)"}


@dataclass(frozen=True)
class FieldSpec:
    key: str
    label: str
    help: str
    placeholder: str = ""
    options: tuple[tuple[str, str], ...] | None = None  # a Select: (label, value)


def _options(name: str) -> tuple[tuple[str, str], ...] | None:
    if name == "agent":
        return tuple((AGENT_LABELS.get(a, a), a) for a in preflight.agent_names())
    choices = KEYS[name].choices
    return tuple((SCOPE_LABELS.get(c, c), c) for c in choices) if choices else None


def field_specs() -> tuple[FieldSpec, ...]:
    out = []
    for name in preflight.FIELDS:
        label, help_text, placeholder = KEYS[name].wizard  # type: ignore[misc]
        out.append(FieldSpec(name, label, help_text, placeholder, _options(name)))
    return tuple(out)
