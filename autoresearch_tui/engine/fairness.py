"""Is a comparison fair? The engine's per-session record of the compute contract.

- After the baseline: does the script honour the time budget, which platform variables does it
  ignore (contract.py); the hard limit then allows for the measured start-up and evaluation.
- Every run: its CPU time; in an iteration-count project a candidate that used clearly more
  compute than the best is not kept (elsewhere it is flagged).
- Every candidate: a run bit-identical to its parent's marks the edited constant inert.
- Names the train command sets (`--name=value`) are held from the start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from autoresearch_tui.engine import contract, inert
from autoresearch_tui.engine import events as ev
from autoresearch_tui.engine.decide import CRASH, DISCARD, KEEP
from autoresearch_tui.engine.metrics import read_tail


class Fairness:
    def __init__(self, config: Any, emit: Callable[[ev.Event], None]) -> None:
        self.config = config
        self.emit = emit
        self.contract = contract.detect(config.project)
        self.overridden = contract.command_overrides(config.command_argv())
        self.inert: list[str] = []
        self.measured_limit: float | None = None
        self.cpu: dict[str, list[float]] = {}  # commit -> CPU seconds of each run
        self.prints: dict[str, list[tuple]] = {}  # commit -> fingerprint of each run
        self.best_cpu: float | None = None
        self.not_kept: list[str] = []  # summary lines: candidates refused for their compute
        self.budget_note = ""

    # -- what the engine asks --------------------------------------------------------------
    def announce(self) -> None:
        if self.overridden:
            self.emit(ev.Notice(message="held (set by the train command's --name=value, so edits in "
                                        f"{self.config.train_script} would have no effect): "
                                        + ", ".join(self.overridden)))

    def limit(self) -> float:
        cfg = self.config
        if cfg.time_limit:
            return cfg.time_limit
        if self.measured_limit is not None:
            return self.measured_limit
        return contract.baseline_limit(cfg.time_budget or 0, cfg.time_limit_factor)

    def held(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*self.overridden, *self.inert]))

    def agent_note(self) -> str:
        if not self.held():
            return ""
        return ("Do not edit these names, edits to them have no effect (set again by the train command or a "
                "config file): " + ", ".join(self.held()))

    def retry_oom(self) -> bool:
        if self.contract.reads_batch_scale:
            return True
        self.emit(ev.Notice(message=f"out of memory; no retry with a smaller batch: the script does not read "
                                    f"{contract.BATCH_SCALE_VAR}", level="warning"))
        return False

    def summary_notes(self) -> list[str]:
        notes = [f"Budget contract: {self.budget_note}"] if self.budget_note else []
        if self.overridden:
            notes.append("Held (set by the train command): " + ", ".join(self.overridden))
        notes += [inert.message(name)[:1].upper() + inert.message(name)[1:] for name in self.inert]
        if self.not_kept:
            notes.append("Not kept for their compute (iteration-count project, tolerance "
                         f"{contract.COMPUTE_TOLERANCE:g}x the best's CPU time): " + "; ".join(self.not_kept))
        return notes

    def adjustments(self, adjustments: dict) -> dict:
        return contract.annotate(adjustments, self.contract.unread)

    # -- the decision hook -----------------------------------------------------------------
    def judge(self, n: int, records: list, status: str, reason: str, description: str, parent: str,
              meta: dict) -> tuple[str, str]:
        """Called with every decision before it is recorded; may turn a keep into a discard."""
        commit = records[0].commit
        for record in records:
            if record.outcome.cpu_s is not None:
                self.cpu.setdefault(commit, []).append(record.outcome.cpu_s)
            if record.metric is not None:
                text = read_tail(record.outcome.log_path)
                self.prints.setdefault(commit, []).append(inert.fingerprint(text, record.metric))
        cpu = _mean(self.cpu.get(commit))
        if n == 0:
            if status != CRASH:
                self._baseline(records[0])
                self.best_cpu = cpu
            return status, reason
        if status == CRASH:
            return status, reason
        self._check_inert(commit, parent, description, meta)
        if contract.more_compute(cpu, self.best_cpu):
            why = contract.compute_reason(cpu, self.best_cpu)  # type: ignore[arg-type]
            if status == KEEP and self.contract.by_iterations and not _varied(meta, self.config.vary):
                self.not_kept.append(f"#{n} {description} ({cpu / self.best_cpu:.2f}x)")  # type: ignore[operator]
                self.emit(ev.Notice(message=f"#{n} {why}", level="warning"))
                return DISCARD, why
            self.emit(ev.Notice(message=f"#{n} used {cpu / self.best_cpu:.2f}x the best's CPU time"))  # type: ignore[operator]
        if status == KEEP:
            self.best_cpu = cpu if cpu is not None else self.best_cpu
        return status, reason

    # -- inside ----------------------------------------------------------------------------
    def _baseline(self, record: Any) -> None:
        cfg = self.config
        training = record.summary.get("training_seconds")
        training = float(training) if isinstance(training, (int, float)) else None
        duration = record.outcome.duration_s
        self.budget_note = contract.budget_line(self.contract, cfg.time_budget or 0, duration, training)
        level = "info" if self.contract.reads_budget and not self.contract.unread else "warning"
        self.emit(ev.Notice(message=f"budget contract: {self.budget_note}", level=level))
        if not cfg.time_limit:
            self.measured_limit = round(contract.limit_after_baseline(
                cfg.time_budget or 0, cfg.time_limit_factor, duration, training), 1)
            self.emit(ev.Notice(message=f"hard limit per run: {self.measured_limit:g} s (budget plus the "
                                        f"baseline's start-up and evaluation, x{cfg.time_limit_factor:g})"))

    def _check_inert(self, commit: str, parent: str, description: str, meta: dict) -> None:
        mine, theirs = self.prints.get(commit), self.prints.get(parent) or []
        if not mine or mine[0] not in theirs:
            return
        name = meta.get("constant")
        parent_varies = len(set(theirs)) > 1
        if isinstance(name, str) and meta.get("old") != meta.get("new"):
            if name not in self.inert:
                self.inert.append(name)
                self.emit(ev.Notice(message=inert.message(name), level="warning"))
        elif parent_varies:
            self.emit(ev.Notice(message=f"the edit '{description}' had no effect: its run is bit-identical to "
                                        "its parent's", level="warning"))


def _mean(values: list[float] | None) -> float | None:
    return sum(values) / len(values) if values else None


def _varied(meta: dict, vary: list[str]) -> bool:
    """The user named this constant in `vary`: buying compute with it is allowed."""
    name = meta.get("constant")
    return isinstance(name, str) and name.lower() in {v.lower() for v in vary}


def doctor_lines(config: Any) -> list[tuple[str, bool, str]]:
    """Static findings for `doctor` (never fatal)."""
    project = Path(config.project)
    found = contract.detect(project)
    lines = []
    if found.reads_budget:
        lines.append(("time budget", True, f"the script reads {contract.BUDGET_VAR}"))
    elif found.own_clock:
        lines.append(("time budget", True, f"the script trains to a time budget of its own; it does not read "
                                           f"{contract.BUDGET_VAR}"))
    else:
        lines.append(("time budget", True, f"the script does not read {contract.BUDGET_VAR} (iteration count?): "
                                           "compute-buying changes are held and measured"))
    if found.unread:
        lines.append(("platform variables", True, "not read by the script: " + ", ".join(found.unread)))
    overridden = contract.command_overrides(config.command_argv())
    if overridden:
        lines.append(("held by the train command", True,
                      f"{', '.join(overridden)}: set by --name=value in the train command, so edits to them in "
                      f"{config.train_script} would have no effect; they are never proposed"))
    return lines
