"""Progress reports and the final summary files of a session (Phase 2.6 and Phase 3)."""

from __future__ import annotations

import datetime as _dt
import time
from pathlib import Path
from typing import Any, Sequence

from autoresearch_tui.agents.base import Attempt
from autoresearch_tui.engine import summary
from autoresearch_tui.engine.config import ResearchConfig
from autoresearch_tui.engine.hardware import Platform
from autoresearch_tui.engine.noise import NoiseModel, default_z
from autoresearch_tui.engine.results import ResultRow
from autoresearch_tui.engine.session import write_atomic

SUMMARY_FILE = "autoresearch-summary.md"


def progress(cfg: ResearchConfig, rows: Sequence[ResultRow], history: Sequence[Attempt], n: int,
             started: float) -> str:
    last = history[-1].meta.get("constant") if history else None
    direction = f"tuning {last}" if last else "exploring"
    return summary.render_progress(rows, iteration=n, metric=cfg.metric, direction=cfg.direction,
                                   elapsed_s=time.time() - started, max_iterations=cfg.max_iterations,
                                   current_direction=direction)


SPEND_KEYS = ("tokens_in", "tokens_out", "cost_usd")


def add_spend(spent: dict[str, float], meta: dict[str, Any]) -> None:
    """Add an agent's token counts and cost (from a proposal's meta) to the running totals."""
    for key in SPEND_KEYS:
        value = meta.get(key)
        if isinstance(value, (int, float)):
            spent[key] = spent.get(key, 0.0) + value


def spend_note(spent: dict[str, float]) -> str | None:
    if not spent.get("tokens_in") and not spent.get("tokens_out"):
        return None
    cost = f", ${spent['cost_usd']:.2f}" if spent.get("cost_usd") else ""
    return f"Agent spend: {spent['tokens_in']:,.0f} tokens in, {spent['tokens_out']:,.0f} tokens out{cost}"


def noise_note(cfg: ResearchConfig, rows: Sequence[ResultRow], model: NoiseModel | None,
               confirming: tuple[int, int] = (0, 0)) -> str | None:
    """The noise estimate, the runs spent confirming (candidates' re-runs, the best's runs beside
    them) and the kept changes whose gain is within the noise (maybe luck)."""
    if model is None or model.sigma is None:
        return None
    runs = {commit[:7]: values for commit, values in model.groups.items()}
    kept: list[tuple[str, str, list[float]]] = []
    for r in rows:
        if r.status == "keep" and (not kept or kept[-1][0] != r.commit):
            kept.append((r.commit, r.description, runs.get(r.commit, [])))
    z = default_z(cfg.keep_policy) if cfg.noise_z is None else cfg.noise_z
    lines = summary.noise_notes(model.describe(), z, cfg.keep_policy, kept, model.sigma, cfg.direction or "min",
                                confirming[0], confirming[1], len(rows) + confirming[1])
    return "\n- ".join(lines)


def final(cfg: ResearchConfig, session_root: Path, rows: Sequence[ResultRow], platform: Platform | None,
          started: float, spent: dict[str, Any], model: NoiseModel | None = None,
          confirming: tuple[int, int] = (0, 0), fair: Any = None) -> Path:
    """autoresearch-summary.md in the project (and a copy in the session), plus the paper tables."""
    text = summary.render_summary(
        rows, metric=cfg.metric, direction=cfg.direction, session=cfg.branch,
        platform=platform.describe() if platform else None, budget_s=cfg.time_budget,
        date_range=date_range(started, time.time()),
        adjustments=(fair.adjustments(platform.adjustments) if fair else platform.adjustments) if platform else None,
        extra_metrics_note="\n- ".join(filter(None, [noise_note(cfg, rows, model, confirming), spend_note(spent),
                                                     *(fair.summary_notes() if fair else [])])) or None,
    )
    path = cfg.project.resolve() / SUMMARY_FILE  # not cfg.path(): resolving would follow a planted link
    summary.write_summary(path, text)
    write_atomic(session_root / SUMMARY_FILE, text)
    for fmt in ("csv", "latex"):
        table = summary.experiments_table(rows, metric=cfg.metric, direction=cfg.direction, fmt=fmt)
        write_atomic(session_root / f"experiments.{'tex' if fmt == 'latex' else fmt}", table)
    return path


def date_range(start: float, end: float) -> str:
    a = _dt.datetime.fromtimestamp(start).strftime("%Y-%m-%d %H:%M")
    b = _dt.datetime.fromtimestamp(end).strftime("%Y-%m-%d %H:%M")
    return f"{a} – {b}"
