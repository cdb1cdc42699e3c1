"""The results table on its own: lazy rendering of huge tables, keys, appends, layout."""

from __future__ import annotations

import time

import pytest
from textual.app import App, ComposeResult

from autoresearch_tui.engine.results import ResultRow
from autoresearch_tui.tui.widgets.results_table import ResultsTable

pytestmark = pytest.mark.timeout(60)


def make_rows(n: int, start: int = 0) -> list[ResultRow]:
    rows = []
    for i in range(start, start + n):
        status = ("keep", "discard", "discard", "crash")[i % 4]
        metric = None if status == "crash" else 1.0 - i / 1e6
        rows.append(ResultRow(f"{i:07x}", metric, 40.0, status, f"experiment number {i} with a long description"))
    return rows


class TableApp(App):
    def __init__(self, newest_first: bool) -> None:
        super().__init__()
        self.newest_first = newest_first
        self.highlighted: list[int] = []
        self.selected: list[int] = []

    def compose(self) -> ComposeResult:
        yield ResultsTable(newest_first=self.newest_first)

    def on_mount(self) -> None:
        self.query_one(ResultsTable).focus()

    def on_results_table_row_highlighted(self, event: ResultsTable.RowHighlighted) -> None:
        self.highlighted.append(event.index)

    def on_results_table_row_selected(self, event: ResultsTable.RowSelected) -> None:
        self.selected.append(event.index)


def lines(table: ResultsTable) -> list[str]:
    return [table.render_line(y).text for y in range(table.scrollable_content_region.height)]


async def test_huge_table_renders_only_what_is_visible():
    rows = make_rows(100_000)
    app = TableApp(newest_first=False)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one(ResultsTable)
        t0 = time.perf_counter()
        table.set_rows(rows, "val_bpb", best_index=4)
        await pilot.pause()
        assert time.perf_counter() - t0 < 1.0  # a DataTable took ~12 s for this
        assert table.row_count == 100_000 and table.selected_index() == 0
        assert len(table._cache) <= table.size.height  # only the visible rows were rendered
        shown = lines(table)
        assert shown[0].split()[:2] == ["#", "status"] and "description" in shown[0]
        assert shown[1].split()[:3] == ["0", "✓", "keep"]
        assert "★ best" in shown[5]  # best_index 4, under the header
        await pilot.press("end")
        assert table.selected_index() == 99_999
        assert lines(table)[-1].split()[:3] == ["99999", "✗", "crash"]


async def test_keys_move_the_cursor_and_announce_it():
    app = TableApp(newest_first=False)
    async with app.run_test(size=(80, 12)) as pilot:
        table = app.query_one(ResultsTable)
        table.set_rows(make_rows(50), "val_bpb")
        await pilot.pause()
        page = table.scrollable_content_region.height - 1
        await pilot.press("down", "down")
        assert table.selected_index() == 2
        await pilot.press("up")
        assert table.selected_index() == 1
        await pilot.press("pagedown")
        assert table.selected_index() == 1 + page
        await pilot.press("pageup")
        assert table.selected_index() == 1
        await pilot.press("end")
        assert table.selected_index() == 49
        assert lines(table)[-1].lstrip().startswith("49 ")  # scrolled to it
        await pilot.press("home")
        assert table.selected_index() == 0
        assert table.step(3) == 3 and table.step(-10) == 0
        await pilot.press("down", "enter")
        await pilot.pause()
        assert app.selected == [1]
        assert app.highlighted[-2:] == [0, 1]
        await pilot.click(ResultsTable, offset=(3, 4))  # the row drawn on line 4: #3
        await pilot.pause()
        assert table.selected_index() == 3


async def test_newest_first_appends_without_rerendering():
    app = TableApp(newest_first=True)
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.query_one(ResultsTable)
        rows = make_rows(12)
        table.set_rows(rows, "val_bpb")
        await pilot.pause()
        assert table.selected_index() == 11  # the newest, on top
        assert lines(table)[1].lstrip().startswith("11 ")
        rendered = dict(table._cache)
        rows.extend(make_rows(3, start=12))  # the live state's list grows in place
        table.set_rows(rows, "val_bpb")
        await pilot.pause()
        assert table.row_count == 15 and table.selected_index() == 14  # still following the newest
        assert all(table._cache.get(i) is strip for i, strip in rendered.items() if i != 11)
        await pilot.press("down", "down")
        assert table.selected_index() == 12
        rows.extend(make_rows(2, start=15))
        table.set_rows(rows, "val_bpb")
        await pilot.pause()
        assert table.selected_index() == 12  # the same experiment stays selected
        table.set_rows(make_rows(2), "val_bpb")  # another session: starts over
        assert table.row_count == 2 and table.selected_index() == 1


@pytest.mark.parametrize("width", [40, 60, 120])
async def test_columns_fit_the_width(width):
    rows = make_rows(30)
    rows[1].raw_status = "run"
    app = TableApp(newest_first=False)
    async with app.run_test(size=(width, 20)) as pilot:
        table = app.query_one(ResultsTable)
        table.set_rows(rows, "val_bpb", best_index=0)
        await pilot.pause()
        inner = table.scrollable_content_region.width
        shown = lines(table)
        assert all(len(line) == inner for line in shown)
        # every row says its status without colour: a glyph at least, the word when there is room
        assert all(line.split()[1] in ("✓", "○", "✗", "⊘") for line in shown[1:])
        if width >= 60:
            assert "○ discard (run)" in shown[2] and "✓ keep" in shown[1]
            assert "0000001" in shown[2]  # the commit
        assert "★ best" in shown[1]
        assert "…" in shown[2] or "experiment number 1 with a long description" in shown[2]
