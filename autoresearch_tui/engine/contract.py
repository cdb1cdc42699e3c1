"""The compute contract of a training script: detected, not assumed.

The reference method compares runs at equal compute because every run trains for the same
time budget. Many real scripts train for an iteration count and never read the budget; there
the clock protects nothing, so the engine measures each run's CPU time (process tree, see
runner.py) and does not keep a candidate that used clearly more than the best.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

BUDGET_VAR = "AUTORESEARCH_TIME_BUDGET"
BATCH_SCALE_VAR = "AUTORESEARCH_BATCH_SCALE"
# adjustment key (hardware.Platform.adjustments) -> the variable that carries it
PLATFORM_VARS = {
    "compile": "AUTORESEARCH_COMPILE",
    "attention": "AUTORESEARCH_ATTENTION",
    "batch_scale": BATCH_SCALE_VAR,
    "grad_accum": "AUTORESEARCH_GRAD_ACCUM",
    "optimizer_fp32": "AUTORESEARCH_OPTIM_FP32",
}
# A candidate whose CPU time exceeds the best's by more than this factor (plus the sampling
# resolution) bought its gain with compute. 1.25 leaves room for machine load, which moves
# CPU time far less than wall time (measured on the samples: re-runs within about 10%).
COMPUTE_TOLERANCE = 1.25
COMPUTE_SLACK_S = 0.5
# Before the baseline nothing is measured yet: allow this much start-up (imports, data) on top
# of budget x factor, so a 4 s budget on a loaded machine does not time out the baseline.
BASELINE_STARTUP_S = 60.0
SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".autoresearch", "site-packages"}
MAX_FILES = 400
MAX_BYTES = 4 << 20
_OWN_CLOCK = re.compile(r"^\s*(TIME_BUDGET|time_budget|max_time|MAX_TIME|max_seconds|MAX_SECONDS)\s*[:=]", re.M)
_FLAG = re.compile(r"^--([A-Za-z_][A-Za-z0-9_]*)=")


@dataclass
class Contract:
    reads_budget: bool  # the script reads AUTORESEARCH_TIME_BUDGET
    own_clock: bool  # it trains to a time budget of its own (e.g. TIME_BUDGET in prepare.py)
    unread: list[str] = field(default_factory=list)  # platform variables it never reads

    @property
    def by_iterations(self) -> bool:
        """No clock holds compute fixed: the engine must."""
        return not (self.reads_budget or self.own_clock)

    @property
    def reads_batch_scale(self) -> bool:
        return BATCH_SCALE_VAR not in self.unread


def project_source(project: Path) -> str:
    """The Python source of the project (bounded): what the script can possibly read.

    Walks with pruning: a data folder of a million files must not cost a minute."""
    parts: list[str] = []
    size = 0
    for root, dirs, files in os.walk(project):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(f for f in files if f.endswith(".py")):
            try:
                text = (Path(root) / name).read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            parts.append(text)
            size += len(text)
            if len(parts) >= MAX_FILES or size >= MAX_BYTES:
                return "\n".join(parts)
    return "\n".join(parts)


def detect(project: Path) -> Contract:
    source = project_source(project)
    return Contract(reads_budget=BUDGET_VAR in source, own_clock=bool(_OWN_CLOCK.search(source)),
                    unread=[var for var in PLATFORM_VARS.values() if var not in source])


def command_overrides(argv: list[str]) -> list[str]:
    """Names the train command sets with `--name=value`: edits to them in a file have no effect."""
    return [m.group(1) for arg in argv if (m := _FLAG.match(arg))]


def budget_line(contract: Contract, budget_s: float, duration_s: float, training_s: float | None) -> str:
    """Said once after the baseline: does the script honour the time budget?"""
    trained = f"trained {training_s:.1f} s" if training_s is not None else f"ran {duration_s:.1f} s"
    if contract.reads_budget:
        if training_s is not None and budget_s and not 0.5 <= training_s / budget_s <= 1.5:
            text = (f"the script reads {BUDGET_VAR} but {trained} for a {budget_s:g} s budget: "
                    "check how it uses the budget")
        else:
            text = f"the script honours the time budget: {trained} of {budget_s:g} s (it reads {BUDGET_VAR})"
    elif contract.own_clock:
        text = (f"the script trains to a time budget of its own ({trained}) and does not read {BUDGET_VAR}: "
                "the configured budget only sets the hard limit")
    else:
        text = (f"the script trains by iteration count and does not read {BUDGET_VAR} ({trained}): "
                f"the clock holds nothing, so a candidate using more than {COMPUTE_TOLERANCE:g}x the best's "
                "CPU time is not kept")
    if contract.unread:
        text += "; not read by the script: " + ", ".join(contract.unread)
    return text


def limit_after_baseline(budget_s: float, factor: float, duration_s: float, training_s: float | None) -> float:
    """Hard limit = (budget + the baseline's start-up and evaluation time) x factor.

    A script that ignores the budget is allowed factor x its own baseline duration."""
    trained = training_s if training_s is not None else min(duration_s, budget_s)
    overhead = max(0.0, duration_s - trained)
    return factor * max(budget_s + overhead, duration_s)


def baseline_limit(budget_s: float, factor: float) -> float:
    return budget_s * factor + BASELINE_STARTUP_S


def more_compute(cpu_s: float | None, best_cpu_s: float | None, tolerance: float = COMPUTE_TOLERANCE) -> bool:
    if cpu_s is None or not best_cpu_s:
        return False
    return cpu_s > best_cpu_s * tolerance + COMPUTE_SLACK_S


def compute_reason(cpu_s: float, best_cpu_s: float) -> str:
    return (f"used {cpu_s / best_cpu_s:.2f}x the best's CPU time ({cpu_s:.1f} s vs {best_cpu_s:.1f} s, "
            f"tolerance {COMPUTE_TOLERANCE:g}x): a gain bought with compute, not kept in an iteration-count "
            "project (name the constant in `vary` to allow it)")


def annotate(adjustments: dict, unread: list[str]) -> dict:
    """Platform adjustments as the summary lists them: the ones the script ignores say so."""
    return {key: (f"{value} (not read by the script)" if PLATFORM_VARS.get(key) in unread else value)
            for key, value in adjustments.items()}
