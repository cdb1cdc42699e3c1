"""Errors that carry a one-line message for the user instead of a traceback."""

from autoresearch_tui import exit_codes


class UserError(Exception):
    """Bad input: the CLI prints the message on one line and exits 2."""

    exit_code = exit_codes.BAD_INPUT


class RuntimeFailure(Exception):
    """Something went wrong while running: one line, exit 1."""

    exit_code = exit_codes.RUNTIME_FAILURE
