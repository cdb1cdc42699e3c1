"""The README's configuration reference, generated from the schema (engine/config.py).

`python -m autoresearch_tui.engine.config_readme --readme-table README.md` rewrites the block
between the markers; tests/test_config_schema.py fails when the README and the schema differ.
"""

from __future__ import annotations

import sys
from pathlib import Path

import tomlkit

from autoresearch_tui.engine.config import KEYS, ResearchConfig


def readme_table() -> str:
    """The configuration reference, one row per key: the README holds this verbatim."""
    rows = ["| key | flag | default | example | what it is |", "|---|---|---|---|---|"]
    defaults = ResearchConfig(project=Path("."))
    for spec in KEYS.values():
        if spec.name == "tag":
            default = "today, e.g. `nov24`"
        else:
            value = defaults.to_dict().get(spec.name)
            default = f"`{tomlkit.item(value).as_string()}`" if value not in (None, [], {}) else "—"
        rows.append(f"| `{spec.name}` | `{spec.flag}` | {default} | `{spec.example}` | "
                    f"{spec.help.replace('|', '&#124;')} |")
    return "\n".join(rows)


README_START, README_END = "<!-- config-table:start -->", "<!-- config-table:end -->"


def replace_readme_table(readme: str) -> str:
    head, start, rest = readme.partition(README_START)
    _, end, tail = rest.partition(README_END)
    if not start or not end:
        raise ValueError(f"the README has no {README_START} ... {README_END} block")
    return f"{head}{README_START}\n{readme_table()}\n{README_END}{tail}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "--readme-table":
        print("usage: python -m autoresearch_tui.engine.config_readme --readme-table [README.md]", file=sys.stderr)
        return 2
    if len(args) == 1:
        print(readme_table())
        return 0
    readme = Path(args[1])
    readme.write_text(replace_readme_table(readme.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"updated the config table in {readme}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
