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

FAMILY_MARGIN = 0.02  # nats/char by which a challenger must be predicted ahead to be taken


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
