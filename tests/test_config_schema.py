"""The config schema: one declaration per key, from which the flags, the wizard's fields, the TOML
checks and the README table come; autoresearch.toml keeps the user's comments when written."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from autoresearch_tui.cli import build_parser
from autoresearch_tui.engine import preflight
from autoresearch_tui.engine.config import KEYS, ResearchConfig, load_config
from autoresearch_tui.engine.config_readme import readme_table, replace_readme_table
from autoresearch_tui.errors import UserError
from autoresearch_tui.tui.screens.wizard_fields import field_specs

from conftest import ROOT, cli, make_project


def _flags(command: str) -> dict[str, str]:
    """dest -> option string of a subcommand's config flags, as argparse has them."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    parser = sub.choices[command]
    return {a.dest: a.option_strings[0] for a in parser._actions if a.option_strings}


@pytest.mark.parametrize("command", ["run", "wizard", "doctor"])
def test_every_key_has_a_flag(command: str) -> None:
    flags = _flags(command)
    missing = sorted(set(KEYS) - set(flags))
    assert not missing, f"config keys without a flag on `{command}`: {missing}"
    assert flags["metric_pattern"] == "--metric-pattern"
    assert {flags[k] for k in KEYS} == {KEYS[k].flag for k in KEYS}


def test_readme_table_is_the_schema() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert replace_readme_table(readme) == readme, (
        "README's config table differs from the schema: run "
        "`python -m autoresearch_tui.engine.config_readme --readme-table README.md`")
    for name, spec in KEYS.items():
        assert f"| `{name}` | `{spec.flag}` |" in readme_table()


def test_wizard_fields_come_from_the_schema() -> None:
    specs = field_specs()
    assert [s.key for s in specs] == [k for k, spec in KEYS.items() if spec.wizard]
    assert all(s.label == KEYS[s.key].wizard[0] for s in specs)
    scope = next(s for s in specs if s.key == "scope")
    assert [v for _, v in scope.options] == list(KEYS["scope"].choices)


def test_a_flag_reaches_the_config_through_the_schema(project: Path) -> None:
    base = ("run", str(project), "--yes", "--headless", "--metric", "val_bpb:min", "--time-budget", "1s")
    result = cli(*base, "--metric-pattern", r"^val_bpb:\s*(<number>)", "--readonly", "prepare.py,train.py")
    assert result.returncode == 2 and "same file" in result.stderr, result.stderr
    result = cli(*base, "--metric-pattern", "((")
    assert result.returncode == 2 and "metric_pattern: '((' is not a regular expression" in result.stderr


def test_writing_keeps_comments_and_order(tmp_path: Path) -> None:
    proj = make_project(tmp_path / "p")
    original = (
        "# my research config\n"
        'metric = "val_bpb:min"   # what prepare.py prints\n'
        "\n"
        "# the budget the reference uses\n"
        "time_budget = 300\n"
        'hypothesis = "wider is better"\n'
        "seed = 7  # lucky\n"
    )
    (proj / "autoresearch.toml").write_text(original)
    config = load_config(proj)
    assert config.toml_text(original) == original  # nothing changed: byte-identical
    config.seed = 8
    config.hypothesis = None
    config.scope = "optimizer"
    config.save()
    written = (proj / "autoresearch.toml").read_text()
    assert written.startswith("# my research config\nmetric = \"val_bpb:min\"   # what prepare.py prints\n")
    assert "# the budget the reference uses\ntime_budget = 300\n" in written  # same value, same spelling
    assert "seed = 8" in written and "# lucky" in written
    assert "hypothesis" not in written
    assert written.rstrip().endswith('scope = "optimizer"')
    again = load_config(proj)
    assert (again.seed, again.hypothesis, again.scope, again.time_budget) == (8, None, "optimizer", 300)


def test_a_new_file_holds_only_what_differs_from_the_defaults(tmp_path: Path) -> None:
    proj = make_project(tmp_path / "p")
    config = load_config(proj, overrides={"time_budget": "90s", "metric": "acc:max", "tag": "t1",
                                          "agent_prices": "input=3,output=15"})
    text = config.toml_text()
    assert "agent_prices = {input = 3.0, output = 15.0}" in text
    assert "train_script" not in text and 'time_budget = "90s"' in text and 'metric = "acc:max"' in text
    (proj / "autoresearch.toml").write_text(text)
    back = load_config(proj)
    assert {k: back.value_of(k) for k in KEYS} == {k: config.value_of(k) for k in KEYS}


