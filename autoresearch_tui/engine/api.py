"""How the app starts an engine: the one entry point of commands and tests."""

from __future__ import annotations

from autoresearch_tui.agents.base import Proposer
from autoresearch_tui.engine.config import ResearchConfig
from autoresearch_tui.engine.loop import Engine, Listener
from autoresearch_tui.engine.parallel import ParallelEngine


def wants_workers(config: ResearchConfig) -> bool:
    return config.workers != 1 or bool(config.gpus) or config.executor != "local"


def create_engine(config: ResearchConfig, proposer: Proposer, listeners: list[Listener] | None = None) -> Engine:
    """The engine a config asks for: worker slots for workers/gpus/ray, else the sequential loop."""
    cls = ParallelEngine if wants_workers(config) else Engine
    return cls(config, proposer, listeners)
