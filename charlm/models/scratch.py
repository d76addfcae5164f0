"""Recurrent language models written from their equations (the d2l "from scratch" chapter).

Every parameter is a ``tf.Variable`` named after its symbol in the math, and every cell is a
few lines of ``tf.matmul``/``tf.sigmoid``/``tf.tanh``; no Keras layer is used.  Each step is
written gate by gate, as in the book (``I = σ(X W_xi + H W_hi + b_i)``).  How it is run, chosen
by measuring forward+backward on this 2-core CPU against the Keras layers:

* The input projection ``X W_x + b`` of *all* time steps of the first layer is one matrix
  product over ``[T*B, D]`` before the recurrence (the per-gate ``W_x``/``b`` concatenated
  for it), so only ``H_{t-1} W_h`` is left in the loop.
* Inside the loop each gate has its own small product ``H W_h·``: for 256 units that was
  ~1.3x faster than one product with the concatenated ``[H, 4H]`` matrix (independent ops
  that TF runs on both cores); at 512 units the two were within noise of each other.
* ``ScratchLM`` runs all its layers in ONE loop over time, so layer l+1 at step t overlaps
  layer l at step t+1 (``parallel_iterations``).  The layers above the first therefore
  project their input step by step.  For 2x256 this beat one loop per layer with every
  projection hoisted out by ~15%.

The recurrence is a ``tf.while_loop`` over ``TensorArray``s, so the same code runs eagerly,
inside a ``tf.function`` with a dynamic sequence length, and with ``T = 1`` for generation.

Example::

    model = ScratchLM(vocab_size=65, cell="lstm", units=256, layers=2)
    state = model.initial_state(batch_size=32)
    logits, state = model(ids, state, training=True)        # ids: int32 [32, T]
"""

from __future__ import annotations

import tensorflow as tf

from ..options.sampling import seed_plus

__all__ = ["RNNCell", "GRUCell", "LSTMCell", "ScratchLM", "CELLS"]

_INIT_STDDEV = 0.01  # d2l: every weight ~ N(0, 0.01^2), every bias 0
# Steps t+1, t+2, ... may start while step t still runs: this is what lets layer 1 of step t+1
# overlap layer 2 of step t in ScratchLM's stacked loop.  (Keras uses 32 too.)
_PARALLEL_ITERATIONS = 32


def _rng(seed: int | tf.random.Generator) -> tf.random.Generator:
    """The generator parameters are drawn from: a given one, or a fresh one from ``seed``."""
    if isinstance(seed, tf.random.Generator):
        return seed
    return tf.random.Generator.from_seed(int(seed))


def _normal(rng: tf.random.Generator, shape, name: str) -> tf.Variable:
    """W ~ N(0, 0.01^2)."""
    return tf.Variable(rng.normal(shape, stddev=_INIT_STDDEV, dtype=tf.float32), name=name)


def _zeros(shape, name: str) -> tf.Variable:
    """b = 0."""
    return tf.Variable(tf.zeros(shape, tf.float32), name=name)


def _recur(step, inputs: tuple, state: tuple) -> tuple[tf.Tensor, tuple]:
    """Y_t, state_t = step(inputs_t, state_{t-1}) for t = 1..T; returns ([Y_1..Y_T], state_T).

    ``inputs`` is a tuple of time-major tensors ``[T, B, ...]``; ``step`` gets their slices
    at time t.  They are read through ``TensorArray``s (rather than slicing ``X[t]``) so that
    back-propagation does not build a dense ``[T, ...]`` gradient at every step.
    """
    T = tf.shape(inputs[0])[0]
    arrays = tuple(tf.TensorArray(x.dtype, size=T).unstack(x) for x in inputs)
    outputs = tf.TensorArray(tf.float32, size=T, element_shape=state[0].shape)

    def body(t, outputs, *state):
        Y_t, state = step(tuple(a.read(t) for a in arrays), state)
        return (t + 1, outputs.write(t, Y_t), *state)

    _, outputs, *state = tf.while_loop(
        lambda t, *_: t < T,
        body,
        (tf.constant(0), outputs, *state),
        maximum_iterations=T,
        parallel_iterations=_PARALLEL_ITERATIONS,
    )
    Y = outputs.stack()
    Y.set_shape(inputs[0].shape[:2].concatenate(state[0].shape[-1:]))
    return Y, tuple(state)


