"""Checks before a session starts, so a bad setup is one line, not a dead screen.

- one config field at a time (`field_error`, `build_config`): the wizard's inline validation;
- the whole project (`check_project` -> list of Check rows): the wizard's status, a `doctor`;
- `check_can_start`: the app refuses before it spawns the engine (which repeats the checks in
  `Engine.prepare`).

Pure functions over the config, the disk and git; no Textual. Messages are one line that says
what is wrong and how to fix it. Functions that run git are marked; call them off the UI thread.
"""

from __future__ import annotations

import copy
import shlex
import shutil
from pathlib import Path
from typing import Any, Mapping, NamedTuple

from autoresearch_tui.core.durations import exact_duration
from autoresearch_tui.core.git import Git, git_dirs
from autoresearch_tui.engine import fairness
from autoresearch_tui.engine.config import KEYS, ResearchConfig, apply_values, project_path_problem, validate
from autoresearch_tui.engine.config_values import check_tag
from autoresearch_tui.errors import UserError

MIN_FREE_BYTES = 1 << 30  # below 1 GB free: warn (run logs of a long night add up)

# The wizard's fields: the schema's keys that have a wizard label, in the schema's order.
FIELDS = tuple(name for name, spec in KEYS.items() if spec.wizard)
REQUIRED = ("train_script", "time_budget", "metric", "tag", "results_file")


def agent_names() -> tuple[str, ...]:
    """The agents the engine knows (the registry), builtin first."""
    from autoresearch_tui.agents.registry import AGENTS

    return tuple(AGENTS)


def agent_error(config: ResearchConfig) -> str | None:
    """Can the configured agent work (its command on PATH, its API key set)? May use the network."""
    if config.agent == "builtin":
        return None
    from autoresearch_tui.agents.registry import check_backend

    try:
        return check_backend(config)
    except Exception as exc:  # noqa: BLE001 - a check must not crash its caller
        return f"cannot check the agent: {exc}"


class Check(NamedTuple):
    name: str
    ok: bool
    message: str
    fatal: bool = True  # False: only a warning; a session can still start


# -- values <-> config ---------------------------------------------------------------------

def default_command(config: ResearchConfig, train_script: str | None = None) -> str:
    """The command line used when train_command is not set (`uv run train.py` with uv.lock)."""
    probe = copy.copy(config)
    probe.train_command, probe.shell = None, False
    if train_script is not None:
        probe.train_script = train_script
    return shlex.join(probe.command_argv())


def field_values(config: ResearchConfig) -> dict[str, str]:
    """The wizard's text for each field, from a config (already merged toml + CLI flags)."""
    if config.train_command is None:
        command = default_command(config)
    elif isinstance(config.train_command, list):
        command = shlex.join(config.train_command)
    else:
        command = config.train_command
    budget = "" if config.time_budget is None else duration_text(config.time_budget)
    return {
        "train_script": config.train_script,
        "readonly_script": ", ".join(config.readonly_files()),
        "time_budget": budget,
        "metric": config.metric_spec,
        "max_iterations": str(config.max_iterations) if config.max_iterations is not None else "unlimited",
        "scope": config.scope,
        "tag": config.tag,
        "results_file": config.results_file,
        "agent": config.agent,
        "train_command": command,
        "seed": str(config.seed),
        "hypothesis": config.hypothesis or "",
    }


def duration_text(seconds: float) -> str:
    """Exact short form that parse_duration reads back: 90s, 5m, 2h, 1h30m, 125s."""
    return exact_duration(seconds)


def build_config(base: ResearchConfig, values: Mapping[str, str]) -> ResearchConfig:
    """A copy of `base` with the wizard's field values applied; UserError on a bad value."""
    config = copy.deepcopy(base)
    for key in FIELDS:
        if key not in values:
            continue
        value = str(values[key]).strip()
        if key == "train_command":
            train = str(values.get("train_script", config.train_script)).strip()
            unchanged = value == field_values(base)["train_command"]
            if not value or value == default_command(base, train) or (unchanged and base.train_command is None):
                config.train_command, config.shell = None, False  # the default: follows the script
            elif not unchanged:
                config.train_command, config.shell = value, False
            continue  # unchanged: keep base's command (list or string) and its shell flag
        if key == "readonly_script" and value == field_values(base)["readonly_script"]:
            continue  # unchanged: keep base's (possibly default) value
        if key == "hypothesis":
            config.hypothesis = value or None
        elif key == "time_budget" and not value:
            config.time_budget = None
        elif key == "metric" and not value:
            config.metric = config.direction = None
        elif key == "readonly_script" and not value:
            config.readonly_script = []
        else:
            apply_values(config, {key: value or ("unlimited" if key == "max_iterations" else value)})
    return config


# -- one field -----------------------------------------------------------------------------

