"""A scripted model on 127.0.0.1 for the coding-agent CLIs: it speaks the Anthropic Messages API,
the OpenAI Responses and Chat Completions APIs and the Gemini generateContent API (streaming
included) and plays a fixed conversation through each CLI's own tools.

The conversation is stateless: the step is the number of tool results the CLI has sent back so
far, the iteration is read from the prompt ("This is iteration N"), and the project folder from
the CLI's own context (its working directory), so pipelined worktrees work too.

Scripts: "edit" (read train.py, change one constant, end with DESCRIPTION:), "shell" (first ask
to run a shell command), "prepare" (first edit the read-only prepare.py), "hang" (never answer).
Run it by hand with `python tests/model_server.py [PORT]`.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

READ = ("Read", "read_file", "read", "view")
EDIT = ("Edit", "replace", "edit", "edit_file")
SHELL = ("Bash", "run_shell_command", "bash", "shell", "shell_command", "exec_command")
PATH_KEYS = ("file_path", "absolute_path", "filePath", "path")
ITERATION = re.compile(r"This is iteration (\d+)")
CWD_MARKERS = (re.compile(r"<cwd>(/[^<]+)</cwd>"), re.compile(r"[Ww]orking directory:\s*`?(/[^\s`\"\\]+)"),
               re.compile(r"working in the directory:?\s*`?(/[^\s`\"\\]+)"))
# JSON answers for the CLIs' side requests (gemini's next-speaker check and model router).
SIDE_JSON = {"reasoning": "scripted", "next_speaker": "user", "model_choice": "flash",
             "complexity_reasoning": "scripted", "complexity_score": 1}


@dataclass
class Edit:
    name: str  # the constant, e.g. LEARNING_RATE
    value: str  # its new value as source text
    description: str


DEFAULT_EDIT = Edit("LEARNING_RATE", "0.01", "raise the learning rate to 0.01")


@dataclass
class Script:
    kind: str = "edit"  # edit | shell | prepare | hang
    edits: dict[int, Edit] = field(default_factory=dict)  # per iteration; DEFAULT_EDIT otherwise
    kinds: dict[int, str] = field(default_factory=dict)  # per iteration; kind otherwise
    shell_command: str = "touch /tmp/agent-ran-a-shell-command"
    root: str = ""  # the project folder when the CLI does not say its working directory

    def edit_for(self, iteration: int) -> Edit:
        return self.edits.get(iteration, DEFAULT_EDIT)

    def kind_for(self, iteration: int) -> str:
        return self.kinds.get(iteration, self.kind)


def constant_line(source: str, name: str) -> str:
    match = re.search(rf"^{re.escape(name)} = .*$", source, re.M)
    if not match:
        raise KeyError(f"no constant {name} in the file")
    return match.group(0)


def replace_value(line: str, value: str) -> str:
    """`NAME = old   # comment` -> `NAME = value   # comment` (keeps the comment)."""
    head, _, rest = line.partition(" = ")
    comment = rest[rest.index("#"):] if "#" in rest else ""
    return f"{head} = {value}" + (f"   {comment}" if comment else "")


class Conversation:
    """What the scripted model does next, from one request's text and tool results."""

    def __init__(self, script: Script, body_text: str, steps_done: int) -> None:
        self.script = script
        match = ITERATION.search(body_text)
        self.iteration = int(match.group(1)) if match else 1
        self.cwd = self._cwd(body_text)
        self.step = steps_done

    def _cwd(self, text: str) -> Path:
        for marker in CWD_MARKERS:
            for found in marker.findall(text):
                path = Path(found.rstrip(".,)"))
                if (path / "train.py").is_file():
                    return path
        return Path(self.script.root)

    def plan(self) -> list[tuple]:
        edit = self.script.edit_for(self.iteration)
        train = self.cwd / "train.py"
        source = train.read_text()
        old = constant_line(source, edit.name)
        change = ("edit", str(train), old, replace_value(old, edit.value))
        done = ("text", f"I changed {edit.name} to {edit.value}.\nDESCRIPTION: {edit.description}")
        kind = self.script.kind_for(self.iteration)
        if kind == "hang":
            return [("hang",)]
        read = ("read", str(train))  # some CLIs refuse to edit a file the model has not read
        if kind == "shell":
            return [("shell", self.script.shell_command), read, change, done]
        if kind == "prepare":
            prepare = self.cwd / "prepare.py"
            first = re.search(r"^[A-Z_]+ = .*$", prepare.read_text(), re.M).group(0)
            return [("read", str(prepare)), ("edit", str(prepare), first, first + "  # changed by the agent"),
                    read, change, done]
        return [read, change, done]

    def next(self) -> tuple:
        plan = self.plan()
        return plan[self.step] if self.step < len(plan) else plan[-1]

    def edit_blocks(self) -> str:
        """The whole answer in aider's SEARCH/REPLACE format (no tools)."""
        edit = self.script.edit_for(self.iteration)
        old = constant_line((self.cwd / "train.py").read_text(), edit.name)
        if self.script.kind_for(self.iteration) == "shell":
            intro = f"First run this:\n\n```bash\n{self.script.shell_command}\n```\n\n"
        else:
            intro = ""
        if self.script.kind_for(self.iteration) == "prepare":
            first = re.search(r"^[A-Z_]+ = .*$", (self.cwd / "prepare.py").read_text(), re.M).group(0)
            intro += (f"prepare.py\n```python\n<<<<<<< SEARCH\n{first}\n=======\n"
                      f"{first}  # changed by the agent\n>>>>>>> REPLACE\n```\n\n")
        return (f"{intro}train.py\n```python\n<<<<<<< SEARCH\n{old}\n=======\n"
                f"{replace_value(old, edit.value)}\n>>>>>>> REPLACE\n```\n\nDESCRIPTION: {edit.description}\n")


