"""Continue a session after anything: rebuild state from the session folder, results.tsv and git.

Whatever the engine was doing when it died is reconciled here, so the loop can go on:
a stale git lock, a half-done reset, an experiment committed but not evaluated, a results row
without its event (or the reverse), an orphaned training process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from autoresearch_tui.agents.base import Attempt
from autoresearch_tui.engine import events as ev
from autoresearch_tui.engine import results
from autoresearch_tui.core import processes
from autoresearch_tui.core.git import Git
from autoresearch_tui.engine.session import SessionDir, write_atomic
from autoresearch_tui.engine.state import SessionState
from autoresearch_tui.errors import UserError

RUN_PID = "run.pid"


@dataclass
class Recovered:
    state: SessionState
    rows: list[results.ResultRow]
    history: list[Attempt]
    best_commit: str | None  # None: the baseline still has to run
    best_metric: float | None
    iteration: int
    pending: tuple[int, str, str, dict] | None  # (iteration, commit, description, meta) to evaluate
    repairs: list[str] = field(default_factory=list)
    new_events: list[ev.Event] = field(default_factory=list)  # to append, recreated from results.tsv


def end_orphans(session: SessionDir, mark: str) -> list[str]:
    """Runs and agents outlive a SIGKILLed engine (their own process groups): end them."""
    done = [note for pid_file in sorted(session.root.glob("run*.pid")) if (note := processes.end_recorded(pid_file))]
    for kind in ("run", "agent"):
        strays = processes.with_mark(f"{mark}:{kind}")
        if strays:
            processes.end_tree(None, f"{mark}:{kind}")
            done.append(f"ended {len(strays)} orphaned {kind} process(es)")
    return done


def _full(repo: Git, short: str) -> str | None:
    return repo.resolve(short)


def recover(repo: Git, session: SessionDir, results_path: Path, branch: str, tag: str,
            rerun_pending: bool = True) -> Recovered:
    repairs = end_orphans(session, processes.session_mark(session.root, tag))
    session.repair_tail()
    # A git process or a ref write killed with the engine leaves its lock file behind. Only
    # the locks of files this session writes are removed; nothing else writes them meanwhile.
    git_dir = repo.git_dir
    locks = [git_dir / "index.lock", git_dir / "HEAD.lock", git_dir / "refs" / "heads" / f"{branch}.lock",
             *(git_dir / "refs" / "autoresearch" / tag).glob("*.lock")]
    for lock in locks:
        if lock.exists():
            lock.unlink()
            repairs.append(f"removed a stale {lock.relative_to(git_dir.parent)}")
    # Back onto the research branch, clean.
    if repo.detached or repo.branch != branch:
        if repo.is_dirty():
            raise UserError(f"you are on {('a detached HEAD' if repo.detached else repo.branch)} "
                            f"with uncommitted changes; commit or stash them, then resume")
        repo.checkout(branch)
    elif repo.is_dirty():
        repairs.append(f"reset uncommitted changes on {branch}")
        repo.reset_hard("HEAD")

    events = session.events()
    state = SessionState().apply_all(events)
    table = results.read_results(results_path).rows if results_path.exists() else []
    run_iter = {e.commit[:7]: e.iteration for e in events if isinstance(e, ev.RunStarted)}
    recorded = list(state.results)
    new_events: list[ev.Event] = []

    # Rows and events must tell the same story; each side repairs the other.
    if len(table) > len(recorded):
        last = max((e.iteration for e in recorded), default=-1)  # parallel results land out of order
        for row in table[len(recorded):]:
            last = run_iter.get(row.commit[:7], last + 1)
            full = _full(repo, row.commit) or row.commit
            event = ev.ResultRecorded(iteration=last, commit=full, metric=row.metric, memory_gb=row.memory_gb or 0.0,
                                      status=row.status, description=row.description,
                                      reason="recreated from results.tsv on resume", best_commit="", best_metric=None)
            recorded.append(event)
            new_events.append(event)
        repairs.append(f"recreated {len(table) - len(state.results)} result event(s) from results.tsv")
    elif len(recorded) > len(table):
        missing = len(recorded) - len(table)
        for event in recorded[len(table):]:
            row = results.ResultRow(event.commit[:7], event.metric, event.memory_gb, event.status, event.description)
            results.append_row(results_path, row)
            table.append(row)
        repairs.append(f"restored {missing} missing results.tsv row(s) from events")

    best_commit, best_metric = None, None
    for event in recorded:
        if event.status == "keep":
            best_commit, best_metric = _full(repo, event.commit) or event.commit, event.metric
    for event in new_events:
        event.best_commit, event.best_metric = best_commit or "", best_metric

    proposals = {e.iteration: e for e in events if isinstance(e, ev.ProposalMade)}
    history = [Attempt(e.iteration, e.commit, e.status, e.metric, e.description,
                       dict(proposals[e.iteration].meta) if e.iteration in proposals else {}) for e in recorded]
    iteration = recorded[-1].iteration if recorded else 0
    pending = None
    head = repo.head()
    if best_commit and head != best_commit:
        measured = {(_full(repo, e.commit) or e.commit): e for e in recorded}
        if head in measured:
            # The row was written but the reset did not happen: finish it now.
            _keep_attempt(repo, session, tag, measured[head].iteration, head, best_commit)
            repo.reset_hard(best_commit)
            repairs.append(f"finished the reset of discarded {head[:7]} to the best {best_commit[:7]}")
        elif repo.is_ancestor(best_commit, head):
            message = repo.message(head)
            if not message.startswith("exp: "):
                raise UserError(f"{branch} has a commit the engine did not make ({head[:7]}: {message[:60]}); "
                                f"move it elsewhere (git reset --hard {best_commit[:7]}) and resume")
            n = iteration + 1
            meta = dict(proposals[n].meta) if n in proposals else {}
            if rerun_pending:
                pending = (n, head, message[len("exp: "):], meta)
                repairs.append(f"experiment {head[:7]} was committed but not evaluated: running it again")
            else:
                _keep_attempt(repo, session, tag, n, head, best_commit)
                repo.reset_hard(best_commit)
                repairs.append(f"experiment {head[:7]} was committed but not evaluated: discarded (kept as a ref)")
        elif repo.is_ancestor(head, best_commit):
            repo.reset_hard(best_commit)
            repairs.append(f"moved {branch} forward to the best commit {best_commit[:7]}")
        else:
            raise UserError(f"{branch} no longer contains the best commit {best_commit[:7]}; "
                            f"check it out (git reset --hard {best_commit[:7]}) and resume")
    return Recovered(state, table, history, best_commit, best_metric, iteration, pending, repairs, new_events)


def _keep_attempt(repo: Git, session: SessionDir, tag: str, n: int, commit: str, best: str) -> None:
    repo.keep_ref(tag, n, commit)
    write_atomic(session.attempts / f"{n:04d}-{commit[:7]}.patch", repo.diff(best, commit))
