"""What the training loop reports between steps: the metrics rows (the columns of
metrics.csv), their one-line description, the validation behind them and the periodic samples.
Example::

    meter = LossMeter(chars_per_step=batch_size * seq_len)
    meter.add(loss, grad_norm)                       # after each step
    val = validate(scorer, val_ids, cfg)             # None: nothing to validate
    row = metrics_row(step, epoch, meter, val, lr, elapsed)
    print(describe_row(row))
"""

from __future__ import annotations

import math
import time


class LossMeter:
    """The mean training loss and gradient norm, and the speed, since the last metrics row;
    ``chars_per_step`` (batch size × sequence length) turns steps into characters."""

    def __init__(self, chars_per_step: int):
        self.chars_per_step = chars_per_step
        self.reset()

    def reset(self) -> None:
        self.loss, self.norm, self.steps, self.since = 0.0, 0.0, 0, time.monotonic()

    def add(self, loss: float, norm: float) -> None:
        self.loss += loss
        self.norm += norm
        self.steps += 1

    def mean_loss(self) -> float:
        return self.loss / self.steps if self.steps else float("nan")

    def mean_norm(self) -> float | None:
        return self.norm / self.steps if self.steps else None

    def steps_per_sec(self) -> float:
        return self.steps / max(1e-9, time.monotonic() - self.since)

    def chars_per_sec(self) -> float:
        return self.chars_per_step * self.steps_per_sec()


def validate(score, val_ids, cfg) -> dict | None:
    """``score``'s metrics of the held-out ids (the first ``cfg.eval_chars`` of them when set),
    or None when there is no scorer or too little to score."""
    if score is None or len(val_ids) < 2:
        return None
    ids = val_ids[: cfg.eval_chars + 1] if cfg.eval_chars else val_ids
    return score(ids, batch_size=64, seq_len=min(256, max(cfg.seq_len, 64)))


def metrics_row(step: int, epoch: int, meter: LossMeter, val, lr: float, wall_time: float) -> dict:
    """The metrics row (the columns of metrics.csv, in order) at ``step``: the training loss
    since the last row (``meter``), the validation ``val`` (None: empty columns)."""
    train_loss = meter.mean_loss()
    return {
        "step": step,
        "epoch": epoch,
        "train_loss": train_loss,
        "train_perplexity": math.exp(min(train_loss, 700)) if meter.steps else float("nan"),
        "val_loss": val["nats_per_char"] if val else None,
        "val_perplexity": val["perplexity"] if val else None,
        "val_bits_per_char": val["bits_per_char"] if val else None,
        "chars_per_sec": meter.chars_per_sec(),
        "lr": lr,
        "grad_norm": meter.mean_norm(),
        "wall_time": wall_time,
    }


def describe_row(row: dict) -> str:
    """One line for a metrics row: step, epoch, losses, perplexity, speed."""
    parts = [
        f"step {row['step']}",
        f"epoch {row['epoch']}",
        f"train loss {row['train_loss']:.4f}",
        f"perplexity {row['train_perplexity']:.3f}",
    ]
    if row["val_loss"] is not None:
        parts.append(f"val loss {row['val_loss']:.4f} ({row['val_bits_per_char']:.3f} bits/char)")
    parts.append(f"{row['chars_per_sec']:,.0f} chars/s")
    return " | ".join(parts)


def periodic_samples(generate, cfg) -> list[str]:
    """The samples shown while training: one per ``cfg.sample_prefixes`` (or the generator's
    default), with ``cfg.sample_options`` (a temperature of 0 is greedy there, as everywhere)."""
    options = cfg.sample_options
    return generate(cfg.sample_prefixes or None, options=options, chunk=max(1, options.length))