class _Cell(tf.Module):
    """What every cell shares: its parameters, state shapes and the sequence loop around
    ``step``.

    A subclass names its gates in ``gates``, one letter each, in the order their parameters
    are drawn and concatenated; every gate ``g`` has ``W_xg`` [D, H], ``W_hg`` [H, H] ~
    N(0, 0.01²) and ``b_g`` [H] = 0 (d2l). It defines ``state_size`` (how many ``[B, H]``
    tensors its state is) and one time step ``step(XW_t, state)``, which receives
    ``X_t W_x + b`` (all gates, concatenated) already computed.
    """

    state_size = 1
    gates = "h"

    def __init__(
        self,
        input_dim: int,
        units: int,
        seed: int | tf.random.Generator = 0,
        name: str | None = None,
    ):
        super().__init__(name=name)
        self.input_dim = int(input_dim)
        self.units = int(units)
        rng = _rng(seed)
        for g in self.gates:
            setattr(self, f"W_x{g}", _normal(rng, [self.input_dim, self.units], f"W_x{g}"))
            setattr(self, f"W_h{g}", _normal(rng, [self.units, self.units], f"W_h{g}"))
            setattr(self, f"b_{g}", _zeros([self.units], f"b_{g}"))

    def _W_x(self):
        """[W_x· of every gate], concatenated in ``gates`` order: [D, G]."""
        return tf.concat([getattr(self, f"W_x{g}") for g in self.gates], axis=1)

    def _b(self):
        """[b_· of every gate], concatenated in ``gates`` order: [G]."""
        return tf.concat([getattr(self, f"b_{g}") for g in self.gates], axis=0)

    def _load_gates(self, kernel, recurrent, bias, keras_order: str) -> None:
        """Copy a Keras layer's per-gate column blocks, which come in ``keras_order``, into
        ``W_x·``, ``W_h·`` and ``b_·``."""
        u = self.units
        for i, g in enumerate(keras_order):
            cols = slice(i * u, (i + 1) * u)
            getattr(self, f"W_x{g}").assign(kernel[:, cols])
            getattr(self, f"W_h{g}").assign(recurrent[:, cols])
            getattr(self, f"b_{g}").assign(bias[cols])

    def initial_state(self, batch_size) -> list[tf.Tensor]:
        """Zeros: ``state_size`` tensors of shape [batch_size, units]."""
        return [tf.zeros([batch_size, self.units], tf.float32) for _ in range(self.state_size)]

    def __call__(self, X, state) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """Run the cell over a batch-major sequence X [B, T, D] from ``state``.

        Returns the hidden state at every step [B, T, H] and the final state (a list).
        """
        X = tf.convert_to_tensor(X, tf.float32)
        H, state = self.sequence(tf.transpose(X, [1, 0, 2]), state)
        return tf.transpose(H, [1, 0, 2]), state

    def sequence(self, X, state) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """Like ``__call__`` but time-major: X [T, B, D] -> ([T, B, H], final state)."""

        def step(inputs, state):
            state = self.step(inputs[0], state)
            return state[0], state

        H, state = _recur(step, (self.project(X),), tuple(state))
        return H, list(state)

    def project(self, X) -> tf.Tensor:
        """X W_x + b for every gate, one matmul over all leading axes: [..., D] -> [..., G]."""
        return tf.tensordot(X, self._W_x(), axes=1) + self._b()


class RNNCell(_Cell):
    """H_t = tanh(X_t W_xh + H_{t-1} W_hh + b_h).

    ``load_keras_weights`` copies a ``keras.layers.SimpleRNN`` (tanh, with bias).
    """

    state_size = 1
    gates = "h"

    def step(self, XW_t, state) -> tuple:
        """One time step; ``XW_t`` = X_t W_xh + b_h."""
        (H,) = state
        return (tf.tanh(XW_t + tf.matmul(H, self.W_hh)),)

    def load_keras_weights(self, keras_layer) -> None:
        """Copy a built ``keras.layers.SimpleRNN`` (kernel, recurrent, bias -> W_xh, W_hh, b_h)."""
        kernel, recurrent, bias = keras_layer.get_weights()
        self._load_gates(kernel, recurrent, bias, keras_order="h")


