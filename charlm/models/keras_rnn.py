"""The Keras family: a stack of ``keras.layers.LSTM | GRU | SimpleRNN`` (charlm's fast CPU
cells where it has them), as a :class:`~charlm.models.lm.LanguageModel`. The registry
(:mod:`charlm.models.families`) names :func:`build` and :func:`load` for lstm, gru and rnn.

The model is one functional ``keras.Model`` with the hidden states as extra inputs and
outputs, so the same model (and the same weights) trains on whole windows and generates one
character at a time. It holds only built-in layers, so it saves to and loads from a
``.keras`` file with ``safe_mode=True``. The recurrent layers keep Keras's defaults
(tanh/sigmoid, no recurrent dropout, ``reset_after=True``) so Keras uses cuDNN on a GPU.
"""

from __future__ import annotations

import zipfile

import keras
import tensorflow as tf

from ..errors import CharLMError, first_line
from ..options.sampling import seed_plus
from .fastrnn import FastGRU, FastLSTM

KERAS_LAYERS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "rnn": keras.layers.SimpleRNN}
# The same math and weights, faster on a CPU (charlm.models.fastrnn); a GPU keeps Keras's layers,
# which take cuDNN there.
CPU_LAYERS = {**KERAS_LAYERS, "lstm": FastLSTM, "gru": FastGRU}


def recurrent_layer(kind: str):
    """The layer class that runs ``kind`` fastest on this machine's devices."""
    on_gpu = bool(tf.config.list_physical_devices("GPU"))
    return (KERAS_LAYERS if on_gpu else CPU_LAYERS)[kind]


def states_per_layer(kind: str) -> int:
    """2 for an LSTM layer (h and c), 1 for a GRU or a simple RNN."""
    return 2 if kind == "lstm" else 1


def build_keras_model(
    kind: str,
    vocab_size: int,
    layers: int,
    units: int,
    embedding_dim: int = 64,
    dropout: float = 0.0,
    precision: str = "float32",
    seed: int = 0,
    layer_cls=None,
) -> keras.Model:
    """A functional model ``[ids, *states] -> [logits, *new_states]``.

    ``embedding_dim == 0`` gives one-hot inputs, as the tutorials do. ``layer_cls`` is the
    recurrent layer (default: :func:`recurrent_layer`, the fastest here); the benchmarks pass
    Keras's own or a variant to compare them in charlm's model. Every initializer has an
    explicit seed: the same seed always gives the same weights.

    >>> m = build_keras_model("gru", vocab_size=30, layers=2, units=64)
    >>> [t.shape for t in m.outputs]
    [(None, None, 30), (None, 64), (None, 64)]
    """
    policy = "mixed_bfloat16" if precision == "mixed_bfloat16" else "float32"
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    n_states = states_per_layer(kind)
    state_inputs = [
        keras.Input(shape=(units,), name=f"state_{i}_{j}")
        for i in range(layers)
        for j in range(n_states)
    ]
    x = _input_layer(vocab_size, embedding_dim, policy, seed)(ids)
    new_states = []
    for i in range(layers):
        rnn = _recurrent(layer_cls or recurrent_layer(kind), kind, i, units, policy, seed)
        x, *s = rnn(x, initial_state=state_inputs[i * n_states : (i + 1) * n_states])
        new_states += s
        if dropout:
            x = keras.layers.Dropout(dropout, seed=seed_plus(seed, 100 + i), name=f"dropout_{i}")(x)
    logits = keras.layers.Dense(
        vocab_size,
        name="logits",
        dtype="float32",
        kernel_initializer=keras.initializers.GlorotUniform(seed_plus(seed, 1000)),
    )(x)
    return keras.Model([ids, *state_inputs], [logits, *new_states], name=f"charlm_{kind}")


def _input_layer(vocab_size: int, embedding_dim: int, policy: str, seed: int):
    """A learned embedding, or for ``embedding_dim == 0`` a frozen identity one: exactly a
    one-hot encoding, without a custom (unsafe to load) layer."""
    if embedding_dim:
        return keras.layers.Embedding(
            vocab_size,
            embedding_dim,
            name="embedding",
            dtype=policy,
            embeddings_initializer=keras.initializers.RandomUniform(-0.05, 0.05, seed),
        )
    return keras.layers.Embedding(
        vocab_size,
        vocab_size,
        embeddings_initializer="identity",
        trainable=False,
        name="one_hot",
        dtype=policy,
    )


def _recurrent(layer_cls, kind: str, i: int, units: int, policy: str, seed: int):
    """Recurrent layer ``i`` of the stack, with states in and out and its own seeds."""
    return layer_cls(
        units,
        return_sequences=True,
        return_state=True,
        name=f"{kind}_{i}",
        dtype=policy,
        seed=seed_plus(seed, i),
        kernel_initializer=keras.initializers.GlorotUniform(seed_plus(seed, 10 * i + 1)),
        recurrent_initializer=keras.initializers.Orthogonal(seed=seed_plus(seed, 10 * i + 2)),
    )


