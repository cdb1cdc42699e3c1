"""The research config (Phase 0 of the spec): one schema, loaded from autoresearch.toml, overridden
by flags, validated, saved.

Each key is declared once, below, as a `ResearchConfig` field: its default, how a TOML or
command-line value is read and checked (`parse`), its help, its flag and, for the wizard's
fields, their label. The CLI flags, the wizard, the TOML validation and the README's reference
table (`python -m autoresearch_tui.engine.config_readme --readme-table [README.md]`) all come from it.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import re
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - 3.10
    import tomli as tomllib

import tomlkit

from autoresearch_tui.core.categories import SCOPES
from autoresearch_tui.core.durations import exact_duration, format_duration
from autoresearch_tui.engine.config_values import (
    DIRECTIONS, agent_name, boolean, branch_tag, check_tag, choice, command_line, duration, files, gpu_ids,
    metric_and_direction, names, number, optional_text, prices, regex, text, whole)
from autoresearch_tui.engine.noise import POLICIES
from autoresearch_tui.errors import UserError

CONFIG_FILE = "autoresearch.toml"
DEVICES = ("auto", "cuda", "mps", "cpu")
MAX_WORKERS = 256  # each worker is a git worktree and a process tree
DEFAULT_READONLY = "prepare.py"


def default_tag(today: _dt.date | None = None) -> str:
    """Date-based tag like the spec's `mar8`."""
    today = today or _dt.date.today()
    return f"{today.strftime('%b').lower()}{today.day}"


# -- the schema --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Key:
    """One config key: how it is read, its help, its flag; `wizard` = (label, help, placeholder)."""

    name: str
    parse: Callable[[Any], Any]
    help: str
    flag: str
    metavar: str | None
    choices: tuple[str, ...] | None
    example: str  # the README's "example" column, as TOML
    wizard: tuple[str, str, str] | None
    dump: Callable[[Any], Any] | None  # the value as written to TOML, when not itself

    @property
    def boolean(self) -> bool:
        return self.parse is boolean


def key(default: Any, parse: Callable[[Any], Any], help: str, *, flag: str | None = None,
        metavar: str | None = None, choices: tuple[str, ...] | None = None, example: str = "",
        wizard: tuple[str, str, str] | None = None, dump: Callable[[Any], Any] | None = None,
        factory: Callable[[], Any] | None = None) -> Any:
    """A ResearchConfig field carrying its Key (the name is filled in by `KEYS`)."""
    spec = dict(parse=parse, help=help, flag=flag, metavar=metavar, choices=choices, example=example,
                wizard=wizard, dump=dump)
    if factory is not None:
        return field(default_factory=factory, metadata={"key": spec})
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"key": spec})
    return field(default=default, metadata={"key": spec})