def test_readonly_takes_a_list_and_defaults_to_prepare_only_when_present(tmp_path: Path) -> None:
    proj = make_project(tmp_path / "p", extra={"data.py": "D = 1\n"})
    assert load_config(proj).readonly_files() == ["prepare.py"]
    assert load_config(proj, overrides={"readonly_script": "prepare.py, data.py"}).readonly_files() == [
        "prepare.py", "data.py"]
    (proj / "autoresearch.toml").write_text('readonly_script = ["data.py"]\n')
    assert load_config(proj).readonly_files() == ["data.py"]
    (proj / "autoresearch.toml").write_text('readonly_script = "data.py"\n')  # a string still works
    assert load_config(proj).readonly_files() == ["data.py"]
    (proj / "prepare.py").unlink()
    (proj / "autoresearch.toml").unlink()
    config = load_config(proj)
    assert config.readonly_files() == []
    check = preflight.readonly_check(config)
    assert check.ok and "--readonly" in check.message and "reverted" in check.message


@pytest.mark.parametrize(("key", "value", "needle"), [
    ("noise_z", float("nan"), "finite"),
    ("max_cost", float("nan"), "finite"),
    ("time_limit_factor", float("inf"), "at most 100"),
    ("time_budget", float("inf"), "too long"),
    ("gpus", "a,b", "not a GPU id"),
    ("metric_pattern", "((", "not a regular expression"),
    ("metric_pattern", "val: [0-9.]+", "no group"),
    ("train_command", "python3 'train.py", "balance its quotes"),
    ("tag", "x" * 300, "at most 64"),
    ("agent_prices", {"input": "a lot"}, "number"),
    ("workers", "100000", "at most 256"),
    ("seed", "-1", "negative"),
    ("max_iterations", "lots", "or unlimited"),
])
def test_bad_values_are_refused_with_the_key(tmp_path: Path, key: str, value: object, needle: str) -> None:
    with pytest.raises(UserError) as caught:
        load_config(tmp_path, overrides={key: value})
    assert str(caught.value).startswith(f"{key}: ") and needle in str(caught.value)


def test_unknown_key_suggests_the_closest(tmp_path: Path) -> None:
    (tmp_path / "autoresearch.toml").write_text('metic = "x:min"\n')
    with pytest.raises(UserError, match="line 1: unknown key 'metic' \\(did you mean 'metric'\\?\\)"):
        load_config(tmp_path)


def test_every_default_reads_back_through_its_own_reader() -> None:
    defaults = ResearchConfig(project=Path("."))
    for name, value in defaults.to_dict().items():
        parsed = KEYS[name].parse(value)
        assert (parsed == (defaults.metric, defaults.direction) if name == "metric"
                else parsed == defaults.value_of(name)), name


def test_an_autoresearch_table_is_edited_in_place(tmp_path: Path) -> None:
    original = '# shared with other tools\n[tool]\nx = 1\n\n[autoresearch]\nmetric = "acc:max"  # m\n'
    (tmp_path / "autoresearch.toml").write_text(original)
    config = load_config(tmp_path)
    config.seed = 3
    text = config.toml_text(original)
    assert text.startswith(original) and text.endswith("seed = 3\n")
    assert "[tool]\nx = 1" in text


def test_a_full_save_reads_back_the_same_config(tmp_path: Path) -> None:
    """The file the app hands the engine it spawns: every key, read back unchanged."""
    config = load_config(tmp_path, overrides={"agent_prices": "input=3,output=15", "max_cost": "5", "tag": "t2",
                                              "metric": "acc:max", "time_budget": "90s", "gpus": "0,1",
                                              "readonly_script": "", "metric_pattern": r"acc=(<number>)"})
    back = load_config(tmp_path, config.save(tmp_path / "launch.toml", full=True))
    assert {k: back.value_of(k) for k in KEYS} == {k: config.value_of(k) for k in KEYS}
