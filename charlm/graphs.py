"""How charlm compiles its TensorFlow graphs: :func:`function`, ``tf.function`` without
AutoGraph.

charlm's graph code says its loops and branches in TensorFlow's own terms
(``tf.while_loop``, ``tf.where``, ``tf.cond``); a Python ``if`` or ``for`` in it runs once, while
tracing, on values known then (a shape, a setting). AutoGraph, which rewrites a function's
Python control flow into graph ops, would change nothing in these graphs, but it parses and
rewrites the source of every function a trace enters, the first time in a process: its
converter took about 0.3 s before a process's first training step and 0.6 s before its first
sample (timed by hooking it, tiny LSTM, 2-core Intel Xeon). Without it, a Python ``if`` or
``while`` on a tensor fails at trace time (a ``for`` over a tensor would unroll): keep such
control flow in TensorFlow's terms.

    >>> import tensorflow as tf
    >>> double = function(lambda x: x * 2)
    >>> int(double(tf.constant(3)))
    6
"""

from __future__ import annotations

import tensorflow as tf


def function(fn=None, **options):
    """``tf.function(fn, autograph=False, **options)``; with no ``fn``, a decorator."""
    if fn is None:
        return lambda f: tf.function(f, autograph=False, **options)
    return tf.function(fn, autograph=False, **options)
