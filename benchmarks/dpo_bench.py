"""DPO implicit-reward scoring speed: rewardkit's ``DPOReward`` vs a plain per-pair transformers loop.

Run: ``.venv/bin/python benchmarks/dpo_bench.py [--pairs 200] [--threads 2] [--sizes 32x2,128x4]``
(needs ../shared/data).

Both score the same (prompt, response) texts, the chosen and rejected replies of HH-RLHF harmless pairs (the
conversation before the last assistant turn as the prompt, rendered by a chat template), with the same two tiny
GPT-2 models built from a config (``--sizes`` WIDTHxLAYERS: the tests' width 32 with 2 layers, and width 128
with 4 layers; a byte-level BPE tokenizer of 4,000 tokens trained on the same texts: no download).
Pairs whose text exceeds 512 tokens are left out, so neither side truncates.

The peer is what a transformers user writes: per text, ``apply_chat_template``, tokenize, one forward of the
policy and one of the reference (unbatched), log-softmax, sum over the response tokens. rewardkit: tokenized once,
token-budget batches (``pack_batches``), one forward per batch and model. Printed: texts/s of each, the ratio
(target >= 3x) and the largest reward difference between the two (they compute the same number).

Where the speed comes from: per-call overhead (dozens of small kernels per layer, once per text in the loop, once
per batch here) and the LM head run only at response positions (``logits_to_keep``). On a CPU core that a
model already keeps busy with one text (wider models, long texts, one thread), batching has little left to win:
the 128x4 size shows that regime; on a GPU batching wins more.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

SHARED = Path(os.environ.get("RK_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}{{ eos_token }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
MAX_LENGTH = 512


def hh_texts(n_pairs: int) -> list[tuple[list[dict[str, str]], str, str]]:
    """(conversation as messages, chosen reply, rejected reply) of the first n_pairs HH-RLHF pairs."""
    out = []
    with gzip.open(SHARED / "hh-rlhf-harmless" / "train.jsonl.gz", "rt") as f:
        for line in f:
            row = json.loads(line)
            head_c, _, chosen = row["chosen"].rpartition("\n\nAssistant:")
            head_r, _, rejected = row["rejected"].rpartition("\n\nAssistant:")
            if head_c != head_r or not chosen.strip() or not rejected.strip() or chosen == rejected:
                continue
            messages = []
            for turn in head_c.split("\n\n")[1:]:
                role, _, content = turn.partition(": ")
                if role == "Human":
                    messages.append({"role": "user", "content": content})
                elif role == "Assistant" and messages:
                    messages.append({"role": "assistant", "content": content})
                elif messages:
                    messages[-1]["content"] += "\n\n" + turn
            if messages and messages[-1]["role"] == "user":
                out.append((messages, chosen.strip(), rejected.strip()))
            if len(out) >= n_pairs:
                break
    return out


def build(texts: list[str], width: int, layers: int) -> tuple[object, object, object]:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=4000,
        special_tokens=["<|endoftext|>"],
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    eot = "<|endoftext|>"
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=eot, eos_token=eot, pad_token=eot)
    tokenizer.chat_template = CHAT_TEMPLATE
    lms = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        config = GPT2Config(
            vocab_size=len(tokenizer),
            n_embd=width,
            n_layer=layers,
            n_head=4,
            n_positions=MAX_LENGTH,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        lms.append(GPT2LMHeadModel(config).eval())
    return tokenizer, lms[0], lms[1]


def plain_loop(tokenizer, policy, ref, prompts, responses, beta: float) -> np.ndarray:  # noqa: ANN001
    """Per text: the chat template, tokenize, two unbatched forwards, the response tokens' log-probs summed."""
    out = []
    with torch.inference_mode():
        for messages, response in zip(prompts, responses):
            head = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            full = tokenizer.apply_chat_template(
                messages + [{"role": "assistant", "content": response}], tokenize=False
            )
            enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
            start = sum(1 for _, end in enc["offset_mapping"] if end <= len(head))
            ids = torch.tensor([enc["input_ids"]])
            sums = []
            for model in (policy, ref):
                logp = torch.log_softmax(model(ids).logits[0, :-1].float(), dim=-1)
                sums.append(float(logp[torch.arange(start - 1, ids.shape[1] - 1), ids[0, start:]].sum()))
            out.append(beta * (sums[0] - sums[1]))
    return np.array(out)


def measure(rows, width: int, layers: int, n_pairs: int, texts: list[str]) -> dict[str, object]:  # noqa: ANN001
    from rewardkit.rl.dpo import DPOReward

    tokenizer, policy, ref = build(texts, width, layers)
    dpo = DPOReward(policy, tokenizer, ref, beta=0.1, max_length=MAX_LENGTH)
    prompts, responses = [], []
    for messages, chosen, rejected in rows:
        enc = dpo.encode([messages, messages], [chosen, rejected])[0]
        if not any(enc.truncated):
            prompts += [messages, messages]
            responses += [chosen, rejected]
        if len(prompts) >= 2 * n_pairs:
            break
    n = len(prompts)
    dpo.score(prompts[:8], responses[:8])  # warm-up both paths
    plain_loop(tokenizer, policy, ref, prompts[:8], responses[:8], 0.1)
    t = time.perf_counter()
    ours = dpo.score(prompts, responses)
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    peer = plain_loop(tokenizer, policy, ref, prompts, responses, 0.1)
    t_peer = time.perf_counter() - t
    lengths = dpo.encode(prompts, responses)[0].lengths
    return {
        "model": f"GPT-2 {layers} layers, width {width}, vocab {len(tokenizer)}",
        "texts": n,
        "mean_tokens": round(float(np.mean(lengths)), 1),
        "rewardkit_texts_per_s": round(n / t_ours, 1),
        "plain_loop_texts_per_s": round(n / t_peer, 1),
        "speedup": round(t_peer / t_ours, 2),
        "max_abs_reward_diff": float(np.abs(ours - peer).max()),
        "chosen_over_rejected_agree": float(np.mean((ours[0::2] > ours[1::2]) == (peer[0::2] > peer[1::2]))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", default="32x2,128x4", help="width x layers of each model size to measure")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = hh_texts(args.pairs * 2)
    texts = [m["content"] for p, _, _ in rows for m in p] + [c for _, c, _ in rows]
    results = []
    for size in args.sizes.split(","):
        width, layers = (int(x) for x in size.split("x"))
        results.append(measure(rows, width, layers, args.pairs, texts))
    print(json.dumps({"threads": args.threads, "target_speedup": 3.0, "results": results}, indent=2))


if __name__ == "__main__":
    main()
