"""Build a proposer from the config by name, and check it can work before the night starts."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

from autoresearch_tui.agents.base import AgentUnavailable, Proposer
from autoresearch_tui.agents.command import PRESET_ENV, PRESETS, CommandProposer, preset_command
from autoresearch_tui.agents.http_api import AnthropicProposer, ChatProposer, OpenAIProposer, scrub
from autoresearch_tui.agents.prompt import load_template
from autoresearch_tui.core.durations import parse_duration

HTTP_AGENTS = {"openai": OpenAIProposer, "anthropic": AnthropicProposer}
AGENTS = ("builtin", "optuna", "command", *PRESETS, *HTTP_AGENTS)
DEFAULT_TIMEOUT = 900.0


def _prices(value: Any) -> dict[str, float] | None:
    if not value:
        return None
    if not isinstance(value, dict):
        raise AgentUnavailable("agent_prices must be a table like {input = 3.0, output = 15.0} ($ per 1M tokens)")
    try:
        return {k: float(v) for k, v in value.items() if k in ("input", "output")}
    except (TypeError, ValueError):
        raise AgentUnavailable("agent_prices values must be numbers ($ per 1M tokens)") from None


def command_template(config: Any) -> str:
    """The argv template for a command agent: agent_cmd wins over the preset."""
    name = config.agent.strip().lower()
    if config.agent_cmd:
        return config.agent_cmd
    if name == "command":
        raise AgentUnavailable('agent "command" needs agent_cmd, '
                               'e.g. agent_cmd = "my-agent --prompt-file {prompt_file}"')
    return preset_command(name, config.agent_model)


def make_proposer(config: Any) -> Proposer:
    """The proposer named by config.agent; AgentUnavailable (one line) for a bad setup."""
    name = config.agent.strip().lower()
    if name == "builtin":
        from autoresearch_tui.agents.builtin import BuiltinProposer

        return BuiltinProposer()
    if name == "optuna":
        try:
            import optuna  # noqa: F401 - only to say how to install it
        except ImportError:
            raise AgentUnavailable('agent "optuna" needs Optuna: pip install "autoresearch-tui[optuna]"') from None
        from autoresearch_tui.agents.optuna_search import OptunaProposer

        return OptunaProposer()
    if name not in AGENTS:
        raise AgentUnavailable(f"unknown agent {name!r}; pick one of: {', '.join(AGENTS)}")
    template = load_template(config.prompt_template, str(config.project)) if config.prompt_template else None
    timeout = config.agent_timeout
    try:
        timeout = parse_duration(timeout)  # 900, "900", "15m"
    except ValueError:
        raise AgentUnavailable(f"agent_timeout {timeout!r} is not a duration; use e.g. 900 or 15m") from None
    keep_last = config.history_keep_last
    if name in HTTP_AGENTS:
        return HTTP_AGENTS[name](
            model=config.agent_model, base_url=config.agent_base_url, key_env=config.agent_key_env,
            timeout=timeout, max_retries=config.agent_max_retries, prices=_prices(config.agent_prices),
            prompt_template=template, keep_last=keep_last)
    return CommandProposer(command_template(config), name=name, timeout=timeout,
                           prompt_template=template, keep_last=keep_last, env=PRESET_ENV.get(name))


def _probe(proposer: ChatProposer, timeout: float) -> str | None:
    """GET the models list: any HTTP answer means the endpoint is there; 401/403 means the key."""
    key = proposer.key()
    base = proposer.base_url
    if isinstance(proposer, AnthropicProposer):
        url = f"{base}/models" if base.endswith("/v1") else f"{base}/v1/models"
    else:
        url = f"{base}/models"
    req = urllib.request.Request(url, headers=proposer.headers(key), method="GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout):
            return None
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            return f"the API rejected the key in ${proposer.key_env} ({exc.code})"
        return None  # e.g. 404 on servers without a models list: it answers all the same
    except (OSError, ValueError) as exc:
        reason = scrub(str(getattr(exc, "reason", exc)), key)
        return f"cannot reach {base}: {reason}; check agent_base_url or your network"


def check_backend(config: Any, timeout: float = 5.0) -> str | None:
    """Pre-flight: one clear line saying what is wrong, or None when the agent can run."""
    try:
        proposer = make_proposer(config)
        if isinstance(proposer, CommandProposer):
            return proposer.check(str(config.project))
        if isinstance(proposer, ChatProposer):
            return _probe(proposer, timeout)
    except AgentUnavailable as exc:
        return str(exc)
    return None
