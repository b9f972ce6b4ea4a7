"""Splitting OpenRLHF's decoded queries into (prompt, response), by hand-built examples."""

from __future__ import annotations

from rewardkit.serve.openrlhf import split_query, strip_special

LLAMA3_PROMPT = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"


def test_strip_special_removes_runs_at_both_ends_only() -> None:
    assert strip_special("<pad> <pad>a<pad>b</s><pad>", ["<pad>", "</s>"]) == "a<pad>b"
    assert strip_special("<pad>a</s>", ["<pad>", "</s>"], end=False) == "a</s>"
    assert strip_special("<pad>a", []) == "<pad>a"
    assert strip_special("answer</s>\n", ["</s>"]) == "answer"  # a newline after the EOS
    assert strip_special("<pad><pad>", ["<pad>"]) == ""
    inner = "x" + "</s> " * 5000 + "x"  # a run inside the text stays (and is not a quadratic regex backtrack)
    assert strip_special(inner, ["</s>", "<pad>"]) == inner


def test_a_left_padded_llama3_rollout_splits_at_its_prompt() -> None:
    query = "<|end_of_text|>" * 3 + LLAMA3_PROMPT + "hello!<|eot_id|>"
    assert split_query(query, LLAMA3_PROMPT) == (LLAMA3_PROMPT, "hello!")


def test_a_bos_token_before_the_prompt_is_dropped() -> None:
    assert split_query("<pad><s>[INST] hi [/INST] yo</s>", "[INST] hi [/INST]") == ("[INST] hi [/INST]", " yo")


def test_without_its_prompt_the_query_is_one_response() -> None:
    assert split_query("<pad>just text</s>", "") == ("", "just text")
    assert split_query("other text", "missing prompt") == ("", "other text")


def test_a_prompt_ending_in_a_strip_token_keeps_it() -> None:
    prompt = "Q: hi</s>"  # a template may end the prompt with an end-of-turn token
    assert split_query("<pad>Q: hi</s>A: yo</s>", prompt) == (prompt, "A: yo")
