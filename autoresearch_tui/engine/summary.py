"""Reports over results rows: the Phase 3 summary, the Phase 2.6 progress report and the
all-experiments table (Markdown, LaTeX, CSV). Pure functions; the only I/O is write_summary.

Iteration numbers are row positions: the baseline (first row) is iteration 0.
"""

from __future__ import annotations

import csv
import gc
import io
import re
from collections.abc import Iterable, Sequence
from operator import attrgetter, itemgetter
from pathlib import Path

from autoresearch_tui.engine.analysis import (
    _best_of, _better, _candidates, _running, baseline_row, best_index, kept_gains, running_best,
)
from autoresearch_tui.engine.categories import category_for_text
from autoresearch_tui.engine.durations import format_clock, format_duration
from autoresearch_tui.engine import safefs, sanitize
from autoresearch_tui.engine.results import ResultRow, guess_direction

# category_for_text costs up to ~80 us a description; on huge files only the most recent
# experiments are categorised so a summary stays well under a second.
CATEGORY_WINDOW = 1000
FAILED_PER_CATEGORY = 15
TOP_IMPROVEMENTS = 10
# The summary's All Experiments table lists the most recent experiments only; the complete table
# is experiments_table(fmt="csv" | "latex" | "md") (`summary --format csv`, experiments.csv).
EXPERIMENTS_LISTED = 1000
_DASH = "—"
_status_of = attrgetter("status")
_metric_of = attrgetter("metric")
_raw_of = attrgetter("raw_status")
_commit_of = attrgetter("commit")
_description_of = attrgetter("description")


# ---------------------------------------------------------------------------
# Formatting


def _fmt(value: float | None) -> str:
    return _DASH if value is None else f"{value:.6f}"


def _pct(delta: float, base: float | None) -> str:
    return "n/a" if not base else f"{delta / abs(base) * 100:+.2f}%"


format_budget = format_duration  # the spec's "Time budget / run" line


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _status(r: ResultRow) -> str:
    # Show the written word only when it says something else ("run", "baseline"), not "KEEP".
    return f"{r.status} ({r.raw_status})" if r.raw_status and r.raw_status.lower() != r.status else r.status


def _table(header: Sequence[str], body: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("-" * (len(h) + 2) for h in header) + "|"]
    lines.extend("| " + " | ".join(_cell(c) for c in row) + " |" for row in body)
    return lines


def _direction_words(direction: str) -> str:
    return "higher is better" if direction == "max" else "lower is better"


# ---------------------------------------------------------------------------
# The all-experiments table


def _records(rows: Sequence[ResultRow], direction: str,
             best: list[float | None] | None = None) -> list[tuple[int, ResultRow, float | None]]:
    best = best if best is not None else running_best(rows, direction)
    out = []
    before: float | None = None
    for i, r in enumerate(rows):
        m = r.metric
        out.append((i, r, m - before if m is not None and before is not None else None))
        before = best[i]
    return out


def _md_text(text: str) -> str:
    # Fast path: rows read from results.tsv hold neither newlines nor pipes.
    return _cell(text) if "|" in text or "\n" in text or "\r" in text else text


_LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
                  "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "\\": r"\textbackslash{}"}
_LATEX_RE = re.compile(r"[&%$#_{}~^\\]")


def latex_escape(text: str) -> str:
    return _LATEX_RE.sub(lambda m: _LATEX_SPECIAL[m.group()], " ".join(text.split()))


