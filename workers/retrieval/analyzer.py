"""Text → index terms for the sparse index: CJK characters and character bigrams, Latin words.

CJK runs become their characters plus adjacent-character bigrams, which matches Chinese without a
segmenter (jieba word segmentation measured no better on the law dev set). Latin words are
lowercased and lightly stemmed (plural ``s``) and adjacent words also form bigram terms; numbers
lose their thousands separators so that "1,496.5" matches "1496.5".
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

# Word pairs joined only by spaces or hyphens also become terms ("total sales"), which ranks
# table rows and phrases that match a question's wording above scattered word matches.
_PHRASE_GAP = " \t-"
_RUN = re.compile(r"([\u3400-\u9fff\uf900-\ufaff]+)|([A-Za-z]+(?:'[A-Za-z]+)?|[0-9]+(?:[.,][0-9]+)*)")


def _light_stem(word: str) -> str:
    if word.endswith("'s"):
        word = word[:-2]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def remove_stop_phrases(*, text: str, phrases: tuple[str, ...]) -> str:
    """``text`` with each phrase replaced by " ; ", a separator no CJK or word bigram spans."""
    return _stop_pattern(phrases).sub(" ; ", text) if phrases else text


@functools.cache
def _stop_pattern(phrases: tuple[str, ...]) -> re.Pattern[str]:
    """Longest phrase first; Latin phrases only as whole words, case-insensitively."""
    alternatives = [
        rf"\b{re.escape(phrase)}\b" if phrase.isascii() else re.escape(phrase)
        for phrase in sorted(phrases, key=len, reverse=True)
    ]
    return re.compile("|".join(alternatives), re.IGNORECASE)


def _is_cjk_unigram(term: str) -> bool:
    return len(term) == 1 and not term.isascii()


@dataclass(frozen=True, slots=True)
class Analyzer:
    """Documents and queries share ``terms``; queries additionally lose ``stop_phrases`` (question
    wording such as 怎么办/是否/可以 or "what was the … change") and weight single CJK characters by
    ``unigram_weight``, since bigrams carry most of the meaning and unigrams mainly add recall."""

    stop_phrases: tuple[str, ...] = ()
    unigram_weight: float = 1.0

    def terms(self, *, text: str) -> list[str]:
        terms: list[str] = []
        previous_word = ""
        previous_end = 0
        for match in _RUN.finditer(text):
            cjk, latin = match.groups()
            if cjk:
                terms.extend(cjk)
                terms.extend(cjk[i : i + 2] for i in range(len(cjk) - 1))
                previous_word = ""
            elif latin[0].isdigit():
                terms.append(latin.replace(",", ""))
                previous_word = ""
            else:
                word = _light_stem(latin.lower())
                terms.append(word)
                if previous_word and not text[previous_end : match.start()].strip(_PHRASE_GAP):
                    terms.append(f"{previous_word} {word}")
                previous_word, previous_end = word, match.end()
        return terms

    def query_weights(self, *, query: str) -> dict[str, float]:
        query = remove_stop_phrases(text=query, phrases=self.stop_phrases)
        weights: dict[str, float] = {}
        for term in self.terms(text=query):
            weights[term] = weights.get(term, 0.0) + (self.unigram_weight if _is_cjk_unigram(term) else 1.0)
        return weights
