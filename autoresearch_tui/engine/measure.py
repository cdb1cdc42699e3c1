"""Run a candidate, judge it, record it: the one decision path of every slot count.

`measure` runs a candidate on its slot and asks noise.judge (re-running while in doubt);
`record_outcome` lands a keep (with workers: replayed onto the best of the moment, which may ask
for a re-run there), then writes the rows (durable), then the ref and patch of a discard, then
resets the branch to the best. A reset can never lose a measured result.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from autoresearch_tui.agents.base import Attempt, Proposal
from autoresearch_tui.engine import events as ev
from autoresearch_tui.engine import hooks, metrics, noise, results
from autoresearch_tui.engine.executors import RunSpec
from autoresearch_tui.engine.noise import CRASH, DISCARD, KEEP
from autoresearch_tui.engine.runner import RunOutcome
from autoresearch_tui.engine.session import write_atomic
from autoresearch_tui.engine.slots import Slot

if TYPE_CHECKING:
    from autoresearch_tui.engine.loop import Engine


@dataclass
class RunRecord:
    commit: str
    outcome: RunOutcome
    metric: float | None
    summary: dict[str, Any]
    peak_mb: float | None
    oom: bool
    crash: str | None


async def measure(engine: Engine, slot: Slot, n: int, commit: str, proposal: Proposal) -> None:
    """Run, judge (re-running while in doubt), record: the one decision path of every slot."""
    record = await run_with_retry(engine, slot, n, commit)
    if record.outcome.killed:
        spend_kill(engine, slot, record)
        suffix = " (killed)" if engine.stop_requests >= 2 else ""
        record_outcome(engine, slot, n, [record], DISCARD, "run killed by the user", proposal.description + suffix,
                       proposal.meta)
        return
    if record.crash or record.metric is None:
        record_outcome(engine, slot, n, [record], CRASH, record.crash or "no metric", proposal.description,
                       proposal.meta)
        return
    records, beside = [record], 0
    while True:
        verdict = judge(engine, [r.metric for r in records])
        if verdict.action != noise.RERUN:
            break
        if engine.stop_requests:  # no time to confirm: a doubt is not a win
            verdict = noise.Verdict(DISCARD, verdict.reason + "; stopped before confirming", None)
            break
        engine.emit(ev.Notice(message=f"#{n}: {verdict.reason}"))
        if engine.config.keep_policy == "confirm":  # interleaved: best, candidate, best, candidate ...
            beside += 1
            failed = await run_best(engine, slot, n, commit, beside)
            if failed or engine.stop_requests:
                verdict = noise.Verdict(DISCARD, f"{failed or 'stopped'} before the candidate's run "
                                                 f"{len(records) + 1}: not confirmed", None)
                break
        again = await run(engine, slot, n, commit, attempt=len(records) + 1)
        engine.reruns += 1
        if again.crash or again.metric is None:
            spend_kill(engine, slot, again)
            verdict = noise.Verdict(DISCARD, f"re-run crashed ({again.crash}): not confirmed", None)
            break
        records.append(again)
    record_outcome(engine, slot, n, records, verdict.action, verdict.reason, proposal.description, proposal.meta)


async def baseline(engine: Engine) -> str | None:
    """The unchanged script, on the first slot (repeated for a noise estimate when asked);
    None, or why the session must end."""
    best = engine.best_commit
    engine.emit(ev.IterationStarted(iteration=0, parent=best))
    slot = engine.slots[0]
    first = await run_with_retry(engine, slot, 0, best)
    records = [first]
    for _ in range(baseline_repeats(engine) - 1):
        if first.crash or engine.stop_requests:
            break
        again = await run(engine, slot, 0, best, attempt=len(records) + 1)
        if again.crash or again.metric is None:
            break
        records.append(again)
    status, reason = (KEEP, "baseline") if not first.crash else (CRASH, first.crash)
    record_outcome(engine, slot, 0, records, status, reason, "baseline", {})
    if len(records) > 1:
        engine.emit(ev.Notice(message=f"baseline: {engine.noise.describe()}"))
    if status != CRASH:
        return None
    bad_metric = first.outcome.exit_code == 0 and not first.outcome.timed_out
    hint = "check --metric: the log must print `NAME: value`" if bad_metric else "fix the training script first"
    engine.emit(ev.Notice(message=f"the baseline crashed: {first.crash}; {hint}", level="error"))
    return "bad_metric" if bad_metric else "baseline_crashed"


def baseline_repeats(engine: Engine) -> int:
    """Noise-aware policies need a noise estimate from the start: at least 3 baseline runs."""
    cfg = engine.config
    if cfg.keep_policy in ("sigma", "confirm") and cfg.baseline_repeats < 2:
        engine.emit(ev.Notice(message=f"keep_policy {cfg.keep_policy} needs a noise estimate: "
                                      "running the baseline 3 times (set baseline_repeats to choose)"))
        return 3
    return cfg.baseline_repeats


async def recheck_best(engine: Engine) -> str:
    """The breaker tripped. Environment or changes? Re-run the best commit once on a free slot:
    pause only if it fails too. Returns the feedback for the next proposal when the changes were
    at fault."""
    what, engine.recheck = engine.recheck, ""
    best = engine.best_commit
    engine.emit(ev.Notice(message=f"{what}; re-running the best commit {best[:7]} to tell the environment's "
                                  "fault from the changes'", level="warning"))
    slot = engine.claim(engine.iteration, best)  # a slot is free: the loop got past the gate
    try:
        again = await run(engine, slot, engine.iteration, best, attempt=1)  # as the baseline did
    finally:
        engine.free(slot)
    if again.metric is not None and not again.crash:
        engine.emit(ev.Notice(message=f"the best commit {best[:7]} still runs (metric {again.metric:.6f}): "
                                      "the changes were at fault; going on", level="warning"))
        return f"{what}, while the unchanged script runs fine: that kind of change breaks it; try another"
    if again.outcome.killed or engine.stop_requests:
        return ""
    engine.pause_reason = (f"{what} and the best commit {best[:7]} fails too ({again.crash or 'no metric'}): "
                           "the environment is at fault; paused. Fix the cause, then resume: press p in the "
                           f"TUI, or run `autoresearch-tui control {engine.config.session_dir}/{engine.config.tag} "
                           "resume` in the project")
    engine.emit(ev.Notice(message=engine.pause_reason, level="error"))
    engine.pause()
    return ""

async def run_best(engine: Engine, slot: Slot, n: int, commit: str, attempt: int) -> str | None:
    """keep_policy confirm: run the best once, just before candidate n's next run (both then
    see the same machine: slow drift cancels); its value joins the best's runs. None, or why
    it failed."""
    best = engine.best_commit
    with engine.ws.best_tree(n, best, commit):
        record = await run(engine, slot, n, best, attempt)
    engine.best_reruns += 1
    if record.crash or record.metric is None:
        spend_kill(engine, slot, record)
        return f"the best's run crashed ({record.crash})"
    engine.noise.add(best, record.metric)
    if best == engine.best_commit:  # (parallel: another worker may have kept meanwhile)
        engine.best_runs.append(record.metric)
        engine.best_metric = noise.mean(engine.best_runs)
    runs = engine.noise.runs(best)
    engine.emit(ev.BestRemeasured(iteration=n, commit=best, metric=record.metric, runs=len(runs),
                                  best_metric=noise.mean(runs)))
    return None


def spend_kill(engine: Engine, slot: Slot, record: RunRecord) -> None:
    """A run killed by the user: the kill is spent; the second stop request ends the session."""
    if record.outcome.killed:
        engine.killed_out = engine.killed_out or engine.stop_requests >= 2
        if engine.stop_requests < 2:
            slot.kill.clear()


def judge(engine: Engine, values: list[float]) -> noise.Verdict:
    cfg = engine.config
    return noise.judge(cfg.keep_policy, values, engine.best_runs, cfg.direction or "min", engine.noise.sigma,
                       min_delta=cfg.min_delta, z=cfg.noise_z, max_runs=cfg.confirm_runs)


async def run_with_retry(engine: Engine, slot: Slot, n: int, commit: str) -> RunRecord:
    record = await run(engine, slot, n, commit, attempt=1)
    if record.oom and not record.outcome.killed and not engine.stop_requests and engine.fair.retry_oom():
        scale = (engine.platform.adjustments.get("batch_scale", 1.0) if engine.platform else 1.0) / 2
        engine.emit(ev.Notice(message=f"out of memory: retrying once with the device batch halved (x{scale:g})",
                              level="warning"))
        record = await run(engine, slot, n, commit, attempt=2, batch_scale=scale)
    return record


async def run(engine: Engine, slot: Slot, n: int, commit: str, attempt: int,
              batch_scale: float | None = None) -> RunRecord:
    cfg = engine.config
    assert engine.session is not None and engine.platform is not None
    project, pid_file, links = engine.ws.run_place(slot, commit)
    log = engine.session.run_log(n, commit, attempt)
    slot.running = True
    engine.emit(ev.RunStarted(iteration=n, commit=commit, log=str(log.relative_to(engine.session.root)),
                              budget_s=cfg.time_budget or 0, limit_s=engine.fair.limit(), attempt=attempt,
                              worker=slot.index, device=slot.device,
                              description=slot.description if n else "baseline"))
    updates = {**engine.platform.env(cfg.time_budget or 0, batch_scale), **slot.env}
    spec = RunSpec(cfg.command_argv(), project, {**engine.run_env(), **updates}, updates, log, engine.fair.limit(),
                   cfg.kill_grace, slot.kill, pid_file, links, slot.index, f"{engine.mark}:run:{n}:{attempt}")
    engine.guard.before(tip=commit, quiet=engine.prefetch is None)
    try:
        outcome = await engine.executor.run(spec)
    finally:
        slot.running = False
        engine.guard.after("training run", n)
    r = metrics.read_run(log, cfg.metric or "", cfg.metric_pattern, outcome.exit_code, outcome.timed_out,
                         outcome.killed, engine.fair.limit(), outcome.peak_rss_mb)
    engine.emit(ev.RunFinished(iteration=n, commit=commit, exit_code=outcome.exit_code,
                               duration_s=round(outcome.duration_s, 3), timed_out=outcome.timed_out, metric=r.metric,
                               summary=r.summary, peak_memory_mb=r.peak_mb, oom=r.oom, crash_reason=r.crash,
                               attempt=attempt, worker=slot.index, cpu_s=outcome.cpu_s))
    return RunRecord(commit, outcome, r.metric, r.summary, r.peak_mb, r.oom, r.crash)


def record_outcome(engine: Engine, slot: Slot, n: int, records: list[RunRecord], status: str, reason: str,
                   description: str, meta: dict[str, Any]) -> None:
    """Rows first (durable), then git: a reset can never lose a measured result.

    Re-runs of one experiment (noise estimate, confirmation) are rows of their own."""
    cfg, repo = engine.config, engine.repo
    assert repo is not None and engine.session is not None
    measured = records[0].commit
    if status == KEEP and n > 0:
        kept, rerun, note = engine.ws.land(slot, measured, description, engine.best_commit)
        if rerun is not None:  # measured on an older best: measure it on the new one
            engine.emit(ev.Notice(message=f"#{n} on w{slot.index}: {note}"))
            slot.rerun = rerun
            return
        if kept is None:
            status, reason = DISCARD, note
        else:
            records = [dataclasses.replace(r, commit=kept) for r in records]
            if note:
                engine.emit(ev.Notice(message=f"#{n} on w{slot.index}: {note}"))
    commit = records[0].commit
    status, reason = engine.fair.judge(n, records, status, reason, description, engine.best_commit, meta)
    if status == CRASH and records[0].crash and records[0].crash not in description:
        description = f"{description} ({records[0].crash})"
    values = [r.metric for r in records if r.metric is not None] if status != CRASH else []
    for value in values:
        engine.noise.add(commit, value)
    if status == KEEP:
        engine.best_commit, engine.best_runs = commit, list(values)
        engine.best_metric = noise.mean(values)
    ref = None
    if status == KEEP:
        engine.ws.diffs.pop(commit, None)
        engine.guard.keep(n, commit)
    else:
        ref = repo.keep_ref(cfg.tag, n, commit)
        patch = engine.session.attempts / f"{n:04d}-{commit[:7]}.patch"
        # its own change (against the best it was proposed from), not the distance to a best that moved since
        write_atomic(patch, engine.ws.diff_of(slot.base or engine.best_commit, commit))
    for i, record in enumerate(records):
        memory_gb = round((record.peak_mb or 0) / 1024, 1) if status != CRASH else 0.0
        metric = record.metric if status != CRASH else None
        text = description if i == 0 else f"{description} (re-run {i + 1}/{len(records)}: {rerun_why(n)})"
        row = results.ResultRow(commit[:7], metric, memory_gb, status, text)
        results.append_row(engine.results_path, row)
        engine.rows.append(row)
        if i == len(records) - 1 and status != KEEP:
            repo.reset_hard(engine.best_commit)
        engine.emit(ev.ResultRecorded(iteration=n, commit=commit, metric=metric, memory_gb=memory_gb,
                                      status=status, description=text, reason=reason,
                                      best_commit=engine.best_commit, best_metric=engine.best_metric,
                                      attempt_ref=ref, rerun=i, worker=slot.index))
    engine.ws.diffs.pop(measured, None)  # a replayed keep leaves the measured commit's diff unused
    if status == KEEP and n > 0:
        hooks.fire(cfg.on_new_best, cfg.project, hooks.new_best_env(engine.rows[-1], cfg.tag), f"{engine.mark}:hook")
    engine.iteration = max(engine.iteration, n)
    metric = noise.mean(values) if values else None
    engine.history.append(Attempt(n, commit, status, metric, description, dict(meta)))
    if n and cfg.progress_every and n % cfg.progress_every == 0:
        engine.write_progress(n)
    breaker(engine, status, reason)


def rerun_why(n: int) -> str:
    return "noise estimate" if n == 0 else "confirming"


def breaker(engine: Engine, status: str, reason: str) -> None:
    """Same crash N times in a row (a missing module, a broken GPU): pause, don't burn the night."""
    if status != CRASH or metrics.DIVERGED.search(reason):
        # Divergence (NaN, FAIL) is the change's fault, not the environment's.
        engine.crash_streak = ("", 0)
        return
    signature = metrics.crash_signature(reason)
    last, count = engine.crash_streak
    count = count + 1 if signature == last else 1
    engine.crash_streak = (signature, count)
    limit = engine.config.circuit_breaker
    if limit and count >= limit:
        engine.crash_streak = ("", 0)
        engine.recheck = f"{count} experiments in a row crashed the same way ({reason})"
