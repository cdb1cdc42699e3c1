"""Parsing and applying a model's answer: SEARCH/REPLACE blocks, a whole file, DESCRIPTION."""

from __future__ import annotations

import pytest

from autoresearch_tui.agents.edits import (
    EditError, apply_answer, describe_diff, extract_fenced, parse_description, parse_edit_blocks,
)

SOURCE = '''import torch

MAX_DEPTH = 8
DEPTH = 8
MATRIX_LR = 0.04


def train():
    for step in range(10):
        lr = MATRIX_LR
        loss = step * lr
    return loss
'''


def block(search: str, replace: str) -> str:
    return f"<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"


def test_two_blocks_apply_in_order_and_description_is_read():
    answer = ("I will deepen the model and raise the LR.\n```python\n"
              + block("DEPTH = 8\n", "DEPTH = 10\n") + "```\n"
              + block("MATRIX_LR = 0.04\n", "MATRIX_LR = 0.05\n")
              + "\nDESCRIPTION: deeper model, higher LR\n")
    new, desc, kind = apply_answer(SOURCE, answer)
    assert kind == "blocks"
    assert "DEPTH = 10\n" in new and "MAX_DEPTH = 8\n" in new  # line-anchored: MAX_DEPTH untouched
    assert "MATRIX_LR = 0.05" in new
    assert desc == "deeper model, higher LR"


def test_whitespace_tolerant_match_reindents_the_replacement():
    # The model lost the indentation and added trailing spaces.
    answer = block("for step in range(10):  \n    lr = MATRIX_LR\n",
                   "for step in range(20):\n    lr = MATRIX_LR * 0.5\n")
    new, _, _ = apply_answer(SOURCE, answer + "DESCRIPTION: x\n")
    assert "    for step in range(20):\n        lr = MATRIX_LR * 0.5\n" in new
    compile(new, "train.py", "exec")


def test_non_matching_block_names_itself():
    answer = block("DEPTH = 8\n", "DEPTH = 9\n") + block("WIDTH = 3\n", "WIDTH = 4\n")
    with pytest.raises(EditError, match=r"edit block 2.*WIDTH = 3.*not in the current script"):
        apply_answer(SOURCE, answer)


def test_ambiguous_block_asks_for_more_context():
    src = "A = 1\nx = 0\nB = 2\nx = 0\n"
    with pytest.raises(EditError, match="block 1.*match 2 places"):
        apply_answer(src, block("x = 0\n", "x = 1\n"), "notes.txt")


def test_unclosed_block_is_an_error():
    with pytest.raises(EditError, match="block 1 is not closed"):
        parse_edit_blocks("<<<<<<< SEARCH\nDEPTH = 8\n=======\nDEPTH = 9\n")


def test_whole_file_in_a_fence():
    new_file = SOURCE.replace("DEPTH = 8\nMATRIX", "DEPTH = 12\nMATRIX")
    answer = f"Here is the file:\n```python\n{new_file}```\nDESCRIPTION: DEPTH 8 -> 12\n"
    new, desc, kind = apply_answer(SOURCE, answer)
    assert kind == "whole" and new == new_file and desc == "DEPTH 8 -> 12"


def test_fragment_fence_is_refused_for_a_long_file():
    long_src = SOURCE + "".join(f"V{i} = {i}\n" for i in range(60))
    with pytest.raises(EditError, match="fragment"):
        apply_answer(long_src, "```python\nDEPTH = 9\n```\nDESCRIPTION: d\n")


def test_no_blocks_no_fence_unchanged_and_syntax_errors():
    with pytest.raises(EditError, match="no SEARCH/REPLACE blocks and no fenced code block"):
        apply_answer(SOURCE, "I think we should raise the learning rate.")
    with pytest.raises(EditError, match="unchanged"):
        apply_answer(SOURCE, block("DEPTH = 8\n", "DEPTH = 8\n"))
    with pytest.raises(EditError, match="does not compile"):
        apply_answer(SOURCE, block("DEPTH = 8\n", "DEPTH = = 8\n"))


def test_description_parsing_and_fence_extraction():
    assert parse_description("foo\n**DESCRIPTION:** `raise LR`\nDESCRIPTION: final one\n") == "final one"
    assert parse_description("nothing here") is None
    assert extract_fenced("a\n````\nx = '```'\n````\n") == "x = '```'\n"


def test_describe_diff_names_a_single_constant():
    new = SOURCE.replace("MATRIX_LR = 0.04", "MATRIX_LR = 0.05")
    assert describe_diff(SOURCE, new, "train.py") == "MATRIX_LR 0.04 -> 0.05"
    other = SOURCE.replace("loss = step * lr", "loss = step * lr * 2")
    assert describe_diff(SOURCE, other, "train.py").startswith("edit train.py: loss = step * lr * 2")
