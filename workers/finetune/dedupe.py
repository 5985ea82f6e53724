"""Exact and near-duplicate detection, linear in the data size (never pairwise).

Near-duplicates: MinHash over character 5-gram shingles of normalised text, estimated Jaccard >=
``threshold``. The signature uses one-permutation hashing (each shingle hash goes to one of ``num_bins`` bins
by its top bits, the bin keeps the minimum of the low bits) with rotation densification for empty bins, so
hashing costs O(shingles) instead of O(shingles x permutations) and is vectorised in numpy. LSH bands of
``rows_per_band`` bins group candidates; each candidate is verified against the first (lowest-index) member of
its bucket only, so a bucket of m documents costs m comparisons, and verified pairs are merged with a
union-find. Within a group of near-duplicates the earliest document is kept.

Verification is in two steps: the signatures' agreement, with a margin, then, unless the texts are long and agree
well above the threshold, the exact Jaccard of the pair's shingle sets, since the estimate is noisy on short texts
(fewer shingles than bins) and near the threshold. It can also require the prompts alone
to be somewhat similar, and it never merges two texts whose numbers differ (see ``near_duplicates``).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

_EMPTY = np.uint32(0xFFFFFFFF)
_MASK32 = np.uint64(0xFFFFFFFF)
_PAD = "\x01"
_POLY = np.uint64(0x100000001B3)
_ROTATION = np.uint32(0x9E3779B1)
_BATCH_CHARS = 4_000_000
_VERIFY_BATCH = 100_000
_SPACE = re.compile(r"\s+")
_PUNCTUATION = re.compile(r"[^\w\s]")
_NUMBER = re.compile(r"\d+")
# How far below the threshold an estimated agreement may fall and the pair still be checked exactly: about three
# standard deviations of the estimate with 128 bins, so that a true near-duplicate is almost never missed.
_ESTIMATE_MARGIN = 0.12


def normalise_text(text: str) -> str:
    """Case, width and whitespace differences never make two texts distinct."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def exact_key(text: str) -> bytes:
    return hashlib.blake2b(normalise_text(text).encode("utf-8"), digest_size=16).digest()


def exact_duplicates(keys: Sequence[bytes]) -> list[int]:
    """For each key, -1 if it is the first with that key, else the index of the first one."""
    first: dict[bytes, int] = {}
    return [-1 if first.setdefault(key, index) == index else first[key] for index, key in enumerate(keys)]


