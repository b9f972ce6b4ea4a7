"""Splitting OpenRLHF's decoded queries into (prompt, response), by hand-built examples; and /get_reward's
limits and empty slices as OpenRLHF meets them, through a real server."""

from __future__ import annotations

import httpx
import pytest

from rewardkit.serve.openrlhf import DEFAULT_STRIP_TOKENS, loose_prompt_end, split_queries, split_query, strip_special

LLAMA3_PROMPT = (
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n"
)


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


# Legacy SentencePiece policies (Llama 2, Mistral v0.1/v0.2, Zephyr) decode a space after each special token: the
# query OpenRLHF sends does not hold prompts[i] verbatim, only up to whitespace
LLAMA2_SYS = "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]"
ZEPHYR = "<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\n"


@pytest.mark.parametrize(
    "query, prompt, response",
    [
        ("<s> [INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello</s>", LLAMA2_SYS, " Hello"),  # Llama 2
        ("<s> [INST] Hi [/INST] Hello</s>", "<s>[INST] Hi [/INST]", " Hello"),  # Mistral v0.1
        (
            "<s> [INST] Hi [/INST]Yo</s> [INST] Bye [/INST] See you</s>",
            "<s>[INST] Hi [/INST]Yo</s>[INST] Bye [/INST]",
            " See you",
        ),
        # Zephyr: the prompt's trailing newline is in the query as it is, so the response starts after it
        ("<s> <|system|>\nBe brief.</s> \n<|user|>\nHi</s> \n<|assistant|>\nHello</s>", ZEPHYR, "Hello"),
    ],
)
def test_a_legacy_sentencepiece_query_splits_at_its_prompt_up_to_whitespace(
    query: str, prompt: str, response: str
) -> None:
    assert query.find(prompt) < 0  # what made the verbatim split fail
    assert split_query(query, prompt) == (prompt, response)


def test_a_loosely_matched_prompt_is_still_read_back_into_messages() -> None:
    queries = [
        "<s> [INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello</s>",
        "<s> <|system|>\nBe brief.</s> \n<|user|>\nHi</s> \n<|assistant|>\nHello</s>",
    ]
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert split_queries(queries, [LLAMA2_SYS, ZEPHYR], DEFAULT_STRIP_TOKENS) == [(messages, "Hello")] * 2


@pytest.mark.parametrize(
    "query",
    [
        "<s> [INST] Bye [/INST] Hello</s>",  # another prompt
        "<s> [INST] Hi",  # the query ends inside the prompt
        "Hello <s> [INST] Hi [/INST] there</s>",  # only the start of the query is matched loosely
    ],
)
def test_a_prompt_not_in_its_query_even_up_to_whitespace_leaves_one_response(query: str) -> None:
    assert split_query(query, "<s>[INST] Hi [/INST]") == ("", query.removesuffix("</s>"))


def test_loose_prompt_end_by_hand() -> None:
    assert loose_prompt_end("<s>  a b\tc d", "<s>abc") == 10  # right after 'c'
    assert loose_prompt_end("abc d", "a b") == 2  # the prompt may end inside a word of the query
    assert loose_prompt_end("a\nb", "a b\n") == 3  # the prompt's trailing whitespace, not in the query verbatim
    assert loose_prompt_end("a b\nc", "a b\n") == 4  # ... and in it
    assert loose_prompt_end("abc", "<s> ") == -1  # nothing but BOS and whitespace to match
    assert loose_prompt_end("ab", "abc") == -1


def test_a_prompt_ending_in_a_strip_token_keeps_it() -> None:
    prompt = "Q: hi</s>"  # a template may end the prompt with an end-of-turn token
    assert split_query("<pad>Q: hi</s>A: yo</s>", prompt) == (prompt, "A: yo")


def _strip_reference(text: str, tokens: list[str]) -> str:
    """strip_special as its docstring states it, one character or token at a time (slow, obviously right)."""

    def run_end(s: str, toks: list[str]) -> int:
        cut = pos = 0
        while True:
            while pos < len(s) and s[pos].isspace():
                pos += 1
            hit = next((t for t in sorted(toks, key=len, reverse=True) if s.startswith(t, pos)), None)
            if hit is None:
                return cut
            cut = pos = pos + len(hit)

    start = run_end(text, tokens)
    stop = len(text) - run_end(text[::-1], [t[::-1] for t in tokens])
    return text[start : max(start, stop)]


