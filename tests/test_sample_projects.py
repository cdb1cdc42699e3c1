"""Run the sample training projects for real, in temporary copies, with short budgets."""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # starts engines or real training runs

SAMPLES = Path(__file__).resolve().parent.parent / "sample_projects"


def _copy_project(name: str, dest: Path) -> Path:
    target = dest / name
    shutil.copytree(SAMPLES / name, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "run.log"))
    return target


def _set_constant(train_py: Path, name: str, value: str) -> None:
    text = train_py.read_text()
    new, n = re.subn(rf"^{name} = .*$", f"{name} = {value}", text, count=1, flags=re.M)
    assert n == 1, f"{name} not found in {train_py}"
    train_py.write_text(new)


def _run(project: Path, budget: float, cache: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("AUTORESEARCH_"):
            del env[k]
    env.update(
        AUTORESEARCH_TIME_BUDGET=str(budget),
        AUTORESEARCH_DEVICE="cpu",
        AUTORESEARCH_CACHE=str(cache),
        PYTHONDONTWRITEBYTECODE="1",
    )
    # bytes, not text: text mode would turn the progress line's "\r" into "\n"
    return subprocess.run([sys.executable, "train.py"], cwd=project, env=env,
                          capture_output=True, timeout=timeout)


def _out(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout.decode("utf-8", "replace")


def _err(proc: subprocess.CompletedProcess) -> str:
    return proc.stderr.decode("utf-8", "replace")


def _summary(out: str) -> dict[str, float]:
    keys = {}
    for m in re.finditer(r"^([A-Za-z_]+):\s*([-+0-9.eE]+|nan|inf)\s*$", out, flags=re.M):
        keys[m.group(1)] = float(m.group(2))
    return keys


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("sample_projects")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def tinygpt_run(workdir, cache):
    project = _copy_project("tinygpt", workdir / "ok")
    return _run(project, 3, cache)


@pytest.fixture(scope="module")
def spirals_run(workdir, cache):
    project = _copy_project("spirals", workdir / "ok")
    return _run(project, 1, cache)


def test_tinygpt_runs_and_reports(tinygpt_run, cache):
    out = _out(tinygpt_run)
    assert tinygpt_run.returncode == 0, out + _err(tinygpt_run)
    assert "\rstep 0" in out, "no \\r progress updates"
    assert re.search(r"\rstep \d{5} \(\d+\.\d%\) \| loss: [0-9.]+ \| lrm: [0-9.]+ \| dt: \d+ms \| "
                     r"tok/sec: [0-9,]+ \| epoch: \d+ \| remaining: \d+s", out)
    assert "\n---\n" in out
    m = re.search(r"^val_bpb:\s*([0-9.]+)\s*$", out, flags=re.M)
    assert m, out[-2000:]
    val_bpb = float(m.group(1))
    assert math.isfinite(val_bpb) and 0 < val_bpb < 8
    s = _summary(out)
    for key in ("val_bpb", "training_seconds", "total_seconds", "peak_vram_mb", "mfu_percent",
                "total_tokens_M", "num_steps", "num_params_M", "depth"):
        assert key in s, f"summary lacks {key}"
    assert s["training_seconds"] >= 3 - 0.05
    assert s["total_seconds"] >= s["training_seconds"]
    assert s["num_steps"] > 10
    assert s["peak_vram_mb"] == 0.0
    # summary keys are left-aligned and padded to the same column
    block = out[out.index("\n---\n") + 5:].splitlines()
    assert block[0].startswith("val_bpb:          ")
    assert len({line.index(line.split()[1]) for line in block if line}) == 1
    # the corpus cache was written where AUTORESEARCH_CACHE points
    assert list((cache / "tinygpt").glob("train-*.bin"))


def test_tinygpt_nan_prints_fail(workdir, cache, tinygpt_run):
    project = _copy_project("tinygpt", workdir / "nan")
    _set_constant(project / "train.py", "LEARNING_RATE", "1e6")
    proc = _run(project, 3, cache)
    out = _out(proc)
    assert proc.returncode == 1, out
    assert re.search(r"^FAIL$", out, flags=re.M)
    assert not re.search(r"^val_bpb:", out, flags=re.M)


def test_spirals_runs_and_reports(spirals_run):
    out = _out(spirals_run)
    assert spirals_run.returncode == 0, out + _err(spirals_run)
    assert "\rstep 0" in out
    m = re.search(r"^val_acc:\s*([0-9.]+)\s*$", out, flags=re.M)
    assert m, out[-2000:]
    val_acc = float(m.group(1))
    assert 0 <= val_acc <= 1
    assert val_acc > 0.5  # three classes: chance is 1/3
    s = _summary(out)
    for key in ("val_acc", "training_seconds", "total_seconds", "peak_vram_mb", "num_steps", "num_params_M"):
        assert key in s, f"summary lacks {key}"
    block = out[out.index("\n---\n") + 5:].splitlines()
    assert block[0].startswith("val_acc:          ")
    assert len({line.index(line.split()[1]) for line in block if line}) == 1


def test_spirals_nan_prints_fail(workdir, cache):
    project = _copy_project("spirals", workdir / "nan")
    _set_constant(project / "train.py", "LEARNING_RATE", "1e6")
    proc = _run(project, 1, cache)
    out = _out(proc)
    assert proc.returncode == 1, out
    assert re.search(r"^FAIL$", out, flags=re.M)
    assert not re.search(r"^val_acc:", out, flags=re.M)
