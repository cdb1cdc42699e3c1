"""Process exit codes, shared by every command."""

OK = 0
RUNTIME_FAILURE = 1
BAD_INPUT = 2
