"""results.tsv reader: real files from public runs, the writer round trip and messy inputs."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from conftest import real_results_files

from autoresearch_tui.engine.results import (
    ResultRow,
    ResultsFormatError,
    append_row,
    ensure_header,
    guess_direction,
    parse_results,
    read_results,
)


REAL_FILES = real_results_files()
HEADER = "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"


def _data_lines(path: Path) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return sum(1 for line in lines[1:] if line.strip())


@pytest.mark.skipif(not REAL_FILES, reason="real-results fixtures not available")
@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: p.name)
def test_real_file_reads(path: Path) -> None:
    table = read_results(path)
    assert len(table.rows) == _data_lines(path)
    assert table.skipped == []
    assert [r.line for r in table.rows] == list(range(2, len(table.rows) + 2))
    assert all(r.status in ("keep", "discard", "crash") for r in table.rows)
    assert table.rows[0].status == "keep"
    with open(path, newline="", encoding="utf-8") as fh:
        raw = list(csv.DictReader(fh, delimiter="\t"))
    for row, src in zip(table.rows, raw):
        assert row.commit == src["commit"]
        assert row.description == src["description"]
        if src["status"] == "crash":
            assert row.metric is None
        else:
            assert row.metric == pytest.approx(float(src[table.metric]))


@pytest.mark.skipif(not REAL_FILES, reason="real-results fixtures not available")
def test_real_standard_files() -> None:
    for path in REAL_FILES:
        if "macos" in path.name:
            table = read_results(path)
            assert table.metric == "val_bpb" and table.direction == "min"
            assert table.columns == ["commit", "val_bpb", "memory_gb", "status", "description"]
            assert all(r.memory_gb == 0.0 for r in table.rows)
            assert all(r.extra == {} for r in table.rows)


@pytest.mark.skipif(not REAL_FILES, reason="real-results fixtures not available")
def test_real_mlx_file() -> None:
    path = next(p for p in REAL_FILES if "mlx" in p.name)
    table = read_results(path)
    assert table.metric == "accuracy"
    assert table.direction == "max"
    runs = [r for r in table.rows if r.raw_status == "run"]
    assert runs and all(r.status == "discard" for r in runs)
    assert any(r.commit.endswith("-dirty") for r in table.rows)
    assert set(table.rows[0].extra) == {"adjusted_score", "cost_per_doc", "latency_s"}
    assert table.rows[0].memory_gb is None
    # Crash rows written with 0.000000 have no metric; "run" rows keep theirs, even 0.0.
    assert all(r.metric is None for r in table.rows if r.status == "crash")
    assert any(r.metric == 0.0 for r in runs)


def test_writer_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    ensure_header(path, "val_bpb")
    written = [
        ResultRow("a1b2c3d4e5", 0.9979, 44.0, "keep", "baseline"),
        ResultRow("b2c3d4e", 0.9821, 43.2, "keep", "ReLU² activation, tab\there"),
        ResultRow("c3d4e5f", None, None, "crash", "OOM: doubled batch"),
        ResultRow("d4e5f6a", 1.0023, 44.1, "discard", "Deeper MLP"),
    ]
    for row in written:
        append_row(path, row)
    table = read_results(path)
    assert table.skipped == []
    assert [r.commit for r in table.rows] == ["a1b2c3d", "b2c3d4e", "c3d4e5f", "d4e5f6a"]
    assert [r.metric for r in table.rows] == [0.9979, 0.9821, None, 1.0023]
    assert [r.status for r in table.rows] == ["keep", "keep", "crash", "discard"]
    assert table.rows[1].description == "ReLU² activation, tab here"
    assert table.rows[2].memory_gb == 0.0
    assert [r.line for r in table.rows] == [2, 3, 4, 5]


def test_a_row_after_a_torn_line_starts_on_its_own_line(tmp_path: Path) -> None:
    """A crash mid-write left half a row: the next row is still read back whole."""
    path = tmp_path / "results.tsv"
    ensure_header(path, "val_bpb")
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("a1b2c3d\t0.99")  # torn: no newline
    append_row(path, ResultRow("b2c3d4e", 0.98, 1.0, "keep", "next"))
    table = read_results(path)
    assert [r.commit for r in table.rows] == ["b2c3d4e"] and table.rows[0].metric == 0.98
    assert len(table.skipped) == 1


def test_messy_file(tmp_path: Path) -> None:
    text = (
        HEADER
        + "aaaaaaa\t1.000000\t10.0\tKEEP\tbaseline\n"  # 2
        + "\n"  # 3
        + "bbbbbbb\t—\t—\tdiscard\tno metric printed\n"  # 4
        + "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"  # 5: second header
        + "ccccccc\t0.990000\n"  # 6: too few columns
        + "baseline\t0.995000\t10.0\tBaseline\trerun of the baseline\n"  # 7
        + "ddddddd-dirty\t0.000000\t0.0\tCRASH\tOOM\n"  # 8
        + "eeeeeee\tnan\t10.0\tdiscard\tdiverged\n"  # 9
        + "\n## Notes\n"  # 10, 11
        + "| a | b |\n"  # 12
        + "Some prose about the night.\n"  # 13
        + "fffffff\t0.98"  # 14: truncated
    )
    path = tmp_path / "results.tsv"
    path.write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
    table = read_results(path)
    assert [(r.line, r.commit, r.status, r.raw_status) for r in table.rows] == [
        (2, "aaaaaaa", "keep", "KEEP"),
        (4, "bbbbbbb", "discard", ""),
        (7, "baseline", "keep", "Baseline"),
        (8, "ddddddd-dirty", "crash", "CRASH"),
        (9, "eeeeeee", "discard", ""),
    ]
    assert [r.metric for r in table.rows] == [1.0, None, 0.995, None, None]
    assert table.rows[1].memory_gb is None
    reasons = dict(table.skipped)
    assert sorted(reasons) == [3, 5, 6, 10, 11, 12, 13, 14]
    assert reasons[3] == "blank line"
    assert reasons[5] == "repeated header"
    assert "too few columns (2 of 5)" in reasons[6]
    assert "markdown" in reasons[11] and "markdown" in reasons[12]
    assert "too few columns" in reasons[13]
    assert reasons[14].startswith("truncated last line")


def test_truncated_status_and_complete_last_line() -> None:
    cut = parse_results("commit\tval_bpb\tstatus\na\t1.0\tkeep\nb\t0.9\tke")
    assert [r.commit for r in cut.rows] == ["a"]
    assert cut.skipped[0][0] == 3 and cut.skipped[0][1].startswith("truncated")
    whole = parse_results(HEADER + "a\t1.0\t0.0\tkeep\tbaseline")  # no final newline, complete
    assert len(whole.rows) == 1 and whole.skipped == []


def test_no_header_and_spec_example() -> None:
    # The spec's own example: space separated, no header, dashes for a crash.
    text = ("a3f12bc 0.9821 43.2 keep ReLU² activation: -0.0158 improvement\n"
            "d9e44a1 1.0023 44.1 discard Deeper MLP: regression\n"
            "c0011f2 — — crash OOM: doubled batch size without accumulation fix\n")
    table = parse_results(text)
    assert table.skipped[0][0] == 0 and "no header" in table.skipped[0][1]
    assert table.metric == "val_bpb"
    assert [r.status for r in table.rows] == ["keep", "discard", "crash"]
    assert table.rows[0].description == "ReLU² activation: -0.0158 improvement"
    assert table.rows[2].metric is None and table.rows[2].line == 3
    tabbed = parse_results("a3f12bc\t0.98\t43.2\tkeep\tx\n")
    assert len(tabbed.rows) == 1 and tabbed.skipped[0][0] == 0


def test_binary_garbage_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    path.write_bytes(HEADER.encode() + b"aaaaaaa\t1.0\t1.0\tkeep\tok\n"
                     + b"\x00\xff\xfe\x89PNG\r\n\x1a\n" + b"bbbbbbb\t0.9\t1.0\tkeep\tok too\n")
    table = read_results(path)
    assert [r.commit for r in table.rows] == ["aaaaaaa", "bbbbbbb"]
    assert [n for n, _ in table.skipped] == [3, 4]
    assert "binary" in table.skipped[0][1]


def test_not_a_table_raises(tmp_path: Path) -> None:
    path = tmp_path / "x.tsv"
    path.write_text("# My notes\n\nThe run went well.\nloss went down\n")
    with pytest.raises(ResultsFormatError) as err:
        read_results(path)
    message = str(err.value)
    assert "\n" not in message
    assert "x.tsv" in message and "commit" in message and "status" in message
    assert isinstance(err.value, ValueError)
    binary = tmp_path / "y.tsv"
    binary.write_bytes(bytes(range(256)) * 20)
    with pytest.raises(ResultsFormatError, match="binary"):
        read_results(binary)


def test_header_keyed_by_name() -> None:
    text = ("status\tdescription\tcommit\tpeak_vram_mb\tmfu\tval_rmse\n"
            "keep\tbase\tabc1234\t2048\t40.1\t0.5\n"
            "discard\tworse\tdef5678\t1024\t39.0\t0.6\n")
    table = parse_results(text)
    assert table.metric == "mfu"  # the first numeric column that is not commit/memory/status
    table = parse_results(text, metric="val_rmse")
    assert table.metric == "val_rmse" and table.direction == "min"
    assert [r.metric for r in table.rows] == [0.5, 0.6]
    assert table.rows[0].memory_gb == 2.0 and table.rows[0].commit == "abc1234"
    assert table.rows[0].extra == {"mfu": "40.1"}
    with pytest.raises(ResultsFormatError, match="no column `accuracy`"):
        parse_results(text, metric="accuracy")
    assert parse_results(text, metric="val_rmse", direction="max").direction == "max"


def test_description_falls_back_to_last_text_column() -> None:
    table = parse_results("commit\tloss\tstatus\tidea_text\tseed\na\t1.0\tkeep\tbase line\t42\n")
    assert table.rows[0].description == "base line"
    assert table.rows[0].extra == {"seed": "42"}


def test_status_words_and_empty_file() -> None:
    text = HEADER + "".join(f"c{i}\t1.0\t0.0\t{s}\td\n" for i, s in enumerate(
        ["kept", "best", "improved", "Discarded", "revert", "worse", "failed", "OOM", "timeout",
         "error", "run", "crashed"]))
    statuses = [r.status for r in parse_results(text).rows]
    assert statuses == ["keep"] * 3 + ["discard"] * 3 + ["crash"] * 4 + ["discard", "crash"]
    empty = parse_results("")
    assert empty.rows == [] and empty.metric == "val_bpb"
    assert parse_results(HEADER).rows == []


def test_second_header_with_other_columns() -> None:
    text = (HEADER + "a\t1.0\t1.0\tkeep\tbase\n"
            "commit\tval_bpb\tstatus\tdescription\n" "b\t0.9\tkeep\tnew layout\n"
            "commit\taccuracy\tstatus\tdescription\n" "c\t0.5\tkeep\tother metric\n")
    table = parse_results(text)
    assert [r.commit for r in table.rows] == ["a", "b"]
    assert table.rows[1].metric == 0.9
    assert [n for n, _ in table.skipped] == [3, 5]
    # the block without the metric column is kept as a section of its own, not dropped
    assert [(s.first_line, s.columns, s.rows) for s in table.sections] == [
        (5, ["commit", "accuracy", "status", "description"], [["c", "0.5", "keep", "other metric"]])]
    assert "shown as a section of their own" in dict(table.skipped)[5]


def test_columns_introduced_comma_block_is_a_section_and_precision_is_kept() -> None:
    text = (HEADER + "aaaaaaa\t178.84\t1.0\tkeep\tbaseline\n" "bbbbbbb\t170.5\t1.0\tkeep\tLR up\n"
            "ccccccc\t0.000000\t0.0\tcrash\tOOM\n" "\n"
            "Columns: commit,loss,tokens,status,notes\n"
            "ddddddd,2.5,100,keep,a note, with a comma\n" "eeeeeee,2.4,200,discard,other\n")
    table = parse_results(text)
    assert [r.commit for r in table.rows] == ["aaaaaaa", "bbbbbbb", "ccccccc"]
    assert table.decimals == 2  # as written (the crash's 0.000000 is the convention, not the style)
    (section,) = table.sections
    assert section.first_line == 6 and section.columns == ["commit", "loss", "tokens", "status", "notes"]
    assert section.rows[0] == ["ddddddd", "2.5", "100", "keep", "a note, with a comma"]
    assert [n for n, _ in table.skipped] == [5, 6]
    # the same memory text under a header in MB is read in the new unit
    mb = parse_results(HEADER + "a\t1.0\t2048\tkeep\tx\n"
                       "commit\tval_bpb\tpeak_vram_mb\tstatus\tdescription\n" "b\t0.9\t2048\tkeep\ty\n")
    assert [r.memory_gb for r in mb.rows] == [2048.0, 2.0]


def test_guess_direction() -> None:
    for name in ("accuracy", "val_acc", "f1", "auc", "adjusted_score", "reward", "top1_acc"):
        assert guess_direction(name) == "max", name
    for name in ("val_bpb", "loss", "val_rmse", "mae", "perplexity", "ppl", "error_rate", "foo",
                 "grad_accum_loss"):
        assert guess_direction(name) == "min", name


def test_reads_100k_rows(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    lines = [HEADER]
    for i in range(100_000):
        status = ("keep", "discard", "discard", "crash")[i % 4]
        lines.append(f"{i:07x}\t{1 + (i % 97) / 1000:.6f}\t40.0\t{status}\texperiment {i}\n")
    path.write_text("".join(lines))
    table = read_results(path)
    assert len(table.rows) == 100_000
