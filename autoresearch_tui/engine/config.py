"""The research config (Phase 0 of the spec): load from autoresearch.toml, override, validate, save."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import re
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - 3.10
    import tomli as tomllib

import tomli_w

from autoresearch_tui.engine.categories import SCOPES
from autoresearch_tui.engine.durations import exact_duration, format_duration, parse_duration
from autoresearch_tui.errors import UserError

CONFIG_FILE = "autoresearch.toml"
DIRECTIONS = ("min", "max")
DEVICES = ("auto", "cuda", "mps", "cpu")


def default_tag(today: _dt.date | None = None) -> str:
    """Date-based tag like the spec's `mar8`."""
    today = today or _dt.date.today()
    return f"{today.strftime('%b').lower()}{today.day}"


@dataclass
class ResearchConfig:
    # The spec's eight parameters.
    train_script: str = "train.py"
    readonly_script: str = "prepare.py"
    time_budget: float | None = None  # seconds; the spec says ask, do not assume
    metric: str | None = None
    direction: str | None = None
    max_iterations: int | None = None  # None = unlimited
    scope: str = "all"
    tag: str = field(default_factory=default_tag)
    results_file: str = "results.tsv"
    # How to run and propose.
    train_command: str | list[str] | None = None  # None: `uv run <script>` with uv.lock, else python
    shell: bool = False  # only when the user asks: run train_command through the shell
    agent: str = "builtin"  # builtin | command | claude | codex | gemini | aider | opencode | openai | anthropic
    agent_cmd: str | None = None  # command template for `command` (or to override a preset)
    agent_timeout: float = 900.0
    agent_model: str | None = None
    agent_base_url: str | None = None
    agent_key_env: str | None = None  # the NAME of the variable holding the key; keys never reach disk
    agent_max_retries: int = 3
    agent_prices: dict | None = None  # {input = $/1M tokens, output = $/1M tokens}
    max_cost: float | None = None  # stop cleanly once the agent has spent this many dollars
    prompt_template: str | None = None
    notes_file: str = "program.md"
    history_keep_last: int = 15
    review: bool = False  # each proposal waits for approve / edit / reject before it runs
    seed: int = 0
    hypothesis: str | None = None
    vary: list[str] = field(default_factory=list)
    hold: list[str] = field(default_factory=list)
    device: str = "auto"
    # Limits and details.
    time_limit_factor: float = 2.0  # hard wall-clock limit = budget x factor (the 10-minute rule)
    time_limit: float | None = None  # absolute override, seconds
    kill_grace: float = 10.0
    metric_pattern: str | None = None
    session_dir: str = ".autoresearch"
    progress_every: int = 10
    pipeline: str = "auto"  # on | off | auto (on for agents slower than the built-in one)
    strict_pipeline: bool = False  # a prepared candidate is asked again after a keep instead of 3-way applied
    keep_policy: str = "any"  # any | min_delta | sigma | confirm (see engine/noise.py)
    min_delta: float = 0.0
    noise_z: float | None = None  # None: the policy's own (2 for sigma, 1.9 for confirm; engine/noise.py)
    confirm_runs: int = 6  # confirm: at most this many runs of a candidate
    baseline_repeats: int = 1  # run the baseline k times to estimate the noise
    workers: int = 1  # experiments in flight at once (0: one per GPU)
    gpus: list[str] | None = None  # which GPUs the workers use, e.g. ["0", "1"]
    executor: str = "local"  # local | ray
    ray_address: str | None = None
    strict_replay: bool = False  # a winner from an older best is re-run on the new best before it is kept
    circuit_breaker: int = 3  # pause after this many crashes in a row with the same reason (0: never)
    on_new_best: str | None = None  # hook commands (the user's own shell commands)
    on_finish: str | None = None
    bell: bool = False  # the live screen rings the terminal bell on a new best
    # Not saved: where the project is.
    project: Path = field(default_factory=Path.cwd, metadata={"save": False})

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
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.metadata.get("save", True) is False:
                continue
            value = getattr(self, f.name)
            if value is None:
                continue
            if f.name in ("time_budget", "time_limit", "kill_grace", "agent_timeout"):
                value = exact_duration(value)
            out[f.name] = value
        if self.metric:
            out["metric"] = self.metric_spec
            out.pop("direction", None)
        return out

    def save(self, path: Path | None = None) -> Path:
        path = path or self.project / CONFIG_FILE
        path.write_text(tomli_w.dumps(self.to_dict()), encoding="utf-8")
        return path

    def table(self, platform: str = "[detected — see Phase 1]") -> str:
        """The spec's Research Config table, exactly as Phase 0 prints it."""
        rows = [
            ("Training script", self.train_script),
            ("Read-only script", self.readonly_script),
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


# -- parsing -------------------------------------------------------------------------------

def parse_metric(spec: str) -> tuple[str, str]:
    """`val_bpb:min` -> ("val_bpb", "min")."""
    name, sep, direction = str(spec).strip().partition(":")
    name, direction = name.strip(), direction.strip().lower()
    if not sep or not name:
        raise ValueError(f"{spec!r} needs a direction: write NAME:min or NAME:max, e.g. val_bpb:min")
    if direction in ("minimize", "minimise", "lower"):
        direction = "min"
    if direction in ("maximize", "maximise", "higher"):
        direction = "max"
    if direction not in DIRECTIONS:
        raise ValueError(f"{spec!r} has an unknown direction {direction!r}: use min or max")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", name):
        raise ValueError(f"{name!r} is not a metric name (letters, digits, _ . -)")
    return name, direction


_TAG_BAD = re.compile(r"(^[-./])|(\.\.)|([\x00-\x20~^:?*\[\\])|(@\{)|(\.lock$)|([./]$)")


def check_tag(tag: str) -> str:
    if not tag or _TAG_BAD.search(tag):
        raise ValueError(
            f"{tag!r} is not a valid branch name part: use letters, digits, '-' or '_' (e.g. nov24)"
        )
    return tag


def _int(value: Any, key: str, allow_none: bool = False) -> int | None:
    if allow_none and (value is None or str(value).strip().lower() in ("", "unlimited", "none")):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"must be a whole number, got {value!r}")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValueError(f"must be a whole number, got {value!r}") from None
    if number < 0:
        raise ValueError(f"must not be negative, got {number}")
    return number


