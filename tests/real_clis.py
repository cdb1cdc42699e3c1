"""The real coding-agent CLIs (tests/install_clis.sh puts them in .cache/agent-clis/) pointed at the
scripted model server, each through its documented setting for a custom endpoint, with a fake key
and a home folder of its own."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from model_server import ModelServer

ROOT = Path(__file__).resolve().parents[1]
CLIS = Path(os.environ.get("AGENT_CLIS_DIR", ROOT / ".cache" / "agent-clis"))
PRESET_NAMES = ("claude", "codex", "gemini", "opencode", "aider", "qwen")
# The tests drive the pinned versions: the Gemini CLI family would otherwise update itself.
NO_UPDATES = {"general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False}}


def install() -> Path:
    """Runs the (idempotent) installer; the CLIs' bin folder."""
    subprocess.run(["bash", str(ROOT / "tests" / "install_clis.sh")], check=True, timeout=1200,
                   stdout=subprocess.DEVNULL)
    return CLIS / "bin"


def cli_env(name: str, server: ModelServer, home: Path) -> dict[str, str]:
    """The environment a preset's CLI runs in: its own home, the scripted model, no network checks."""
    home.mkdir(parents=True, exist_ok=True)
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_DATA_HOME": str(home / ".local" / "share"), "XDG_CACHE_HOME": str(home / ".cache"),
           "XDG_STATE_HOME": str(home / ".local" / "state"),
           "PATH": f"{CLIS / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}", "NO_COLOR": "1"}
    if name == "claude":
        env.update(ANTHROPIC_BASE_URL=server.url, ANTHROPIC_API_KEY="sk-ant-scripted",
                   DISABLE_AUTOUPDATER="1", CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1")
    elif name == "codex":
        codex_home = home / ".codex"
        codex_home.mkdir(exist_ok=True)
        (codex_home / "config.toml").write_text(
            'model_provider = "scripted"\nmodel = "scripted"\n[model_providers.scripted]\n'
            f'name = "scripted"\nbase_url = "{server.url}/v1"\nwire_api = "responses"\n'
            'env_key = "OPENAI_API_KEY"\n')
        env.update(CODEX_HOME=str(codex_home), OPENAI_API_KEY="sk-scripted")
    elif name == "gemini":
        # GOOGLE_GEMINI_BASE_URL alone selects a "gateway" auth that 0.61 then rejects.
        settings(home / ".gemini", {"security": {"auth": {"selectedType": "gemini-api-key"}}, **NO_UPDATES})
        env.update(GEMINI_API_KEY="scripted", GOOGLE_GEMINI_BASE_URL=server.url)
    elif name == "opencode":
        config = {"autoupdate": False, "share": "disabled", "model": "scripted/scripted",
                  "provider": {"scripted": {"npm": "@ai-sdk/openai-compatible", "name": "scripted",
                                            "options": {"baseURL": f"{server.url}/v1", "apiKey": "sk-scripted"},
                                            "models": {"scripted": {"name": "scripted"}}}}}
        settings(home / ".config" / "opencode", config, "opencode.json")
        env.update(OPENCODE_DISABLE_AUTOUPDATE="1", OPENCODE_DISABLE_MODELS_FETCH="1",
                   OPENCODE_DISABLE_LSP_DOWNLOAD="1", OPENCODE_DISABLE_SHARE="1")
    elif name == "aider":
        env.update(OPENAI_API_KEY="sk-scripted", OPENAI_API_BASE=f"{server.url}/v1",
                   AIDER_MODEL="openai/scripted", LITELLM_LOCAL_MODEL_COST_MAP="True")
    elif name == "qwen":
        settings(home / ".qwen", {"security": {"auth": {"selectedType": "openai"}}, **NO_UPDATES})
        env.update(OPENAI_API_KEY="sk-scripted", OPENAI_BASE_URL=f"{server.url}/v1", OPENAI_MODEL="scripted")
    return env


def settings(folder: Path, data: dict, name: str = "settings.json") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(data))