def experiments_table(rows: Sequence[ResultRow], *, metric: str, direction: str | None = None,
                      fmt: str = "md", _best: list[float | None] | None = None, _first: int = 0) -> str:
    """Every experiment: # | Commit | Metric | Δ vs best before | Status | Description.

    (`_first`, Markdown only: list the rows from that iteration on; the summary's cap.)"""
    direction = direction or guess_direction(metric)
    if fmt == "md":  # one pass, no intermediate records: this is the hot path on big files
        lines = _table(("#", "Commit", "Metric", "Δ vs best before", "Status", "Description"), ())
        best = _best if _best is not None else running_best(rows, direction)
        first = max(0, min(_first, len(rows)))
        before: float | None = best[first - 1] if first else None
        add = lines.append
        for i in range(first, len(rows)):
            r = rows[i]
            m = r.metric
            metric_s = _DASH if m is None else f"{m:.6f}"
            delta_s = _DASH if m is None or before is None else f"{m - before:+.6f}"
            status = _md_text(_status(r)) if r.raw_status else r.status
            add(f"| {i} | {_md_text(r.commit)} | {metric_s} | {delta_s} | {status} | "
                f"{_md_text(r.description)} |")
            before = best[i]
        return "\n".join(lines) + "\n"
    recs = _records(rows, direction, _best)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(("iteration", "commit", metric or "metric", "delta_vs_best_before", "status",
                    "description"))
        for i, r, d in recs:
            w.writerow((i, r.commit, "" if r.metric is None else f"{r.metric:.6f}",
                        "" if d is None else f"{d:+.6f}", _status(r), r.description))
        return buf.getvalue()
    if fmt == "latex":
        lines = [f"% {latex_escape(metric)} ({_direction_words(direction)})",
                 r"\begin{tabular}{rlrrll}", r"\hline",
                 r"\# & Commit & Metric & $\Delta$ vs best before & Status & Description \\",
                 r"\hline"]
        for i, r, d in recs:
            cells = (str(i), latex_escape(r.commit), "--" if r.metric is None else f"{r.metric:.6f}",
                     "--" if d is None else f"${d:+.6f}$", latex_escape(_status(r)),
                     latex_escape(r.description))
            lines.append(" & ".join(cells) + r" \\")
        lines += [r"\hline", r"\end{tabular}"]
        return "\n".join(lines) + "\n"
    raise ValueError(f"fmt must be md, latex or csv, not {fmt!r}")


# ---------------------------------------------------------------------------
# Phase 2.6 progress report


