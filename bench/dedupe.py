"""Near-duplicate removal benchmark: 100k generated instruction records, 10% of them planted near-duplicates.

Run: ``python bench/dedupe.py [--records 100000] [--planted 10000]``. Prints the time of exact + near dedupe,
the recall on planted near-duplicates (copies of another record with 1-5 characters substituted, inserted or
deleted) and the false positives among the distinct records. Goal: <= 30 s on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import itertools
import random
import string
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workers.finetune.dedupe import exact_duplicates, exact_key, near_duplicates

WORDS = 8000


def _vocabulary(rng: random.Random) -> list[str]:
    return ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))) for _ in range(WORDS)]


def _edit(rng: random.Random, text: str, edits: int) -> str:
    chars = list(text)
    for _ in range(edits):
        position = rng.randrange(len(chars))
        roll = rng.random()
        if roll < 0.5:
            chars[position] = rng.choice(string.ascii_lowercase)
        elif roll < 0.75:
            chars.insert(position, rng.choice(string.ascii_lowercase))
        else:
            del chars[position]
    return "".join(chars)


def generate(*, records: int, planted: int, seed: int) -> tuple[list[tuple[str, str]], set[int]]:
    """(prompt, response) records with Zipf-distributed words, and the indices of the planted near-copies."""
    rng = random.Random(seed)
    words = _vocabulary(rng)
    cumulative = list(itertools.accumulate(1 / (rank + 1) for rank in range(WORDS)))

    def sentence(low: int, high: int) -> str:
        return " ".join(rng.choices(words, cum_weights=cumulative, k=rng.randint(low, high)))

    distinct = [(sentence(8, 30), sentence(30, 150)) for _ in range(records - planted)]
    copies = []
    for _ in range(planted):
        prompt, response = rng.choice(distinct)
        edits = rng.randint(1, 5)
        if rng.random() < len(prompt) / (len(prompt) + len(response)):
            prompt = _edit(rng, prompt, edits)
        else:
            response = _edit(rng, response, edits)
        copies.append((prompt, response))
    return distinct + copies, set(range(records - planted, records))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--planted", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data, planted = generate(records=args.records, planted=args.planted, seed=args.seed)
    texts = [f"{prompt}\n{response}" for prompt, response in data]
    chars = sum(map(len, texts))

    start = time.perf_counter()
    exact = exact_duplicates([exact_key(text) for text in texts])
    exact_s = time.perf_counter() - start
    near = near_duplicates(texts, prompts=[prompt for prompt, _ in data])
    total_s = time.perf_counter() - start

    flagged = {index for index, (e, n) in enumerate(zip(exact, near, strict=True)) if e >= 0 or n >= 0}
    recall = len(flagged & planted) / len(planted) if planted else 1.0
    false_positives = len(flagged - planted)
    print(f"records={len(texts)} chars={chars} planted={len(planted)}")
    print(f"exact dedupe {exact_s:.2f}s, exact+near dedupe {total_s:.2f}s")
    print(f"recall on planted near-duplicates {recall:.4f}")
    print(f"false positives {false_positives} of {len(texts) - len(planted)} distinct records")


if __name__ == "__main__":
    main()
