"""One experiment as the screens show it: its diff and the end of its run log. No Textual.

Sources, best first: the session's events (the proposal's diff, the run's log file), the
session's attempts/ patches, then `git show <commit>` in the repository. Every miss becomes a
sentence for the screen, never an exception. Callers run this in a thread (git can be slow).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from autoresearch_tui.core.git import Git, find_root
from autoresearch_tui.engine.logtail import read_log_lines
from autoresearch_tui.engine.results import ResultRow
from autoresearch_tui.engine.state import SessionState

MAX_DIFF_CHARS = 400_000
_HEX = re.compile(r"^[0-9a-fA-F]{4,40}$")


@dataclass
class Detail:
    index: int  # row position (0 = baseline)
    title: str
    diff: str = ""
    diff_note: str = ""  # why there is no diff, or where it came from
    log: list[str] = field(default_factory=list)
    log_note: str = ""


def find_repo(path: Path) -> Path | None:
    """The root of the git repository holding `path`, if any."""
    return find_root(path)


def clean_commit(commit: str) -> tuple[str, str]:
    """The hash part of a results.tsv commit cell and a note about what was stripped."""
    text = commit.strip()
    if text.endswith("-dirty"):
        return text[: -len("-dirty")], "the run used uncommitted changes on top of this commit"
    return text, ""


def show_commit(repo: Path, commit: str) -> tuple[str, str]:
    """(`git show` text, note); the text is empty when the commit cannot be shown."""
    sha, note = clean_commit(commit)
    if not _HEX.match(sha):
        return "", f"`{commit}` is not a commit hash"
    try:
        text = Git(repo).show(sha, "--stat", "--patch", "--no-color",
                              "--format=commit %H%nAuthor: %an <%ae>%nDate:   %ad%n%n    %s%n")
    except Exception as exc:  # noqa: BLE001 - bad name, missing object, not a repo: one sentence
        first = str(exc).strip().splitlines()
        why = next((ln.strip() for ln in first if "fatal:" in ln), "")
        return "", f"commit {sha} is not in {repo}" + (f" ({why.strip()})" if why else "")
    if len(text) > MAX_DIFF_CHARS:
        text = text[:MAX_DIFF_CHARS] + "\n[… diff cut at 400 KB …]\n"
    return text, note or f"git show {sha} in {repo}"


def session_iteration(row: ResultRow, index: int, session_state: SessionState | None) -> int | None:
    """The engine's iteration number for a row, matched on the commit (position breaks ties)."""
    if session_state is None or not session_state.results:
        return None
    results = session_state.results
    key = clean_commit(row.commit)[0][:7]
    if index < len(results) and results[index].commit[:7] == key:
        return results[index].iteration
    for recorded in results:
        if recorded.commit[:7] == key:
            return recorded.iteration
    return None


def load_detail(row: ResultRow, index: int, *, session_state: SessionState | None = None,
                session: Path | None = None, repo: Path | None = None, max_lines: int = 2000) -> Detail:
    detail = Detail(index, f"#{index} {row.commit[:14]} {row.status}: {row.description}")
    n = session_iteration(row, index, session_state)
    _fill_diff(detail, row, n, session_state, session, repo)
    _fill_log(detail, row, n, session_state, session, max_lines)
    return detail


def _fill_diff(detail: Detail, row: ResultRow, n: int | None, state: SessionState | None,
               session: Path | None, repo: Path | None) -> None:
    if n is not None and state is not None and n in state.proposals:
        detail.diff, detail.diff_note = state.proposals[n].diff, ""
        return
    if n == 0:
        detail.diff_note = "the baseline: the unmodified training script, no diff"
        if repo is None:
            return
    if session is not None and n is not None:
        sha = clean_commit(row.commit)[0][:7]
        patch = session / "attempts" / f"{n:04d}-{sha}.patch"
        if patch.is_file():
            detail.diff, detail.diff_note = patch.read_text(encoding="utf-8", errors="replace"), str(patch)
            return
    if repo is not None:
        text, note = show_commit(repo, row.commit)
        if text or not detail.diff_note:
            detail.diff, detail.diff_note = text, note
        return
    if not detail.diff_note:
        detail.diff_note = "no diff: give --repo DIR (the project's git repository) or --session DIR"


def _fill_log(detail: Detail, row: ResultRow, n: int | None, state: SessionState | None,
              session: Path | None, max_lines: int) -> None:
    if session is None:
        detail.log_note = "no run log: give --session DIR (the .autoresearch/<tag> folder)"
        return
    path: Path | None = None
    if n is not None and state is not None and n in state.run_logs:
        path = session / state.run_logs[n]
    if path is None or not path.is_file():
        sha = clean_commit(row.commit)[0][:7]
        found = sorted((session / "runs").glob(f"*-{sha}*.log")) if sha else []
        path = found[-1] if found else None
    if path is None or not path.is_file():
        detail.log_note = f"no run log for {row.commit} in {session / 'runs'}"
        return
    detail.log = read_log_lines(path, max_lines)
    detail.log_note = str(path)
