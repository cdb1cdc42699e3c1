"""Chat-completion backends over plain HTTP: OpenAI-compatible and Anthropic.

The model answers with SEARCH/REPLACE blocks (or a whole file) and a DESCRIPTION line; an
answer that does not apply is sent back with the error, in the same conversation. The API
key is read from the environment per request and never written anywhere: not in logs, meta
or error messages (any echo of it in a server's error text is scrubbed). Requests go through
httpx's async client: cancelling a proposal (a prepared one the loop no longer needs, a stop)
closes its connection, so the server stops generating and billing.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import time
import urllib.parse
from typing import Any

import httpx

from autoresearch_tui.agents.base import (
    AgentFailed, AgentUnavailable, Proposal, ProposalContext, ProposalError,
)
from autoresearch_tui.agents.command import open_log
from autoresearch_tui.agents.edits import EditError, apply_answer, describe_diff
from autoresearch_tui.agents.prompt import SYSTEM_PROMPT, build_prompt

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}
DEFAULTS = {  # (base url, key variable, model)
    "openai": ("https://api.openai.com/v1", "OPENAI_API_KEY", "gpt-4.1"),
    "anthropic": ("https://api.anthropic.com", "ANTHROPIC_API_KEY", "claude-sonnet-4-5"),
}
ANTHROPIC_VERSION = "2023-06-01"


def is_local(url: str) -> bool:
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    return host in LOCAL_HOSTS or host.endswith(".local") or host.startswith("127.")


def scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret and len(secret) >= 4 else text


class _HttpStatus(Exception):
    def __init__(self, status: int, body: str, retry_after: float | None) -> None:
        super().__init__(status)
        self.status, self.body, self.retry_after = status, body, retry_after


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


async def post_json(client: httpx.AsyncClient, url: str, headers: dict[str, str],
                    payload: dict[str, Any]) -> dict:
    """One POST; _HttpStatus for an HTTP error, httpx.HTTPError for the network. Cancelling the
    caller closes the connection, so the server stops generating (and billing)."""
    resp = await client.post(url, json=payload, headers=headers)
    if resp.status_code >= 400:
        raise _HttpStatus(resp.status_code, resp.text, _retry_after(resp.headers.get("retry-after")))
    return json.loads(resp.text or "{}")


def api_message(body: str) -> str:
    """The human part of an API error body, short."""
    try:
        data = json.loads(body)
        err = data.get("error", data) if isinstance(data, dict) else data
        msg = err.get("message") if isinstance(err, dict) else err
        text = str(msg if msg else body)
    except ValueError:
        text = body
    return " ".join(text.split())[:300]


class ChatProposer:
    """Shared loop: ask, apply, send errors back; subclasses speak one wire format."""

    kind = "openai"
    touches_tree = False  # answers with text; the engine writes the file

    def __init__(self, model: str | None = None, base_url: str | None = None,
                 key_env: str | None = None, timeout: float = 900.0, max_retries: int = 3,
                 prices: dict[str, float] | None = None, prompt_template: str | None = None,
                 keep_last: int = 15, max_tokens: int = 8192, http_retries: int = 5,
                 backoff_base: float = 2.0, max_wait: float = 60.0) -> None:
        base, env, default_model = DEFAULTS[self.kind]
        self.name = self.kind
        self.model = model or default_model
        self.base_url = (base_url or base).rstrip("/")
        self.key_env = (key_env or env).strip().lstrip("$")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", self.key_env):
            # Never echo it: people paste the key itself here.
            raise AgentUnavailable("agent_key_env must be the name of an environment variable "
                                   "(e.g. OPENAI_API_KEY), not the key itself")
        self.timeout = timeout
        self.max_retries = max_retries
        self.prices = prices
        self.prompt_template = prompt_template
        self.keep_last = keep_last
        self.max_tokens = max_tokens
        self.http_retries = http_retries
        self.backoff_base = backoff_base
        self.max_wait = max_wait

    # -- wire format (subclasses) -------------------------------------------------------
    def url(self) -> str:
        raise NotImplementedError

    def headers(self, key: str | None) -> dict[str, str]:
        raise NotImplementedError

    def payload(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        raise NotImplementedError

    def parse(self, data: dict) -> tuple[str, int, int, bool]:
        """(text, tokens in, tokens out, cut off by the token limit)."""
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------
    def key(self) -> str | None:
        key = os.environ.get(self.key_env, "").strip() or None
        if key is None and not is_local(self.base_url):
            raise AgentUnavailable(f"${self.key_env} is not set: export your API key there "
                                   f"(or set agent_key_env to the variable that holds it)")
        return key

    def check(self) -> str | None:
        try:
            self.key()
        except AgentUnavailable as exc:
            return str(exc)
        return None

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_wait)
        return min(self.backoff_base * 2 ** attempt * (0.5 + random.random() / 2), self.max_wait)

    async def request(self, client: httpx.AsyncClient, messages: list[dict[str, str]], key: str | None,
                      log) -> dict:
        """POST with retries on 429, 5xx and network errors."""
        for attempt in range(self.http_retries + 1):
            last = attempt == self.http_retries
            try:
                return await post_json(client, self.url(), self.headers(key), self.payload(messages))
            except _HttpStatus as exc:
                detail = scrub(api_message(exc.body), key)
                if exc.status in (401, 403):
                    raise AgentUnavailable(f"the API rejected the key in ${self.key_env} ({exc.status})"
                                           + (f": {detail}" if detail else "")) from None
                if exc.status != 429 and exc.status < 500 or last:
                    raise AgentFailed(f"{self.url()} answered {exc.status}: {detail or 'no details'}") from None
                wait = self._backoff(attempt, exc.retry_after)
                log(f"HTTP {exc.status}: {detail}; retrying in {wait:.1f} s\n")
            except (httpx.HTTPError, OSError, ValueError) as exc:  # network errors, timeouts, bad JSON
                reason = scrub(str(exc) or type(exc).__name__, key)
                if last:
                    raise AgentFailed(f"cannot reach {self.url()}: {reason}") from None
                wait = self._backoff(attempt, None)
                log(f"network error: {reason}; retrying in {wait:.1f} s\n")
            await asyncio.sleep(wait)
        raise AgentFailed("unreachable")  # pragma: no cover

    async def propose(self, ctx: ProposalContext) -> Proposal:
        key = self.key()
        logf = open_log(ctx.agent_log)

        def log(text: str) -> None:
            if logf:
                logf.write(scrub(text, key))
                logf.flush()

        prompt = build_prompt(ctx, "http", self.prompt_template, keep_last=self.keep_last)
        messages = [{"role": "user", "content": prompt}]
        log(f"\n=== iteration {ctx.iteration}: {self.kind} {self.model} at {self.base_url}, "
            f"prompt of {len(prompt)} characters ===\n")
        tokens_in = tokens_out = 0
        started = time.monotonic()
        error = ""
        client = httpx.AsyncClient(timeout=self.timeout)
        try:
            for attempt in range(self.max_retries + 1):
                if attempt:
                    log(f"--- try {attempt + 1} of {self.max_retries + 1}\n")
                data = await asyncio.wait_for(self.request(client, messages, key, log), self.timeout)
                text, t_in, t_out, cut = self.parse(data)
                tokens_in, tokens_out = tokens_in + t_in, tokens_out + t_out
                log(text + "\n")
                try:
                    if cut and ">>>>>>> REPLACE" not in text:
                        raise EditError("the answer was cut off by the token limit; send short "
                                        "SEARCH/REPLACE blocks instead of the whole file")
                    new, description, how = apply_answer(ctx.train_source, text, ctx.train_path)
                except EditError as exc:
                    error = str(exc)
                    log(f"--- rejected: {error}\n")
                    messages += [{"role": "assistant", "content": text or "(empty answer)"},
                                 {"role": "user", "content": f"Your answer could not be applied: {error}. "
                                  "Answer again in the required format (SEARCH/REPLACE blocks or the "
                                  "whole file, then the DESCRIPTION line)."}]
                    continue
                meta = self._meta(tokens_in, tokens_out, attempt, time.monotonic() - started)
                meta["edit_format"] = how
                description = description or describe_diff(ctx.train_source, new, ctx.train_path)
                return Proposal(new_source=new, description=description, meta=meta)
            failed = AgentFailed(scrub(f"the model's answer could not be applied after "
                                       f"{self.max_retries + 1} tries: {error}", key))
            failed.meta = self._meta(tokens_in, tokens_out, self.max_retries, time.monotonic() - started)
            raise failed  # meta: the tokens were spent all the same
        except asyncio.TimeoutError:
            log(f"--- no answer after {self.timeout:g} s\n")
            raise AgentFailed(f"{self.kind}: no answer after {self.timeout:g} s") from None
        except ProposalError as exc:
            log(f"--- {exc}\n")
            raise
        finally:
            await client.aclose()
            if logf:
                logf.close()

    def _meta(self, tokens_in: int, tokens_out: int, retries: int, duration: float) -> dict:
        meta: dict[str, Any] = {"agent": self.kind, "model": self.model, "tokens_in": tokens_in,
                                "tokens_out": tokens_out, "retries": retries,
                                "duration_s": round(duration, 2)}
        if self.prices:
            cost = (tokens_in * float(self.prices.get("input", 0))
                    + tokens_out * float(self.prices.get("output", 0))) / 1e6
            meta["cost_usd"] = round(cost, 6)
        return meta


class OpenAIProposer(ChatProposer):
    """POST {base}/chat/completions: OpenAI, OpenRouter, Ollama, vLLM, LM Studio, ..."""

    kind = "openai"

    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def headers(self, key: str | None) -> dict[str, str]:
        return {"authorization": f"Bearer {key}"} if key else {}

    def payload(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        return {"model": self.model, "messages": [{"role": "system", "content": SYSTEM_PROMPT}, *messages]}

    def parse(self, data: dict) -> tuple[str, int, int, bool]:
        try:
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError):
            raise AgentFailed(f"unexpected answer from {self.url()}: no choices[0].message") from None
        usage = data.get("usage") or {}
        return (text, int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0),
                choice.get("finish_reason") == "length")


class AnthropicProposer(ChatProposer):
    """POST {base}/v1/messages with the Messages API."""

    kind = "anthropic"

    def url(self) -> str:
        base = self.base_url
        return f"{base}/messages" if base.endswith("/v1") else f"{base}/v1/messages"

    def headers(self, key: str | None) -> dict[str, str]:
        out = {"anthropic-version": ANTHROPIC_VERSION}
        if key:
            out["x-api-key"] = key
        return out

    def payload(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        return {"model": self.model, "max_tokens": self.max_tokens, "system": SYSTEM_PROMPT,
                "messages": messages}

    def parse(self, data: dict) -> tuple[str, int, int, bool]:
        content = data.get("content")
        if not isinstance(content, list):
            raise AgentFailed(f"unexpected answer from {self.url()}: no content list")
        text = "".join(part.get("text", "") for part in content
                       if isinstance(part, dict) and part.get("type") == "text")
        usage = data.get("usage") or {}
        return (text, int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0),
                data.get("stop_reason") == "max_tokens")