def field_error(key: str, value: str, values: Mapping[str, str], project: Path) -> str | None:
    """What is wrong with one field's text (given the others), or None. Runs no git."""
    value = str(value).strip()
    project = Path(project)
    if not value and key in REQUIRED:
        return {
            "time_budget": "required: how long each run may train, e.g. 5m, 90s or 1h",
            "metric": "required: the metric and its direction, e.g. val_bpb:min or val_acc:max",
        }.get(key, "required")
    try:
        if key == "train_script":
            return script_error(project, value, "training script")
        if key == "readonly_script":
            train = str(values.get("train_script", "")).strip()
            for name in KEYS[key].parse(value):
                if train and (project / train).resolve() == (project / name).resolve():
                    return "the read-only script must be another file than the training script"
                if problem := script_error(project, name, "read-only script"):
                    return problem
            return None
        if key == "results_file":
            return _results_error(project, value, values)
        if key == "train_command":
            return command_error(project, value) if value else None
        if key == "agent":
            if value not in agent_names():
                return f"{value!r} is not available; use one of {', '.join(agent_names())}"
            return None
        if value or key not in ("hypothesis", "max_iterations"):
            KEYS[key].parse(value)
    except ValueError as exc:
        return str(exc)  # the schema's readers say what to write
    return None


def script_error(project: Path, value: str, what: str) -> str | None:
    path = (Path(project) / value).resolve()
    if not path.exists():
        return f"{value} does not exist in {project}"
    if not path.is_file():
        return f"{value} is not a file"
    if project_path_problem(Path(project).resolve(), value):
        return f"the {what} must be inside the project folder and outside .git"
    return None


def _results_error(project: Path, value: str, values: Mapping[str, str]) -> str | None:
    path = (project / value).resolve()
    if path.is_dir():
        return f"{value} is a folder; give a file name such as results.tsv"
    for key in ("train_script", "readonly_script"):
        other = str(values.get(key, "")).strip()
        if other and (project / other).resolve() == path:
            return "the results file must not be one of the scripts"
    if not path.parent.exists():
        return f"folder {path.parent} does not exist"
    return project_path_problem(project.resolve(), value, written=True)


def command_error(project: Path, command: str | list[str]) -> str | None:
    """The training command's program must be on PATH (or a file in the project)."""
    try:
        argv = shlex.split(command) if isinstance(command, str) else list(command)
    except ValueError as exc:
        return f"cannot parse the command: {exc}"
    if not argv:
        return "the command is empty"
    exe = argv[0]
    if shutil.which(exe) or (Path(exe).is_absolute() and Path(exe).exists()) or (Path(project) / exe).exists():
        return None
    return f"{exe!r} was not found on PATH; install it or give the full path"


# -- git (these run git: call them from a thread in a UI) -----------------------------------

def git_error(project: Path) -> str | None:
    """Not a repository / bare / index locked / no commits / detached HEAD / uncommitted changes, with the fix."""
    problem = repository_error(project)
    if problem:
        return problem
    try:
        Git(project).check_ready()
    except UserError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - git itself failed: say so, the screen stays up
        return f"git cannot read this repository: {exc}".splitlines()[0]
    return None


def repository_error(project: Path) -> str | None:
    """What GitPython would stumble on, said with the fix: a bare repository, a left-over index.lock."""
    return bare_error(project) or index_lock_error(project)


def bare_error(project: Path) -> str | None:
    folder = (git_dirs(project) or (None,))[0]
    if folder is None or folder.name == ".git" or (folder / "commondir").exists():
        return None  # not a repository (Git says so with the fix), or one with a work tree
    return (f"{folder} is a bare repository (no working tree to train in); clone it "
            f"(git clone {folder} my-project) and run there")


def index_lock_error(project: Path) -> str | None:
    folder = (git_dirs(project) or (None,))[0]  # a linked worktree's index is in its own git dir
    lock = folder / "index.lock" if folder is not None else None
    if lock is None or not lock.exists():
        return None
    return (f"{lock} exists: another git command is running in this repository, or one was killed and "
            f"left it; if no git command is running, remove it (rm {lock}) and start again")


def branch_error(project: Path, tag: str, session_dir: str = ".autoresearch") -> str | None:
    """autoresearch/<tag> must not exist yet (nor its session folder); an existing session is pointed to."""
    try:
        check_tag(tag)
    except ValueError as exc:
        return str(exc)
    session = Path(project) / session_dir / tag
    if (session / "config.toml").exists() or (session / "events.jsonl").exists():
        return existing_session(session, tag)
    try:
        repo = Git(project)
    except Exception:  # noqa: BLE001 - reported by git_error
        return None
    branch = f"autoresearch/{tag}"
    if repo.branch_exists(branch):
        return f"branch {branch} already exists (with no session folder); pick another tag"
    if session.exists() and any(session.iterdir()):
        return f"session folder {session_dir}/{tag} already exists; pick another tag"
    return None


def existing_session(session: Path, tag: str) -> str:
    """Where to go for a tag that already has a session: its finish screen, watch, or --resume."""
    events = session / "events.jsonl"
    ended = events.exists() and b'"kind": "session_end"' in events.read_bytes()[-65536:]
    watch = f"autoresearch-tui watch {session}"
    resume = f"autoresearch-tui run --resume --tag {tag}"
    if ended:
        return (f"session {tag} has finished: open its finish screen with `{watch}`, continue it with "
                f"`{resume}`, or pick another tag")
    return (f"session {tag} already exists: if it is running, watch it with `{watch}`; if it stopped, "
            f"continue it with `{resume}`; or pick another tag")


