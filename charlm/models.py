"""The language models: Keras ``LSTM | GRU | SimpleRNN`` stacks, and the scratch cells.

Every model, Keras or scratch, has the same small interface, used by the trainer, the
generator and the evaluator alike::

    model = build_model(cfg, vocab_size)
    state = model.initial_state(batch_size)            # list of zero tensors
    logits, state = model(ids, state, training=False)  # ids int32 [B, T] -> logits [B, T, V]
    model.trainable_variables

The Keras model is one functional ``keras.Model`` with the hidden states as extra inputs and
outputs, so the same model (and the same weights) trains on whole windows and generates one
character at a time. It holds only built-in layers, so it saves to and loads from a
``.keras`` file with ``safe_mode=True``. The recurrent layers keep Keras's defaults
(tanh/sigmoid, no recurrent dropout, ``reset_after=True``) so Keras uses cuDNN on a GPU.
"""

from __future__ import annotations

import zipfile

import keras
import tensorflow as tf

from .errors import CharLMError
from .scratch import ScratchLM

KERAS_LAYERS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "rnn": keras.layers.SimpleRNN}


def states_per_layer(kind: str) -> int:
    """2 for an LSTM (h and c), 1 for a GRU or a simple RNN."""
    return 2 if kind.endswith("lstm") else 1


def build_keras_model(kind: str, vocab_size: int, layers: int, units: int,
                      embedding_dim: int = 64, dropout: float = 0.0,
                      precision: str = "float32", seed: int = 0) -> keras.Model:
    """A functional model ``[ids, *states] -> [logits, *new_states]``.

    ``embedding_dim == 0`` gives one-hot inputs, as the tutorials do: a frozen identity
    embedding, which is exactly a one-hot encoding without a custom (unsafe) layer.

    >>> m = build_keras_model("gru", vocab_size=30, layers=2, units=64)
    >>> [t.shape for t in m.outputs]
    [(None, None, 30), (None, 64), (None, 64)]
    """
    layer_cls = KERAS_LAYERS[kind]
    policy = "mixed_bfloat16" if precision == "mixed_bfloat16" else "float32"
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    n_states = states_per_layer(kind)
    state_inputs = [keras.Input(shape=(units,), name=f"state_{i}_{j}")
                    for i in range(layers) for j in range(n_states)]
    init = keras.initializers  # explicit seeds: the same seed always gives the same weights
    if embedding_dim:
        x = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding", dtype=policy,
                                   embeddings_initializer=init.RandomUniform(-0.05, 0.05, seed))(ids)
    else:
        x = keras.layers.Embedding(vocab_size, vocab_size, embeddings_initializer="identity",
                                   trainable=False, name="one_hot", dtype=policy)(ids)
    new_states = []
    for i in range(layers):
        rnn = layer_cls(units, return_sequences=True, return_state=True, name=f"{kind}_{i}",
                        dtype=policy, seed=seed + i,
                        kernel_initializer=init.GlorotUniform(seed + 10 * i + 1),
                        recurrent_initializer=init.Orthogonal(seed=seed + 10 * i + 2))
        x, *s = rnn(x, initial_state=state_inputs[i * n_states:(i + 1) * n_states])
        new_states += s
        if dropout:
            x = keras.layers.Dropout(dropout, seed=seed + 100 + i, name=f"dropout_{i}")(x)
    logits = keras.layers.Dense(vocab_size, name="logits", dtype="float32",
                                kernel_initializer=init.GlorotUniform(seed + 1000))(x)
    return keras.Model([ids, *state_inputs], [logits, *new_states], name=f"charlm_{kind}")


class KerasLM:
    """The common model interface around a functional Keras model from :func:`build_keras_model`."""

    def __init__(self, model: keras.Model):
        self.keras_model = model
        self.vocab_size = int(model.outputs[0].shape[-1])
        self.state_sizes = [int(t.shape[-1]) for t in model.inputs[1:]]

    def initial_state(self, batch_size):
        return [tf.zeros([batch_size, n]) for n in self.state_sizes]

    def __call__(self, ids, state, training=False):
        logits, *state = self.keras_model([ids, *state], training=training)
        return tf.cast(logits, tf.float32), [tf.cast(s, tf.float32) for s in state]

    @property
    def trainable_variables(self):
        return self.keras_model.trainable_variables

    def checkpoint_objects(self) -> dict:
        """What a ``tf.train.Checkpoint`` must hold to resume exactly: the model, and the
        dropout seed generators' states (Keras keeps them outside the tracked object graph)."""
        seeds = [v.value for v in self.keras_model.non_trainable_variables
                 if v.path.endswith("seed_generator_state")]
        return {"model": self.keras_model, "dropout_seeds": seeds}

    @property
    def variables(self):
        return self.keras_model.variables

    def save(self, path: str) -> None:
        self.keras_model.save(path)

    @classmethod
    def load(cls, path: str, way_out: str = "restore the file or retrain the run") -> KerasLM:
        """Load a ``.keras`` file in safe mode: no code from the file is ever run."""
        if not zipfile.is_zipfile(path):  # Keras would call a truncated file "not found"
            raise CharLMError(f"{path}: cannot load the weights, the file is truncated or corrupt "
                              f"(not a .keras archive); {way_out}")
        try:
            model = keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as e:  # Keras raises ValueError, OSError, zipfile errors, ...
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if "safe_mode" in str(e) or "Lambda" in str(e) or "unsafe" in str(e).lower():
                raise CharLMError(
                    f"{path}: refusing to load: the model file holds code (e.g. a Lambda layer), "
                    "which charlm never runs; retrain the run or restore its weights file") from None
            raise CharLMError(f"{path}: cannot load the weights, the file is truncated or corrupt "
                              f"({msg}); {way_out}") from None
        if not (isinstance(model, keras.Model) and len(model.outputs) >= 2 and
                len(model.inputs) == len(model.outputs)):
            raise CharLMError(f"{path}: not a charlm model file; {way_out}")
        return cls(model)


def build_model(cfg, vocab_size: int):
    """The model a :class:`~charlm.config.Config` asks for (Keras or scratch)."""
    if cfg.is_scratch:
        if cfg.precision != "float32":
            raise CharLMError("precision mixed_bfloat16 is for the Keras models; "
                              "scratch models train in float32")
        return ScratchLM(vocab_size, cell=cfg.model.removeprefix("scratch-"), units=cfg.units,
                         layers=cfg.layers, embedding_dim=cfg.embedding_dim,
                         dropout=cfg.dropout, reset_after=cfg.reset_after, seed=cfg.seed)
    return KerasLM(build_keras_model(cfg.model, vocab_size, cfg.layers, cfg.units,
                                     cfg.embedding_dim, cfg.dropout, cfg.precision, cfg.seed))
