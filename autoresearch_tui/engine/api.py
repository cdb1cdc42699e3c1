"""How the app starts an engine: the one entry point of commands and tests."""

from __future__ import annotations

from autoresearch_tui.agents.base import Proposer
from autoresearch_tui.engine.config import ResearchConfig
from autoresearch_tui.engine.loop import Engine, Listener

__all__ = ["Engine", "Listener", "create_engine"]


def create_engine(config: ResearchConfig, proposer: Proposer, listeners: list[Listener] | None = None) -> Engine:
    """The engine a config asks for: worker slots for workers/gpus/ray, else one slot in the main tree."""
    return Engine(config, proposer, listeners)