_FIXES = {
    "time_budget": "such as 90s, 5m, 1h or 300 (seconds)",
    "max_iterations": "a whole number (0: the baseline only), or 'unlimited'",
    "scope": "one of " + ", ".join(SCOPES),
}


def apply_values(config: ResearchConfig, values: dict[str, Any], source: str = "") -> ResearchConfig:
    """Set fields from TOML/CLI values, converting types; errors name the key and the fix."""
    known = {f.name: f for f in dataclasses.fields(config) if f.metadata.get("save", True)}
    for key, value in values.items():
        if value is None:
            continue
        where = f"{source}: " if source else ""
        if key not in known:
            close = [k for k in known if k.startswith(key[:4])]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UserError(f"{where}unknown key {key!r}{hint}")
        try:
            _set(config, key, value)
        except ValueError as exc:
            fix = _FIXES.get(key)
            raise UserError(f"{where}{key}: {exc}" + (f"; expected {fix}" if fix and fix not in str(exc) else "")) from None
    return config


def _set(config: ResearchConfig, key: str, value: Any) -> None:
    if key == "time_budget":
        config.time_budget = parse_duration(value)
    elif key == "metric":
        config.metric, config.direction = parse_metric(value)
    elif key == "direction":
        if str(value).lower() not in DIRECTIONS:
            raise ValueError(f"{value!r} is not min or max")
        config.direction = str(value).lower()
    elif key == "max_iterations":
        config.max_iterations = _int(value, key, allow_none=True)
    elif key == "keep_policy":
        from autoresearch_tui.engine.noise import POLICIES

        if str(value) not in POLICIES:
            raise ValueError(f"{value!r} is not one of {', '.join(POLICIES)}")
        config.keep_policy = str(value)
    elif key in ("min_delta", "noise_z"):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError(f"must be a number, got {value!r}")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"must be a number, got {value!r}") from None
        if number < 0:
            raise ValueError("must not be negative")
        setattr(config, key, number)
    elif key in ("confirm_runs", "baseline_repeats"):
        number = _int(value, key)
        if not number:
            raise ValueError("must be at least 1")
        setattr(config, key, number)
    elif key in ("seed", "progress_every", "circuit_breaker", "agent_max_retries", "history_keep_last"):
        config.__setattr__(key, _int(value, key))
    elif key == "scope":
        if str(value) not in SCOPES:
            raise ValueError(f"{value!r} is not a scope")
        config.scope = str(value)
    elif key == "tag":
        config.tag = check_tag(str(value))
    elif key in ("time_limit", "kill_grace", "agent_timeout"):
        setattr(config, key, parse_duration(value))
    elif key == "time_limit_factor":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 1:
            raise ValueError(f"must be a number >= 1, got {value!r}")
        config.time_limit_factor = float(value)
    elif key in ("vary", "hold"):
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ValueError(f"must be a list of constant names or categories, got {value!r}")
        setattr(config, key, [i.strip() for i in items if i.strip()])
    elif key == "pipeline":
        value = {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else str(value)
        if value not in ("on", "off", "auto"):
            raise ValueError(f"{value!r} is not on, off or auto")
        config.pipeline = value
    elif key == "max_cost":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError(f"must be a number of dollars, got {value!r}")
        try:
            config.max_cost = float(value)
        except ValueError:
            raise ValueError(f"must be a number of dollars, got {value!r}") from None
        if config.max_cost <= 0:
            raise ValueError("must be greater than zero")
    elif key == "agent_prices":
        if not isinstance(value, dict):
            raise ValueError("must be a table like {input = 3.0, output = 15.0} ($ per 1M tokens)")
        config.agent_prices = dict(value)
    elif key == "workers":
        config.workers = _int(value, key)
    elif key == "gpus":
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, (str, int)) and not isinstance(i, bool) for i in items):
            raise ValueError(f"must be a list of GPU ids such as 0,1,2,3, got {value!r}")
        config.gpus = [str(i).strip() for i in items if str(i).strip()] or None
    elif key == "executor":
        if str(value) not in ("local", "ray"):
            raise ValueError(f"{value!r} is not local or ray")
        config.executor = str(value)
    elif key in ("shell", "strict_pipeline", "review", "strict_replay", "bell"):
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, got {value!r}")
        setattr(config, key, value)
    elif key == "train_command":
        if not isinstance(value, (str, list)) or (isinstance(value, list) and not all(isinstance(i, str) for i in value)):
            raise ValueError(f"must be a string or a list of strings, got {value!r}")
        config.train_command = value
    elif key == "agent":
        from autoresearch_tui.agents.registry import AGENTS

        if str(value) not in AGENTS:
            raise ValueError(f"{value!r} is not one of {', '.join(AGENTS)}")
        config.agent = str(value)
    elif key == "device":
        if str(value) not in DEVICES:
            raise ValueError(f"{value!r} is not one of {', '.join(DEVICES)}")
        config.device = str(value)
    else:
        if not isinstance(value, str):
            raise ValueError(f"must be a string, got {value!r}")
        setattr(config, key, value)


