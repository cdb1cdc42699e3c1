"""Keys stay in memory: their values are cut from everything written, and kept from runs and hooks.

The protected values are those of the agent's key variable (`agent_key_env`, or the preset's
default) and of every `*_API_KEY` variable in the environment. Only the agent's variables are
withheld from the training run and the hooks: a training script may need its own keys (W&B).
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Mapping

MASK = "[key removed]"
MIN_LEN = 8  # shorter values are not keys, and scrubbing them would mangle ordinary text
# Variables the agent presets read when agent_key_env is not set.
PRESET_KEYS = {
    "openai": ("OPENAI_API_KEY",), "codex": ("OPENAI_API_KEY",), "anthropic": ("ANTHROPIC_API_KEY",),
    "claude": ("ANTHROPIC_API_KEY",), "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "aider": ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"), "opencode": ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"),
}
_protected: set[str] = set()


def agent_key_names(config: Any) -> set[str]:
    names = set(PRESET_KEYS.get(getattr(config, "agent", "") or "", ()))
    key_env = (getattr(config, "agent_key_env", None) or "").strip().lstrip("$")
    if key_env:
        names.add(key_env)
    return names


def protect(config: Any) -> None:
    """Remember the agent's key variables for this process (called once the config is known)."""
    _protected.update(agent_key_names(config))


def values(environ: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    names = _protected | {k for k in env if k.upper().endswith("_API_KEY")}
    found = {env[n].strip() for n in names if len(env.get(n, "").strip()) >= MIN_LEN}
    return sorted(found, key=len, reverse=True)  # longest first: a key containing another


def scrub(text: str, keys: list[str] | None = None) -> str:
    for value in values() if keys is None else keys:
        if value in text:
            text = text.replace(value, MASK)
    return text


def scrub_bytes(data: bytes) -> bytes:
    for value in values():
        raw = value.encode("utf-8", "surrogateescape")
        if raw in data:
            data = data.replace(raw, MASK.encode())
    return data


def clean_env(env: Mapping[str, str], config: Any = None) -> dict[str, str]:
    """The environment without the agent's key variables (for the training run and the hooks)."""
    if config is not None:
        protect(config)
    return {k: v for k, v in env.items() if k not in _protected}


class StreamScrubber:
    """Scrubs a byte stream written in chunks: holds back enough bytes that a key split across
    two chunks is still found."""

    def __init__(self) -> None:
        self.pending = b""

    def feed(self, data: bytes) -> bytes:
        keys = values()
        if not keys:
            out, self.pending = self.pending + data, b""
            return out
        data = scrub_bytes(self.pending + data)
        hold = max(len(k.encode()) for k in keys) - 1
        cut = max(0, len(data) - hold)
        out, self.pending = data[:cut], data[cut:]
        return out

    def flush(self) -> bytes:
        out, self.pending = scrub_bytes(self.pending), b""
        return out


class ScrubbingWriter:
    """A text file whose writes have the keys cut (the agent logs)."""

    def __init__(self, fh: Any) -> None:
        self.fh = fh

    def write(self, text: str) -> int:
        return self.fh.write(scrub(text))

    def writelines(self, lines: Iterable[str]) -> None:
        for text in lines:
            self.write(text)

    def flush(self) -> None:
        self.fh.flush()

    def close(self) -> None:
        self.fh.close()

    def __enter__(self) -> "ScrubbingWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
