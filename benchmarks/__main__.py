"""`python -m benchmarks [NAME ...] [--quick] [--profile DIR]`: run the benchmarks, one line per figure.

Each line: `name: value unit (target: ..., ok|MISS)`; `info` marks a figure without a target.
The exit code is 1 only when a benchmark itself failed to run (a MISS is a result, not an error).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback

REGISTRY = {
    "overhead": "loop overhead per iteration with 10 and 1,000 earlier experiments",
    "duty": "duty cycle: fraction of wall time spent training (sequential; pipelined when it exists)",
    "flood": "1,000,000 log lines through the engine into the live screen",
    "replay": "replay screen and summary of a 100,000-row results.tsv; first rows vs VisiData in tmux",
    "startup": "`--help` and the wizard's first frame",
    "noise": "false and true keep rates of the keep policies (simulation and real engine)",
    "workers": "experiments per second with 4 parallel workers vs the sequential loop",
    "search": "best metric of the built-in proposer vs Optuna TPE and random search (only when named: long)",
}
NAMED_ONLY = {"search"}  # trains the samples hundreds of times: run only when asked for


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"benchmarks to run (default all): {', '.join(REGISTRY)}")
    parser.add_argument("--quick", action="store_true", help="small sizes: the whole set in about a minute")
    parser.add_argument("--profile", metavar="DIR", help="write cProfile reports (overhead) to DIR")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, text in REGISTRY.items():
            print(f"{name:10s} {text}")
        return 0
    unknown = [n for n in args.names if n not in REGISTRY]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(REGISTRY)}")
    if args.profile:
        os.environ["ARBENCH_PROFILE"] = os.path.abspath(args.profile)
    failed = 0
    started = time.perf_counter()
    for name in args.names or [n for n in REGISTRY if n not in NAMED_ONLY]:
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            for figure in module.run(quick=args.quick):
                print(figure.line(), flush=True)
        except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others
            failed += 1
            print(f"{name}: error (target: runs, MISS: {type(exc).__name__}: {exc})", flush=True)
            traceback.print_exc(file=sys.stderr)
        print(f"# {name} took {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    print(f"# all took {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