class KerasLM:
    """A :class:`~charlm.models.lm.LanguageModel` around a functional Keras model from
    :func:`build_keras_model`."""

    weights_suffix = ".keras"

    def __init__(self, model: keras.Model):
        self.keras_model = model
        self.vocab_size = int(model.outputs[0].shape[-1])
        self.state_shapes = [tuple(int(d) for d in t.shape[1:]) for t in model.inputs[1:]]
        self._embedding, *self._rnns, self._logits = [
            layer
            for layer in model.layers
            if isinstance(
                layer,
                (keras.layers.Embedding, keras.layers.RNN, FastLSTM, FastGRU, keras.layers.Dense),
            )
        ]

    @property
    def output_bias(self):
        return self.keras_model.get_layer("logits").bias

    def initial_state(self, batch_size):
        return [tf.zeros([batch_size, *shape]) for shape in self.state_shapes]

    def __call__(self, ids, state, training=False):
        logits, *state = self.keras_model([ids, *state], training=training)
        return tf.cast(logits, tf.float32), [tf.cast(s, tf.float32) for s in state]

    def fresh(self, ids, training=False):
        return self(ids, self.initial_state(tf.shape(ids)[0]), training)[0]

    def step(self, ids, state):
        """The model's own layers for one character, with no loop over a time axis of length
        1: a Keras RNN layer's cell is called directly; charlm's fast layers run one step
        when given a window of one."""
        x, new_state, i = self._embedding(ids), [], 0
        for rnn in self._rnns:
            n = 2 if isinstance(rnn, (FastLSTM, keras.layers.LSTM)) else 1
            if isinstance(rnn, keras.layers.RNN):
                cell_state = [tf.cast(s, rnn.cell.compute_dtype) for s in state[i : i + n]]
                x, out = rnn.cell(x, cell_state if n > 1 else cell_state[0], training=False)
            else:
                y, *out = rnn(x[:, None], initial_state=state[i : i + n])
                x = y[:, 0]
            new_state += [tf.cast(s, tf.float32) for s in tf.nest.flatten(out)]
            i += n
        return tf.cast(self._logits(x), tf.float32), new_state

    def in_float32(self) -> KerasLM:
        """A copy whose layers all compute in float32, holding this model's weights (which a
        mixed_bfloat16 model keeps in float32 already, so the copy is exact).

        bf16 math rounds differently in each traced graph (the sampling loop of ``charlm
        sample``, an export's serving function), enough to flip a greedy choice; in float32
        they agree exactly."""
        if all(layer.dtype_policy.name == "float32" for layer in self.keras_model.layers):
            return self
        twin = keras.models.clone_model(self.keras_model, clone_function=_in_float32)
        twin.set_weights(self.keras_model.get_weights())
        return type(self)(twin)

    @property
    def trainable_variables(self):
        return self.keras_model.trainable_variables

    def checkpoint_objects(self) -> dict:
        """The model, and the dropout seed generators' states (Keras keeps them outside the
        tracked object graph)."""
        seeds = [
            v.value
            for v in self.keras_model.non_trainable_variables
            if v.path.endswith("seed_generator_state")
        ]
        return {"model": self.keras_model, "dropout_seeds": seeds}

    def count_params(self) -> int:
        return int(sum(v.numpy().size for v in self.trainable_variables))

    def save(self, path) -> None:
        self.keras_model.save(str(path))

    @classmethod
    def load(cls, path, way_out: str) -> KerasLM:
        """Load a ``.keras`` file in safe mode: no code from the file is ever run."""
        if not zipfile.is_zipfile(path):  # Keras would call a truncated file "not found"
            raise CharLMError(
                f"{path}: cannot load the weights, the file is truncated or corrupt "
                f"(not a .keras archive); {way_out}"
            )
        try:
            model = keras.saving.load_model(str(path), compile=False, safe_mode=True)
        except Exception as e:  # Keras raises ValueError, OSError, zipfile errors, ...
            if "safe_mode" in str(e) or "Lambda" in str(e) or "unsafe" in str(e).lower():
                raise CharLMError(
                    f"{path}: refusing to load: the model file holds code (e.g. a Lambda layer), "
                    "which charlm never runs; retrain the run or restore its weights file"
                ) from None
            raise CharLMError(
                f"{path}: cannot load the weights, the file is truncated or corrupt "
                f"({first_line(e)}); {way_out}"
            ) from None
        if not (
            isinstance(model, keras.Model)
            and len(model.outputs) >= 2
            and len(model.inputs) == len(model.outputs)
        ):
            raise CharLMError(f"{path}: not a charlm model file; {way_out}")
        return cls(model)


def _in_float32(layer: keras.layers.Layer) -> keras.layers.Layer:
    return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})


def build(cfg, vocab_size: int, kind: str) -> KerasLM:
    """A stack of Keras's ``kind`` layers (lstm, gru, rnn) of ``cfg``'s shape and precision."""
    return KerasLM(
        build_keras_model(
            kind,
            vocab_size,
            cfg.layers,
            cfg.units,
            cfg.embedding_dim,
            cfg.dropout,
            cfg.precision,
            cfg.seed,
        )
    )


def load(cfg, vocab_size: int, path, way_out: str) -> KerasLM:
    """A ``.keras`` file, safely, for ``vocab_size`` characters (the architecture is the file's)."""
    model = KerasLM.load(path, way_out)
    if model.vocab_size != vocab_size:
        raise CharLMError(
            f"{path}: the weights are for {model.vocab_size} characters but "
            f"vocab.json has {vocab_size}; restore the run's own vocab.json"
        )
    return model
