"""Helpers shared by the engine, the agents and the screens: git, processes, durations, categories.

This package imports nothing else of the app, so every layer may use it.
"""