@dataclass
class ResearchConfig:
    # The spec's eight parameters, then how to run and propose, then limits and details.
    # The wizard shows the keys that have `wizard=`, in this order.
    train_script: str = key(
        "train.py", text, "the only file the agent may edit", flag="--train", metavar="PATH",
        example='"train.py"',
        wizard=("Training script", "The only file the agent edits (default train.py).", "train.py"))
    readonly_script: list[str] | None = key(
        None, files, "files that must never change (their hashes are checked every iteration); "
        "default: prepare.py when it exists, else none; everything but the training script is reverted anyway",
        flag="--readonly", metavar="PATH[,PATH]", example='["prepare.py", "data.py"]',
        wizard=("Read-only script", "Never edited: data, evaluation (default prepare.py).", "none"))
    time_budget: float | None = key(
        None, duration, "required: training time per run, e.g. 90s, 5m, 1h, 1h30m or seconds",
        metavar="DURATION", example='"5m"', dump=exact_duration,
        wizard=("Time budget / run", "Training time per run: 90s, 5m, 1h. No default.", "e.g. 5m"))
    metric: str | None = key(
        None, metric_and_direction,
        "required: the metric as the script prints it and its direction, NAME:min or NAME:max",
        metavar="NAME:min|max", example='"val_bpb:min"',
        wizard=("Metric", "NAME:min or NAME:max as printed, e.g. val_bpb:min", "e.g. val_bpb:min"))
    direction: str | None = key(
        None, choice(DIRECTIONS),
        "the metric's direction; `metric = \"NAME:min\"` sets it too, so this key is rarely needed",
        choices=DIRECTIONS, example='"min"')
    max_iterations: int | None = key(
        None, whole(0, none_word="unlimited"), "experiments after the baseline (0: the baseline only); "
        "default unlimited", metavar="N", example="100",
        wizard=("Max iterations", "Experiments after the baseline, or unlimited.", "unlimited"))
    scope: str = key(
        "all", choice(SCOPES), "what the agent may change", choices=SCOPES, example='"all"',
        wizard=("Modification scope", "What the agent may change (default all).", ""))
    tag: str = key(
        "", branch_tag, "the research branch is `autoresearch/<tag>`; default: today's date, e.g. nov24",
        factory=default_tag, example='"nov24"',
        wizard=("Branch tag", "Branch autoresearch/<tag> (default: today, e.g. mar8).", "e.g. mar8"))
    results_file: str = key(
        "results.tsv", text, "where each experiment is logged (inside the repository, untracked)",
        flag="--results", metavar="PATH", example='"results.tsv"',
        wizard=("Results file", "Where each experiment is logged (default results.tsv).", "results.tsv"))
    agent: str = key(
        "builtin", agent_name, "who proposes changes: builtin, optuna, command, claude, codex, gemini, aider, "
        "opencode, openai, anthropic (see Agents)", metavar="NAME", example='"builtin"',
        wizard=("Agent", "Who proposes changes (agent_cmd, agent_model: in the toml).", ""))
    train_command: str | list[str] | None = key(
        None, command_line, "how a run starts; default: `uv run <script>` with a uv.lock, else this Python",
        metavar="COMMAND", example='"uv run train.py"',
        wizard=("Training command", "How a run starts (default: uv run / python SCRIPT).", "default"))
    seed: int = key(
        0, whole(0), "seed of the proposer's choices (the built-in proposer is deterministic for a seed)",
        metavar="N", example="0", wizard=("Seed", "Seed for the proposer's choices (default 0).", "0"))
    hypothesis: str | None = key(
        None, optional_text, "an opening hypothesis the first iterations explore", metavar="TEXT",
        example='"higher learning rates help"',
        wizard=("Hypothesis", "Optional: a first direction, e.g. try a deeper model.", "optional"))
    shell: bool = key(False, boolean, "run train_command through /bin/sh (only if you need it)",
                      example="false")
    vary: list[str] = key([], names, "experiment plan: constants or categories to vary", metavar="NAMES",
                          example='["optimizer"]')
    hold: list[str] = key([], names, "experiment plan: constants or categories never to change",
                          metavar="NAMES", example='["DEPTH", "SEQ_LEN"]')
    device: str = key("auto", choice(DEVICES), "force a device", choices=DEVICES, example='"auto"')
    agent_cmd: str | None = key(
        None, optional_text, "command template of the `command` agent ({prompt_file}, {prompt}, {train_path}, "
        "{readonly_path})", metavar="TEMPLATE", example='"my-agent --prompt-file {prompt_file}"')
    agent_timeout: float = key(900.0, duration, "an agent step longer than this is killed", metavar="DURATION",
                               example='"15m"', dump=exact_duration)
    agent_model: str | None = key(None, optional_text, "model name for the agent", metavar="NAME",
                                  example='"gpt-4.1"')
    agent_base_url: str | None = key(None, optional_text, "base URL of an OpenAI-compatible or Anthropic "
                                     "endpoint", metavar="URL", example='"https://api.openai.com/v1"')
    agent_key_env: str | None = key(None, optional_text, "NAME of the environment variable holding the API "
                                    "key (the key itself is never written anywhere)", metavar="NAME",
                                    example='"OPENAI_API_KEY"')
    agent_max_retries: int = key(3, whole(0), "a malformed answer is sent back this many times",
                                 metavar="N", example="3")
    agent_prices: dict | None = key(None, prices, "$ per million tokens, for the cost shown and max_cost",
                                    metavar="input=N,output=N", example="{input = 3.0, output = 15.0}")
    max_cost: float | None = key(None, number(0, above=True), "stop cleanly once the agent has spent this "
                                 "many dollars", metavar="DOLLARS", example="20")
    prompt_template: str | None = key(None, optional_text, "your prompt template ($name placeholders); "
                                      "default agents/prompt_template.md", metavar="PATH",
                                      example='"my_prompt.md"')
    notes_file: str = key("program.md", text, "your research notes, added to every prompt", metavar="PATH",
                          example='"program.md"')
    history_keep_last: int = key(15, whole(0), "results the prompt shows besides every keep", metavar="N",
                                 example="15")
    review: bool = key(False, boolean, "each proposal waits for approve / edit / reject before it runs",
                       example="false")
    pipeline: str = key("auto", lambda v: choice(("on", "off", "auto"))(
        {True: "on", False: "off"}[v] if isinstance(v, bool) else v),
        "prepare the next proposal while the current run trains (auto: on for agents slower than builtin)",
        choices=("on", "off", "auto"), example='"auto"')
    strict_pipeline: bool = key(False, boolean, "ask a prepared candidate again after a keep instead of "
                                "merging it onto the new best", example="false")
    time_limit_factor: float = key(2.0, number(1, 100), "hard wall-clock limit = budget x this",
                                   metavar="X", example="2.0")
    time_limit: float | None = key(None, duration, "absolute hard limit per run instead of the factor",
                                   metavar="DURATION", example='"12m"', dump=exact_duration)
    kill_grace: float = key(10.0, duration, "SIGTERM -> SIGKILL grace of a run over its limit",
                            metavar="DURATION", example='"10s"', dump=exact_duration)
    metric_pattern: str | None = key(None, regex, "a custom regular expression for the metric "
                                     "(`<number>`, `<metric>`); the last match wins", metavar="REGEX",
                                     example="'^val_bpb:\\s*(<number>)'")
    session_dir: str = key(".autoresearch", text, "where session folders go (inside the repository)",
                           metavar="PATH", example='".autoresearch"')
    progress_every: int = key(10, whole(0), "a progress report every N experiments", metavar="N",
                              example="10")
    keep_policy: str = key("any", choice(POLICIES), "how much better a run must be to be kept (see Noise)",
                           choices=POLICIES, example='"any"')
    min_delta: float = key(0.0, number(0), "min_delta policy: the margin a candidate must win by",
                           metavar="X", example="0.0")
    noise_z: float | None = key(None, number(0), "sigma and confirm policies: the margin; default the "
                                "policy's own (2 noise sigmas for sigma, 1.9 standard errors for confirm)",
                                metavar="Z", example="2.0")
    confirm_runs: int = key(6, whole(1), "confirm policy: at most this many runs of a candidate", metavar="N",
                            example="6")
    baseline_repeats: int = key(1, whole(1), "run the baseline this many times to measure the noise",
                                metavar="N", example="1")
    workers: int = key(1, whole(0, maximum=MAX_WORKERS), "experiments in flight at once (0: one per GPU)", metavar="N",
                       example="1")
    gpus: list[str] | None = key(None, gpu_ids, "GPUs the workers use, one worker each", metavar="IDS",
                                 example='["0", "1"]')
    executor: str = key("local", choice(("local", "ray")), "where runs execute", choices=("local", "ray"),
                        example='"local"')
    ray_address: str | None = key(None, optional_text, "address of an existing Ray cluster (executor ray)",
                                  metavar="ADDRESS", example='"ray://head:10001"')
    strict_replay: bool = key(False, boolean, "re-run a winner from an older best on top of the new best "
                              "before keeping it", example="false")
    circuit_breaker: int = key(3, whole(0), "pause after this many crashes in a row with the same reason "
                               "(0: never)", metavar="N", example="3")
    on_new_best: str | None = key(None, optional_text, "hook: your shell command on a new best",
                                  metavar="COMMAND", example="\"notify-send 'new best'\"")
    on_finish: str | None = key(None, optional_text, "hook: your shell command when the session ends",
                                metavar="COMMAND", example='"curl -d done ntfy.example/me"')
    bell: bool = key(False, boolean, "the live screen rings the terminal bell on a new best", example="false")
    # Not a key: where the project is.
    project: Path = field(default_factory=Path.cwd)

    # -- derived -------------------------------------------------------------------------
    @property
    def branch(self) -> str:
        return f"autoresearch/{self.tag}"

    @property
    def limit_s(self) -> float:
        if self.time_limit:
            return self.time_limit
        return (self.time_budget or 0) * self.time_limit_factor

    @property
    def metric_spec(self) -> str:
        return f"{self.metric}:{self.direction}" if self.metric else ""

    def path(self, relative: str) -> Path:
        return (self.project / relative).resolve()

    def session_path(self) -> Path:
        return self.path(self.session_dir) / self.tag

    def readonly_files(self) -> list[str]:
        """The protected files: as configured, else prepare.py when the project has one."""
        if self.readonly_script is not None:
            return list(self.readonly_script)
        return [DEFAULT_READONLY] if (self.project / DEFAULT_READONLY).is_file() else []

    def command_argv(self) -> list[str]:
        """argv of the training command; the shell only when the user configured one."""
        cmd = self.train_command
        if cmd is None:
            if (self.project / "uv.lock").exists():
                return ["uv", "run", self.train_script]
            return [sys.executable, self.train_script]
        if self.shell:
            return ["/bin/sh", "-c", cmd if isinstance(cmd, str) else shlex.join(cmd)]
        return list(cmd) if isinstance(cmd, list) else shlex.split(cmd)

    # -- saving --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Every set key, as TOML values (the session's snapshot)."""
        out: dict[str, Any] = {}
        for spec in KEYS.values():
            value = self.value_of(spec.name)
            if value is None or (spec.name == "direction" and self.metric):
                continue
            out[spec.name] = spec.dump(value) if spec.dump else value
        return out

    def value_of(self, name: str) -> Any:
        return self.metric_spec or None if name == "metric" else getattr(self, name)

    def toml_text(self, existing: str | None = None) -> str:
        """autoresearch.toml for this config, edited into `existing` so its comments and order stay:
        keys already there are updated (removed when unset), new keys are added when not default."""
        doc = tomlkit.parse(existing) if existing else tomlkit.document()
        table = doc["autoresearch"] if isinstance(doc.get("autoresearch"), dict) else doc
        defaults = ResearchConfig(project=self.project)
        wanted = self.to_dict()
        for name in KEYS:
            value = _inline(wanted[name]) if name in wanted else None
            if name in table:
                if name not in wanted and not (name == "direction" and self.metric):
                    del table[name]
                elif name in wanted and not self._reads_as(name, table[name]):
                    table[name] = value
            elif name in wanted and self.value_of(name) != defaults.value_of(name):
                table[name] = value
        return tomlkit.dumps(doc)

    def _reads_as(self, name: str, item: Any) -> bool:
        """Does this TOML item already say this key's current value (whatever its spelling)?"""
        raw = item.unwrap() if hasattr(item, "unwrap") else item
        try:
            value = KEYS[name].parse(raw)
        except ValueError:
            return False
        return value == ((self.metric, self.direction) if name == "metric" else getattr(self, name))

    def save(self, path: Path | None = None, full: bool = False) -> Path:
        """autoresearch.toml edited in place; `full`: every key, for a file only the tool reads."""
        path = path or self.project / CONFIG_FILE
        if full:
            path.write_text(tomlkit.dumps(self.to_dict()), encoding="utf-8")
            return path
        existing = path.read_text(encoding="utf-8") if path.is_file() else None
        path.write_text(self.toml_text(existing), encoding="utf-8")
        return path

    def table(self, platform: str = "[detected — see Phase 1]") -> str:
        """The spec's Research Config table, exactly as Phase 0 prints it."""
        rows = [
            ("Training script", self.train_script),
            ("Read-only script", ", ".join(self.readonly_files()) or "none"),
            ("Time budget / run", format_duration(self.time_budget)),
            ("Metric", f"{self.metric} ({self.direction})"),
            ("Max iterations", str(self.max_iterations) if self.max_iterations is not None else "unlimited"),
            ("Modification scope", self.scope),
            ("Branch", self.branch),
            ("Results file", self.results_file),
            ("Platform", platform),
        ]
        lines = ["## AutoResearch Config", "| Parameter | Value |", "|------------------------|-------------------------------|"]
        lines += [f"| {name:<22} | {value:<29} |" for name, value in rows]
        return "\n".join(lines)


