"""Which model family the budget recipe trains: the one its measurements predict will reach
the lowest validation loss by the deadline.

The recipe plans each family that can be raced (its :class:`~charlm.models.families.Recipe`
holds a learning curve): its size and precision from real training steps timed on this
machine and this corpus (:mod:`charlm.training.recipe`), hence the characters it can train
before the deadline. Its curve, the final val loss against the characters trained, measured
on whole runs of the recipe (BENCHMARKS.md, "The family curves"), turns those characters into
a predicted loss. A family's speed is what differs most between machines (a transformer's
matrices suit a GPU, an LSTM's sequential steps a CPU), and the measurement captures it; the
curves say how much each family learns from a character, which depends on the corpus far
less: an alphabet and a vocabulary of thousands of characters each have their own.

Between measured points the curve is interpolated in the logarithm of the characters; past
its ends it is flat (the recipe does not promise a gain it has not seen). A challenger
replaces the incumbent (the family the table names as the recipe's) only when predicted
ahead by :data:`FAMILY_MARGIN`, so that speeds measured ~10 % apart choose the same family.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..models.families import FAMILIES, Family

FAMILY_MARGIN = 0.02  # nats/char by which a challenger must be predicted ahead to be taken
FASTEST = 1.5  # a challenger is measured only if this times the incumbent's characters could win
LARGE_VOCAB = 1_000  # characters: from here on, a large vocabulary (its own shape, lr, curve)
# rough 2-core training speeds (chars/s) of the recipe's short-budget models (Intel Xeon,
# 2026-12-08: LSTM 1x192 bf16 ~45,000 on tiny Shakespeare, transformer 1x64 ~13,000 on the Tang
# poems): only the order in which the families are measured depends on them, not the choice
NOMINAL_RATE = {False: 40_000.0, True: 13_000.0}  # keyed by large_vocabulary()


@dataclass(frozen=True)
class Plan:
    """One family planned for the deadline.

    Attributes:
        cfg: Its config: the family, size and precision the recipe chose for it.
        rate: Its predicted training speed at that size, characters per second.
        chars: The characters it trains by the deadline at that rate.
        loss: Its predicted final val loss, nats per character.
        lines: What the recipe said while planning it (its calibration and width).
    """

    cfg: Any
    rate: float
    chars: float
    loss: float
    lines: tuple[str, ...]


def predicted_loss(curve: tuple[tuple[float, float], ...], chars: float) -> float:
    """The val loss ``curve`` gives after ``chars`` characters of training.

    Args:
        curve: ``(characters trained, final val nats/char)`` points, fewest characters first.
        chars: The characters a run would train.

    Returns:
        The loss interpolated in log(characters); flat past the curve's ends.

    >>> predicted_loss(((1e6, 2.0), (1e8, 1.0)), 1e7)
    1.5
    >>> predicted_loss(((1e6, 2.0), (1e8, 1.0)), 1e9)
    1.0
    """
    if chars <= curve[0][0]:
        return curve[0][1]
    for (c0, l0), (c1, l1) in zip(curve, curve[1:], strict=False):
        if chars <= c1:
            t = math.log(chars / c0) / math.log(c1 / c0)
            return l0 + t * (l1 - l0)
    return curve[-1][1]


def pick_family(plans: dict[str, Plan], incumbent: str) -> tuple[str, str]:
    """The family to train, and the one line that says why.

    Args:
        plans: Each raced family's :class:`Plan`.
        incumbent: The family kept unless another is predicted ahead by FAMILY_MARGIN.

    Returns:
        ``(name, why)``.
    """
    chosen = incumbent
    for name, plan in plans.items():
        if plan.loss + FAMILY_MARGIN < plans[chosen].loss:
            chosen = name
    others = "; ".join(
        f"{name} {_shape(p)} would train ~{p.chars / 1e6:.1f}M and reach ~{p.loss:.2f}"
        for name, p in plans.items()
        if name != chosen
    )
    best = plans[chosen]
    return chosen, (
        f"{chosen} {_shape(best)} trains ~{best.chars / 1e6:.1f}M characters by the deadline "
        f"at ~{best.rate:,.0f} chars/s and its curve predicts val ~{best.loss:.2f} nats/char; "
        f"{others} (a challenger must lead by {FAMILY_MARGIN:g})"
    )


def _shape(plan: Plan) -> str:
    cfg = plan.cfg
    bf16 = " bf16" if cfg.precision == "mixed_bfloat16" else ""
    return f"{cfg.layers}x{cfg.units}{bf16}"


def large_vocabulary(vocab_size: int) -> bool:
    """Thousands of characters (as in Chinese), not an alphabet."""
    return vocab_size >= LARGE_VOCAB


def raced(vocab_size: int) -> tuple[Family, ...]:
    """The families the recipe races on this vocabulary: those with a learning curve for it."""
    return tuple(f for f in FAMILIES if curve(f, vocab_size))


def curve(own: Family, vocab_size: int) -> tuple[tuple[float, float], ...]:
    """``own``'s learning curve for a vocabulary of ``vocab_size`` (empty: it has none)."""
    return own.recipe.large_curve if large_vocabulary(vocab_size) else own.recipe.curve


def measuring_order(incumbent: Family, vocab_size: int, left: float) -> tuple[Family, ...]:
    """The raced families in the order the recipe measures them: the incumbent first, unless
    another's curve (less the margin it must lead by) lies lower at the characters a nominal
    speed trains in ``left`` seconds; after the first, a family is measured only where it
    could win (:func:`hopeless`). On the Tang poems at 1 minute the transformer goes first,
    and the LSTM, whose curve cannot catch up, is not measured (10 s saved of 60)."""
    chars = left * NOMINAL_RATE[large_vocabulary(vocab_size)]

    def at(own: Family) -> float:
        margin = 0.0 if own is incumbent else FAMILY_MARGIN
        return predicted_loss(curve(own, vocab_size), chars) + margin

    rest = [f for f in raced(vocab_size) if f is not incumbent]
    return tuple(sorted([incumbent, *rest], key=at))


def hopeless(own: Family, first: Plan, vocab_size: int, challenger: bool = True) -> str:
    """Why measuring ``own`` is no use ("": it could win): even training FASTEST times the
    ``first`` family's characters, its curve does not beat that family's prediction (lead it
    by the margin, for a ``challenger`` of the incumbent; come within it, for the incumbent)."""
    best = predicted_loss(curve(own, vocab_size), FASTEST * first.chars)
    margin = FAMILY_MARGIN if challenger else -FAMILY_MARGIN
    if best + margin < first.loss:
        return ""
    return (
        f"at {FASTEST:g}x the {first.cfg.model}'s characters its curve reaches only "
        f"~{best:.2f}, against the {first.cfg.model}'s ~{first.loss:.2f}"
    )


def surely_ahead(own: Family, incumbent: Plan, vocab_size: int) -> bool:
    """Whether ``own``'s curve leads the incumbent's prediction by the margin even if it
    trains only 1/FASTEST of the incumbent's characters: then the recipe spends up to half
    the time left measuring it (the Tang poems at 90 s on a slow CPU, where measuring the
    LSTM took 18 s and its curve left it at the unigram level)."""
    slowest = predicted_loss(curve(own, vocab_size), incumbent.chars / FASTEST)
    return slowest + FAMILY_MARGIN < incumbent.loss