def tool_args(action: tuple, schema: dict) -> dict:
    props = (schema or {}).get("properties") or {}
    if action[0] == "shell":
        key = "cmd" if "cmd" in props and "command" not in props else "command"
        kind = (props.get(key) or {}).get("type")
        return {key: ["bash", "-lc", action[1]] if kind == "array" else action[1]}
    path_key = next((k for k in PATH_KEYS if k in props), "file_path")
    args = {path_key: action[1]}
    if action[0] == "edit":
        old_key = next((k for k in props if k.lower().startswith("old")), "old_string")
        new_key = next((k for k in props if k.lower().startswith("new")), "new_string")
        args.update({old_key: action[2], new_key: action[3]})
    for key in (schema or {}).get("required") or []:  # e.g. gemini's replace wants an "instruction"
        if key not in args:
            kind = (props.get(key) or {}).get("type")
            args[key] = {"number": 1, "integer": 1, "boolean": False}.get(kind, f"scripted {action[0]}")
    return args


def apply_patch_text(action: tuple, cwd: Path) -> str:
    rel = Path(action[1]).relative_to(cwd)
    return f"*** Begin Patch\n*** Update File: {rel}\n@@\n-{action[2]}\n+{action[3]}\n*** End Patch\n"


def pick_tool(action: tuple, tools: dict[str, dict]) -> tuple[str, dict] | None:
    """(tool name, arguments) for this CLI's tools; None when it has no such tool."""
    names = {"read": READ, "edit": EDIT, "shell": SHELL}[action[0]]
    name = next((n for n in names if n in tools), None)
    if name is None and action[0] == "shell":  # ask anyway: the CLI must refuse a tool it did not offer
        name = "run_shell_command" if "read_file" in tools else "bash" if "read" in tools else "Bash"
    if name is None:
        return None
    return name, tool_args(action, tools.get(name, {}))