class GRUCell(_Cell):
    """R=σ(XW_xr+HW_hr+b_r), Z=σ(XW_xz+HW_hz+b_z), H̃=tanh(XW_xh+(R⊙H)W_hh+b_h), H=Z⊙H+(1−Z)⊙H̃.

    That is the d2l book's GRU (``reset_after=False``, = ``keras.layers.GRU(reset_after=False)``).
    With ``reset_after=True`` the reset gate is applied after the recurrent product, which
    needs a recurrent bias of its own, ``b_hh``:

        H̃ = tanh(X W_xh + b_h + R ⊙ (H W_hh + b_hh))

    This matches ``keras.layers.GRU()``'s default (``reset_after=True``, bias shape (2, 3u)).
    In that mode ``b_z``/``b_r`` stand for Keras's input + recurrent bias of z/r (only their
    sum enters the math) and ``b_h`` for Keras's input bias of the candidate.
    """

    state_size = 1
    gates = "zrh"

    def __init__(
        self,
        input_dim: int,
        units: int,
        reset_after: bool = False,
        seed: int | tf.random.Generator = 0,
        name: str | None = None,
    ):
        super().__init__(input_dim, units, seed=seed, name=name)
        self.reset_after = bool(reset_after)
        if self.reset_after:
            self.b_hh = _zeros([units], "b_hh")

    def step(self, XW_t, state) -> tuple:
        """One time step; ``XW_t`` = [X_t W_xz + b_z | X_t W_xr + b_r | X_t W_xh + b_h]."""
        (H,) = state
        XW_z, XW_r, XW_h = tf.split(XW_t, 3, axis=1)
        Z = tf.sigmoid(XW_z + tf.matmul(H, self.W_hz))
        R = tf.sigmoid(XW_r + tf.matmul(H, self.W_hr))
        if self.reset_after:
            H_tilde = tf.tanh(XW_h + R * (tf.matmul(H, self.W_hh) + self.b_hh))
        else:
            H_tilde = tf.tanh(XW_h + tf.matmul(R * H, self.W_hh))
        return (Z * H + (1.0 - Z) * H_tilde,)

    def load_keras_weights(self, keras_layer) -> None:
        """Copy a built ``keras.layers.GRU`` with the same ``reset_after`` (gate order z, r, h)."""
        kernel, recurrent, bias = keras_layer.get_weights()
        keras_reset_after = bias.ndim == 2
        if keras_reset_after != self.reset_after:
            raise ValueError(
                f"keras GRU has reset_after={keras_reset_after}, this cell {self.reset_after}"
            )
        if self.reset_after:
            b_input, b_recurrent = bias
            u2 = 2 * self.units
            bias = b_input + b_recurrent  # z, r: only the sum enters the math
            bias[u2:] = b_input[u2:]  # the candidate's input bias; its recurrent one is b_hh
            self.b_hh.assign(b_recurrent[u2:])
        self._load_gates(kernel, recurrent, bias, keras_order="zrh")


class LSTMCell(_Cell):
    """I,F,O=σ(XW_x·+HW_h·+b_·), C̃=tanh(XW_xc+HW_hc+b_c), C=F⊙C_prev+I⊙C̃, H=O⊙tanh(C).

    The state is [H, C].  ``load_keras_weights`` copies a ``keras.layers.LSTM``.
    """

    state_size = 2
    gates = "ifoc"

    def step(self, XW_t, state) -> tuple:
        """One time step; ``XW_t`` = [X_t W_xi + b_i | X_t W_xf + b_f | ... o | ... c]."""
        H, C = state
        XW_i, XW_f, XW_o, XW_c = tf.split(XW_t, 4, axis=1)
        I = tf.sigmoid(XW_i + tf.matmul(H, self.W_hi))
        F = tf.sigmoid(XW_f + tf.matmul(H, self.W_hf))
        O = tf.sigmoid(XW_o + tf.matmul(H, self.W_ho))
        C_tilde = tf.tanh(XW_c + tf.matmul(H, self.W_hc))
        C = F * C + I * C_tilde
        return O * tf.tanh(C), C

    def load_keras_weights(self, keras_layer) -> None:
        """Copy a built ``keras.layers.LSTM`` (Keras gate order i, f, c, o)."""
        kernel, recurrent, bias = keras_layer.get_weights()
        self._load_gates(kernel, recurrent, bias, keras_order="ifco")


CELLS = {"rnn": RNNCell, "gru": GRUCell, "lstm": LSTMCell}


