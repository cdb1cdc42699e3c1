"""The architecture's rules, checked on the source: layers, one git gateway, one process module."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "autoresearch_tui"
GIT_GATEWAY = PACKAGE / "core" / "git.py"
PROCESSES = PACKAGE / "core" / "processes.py"
# The Ray task's remote side ships by value to nodes without this app: standard library only.
REMOTE = PACKAGE / "engine" / "ray_remote.py"


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def calls(path: Path) -> list[tuple[int, str, ast.Call]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            found.append((node.lineno, ast.unparse(node.func), node))
    return found


def test_import_contracts(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyproject.toml's [tool.importlinter] contracts: core <- agents <- engine <- tui."""
    from importlinter.cli import lint_imports

    monkeypatch.chdir(ROOT)
    monkeypatch.syspath_prepend(str(ROOT))
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0


def test_only_the_gateway_runs_git() -> None:
    offenders = []
    for path in sources():
        if path == GIT_GATEWAY:
            continue
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import) and any(a.name == "git" for a in node.names):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} imports GitPython")
            if isinstance(node, ast.ImportFrom) and node.module == "git":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} imports GitPython")
            if isinstance(node, (ast.List, ast.Tuple)) and node.elts and isinstance(node.elts[0], ast.Constant) \
                    and node.elts[0].value == "git":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} runs git")
            if isinstance(node, ast.Attribute) and node.attr == "git" and isinstance(node.value, ast.Attribute) \
                    and node.value.attr == "repo":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} uses GitPython's repo.git")
    assert offenders == []


def test_only_the_process_module_starts_or_signals_process_trees() -> None:
    banned = {"os.killpg", "os.kill", "subprocess.Popen", "asyncio.create_subprocess_exec",
              "asyncio.create_subprocess_shell", "os.setsid"}
    offenders = [f"{path.relative_to(ROOT)}:{line} {name}" for path in sources()
                 if path not in (PROCESSES, GIT_GATEWAY, REMOTE)
                 for line, name, _ in calls(path) if name in banned]
    assert offenders == []


def test_the_engine_layer_is_free_of_textual_even_at_runtime() -> None:
    """Importing the whole engine loads neither Textual nor torch (a subprocess: a clean slate)."""
    import subprocess
    import sys

    code = ("import sys, pkgutil, importlib, autoresearch_tui.engine as e\n"
            "for m in pkgutil.iter_modules(e.__path__):\n"
            "    if m.name not in ('platform_probe', 'ray_remote'): importlib.import_module(f'{e.__name__}.{m.name}')\n"
            "print(sorted(n for n in ('textual', 'torch') if n in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    assert out.stdout.strip() == "[]"
