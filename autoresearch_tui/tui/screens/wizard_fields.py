"""The wizard's fields: one per config parameter, with the spec's help text."""

from __future__ import annotations

from dataclasses import dataclass

from autoresearch_tui.engine import preflight
from autoresearch_tui.core.categories import SCOPES

# The agents come from the registry (preflight.agent_names); a label here is optional.
AGENT_LABELS: dict[str, str] = {
    "builtin": "builtin — offline constant tuner (no API key)",
    "command": "command — your own agent command (agent_cmd)",
    "claude": "claude — Claude Code CLI", "codex": "codex — OpenAI Codex CLI", "gemini": "gemini — Gemini CLI",
    "aider": "aider — aider CLI", "opencode": "opencode — opencode CLI",
    "openai": "openai — OpenAI-compatible API", "anthropic": "anthropic — Anthropic API",
}
SCOPE_LABELS: dict[str, str] = {
    "architecture": "architecture", "hyperparameters": "hyperparameters", "optimizer": "optimizer",
    "all": "all (architecture, hyperparameters, optimizer)",
}


@dataclass(frozen=True)
class FieldSpec:
    key: str
    label: str
    help: str
    placeholder: str = ""
    options: tuple[tuple[str, str], ...] | None = None  # a Select: (label, value)


def field_specs() -> tuple[FieldSpec, ...]:
    return (
        FieldSpec("train_script", "Training script",
                  "The only file the agent edits (default train.py).", "train.py"),
        FieldSpec("readonly_script", "Read-only script",
                  "Never edited: data, evaluation (default prepare.py).", "none"),
        FieldSpec("time_budget", "Time budget / run",
                  "Training time per run: 90s, 5m, 1h. No default.", "e.g. 5m"),
        FieldSpec("metric", "Metric",
                  "NAME:min or NAME:max as printed, e.g. val_bpb:min", "e.g. val_bpb:min"),
        FieldSpec("max_iterations", "Max iterations",
                  "Experiments after the baseline, or unlimited.", "unlimited"),
        FieldSpec("scope", "Modification scope", "What the agent may change (default all).",
                  options=tuple((SCOPE_LABELS.get(s, s), s) for s in SCOPES)),
        FieldSpec("tag", "Branch tag",
                  "Branch autoresearch/<tag> (default: today, e.g. mar8).", "e.g. mar8"),
        FieldSpec("results_file", "Results file",
                  "Where each experiment is logged (default results.tsv).", "results.tsv"),
        FieldSpec("agent", "Agent", "Who proposes changes (agent_cmd, agent_model: in the toml).",
                  options=tuple((AGENT_LABELS.get(a, a), a) for a in preflight.agent_names())),
        FieldSpec("train_command", "Training command",
                  "How a run starts (default: uv run / python SCRIPT).", "default"),
        FieldSpec("seed", "Seed", "Seed for the proposer's choices (default 0).", "0"),
        FieldSpec("hypothesis", "Hypothesis",
                  "Optional: a first direction, e.g. try a deeper model.", "optional"),
    )