def _inline(value: Any) -> Any:
    """A table value stays on its key's line ({input = 3.0, output = 15.0}), as a user writes it."""
    if not isinstance(value, dict):
        return value
    table = tomlkit.inline_table()
    table.update(value)
    return table


def _keys() -> dict[str, Key]:
    out: dict[str, Key] = {}
    for f in dataclasses.fields(ResearchConfig):
        spec = f.metadata.get("key")
        if spec is not None:
            flag = spec["flag"] or "--" + f.name.replace("_", "-")
            out[f.name] = Key(name=f.name, **{**spec, "flag": flag})
    return out


KEYS: dict[str, Key] = _keys()


# -- parsing -------------------------------------------------------------------------------

def apply_values(config: ResearchConfig, values: dict[str, Any], source: str = "") -> ResearchConfig:
    """Set keys from TOML/CLI values, read and checked by the schema; errors name the key and the fix."""
    import difflib

    for name, value in values.items():
        if value is None:
            continue
        where = f"{source}: " if source else ""
        spec = KEYS.get(name)
        if spec is None:
            close = difflib.get_close_matches(name, list(KEYS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else "; see the configuration reference in the README"
            raise UserError(f"{where}unknown key {name!r}{hint}")
        try:
            parsed = spec.parse(value)
        except ValueError as exc:
            raise UserError(f"{where}{name}: {exc}") from None
        if name == "metric":
            config.metric, config.direction = parsed
        else:
            setattr(config, name, parsed)
    return config


def load_toml(path: Path) -> tuple[dict[str, Any], str]:
    if path.is_dir():
        raise UserError(f"{path} is a folder; give the config file itself (e.g. {path / CONFIG_FILE})")
    try:
        text_ = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text file; write it as UTF-8 TOML") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text_)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: invalid TOML: {exc}; fix that line") from None
    return data, text_


def _line_of(text_: str, name: str) -> int | None:
    for n, line in enumerate(text_.splitlines(), 1):
        if re.match(rf"\s*{re.escape(name)}\s*=", line):
            return n
    return None


def load_config(project: Path, config_file: Path | None = None, overrides: dict[str, Any] | None = None) -> ResearchConfig:
    """Defaults <- autoresearch.toml <- CLI overrides."""
    config = ResearchConfig(project=project.resolve())
    path = config_file or project / CONFIG_FILE
    if config_file is not None and not config_file.exists():
        raise UserError(f"config file {config_file} does not exist")
    if path.exists():
        data, text_ = load_toml(path)
        data = data.get("autoresearch", data)  # accept an [autoresearch] table too
        for name, value in data.items():
            line = _line_of(text_, name)
            apply_values(config, {name: value}, source=f"{path.name} line {line}" if line else path.name)
    apply_values(config, overrides or {}, source="")
    return config


# -- before a run --------------------------------------------------------------------------

def validate(config: ResearchConfig) -> None:
    """Everything needed before a run; one clear message naming the key and the fix."""
    if config.time_budget is None:
        raise UserError("time_budget is not set: pass --time-budget 5m (or set time_budget in autoresearch.toml)")
    if not config.metric or not config.direction:
        raise UserError("metric is not set: pass --metric val_bpb:min (name and min or max)")
    if not config.project.is_dir():
        raise UserError(f"project folder {config.project} does not exist")
    root = config.project.resolve()
    train = config.path(config.train_script)
    if problem := project_path_problem(root, config.train_script):
        raise UserError(f"train_script: {problem}; pass --train PATH")
    if not train.is_file():
        raise UserError(f"train_script: {train} does not exist; pass --train PATH")
    for name in config.readonly_files():
        if config.path(name) == train:
            raise UserError("train_script and readonly_script are the same file; the read-only script must be "
                            "another file")
        if problem := project_path_problem(root, name):
            raise UserError(f"readonly_script: {problem}; pass --readonly PATH or --readonly '' for none")
        if not config.path(name).is_file():
            raise UserError(f"readonly_script: {config.path(name)} does not exist; pass --readonly PATH "
                            "(or --readonly '' to protect nothing extra)")
    session = str(Path(config.session_dir) / config.tag)  # the session's own folder too: a planted link
    for name, flag, relative in (("results_file", "--results", config.results_file),
                                 ("session_dir", "--session-dir", session)):
        if problem := project_path_problem(root, relative, written=True):
            raise UserError(f"{name}: {problem}; pass {flag} with a path inside the project")
    from autoresearch_tui.engine.report_files import SUMMARY_FILE

    if problem := project_path_problem(root, SUMMARY_FILE, written=True):
        raise UserError(f"{SUMMARY_FILE}: {problem}; remove it (git rm {SUMMARY_FILE}) so the summary can be "
                        "written there")
    if config.scope not in SCOPES:
        raise UserError(f"scope: {config.scope!r} is not one of {', '.join(SCOPES)}")
    check_tag(config.tag)
    argv = config.command_argv()
    if not argv:
        raise UserError("train_command is empty; give the command that runs the training script")
    exe = argv[0]
    found = shutil.which(exe, path=None) or (Path(exe).is_absolute() and Path(exe).exists())
    if not found and not (config.project / exe).exists():
        raise UserError(f"train_command: {exe!r} was not found on PATH; install it or set train_command")


def project_path_problem(root: Path, relative: str, written: bool = False) -> str | None:
    """A path the tool reads or writes must stay in the work tree, out of .git, and (written) not be
    a symlink anywhere below the project: a planted link would send the writes elsewhere."""
    if not relative.strip():
        return "is empty"
    path = root / relative
    if written:
        probe = root
        for part in Path(relative).parts:
            probe = probe / part
            if probe.is_symlink():
                return f"{probe} is a symbolic link; the tool does not write through links"
    resolved = path.resolve()
    try:
        inside = resolved.relative_to(root)
    except ValueError:
        return f"{resolved} is outside the project {root}"
    if ".git" in inside.parts:
        return f"{relative} is inside .git, which belongs to git"
    if written and resolved == root:
        return f"{relative} is the project folder itself"
    return None
