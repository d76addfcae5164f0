"""Whether a model fits in this machine's memory, said before it is built.

Building a model far too big for the machine ends in TensorFlow's ``ResourceExhaustedError``
(pages of internals) or in the kernel's out-of-memory killer, after minutes of swapping.
So its size is worked out from its settings first and compared with what the machine has
free (``MemAvailable`` in /proc/meminfo, or the container's memory limit if lower)::

    check_fits(cfg, vocab_size=65)             # training: weights, gradients, optimizer, batch
    check_fits(cfg, vocab_size=65, training=False)    # sampling: the weights

The estimate is deliberately rough (within a factor of about two): it exists to refuse sizes
that cannot work, with one line, not to plan a tight fit. No TensorFlow here.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..errors import CharLMError
from .families import family

FLOAT_BYTES = 4  # variables are float32, under mixed_bfloat16 too
OPTIMIZER_SLOTS = {"adam": 2, "rmsprop": 1, "sgd": 0}  # float copies of the weights each keeps


def param_count(cfg, vocab_size: int, layers: int | None = None, units: int | None = None) -> int:
    """Trainable weights of ``cfg``'s model, without building it (its family's arithmetic),
    at ``layers`` and ``units`` where given instead of the config's.

    >>> from charlm.options.config import Config
    >>> param_count(Config(model="lstm", layers=2, units=256, embedding_dim=64), 65)
    874881
    """
    layers = cfg.layers if layers is None else layers
    units = cfg.units if units is None else units
    return family(cfg.model).params(cfg, vocab_size, layers, units)


def bytes_needed(cfg, vocab_size: int, training: bool = True) -> int:
    """About how many bytes ``cfg``'s model takes: its weights, and to train, their gradients,
    the optimizer's slots, the activations of one batch (what its family says one character
    keeps for the backward pass) and the batch's state (its family's state shapes: a
    transformer's key/value cache is not small).

    >>> from charlm.options.config import Config
    >>> bytes_needed(Config(), 65) // 2**20, bytes_needed(Config(), 65, training=False) // 2**20
    (93, 3)
    """
    params = param_count(cfg, vocab_size)
    if not training:
        return params * FLOAT_BYTES
    copies = 2 + OPTIMIZER_SLOTS.get(cfg.optimizer, 2)  # weights, gradients, slots
    own = family(cfg.model)
    per_step = own.activations(cfg, vocab_size)
    per_row = sum(math.prod(shape) for shape in own.state(cfg))
    floats = params * copies + cfg.batch_size * (cfg.seq_len * per_step + per_row)
    return floats * FLOAT_BYTES


def available_memory() -> int | None:
    """Bytes this process can still use: MemAvailable, or the cgroup's limit less its use if
    that is lower; None where neither can be read (then nothing is checked)."""
    found = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = Path("/sys/fs/cgroup/memory.current").read_text().strip()
        if limit != "max":
            found.append(int(limit) - int(used))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def check_fits(cfg, vocab_size: int, training: bool = True) -> None:
    """One CharLMError, with the sizes and the way out, if ``cfg``'s model cannot fit."""
    need, have = bytes_needed(cfg, vocab_size, training), available_memory()
    if have is None or need <= have:
        return
    params = param_count(cfg, vocab_size)
    job = (
        f"to train at --batch-size {cfg.batch_size} --seq-len {cfg.seq_len}"
        if training
        else "to load"
    )
    way_out = (
        "use fewer --units or --layers, or a smaller --batch-size or --seq-len"
        if training
        else "its config.toml asks for a model this machine cannot hold; use a machine with "
        "more memory, or retrain the run smaller"
    )
    raise CharLMError(
        f"a {cfg.model} {cfg.layers}x{cfg.units} model ({params:,} parameters) needs about "
        f"{_size(need)} {job}, and this machine has {_size(have)} available; {way_out}"
    )


def _size(n: int) -> str:
    """``n`` bytes for a person: ``1.5 GB``, ``3.1e+09 GB`` when absurd.

    >>> _size(1_500_000_000), _size(2_000_000), _size(4 * 10**18)
    ('1.5 GB', '2 MB', '4e+09 GB')
    """
    if n < 10**9:
        return f"{n / 10**6:.0f} MB"
    gb = n / 10**9
    return f"{gb:.1f} GB" if gb < 10**6 else f"{gb:.0e} GB"
