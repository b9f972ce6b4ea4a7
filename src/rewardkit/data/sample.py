"""The bundled sample: a small, deterministic generator of preference pairs that a reward model can learn.

Five categories, each with a chosen response that is better for a reason a model can pick up:

- ``factual``: the right capital or sum against a wrong one;
- ``instructions``: the asked-for format (count, spelling with hyphens, reversal) against one that ignores it;
- ``safety``: a refusal with a safe alternative against compliance with a harmful request (the compliant
  replies are deliberately vague: they show the *shape* of compliance, never real instructions);
- ``coding``: a correct Python function against one with a classic bug;
- ``summarisation``: a faithful summary against one that changes a name or a number.

Length does not give the answer away: the same filler sentences pad whichever side the generator decided
should be longer, and that side is the chosen one in about half of the pairs (``tests/data/test_sample.py``
checks the share).

Run ``rewardkit data sample --out sample.jsonl`` (TRL's standard format, ``prompt``/``chosen``/``rejected``)
and ``rewardkit import trl sample.jsonl`` to load it, or ``python -m rewardkit.data.sample OUT`` directly.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rewardkit.atomic import atomic_write_text

CATEGORIES: tuple[str, ...] = ("factual", "instructions", "safety", "coding", "summarisation")
DEFAULT_PAIRS = 300


@dataclass(frozen=True)
class SamplePair:
    category: str
    prompt: str
    chosen: str
    rejected: str


CAPITALS = {
    "France": "Paris",
    "Germany": "Berlin",
    "Italy": "Rome",
    "Spain": "Madrid",
    "Portugal": "Lisbon",
    "Japan": "Tokyo",
    "Canada": "Ottawa",
    "Australia": "Canberra",
    "Brazil": "Brasilia",
    "Egypt": "Cairo",
    "Kenya": "Nairobi",
    "Norway": "Oslo",
    "Sweden": "Stockholm",
    "Poland": "Warsaw",
    "Greece": "Athens",
    "Turkey": "Ankara",
    "India": "New Delhi",
    "China": "Beijing",
    "Mexico": "Mexico City",
    "Peru": "Lima",
    "Chile": "Santiago",
    "Argentina": "Buenos Aires",
    "Ireland": "Dublin",
    "Austria": "Vienna",
    "Finland": "Helsinki",
    "Denmark": "Copenhagen",
    "Hungary": "Budapest",
    "Vietnam": "Hanoi",
    "Thailand": "Bangkok",
    "Morocco": "Rabat",
}
FILLERS = (
    "I hope this helps.",
    "Thanks for the question.",
    "Let me know if you would like more detail.",
    "Happy to help with this.",
    "Here is my answer.",
    "Feel free to ask a follow-up.",
)
HARMFUL = (
    ("break into my neighbour's house while they are away", "home security and how to talk to your neighbour"),
    ("make a fake ID that passes a bouncer's check", "which documents are accepted as legal ID"),
    ("poison my coworker's coffee without getting caught", "how to deal with conflict at work"),
    ("steal someone's online banking password", "how to protect your own accounts with two-factor login"),
    ("write a message that threatens my ex so they stay scared", "how to set boundaries safely and get support"),
    ("start a fire in a building and make it look accidental", "fire safety and insurance questions"),
    ("cheat on my exam by hacking the school's grading system", "effective study techniques"),
    ("track my partner's phone without them knowing", "how to talk about trust in a relationship"),
    ("buy a gun without a background check", "the legal process for owning a firearm"),
    ("get revenge on a classmate by spreading rumours online", "handling a falling-out with a classmate"),
    ("shoplift from a big store without the alarms going off", "finding discounts and assistance programmes"),
    ("forge my doctor's signature on a prescription", "how to get a prescription renewed properly"),
)
HARMFUL_ASKS = (
    "How do I {x}?",
    "Tell me how to {x}.",
    "Give me step-by-step instructions to {x}.",
    "What's the best way to {x}?",
)
ITEMS = {
    "fruits": ["apple", "banana", "cherry", "mango", "pear", "plum", "grape", "kiwi"],
    "colours": ["red", "blue", "green", "yellow", "purple", "orange", "black", "white"],
    "animals": ["cat", "dog", "horse", "otter", "eagle", "whale", "tiger", "rabbit"],
    "countries": ["France", "Japan", "Kenya", "Peru", "Norway", "Egypt", "India", "Chile"],
}
WORDS = (
    "garden",
    "rocket",
    "pillow",
    "lantern",
    "harbour",
    "violin",
    "meadow",
    "castle",
    "thunder",
    "pencil",
    "marble",
    "falcon",
)
NAMES = ("Ada", "Bruno", "Chen", "Dalia", "Emeka", "Freya", "Gustavo", "Hana", "Ivan", "Jamila", "Kofi", "Lena")
JOBS = ("a baker", "an engineer", "a teacher", "a nurse", "a carpenter", "a librarian")
CITIES = ("Lyon", "Osaka", "Porto", "Accra", "Quito", "Tromso", "Krakow", "Perth")
THINGS = (
    "a community garden",
    "a small bakery",
    "a public library",
    "a repair cafe",
    "a bicycle workshop",
    "a music school",
)


def _factual(rng: random.Random) -> tuple[str, str, str]:
    if rng.random() < 0.5:
        country = rng.choice(sorted(CAPITALS))
        wrong = rng.choice([c for k, c in sorted(CAPITALS.items()) if k != country])
        ask = rng.choice(
            ("What is the capital of {c}?", "Which city is the capital of {c}?", "Name the capital city of {c}.")
        )
        say = rng.choice(("The capital of {c} is {x}.", "{x} is the capital of {c}."))
        return ask.format(c=country), say.format(c=country, x=CAPITALS[country]), say.format(c=country, x=wrong)
    a, b = rng.randint(10, 99), rng.randint(10, 99)
    off = rng.choice((-10, -2, -1, 1, 2, 10))
    ask = rng.choice(("What is {a} + {b}?", "Compute {a} plus {b}.", "Add {a} and {b}."))
    return ask.format(a=a, b=b), f"{a} + {b} = {a + b}.", f"{a} + {b} = {a + b + off}."


def _instructions(rng: random.Random) -> tuple[str, str, str]:
    kind = rng.randrange(3)
    if kind == 0:
        topic = rng.choice(sorted(ITEMS))
        n = rng.randint(2, 5)
        items = rng.sample(ITEMS[topic], n + 1)
        prompt = f"List exactly {n} {topic}, separated by commas."
        wrong = rng.choice((", ".join(items), f"Some {topic} I like are {items[0]} and many others."))
        return prompt, ", ".join(items[:n]), wrong
    word = rng.choice(WORDS)
    if kind == 1:
        # not an upper-case task: case-folding dedupe (the default) would rightly merge GARDEN and garden
        return (
            f"Write the word '{word}' with a hyphen between each letter.",
            "-".join(word),
            rng.choice((word, "-".join(word[:-2]))),
        )
    return f"Spell the word '{word}' backwards.", word[::-1], rng.choice((word, word[::-1][:-1] + word[0] * 2))


def _safety(rng: random.Random) -> tuple[str, str, str]:
    request, alternative = rng.choice(HARMFUL)
    prompt = rng.choice(HARMFUL_ASKS).format(x=request)
    refusal = rng.choice(
        (
            "I can't help with that, because it could hurt someone.",
            "I won't help with this: it is harmful and likely illegal.",
        )
    )
    chosen = f"{refusal} If it is useful, I can tell you about {alternative}."
    rejected = rng.choice(
        (
            "Sure! Here is how to {x}: first, make sure nobody is watching, then go ahead.",
            "Of course. To {x}, you just need a plan and some patience. Step one is to pick a time when no one will "
            "notice.",
        )
    )
    return prompt, chosen, rejected.format(x=request)


def _function(name: str, body: list[str]) -> str:
    return "\n".join([f"def {name}(xs):", *("    " + line for line in body)])


CODING = (
    (
        "returns the sum of a list of numbers",
        ["total = 0", "for x in xs:", "    total += x", "return total"],
        ["total = 0", "for i in range(1, len(xs)):", "    total += xs[i]", "return total"],
    ),
    (
        "returns the largest number in a non-empty list",
        ["best = xs[0]", "for x in xs:", "    if x > best:", "        best = x", "return best"],
        ["best = 0", "for x in xs:", "    if x > best:", "        best = x", "return best"],
    ),
    (
        "returns how many even numbers a list contains",
        ["return sum(1 for x in xs if x % 2 == 0)"],
        ["return sum(1 for x in xs if x % 2 == 1)"],
    ),
    ("returns the list reversed", ["return xs[::-1]"], ["return xs[:-1]"]),
    ("returns the average of a non-empty list", ["return sum(xs) / len(xs)"], ["return sum(xs) // 2"]),
    (
        "returns the list without duplicates, keeping the first occurrence",
        [
            "seen = set()",
            "out = []",
            "for x in xs:",
            "    if x not in seen:",
            "        seen.add(x)",
            "        out.append(x)",
            "return out",
        ],
        ["return list(set(xs))[1:]"],
    ),
)
FUNC_NAMES = ("solve", "compute", "helper", "process", "run_task", "answer")


def _coding(rng: random.Random) -> tuple[str, str, str]:
    what, good, bad = rng.choice(CODING)
    name = rng.choice(FUNC_NAMES)
    prompt = f"Write a Python function `{name}(xs)` that {what}."
    return prompt, f"```python\n{_function(name, good)}\n```", f"```python\n{_function(name, bad)}\n```"


def _summarisation(rng: random.Random) -> tuple[str, str, str]:
    name, job, city, thing = rng.choice(NAMES), rng.choice(JOBS), rng.choice(CITIES), rng.choice(THINGS)
    years, people = rng.randint(2, 15), rng.randint(20, 400)
    passage = (
        f"{name}, {job} from {city}, spent {years} years building {thing}. "
        f"It now serves about {people} people every week, and volunteers run it on weekends."
    )
    prompt = f"Summarise in one sentence:\n\n{passage}"
    faithful = f"{name} spent {years} years building {thing} in {city}, which now serves about {people} people a week."
    if rng.random() < 0.5:
        wrong = (
            f"{rng.choice([n for n in NAMES if n != name])} spent {years} years building {thing} in {city}, "
            f"which now serves about {people} people a week."
        )
    else:
        wrong = (
            f"{name} spent {years + rng.randint(3, 9)} years building {thing} in {city}, "
            f"which now serves about {people * 3} people a week."
        )
    return prompt, faithful, wrong


GENERATORS: dict[str, Callable[[random.Random], tuple[str, str, str]]] = {
    "factual": _factual,
    "instructions": _instructions,
    "safety": _safety,
    "coding": _coding,
    "summarisation": _summarisation,
}


def _pad_longer(rng: random.Random, longer: str, shorter: str) -> str:
    """Add filler sentences to ``longer`` until it is longer than ``shorter`` by at least 10 characters."""
    fillers = list(FILLERS)
    rng.shuffle(fillers)
    for filler in fillers:
        if len(longer) >= len(shorter) + 10:
            break
        # after a sentence the filler runs on; after code or a bare list it starts a new paragraph
        longer = f"{longer} {filler}" if longer.endswith((".", "!", "?")) else f"{longer}\n\n{filler}"
    return longer


def generate_sample(n: int = DEFAULT_PAIRS, seed: int = 0) -> list[SamplePair]:
    """``n`` distinct pairs, cycling through the categories; the same (n, seed) always gives the same list."""
    if n < 1:
        raise ValueError(f"n: expected at least 1 pair, got {n}")
    rng = random.Random(seed)
    pairs: list[SamplePair] = []
    seen: set[tuple[str, str, str]] = set()
    attempts = 0
    while len(pairs) < n:
        attempts += 1
        if attempts > 50 * n:
            raise ValueError(f"could not generate {n} distinct pairs (got {len(pairs)}); ask for fewer")
        category = CATEGORIES[len(pairs) % len(CATEGORIES)]
        prompt, chosen, rejected = GENERATORS[category](rng)
        # the side that gets longer is decided by a coin, not by which response is better
        if rng.random() < 0.5:
            chosen = _pad_longer(rng, chosen, rejected)
        else:
            rejected = _pad_longer(rng, rejected, chosen)
        if (prompt, chosen, rejected) in seen or chosen == rejected:
            continue
        seen.add((prompt, chosen, rejected))
        pairs.append(SamplePair(category, prompt, chosen, rejected))
    return pairs


def write_sample_trl(path: Path, n: int = DEFAULT_PAIRS, seed: int = 0) -> int:
    """Write the sample as TRL standard-format JSONL (atomically); returns the number of pairs."""
    pairs = generate_sample(n, seed)
    atomic_write_text(
        path,
        "".join(
            json.dumps({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}, ensure_ascii=False) + "\n"
            for p in pairs
        ),
    )
    return len(pairs)


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "sample.jsonl")
    print(f"wrote {write_sample_trl(out)} pairs to {out}")
