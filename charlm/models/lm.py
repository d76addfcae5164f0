"""The language models, behind one interface: the Keras stacks of
:mod:`charlm.models.keras_rnn`, and the scratch cells of :mod:`charlm.models.scratch`.

Every model, Keras or scratch, is a :class:`LanguageModel`; the trainer, the generator, the
evaluator and the run folder use nothing else::

    model = build_model(cfg, vocab_size)
    state = model.initial_state(batch_size)            # list of zero tensors
    logits, state = model(ids, state, training=False)  # ids int32 [B, T] -> logits [B, T, V]
    model.save(path)                                   # path ends in model.weights_suffix
    model = load_model(cfg, vocab_size, path)          # safe: never runs code from the file

Which family a config's model is, and so how it is built and loaded, is the registry's
answer (:mod:`charlm.models.families`): this module asks it, and never the name. It also
holds the scratch family's face (:class:`ScratchModel`, :func:`build_scratch` and
:func:`load_scratch`, which the registry names).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import tensorflow as tf

from ..errors import CharLMError, tf_reason
from ..fsio import tf_path
from .families import family
from .keras_rnn import KerasLM, build_keras_model  # noqa: F401 (the benchmarks import them here)
from .memory import check_fits
from .scratch import ScratchLM


@runtime_checkable
class LanguageModel(Protocol):
    """What every charlm model is: ids and a state in, logits and the next state out."""

    vocab_size: int
    state_shapes: list[tuple[int, ...]]  # the shape of each state tensor for one row, in order
    weights_suffix: str  # what :meth:`save` writes: ".keras" (a file) or "" (a folder)

    def initial_state(self, batch_size) -> list[tf.Tensor]:
        """Zero states for ``batch_size`` rows: ``[batch_size, *shape]`` per state shape."""

    def __call__(self, ids, state, training=False) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """Logits ``[B, T, V]`` (float32) and the state after the last step."""

    def step(self, ids, state) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """One character per row, ids ``[B]``: logits ``[B, V]`` and the next state, with no
        loop over time (what generation calls once per character)."""

    def fresh(self, ids, training=False) -> tf.Tensor:
        """The logits ``[B, T, V]`` of windows that start from the initial state: what
        ``self(ids, self.initial_state(B), training)[0]`` gives, by the family's cheapest way
        (a transformer skips its cache); what a training step from a zero state calls."""

    def in_float32(self) -> LanguageModel:
        """This model computing in float32, with the same weights (itself if it already does):
        what generation and export run, so that every graph of it rounds alike."""

    @property
    def trainable_variables(self) -> Sequence[tf.Variable]:
        """The weights an optimizer updates."""

    @property
    def output_bias(self) -> tf.Variable:
        """The output layer's bias ``[V]``: a fresh model's starts at the training text's
        unigram log-frequencies (charlm.api.training)."""

    def checkpoint_objects(self) -> dict:
        """What a ``tf.train.Checkpoint`` must hold to resume training exactly."""

    def count_params(self) -> int:
        """The number of trainable weights."""

    def save(self, path) -> None:
        """Write the weights (and the architecture, where the format holds it) to ``path``."""


def state_specs(model: LanguageModel) -> list[tf.TensorSpec]:
    """The state's ``TensorSpec``s for any number of rows: what a ``tf.function`` that takes a
    state is declared with, so that it is traced once for every batch size (a retrace costs
    tenths of a second)."""
    return [tf.TensorSpec([None, *s.shape[1:]], s.dtype) for s in model.initial_state(1)]


class ScratchModel(ScratchLM):
    """A :class:`LanguageModel` of the scratch cells; saved as a ``tf.train.Checkpoint`` folder."""

    weights_suffix = ""

    @property
    def state_shapes(self) -> list[tuple[int, ...]]:
        return [(self.units,)] * sum(cell.state_size for cell in self.cells)

    @property
    def output_bias(self) -> tf.Variable:
        return self.b_q

    def checkpoint_objects(self) -> dict:
        return {"model": self}

    def fresh(self, ids, training=False):
        return self(ids, self.initial_state(tf.shape(ids)[0]), training)[0]

    def in_float32(self) -> ScratchModel:
        return self  # the scratch cells compute in float32 only

    def step(self, ids, state):
        """Each cell's equations once, for ids ``[B]``: logits ``[B, V]`` and the next state."""
        X = tf.gather(self.E, ids) if self.embedding_dim else tf.one_hot(ids, self.vocab_size)
        new_state = []
        for cell in self.cells:
            n = len(new_state)
            new_state += cell.step(cell.project(X), state[n : n + cell.state_size])
            X = new_state[n]
        return tf.matmul(X, self.W_hq) + self.b_q, new_state

    def count_params(self) -> int:
        return int(sum(v.numpy().size for v in self.trainable_variables))

    def save(self, path) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)
        with tf_path(path) as plain:
            tf.train.Checkpoint(model=self).write(str(plain / "weights"))

    def restore(self, path, way_out: str) -> None:
        """Read weights written by :meth:`save`; a bad or mismatched folder is a CharLMError."""
        try:
            with tf_path(path) as readable:
                tf.train.Checkpoint(model=self).read(
                    str(readable / "weights")
                ).assert_existing_objects_matched()
        except Exception as e:  # OpError, ValueError, AssertionError, IndexError (truncated) ...
            detail = tf_reason(e)
            if "shape" in detail.lower():
                raise CharLMError(
                    f"{path}: the weights do not match this run's vocab.json "
                    f"({self.vocab_size} characters) or config.toml; restore the "
                    "run's own vocab.json and config.toml"
                ) from None
            raise CharLMError(
                f"{path}: cannot load the weights, they are truncated or "
                f"corrupt ({detail}); {way_out}"
            ) from None


def weights_suffix(cfg) -> str:
    """What the saved weights of ``cfg``'s model end in (".keras", or "" for a folder)."""
    return family(cfg.model).weights_suffix


def build_model(cfg, vocab_size: int, training: bool = True) -> LanguageModel:
    """The model a :class:`~charlm.options.config.Config` asks for, with fresh weights from its seed;
    one CharLMError first if it cannot fit in memory (to train, or only to hold its weights)."""
    check_fits(cfg, vocab_size, training)
    return family(cfg.model).build(cfg, vocab_size)


def load_model(cfg, vocab_size: int, path, way_out: str = "retrain the run") -> LanguageModel:
    """The model saved at ``path`` by :meth:`LanguageModel.save`, checked against ``cfg`` and
    ``vocab_size``; any problem is one CharLMError that ends with ``way_out``."""
    return family(cfg.model).load(cfg, vocab_size, path, way_out)


def build_scratch(cfg, vocab_size: int, cell: str) -> ScratchModel:
    """The scratch ``cell`` (rnn, gru, lstm) stacked to ``cfg``'s shape."""
    return ScratchModel(
        vocab_size,
        cell=cell,
        units=cfg.units,
        layers=cfg.layers,
        embedding_dim=cfg.embedding_dim,
        dropout=cfg.dropout,
        reset_after=cfg.reset_after,
        seed=cfg.seed,
    )


def load_scratch(cfg, vocab_size: int, path, way_out: str, cell: str) -> ScratchModel:
    """``cfg``'s scratch model (if it fits in memory) with the checkpoint at ``path`` read in."""
    check_fits(cfg, vocab_size, training=False)
    model = build_scratch(cfg, vocab_size, cell)
    model.restore(path, way_out)
    return model
