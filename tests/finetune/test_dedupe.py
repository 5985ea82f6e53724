"""Exact and near-duplicate detection: planted near-copies are found, distinct examples are kept."""

from __future__ import annotations

import itertools
import random
import string

import numpy as np

from workers.finetune.dedupe import exact_duplicates, exact_key, minhash_signatures, near_duplicates


def _corpus(*, distinct: int, planted: int, seed: int) -> tuple[list[tuple[str, str]], dict[int, int]]:
    """Zipf-worded (prompt, response) records plus near-copies with 1-5 characters edited; returns the
    records and {copy index: original index}."""
    rng = random.Random(seed)
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))) for _ in range(3000)]
    cumulative = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(words))))

    def sentence(low: int, high: int) -> str:
        return " ".join(rng.choices(words, cum_weights=cumulative, k=rng.randint(low, high)))

    records = [(sentence(8, 30), sentence(30, 120)) for _ in range(distinct)]
    copies: dict[int, int] = {}
    for _ in range(planted):
        original = rng.randrange(distinct)
        prompt, response = records[original]
        chars = list(prompt + "\x00" + response)
        for _ in range(rng.randint(1, 5)):
            position = rng.randrange(len(chars))
            if chars[position] != "\x00":
                chars[position] = rng.choice(string.ascii_lowercase)
        prompt, response = "".join(chars).split("\x00")
        copies[len(records)] = original
        records.append((prompt, response))
    return records, copies


def test_planted_near_duplicates_are_found_and_distinct_records_kept() -> None:
    records, copies = _corpus(distinct=1800, planted=200, seed=7)
    result = near_duplicates([f"{p}\n{r}" for p, r in records], prompts=[p for p, _ in records])
    recall = sum(result[copy] >= 0 for copy in copies) / len(copies)
    false_positives = sum(flag >= 0 for flag in result[:1800])
    assert recall >= 0.95
    assert false_positives <= 18  # <= 1% of the distinct records
    assert all(result[copy] in (-1, original) for copy, original in copies.items())


def test_chinese_near_duplicates_are_found() -> None:
    base = "请帮我写一封邮件，告诉同事明天上午十点的会议改到下午三点，地点仍然在三楼的大会议室。"
    answer = "好的，以下是邮件内容：各位同事，明天上午十点的会议改到下午三点举行，地点不变，仍在三楼大会议室。"
    texts = [
        base + answer,
        base.replace("同事", "同学", 1) + answer,
        "今天天气怎么样？" + "今天晴天，气温二十五度。",
    ]
    assert near_duplicates(texts, prompts=[base, base.replace("同事", "同学", 1), "今天天气怎么样？"]) == [
        -1,
        0,
        -1,
    ]


def test_same_answer_to_different_questions_is_kept() -> None:
    answer = "I am TigerBot, an AI assistant developed by Tiger Research. How can I assist you today?"
    prompts = ["Who are you?", "hi", "hello", "What is your name?", "Introduce yourself"]
    assert near_duplicates([f"{p}\n{answer}" for p in prompts], prompts=prompts) == [-1] * len(prompts)
    assert near_duplicates([f"{p}\n{answer}" for p in prompts[:2]] * 2, prompts=prompts[:2] * 2) == [
        -1,
        -1,
        0,
        1,
    ]


def test_exact_duplicates_ignore_case_width_and_spacing() -> None:
    keys = [exact_key(t) for t in ["Hello  World", "hello world", "ＨＥＬＬＯ world\n", "different"]]
    assert exact_duplicates(keys) == [-1, 0, 0, -1]


def test_signature_agreement_tracks_jaccard() -> None:
    rng = random.Random(1)
    words = [f"w{i:05d}" for i in range(20000)]
    a = " ".join(rng.sample(words, 400))
    b = a[: len(a) // 2] + " ".join(rng.sample(words, 200))
    short = ["ab", "abc", ""]
    signatures = minhash_signatures([a, b, *short])
    shingles_a, shingles_b = ({t[i : i + 5] for i in range(len(t) - 4)} for t in (a, b))
    jaccard = len(shingles_a & shingles_b) / len(shingles_a | shingles_b)
    assert abs((signatures[0] == signatures[1]).mean() - jaccard) < 0.15  # 128 bins: std about 0.04
    assert (signatures[2] == signatures[3]).mean() < 0.5
    assert np.array_equal(minhash_signatures([a]), signatures[:1])
    assert near_duplicates([]) == []


def test_short_records_are_merged_on_their_exact_similarity_not_the_estimate() -> None:
    # Fewer 5-grams than signature bins: the estimate put two of these pairs over 0.8 (their Jaccard is 0.76).
    records = [(f"What is the secret number of Zorblat{i}?", f"It is 400{i}.") for i in range(8)]
    texts = [f"{prompt}\n{answer}" for prompt, answer in records]
    assert near_duplicates(texts, prompts=[prompt for prompt, _ in records]) == [-1] * 8


def test_records_whose_numbers_differ_are_kept_and_typos_still_merged() -> None:
    prompt = (
        "A shop sells pencils at 3 dollars a box and notebooks at 7 dollars each. Anna buys 4 boxes of pencils and "
        "some notebooks, and pays {total} dollars in all. How many notebooks does she buy?"
    )
    answer = "Pencils cost 4 x 3 = 12 dollars, so the notebooks cost {rest} dollars: {rest} / 7 = {count} notebooks."
    counts = (2, 3, 5)
    prompts = [prompt.format(total=12 + 7 * count) for count in counts]
    texts = [f"{prompts[i]}\n{answer.format(rest=7 * count, count=count)}" for i, count in enumerate(counts)]
    typo = texts[0].replace("notebooks at", "notebooks a", 1)
    assert near_duplicates([*texts, typo], prompts=[*prompts, prompts[0]]) == [-1, -1, -1, 0]