class ScratchLM(tf.Module):
    """Character language model: input -> ``layers`` stacked cells -> O_t = H_t W_hq + b_q.

    Input is one-hot (``embedding_dim == 0``, as in d2l) or a row of the embedding matrix
    ``E`` (``embedding_dim > 0``).  When training, dropout with rate ``dropout`` is applied
    to each layer's output sequence; its masks come from a ``tf.random.Generator`` seeded
    from ``seed`` that a ``tf.train.Checkpoint`` saves with the weights.

    Example::

        model = ScratchLM(vocab_size=65, cell="gru", units=128)
        state = model.initial_state(8)
        logits, state = model(tf.zeros([8, 50], tf.int32), state)   # logits [8, 50, 65]
    """

    def __init__(
        self,
        vocab_size: int,
        cell: str = "rnn",
        units: int = 256,
        layers: int = 1,
        embedding_dim: int = 0,
        dropout: float = 0.0,
        reset_after: bool = False,
        seed: int = 0,
    ):
        super().__init__(name="scratch_lm")
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if layers < 1 or units < 1 or vocab_size < 1 or embedding_dim < 0:
            raise ValueError("vocab_size, units and layers must be >= 1, embedding_dim >= 0")
        self.vocab_size = int(vocab_size)
        self.cell = cell
        self.units = int(units)
        self.num_layers = int(layers)
        self.embedding_dim = int(embedding_dim)
        self.dropout = float(dropout)
        self.reset_after = bool(reset_after)
        self.seed = int(seed)

        rng = tf.random.Generator.from_seed(self.seed)  # draws every initial weight, in order
        if self.embedding_dim:
            self.E = _normal(rng, [self.vocab_size, self.embedding_dim], "E")
        input_dim = self.embedding_dim or self.vocab_size
        kwargs = {"reset_after": self.reset_after} if cell == "gru" else {}
        self.cells = []
        for layer in range(self.num_layers):
            self.cells.append(
                CELLS[cell](input_dim, self.units, seed=rng, name=f"{cell}_{layer}", **kwargs)
            )
            input_dim = self.units
        self.W_hq = _normal(rng, [self.units, self.vocab_size], "W_hq")
        self.b_q = _zeros([self.vocab_size], "b_q")
        # Dropout masks; a separate stream so that dropout does not change the init.
        self.dropout_rng = tf.random.Generator.from_seed(seed_plus(self.seed, 1))

    def get_config(self) -> dict:
        """The constructor arguments, enough to rebuild the model before restoring weights."""
        return {
            "vocab_size": self.vocab_size,
            "cell": self.cell,
            "units": self.units,
            "layers": self.num_layers,
            "embedding_dim": self.embedding_dim,
            "dropout": self.dropout,
            "reset_after": self.reset_after,
            "seed": self.seed,
        }

    def initial_state(self, batch_size) -> list[tf.Tensor]:
        """Zeros, per layer [H] (rnn, gru) or [H, C] (lstm), flattened in layer order."""
        return [s for cell in self.cells for s in cell.initial_state(batch_size)]

    def _dropout_masks(self, T, B) -> list[tf.Tensor]:
        """M / (1 − p) with M ~ Bernoulli(1 − p): one [T, B, H] mask per layer output."""
        keep = self.dropout_rng.uniform([self.num_layers, T, B, self.units]) >= self.dropout
        return tf.unstack(tf.cast(keep, tf.float32) / (1.0 - self.dropout), self.num_layers)

    def __call__(self, ids, state, training=False) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """ids int32 [B, T] -> (logits float32 [B, T, vocab_size], new state list).

        ``training`` is a Python bool; it only switches dropout on.
        """
        ids = tf.convert_to_tensor(ids, tf.int32)
        B, T = tf.shape(ids)[0], tf.shape(ids)[1]
        ids_tm = tf.transpose(ids)  # time-major [T, B]
        X = tf.gather(self.E, ids_tm) if self.embedding_dim else tf.one_hot(ids_tm, self.vocab_size)
        # The first layer's input projection for all steps is one matmul.  The layers above
        # take theirs inside the loop, one step at a time: one loop for all layers lets layer
        # l+1 at step t overlap layer l at step t+1 (measured faster; see the module docstring).
        inputs = [self.cells[0].project(X)]
        use_dropout = bool(training) and self.dropout > 0.0
        if use_dropout:
            inputs += self._dropout_masks(T, B)
        W_x = [None] + [cell._W_x() for cell in self.cells[1:]]  # concatenated once
        b = [None] + [cell._b() for cell in self.cells[1:]]
        sizes = [cell.state_size for cell in self.cells]

        def step(inputs_t, state):
            XW_t, masks_t = inputs_t[0], inputs_t[1:]
            new_state = []
            for l, cell in enumerate(self.cells):
                if l:
                    XW_t = tf.matmul(H, W_x[l]) + b[l]  # noqa: F823 (H: the layer below, set at l-1)
                n = len(new_state)
                cell_state = cell.step(XW_t, state[n : n + sizes[l]])
                new_state.extend(cell_state)
                H = cell_state[0] * masks_t[l] if use_dropout else cell_state[0]
            return H, tuple(new_state)

        H, new_state = _recur(step, tuple(inputs), tuple(state))  # H: [T, B, units]
        O = tf.tensordot(tf.transpose(H, [1, 0, 2]), self.W_hq, axes=1) + self.b_q
        return O, list(new_state)
