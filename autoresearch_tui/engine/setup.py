"""Opening a session: checks, `.git/info/exclude`, the research branch and the session folder.

The order matters for crash safety: the session files exist before the branch does, so a kill
at any instant leaves something `--resume` can continue.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from autoresearch_tui.engine import rotate
from autoresearch_tui.engine.config import ResearchConfig, validate
from autoresearch_tui.engine.gitops import GitRepo
from autoresearch_tui.engine.reporting import SUMMARY_FILE
from autoresearch_tui.engine.session import SessionDir
from autoresearch_tui.errors import UserError


@dataclass
class Opened:
    repo: GitRepo
    session: SessionDir
    results_path: Path
    original_branch: str
    base_commit: str


def _rel(repo: GitRepo, path: Path) -> str | None:
    try:
        return path.resolve().relative_to(repo.root).as_posix()
    except ValueError:
        return None  # outside the repository: git cannot touch it anyway


def open_repo(cfg: ResearchConfig) -> tuple[GitRepo, Path]:
    """Validate, refuse a tracked results file, keep our files out of git."""
    validate(cfg)
    repo = GitRepo(cfg.project)
    results_path = cfg.path(cfg.results_file)
    results_rel = _rel(repo, results_path)
    if results_rel and repo.git.ls_files("--", results_rel):
        raise UserError(f"{cfg.results_file} is tracked by git, so a reset could change it; "
                        f"run `git rm --cached {results_rel}` and commit, or pick another results_file")
    session_rel = _rel(repo, cfg.path(cfg.session_dir))
    summary_rel = _rel(repo, cfg.path(SUMMARY_FILE))
    if summary_rel and repo.git.ls_files("--", summary_rel):
        raise UserError(f"{SUMMARY_FILE} is tracked by git, and each session rewrites it; run "
                        f"`git rm --cached {summary_rel}` and commit")
    # The summary's temporary file too: a kill mid-write must not leave the tree dirty.
    summary_tmp = f"/{summary_rel.rsplit('/', 1)[0] + '/' if '/' in summary_rel else ''}.{SUMMARY_FILE}.*" \
        if summary_rel else None
    repo.exclude([f"/{p}" for p in (results_rel, summary_rel) if p] + ([summary_tmp] if summary_tmp else [])
                 + ([f"/{session_rel}/"] if session_rel else []))
    return repo, results_path


def start(cfg: ResearchConfig) -> Opened:
    """A new session: clean tree, a fresh tag, then session files, then the branch."""
    repo, results_path = open_repo(cfg)
    repo.check_ready()
    root = cfg.session_path()
    if root.exists() and any(root.iterdir()):
        raise UserError(f"session folder {root} already exists; pick another --tag or use --resume")
    if repo.branch_exists(cfg.branch):
        raise UserError(f"branch {cfg.branch} already exists; pick another --tag or continue it with --resume")
    original, base = repo.branch, repo.head()
    rotate.claim(results_path, cfg.path(cfg.session_dir), cfg.tag, resume=False)
    session = SessionDir(root).create()
    session.write_snapshot({**cfg.to_dict(), "project": str(cfg.project)})
    session.write_origin(original, base)
    repo.create_branch(cfg.branch)
    return Opened(repo, session, results_path, original, base)


def reopen(cfg: ResearchConfig) -> Opened:
    """An existing session; the branch is made if a kill came just before it was."""
    session = SessionDir(cfg.session_path())
    if not session.exists():
        raise UserError(f"no session to resume at {session.root}; start one without --resume")
    repo, results_path = open_repo(cfg)
    origin = session.origin()
    if not repo.branch_exists(cfg.branch):
        if origin is None:
            raise UserError(f"branch {cfg.branch} does not exist, so there is nothing to resume; "
                            f"start a new session without --resume")
        repo.check_ready()
        repo.git.branch(cfg.branch, origin[1])
    original, base = origin or ("", "")
    rotate.claim(results_path, cfg.path(cfg.session_dir), cfg.tag, resume=True)
    return Opened(repo, session.create(), results_path, original, base)
