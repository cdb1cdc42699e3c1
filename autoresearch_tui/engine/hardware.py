"""Phase 1: detect CUDA / MPS / CPU with the project's interpreter and choose the adjustments.

The probe runs as a subprocess of the training command's interpreter, so the app itself never
imports torch. The adjustments follow the spec's table and reach the training script as
AUTORESEARCH_* environment variables.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PROBE = Path(__file__).with_name("platform_probe.py")
PROBE_TIMEOUT = 120.0


@dataclass
class Platform:
    platform: str  # CUDA | MPS | CPU
    device: str  # cuda | mps | cpu
    adjustments: dict[str, Any] = field(default_factory=dict)
    notes: str = ""
    torch_version: str | None = None
    probe_error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def env(self, time_budget: float, batch_scale: float | None = None) -> dict[str, str]:
        adj = self.adjustments
        scale = adj.get("batch_scale", 1.0) if batch_scale is None else batch_scale
        return {
            "AUTORESEARCH_DEVICE": self.device,
            "AUTORESEARCH_COMPILE": "1" if adj.get("compile") else "0",
            "AUTORESEARCH_ATTENTION": str(adj.get("attention", "sdpa")),
            "AUTORESEARCH_BATCH_SCALE": f"{scale:g}",
            "AUTORESEARCH_GRAD_ACCUM": str(adj.get("grad_accum", 1)),
            "AUTORESEARCH_OPTIM_FP32": "1" if adj.get("optimizer_fp32") else "0",
            "AUTORESEARCH_TIME_BUDGET": f"{time_budget:g}",
        }

    def describe(self) -> str:
        adj = self.adjustments
        parts = [
            f"compile {'on' if adj.get('compile') else 'off'}",
            str(adj.get("attention", "sdpa")).replace("flash", "FlashAttention").replace("sdpa", "SDPA"),
            f"batch x{adj.get('batch_scale', 1.0):g}",
        ]
        if adj.get("grad_accum", 1) > 1:
            parts.append(f"grad accum x{adj['grad_accum']}")
        if adj.get("optimizer_fp32"):
            parts.append("fp32 optimizer state")
        return f"{self.platform} ({', '.join(parts)})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def adjustments_for(device: str, info: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The spec's Phase 1.2 table."""
    if device == "cuda":
        major = _major(info.get("torch"))
        flash = bool(info.get("flash_attn"))
        return (
            {"compile": major >= 2 and bool(info.get("compile", True)), "attention": "flash" if flash else "sdpa",
             "batch_scale": 1.0, "grad_accum": 1, "optimizer_fp32": False},
            "FlashAttention available" if flash else "FlashAttention not installed: SDPA",
        )
    if device == "mps":
        return (
            {"compile": False, "attention": "sdpa", "batch_scale": 0.5, "grad_accum": 2, "optimizer_fp32": True},
            "torch.compile off; SDPA with manual sliding-window mask; batch halved; fp32 optimizer state",
        )
    return (
        {"compile": False, "attention": "sdpa", "batch_scale": 0.25, "grad_accum": 4, "optimizer_fp32": False},
        "torch.compile off; smaller batches with gradient accumulation; expect 5-10x slower runs: use short budgets",
    )


def _major(version: str | None) -> int:
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return 0


def probe_argv(train_argv: list[str], train_script: str) -> list[str]:
    """The training command with the script swapped for the probe (same interpreter, same env)."""
    for i, arg in enumerate(train_argv):
        # The first script argument: the editable file may be a config file passed after it.
        if arg == train_script or Path(arg).name == Path(train_script).name or (i and arg.endswith(".py")):
            return [*train_argv[:i], str(PROBE)]
    if train_argv and train_argv[0] == "/bin/sh":
        return [sys.executable, str(PROBE)]  # a shell command: the best guess is our interpreter
    return [train_argv[0], str(PROBE)] if train_argv else [sys.executable, str(PROBE)]


def from_probe(info: dict[str, Any], forced: str = "auto") -> Platform:
    device = forced if forced != "auto" else "cuda" if info.get("cuda") else "mps" if info.get("mps") else "cpu"
    adjustments, notes = adjustments_for(device, info)
    name = {"cuda": "CUDA", "mps": "MPS", "cpu": "CPU"}[device]
    return Platform(
        platform=name,
        device=device,
        adjustments=adjustments,
        notes=notes,
        torch_version=info.get("torch"),
        probe_error=info.get("error"),
        details={k: v for k, v in info.items() if k in ("device_name", "device_count", "memory_gb", "capability", "python")},
    )


_CACHE: dict[tuple[str, ...], dict[str, Any]] = {}  # one probe per interpreter per process


async def detect(train_argv: list[str], train_script: str, cwd: Path, env: dict[str, str], forced: str = "auto") -> Platform:
    """Run the probe; a failure (no torch, bad interpreter) falls back to CPU with the reason."""
    if forced != "auto":
        # The user named the device: no probe (it costs a torch import, seconds on a cold disk).
        return _finish({"forced": True}, forced)
    argv = probe_argv(train_argv, train_script)
    # A plain interpreter sees the same torch wherever it runs; `uv run` depends on the project.
    key = (str(cwd) if Path(argv[0]).name in ("uv", "poetry", "pixi", "conda") else "", *argv)
    if key in _CACHE:
        return _finish(dict(_CACHE[key]), forced)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=str(cwd), env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), PROBE_TIMEOUT)
        except BaseException:  # timed out, or the caller went away (a closed screen): no orphan
            if proc.returncode is None:
                proc.kill()
                await asyncio.shield(proc.wait())
            raise
    except (OSError, asyncio.TimeoutError) as exc:
        info: dict[str, Any] = {"error": f"platform probe failed: {exc or type(exc).__name__}"}
    else:
        try:
            info = json.loads(out.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            tail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            info = {"error": f"platform probe failed: {tail[0]}"}
    if "error" not in info:
        _CACHE[key] = dict(info)
    return _finish(info, forced)


def _finish(info: dict[str, Any], forced: str) -> Platform:
    platform = from_probe(info, forced)
    if platform.probe_error:
        platform.notes = f"probe failed ({platform.probe_error}); assuming CPU. " + platform.notes
    return platform
