"""Level scoring helpers shared by local runners: single-token checks, softmax and expectation.

Q-Align's way of turning a level prompt into a continuous score: read the next-token logits of
the level tokens at the answer position, renormalise them over the levels only (softmax), and
take the expectation of the level weights. This is a different protocol from parsing a greedy
answer: the greedy answer is the argmax level alone, the expectation also weighs the levels the
model nearly chose, so it removes most ties. Results say which one produced them.

Nothing here imports torch: tokenizers are used through `encode` only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

from fiqabench.errors import UserError

# Q-Align's level words, best first, with its weights 5..1.
QALIGN_WEIGHTS: dict[str, float] = {
    "excellent": 5.0,
    "good": 4.0,
    "fair": 3.0,
    "poor": 2.0,
    "bad": 1.0,
}


class Encoder(Protocol):
    def encode(self, text: str, *, add_special_tokens: bool = ...) -> list[int]: ...


class LevelTokenError(UserError):
    """A level that the tokenizer cannot read as one token, so it has no single logit."""


def level_token_ids(tokenizer: Encoder, levels: Sequence[str]) -> list[int]:
    """One token id per level, all in the plain form or all in the leading-space form.

    The plain form comes first: after the generation prompt the answer starts a new turn,
    where BPE tokenizers emit the bare word; the leading-space form serves tokenizers where
    only it is one token (Qwen2 has "good" but only " excellent"). One form for all levels,
    so that no level competes with an advantage of spelling. Raises LevelTokenError naming
    the level when neither form is one token, when no single form suits every level, or
    when two levels share a token (their probabilities could not be told apart).
    """
    bare = [level.strip() for level in levels]
    forms = {"plain": bare, "leading-space": [f" {level}" for level in bare]}
    encoded = {
        name: [tokenizer.encode(text, add_special_tokens=False) for text in texts]
        for name, texts in forms.items()
    }
    for name in forms:
        if all(len(tokens) == 1 for tokens in encoded[name]):
            ids = [tokens[0] for tokens in encoded[name]]
            _check_distinct(levels, ids)
            return ids
    raise LevelTokenError(_no_single_form(forms, encoded))


def _no_single_form(forms: dict[str, list[str]], encoded: dict[str, list[list[int]]]) -> str:
    plain, spaced = encoded["plain"], encoded["leading-space"]
    for index, text in enumerate(forms["leading-space"]):
        if len(plain[index]) > 1 and len(spaced[index]) > 1:
            return (
                f"level {text!r} is {len(spaced[index])} tokens in this tokenizer "
                f"({forms['plain'][index]!r}: {len(plain[index])}): "
                "logit scoring needs single-token levels"
            )
    only_plain = [t for t, s in zip(forms["plain"], spaced, strict=True) if len(s) > 1]
    only_spaced = [t for t, p in zip(forms["plain"], plain, strict=True) if len(p) > 1]
    return (
        f"levels {only_plain} are single tokens only without a leading space and "
        f"{only_spaced} only with one: logit scoring needs one form for all levels"
    )


def _check_distinct(levels: Sequence[str], ids: Sequence[int]) -> None:
    seen: dict[int, str] = {}
    for level, token in zip(levels, ids, strict=True):
        if token in seen:
            raise LevelTokenError(
                f"levels {seen[token]!r} and {level!r} are the same token in this tokenizer"
            )
        seen[token] = level


def default_weights(levels: Sequence[str]) -> list[float]:
    """Digits weigh their value ("1".."K"); Q-Align's words weigh 5 (excellent) .. 1 (bad)."""
    bare = [level.strip() for level in levels]
    if all(level.isdigit() for level in bare):
        return [float(level) for level in bare]
    words = [level.lower() for level in bare]
    if all(word in QALIGN_WEIGHTS for word in words):
        return [QALIGN_WEIGHTS[word] for word in words]
    raise UserError(
        f"no default weights for levels {list(levels)}: give one weight per level "
        "(defaults exist for digits and for excellent/good/fair/poor/bad)"
    )


def check_weights(levels: Sequence[str], weights: Sequence[float] | None) -> list[float]:
    if weights is None:
        return default_weights(levels)
    if len(weights) != len(levels):
        raise UserError(f"{len(levels)} levels but {len(weights)} weights")
    return [float(weight) for weight in weights]


def log_softmax(logits: Sequence[float]) -> list[float]:
    """Log-probabilities renormalised over the given logits only (stable: max subtracted)."""
    top = max(logits)
    log_total = top + math.log(sum(math.exp(value - top) for value in logits))
    return [value - log_total for value in logits]


def expectation(logprobs: Sequence[float], weights: Sequence[float]) -> float:
    """Σ p_i · w_i; always within [min(weights), max(weights)]."""
    return math.fsum(math.exp(lp) * w for lp, w in zip(logprobs, weights, strict=True))