def _mix64(values: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads the polynomial hash over all 64 bits (bins use the top ones)."""
    values = values ^ (values >> np.uint64(30))
    values = values * np.uint64(0xBF58476D1CE4E5B9)
    values = values ^ (values >> np.uint64(27))
    values = values * np.uint64(0x94D049BB133111EB)
    return values ^ (values >> np.uint64(31))


def _signature_batch(texts: Sequence[str], *, shingle_size: int, num_bins: int, seed: int) -> np.ndarray:
    padded = [text.ljust(shingle_size, _PAD) for text in texts]
    lengths = np.fromiter((len(text) for text in padded), dtype=np.int64, count=len(padded))
    points = np.frombuffer("".join(padded).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    span = len(points) - shingle_size + 1
    rolling = np.zeros(span, dtype=np.uint64)
    for offset in range(shingle_size):
        rolling = rolling * _POLY + points[offset : offset + span]
    windows = lengths - shingle_size + 1
    starts = np.cumsum(lengths) - lengths
    window_starts = np.cumsum(windows) - windows
    positions = np.arange(windows.sum()) - np.repeat(window_starts - starts, windows)
    hashes = _mix64(rolling[positions] ^ np.uint64(seed * 0x9E3779B97F4A7C15 % 2**64))
    bits = num_bins.bit_length() - 1
    slots = np.repeat(np.arange(len(texts), dtype=np.int64) * num_bins, windows)
    slots += (hashes >> np.uint64(64 - bits)).astype(np.int64)
    signature = np.full(len(texts) * num_bins, _EMPTY, dtype=np.uint32)
    np.minimum.at(signature, slots, (hashes & _MASK32).astype(np.uint32))
    return _densify(signature.reshape(len(texts), num_bins))


def _densify(signature: np.ndarray) -> np.ndarray:
    """Fill each empty bin from the next non-empty bin to its right (circularly), offset by the distance, so
    two documents agree on a filled bin with about the probability that they agree on a real one."""
    rows = np.flatnonzero((signature == _EMPTY).any(axis=1))
    if not len(rows):
        return signature
    part = signature[rows]
    num_bins = part.shape[1]
    columns = np.arange(2 * num_bins)
    filled = np.tile(part != _EMPTY, 2)
    nearest = np.where(filled, columns, 4 * num_bins)
    nearest = np.minimum.accumulate(nearest[:, ::-1], axis=1)[:, ::-1][:, :num_bins]
    source = np.take_along_axis(part, nearest % num_bins, axis=1)
    distance = (nearest - columns[:num_bins]).astype(np.uint32)
    signature[rows] = source + distance * _ROTATION
    return signature


def minhash_signatures(
    texts: Sequence[str], *, shingle_size: int = 5, num_bins: int = 128, seed: int = 0
) -> np.ndarray:
    """(len(texts), num_bins) uint32 signatures of normalised texts; num_bins must be a power of two."""
    if num_bins & (num_bins - 1) or num_bins < 2:
        raise ValueError("num_bins must be a power of two >= 2")
    batches, batch, size = [], [], 0
    for text in texts:
        batch.append(text)
        size += len(text)
        if size >= _BATCH_CHARS:
            batches.append(_signature_batch(batch, shingle_size=shingle_size, num_bins=num_bins, seed=seed))
            batch, size = [], 0
    if batch or not batches:
        batches.append(_signature_batch(batch, shingle_size=shingle_size, num_bins=num_bins, seed=seed))
    return np.concatenate(batches)


def _band_candidates(signature: np.ndarray, rows_per_band: int) -> np.ndarray:
    """(first, member) index pairs that share a band value, `first` being the lowest index in the bucket."""
    count, width = signature.shape
    pairs = []
    weights = np.uint64(0x9E3779B97F4A7C15) ** np.arange(1, rows_per_band + 1, dtype=np.uint64)
    for start in range(0, width - rows_per_band + 1, rows_per_band):
        band = signature[:, start : start + rows_per_band].astype(np.uint64)
        keys = _mix64((band * weights).sum(axis=1, dtype=np.uint64))
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        new_bucket = np.ones(count, dtype=bool)
        new_bucket[1:] = sorted_keys[1:] != sorted_keys[:-1]
        first = order[np.flatnonzero(new_bucket)[np.cumsum(new_bucket) - 1]]
        repeated = first != order
        pairs.append(np.stack([first[repeated], order[repeated]], axis=1))
    return np.unique(np.concatenate(pairs), axis=0) if pairs else np.empty((0, 2), dtype=np.int64)


def _find(parent: list[int], node: int) -> int:
    while parent[node] != node:
        parent[node] = parent[parent[node]]
        node = parent[node]
    return node


def near_duplicates(
    texts: Sequence[str],
    *,
    threshold: float = 0.8,
    prompts: Sequence[str] | None = None,
    prompt_threshold: float = 0.5,
    shingle_size: int = 5,
    num_bins: int = 128,
    rows_per_band: int = 4,
    seed: int = 0,
) -> list[int]:
    """For each text, -1 if kept, else the index of the earlier text it nearly repeats.

    With ``prompts`` (one per text), a pair must also have prompts at least ``prompt_threshold`` similar, so
    different questions that share one long canned answer (identity datasets) are not merged.
    """
    if not texts:
        return []
    parts = [_Part([_comparable(text) for text in texts], threshold, shingle_size)]
    if prompts is not None:
        parts.append(_Part([_comparable(prompt) for prompt in prompts], prompt_threshold, shingle_size))
    signatures = [
        minhash_signatures(part.texts, shingle_size=shingle_size, num_bins=num_bins, seed=seed + offset)
        for offset, part in enumerate(parts)
    ]
    pairs = _band_candidates(signatures[0], rows_per_band)
    # Long enough that every bin holds a real shingle: there the estimate is good, and a pair well above the
    # threshold needs no exact check (which would cost more than all the rest).
    long = np.array([len(text) >= num_bins + shingle_size - 1 for text in parts[0].texts])
    similar = np.ones(len(pairs), dtype=bool)
    sure = long[pairs[:, 0]] & long[pairs[:, 1]]
    for start in range(0, len(pairs), _VERIFY_BATCH):
        batch, window = pairs[start : start + _VERIFY_BATCH], slice(start, start + _VERIFY_BATCH)
        for values, part in zip(signatures, parts, strict=True):
            agreement = (values[batch[:, 0]] == values[batch[:, 1]]).mean(axis=1)
            similar[window] &= agreement >= part.threshold - _ESTIMATE_MARGIN
            sure[window] &= agreement >= part.threshold + _ESTIMATE_MARGIN
    numbers = parts[0].numbers
    parent = list(range(len(texts)))
    for (first, member), certain in zip(pairs[similar].tolist(), sure[similar].tolist(), strict=True):
        # Templated data (arithmetic, dates, quantities, ids) differs in its numbers only, and that is its point.
        if numbers(first) != numbers(member):
            continue
        if not certain and not all(part.similar(first, member) for part in parts):
            continue
        root_a, root_b = _find(parent, first), _find(parent, member)
        if root_a != root_b:
            parent[max(root_a, root_b)] = min(root_a, root_b)
    roots = [_find(parent, index) for index in range(len(texts))]
    return [-1 if root == index else root for index, root in enumerate(roots)]


def _comparable(text: str) -> str:
    return normalise_text(_PUNCTUATION.sub(" ", text))


class _Part:
    """The normalised texts of one compared part (whole records, or prompts) and their exact pairwise check; the
    shingle sets of recently checked texts are kept, since one bucket's first text is checked against all of it."""

    def __init__(self, texts: list[str], threshold: float, shingle_size: int) -> None:
        self.texts = texts
        self.threshold = threshold
        self._size = shingle_size
        self.shingles = lru_cache(maxsize=4096)(self._shingles)
        self.numbers = lru_cache(maxsize=4096)(self._numbers)

    def _shingles(self, index: int) -> frozenset[str]:
        text = self.texts[index].ljust(self._size, _PAD)
        return frozenset(text[start : start + self._size] for start in range(len(text) - self._size + 1))

    def _numbers(self, index: int) -> tuple[str, ...]:
        return tuple(_NUMBER.findall(self.texts[index]))

    def similar(self, first: int, member: int) -> bool:
        a, b = self.shingles(first), self.shingles(member)
        return len(a & b) >= self.threshold * len(a | b)