def render_progress(rows: Sequence[ResultRow], *, iteration: int, metric: str,
                    direction: str | None, elapsed_s: float | None, max_iterations: int | None,
                    current_direction: str) -> str:
    direction = direction or guess_direction(metric)
    best_i = best_index(rows, direction)
    best = rows[best_i] if best_i >= 0 else None
    base = baseline_row(rows)
    if best is None:
        best_line = f"{_DASH} (no run with a metric yet)"
        vs = "n/a"
    else:
        best_line = f"{_fmt(best.metric)} (iteration {best_i}, commit {best.commit})"
        if base is not None and base.metric is not None:
            delta = best.metric - base.metric  # type: ignore[operator]
            vs = f"{delta:+.6f} ({_pct(delta, base.metric)})"
        else:
            vs = "n/a"
    start = max(0, len(rows) - 5)
    recent = [(str(i), r.commit, _fmt(r.metric), _status(r), r.description)
              for i, r in reversed(list(enumerate(rows[start:], start)))]
    lines = [f"## AutoResearch Progress — Iteration {iteration}", "",
             f"**Best so far:** {best_line}", "",
             f"**vs. Baseline:** {vs}", "",
             f"**Iterations:** {iteration} completed / "
             f"{max_iterations if max_iterations is not None else 'unlimited'}", "",
             f"**Time elapsed:** {format_clock(elapsed_s) if elapsed_s is not None else 'unknown'}", "",
             "**Recent results (last 5):**", ""]
    lines += _table(("Iter", "Commit", "Metric", "Status", "Change"), recent)
    lines += ["", f"**Current direction:** {current_direction or 'not set'}"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# Phase 3 summary


def _outcome(r: ResultRow, best_then: float | None, direction: str) -> str:
    if r.status == "crash":
        return "crash"
    if r.metric is None:
        return "no metric"
    if best_then is None:
        return f"{_status(r)}: {_fmt(r.metric)}"
    delta = r.metric - best_then
    if abs(delta) < 5e-7:  # equal at the file's six decimals
        return f"no change: {_fmt(r.metric)}"
    word = "not kept" if _better(r.metric, best_then, direction) else "regression"
    return f"{word}: {_fmt(r.metric)} ({delta:+.6f} vs best then)"


_SEED = re.compile(r"\bseed\b", re.I)


def _next_steps(rows: Sequence[ResultRow], direction: str, gains, cats: dict[int, str],
                best: ResultRow | None, base: ResultRow | None, statuses: list[str] | None = None) -> list[str]:
    n = len(rows) - 1  # iterations after the baseline
    positive = [g for g in gains if g[2] > 0] if direction == "max" else [g for g in gains if g[2] < 0]
    tries: dict[str, int] = {}
    kept: dict[str, int] = {}
    gain: dict[str, float] = {}
    for i, cat in cats.items():
        tries[cat] = tries.get(cat, 0) + 1
        if rows[i].status == "keep":
            kept[cat] = kept.get(cat, 0) + 1
    for i, r, d in positive:
        if i in cats:
            gain[cats[i]] = gain.get(cats[i], 0.0) + abs(d)
    steps: list[str] = []
    if gain:
        top = max(gain, key=gain.__getitem__)
        mine = [(i, r, d) for i, r, d in positive if cats.get(i) == top]
        i, r, d = mine[0]
        steps.append(f"Explore further in **{top}**: it gave {len(mine)} of the {len(positive)} "
                     f"kept gains ({gain[top]:.6f} in total); the biggest was #{i} "
                     f"\"{_cell(r.description)}\" ({d:+.6f}). Try nearby variations of it.")
    elif n > 0:
        steps.append(f"No kept change improved on the baseline in {n} iterations: check the "
                     "baseline, then try bolder changes in another category.")
    failed = sorted((c for c in tries if not kept.get(c) and tries[c] >= 2), key=lambda c: -tries[c])
    if statuses is None:
        statuses = list(map(_status_of, rows))
    crashes = statuses.count("crash") - (statuses[0] == "crash" if statuses else 0)  # after the baseline
    if crashes and (crashes >= 3 or crashes / max(n, 1) >= 0.2):
        last_crash = rows[len(statuses) - 1 - statuses[::-1].index("crash")]
        steps.append(f"Look at the crashes: {crashes} of {n} runs crashed "
                     f"({crashes / max(n, 1):.0%}), the last one \"{_cell(last_crash.description)}\"; "
                     "fix their cause before spending more runs.")
    last_gain = max(map(itemgetter(0), positive), default=0)
    since = len(rows) - 1 - last_gain
    if positive and n >= 5 and since >= max(5, n // 4):
        steps.append(f"Plateau: no improvement in the last {since} experiments (since #{last_gain}); "
                     "change direction (another category or a larger change) instead of small tweaks.")
    if failed:
        listed = ", ".join(f"{c} ({tries[c]} tries)" for c in failed)
        steps.append(f"Deprioritise {listed}: none of those changes was kept.")
    seeds = []
    if "seed" in "\n".join(map(_description_of, map(itemgetter(1), positive))).lower():  # one scan, not one per gain
        seeds = [i for i, r, _ in positive if _SEED.search(r.description)]
    keeps, decided = _keep_rate(statuses)
    if seeds:
        steps.append("Kept seed changes (#" + ", #".join(map(str, seeds)) + ") are noise, not "
                     "improvements: re-test them against a re-run baseline.")
    elif decided >= 4 and keeps / decided > 0.5:
        steps.append(f"Keep rate is {keeps / decided:.0%}: some gains are likely noise; run the "
                     "baseline twice and keep only changes beyond about 2 sigma.")
    steps = steps[:4]
    if len(steps) < 2:
        steps.append("Re-run the baseline to measure run-to-run noise and treat gains smaller than "
                     "about 2 sigma of it as noise.")
    if best is not None and best is not base:
        pct = _pct(best.metric - base.metric, base.metric) if base and base.metric is not None else "n/a"  # type: ignore[operator]
        steps.append(f"Confirm best commit `{best.commit}` ({_fmt(best.metric)}, {pct} vs baseline) "
                     "by re-running it and the baseline, then merge it.")
    elif best is not None:
        steps.append(f"Nothing beat the baseline `{best.commit}`; do not merge — keep exploring.")
    else:
        steps.append("No run produced a metric yet: fix the baseline run first.")
    if len(steps) < 3:
        steps.append(f"Only {n} iteration(s) so far: run more before drawing conclusions.")
    return steps


def render_summary(rows: Sequence[ResultRow], *, metric: str, direction: str | None,
                   session: str | None, platform: str | None, budget_s: float | None,
                   date_range: str | None, adjustments: dict | None = None,
                   skipped: Iterable[tuple[int, str]] = (), extra_metrics_note: str | None = None,
                   failed_per_category: int | None = FAILED_PER_CATEGORY) -> str:
    """The Phase 3 research summary (autoresearch-summary.md) as Markdown."""
    # Tens of thousands of short-lived tuples and strings on big files: cycle collections would
    # walk every row again and again for nothing (as in parse_results).
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _render_summary(rows, metric, direction, session, platform, budget_s, date_range, adjustments,
                               skipped, extra_metrics_note, failed_per_category)
    finally:
        if enabled:
            gc.enable()


def _render_summary(rows, metric, direction, session, platform, budget_s, date_range, adjustments, skipped,
                    extra_metrics_note, failed_per_category) -> str:
    direction = direction or guess_direction(metric)
    rows = list(rows)
    # The columns used by everything below, read once (on 100,000 rows every pass costs ~5 ms).
    statuses = list(map(_status_of, rows))
    metrics = list(map(_metric_of, rows))
    candidates = _candidates(rows, statuses, metrics)
    rb = _running(candidates, direction)
    best_i = _best_of(candidates, direction)
    base, best = baseline_row(rows), rows[best_i] if best_i >= 0 else None
    gains = kept_gains(rows, direction, _statuses=statuses, _metrics=metrics)
    first_listed = max(0, len(rows) - EXPERIMENTS_LISTED)  # All Experiments: the most recent only
    window = max(1, len(rows) - CATEGORY_WINDOW)
    memo: dict[str, str] = {}
    cats = {i: memo.get(rows[i].description) or memo.setdefault(
        rows[i].description, category_for_text(rows[i].description)) for i in range(window, len(rows))}
    out = ["# AutoResearch Summary", "",
           f"**Research session:** {session or 'unknown'}", "",
           f"**Platform:** {platform or 'unknown'}", "",
           f"**Date:** {date_range or 'unknown'}", "",
           f"**Total iterations:** {max(len(rows) - 1, 0)}", "",
           f"**Time budget / run:** {format_budget(budget_s)}", "",
           "## Results", ""]
    if base is not None and best is not None and base.metric is not None:
        delta = best.metric - base.metric  # type: ignore[operator]
        improvement = f"{delta:+.6f} ({_pct(delta, base.metric)})"
    else:
        improvement = "n/a"
    out += _table(("Baseline metric", "Best metric", "Improvement", "Best commit"),
                  [(_fmt(base.metric if base else None), _fmt(best.metric if best else None),
                    improvement, best.commit if best else _DASH)])
    out += ["", f"Metric: `{metric}` ({_direction_words(direction)}).", "",
            "## Top Improvements (kept commits)", ""]
    top = [(str(k), r.commit, f"{_fmt(r.metric)} ({d:+.6f})", r.description)
           for k, (_, r, d) in enumerate(gains[:TOP_IMPROVEMENTS], 1)]
    out += _table(("Rank", "Commit", "Metric", "Description"),
                  top or [(_DASH, _DASH, _DASH, "no kept change after the baseline")])
    out.append("")
    if len(gains) > TOP_IMPROVEMENTS:
        where = "All Experiments" if not first_listed else "the full experiments table (see All Experiments)"
        out += [f"{len(gains) - TOP_IMPROVEMENTS} more kept changes are in {where}.", ""]
    out += ["Metric in parentheses: gain over the best before it (keeps that did not beat it are not ranked).", "",
            "## What Didn't Work", ""]
    groups: dict[str, list[list[str]]] = {}
    for i in range(window, len(rows)):
        r = rows[i]
        if r.status in ("discard", "crash"):
            groups.setdefault(cats[i], []).append(
                [cats[i], f"#{i} {r.description}", _outcome(r, rb[i - 1], direction)])
    body: list[list[str]] = []
    for cat in sorted(groups, key=lambda c: (-len(groups[c]), c)):
        items = groups[cat]
        shown = items if failed_per_category is None else items[:failed_per_category]
        body += shown
        if len(items) > len(shown):
            body.append([cat, f"… {len(items) - len(shown)} more", "see All Experiments"])
    out += _table(("Category", "Description", "Outcome"),
                  body or [[_DASH, "every change was kept" if len(rows) > 1 else "no experiment after the baseline yet",
                          _DASH]])
    if window > 1:
        out += ["", f"(Categories cover the last {len(rows) - window} experiments.)"]
    out += ["", "## Recommended Next Steps", ""]
    out += [f"- {s}" for s in _next_steps(rows, direction, gains, cats, best, base, statuses)]
    out += _statistics(rows, metric, direction, extra_metrics_note, statuses, metrics)
    out += ["", "## Platform", "", f"- Platform: {platform or 'unknown'}"]
    if adjustments:
        out.append("- Adjustments:")
        out += [f"  - {k}: {v}" for k, v in adjustments.items()]
    else:
        out.append("- Adjustments: none recorded")
    out += ["", "## All Experiments", ""]
    if first_listed:
        out += [f"Only the last {len(rows) - first_listed:,} of {len(rows):,} experiments are listed "
                f"(#{first_listed} to #{len(rows) - 1}). The full table: `autoresearch-tui summary results.tsv "
                "--format csv` (or `--format latex`); a finished session also has it as `experiments.csv` in "
                "its folder.", ""]
    out.append(experiments_table(rows, metric=metric, direction=direction, _best=rb,
                                 _first=first_listed).rstrip("\n"))
    skipped = list(skipped)
    if skipped:
        listed = "; ".join(f"line {n}: {why}" for n, why in skipped[:20])
        more = f"; and {len(skipped) - 20} more" if len(skipped) > 20 else ""
        out += ["", f"**Note:** {len(skipped)} line(s) of results.tsv were not read ({listed}{more})."]
    return "\n".join(out) + "\n"


def _keep_rate(statuses: list[str]) -> tuple[int, int]:
    """(keeps, keeps + discards) after the baseline: the baseline is kept by definition."""
    after = statuses[1:]
    keeps = after.count("keep")
    return keeps, keeps + after.count("discard")


def _statistics(rows: Sequence[ResultRow], metric: str, direction: str,
                extra_note: str | None, statuses: list[str] | None = None,
                metrics: list[float | None] | None = None) -> list[str]:
    if statuses is None:
        statuses = list(map(_status_of, rows))
    counts = {"keep": 0, "discard": 0, "crash": 0}
    others = set(statuses).difference(counts)
    for status in (*counts, *sorted(others, key=statuses.index)):  # others in order of appearance
        counts[status] = statuses.count(status)
    raw: dict[str, int] = {}
    written = list(map(_raw_of, rows))
    if written.count("") < len(written):  # rare: only files with other status words
        for word, status in zip(written, statuses):
            if word and word.lower() != status:
                raw[f"{word} → {status}"] = raw.get(f"{word} → {status}", 0) + 1
    keeps, decided = _keep_rate(statuses)
    rate = f"{keeps}/{decided} = {keeps / decided:.1%}" if decided else "n/a"
    out = ["", "## Statistics", ""]
    out += _table(("Status", "Count"), [(k, str(v)) for k, v in counts.items()])
    out += ["", f"- Experiments: {len(rows)} (baseline + {max(len(rows) - 1, 0)} iterations)",
            f"- Keep rate (keep / (keep + discard), baseline excluded): {rate}",
            f"- Runs without a metric: {(metrics if metrics is not None else list(map(_metric_of, rows))).count(None)}",
            f"- Metric: `{metric}` ({_direction_words(direction)})"]
    if raw:
        out.append("- Statuses as written: " + ", ".join(f"{k} ({v})" for k, v in raw.items()))
    extra = extra_note
    if extra is None and rows and rows[0].extra:
        extra = "Other columns (not summarised): " + ", ".join(rows[0].extra)
    if extra:
        out.append(f"- {extra}")
    return out


def noise_notes(noise_text: str, z: float, policy: str, kept: Sequence[tuple[str, str, list[float]]],
                sigma: float, direction: str, reruns: int, best_reruns: int, total_runs: int) -> list[str]:
    """Summary lines on noise: the measured noise, the runs spent confirming, and the keeps within
    the noise. `kept`: (commit, description, every run of it, re-measures included) per kept
    commit in order, the baseline first; a keep is within the noise when its gain over the keep
    before it is at most z standard errors (sigma x sqrt(1/k + 1/m), all runs of both)."""
    out = [f"Noise: {noise_text} (keep policy: {policy}, z = {z:g})"]
    if reruns or best_reruns:
        spent = reruns + best_reruns
        out.append(f"Runs spent confirming: {spent} of {total_runs} ({spent / max(total_runs, 1):.0%}): "
                   f"{reruns} re-runs of candidates, {best_reruns} runs of the best beside them")
    within = []
    for (_, _, before), (commit, description, runs) in zip(kept, kept[1:]):
        if not before or not runs:
            continue
        gain = sum(before) / len(before) - sum(runs) / len(runs)
        gain = -gain if direction == "max" else gain
        se = sigma * (1 / len(runs) + 1 / len(before)) ** 0.5
        if gain <= z * se:
            score = f"{gain / se:+.1f}" if se else "n/a"
            within.append(f"{commit} {description} ({score} standard errors over {len(runs)} vs {len(before)} runs)")
    if within:
        out.append(f"Kept changes within the noise (gain at most {z:g} standard errors; may be luck, "
                   "re-run to confirm): " + "; ".join(within))
    elif len(kept) > 1:
        out.append(f"Every kept change beats the keep before it by more than {z:g} standard errors")
    return out


def write_summary(path: Path | str, text: str) -> None:
    """Write atomically: a reader sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Never through a symlink (a committed or planted one would redirect the write elsewhere).
    safefs.write_atomic(path, sanitize.block(text).encode("utf-8"), sync=True)