class ModelServer:
    """The aiohttp app on its own thread and loop; `script` may be swapped between requests."""

    def __init__(self, script: Script | None = None) -> None:
        self.script = script or Script()
        self.requests: list[dict] = []  # {"path", "body"} of every request
        self.hanging = 0  # requests held open by the hang script right now
        self.disconnects = 0  # held requests whose client went away
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> "ModelServer":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        return self

    async def _start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port or 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_for(self, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return False

    # -- routing ----------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        path = request.path
        self.requests.append({"path": path, "method": request.method, "body": body})
        if request.method == "GET":
            return web.json_response({"object": "list", "data": [
                {"id": "scripted", "object": "model", "type": "model", "display_name": "scripted",
                 "created_at": "2025-01-01T00:00:00Z", "name": "models/scripted"}], "models": []})
        if path.endswith(":countTokens") or path.endswith("/count_tokens"):
            return web.json_response({"totalTokens": len(raw) // 4, "input_tokens": len(raw) // 4})
        if path.endswith("/messages"):
            return await self.anthropic(request, body, raw)
        if path.endswith("/responses"):
            return await self.responses(request, body, raw)
        if path.endswith("/chat/completions"):
            return await self.chat(request, body, raw)
        if ":generateContent" in path or ":streamGenerateContent" in path:
            return await self.gemini(request, body, raw, stream="stream" in path)
        return web.json_response({"error": {"message": f"the scripted server has no {path}"}}, status=404)

    async def hold(self, request: web.Request) -> web.StreamResponse:
        """The hang script: keep the request open until the client goes away."""
        self.hanging += 1
        try:
            while request.transport is not None and not request.transport.is_closing():
                await asyncio.sleep(0.1)
            self.disconnects += 1
        finally:
            self.hanging -= 1
        return web.Response(status=499)

    async def sse(self, request: web.Request, events: list[tuple[str | None, dict | str]]) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache"})
        await resp.prepare(request)
        for name, data in events:
            text = data if isinstance(data, str) else json.dumps(data)
            await resp.write((f"event: {name}\n" if name else "").encode() + f"data: {text}\n\n".encode())
        await resp.write_eof()
        return resp

    def usage(self, raw: bytes, answer: str) -> tuple[int, int]:
        return max(1, len(raw) // 4), max(1, len(answer) // 4)

    def plain(self, text: str) -> str | None:
        """The answer to a request without tools: edit blocks for our prompt (aider, the HTTP
        backends), JSON for a CLI's side requests (titles, routing); None: hang."""
        if "<<<<<<< SEARCH" not in text or not ITERATION.search(text):
            return json.dumps(SIDE_JSON)
        convo = Conversation(self.script, text, 0)
        return None if self.script.kind_for(convo.iteration) == "hang" else convo.edit_blocks()

    # -- Anthropic Messages -----------------------------------------------------------------
    async def anthropic(self, request, body, raw):
        tools = {t.get("name"): t.get("input_schema") or {} for t in body.get("tools") or []}
        steps = sum(1 for m in body.get("messages", []) if isinstance(m.get("content"), list)
                    for part in m["content"] if isinstance(part, dict) and part.get("type") == "tool_result")
        blocks: list[dict] = []
        if "Read" not in tools and "Edit" not in tools:
            answer = self.plain(raw.decode("utf-8", "replace"))
            if answer is None:
                return await self.hold(request)
            blocks = [{"type": "text", "text": answer}]
        else:
            convo = Conversation(self.script, raw.decode("utf-8", "replace"), steps)
            action = convo.next()
            if action[0] == "hang":
                return await self.hold(request)
            picked = pick_tool(action, tools) if action[0] != "text" else None
            if picked:
                blocks = [{"type": "tool_use", "id": f"toolu_{steps}_{len(self.requests)}",
                           "name": picked[0], "input": picked[1]}]
            else:
                blocks = [{"type": "text", "text": action[1] if action[0] == "text" else "(no tool)"}]
        answer = json.dumps(blocks)
        t_in, t_out = self.usage(raw, answer)
        stop = "tool_use" if blocks[0]["type"] == "tool_use" else "end_turn"
        message = {"id": f"msg_{len(self.requests)}", "type": "message", "role": "assistant",
                   "model": body.get("model", "scripted"), "content": blocks, "stop_reason": stop,
                   "stop_sequence": None, "usage": {"input_tokens": t_in, "output_tokens": t_out}}
        if not body.get("stream"):
            return web.json_response(message)
        events: list[tuple[str | None, dict | str]] = [("message_start", {"type": "message_start", "message": {
            **message, "content": [], "stop_reason": None, "usage": {"input_tokens": t_in, "output_tokens": 1}}})]
        for i, block in enumerate(blocks):
            if block["type"] == "text":
                start, delta = {"type": "text", "text": ""}, {"type": "text_delta", "text": block["text"]}
            else:
                start = {**block, "input": {}}
                delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
            events += [("content_block_start", {"type": "content_block_start", "index": i, "content_block": start}),
                       ("content_block_delta", {"type": "content_block_delta", "index": i, "delta": delta}),
                       ("content_block_stop", {"type": "content_block_stop", "index": i})]
        events += [("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                      "usage": {"output_tokens": t_out}}),
                   ("message_stop", {"type": "message_stop"})]
        return await self.sse(request, events)

    # -- OpenAI Responses -------------------------------------------------------------------
    async def responses(self, request, body, raw):
        tools = {}
        for t in body.get("tools") or []:
            if t.get("name"):
                tools[t["name"]] = {**(t.get("parameters") or {}), "_type": t.get("type")}
        items = body.get("input") if isinstance(body.get("input"), list) else []
        steps = sum(1 for it in items if isinstance(it, dict) and str(it.get("type", "")).endswith("call_output"))
        convo = Conversation(self.script, raw.decode("utf-8", "replace"), steps)
        action = convo.next()
        if action[0] == "hang":
            return await self.hold(request)
        rid = f"resp_{len(self.requests)}"
        call_id = f"call_{steps}_{len(self.requests)}"
        if action[0] == "read" and not any(n in tools for n in READ):
            action = ("shell", f"cat {Path(action[1]).name}")  # codex reads files with its shell
        if action[0] == "edit" and not any(n in tools for n in EDIT):
            patch = apply_patch_text(action, convo.cwd)
            if "apply_patch" not in tools:  # codex runs `apply_patch` given to its shell itself
                action = ("shell", f"apply_patch <<'PATCH'\n{patch}PATCH\n")
        if action[0] == "edit" and "apply_patch" in tools:
            if tools["apply_patch"]["_type"] == "custom":
                item = {"type": "custom_tool_call", "id": f"ctc_{call_id}", "status": "completed",
                        "call_id": call_id, "name": "apply_patch", "input": patch}
            else:
                item = {"type": "function_call", "id": f"fc_{call_id}", "status": "completed",
                        "call_id": call_id, "name": "apply_patch", "arguments": json.dumps({"input": patch})}
        elif action[0] == "text":
            item = {"type": "message", "id": f"msg_{rid}", "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": action[1], "annotations": []}]}
        else:
            name, args = pick_tool(action, tools) or ("shell", {"command": action[1]})
            item = {"type": "function_call", "id": f"fc_{call_id}", "status": "completed",
                    "call_id": call_id, "name": name, "arguments": json.dumps(args)}
        t_in, t_out = self.usage(raw, json.dumps(item))
        usage = {"input_tokens": t_in, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": t_out,
                 "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": t_in + t_out}
        response = {"id": rid, "object": "response", "created_at": int(time.time()), "status": "completed",
                    "model": body.get("model", "scripted"), "output": [item], "usage": usage}
        if not body.get("stream"):
            return web.json_response(response)
        events: list[tuple[str | None, dict | str]] = [
            ("response.created", {"type": "response.created", "response": {**response, "status": "in_progress",
                                                                           "output": [], "usage": None}}),
            ("response.output_item.added", {"type": "response.output_item.added", "output_index": 0, "item": item})]
        if item["type"] == "message":
            events.append(("response.output_text.delta", {"type": "response.output_text.delta", "item_id": item["id"],
                                                          "output_index": 0, "content_index": 0, "delta": action[1]}))
        events += [("response.output_item.done", {"type": "response.output_item.done", "output_index": 0, "item": item}),
                   ("response.completed", {"type": "response.completed", "response": response})]
        return await self.sse(request, events)

    # -- OpenAI Chat Completions ------------------------------------------------------------
    async def chat(self, request, body, raw):
        tools = {}
        for t in body.get("tools") or []:
            fn = t.get("function") or {}
            tools[fn.get("name")] = fn.get("parameters") or {}
        messages = body.get("messages") or []
        steps = sum(1 for m in messages if m.get("role") == "tool")
        text = raw.decode("utf-8", "replace")
        content, calls = None, []
        if not tools:
            content = self.plain(text)
            if content is None:
                return await self.hold(request)
        else:
            convo = Conversation(self.script, text, steps)
            action = convo.next()
            if action[0] == "hang":
                return await self.hold(request)
            picked = pick_tool(action, tools) if action[0] != "text" else None
            if picked:
                calls = [{"index": 0, "id": f"call_{steps}_{len(self.requests)}", "type": "function",
                          "function": {"name": picked[0], "arguments": json.dumps(picked[1])}}]
            else:
                content = action[1] if action[0] == "text" else "(no tool)"
        t_in, t_out = self.usage(raw, json.dumps([content, calls]))
        usage = {"prompt_tokens": t_in, "completion_tokens": t_out, "total_tokens": t_in + t_out}
        finish = "tool_calls" if calls else "stop"
        cid, created, model = f"chatcmpl-{len(self.requests)}", int(time.time()), body.get("model", "scripted")
        if not body.get("stream"):
            message = {"role": "assistant", "content": content}
            if calls:
                message["tool_calls"] = [{k: v for k, v in c.items() if k != "index"} for c in calls]
            return web.json_response({"id": cid, "object": "chat.completion", "created": created, "model": model,
                                      "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                                      "usage": usage})
        chunk = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model}
        delta: dict[str, Any] = {"role": "assistant", "content": content}
        if calls:
            delta["tool_calls"] = calls
        events: list[tuple[str | None, dict | str]] = [
            (None, {**chunk, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}),
            (None, {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}),
            (None, {**chunk, "choices": [], "usage": usage}),
            (None, "[DONE]")]
        return await self.sse(request, events)

    # -- Gemini -----------------------------------------------------------------------------
    async def gemini(self, request, body, raw, stream: bool):
        tools = {}
        for group in body.get("tools") or []:
            for fn in group.get("functionDeclarations") or group.get("function_declarations") or []:
                tools[fn.get("name")] = fn.get("parametersJsonSchema") or fn.get("parameters") or {}
        steps = sum(1 for c in body.get("contents") or [] for p in c.get("parts") or []
                    if isinstance(p, dict) and "functionResponse" in p)
        config = body.get("generationConfig") or {}
        if not tools or config.get("responseMimeType") == "application/json":
            parts = [{"text": json.dumps(SIDE_JSON)}]
        else:
            convo = Conversation(self.script, raw.decode("utf-8", "replace"), steps)
            action = convo.next()
            if action[0] == "hang":
                return await self.hold(request)
            picked = pick_tool(action, tools) if action[0] != "text" else None
            if picked:
                parts = [{"functionCall": {"name": picked[0], "args": picked[1]}}]
            else:
                parts = [{"text": action[1] if action[0] == "text" else "(no tool)"}]
        t_in, t_out = self.usage(raw, json.dumps(parts))
        answer = {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
                  "usageMetadata": {"promptTokenCount": t_in, "candidatesTokenCount": t_out,
                                    "totalTokenCount": t_in + t_out}, "modelVersion": "scripted"}
        if not stream:
            return web.json_response(answer)
        return await self.sse(request, [(None, answer)])


if __name__ == "__main__":
    import sys

    server = ModelServer(Script(root=str(Path.cwd())))
    server.port = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
    server.start()
    print(f"scripted model at {server.url}", flush=True)
    threading.Event().wait()
