"""Reports: the Phase 3 summary, the Phase 2.6 progress report and the experiments table."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from conftest import REAL_RESULTS

from autoresearch_tui.engine.results import ResultRow, parse_results, read_results
from autoresearch_tui.engine.analysis import best_row
from autoresearch_tui.engine.summary import (
    experiments_table,
    format_budget,
    kept_gains,
    latex_escape,
    render_progress,
    render_summary,
    running_best,
    write_summary,
)


REAL = REAL_RESULTS if REAL_RESULTS.is_dir() else None
REAL_FILES = sorted(REAL.glob("*.tsv")) if REAL else []

SUMMARY_HEADINGS = [
    "# AutoResearch Summary", "**Research session:**", "**Platform:**", "**Date:**",
    "**Total iterations:**", "**Time budget / run:**", "## Results",
    "| Baseline metric | Best metric | Improvement | Best commit |",
    "## Top Improvements (kept commits)", "| Rank | Commit | Metric | Description |",
    "## What Didn't Work", "| Category | Description | Outcome |",
    "## Recommended Next Steps", "## Statistics", "## Platform", "## All Experiments",
    "| # | Commit | Metric | Δ vs best before | Status | Description |",
]


def _summary(rows, metric, direction, **kw) -> str:
    args = dict(session="autoresearch/mar10", platform="MPS", budget_s=300, date_range=None)
    args.update(kw)
    return render_summary(rows, metric=metric, direction=direction, **args)


def _independent_best(path: Path, metric: str, direction: str) -> tuple[float, str, int]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    kept = [r for r in rows if r["status"].strip().lower() == "keep"]
    values = [float(r[metric]) for r in kept]
    best = min(values) if direction == "min" else max(values)
    commit = next(r["commit"] for r in kept if float(r[metric]) == best)
    return best, commit, len(kept)


@pytest.mark.skipif(not REAL_FILES, reason="real-results fixtures not available")
@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: p.name)
def test_real_summary(path: Path) -> None:
    table = read_results(path)
    text = _summary(table.rows, table.metric, table.direction, skipped=table.skipped)
    positions = [text.index(h) for h in SUMMARY_HEADINGS]
    assert positions == sorted(positions)
    best, commit, keeps = _independent_best(path, table.metric, table.direction)
    results = text.split("## Results")[1].split("\n\n")[1].splitlines()[2]
    cells = [c.strip() for c in results.strip("|").split("|")]
    assert float(cells[1]) == pytest.approx(best)
    assert cells[3] == commit
    assert f"| keep | {keeps} |" in text
    assert f"**Total iterations:** {len(table.rows) - 1}" in text
    assert "**Time budget / run:** 5 min" in text
    steps = text.split("## Recommended Next Steps")[1].split("## Statistics")[0]
    assert 3 <= steps.count("\n- ") <= 5
    assert commit in steps
    experiments = text.split("## All Experiments")[1].strip().splitlines()
    assert len(experiments) == 2 + len(table.rows)


@pytest.mark.skipif(not REAL_FILES, reason="real-results fixtures not available")
def test_real_summary_details() -> None:
    by_name = {p.name.split("__")[0]: read_results(p) for p in REAL_FILES}
    bervaso = by_name["Bervaso"]
    text = _summary(bervaso.rows, bervaso.metric, bervaso.direction)
    top = text.split("## Top Improvements (kept commits)")[1].split("## What")[0]
    # Gains vs the previous keep: exp8 -0.017869, exp11 -0.001836, exp15, exp20, exp22.
    assert re.findall(r"\| (\d) \| (\w+) \|", top) == [
        ("1", "28c91c1"), ("2", "5980576"), ("3", "56539e4"), ("4", "1594635"), ("5", "6068356")]
    assert "regression: 1.338380 (+0.053008 vs best then)" in text
    assert "| 24 | fe6c00e | — | — | crash |" in text
    # The baseline is kept by definition: 5 keeps of 23 decided runs after it.
    assert "Keep rate (keep / (keep + discard), baseline excluded): 5/23 = 21.7%" in text
    mlx = by_name["trevin-creator"]
    text = _summary(mlx.rows, mlx.metric, mlx.direction, extra_metrics_note=None)
    assert "discard (run)" in text and "higher is better" in text
    assert "adjusted_score" in text
    assert "Look at the crashes" in text  # 13 of 20 crashed


def _rows(spec: list[tuple[str, float | None, str]]) -> list[ResultRow]:
    return [ResultRow(c, m, 1.0, s, f"change {c}") for c, m, s in spec]


def test_top_improvements_ranking() -> None:
    rows = _rows([
        ("base000", 1.000, "keep"),
        ("aaaaaaa", 0.990, "keep"),     # gain 0.010
        ("bbbbbbb", 0.995, "discard"),
        ("ccccccc", 0.960, "keep"),     # gain 0.030 (biggest)
        ("ddddddd", None, "crash"),
        ("eeeeeee", 0.955, "keep"),     # gain 0.005
        ("fffffff", 0.935, "keep"),     # gain 0.020
    ])
    gains = kept_gains(rows, "min")
    assert [r.commit for _, r, _ in gains] == ["ccccccc", "fffffff", "aaaaaaa", "eeeeeee"]
    assert [round(d, 6) for _, _, d in gains] == [-0.03, -0.02, -0.01, -0.005]
    text = _summary(rows, "val_bpb", "min")
    top = text.split("## Top Improvements (kept commits)")[1].split("## What")[0]
    assert re.findall(r"\| (\d) \| (\w+) \| ([\d.]+) \(([-+\d.]+)\)", top) == [
        ("1", "ccccccc", "0.960000", "-0.030000"), ("2", "fffffff", "0.935000", "-0.020000"),
        ("3", "aaaaaaa", "0.990000", "-0.010000"), ("4", "eeeeeee", "0.955000", "-0.005000")]
    assert "| base000 |" not in top  # the baseline is not ranked
    assert "| 0.935000 | -0.065000 (-6.50%) | fffffff |" in text
    # Maximising: the same table read as accuracy ranks the opposite way.
    up = kept_gains(_rows([("b", 0.5, "keep"), ("x", 0.6, "keep"), ("y", 0.9, "keep")]), "max")
    assert [r.commit for _, r, _ in up] == ["y", "x"]


def test_best_and_running_best() -> None:
    rows = _rows([("a", 1.0, "keep"), ("b", 0.9, "discard"), ("c", 0.95, "keep"),
                  ("d", None, "crash"), ("e", 0.97, "keep")])
    assert best_row(rows, "min").commit == "c"  # discards are not candidates
    assert running_best(rows, "min") == [1.0, 1.0, 0.95, 0.95, 0.95]
    no_keeps = _rows([("a", 1.0, "discard"), ("b", 0.9, "discard"), ("c", None, "crash")])
    assert best_row(no_keeps, "min").commit == "b"  # fallback: every non-crash run
    assert best_row(no_keeps, "max").commit == "a"
    assert running_best([], "min") == [] and best_row([], "min") is None


def test_progress_report_format() -> None:
    rows = _rows([("base000", 1.0, "keep"), ("aaaaaaa", 0.98, "keep"), ("bbbbbbb", 1.01, "discard"),
                  ("ccccccc", None, "crash"), ("ddddddd", 0.97, "keep"), ("eeeeeee", 0.99, "discard"),
                  ("fffffff", 0.975, "discard")])
    text = render_progress(rows, iteration=6, metric="val_bpb", direction="min", elapsed_s=3725,
                           max_iterations=None, current_direction="optimizer: lower MATRIX_LR")
    lines = [ln for ln in text.splitlines() if ln]
    assert lines[0] == "## AutoResearch Progress — Iteration 6"
    assert lines[1] == "**Best so far:** 0.970000 (iteration 4, commit ddddddd)"
    assert lines[2] == "**vs. Baseline:** -0.030000 (-3.00%)"
    assert lines[3] == "**Iterations:** 6 completed / unlimited"
    assert lines[4] == "**Time elapsed:** 01:02"
    assert lines[5] == "**Recent results (last 5):**"
    assert lines[6] == "| Iter | Commit | Metric | Status | Change |"
    assert lines[8] == "| 6 | fffffff | 0.975000 | discard | change fffffff |"
    assert lines[11] == "| 3 | ccccccc | — | crash | change ccccccc |"
    assert len(lines) == 14 and lines[13] == "**Current direction:** optimizer: lower MATRIX_LR"
    limited = render_progress(rows, iteration=6, metric="val_bpb", direction=None, elapsed_s=59,
                              max_iterations=20, current_direction="x")
    assert "**Iterations:** 6 completed / 20" in limited and "**Time elapsed:** 00:00" in limited


def test_latex_escaping() -> None:
    assert latex_escape(r"a & b % c $ d # e _ f { g } h ~ i ^ j \ k") == (
        r"a \& b \% c \$ d \# e \_ f \{ g \} h \textasciitilde{} i \textasciicircum{} j "
        r"\textbackslash{} k")
    rows = [ResultRow("abc1234", 0.9, 1.0, "keep", "baseline 100% of LR_SCALE & co"),
            ResultRow("def5678", None, 0.0, "crash", "OOM {batch} ~2x")]
    tex = experiments_table(rows, metric="val_bpb", direction="min", fmt="latex")
    assert r"\begin{tabular}" in tex and r"\end{tabular}" in tex
    assert r"baseline 100\% of LR\_SCALE \& co \\" in tex
    assert r"OOM \{batch\} \textasciitilde{}2x \\" in tex
    assert r"\# & Commit & Metric & $\Delta$ vs best before & Status & Description \\" in tex
    assert "% val\\_bpb (lower is better)" in tex


def test_csv_round_trip() -> None:
    rows = _rows([("a", 1.0, "keep"), ("b", None, "crash"), ("c", 0.9, "keep")])
    rows[1].description = 'has, commas and "quotes"'
    rows[2].raw_status = "KEEP"  # a change of case only is not shown
    rows[0].raw_status = "baseline"
    out = experiments_table(rows, metric="val_bpb", direction="min", fmt="csv")
    parsed = list(csv.reader(io.StringIO(out)))
    assert parsed[0] == ["iteration", "commit", "val_bpb", "delta_vs_best_before", "status",
                         "description"]
    assert len(parsed) == 1 + len(rows)
    assert parsed[1][4] == "keep (baseline)"
    assert parsed[2] == ["1", "b", "", "", "crash", 'has, commas and "quotes"']
    assert parsed[3] == ["2", "c", "0.900000", "-0.100000", "keep", "change c"]
    with pytest.raises(ValueError):
        experiments_table(rows, metric="val_bpb", fmt="html")


def test_markdown_cells_are_escaped_and_skipped_noted() -> None:
    table = parse_results("commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
                          "a\t1.0\t1\tkeep\tbase | pipe\n\nb\t0.9\n")
    text = _summary(table.rows, table.metric, table.direction, skipped=table.skipped,
                    adjustments={"torch.compile": "disabled"}, budget_s=None)
    assert r"base \| pipe" in text
    assert "**Note:** 2 line(s) of results.tsv were not read" in text and "line 3: blank line" in text
    assert "  - torch.compile: disabled" in text and "**Time budget / run:** unknown" in text


def test_empty_and_budget_formats() -> None:
    text = _summary([], "val_bpb", "min")
    assert all(h in text for h in SUMMARY_HEADINGS)
    assert "**Total iterations:** 0" in text
    assert [format_budget(s) for s in (None, 30, 300, 90, 1800)] == [
        "unknown", "30 s", "5 min", "1 min 30 s", "30 min"]


def test_write_summary_atomic(tmp_path: Path) -> None:
    target = tmp_path / "out" / "autoresearch-summary.md"
    write_summary(target, "first\n")
    write_summary(target, "second ² \n")
    assert target.read_text(encoding="utf-8") == "second ² \n"
    assert [p.name for p in target.parent.iterdir()] == ["autoresearch-summary.md"]


def test_summary_100k_rows_fast(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    lines = ["commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"]
    best = 1.0
    for i in range(100_000):
        kind = i % 10
        if kind == 0:
            best -= 1e-6
            lines.append(f"{i:07x}\t{best:.6f}\t40.0\tkeep\traise MATRIX_LR step {i}\n")
        elif kind == 9:
            lines.append(f"{i:07x}\t0.000000\t0.0\tcrash\tsomething unusual {i}\n")
        else:
            lines.append(f"{i:07x}\t{best + kind / 1000:.6f}\t40.0\tdiscard\ttry depth {i}\n")
    path.write_text("".join(lines))
    table = read_results(path)
    text = _summary(table.rows, table.metric, table.direction)
    assert "**Total iterations:** 99999" in text
    # All Experiments lists the most recent 1,000 and says where the full table is
    experiments = text.split("## All Experiments")[1].strip().splitlines()
    assert experiments[0].startswith("Only the last 1,000 of 100,000 experiments are listed (#99000 to #99999)")
    assert "--format csv" in experiments[0]
    assert experiments[2] == "| # | Commit | Metric | Δ vs best before | Status | Description |"
    assert len(experiments) == 2 + 2 + 1000
    assert experiments[4].startswith("| 99000 | 00182b8 | 0.990099 | -0.000001 | keep |")
    assert experiments[-1].startswith("| 99999 | 001869f | — | — | crash |")
    # the delta of the first listed row is against the best before it, as in the full table
    full = experiments_table(table.rows, metric=table.metric, direction=table.direction)
    assert full.splitlines()[2 + 99000] == experiments[4] and len(full.splitlines()) == 2 + 100_000
    assert len(experiments_table(table.rows, metric="val_bpb", fmt="csv").splitlines()) == 1 + 100_000


def test_kept_gains_rerun_and_baseline_rows() -> None:
    rows = _rows([("base000", 1.0, "keep"), ("aaaaaaa", 0.98, "keep"), ("aaaaaaa", 0.96, "keep"),
                  ("bbbbbbb", None, "keep"), ("ccccccc", 0.95, "keep"), ("ddddddd", 0.99, "keep"),
                  ("eeeeeee", 0.90, "keep")])
    rows[5].raw_status = "baseline"  # a re-measured baseline restarts the chain
    gains = kept_gains(rows, "min")
    # aaaaaaa counts once at its mean 0.97; ddddddd is not ranked; eeeeeee is vs 0.99
    assert [(i, r.commit, round(d, 6)) for i, r, d in gains] == [
        (6, "eeeeeee", -0.09), (1, "aaaaaaa", -0.03), (4, "ccccccc", -0.02)]
    # Maximising, every later keep is worse than the best before it: none is an improvement.
    assert kept_gains(rows, "max") == []


def test_a_kept_regression_is_not_a_top_improvement() -> None:
    # Another tool kept 0.97 after 0.95 (worse than the best): not an improvement, and the next
    # keep's gain is measured against the best (0.95), not against the regression.
    rows = _rows([("base000", 1.00, "keep"), ("aaaaaaa", 0.95, "keep"), ("bbbbbbb", 0.97, "keep"),
                  ("ccccccc", 0.94, "keep")])
    gains = kept_gains(rows, "min")
    assert [(r.commit, round(d, 6)) for _, r, d in gains] == [("aaaaaaa", -0.05), ("ccccccc", -0.01)]
    top = _summary(rows, "val_bpb", "min").split("## Top Improvements (kept commits)")[1].split("## What")[0]
    assert "bbbbbbb" not in top


def test_keep_rate_and_an_empty_session_leave_out_the_baseline() -> None:
    rows = _rows([("base000", 1.0, "keep"), ("aaaaaaa", 0.9, "keep"), ("bbbbbbb", 1.1, "discard")])
    assert "baseline excluded): 1/2 = 50.0%" in _summary(rows, "val_bpb", "min")
    only = _summary(rows[:1], "val_bpb", "min")
    assert "every change was kept" not in only and "no experiment after the baseline yet" in only
    assert "baseline excluded): n/a" in only


def test_a_killed_run_written_as_zero_reads_back_without_a_metric(tmp_path: Path) -> None:
    from autoresearch_tui.engine.results import read_results

    path = tmp_path / "results.tsv"
    path.write_text("commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
                    "aaaaaaa\t1.000000\t1.0\tkeep\tbaseline\n"
                    "bbbbbbb\t0.000000\t0.0\tdiscard\tDEPTH 12\n"  # killed: how this tool writes it
                    "ccccccc\t0.000000\t0.0\tcrash\tOOM\n"
                    "ddddddd\t0.990000\t1.0\tkeep\tLR up\n", encoding="utf-8")
    table = read_results(path)
    assert [r.metric for r in table.rows] == [1.0, None, None, 0.99]
    text = _summary(table.rows, table.metric, table.direction)
    assert "0.000000" not in text
    assert "| DEPTH 12 | no metric |" in text.replace("#1 ", "")
    assert "Runs without a metric: 2" in text
    # accuracy (maximised): a discard measured at 0.0 is a measurement, unless the row says killed
    acc = tmp_path / "acc.tsv"
    acc.write_text("commit\taccuracy\tmemory_gb\tstatus\tdescription\n"
                   "aaaaaaa\t0.5\t0.0\tkeep\tbaseline\nbbbbbbb\t0.000000\t0.0\tdiscard\tall wrong\n"
                   "ccccccc\t0.000000\t0.0\tdiscard\twider (killed)\n", encoding="utf-8")
    assert [r.metric for r in read_results(acc).rows] == [0.5, 0.0, None]
    # this tool's own killed run under a maximised metric: written so that it reads back the same
    from autoresearch_tui.engine.results import ResultRow, append_row, ensure_header

    own = tmp_path / "own.tsv"
    ensure_header(own, "val_acc")
    append_row(own, ResultRow("aaaaaaa", 0.8, 1.0, "keep", "baseline"))
    append_row(own, ResultRow("bbbbbbb", None, 0.0, "discard", "wider MLP"))
    assert [r.metric for r in read_results(own).rows] == [0.8, None]


def _steps(text: str) -> list[str]:
    block = text.split("## Recommended Next Steps")[1].split("## Statistics")[0]
    return [ln[2:] for ln in block.splitlines() if ln.startswith("- ")]


def test_next_steps_follow_the_data() -> None:
    spec = [("base000", 1.00, "keep", "baseline")]
    spec += [("o1", 0.98, "keep", "raise MATRIX_LR to 0.05"),
             ("o2", 0.97, "keep", "lower WEIGHT_DECAY to 0.1")]
    spec += [(f"a{i}", 0.99, "discard", f"DEPTH {9 + i}") for i in range(4)]
    spec += [(f"c{i}", None, "crash", f"bigger batch {i}") for i in range(4)]
    spec += [(f"d{i}", 0.975, "discard", "HEAD_DIM 64") for i in range(3)]
    rows = [ResultRow(c, m, 1.0, s, d) for c, m, s, d in spec]
    steps = _steps(_summary(rows, "val_bpb", "min"))
    assert 3 <= len(steps) <= 5
    assert steps[0].startswith("Explore further in **optimizer**: it gave 2 of the 2 kept gains")
    assert any(s.startswith("Look at the crashes: 4 of 13 runs crashed") for s in steps)
    assert any(s.startswith("Plateau: no improvement in the last 11 experiments") for s in steps)
    assert any("Deprioritise architecture (7 tries)" in s for s in steps)
    assert steps[-1].startswith("Confirm best commit `o2` (0.970000, -3.00% vs baseline)")

    seed = [ResultRow("b", 1.0, 1.0, "keep", "baseline"), ResultRow("s", 0.99, 1.0, "keep", "seed 42 -> 137")]
    assert any("seed changes (#1) are noise" in s for s in _steps(_summary(seed, "val_bpb", "min")))

    nothing = [ResultRow("b", 0.5, 1.0, "keep", "baseline")] + [
        ResultRow(f"x{i}", 0.4, 1.0, "discard", "try dropout") for i in range(6)]
    steps = _steps(_summary(nothing, "accuracy", "max"))
    assert steps[0].startswith("No kept change improved on the baseline in 6 iterations")
    assert steps[-1].startswith("Nothing beat the baseline `b`")
    assert len(_steps(_summary(nothing[:1], "accuracy", "max"))) == 3
