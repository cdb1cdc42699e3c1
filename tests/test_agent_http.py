"""The HTTP backends against a real scripted server on 127.0.0.1 (OpenAI and Anthropic wire formats)."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from autoresearch_tui.agents.base import AgentFailed, AgentUnavailable, ProposalContext
from autoresearch_tui.agents.http_api import AnthropicProposer, OpenAIProposer
from autoresearch_tui.agents.registry import check_backend, make_proposer
from autoresearch_tui.engine.config import ResearchConfig

from model_server import ModelServer, Script

TRAIN = "DEPTH = 8\nMATRIX_LR = 0.04\n\n\ndef main():\n    return DEPTH * MATRIX_LR\n"
GOOD = ("Raising the learning rate.\n<<<<<<< SEARCH\nMATRIX_LR = 0.04\n=======\nMATRIX_LR = 0.05\n"
        ">>>>>>> REPLACE\nDESCRIPTION: raise MATRIX_LR 0.04 -> 0.05\n")
BAD = "I think the learning rate should go up a little."
KEY_ENV = "AUTORESEARCH_TEST_KEY"


class Server:
    """Answers POSTs from a script of (status, headers, text-or-json) and records the requests."""

    def __init__(self, wire: str) -> None:
        self.wire, self.script, self.requests = wire, [], []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                outer.requests.append(("GET", self.path, dict(self.headers), None))
                sent = self.headers.get("x-api-key") or self.headers.get("authorization", "")
                status = 401 if sent.endswith("bad") else 200
                self._send(status, {}, {"data": []})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                outer.requests.append(("POST", self.path, dict(self.headers), body))
                status, headers, payload = outer.script.pop(0)
                if isinstance(payload, str):
                    payload = outer.answer(payload)
                self._send(status, headers, payload)

            def _send(self, status, headers, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def answer(self, text: str) -> dict:
        if self.wire == "openai":
            return {"choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1000, "completion_tokens": 100}}
        return {"content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                "usage": {"input_tokens": 1000, "output_tokens": 100}}

    def posts(self):
        return [r for r in self.requests if r[0] == "POST"]


@pytest.fixture(params=["openai", "anthropic"])
def server(request):
    srv = Server(request.param)
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


@pytest.fixture
def key(monkeypatch) -> str:
    canary = f"sk-canary-{uuid.uuid4().hex}"
    monkeypatch.setenv(KEY_ENV, canary)
    return canary


def proposer(server: Server, **kw):
    cls = OpenAIProposer if server.wire == "openai" else AnthropicProposer
    base = server.url + ("/v1" if server.wire == "openai" else "")
    args = dict(model="test-model", base_url=base, key_env=KEY_ENV, timeout=10, backoff_base=0.01)
    args.update(kw)
    return cls(**args)


def context(tmp_path: Path) -> ProposalContext:
    (tmp_path / "logs").mkdir(exist_ok=True)
    return ProposalContext(iteration=2, train_path="train.py", train_source=TRAIN, readonly_source=None,
                           metric="val_bpb", direction="min", scope="all", history=(), best=None,
                           project=str(tmp_path), agent_log=str(tmp_path / "logs" / "agent.log"))


async def test_good_answer_gives_the_new_source(server, key, tmp_path):
    server.script = [(200, {}, GOOD)]
    p = await proposer(server, prices={"input": 3.0, "output": 15.0}).propose(context(tmp_path))
    assert p.new_source == TRAIN.replace("0.04", "0.05")
    assert p.description == "raise MATRIX_LR 0.04 -> 0.05"
    assert p.meta["tokens_in"] == 1000 and p.meta["tokens_out"] == 100 and p.meta["retries"] == 0
    assert p.meta["cost_usd"] == pytest.approx(0.0045) and p.meta["model"] == "test-model"
    method, path, headers, body = server.posts()[0]
    headers = {k.lower(): v for k, v in headers.items()}
    if server.wire == "openai":
        assert path == "/v1/chat/completions" and headers["authorization"] == f"Bearer {key}"
        assert [m["role"] for m in body["messages"]] == ["system", "user"]
    else:
        assert path == "/v1/messages" and headers["x-api-key"] == key
        assert headers["anthropic-version"] == "2023-06-01" and body["max_tokens"] > 0 and body["system"]
        assert [m["role"] for m in body["messages"]] == ["user"]
    assert body["model"] == "test-model" and "<<<<<<< SEARCH" in body["messages"][-1]["content"]
    assert "raise MATRIX_LR" in (tmp_path / "logs" / "agent.log").read_text()


async def test_malformed_answer_is_sent_back_then_retried(server, key, tmp_path):
    server.script = [(200, {}, BAD), (200, {}, GOOD)]
    p = await proposer(server).propose(context(tmp_path))
    assert p.meta["retries"] == 1 and p.meta["tokens_in"] == 2000 and p.meta["tokens_out"] == 200
    followup = server.posts()[1][3]["messages"]
    assert followup[-2] == {"role": "assistant", "content": BAD}
    assert "could not be applied" in followup[-1]["content"] and followup[-1]["role"] == "user"


async def test_answers_that_never_apply_end_in_agent_failed(server, key, tmp_path):
    server.script = [(200, {}, BAD)] * 3
    with pytest.raises(AgentFailed, match="could not be applied after 3 tries") as err:
        await proposer(server, max_retries=2).propose(context(tmp_path))
    assert err.value.meta["tokens_in"] == 3000 and err.value.meta["retries"] == 2
    assert "could not be applied after 3 tries" in (tmp_path / "logs" / "agent.log").read_text()


async def test_429_and_500_are_retried_with_backoff(server, key, tmp_path):
    server.script = [(429, {"Retry-After": "0"}, {"error": {"message": "slow down"}}), (200, {}, GOOD)]
    assert (await proposer(server).propose(context(tmp_path))).description.startswith("raise")
    server.script = [(500, {}, {"error": "boom"}), (503, {}, {"error": "boom"}), (200, {}, GOOD)]
    p = await proposer(server).propose(context(tmp_path))
    assert p.new_source == TRAIN.replace("0.04", "0.05") and p.meta["retries"] == 0
    assert "HTTP 503" in (tmp_path / "logs" / "agent.log").read_text()


async def test_401_is_agent_unavailable(server, key, tmp_path):
    server.script = [(401, {}, {"error": {"message": "invalid x-api-key"}})]
    with pytest.raises(AgentUnavailable, match=rf"the API rejected the key in \${KEY_ENV} \(401\)"):
        await proposer(server).propose(context(tmp_path))


async def test_missing_key_only_matters_off_localhost(server, monkeypatch, tmp_path):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(AgentUnavailable, match=rf"\${KEY_ENV} is not set"):
        await proposer(server, base_url="https://api.example.com").propose(context(tmp_path))
    server.script = [(200, {}, GOOD)]
    await proposer(server).propose(context(tmp_path))  # local server (Ollama-style): no key needed
    headers = {k.lower() for k in server.posts()[0][2]}
    assert "authorization" not in headers and "x-api-key" not in headers


async def test_the_key_never_reaches_disk_meta_or_messages(server, key, tmp_path):
    ctx = context(tmp_path)
    (tmp_path / "session").mkdir()
    echo = {"error": {"message": f"Incorrect API key provided: {key}"}}
    server.script = [(200, {}, GOOD), (400, {}, echo), (200, {}, f"{BAD} {key}"), (200, {}, BAD),
                     (401, {}, echo)]
    seen: list[str] = []
    p = await proposer(server).propose(ctx)
    seen += [json.dumps(p.meta), p.description, p.new_source]
    for max_retries in (0, 1, 0):
        with pytest.raises((AgentFailed, AgentUnavailable)) as err:
            await proposer(server, max_retries=max_retries).propose(ctx)
        seen += [str(err.value), repr(err.value)]
    cfg = ResearchConfig(agent=server.wire, agent_base_url=server.url + "/v1", agent_key_env=KEY_ENV, project=tmp_path)
    assert check_backend(cfg) is None
    (tmp_path / "session" / "meta.json").write_text(json.dumps(seen))
    assert all(key not in s for s in seen)
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert key.encode() not in f.read_bytes(), f"the key leaked into {f}"
    assert "***" in (tmp_path / "logs" / "agent.log").read_text()


def test_check_backend_reports_a_rejected_key_and_an_unreachable_endpoint(server, monkeypatch, tmp_path):
    monkeypatch.setenv(KEY_ENV, "bad")
    cfg = ResearchConfig(agent=server.wire, agent_base_url=server.url, agent_key_env=KEY_ENV)
    assert check_backend(cfg) == f"the API rejected the key in ${KEY_ENV} (401)"
    cfg.agent_base_url = "http://127.0.0.1:9"  # discard port: nothing listens
    assert check_backend(cfg).startswith("cannot reach http://127.0.0.1:9")
    cfg.agent_base_url = "https://api.example.com"
    monkeypatch.delenv(KEY_ENV)
    assert check_backend(cfg) == (f"${KEY_ENV} is not set: export your API key there "
                                  "(or set agent_key_env to the variable that holds it)")
    assert isinstance(make_proposer(cfg), (OpenAIProposer, AnthropicProposer))
    cfg.agent_key_env = "sk-ant-api03-pasted-the-key-itself"
    assert check_backend(cfg) == ("agent_key_env must be the name of an environment variable "
                                  "(e.g. OPENAI_API_KEY), not the key itself")


@pytest.mark.parametrize("cls", [OpenAIProposer, AnthropicProposer])
async def test_cancelled_proposal_closes_its_connection(cls, tmp_path, monkeypatch):
    """A prepared proposal that is cancelled stops its request: the server sees the client go."""
    monkeypatch.setenv(KEY_ENV, "sk-test")
    srv = ModelServer(Script(kind="hang", root=str(tmp_path))).start()
    try:
        base = srv.url + ("/v1" if cls is OpenAIProposer else "")
        proposer = cls(model="test-model", base_url=base, key_env=KEY_ENV, timeout=60)
        task = asyncio.ensure_future(proposer.propose(context(tmp_path)))
        while not srv.hanging:
            assert not task.done(), task.exception()
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert srv.wait_for(lambda: srv.disconnects == 1, 10), "the request went on after the cancel"
    finally:
        srv.stop()
