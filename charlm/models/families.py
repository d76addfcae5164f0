"""The model families, one table: per family, how it is built and loaded, what its state is,
how much memory it needs, which settings apply to it and what the budget recipe may choose.

Every question of the form "which family is this config?" is answered here and nowhere else:
the models, the memory check and the budget recipe ask the entry, never the name::

    f = family(cfg.model)                     # OptionError for an unknown name
    check(cfg)                                # OptionError for a setting its family lacks
    model = f.build(cfg, vocab_size)          # (charlm.models.lm.build_model checks memory)
    f.state(cfg)                              # [(256,), (256,)]: each state tensor per row
    f.params(cfg, vocab_size, cfg.layers, cfg.units)

    >>> names()
    ('lstm', 'gru', 'rnn', 'scratch-rnn', 'scratch-gru', 'scratch-lstm', 'gpt')
    >>> from charlm.options.config import Config
    >>> family("scratch-lstm").state(Config(model="scratch-lstm", layers=2, units=8))
    [(8,), (8,), (8,), (8,)]

Importing this module imports no TensorFlow: the command line checks a config before
TensorFlow loads. So an entry names the functions that build and load its model as
:class:`Lazy` ``"module:function"`` references into this package, imported at the first
call: holding the functions themselves would import their modules, and a reference keeps an
entry plain data, with no wrapper function here per family. Its state, parameter count and
activations are plain arithmetic on the config, written next to the entry.

Adding a family is a module of its own (``gpt.py``: its model, a ``build`` and a ``load``)
and one :class:`Family` in :data:`FAMILIES` with its arithmetic; a setting that only it takes
is listed in its ``fields``, and :func:`check` then refuses it for every other family.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..options.setting import OptionError
from .curves import GPT_CURVE, GPT_LARGE_CURVE, LSTM_CURVE, LSTM_LARGE_CURVE

PRECISIONS = ("float32", "mixed_bfloat16")
WIDTHS = (96, 128, 192, 256, 384, 512, 768)  # the recurrent widths the recipe chooses from


class Lazy:
    """A function of this package named ``"module:function"``, imported at its first call,
    with keyword arguments bound (the cell of a family that shares its builder).

    >>> Lazy(".lm:build_scratch", cell="gru")
    Lazy('.lm:build_scratch', cell='gru')
    """

    def __init__(self, target: str, **bound: Any):
        self.target, self.bound = target, bound

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        module, name = self.target.split(":")
        function = getattr(importlib.import_module(module, __package__), name)
        return function(*args, **self.bound, **kwargs)

    def __repr__(self) -> str:
        bound = "".join(f", {k}={v!r}" for k, v in self.bound.items())
        return f"Lazy({self.target!r}{bound})"


@dataclass(frozen=True)
class Recipe:
    """What the budget recipe (:mod:`charlm.training.recipe`) may choose for a family.

    Attributes:
        widths: The widths (``units``) it chooses from, narrowest first.
        calibrate: The two widths whose training speed it measures (the others are
            predicted from them).
        precisions: The precisions it may choose, the one it keeps where their measured
            speeds lie within noise of each other first (the recipe's ``BF16_BAND``).
        why: Why the recipe trains this family when the user names none and no other
            family is predicted ahead of it ("": it does not; exactly one family has a reason).
        curve: Its learning curve on an alphabet (:mod:`charlm.models.curves`); a family
            with one is raced (:mod:`charlm.training.family_choice`).
        large_curve: The same on a vocabulary of thousands of characters (Chinese).
        embedding: Whether the family has an embedding width of its own
            (``embedding_dim``) for the recipe to choose; a transformer's is its width.
        depth: Its layers on an alphabet, with less and with more than the recipe's
            ``DEEP_SECONDS`` left; ``large_depth``: the same on a large vocabulary.
    """

    widths: tuple[int, ...] = WIDTHS
    calibrate: tuple[int, int] = (128, 384)
    precisions: tuple[str, ...] = ("float32",)
    why: str = ""
    curve: tuple[tuple[float, float], ...] = ()
    large_curve: tuple[tuple[float, float], ...] = ()
    embedding: bool = True
    depth: tuple[int, int] = (1, 2)
    large_depth: tuple[int, int] = (1, 1)


@dataclass(frozen=True)
class Family:
    """One model family: a row of the table.

    Attributes:
        name: The value of ``model`` that selects it (``--model gru``).
        help: One line for ``--help``.
        build: ``(cfg, vocab_size) -> LanguageModel`` with fresh weights from ``cfg.seed``.
        load: ``(cfg, vocab_size, path, way_out) -> LanguageModel``, the weights saved at
            ``path``; any problem is one CharLMError that ends with ``way_out``.
        weights_suffix: What its saved weights end in (``".keras"``; ``""``: a folder).
        state: ``cfg -> [shape, ...]``: the shape of each state tensor for one row, in the
            order the model takes them (an LSTM layer's ``(units,), (units,)``; a key/value
            cache's ``(heads, context, head_dim)``).
        params: ``(cfg, vocab_size, layers, units) -> int``: its trainable weights at that
            depth and width (the recipe asks other sizes than the config's), unbuilt.
        activations: ``(cfg, vocab_size) -> int``: the floats one character of a training
            batch keeps for the backward pass.
        fields: The settings that apply only to the families that list them (a GRU's
            ``reset_after``); another family refuses a value other than the default.
        precisions: The precisions it trains in.
        recipe: What the budget recipe may choose for it.
        xla_training: Its training step is compiled with XLA (measured faster for it).
        rules: ``cfg -> None``: raises the OptionError of a value its fields take together
            but the family does not (a transformer's heads must divide its width).
    """

    name: str
    help: str
    build: Callable[..., Any]
    load: Callable[..., Any]
    weights_suffix: str
    state: Callable[[Any], list[tuple[int, ...]]]
    params: Callable[[Any, int, int, int], int]
    activations: Callable[[Any, int], int]
    fields: tuple[str, ...] = ()
    precisions: tuple[str, ...] = ("float32",)
    recipe: Recipe = field(default_factory=Recipe)
    rules: Callable[[Any], None] | None = None
    xla_training: bool = False


# -- the recurrent families' arithmetic ----------------------------------------------------------


def _recurrent_state(per_layer: int) -> Callable[[Any], list[tuple[int, ...]]]:
    """``per_layer`` vectors of ``units`` per layer: h (and c, for an LSTM)."""

    def state(cfg: Any) -> list[tuple[int, ...]]:
        return [(cfg.units,)] * (per_layer * cfg.layers)

    return state


def _recurrent_params(gates: int, biases: int = 1) -> Callable[[Any, int, int, int], int]:
    """Per layer ``g·H·(D + H) + b·g·H`` (g gates, b bias vectors each: Keras's GRU has two),
    then the embedding ``V·E`` and the output ``H·V + V``.

    >>> from charlm.options.config import Config
    >>> _recurrent_params(4)(Config(embedding_dim=64), 65, 2, 256)
    874881
    """

    def params(cfg: Any, vocab_size: int, layers: int, units: int) -> int:
        total, d = vocab_size * cfg.embedding_dim, cfg.embedding_dim or vocab_size
        for _ in range(layers):
            total += gates * units * (d + units) + biases * gates * units
            d = units
        return total + units * vocab_size + vocab_size

    return params


def _recurrent_activations(gates: int) -> Callable[[Any, int], int]:
    """Every step of every layer keeps its gates, output and cell state; then the input, the
    logits and their gradient."""

    def activations(cfg: Any, vocab_size: int) -> int:
        per_layer = (gates + 2) * cfg.units
        return cfg.layers * per_layer + (cfg.embedding_dim or vocab_size) + 2 * vocab_size

    return activations


def _keras(
    name: str,
    help: str,
    gates: int,
    per_layer: int,
    biases: int = 1,
    recipe: Recipe = Recipe(precisions=PRECISIONS),
) -> Family:
    """A stack of Keras's recurrent layer ``name`` (fast CPU cells where charlm has them)."""
    return Family(
        name=name,
        help=help,
        build=Lazy(".keras_rnn:build", kind=name),
        load=Lazy(".keras_rnn:load"),
        weights_suffix=".keras",
        state=_recurrent_state(per_layer),
        params=_recurrent_params(gates, biases),
        activations=_recurrent_activations(gates),
        precisions=PRECISIONS,
        recipe=recipe,
    )


def _scratch(cell: str, gates: int, per_layer: int, fields: tuple[str, ...] = ()) -> Family:
    """The d2l cell ``cell`` written from its equations (float32 only)."""
    return Family(
        name=f"scratch-{cell}",
        help=f"The {cell.upper()} from its equations (d2l), tf.Variables and tf.matmul.",
        build=Lazy(".lm:build_scratch", cell=cell),
        load=Lazy(".lm:load_scratch", cell=cell),
        weights_suffix="",
        state=_recurrent_state(per_layer),
        params=_recurrent_params(gates),
        activations=_recurrent_activations(gates),
        fields=fields,
    )


# -- the transformer's arithmetic -----------------------------------------------------------------


def _gpt_state(cfg: Any) -> list[tuple[int, ...]]:
    """Per block its key and value ring ``(heads, context, units / heads)``, then the row's
    position (a number: shape ``()``)."""
    ring = (cfg.heads, cfg.context, cfg.units // cfg.heads)
    return [ring] * (2 * cfg.layers) + [()]


def _gpt_params(cfg: Any, vocab_size: int, layers: int, units: int) -> int:
    """Per block ``12·d² + 9·d`` (q, k, v and out ``4·d²``, the MLP ``8·d²`` and its biases
    ``5·d``, two norms ``4·d``), then the embedding ``V·d``, the final norm ``2·d`` and the
    output ``d·V + V``.

    >>> from charlm.options.config import Config
    >>> _gpt_params(Config(), 65, 4, 128)
    808001
    """
    per_block = 12 * units * units + 9 * units
    return layers * per_block + vocab_size * units + 2 * units + units * vocab_size + vocab_size


def _gpt_activations(cfg: Any, vocab_size: int) -> int:
    """Per block and character: the norms, q, k, v, the attention's output, the MLP's 4·d
    twice (before and after GELU), the residuals (about 16·d), and its attention weights over
    the ring and the window (heads · (context + window)); then the logits and their gradient."""
    per_block = 16 * cfg.units + cfg.heads * (cfg.context + cfg.seq_len)
    return cfg.layers * per_block + cfg.units + 2 * vocab_size


def _gpt_rules(cfg: Any) -> None:
    if cfg.units % cfg.heads:
        raise OptionError("heads", f"must divide units ({cfg.units}) into equal heads", cfg.heads)
    if (cfg.units // cfg.heads) % 2:
        raise OptionError(
            "heads",
            "must leave each head an even width",
            cfg.heads,
            f"units / heads is {cfg.units // cfg.heads}, and rotary positions turn features "
            "in pairs",
        )


FAMILIES: tuple[Family, ...] = (
    _keras(
        "lstm",
        "keras.layers.LSTM, stacked (charlm's fast cells on a CPU, cuDNN on a GPU).",
        gates=4,
        per_layer=2,
        recipe=Recipe(
            precisions=("mixed_bfloat16", "float32"),
            why="a GRU of the same width scored the same within noise: 1.506 against 1.510 "
            "nats/char on tiny Shakespeare at 5 minutes, 1x384 each, in one session",
            curve=LSTM_CURVE,
            large_curve=LSTM_LARGE_CURVE,
        ),
    ),
    _keras(
        "gru",
        "keras.layers.GRU, stacked (charlm's fast cells on a CPU, cuDNN on a GPU).",
        gates=3,
        per_layer=1,
        biases=2,  # reset_after=True: an input and a recurrent bias
    ),
    _keras("rnn", "keras.layers.SimpleRNN, stacked.", gates=1, per_layer=1),
    _scratch("rnn", gates=1, per_layer=1),
    _scratch("gru", gates=3, per_layer=1, fields=("reset_after",)),
    _scratch("lstm", gates=4, per_layer=2),
    Family(
        name="gpt",
        help="A decoder-only transformer (pre-norm, rotary positions), its state the "
        "key/value cache of the last --context characters.",
        build=Lazy(".gpt:build"),
        load=Lazy(".gpt:load"),
        weights_suffix=".keras",
        state=_gpt_state,
        params=_gpt_params,
        activations=_gpt_activations,
        fields=("context", "heads"),
        precisions=PRECISIONS,
        recipe=Recipe(
            widths=(64, 128, 192, 256, 384, 512),
            calibrate=(128, 256),
            precisions=PRECISIONS,
            curve=GPT_CURVE,
            large_curve=GPT_LARGE_CURVE,
            embedding=False,
            large_depth=(1, 4),  # an alphabet keeps 2: BENCHMARKS.md, "The family curves"
        ),
        rules=_gpt_rules,
        xla_training=True,  # nanoGPT's CPU shape: 84 ms a step, 112 ms without (gpt.py)
    ),
)
_BY_NAME = {f.name: f for f in FAMILIES}


# -- asking the table ----------------------------------------------------------------------------


def names() -> tuple[str, ...]:
    """The families' names, in the table's order: the values ``model`` takes
    (``("lstm", "gru", ...)``)."""
    return tuple(_BY_NAME)


def family(name: str) -> Family:
    """The family called ``name`` (a config's ``model``); an OptionError about ``model``
    for a name no family has.

    >>> family("gru").weights_suffix
    '.keras'
    >>> family("gpt2")
    Traceback (most recent call last):
    ...
    charlm.options.setting.OptionError: model must be one of lstm, gru, rnn, scratch-rnn, scratch-gru, scratch-lstm, gpt, not 'gpt2'
    """
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise OptionError("model", f"must be one of {', '.join(names())}", name) from None


def recipe_choice() -> Family:
    """The family the budget recipe trains when the user names none (its ``recipe.why``
    says why).

    Returns:
        The one family whose :class:`Recipe` gives a reason.
    """
    return next(f for f in FAMILIES if f.recipe.why)


def check(cfg: Any, settings: bool = True) -> None:
    """Refuse a config whose settings do not apply to its family.

    Args:
        cfg: A :class:`~charlm.options.config.Config` (any record with its fields).
        settings: Whether to refuse a setting only other families take. A run folder's
            config is read without it: a run trained before this rule kept such a setting,
            unused, and stays readable.

    Raises:
        OptionError: about ``model`` for an unknown family; about ``precision`` for a
            precision the family does not train in; about a setting only other families
            take (``reset_after`` for an LSTM) given a value other than its default.

    >>> from charlm.options.config import Config
    >>> check(Config(model="scratch-gru", precision="mixed_bfloat16"))
    Traceback (most recent call last):
    ...
    charlm.options.setting.OptionError: precision mixed_bfloat16 is for the Keras models (lstm, gru, rnn, gpt); scratch-gru trains in float32; drop the precision setting
    """
    own = family(cfg.model)
    if cfg.precision not in own.precisions:
        takers = ", ".join(f.name for f in FAMILIES if cfg.precision in f.precisions)
        raise OptionError(
            "precision",
            f"{cfg.precision} is for the Keras models ({takers}); {cfg.model} trains in "
            f"{' or '.join(own.precisions)}",
            hint="drop the precision setting",
        )
    if own.rules is not None:
        own.rules(cfg)
    defaults = {f.name: f.default for f in dataclasses.fields(cfg)}
    for name in (_only_some() - set(own.fields)) if settings else ():
        if getattr(cfg, name) != defaults[name]:
            takers = ", ".join(f.name for f in FAMILIES if name in f.fields)
            raise OptionError(
                name,
                f"applies only to {takers}, not to {cfg.model}",
                hint="drop the setting",
            )


def _only_some() -> set[str]:
    """The settings some family lists in its ``fields``."""
    return {name for f in FAMILIES for name in f.fields}