def load_toml(path: Path) -> tuple[dict[str, Any], str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text file; write it as UTF-8 TOML") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: invalid TOML: {exc}; fix that line") from None
    return data, text


def _line_of(text: str, key: str) -> int | None:
    for number, line in enumerate(text.splitlines(), 1):
        if re.match(rf"\s*{re.escape(key)}\s*=", line):
            return number
    return None


def load_config(project: Path, config_file: Path | None = None, overrides: dict[str, Any] | None = None) -> ResearchConfig:
    """Defaults <- autoresearch.toml <- CLI overrides."""
    config = ResearchConfig(project=project.resolve())
    path = config_file or project / CONFIG_FILE
    if config_file is not None and not config_file.exists():
        raise UserError(f"config file {config_file} does not exist")
    if path.exists():
        data, text = load_toml(path)
        data = data.get("autoresearch", data)  # accept an [autoresearch] table too
        for key, value in data.items():
            line = _line_of(text, key)
            apply_values(config, {key: value}, source=f"{path.name} line {line}" if line else path.name)
    apply_values(config, overrides or {}, source="")
    return config


def validate(config: ResearchConfig) -> None:
    """Everything needed before a run; one clear message naming the field and the fix."""
    if config.time_budget is None:
        raise UserError("time_budget is not set: pass --time-budget 5m (or set time_budget in autoresearch.toml)")
    if not config.metric or not config.direction:
        raise UserError("metric is not set: pass --metric val_bpb:min (name and min or max)")
    if not config.project.is_dir():
        raise UserError(f"project folder {config.project} does not exist")
    train, readonly = config.path(config.train_script), config.path(config.readonly_script)
    if not train.is_file():
        raise UserError(f"train_script: {train} does not exist; pass --train PATH")
    if train == readonly:
        raise UserError("train_script and readonly_script are the same file; the read-only script must be another file")
    if not _inside(train, config.project.resolve()):
        raise UserError(f"train_script: {train} is outside the project {config.project}; it must be in the repository")
    if config.readonly_script and not readonly.is_file():
        raise UserError(f"readonly_script: {readonly} does not exist; pass --readonly PATH")
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


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False
