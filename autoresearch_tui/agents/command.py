"""Coding-agent CLIs (Claude Code, Codex, Gemini CLI, aider, opencode, Qwen Code, or any command).

The agent runs once per iteration in the project folder and edits the training script in
place; we read the file back afterwards. The argv comes from a template split with shlex and
is never given to a shell. The agent gets its own process group so a timeout or a stop can
kill it together with everything it started.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import os
import shlex
import shutil
import tempfile
import time
from pathlib import Path

from autoresearch_tui.agents.base import AgentFailed, AgentUnavailable, Proposal, ProposalContext
from autoresearch_tui.agents.cli_output import read_output
from autoresearch_tui.agents.edits import describe_diff, parse_description
from autoresearch_tui.agents.prompt import build_prompt
from autoresearch_tui.core import processes, safefs, secrets
from autoresearch_tui.core.git import STATUS_ARGS, parse_status
from autoresearch_tui.core.git import run_async as git

# Placeholders: {prompt_file} (a temp file holding the prompt), {prompt} (the prompt as one
# argv element), {train_path}, {readonly_path}. Without {prompt}/{prompt_file} the prompt goes
# on stdin; with one of them stdin is /dev/null (codex exec would otherwise wait on it).
# Each preset was run against the real program and a scripted model (tests/test_real_cli.py);
# the README's agents table gives the versions. The JSON output modes carry the token counts.
PRESETS: dict[str, tuple[str, str]] = {
    # (program and subcommand, flags): `--model X` goes between the two when agent_model is set.
    # Claude Code: -p is print mode (reads the prompt on stdin); acceptEdits lets it edit files
    # without asking while shell commands are denied (no --dangerously-skip-permissions).
    "claude": ("claude", "-p --permission-mode acceptEdits --output-format json"),
    # Codex: `exec` is non-interactive and never asks; the workspace-write sandbox lets its shell
    # write in the project and the temp folder only, without network; `-` reads stdin.
    "codex": ("codex exec", "--sandbox workspace-write --json -"),
    # Gemini CLI: -p forces headless mode and is appended to the stdin prompt; auto_edit
    # approves file edits only (headless, it offers no shell tool). --skip-trust: in a folder
    # not yet trusted it would quietly fall back to the default mode and edit nothing.
    "gemini": ("gemini", "--skip-trust --approval-mode auto_edit --output-format json "
                         "-p 'Carry out the task described above.'"),
    # aider: one message from the file, then exit; edit blocks; no commits, no history or
    # repo-map files, no network checks. --yes-always still refuses its shell suggestions.
    "aider": ("aider", "--yes-always --no-auto-commits --no-dirty-commits --no-gitignore --no-stream "
                       "--edit-format diff --map-tokens 0 --no-check-update --no-show-model-warnings "
                       "--no-show-release-notes --no-detect-urls --analytics-disable "
                       "--chat-history-file /dev/null --input-history-file /dev/null "
                       "--message-file {prompt_file} {train_path}"),
    # opencode: `run` is non-interactive and reads the prompt on stdin; PRESET_ENV sets the
    # permissions (edits yes, shell no), which it would otherwise take from opencode.json.
    "opencode": ("opencode run", "--format json"),
    # Qwen Code (a Gemini CLI fork): the positional prompt is appended to stdin.
    "qwen": ("qwen", "--approval-mode auto-edit --output-format json 'Carry out the task described above.'"),
}
PRESET_ENV: dict[str, dict[str, str]] = {
    "opencode": {"OPENCODE_PERMISSION": json.dumps(
        {"edit": "allow", "bash": "deny", "webfetch": "deny", "external_directory": "deny"})},
}
INSTALL_HINTS = {
    "claude": "install Claude Code (npm install -g @anthropic-ai/claude-code)",
    "codex": "install Codex (npm install -g @openai/codex)",
    "gemini": "install Gemini CLI (npm install -g @google/gemini-cli)",
    "aider": "install aider (pip install aider-chat)",
    "opencode": "install opencode (npm install -g opencode-ai)",
    "qwen": "install Qwen Code (npm install -g @qwen-code/qwen-code)",
}
MAX_ARG_BYTES = 120_000  # Linux refuses a single argv element over 128 KiB
OUTPUT_TAIL = 1_000_000
DRAIN_S = 2.0  # after the agent exits, how long its children may hold the pipe


def preset_command(name: str, model: str | None = None) -> str:
    base, flags = PRESETS[name]
    middle = f" --model {shlex.quote(model)}" if model else ""
    return f"{base}{middle} {flags}"


def resolve_program(program: str, cwd: str, path: str | None = None) -> str | None:
    if os.sep in program:
        p = Path(program).expanduser()
        p = p if p.is_absolute() else Path(cwd or ".") / p
        return str(p) if p.is_file() and os.access(p, os.X_OK) else None
    return shutil.which(program, path=path)


def missing_program_message(program: str, name: str) -> str:
    hint = INSTALL_HINTS.get(name) or INSTALL_HINTS.get(Path(program).name) or "install it"
    return f"{program}: command not found on PATH; {hint} or pick another --agent"


async def _head(cwd: str) -> str | None:
    rc, out = await git(cwd, "rev-parse", "HEAD")
    return out if rc == 0 and out else None


async def _dirty(cwd: str) -> set[str]:
    rc, out = await git(cwd, *STATUS_ARGS)
    if rc != 0:
        return set()
    changed, untracked = parse_status(out)
    return set(changed) | untracked


def open_log(path: str):
    """The agent log for appending (its folder created), or None when there is none."""
    if not path:
        return None
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fd = safefs.open_append(Path(path))  # never through a planted link
    return secrets.ScrubbingWriter(open(fd, "a", encoding="utf-8", errors="replace"))


class CommandProposer:
    """Runs `template` once per iteration; the agent edits ctx.train_path on disk."""

    def __init__(self, template: str, name: str = "command", timeout: float = 900.0,
                 kill_grace: float = 5.0, prompt_template: str | None = None,
                 keep_last: int = 15, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.template = template
        self.argv = shlex.split(template)
        if not self.argv:
            raise AgentUnavailable("the agent command is empty; set agent_cmd, e.g. \"my-agent {prompt_file}\"")
        self.timeout = timeout
        self.kill_grace = kill_grace
        self.prompt_template = prompt_template
        self.keep_last = keep_last
        self.env = env

    def check(self, cwd: str = "") -> str | None:
        """One line when the program is missing, else None."""
        if resolve_program(self.argv[0], cwd, (self.env or {}).get("PATH")) is None:
            return missing_program_message(self.argv[0], self.name)
        return None

    def _argv(self, ctx: ProposalContext, prompt: str, prompt_file: str) -> tuple[list[str], bool]:
        subs = {"{prompt_file}": prompt_file, "{train_path}": ctx.train_path,
                "{readonly_path}": ctx.readonly_path or ""}
        uses_prompt = any("{prompt}" in a or "{prompt_file}" in a for a in self.argv)
        out = []
        for arg in self.argv:
            for key, value in subs.items():
                arg = arg.replace(key, value)
            if "{prompt}" in arg:
                arg = arg.replace("{prompt}", prompt)
                if len(arg.encode()) > MAX_ARG_BYTES:
                    raise AgentFailed("the prompt is too long for one command-line argument; "
                                      "use {prompt_file} or stdin in the agent command")
            out.append(arg)
        return out, not uses_prompt

    async def propose(self, ctx: ProposalContext) -> Proposal:
        cwd = ctx.project or os.getcwd()
        program = resolve_program(self.argv[0], cwd, (self.env or {}).get("PATH"))
        if program is None:
            raise AgentUnavailable(missing_program_message(self.argv[0], self.name))
        prompt = build_prompt(ctx, "cli", self.prompt_template, keep_last=self.keep_last)
        tmp = tempfile.mkdtemp(prefix="autoresearch-prompt-")
        prompt_file = os.path.join(tmp, "prompt.md")
        Path(prompt_file).write_text(prompt, encoding="utf-8")
        try:
            argv, on_stdin = self._argv(ctx, prompt, prompt_file)
            argv[0] = program
            head_before, dirty_before = await _head(cwd), await _dirty(cwd)
            started = time.monotonic()
            code, output = await self._run(argv, cwd, prompt if on_stdin else None, ctx)
            duration = time.monotonic() - started
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return await self._result(ctx, cwd, code, output, duration, head_before, dirty_before)

    async def _run(self, argv: list[str], cwd: str, stdin_text: str | None,
                   ctx: ProposalContext) -> tuple[int, str]:
        log = open_log(ctx.agent_log)
        shown = " ".join(shlex.quote(a) for a in self.argv)  # the template: no prompt text, no secrets

        def write(text: str) -> None:
            if log:
                log.write(text)
                log.flush()

        # PWD as a shell would set it: opencode takes its project folder from it.
        env = {**os.environ, **(self.env or {}), "PYTHONUNBUFFERED": "1", "PWD": cwd,
               "AUTORESEARCH_ITERATION": str(ctx.iteration)}
        write(f"\n=== iteration {ctx.iteration}: {shown} (in {cwd}) ===\n")
        mark, since = ctx.mark or processes.unique_mark("agent"), time.time()
        try:
            proc = await processes.start(
                argv, cwd=cwd, env=env, mark=mark,
                stdin=asyncio.subprocess.PIPE if stdin_text is not None else asyncio.subprocess.DEVNULL)
        except OSError as exc:
            if log:
                log.close()
            raise AgentUnavailable(f"{self.argv[0]}: cannot start: {exc.strerror or exc}") from None
        chunks: list[str] = []
        size = 0

        async def feed() -> None:
            assert proc.stdin is not None
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                proc.stdin.write(stdin_text.encode("utf-8"))
                await proc.stdin.drain()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                proc.stdin.close()

        async def pump() -> None:
            nonlocal size
            assert proc.stdout is not None
            decoder = codecs.getincrementaldecoder("utf-8")("replace")
            while True:
                data = await proc.stdout.read(65536)
                if not data:
                    break
                text = decoder.decode(data)
                write(text)
                chunks.append(text)
                size += len(text)
                while size > OUTPUT_TAIL and len(chunks) > 1:
                    size -= len(chunks.pop(0))

        feeder = asyncio.ensure_future(feed()) if stdin_text is not None else None
        reader = asyncio.ensure_future(pump())
        try:
            if not await processes.exited(proc, self.timeout):
                await self._kill(proc, mark, since)
                write(f"\n=== killed: no answer after {self.timeout:g} s ===\n")
                raise AgentFailed(f"agent timed out after {self.timeout:g} s")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(reader), DRAIN_S)
            processes.end_tree(proc.pid, mark, since)  # whatever it left behind (and holding our pipe)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(proc.wait(), DRAIN_S)
        except BaseException:
            if proc.returncode is None:  # cancelled (the user stopped): take the group down
                await self._kill(proc, mark, since)
            raise
        finally:
            for task in (reader, feeder):
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task
            write(f"=== exit {proc.returncode} ===\n")
            if log:
                log.close()
        return proc.returncode if proc.returncode is not None else -1, "".join(chunks)

    async def _kill(self, proc: asyncio.subprocess.Process, mark: str, since: float) -> None:
        """SIGTERM the whole tree, give it kill_grace seconds, then SIGKILL it; returns once the
        marked processes are gone."""
        await processes.stop(proc, self.kill_grace, mark, since)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(proc.wait(), self.kill_grace)
        deadline = time.monotonic() + self.kill_grace
        while processes.with_mark(mark, since) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def _result(self, ctx: ProposalContext, cwd: str, code: int, output: str, duration: float,
                      head_before: str | None, dirty_before: set[str]) -> Proposal:
        train = Path(cwd) / ctx.train_path
        try:
            new_source = train.read_text(encoding="utf-8")
        except OSError:
            raise AgentFailed(f"{self.name} left no {ctx.train_path} behind") from None
        head_after = await _head(cwd)
        moved = head_before is not None and head_after is not None and head_before != head_after
        others = await _dirty(cwd) - dirty_before
        if moved:
            _, names = await git(cwd, "diff", "--name-only", head_before, head_after)
            others |= set(names.splitlines())
        _, prefix = await git(cwd, "rev-parse", "--show-prefix")  # git paths are repo-relative
        others.discard(prefix.strip() + os.path.normpath(ctx.train_path))
        text, usage = read_output(output)
        last = next((ln.strip() for ln in reversed((text or output).splitlines()) if ln.strip()), "")
        if new_source == ctx.train_source:
            if code != 0:
                raise AgentFailed(f"{self.name} exited with code {code} and changed nothing"
                                  + (f": {last[:200]}" if last else ""))
            raise AgentFailed(f"{self.name} finished without changing {ctx.train_path}"
                              + (f"; its last line: {last[:200]}" if last else ""))
        description, source = parse_description(text) or parse_description(output), "agent"
        if not description and moved:
            _, subject = await git(cwd, "log", "-1", "--format=%s", head_after or "HEAD")
            description, source = subject.strip()[:200], "commit"
        if not description:
            description, source = describe_diff(ctx.train_source, new_source, ctx.train_path), "diff"
        meta = {"agent": self.name, "exit_code": code, "duration_s": round(duration, 2),
                "agent_moved_head": moved, "description_source": source, **usage}
        if others:
            meta["other_files_changed"] = sorted(others)
            if ctx.agent_log:
                with open_log(ctx.agent_log) as log:
                    log.write(f"note: the agent also changed {', '.join(sorted(others))}; "
                              "only the training script is kept\n")
        return Proposal(new_source=new_source, description=description, meta=meta)
