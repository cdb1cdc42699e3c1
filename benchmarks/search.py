"""Search quality: the built-in proposer, Optuna TPE and random search on a sample project.

Each method runs N experiments after the baseline for each of 3 proposer seeds, on a copy of
the sample, one training at a time, with the engine's default keep rule (keep a strictly better
metric, else go back to the best). The time budget counts CPU time
(AUTORESEARCH_BUDGET_CLOCK=cpu), so machine load does not move the results. Figures: the best
metric after 6, 12 and N experiments (mean over the proposer seeds), and each run's best script
re-measured with 3 other training seeds (SEED = 1, 2, 3): the number that matters, since a
best found once can be noise.

Environment: ARBENCH_SEARCH_OUT=FILE keeps every run's trace in FILE (JSON) and reuses the
traces already there, so a long run can be split or resumed; ARBENCH_SEARCH_METHODS,
ARBENCH_SEARCH_PROJECTS and ARBENCH_SEARCH_SEEDS select (comma-separated) methods, projects and
proposer seeds; ARBENCH_SEARCH_N sets the number of experiments (a shorter run where a full one
does not fit).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

from autoresearch_tui.agents.base import Attempt, ProposalContext, ProposalError
from autoresearch_tui.agents.builtin import BuiltinProposer
from autoresearch_tui.agents.constants import replace_constant
from benchmarks.common import ROOT, Figure

PROJECTS = {  # name -> (metric, direction, CPU-second budget)
    "spirals": ("val_acc", "max", 4.0),
    "tinygpt": ("val_bpb", "min", 20.0),
}
METHODS = ("builtin", "tpe", "random")
TRAINING_SEEDS = (1, 2, 3)
CHECKPOINTS = (6, 12, 24)


def _proposer(method: str) -> Any:
    if method == "builtin":
        return BuiltinProposer()
    from autoresearch_tui.agents.optuna_search import OptunaProposer

    return OptunaProposer(sampler=method)


def train(folder: Path, source: str, metric: str, budget: float) -> float | None:
    """One training run of `source` in `folder`; the metric, or None for a crash."""
    (folder / "train.py").write_text(source)
    env = {**os.environ, "AUTORESEARCH_TIME_BUDGET": f"{budget:g}", "AUTORESEARCH_BUDGET_CLOCK": "cpu",
           "AUTORESEARCH_DEVICE": "cpu", "AUTORESEARCH_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    try:
        out = subprocess.run([sys.executable, "train.py"], cwd=folder, env=env, capture_output=True,
                             text=True, timeout=max(300.0, 20 * budget)).stdout
    except subprocess.TimeoutExpired:
        return None
    m = re.search(rf"^{metric}:\s*([-+0-9.eE]+)\s*$", out, re.MULTILINE)
    return float(m.group(1)) if m else None


def better(a: float, b: float, direction: str) -> bool:
    return a > b if direction == "max" else a < b


def search(project: str, method: str, seed: int, n: int, folder: Path,
           baseline: float) -> dict[str, Any]:
    """One search: the trace of metrics and the best script."""
    metric, direction, budget = PROJECTS[project]
    source = (folder / "train.py").read_text()
    readonly = (folder / "prepare.py").read_text()
    proposer = _proposer(method)
    best, best_metric = source, baseline
    history = [Attempt(0, "baseline", "keep", baseline, "baseline", {})]
    trace: list[float | None] = []
    bests: list[float] = []
    for it in range(1, n + 1):
        ctx = ProposalContext(iteration=it, train_path="train.py", train_source=best, readonly_source=readonly,
                              metric=metric, direction=direction, scope="all", history=tuple(history),
                              best=None, seed=seed, project=str(folder), readonly_path="prepare.py",
                              time_budget_s=budget)
        try:
            proposal = asyncio.run(proposer.propose(ctx))
        except ProposalError:
            break
        value = train(folder, proposal.new_source, metric, budget)
        status = "crash" if value is None else "keep" if better(value, best_metric, direction) else "discard"
        history.append(Attempt(it, f"{it:07d}", status, value, proposal.description,
                               json.loads(json.dumps(proposal.meta))))
        if status == "keep":
            best, best_metric = proposal.new_source, value
        trace.append(value)
        bests.append(best_metric)
    remeasured = [train(folder, _with_seed(best, s), metric, budget) for s in TRAINING_SEEDS]
    return {"trace": trace, "bests": bests, "best": best_metric, "remeasured": remeasured,
            "descriptions": [a.description for a in history[1:]], "statuses": [a.status for a in history[1:]]}


def _with_seed(source: str, seed: int) -> str:
    try:
        return replace_constant(source, "SEED", seed)
    except KeyError:
        return source


def _copy(project: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=f"arbench-search-{project}-"))
    for name in ("train.py", "prepare.py"):
        shutil.copy(ROOT / "sample_projects" / project / name, folder / name)
    return folder


def _load(path: Path | None) -> dict[str, Any]:
    if path and path.exists():
        return json.loads(path.read_text())
    return {}


def _save(path: Path | None, data: dict[str, Any]) -> None:
    if path:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(path)


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def _at(run: dict[str, Any], k: int, baseline: float) -> float:
    bests = run["bests"]
    return bests[min(k, len(bests)) - 1] if bests else baseline


def run(quick: bool = False) -> Iterator[Figure]:
    n = int(os.environ.get("ARBENCH_SEARCH_N") or (6 if quick else 24))
    seeds = tuple(int(x) for x in os.environ.get("ARBENCH_SEARCH_SEEDS", "0" if quick else "0,1,2").split(","))
    out = os.environ.get("ARBENCH_SEARCH_OUT")
    path = Path(out) if out else None
    data = _load(path)
    methods = [m for m in os.environ.get("ARBENCH_SEARCH_METHODS", ",".join(METHODS)).split(",") if m]
    projects = os.environ.get("ARBENCH_SEARCH_PROJECTS", "spirals" if quick else "spirals,tinygpt").split(",")
    for project in [p for p in projects if p]:
        metric, direction, budget = PROJECTS[project]
        folder = _copy(project)
        try:
            key = f"{project}/baseline"
            if key not in data:
                data[key] = train(folder, (folder / "train.py").read_text(), metric, budget)
                _save(path, data)
            baseline = data[key]
            if baseline is None:
                raise RuntimeError(f"the {project} baseline crashed")
            yield Figure(f"search {project} baseline {metric}", baseline, "", "info", None)
            for method in methods:
                for seed in seeds:
                    key = f"{project}/{method}/{seed}/{n}"
                    if key not in data:
                        shutil.copy(ROOT / "sample_projects" / project / "train.py", folder / "train.py")
                        data[key] = search(project, method, seed, n, folder, baseline)
                        _save(path, data)
            yield from _figures(data, project, methods, seeds, n, baseline, direction)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def _figures(data: dict[str, Any], project: str, methods: list[str], seeds: tuple[int, ...], n: int,
             baseline: float, direction: str) -> Iterator[Figure]:
    means: dict[tuple[str, int | str], float] = {}
    for method in methods:
        runs = [data[f"{project}/{method}/{s}/{n}"] for s in seeds]
        for k in sorted({*(c for c in CHECKPOINTS if c <= n), n}):
            means[method, k] = _mean([_at(r, k, baseline) for r in runs])
            yield Figure(f"search {project} {method} best after {k}", means[method, k], "",
                         "info", None, note=" ".join(f"{_at(r, k, baseline):.3f}" for r in runs))
        per_run = [_mean([v for v in r["remeasured"] if v is not None]) for r in runs]
        means[method, "re"] = _mean(per_run)
        crashes = sum(s == "crash" for r in runs for s in r["statuses"])
        yield Figure(f"search {project} {method} best re-measured ({len(TRAINING_SEEDS)} training seeds)",
                     means[method, "re"], "", "info", None,
                     note=f"runs {' '.join(f'{v:.3f}' for v in per_run)}; {crashes} crash(es)")
    if "builtin" in methods and "tpe" in methods:
        sign = 1 if direction == "max" else -1
        first = min(6, n)
        gap = sign * (means["tpe", first] - means["builtin", first])
        yield Figure(f"search {project} builtin vs TPE after {first} (TPE minus builtin)", gap, "",
                     "<= 0.01", gap <= 0.01)
        diff = sign * (means["builtin", "re"] - means["tpe", "re"])
        yield Figure(f"search {project} builtin vs TPE re-measured after {n} (builtin minus TPE)", diff, "",
                     ">= 0", diff >= 0)
