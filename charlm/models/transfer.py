"""Weights from one model into another of the same shape whose vocabulary grew: what
``charlm train NEW_TEXT --init-from RUN`` starts from.

A grown vocabulary keeps every old id and appends the new characters
(:meth:`charlm.text.vocab.Vocab.grown`), so a tensor of the old model is the new model's
tensor cut along its vocabulary axis: the embedding's rows (or, with one-hot input, the
first layer's input rows) and the output layer's columns. Every old row is copied bit for
bit; the rows of the new ids keep what the new model's own initializers drew, as in a fresh
model::

    values = [v.numpy() for v in old.trainable_variables]
    copy_grown(new, values, old_vocab_size=66)

The models are :class:`~charlm.models.lm.LanguageModel`\\ s of one family and shape: their
trainable variables come in the same order, Keras or scratch.
"""

from __future__ import annotations

import numpy as np

from ..errors import CharLMError


def copy_grown(model, values: list[np.ndarray], old_vocab_size: int) -> int:
    """Assign ``values`` (the trainable weights of a model of ``old_vocab_size`` ids, in
    order) to ``model``'s; the number of tensors that grew. A tensor whose shape is not the
    same but for its vocabulary axis is one CharLMError: the weights are of another shape."""
    variables = list(model.trainable_variables)
    if len(variables) != len(values):
        raise CharLMError(
            f"the weights hold {len(values)} tensors where this model has {len(variables)}: "
            "they are not of the model their config describes"
        )
    grew = 0
    for variable, old in zip(variables, values, strict=True):
        new = np.array(variable.numpy())
        axis = _grown_axis(old.shape, new.shape, old_vocab_size, model.vocab_size)
        if axis is None:
            variable.assign(old.astype(new.dtype, copy=False))
            continue
        index = [slice(None)] * new.ndim
        index[axis] = slice(0, old_vocab_size)
        new[tuple(index)] = old
        variable.assign(new)
        grew += 1
    return grew


def _grown_axis(old: tuple, new: tuple, old_size: int, new_size: int) -> int | None:
    """The axis along which ``old`` grew from ``old_size`` to ``new_size`` into ``new``; None
    when the shapes are the same."""
    if old == new:
        return None
    differ = [i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b]
    if (
        len(old) != len(new)
        or len(differ) != 1
        or (old[differ[0]], new[differ[0]])
        != (
            old_size,
            new_size,
        )
    ):
        raise CharLMError(
            f"a weight of shape {list(old)} does not fit this model's {list(new)}: the "
            "weights are not of the model their config describes"
        )
    return differ[0]