def test_strip_special_agrees_with_a_token_by_token_reference() -> None:
    import random

    rng = random.Random(0)
    tokens = ["<pad>", "</s>", "<|endoftext|>", "<|end|>", "<|endoftext|>x"]  # one token prefixes two others
    pieces = tokens + [" ", "\n", "a", "b c", "<", "|end", "s>"]
    for _ in range(2000):
        text = "".join(rng.choice(pieces) * rng.choice([1, 1, 2, 7, 40]) for _ in range(rng.randint(0, 12)))
        assert strip_special(text, tokens) == _strip_reference(text, tokens), repr(text)


def test_stripping_a_padded_rollout_batch_is_fast() -> None:
    # a rollout batch padded to ~4K tokens: a short sample is mostly pad tokens. A per-token Python loop took
    # seconds over such a batch, on the event loop (every client and /health waited)
    import time

    prompt = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    query = "<|endoftext|>" * 3000 + prompt + "4<|im_end|>" + "<|endoftext|>" * 1000
    start = time.perf_counter()
    split = split_queries([query] * 1000, [prompt] * 1000, DEFAULT_STRIP_TOKENS)
    assert time.perf_counter() - start < 1.5
    assert split[0] == ([{"role": "user", "content": "What is 2+2?"}], "4") and len(split) == 1000


def test_get_reward_limits_what_is_scored_not_the_padding(serve) -> None:  # type: ignore[no-untyped-def]
    # OpenRLHF decodes a padded rollout batch with its pad tokens: thousands of characters of padding around a
    # short sample must not count against the per-input character limit (a 413 makes OpenRLHF retry, then die)
    prompt = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    padded = "<|endoftext|>" * 40 + prompt + "4<|im_end|>" + "<|endoftext|>" * 30  # 1,000+ characters
    long_answer = prompt + "x" * 101 + "<|im_end|>"
    with serve(max_chars_per_input=100) as url:
        r = httpx.post(url + "/get_reward", json={"query": [padded], "prompts": [prompt], "labels": [""]})
        assert r.status_code == 200, r.text
        messages = [{"role": "user", "content": "What is 2+2?"}]  # the prompt read back from its ChatML
        direct = httpx.post(url + "/v1/score", json={"inputs": [{"prompt": messages, "response": "4"}]}).json()
        assert r.json()["rewards"] == pytest.approx(direct["scores"], abs=1e-5)
        too_long = httpx.post(url + "/get_reward", json={"query": [padded, long_answer], "prompts": [prompt, prompt]})
        assert too_long.status_code == 413
        assert too_long.json()["error"].startswith(
            "query[1]: its response (pad/EOS tokens stripped) has 101 characters"
        )


def test_an_empty_slice_of_a_batch_gets_empty_lists(serve) -> None:  # type: ignore[no-untyped-def]
    # OpenRLHF (utils/remote_rm_utils.py and the rollout workers) splits a batch over its --remote_rm_url
    # servers in slices of ceil(n / servers): 2 queries over 3 servers send the third an empty slice
    queries, prompts, labels = ["Q: hi\nA: hello", "Q: bye\nA: see you"], ["Q: hi\nA:", "Q: bye\nA:"], ["", ""]
    with serve() as url:
        servers = [url + "/get_reward"] * 3
        size = (len(queries) + len(servers) - 1) // len(servers)
        answers = []
        for i, server in enumerate(servers):
            body = {
                "query": queries[i * size : (i + 1) * size],
                "prompts": prompts[i * size : (i + 1) * size],
                "labels": labels[i * size : (i + 1) * size],
            }
            r = httpx.post(server, json=body)
            assert r.status_code == 200, r.text
            answers.append(r.json())
        assert {k: answers[2][k] for k in ("rewards", "scores", "extra_logs")} == {
            "rewards": [],
            "scores": [],
            "extra_logs": {},
        }
        assert len([x for a in answers for x in a["rewards"]]) == 2
