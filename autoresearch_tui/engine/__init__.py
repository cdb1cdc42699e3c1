"""The research engine: git, subprocesses, results and the session directory. No UI imports."""
