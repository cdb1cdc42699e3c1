"""`autoresearch-tui demo`: a sample project copied into a fresh git repository."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

import git

from autoresearch_tui.engine.config import CONFIG_FILE
from autoresearch_tui.engine.gitops import AUTHOR_ENV
from autoresearch_tui.errors import UserError

DEMO_VALUES: dict[str, dict[str, Any]] = {
    "tinygpt": {"time_budget": "30s", "metric": "val_bpb:min"},
    "spirals": {"time_budget": "10s", "metric": "val_acc:max"},  # step-limited: ~2 s of training
}


def samples_root() -> Path:
    """sample_projects/ beside the package (a source checkout or an editable install)."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "sample_projects", here / "sample_projects"):
        if candidate.is_dir():
            return candidate
    raise UserError("the sample projects were not found; install from a source checkout (pip install -e .)")


def _fresh_dir(base: Path | None) -> Path:
    if base is not None:
        if base.exists() and any(base.iterdir()):
            raise UserError(f"{base} already exists and is not empty; pick a new --dir")
        return base
    for i in range(1, 1000):
        path = Path.cwd() / ("autoresearch-demo" if i == 1 else f"autoresearch-demo-{i}")
        if not path.exists():
            return path
    raise UserError("could not find a free autoresearch-demo folder name; pass --dir")


TORCH_HINT = ("pip install 'autoresearch-tui[demo]' (Linux without a GPU: first "
              "pip install torch --index-url https://download.pytorch.org/whl/cpu)")


def require_torch() -> None:
    """The sample projects train with PyTorch in this interpreter; say how to add it, up front."""
    if importlib.util.find_spec("torch") is None:  # finds it without importing it
        raise UserError(f"the demo's sample projects need PyTorch, which is not installed here; add it with: "
                        f"{TORCH_HINT}")


def commit_config(project: Path) -> None:
    """The wizard wrote autoresearch.toml into the demo repository: commit it, so the demo leaves no
    untracked file behind (the repository is the demo's own, made by create_demo_project)."""
    repo = git.Repo(project)
    repo.git.update_environment(**AUTHOR_ENV)
    repo.git.add("--", CONFIG_FILE)
    if repo.git.diff("--cached", "--name-only"):
        repo.git.commit("-m", "research config", "--quiet", "--no-verify")


def create_demo_project(sample: str, target: Path | None = None) -> tuple[Path, dict[str, Any]]:
    require_torch()
    source = samples_root() / sample
    if not source.is_dir():
        raise UserError(f"unknown sample project {sample!r}")
    project = _fresh_dir(target)
    shutil.copytree(source, project, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".autoresearch", "results.tsv"))
    (project / ".gitignore").write_text("__pycache__/\nresults.tsv\n.autoresearch/\nautoresearch-summary.md\n")
    repo = git.Repo.init(project, initial_branch="main")
    repo.git.update_environment(**AUTHOR_ENV)
    repo.git.add("-A")
    repo.git.commit("-m", f"{sample} sample project", "--quiet")
    return project.resolve(), dict(DEMO_VALUES[sample])
