"""Exporting a run for use without charlm: a text-generating SavedModel, or a one-step TFLite model.

``charlm export RUN --format savedmodel`` writes a SavedModel whose graph holds everything:
the characters -> ids lookup (code points through a hash table, unknown characters -> ``<unk>``
= 0), one warm-up call per prefix, the in-graph sampling loop with charlm's own penalties,
temperature, min-p, top-k, top-p and greedy, and ids -> characters. Every function has an input signature
with a ``None`` batch, so the reloaded model takes any number of prefixes::

    loaded = tf.saved_model.load("runs/x/export/savedmodel")       # no charlm needed
    out = loaded.signatures["serving_default"](
        prefixes=tf.constant(["ROMEO:", "JULIET:"]), length=tf.constant(100),
        temperature=tf.constant(0.8), top_k=tf.constant(0), top_p=tf.constant(0.9),
        seed=tf.constant(1, tf.int64), greedy=tf.constant(False), min_p=tf.constant(0.0),
        repetition_penalty=tf.constant(1.0), frequency_penalty=tf.constant(0.0),
        presence_penalty=tf.constant(0.0))
    out["text"]         # [2] strings: each prefix and its continuation, as `charlm sample` prints
    loaded.generate(tf.constant(["ROMEO:"]), top_p=0.9)    # the others: `charlm sample`'s defaults

A signature takes every input; ``loaded.generate`` takes the prefixes and, by name, any of
the others, defaulting to :class:`~charlm.options.sampling.SamplingOptions`' defaults; its default
seed, ``-1`` (any negative seed), draws a new one each call, as no ``--seed`` does.
``greedy=True``, or a temperature of 0, takes the most likely character and ignores the
temperature, top-k and top-p, as in ``charlm sample``. The same prefixes, length, settings and
seed give exactly the text of ``charlm sample --seed``: both run the run's
``generation_model``, float32 math even for a mixed_bfloat16 run. (Stop strings are charlm's:
the export generates ``length`` characters.)

``charlm export RUN --format tflite`` writes ``model.tflite`` (one step: ids ``[B, 1]`` and the
state in, logits ``[B, V]`` and the new state out; signature ``serving_default``, tensors
``ids``, ``state_0``.. in and ``logits``, ``state_0``.. out), ``vocab.json`` (the run's
vocabulary) and ``export.json`` (the state shapes): strings and sampling stay on the host.

    from .export import export_run
    export_run(charlm.load("runs/x"), "savedmodel", out="exported/x")
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import tensorflow as tf

from .. import graphs
from ..errors import CharLMError, first_line
from ..fsio import (
    atomic_write,
    fault_point,
    fsync_tree,
    quiet_stderr,
    replace_path,
    temp_name,
    tf_path,
)
from ..options.sampling import MAX_PENALTY, MAX_SEED, SamplingOptions
from ..runs.folders import export_target
from .loop import compiled_loop, sample_loop  # traced into the export: one place decides

FORMATS = ("savedmodel", "tflite")


def export_run(run, fmt: str, out=None, force: bool = False, batch_size: int = 1) -> Path:
    """Export ``run`` (a :class:`charlm.api.Run`) as ``fmt`` into the folder ``out``.

    ``out`` defaults to ``RUN/export/FORMAT``; an existing ``out`` is refused unless ``force``.
    The folder is written under a temporary name beside ``out`` and renamed when complete.
    ``batch_size``: the rows of the TFLite model (fixed: TFLite's lowered recurrent loops need
    a static batch); the SavedModel takes any number of prefixes.
    """
    if fmt not in FORMATS:
        raise CharLMError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if batch_size < 1:
        raise CharLMError(f"--batch-size must be at least 1, not {batch_size}")
    final = export_target(run.path, fmt, out, force)
    tmp, made = temp_name(final), not final.parent.exists()
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "savedmodel":
            _write_savedmodel(run, tmp)
        else:
            _write_tflite(run, tmp, batch_size)
        fault_point("export-written")  # a test signals the process here
        fsync_tree(tmp)
        replace_path(tmp, final)
    except OSError as e:
        raise CharLMError(
            f"cannot write {final}: {e.strerror or e}; choose another --out or free some space"
        ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if made and final.parent.is_dir() and not any(final.parent.iterdir()):
            final.parent.rmdir()  # made for an export that did not end: nothing of it is left
    return final


# -- SavedModel: strings in, strings out ----------------------------------------------------------


class _Codec:
    """chars <-> ids as graph ops, the in-graph twin of :class:`charlm.text.vocab.Vocab`."""

    def __init__(self, vocab):
        cps = np.array([ord(c) for c in vocab.chars[1:]], np.int32)
        ids = np.arange(1, len(cps) + 1, dtype=np.int32)
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(cps, ids), default_value=0
        )  # unknown -> <unk>
        self.id_to_cp = tf.constant(np.concatenate([[0xFFFD], cps]).astype(np.int32))

    def encode(self, prefixes):
        """``[B]`` UTF-8 strings -> ragged ids ``[B, None]``."""
        cps = tf.strings.unicode_decode(prefixes, "UTF-8", errors="replace")
        return tf.ragged.map_flat_values(self.table.lookup, cps)

    def decode(self, ids):
        """ids ``[B, N]`` -> ``[B]`` UTF-8 strings (``<unk>`` -> U+FFFD, as Vocab.decode)."""
        return tf.strings.unicode_encode(tf.gather(self.id_to_cp, ids), "UTF-8")


def _warm_each(model, ids):
    """Feed each prefix alone (a batch of 1, as the Generator does) from a zero state.

    ``ids`` ragged ``[B, None]``; returns the last logits ``[B, V]`` and the state list.
    """
    n_states = len(model.initial_state(1))
    logits_ta = tf.TensorArray(tf.float32, size=ids.nrows(out_type=tf.int32))
    state_tas = [
        tf.TensorArray(tf.float32, size=ids.nrows(out_type=tf.int32)) for _ in range(n_states)
    ]

    def body(i, logits_ta, state_tas):
        row = ids.values[ids.row_splits[i] : ids.row_splits[i + 1]][None, :]
        logits, state = model(row, model.initial_state(1), training=False)
        return (
            i + 1,
            logits_ta.write(i, logits[0, -1]),
            [ta.write(i, s[0]) for ta, s in zip(state_tas, state, strict=True)],
        )

    _, logits_ta, state_tas = tf.while_loop(
        lambda i, *_: i < ids.nrows(out_type=tf.int32), body, (0, logits_ta, state_tas)
    )
    return logits_ta.stack(), [ta.stack() for ta in state_tas]


def _check_args(prefixes, length, o):
    """In-graph argument checks of the options ``o`` (a dict), the graph's twin of
    SamplingOptions.check (the graph cannot call it): a bad value stops the call with
    InvalidArgumentError."""
    sampling = tf.logical_or(
        o["greedy"],
        tf.reduce_all(
            tf.stack(
                [
                    o["temperature"] >= 0.0,
                    tf.math.is_finite(o["temperature"]),
                    o["top_k"] >= -1,
                    o["top_p"] > 0.0,
                    o["top_p"] <= 1.0,
                    o["min_p"] >= 0.0,
                    o["min_p"] < 1.0,
                ]
            )
        ),
    )
    penalties = tf.reduce_all(
        tf.stack(
            [o["repetition_penalty"] > 0.0, tf.math.is_finite(o["repetition_penalty"])]
            + [tf.abs(o[k]) <= MAX_PENALTY for k in ("frequency_penalty", "presence_penalty")]
        )
    )
    return [
        tf.debugging.assert_greater(
            tf.strings.length(prefixes, "UTF8_CHAR"), 0, message="a prefix must not be empty"
        ),
        tf.debugging.assert_non_negative(length, message="length must be 0 or more"),
        tf.debugging.Assert(
            sampling,
            [
                "unless greedy, temperature must be 0 (greedy) or more, "
                "top_k -1 or 0 (off) or more, top_p in (0, 1] and min_p in [0, 1)"
            ],
        ),
        tf.debugging.Assert(
            penalties,
            [
                "repetition_penalty must be more than 0, frequency_penalty and "
                f"presence_penalty from -{MAX_PENALTY:g} to {MAX_PENALTY:g}"
            ],
        ),
    ]


def _as_sampled(o):
    """What the loop is given, as the Generator gives it (:func:`~charlm.use.loop.row_options`):
    a temperature of 0 is greedy (and divides by 1, not 0), and a greedy row's filters are
    off; a negative seed is a new one."""
    greedy = tf.logical_or(o["greedy"], tf.equal(o["temperature"], 0.0))
    new = tf.random.uniform([], 0, MAX_SEED, dtype=tf.int64)
    return {
        **o,
        "greedy": greedy,
        "temperature": tf.where(greedy, tf.constant(1.0), o["temperature"]),
        "top_k": tf.where(greedy, 0, o["top_k"]),
        "top_p": tf.where(greedy, tf.constant(1.0), o["top_p"]),
        "min_p": tf.where(greedy, tf.constant(0.0), o["min_p"]),
        "seed": tf.where(o["seed"] < 0, new, o["seed"]),
    }


DEFAULTS = SamplingOptions()  # what an input left out of ``generate`` is
NEW_SEED = -1  # the default seed: a new one each call (SamplingOptions' seed None)
GENERATE_SIGNATURE = [
    tf.TensorSpec([None], tf.string, "prefixes"),
    tf.TensorSpec([], tf.int32, "length"),
    tf.TensorSpec([], tf.float32, "temperature"),
    tf.TensorSpec([], tf.int32, "top_k"),
    tf.TensorSpec([], tf.float32, "top_p"),
    tf.TensorSpec([], tf.int64, "seed"),
    tf.TensorSpec([], tf.bool, "greedy"),
    tf.TensorSpec([], tf.float32, "min_p"),
    tf.TensorSpec([], tf.float32, "repetition_penalty"),
    tf.TensorSpec([], tf.float32, "frequency_penalty"),
    tf.TensorSpec([], tf.float32, "presence_penalty"),
]


def savedmodel_module(model, vocab) -> tf.Module:
    """A ``tf.Module`` whose ``generate`` function (signature :data:`GENERATE_SIGNATURE`)
    returns ``{"text": prefix + continuation, "generated": continuation}`` per prefix."""
    module = tf.Module()
    module.codec_table = (codec := _Codec(vocab)).table
    loop = compiled_loop(model)

    @graphs.function(input_signature=GENERATE_SIGNATURE)
    def generate_text(
        prefixes,
        length=DEFAULTS.length,
        temperature=DEFAULTS.temperature,
        top_k=DEFAULTS.top_k,
        top_p=DEFAULTS.top_p,
        seed=NEW_SEED,
        greedy=DEFAULTS.greedy,
        min_p=DEFAULTS.min_p,
        repetition_penalty=DEFAULTS.repetition_penalty,
        frequency_penalty=DEFAULTS.frequency_penalty,
        presence_penalty=DEFAULTS.presence_penalty,
    ):
        options = dict(
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
            greedy=greedy,
            min_p=min_p,
            repetition_penalty=repetition_penalty,
            frequency_penalty=frequency_penalty,
            presence_penalty=presence_penalty,
        )
        with tf.control_dependencies(_check_args(prefixes, length, options)):
            prefixes, length = tf.identity(prefixes), tf.identity(length)  # checked before use
        ids = codec.encode(prefixes)
        logits, state = _warm_each(model, ids)
        new_ids = sample_loop(loop, logits, state, length, _as_sampled(options))
        generated = codec.decode(new_ids)
        return {"text": tf.strings.join([prefixes, generated]), "generated": generated}

    module.generate = generate_text
    # the weights the traced graph reads (Keras or scratch alike), tracked so that they are saved
    module.model_variables = list(generate_text.get_concrete_function().variables)
    return module


def _write_savedmodel(run, path: Path) -> None:
    module = savedmodel_module(run.generation_model, run.vocab)
    # generation only: the fast layers' hand-written gradients are not traced into the file
    options = tf.saved_model.SaveOptions(experimental_custom_gradients=False)
    path.mkdir()
    with tf_path(path) as plain:
        tf.saved_model.save(
            module, str(plain), signatures={"serving_default": module.generate}, options=options
        )


# -- TFLite: one step, ids and state in, logits and state out ---------------------------------------


def step_function(model, batch_size=None):
    """The one-step ``tf.function`` that becomes the TFLite model, and the state shapes (of
    one row each)."""
    shapes = [list(s.shape[1:]) for s in model.initial_state(1)]
    spec = [tf.TensorSpec([batch_size, 1], tf.int32, "ids")] + [
        tf.TensorSpec([batch_size, *shape], tf.float32, f"state_{i}")
        for i, shape in enumerate(shapes)
    ]

    @graphs.function(input_signature=spec)
    def step(ids, *state):
        logits, state = model(ids, list(state), training=False)
        return {"logits": logits[:, -1], **{f"state_{i}": s for i, s in enumerate(state)}}

    return step, shapes


def _write_tflite(run, path: Path, batch_size: int) -> None:
    step, shapes = step_function(run.generation_model, batch_size)
    concrete = step.get_concrete_function()
    holder = tf.Module()
    holder.model_variables = list(concrete.variables)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], holder)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex ops
    try:
        with quiet_stderr():  # the converter's C++ log: MLIR passes, op lists
            flat = converter.convert()
    except Exception as e:  # the converter raises ConverterError and others, with a long log
        raise CharLMError(
            f"{run.path}: TFLite cannot convert this model "
            f"({first_line(e)[:200]}); "
            "export it as --format savedmodel"
        ) from None
    path.mkdir(parents=True)
    atomic_write(path / "model.tflite", flat)
    atomic_write(path / "vocab.json", run.vocab.to_json())
    info = {
        "format": "charlm-tflite",
        "version": 1,
        "model": run.config.model,
        "vocab_size": len(run.vocab),
        "batch_size": batch_size,
        "state_shapes": shapes,  # of one row each
        "inputs": ["ids"] + [f"state_{i}" for i in range(len(shapes))],
        "outputs": ["logits"] + [f"state_{i}" for i in range(len(shapes))],
    }
    if all(len(shape) == 1 for shape in shapes):  # format 1's field, where it can say it:
        info["state_sizes"] = [shape[0] for shape in shapes]  # each state a vector per row
    atomic_write(path / "export.json", json.dumps(info, indent=1) + "\n")
