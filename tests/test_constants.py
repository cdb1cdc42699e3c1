"""find_constants / replace_constant on a script shaped like autoresearch's train.py."""

from __future__ import annotations

import difflib

import pytest

from autoresearch_tui.agents.constants import (
    Constant,
    find_constants,
    format_value,
    replace_constant,
)

SAMPLE = '''"""Pretraining script (autoresearch style)."""

import os
import torch

# ---- hyperparameters: edit these directly ----
ASPECT_RATIO = 64  # model_dim = depth * aspect ratio
HEAD_DIM = 128
WINDOW_PATTERN = "SSSL"
TOTAL_BATCH_SIZE = 2**19  # tokens per optimizer step
EMBEDDING_LR = 0.6
UNEMBEDDING_LR = 0.004
MATRIX_LR = 0.04
SCALAR_LR = 0.5
WEIGHT_DECAY = 0.2
ADAM_BETAS = (0.8, 0.95)
WARMUP_RATIO = 0.0
WARMDOWN_RATIO = 0.5
FINAL_LR_FRAC = 0.0
DEPTH = 8
DEVICE_BATCH_SIZE = 128  # reduce if OOM
ACTIVATION = 'gelu'
ADAM_EPS: float = 3e-4
CLIP = -0.5
USE_BIAS = False
SEED = 42
LONG_BATCH = 2 ** 19

# ---- not constants ----
model_dim = DEPTH * ASPECT_RATIO
DATA_DIR = os.path.join("data", "shards")
NUM_TOKENS = TOTAL_BATCH_SIZE // 2
OTHER = MATRIX_LR
PRODUCT = 4 * 128
GREETING = f"depth {DEPTH}"


def train():
    INNER_LR = 0.1  # nested: ignored
    for step in range(10):
        LOCAL = 3
    return INNER_LR


if __name__ == "__main__":
    MAIN_ONLY = 5
    train()
'''

EXPECTED = {
    "ASPECT_RATIO": ("int", 64),
    "HEAD_DIM": ("int", 128),
    "WINDOW_PATTERN": ("str", "SSSL"),
    "TOTAL_BATCH_SIZE": ("pow2", 2**19),
    "EMBEDDING_LR": ("float", 0.6),
    "UNEMBEDDING_LR": ("float", 0.004),
    "MATRIX_LR": ("float", 0.04),
    "SCALAR_LR": ("float", 0.5),
    "WEIGHT_DECAY": ("float", 0.2),
    "ADAM_BETAS": ("tuple", (0.8, 0.95)),
    "WARMUP_RATIO": ("float", 0.0),
    "WARMDOWN_RATIO": ("float", 0.5),
    "FINAL_LR_FRAC": ("float", 0.0),
    "DEPTH": ("int", 8),
    "DEVICE_BATCH_SIZE": ("int", 128),
    "ACTIVATION": ("str", "gelu"),
    "ADAM_EPS": ("float", 3e-4),
    "CLIP": ("float", -0.5),
    "USE_BIAS": ("bool", False),
    "SEED": ("int", 42),
    "LONG_BATCH": ("pow2", 2**19),
}

# A different value of the same shape for every constant.
NEW_VALUES = {
    "ASPECT_RATIO": 57, "HEAD_DIM": 64, "WINDOW_PATTERN": "SSLL", "TOTAL_BATCH_SIZE": 2**18,
    "EMBEDDING_LR": 0.8, "UNEMBEDDING_LR": 0.006, "MATRIX_LR": 0.05, "SCALAR_LR": 0.25,
    "WEIGHT_DECAY": 0.1, "ADAM_BETAS": (0.9, 0.95), "WARMUP_RATIO": 0.05,
    "WARMDOWN_RATIO": 0.75, "FINAL_LR_FRAC": 0.1, "DEPTH": 9, "DEVICE_BATCH_SIZE": 64,
    "ACTIVATION": "silu", "ADAM_EPS": 6e-4, "CLIP": -0.25, "USE_BIAS": True, "SEED": 137,
    "LONG_BATCH": 2**20,
}


def by_name(source: str) -> dict[str, Constant]:
    return {c.name: c for c in find_constants(source)}


def changed_lines(a: str, b: str) -> list[tuple[str, str]]:
    al, bl = a.splitlines(keepends=True), b.splitlines(keepends=True)
    assert len(al) == len(bl)
    return [(x, y) for x, y in zip(al, bl) if x != y]


def test_finds_exactly_the_literal_top_level_constants():
    found = by_name(SAMPLE)
    assert set(found) == set(EXPECTED)
    for name, (kind, value) in EXPECTED.items():
        assert found[name].kind == kind, name
        assert found[name].value == value, name
        assert type(found[name].value) is type(value), name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_offsets_text_and_line_match_the_source(name):
    c = by_name(SAMPLE)[name]
    assert SAMPLE[c.start:c.end] == c.text
    assert SAMPLE.splitlines()[c.line - 1].startswith(name)


def test_ignores_nested_and_non_literal_assignments():
    found = by_name(SAMPLE)
    for name in ("INNER_LR", "LOCAL", "MAIN_ONLY", "DATA_DIR", "NUM_TOKENS", "OTHER",
                 "PRODUCT", "GREETING", "model_dim"):
        assert name not in found


