"""The width the budget recipe gives a family: from the training speed of two widths measured
on this machine, the widest that still sees enough characters per weight of its layers in the
time left (:mod:`charlm.training.recipe`, step 3, says why)."""

from __future__ import annotations

import math
from typing import Any

from ..models.families import Family, family
from ..models.memory import param_count
from ..options.setting import OptionError

TOKENS_PER_PARAM = 8.0  # characters seen per weight at which a wider model stops paying
WIDER_MARGIN = 1.25  # a width is taken only if it sees TOKENS_PER_PARAM by this factor


def allowed_widths(cfg: Any) -> tuple[int, ...]:
    """The widths the budget recipe may give ``cfg``'s model: its family's, less those its
    rules refuse with ``cfg``'s other settings (a transformer's heads must divide each).

    Args:
        cfg: A :class:`~charlm.options.config.Config`.

    Returns:
        The widths, narrowest first.

    Raises:
        OptionError: the rules refuse every width (their error at ``cfg``'s own).
    """
    own = family(cfg.model)
    allowed = tuple(h for h in own.recipe.widths if _allows(own, cfg.replace(units=h)))
    if not allowed and own.rules is not None:
        own.rules(cfg)
    return allowed or (cfg.units,)


def calibration_widths(cfg: Any) -> tuple[int, ...]:
    """The two widths whose speed the recipe measures: the family's pair where both are among
    :func:`allowed_widths`, else the two narrowest of those.

    Args:
        cfg: A :class:`~charlm.options.config.Config`.

    Returns:
        Two widths (one, where only one is allowed).
    """
    allowed = allowed_widths(cfg)
    pair = family(cfg.model).recipe.calibrate
    return pair if set(pair) <= set(allowed) else allowed[:2]


def _allows(own: Family, cfg: Any) -> bool:
    try:
        if own.rules is not None:
            own.rules(cfg)
    except OptionError:
        return False
    return True


def predict_rates(cfg, vocab_size: int, measured: dict[int, float]) -> dict[int, float]:
    """chars/s for every width of the family, from the measured ones: rate ∝ params^-α, α
    from two points (one width measured: the only one the family allows)."""
    if len(measured) == 1:
        return dict(measured)
    (h1, r1), (h2, r2) = sorted(measured.items())
    widths = allowed_widths(cfg)
    p = {h: param_count(cfg, vocab_size, units=h) for h in widths}
    alpha = math.log(r1 / r2) / math.log(p[h2] / p[h1])
    return {h: r1 * (p[h1] / p[h]) ** alpha for h in widths}


def layer_weights(cfg, vocab_size: int, units: int) -> int:
    """The weights of the layers alone, without the embedding and output rows (what the width
    rule counts)."""

    def total(layers):
        return param_count(cfg, vocab_size, layers, units)

    return total(cfg.layers) - total(0)


def pick_width(cfg, vocab_size: int, rates: dict[int, float], seconds: float) -> tuple[int, str]:
    """The widest width whose characters per layer weight reach TOKENS_PER_PARAM times
    WIDER_MARGIN, and why (with the next wider width's figure, which fell short)."""
    bar = TOKENS_PER_PARAM * WIDER_MARGIN

    def per_weight(h):
        return rates[h] * seconds / layer_weights(cfg, vocab_size, h)

    widths = allowed_widths(cfg)
    best = widths[0]
    for h in widths:
        if per_weight(h) >= bar:
            best = h
    why = (
        f"the widest with >= {bar:g}: {TOKENS_PER_PARAM:g} and a {WIDER_MARGIN - 1:.0%} margin, "
        "so that speeds measured ~10 % apart choose alike"
        if per_weight(best) >= bar
        else f"the narrowest; none reaches {bar:g}"
    )
    wider = [h for h in widths if h > best]
    if wider:
        why += f"; {cfg.layers}x{wider[0]} would see {per_weight(wider[0]):.1f}"
    params = layer_weights(cfg, vocab_size, best)
    total = param_count(cfg, vocab_size, units=best)
    return best, (
        f"{cfg.layers}x{best} ({params:,} weights in its layers, {total:,} in all) at "
        f"~{rates[best]:,.0f} chars/s sees ~{rates[best] * seconds / 1e6:.1f}M characters in "
        f"{seconds:.0f} s, {per_weight(best):.0f} per layer weight ({why})"
    )