# -- the whole project ---------------------------------------------------------------------

def check_project(config: ResearchConfig) -> list[Check]:
    """Everything a session needs, as (name, ok, message[, fatal]) rows; changes nothing."""
    checks: list[Check] = []
    project = config.project
    repo: Any = None
    if problem := repository_error(project):
        checks.append(Check("git repository", False, problem))
    else:
        try:
            repo = Git(project)
        except UserError as exc:
            checks.append(Check("git repository", False, str(exc)))
    if repo is not None:
        has_commits = repo.has_commits()
        checks.append(Check("git repository", has_commits, str(repo.root) if has_commits
                            else "the repository has no commits yet; commit your project first"))
        if has_commits:
            detached = repo.detached
            checks.append(Check("branch checked out", not detached,
                                "HEAD is detached; check out a branch first (git switch main)" if detached
                                else f"on {repo.branch}"))
            dirty = repo.changed_files() if repo.is_dirty() else []
            checks.append(Check("clean working tree", not dirty,
                                f"uncommitted changes ({', '.join(dirty[:5])}); commit or stash them first"
                                if dirty else "no uncommitted changes"))
            problem = branch_error(project, config.tag, config.session_dir)
            checks.append(Check("research branch free", problem is None, problem or f"{config.branch} is free"))
            results = _rel(config.path(config.results_file), repo.root)
            tracked = bool(results and repo.is_tracked(results))
            checks.append(Check("results file untracked", not tracked,
                                f"{config.results_file} is tracked by git, so a reset could change it; "
                                f"run `git rm --cached {results}` and commit" if tracked
                                else f"{config.results_file} is not tracked by git"))
    train_problem = script_error(project, config.train_script, "training script")
    checks.append(Check("training script", train_problem is None, train_problem or config.train_script))
    checks.append(readonly_check(config))
    for key in ("results_file", "session_dir"):
        if problem := project_path_problem(project.resolve(), getattr(config, key), written=True):
            checks.append(Check(key.replace("_", " "), False, f"{problem}; give a path inside the project"))
    argv = config.command_argv()
    cmd_problem = command_error(project, argv)
    checks.append(Check("training command", cmd_problem is None, cmd_problem or shlex.join(argv)))
    checks += [Check(name, ok, message, fatal=False) for name, ok, message in fairness.doctor_lines(config)]
    problem = agent_error(config)
    checks.append(Check("agent", problem is None, problem or f"{config.agent} is ready"))
    checks.append(disk_check(project))
    return checks


def readonly_check(config: ResearchConfig) -> Check:
    """Which files are protected, and the flag that changes it; a missing default is not a failure."""
    protected = config.readonly_files()
    others = f"every file but {config.train_script} is reverted after each agent step anyway"
    if config.readonly_script is None and not protected:
        return Check("read-only script", True, f"none besides the defaults (no prepare.py here); {others}; "
                     "protect files whose hash must never change with --readonly a.py,b.py", fatal=False)
    problem = field_error("readonly_script", ", ".join(protected), {"train_script": config.train_script},
                          config.project)
    if problem:
        return Check("read-only script", False, f"{problem}; pass --readonly PATH[,PATH] (or --readonly '' "
                     "for none)")
    names = ", ".join(protected) or "none"
    return Check("read-only script", True, f"{names} (hash-checked every iteration); {others}; "
                 "change with --readonly a.py,b.py")


def disk_check(project: Path, minimum: int = MIN_FREE_BYTES) -> Check:
    try:
        free = shutil.disk_usage(project).free
    except OSError as exc:
        return Check("disk space", False, f"cannot read free space: {exc}", fatal=False)
    gb = free / (1 << 30)
    if free < minimum:
        return Check("disk space", False, f"only {gb:.1f} GB free for logs; free some space", fatal=False)
    return Check("disk space", True, f"{gb:.1f} GB free")


def _rel(path: Path, root: Path) -> str | None:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return None


# -- before the app spawns the engine ------------------------------------------------------

def check_can_start(config: ResearchConfig) -> None:
    """Raise UserError with the fix when the loop could not start on this project."""
    validate(config)
    if problem := repository_error(config.project):
        raise UserError(problem)
    repo = Git(config.project)
    repo.check_ready()
    session = config.session_path()
    if (session / "config.toml").exists() or (session / "events.jsonl").exists():
        raise UserError(existing_session(session, config.tag))
    if repo.branch_exists(config.branch):
        raise UserError(f"branch {config.branch} already exists; pick another --tag")
    if session.exists() and any(session.iterdir()):
        raise UserError(f"session folder {session} already exists; pick another --tag")


def launch_config_path(config: ResearchConfig) -> Path:
    """Where the exact config of a spawned engine is written (beside its session folder)."""
    return config.path(config.session_dir) / f"{config.tag}.launch.toml"


def write_launch_config(config: ResearchConfig) -> Path:
    path = launch_config_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    return config.save(path, full=True)