def test_trailing_comments():
    found = by_name(SAMPLE)
    assert found["DEVICE_BATCH_SIZE"].comment == "reduce if OOM"
    assert found["TOTAL_BATCH_SIZE"].comment == "tokens per optimizer step"
    assert found["HEAD_DIM"].comment is None


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_replace_changes_only_that_value(name):
    new = replace_constant(SAMPLE, name, NEW_VALUES[name])
    diff = [ln for ln in difflib.unified_diff(SAMPLE.splitlines(), new.splitlines(), lineterm="")
            if ln.startswith(("+", "-")) and not ln.startswith(("+++", "---"))]
    assert len(diff) == 2, diff
    ((old_line, new_line),) = changed_lines(SAMPLE, new)
    c = by_name(SAMPLE)[name]
    line_start = SAMPLE.rfind("\n", 0, c.start) + 1
    prefix = SAMPLE[line_start:c.start]
    assert new_line.startswith(prefix) and old_line.startswith(prefix)
    assert old_line.endswith(SAMPLE[c.end:].split("\n", 1)[0] + "\n")
    assert new_line.endswith(SAMPLE[c.end:].split("\n", 1)[0] + "\n")
    after = by_name(new)
    assert after[name].value == NEW_VALUES[name]
    assert after[name].kind == EXPECTED[name][0]
    for other, (_, value) in EXPECTED.items():
        if other != name:
            assert after[other].value == value


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_round_trip_is_identity(name):
    c = by_name(SAMPLE)[name]
    assert replace_constant(SAMPLE, name, c.value) == SAMPLE


def test_power_of_two_stays_an_expression():
    new = replace_constant(SAMPLE, "TOTAL_BATCH_SIZE", 2**18)
    assert "TOTAL_BATCH_SIZE = 2**18  # tokens per optimizer step\n" in new
    spaced = replace_constant(SAMPLE, "LONG_BATCH", 2**17)
    assert "LONG_BATCH = 2 ** 17\n" in spaced
    not_pow = replace_constant(SAMPLE, "TOTAL_BATCH_SIZE", 300000)
    assert "TOTAL_BATCH_SIZE = 300000  #" in not_pow


def test_oom_comment_survives():
    new = replace_constant(SAMPLE, "DEVICE_BATCH_SIZE", 64)
    assert "DEVICE_BATCH_SIZE = 64  # reduce if OOM\n" in new


@pytest.mark.parametrize("name,value,text", [
    ("ADAM_EPS", 6e-4, "6e-4"),
    ("ADAM_EPS", 1.5e-5, "1.5e-5"),
    ("MATRIX_LR", 0.05, "0.05"),
    ("MATRIX_LR", 0.1 + 0.2, "0.3"),
    ("MATRIX_LR", 0.04 * 3, "0.12"),
    ("UNEMBEDDING_LR", 0.00001, "0.00001"),
    ("EMBEDDING_LR", 2.0, "2.0"),
    ("CLIP", -0.25, "-0.25"),
    ("DEPTH", 10, "10"),
    ("USE_BIAS", True, "True"),
    ("ACTIVATION", "relu2", "'relu2'"),
    ("WINDOW_PATTERN", "L", '"L"'),
    ("ADAM_BETAS", (0.8, 0.975), "(0.8, 0.975)"),
    ("ADAM_BETAS", (0.9, 0.99, 0.999), "(0.9, 0.99, 0.999)"),
])
def test_values_are_written_in_the_old_style(name, value, text):
    c = by_name(SAMPLE)[name]
    assert format_value(c, value) == text
    assert by_name(replace_constant(SAMPLE, name, value))[name].text == text


def test_lists_multiline_tuples_and_annotations():
    src = "SIZES = [64, 128]\nBETAS = (\n    0.9,  # first\n    0.95,\n)\nLR: float = 1e-3\n"
    found = by_name(src)
    assert found["SIZES"].value == [64, 128] and found["SIZES"].kind == "tuple"
    assert found["BETAS"].value == (0.9, 0.95)
    assert found["LR"].kind == "float"
    out = replace_constant(src, "BETAS", (0.9, 0.99))
    assert out == src.replace("0.95,", "0.99,")
    assert replace_constant(src, "SIZES", [64, 256]) == src.replace("128", "256")
    assert replace_constant(src, "LR", 2e-3) == src.replace("1e-3", "2e-3")


def test_unicode_earlier_on_the_line_and_crlf():
    src = 'LABEL = "héllo wörld"; SCALE = 0.5  # ünïcode\r\nDEPTH = 4\r\n'
    found = by_name(src)
    assert found["SCALE"].text == "0.5" and found["LABEL"].value == "héllo wörld"
    assert replace_constant(src, "SCALE", 0.25) == src.replace("0.5", "0.25")
    assert replace_constant(src, "DEPTH", 5) == src.replace("4\r\n", "5\r\n")
    for c in found.values():
        assert replace_constant(src, c.name, c.value) == src


def test_last_top_level_assignment_wins_and_rebinding_disqualifies():
    src = "LR = 0.1\nLR = 0.2\nWD = 0.1\nWD *= 2\nA, B = 1, 2\nC = 3\n"
    found = by_name(src)
    assert found["LR"].value == 0.2 and found["LR"].line == 2
    assert "WD" not in found and "A" not in found and "B" not in found
    assert replace_constant(src, "LR", 0.3) == src.replace("0.2", "0.3")


def test_non_literals_bad_sources_and_unknown_names():
    assert find_constants("def broken(:\n") == []
    assert find_constants("") == []
    src = "X = compute()\nY = X\nZ = 'a' 'b'\nLONG = '" + "x" * 100 + "'\nW = 2**-1\n"
    assert find_constants(src) == []
    with pytest.raises(KeyError):
        replace_constant(SAMPLE, "NOT_THERE", 1)
    with pytest.raises(KeyError):
        replace_constant(SAMPLE, "DATA_DIR", "x")
