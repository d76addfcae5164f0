"""Training on several devices (``--strategy mirrored``) and several machines
(``--strategy multi-worker``) with ``tf.distribute``.

One step under a strategy with R replicas, global batch B (``--batch-size``)::

    replica r takes rows r·B/R … (r+1)·B/R − 1 of the batch, and of the carried state
    loss_r = Σ cross-entropy of its rows / (B·T)          so that Σ_r loss_r = the mean over B·T
    g = all_reduce(SUM, ∇loss_r)                          the gradient of the global mean loss
    g ← min(1, θ/‖g‖) · g                                 clipped once, on the summed gradient
    optimizer.apply_gradients(g)                          with Keras's own sum switched off
    new state = all_gather(state_r)                       rows back in replica order

Row r·B/R + i always belongs to replica r, so a consecutive stream and its hidden state stay
on one replica for the whole epoch; the trainer keeps the gathered state as a [B, H] tensor,
so its checkpoints are the same as a single device's and a run resumes under any strategy.
Keras 3's optimizer all-reduces (sums) the gradients it is given in a replica context, after
its own clipping: here the gradients are summed and clipped first, and the optimizer is told
not to sum them again (:func:`_sum_once`).

Multi-worker: every worker runs the same ``charlm train`` with its own ``TF_CONFIG``; the
chief (``chief`` task, else ``worker`` 0) saves into the run folder, the others into a
temporary folder that they delete (TensorFlow's multi-worker checkpointing pattern) and read
checkpoints from the run folder they were given (``--resume`` the chief's, on a shared disk).
The strategy must exist before TensorFlow starts its devices: :func:`at_startup`.
"""

from __future__ import annotations

import contextlib
import gc

import tensorflow as tf

from .. import graphs
from ..errors import CharLMError, first_line
from ..fsio import to_stderr
from .clipping import clip_by_global_norm
from .step import forward

_STRATEGIES: dict = {}  # name -> the one strategy of this process


def at_startup(cfg) -> None:
    """Create ``cfg``'s ``multi-worker`` strategy now, before anything starts TensorFlow's
    devices (its collective ops can only be configured then), waiting at most
    ``cfg.peer_timeout`` seconds for the other workers; other strategies wait until needed."""
    if cfg.strategy == "multi-worker":
        strategy(cfg.strategy, peer_timeout=cfg.peer_timeout)


def strategy(name: str, peer_timeout: float = 120):
    """The ``tf.distribute`` strategy ``name`` names (created once), or None for ``none``."""
    if name == "none":
        return None
    if name not in _STRATEGIES:
        _STRATEGIES[name] = _create(name, peer_timeout)
    return _STRATEGIES[name]


def _create(name: str, peer_timeout: float):
    if name == "mirrored":  # every GPU, else every (logical) CPU device
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "multi-worker":
        _wait_in_python(peer_timeout)
        to_stderr(  # the wait may be long: never silent
            f"multi-worker: waiting up to {peer_timeout:g} s for the other workers of TF_CONFIG's "
            "cluster (--peer-timeout)"
        )
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except (RuntimeError, ValueError) as e:
            error = _cannot_start(e, peer_timeout)
        gc.collect()  # the half-made strategy's thread pool, now: at exit it fails noisily
        raise error
    raise CharLMError(f"unknown strategy '{name}'; use none, mirrored or multi-worker")


def _cannot_start(e: Exception, peer_timeout: float) -> CharLMError:
    if "Timeout waiting for the cluster" in str(e):
        return CharLMError(
            f"the other workers did not all join within {peer_timeout:g} s; start every "
            "worker with its TF_CONFIG, or wait longer with --peer-timeout"
        )
    return CharLMError(
        f"cannot start the multi-worker strategy ({first_line(e)}); set TF_CONFIG on every "
        "worker and create the strategy at program start (charlm.training.distribute.at_startup)"
    )


def _wait_in_python(seconds: float) -> None:
    """Make the multi-worker start wait for its peers where a deadline and SIGTERM reach it.

    TensorFlow's coordination service waits for every worker in C++, holding Python's lock,
    for up to an hour, and its preemption notifier takes SIGTERM for itself (it notes the
    signal and waits on), so a chief whose peer never came stopped only for SIGKILL. Without
    the service the strategy waits in a collective op, with a timeout (its "initial health
    check", at most ``seconds``) and SIGTERM's default action (the process ends; nothing
    has been written yet)."""
    from tensorflow.python.distribute import collective_all_reduce_strategy as mwms
    from tensorflow.python.eager import context

    if not hasattr(mwms.CollectiveAllReduceExtended, "_check_health_initial_timeout"):
        raise RuntimeError("this TensorFlow's multi-worker strategy has no initial timeout")
    mwms.CollectiveAllReduceExtended._check_health_initial_timeout = seconds
    if context.context().coordination_service is None:
        context.context().configure_coordination_service(service_type="")  # off


def scope(strat):
    """``strat.scope()``, or nothing for no strategy."""
    return strat.scope() if strat is not None else contextlib.nullcontext()


def check_batch(strat, batch_size: int) -> int:
    """Rows per replica; a batch that does not split evenly is one clear error."""
    replicas = strat.num_replicas_in_sync
    if batch_size % replicas:
        raise CharLMError(
            f"--batch-size {batch_size} does not split over {replicas} replicas; "
            f"use a multiple of {replicas}, e.g. {replicas * max(1, batch_size // replicas)}"
        )
    return batch_size // replicas


def _sum_once(optimizer) -> None:
    """Keep Keras's optimizer from summing gradients over the replicas a second time: it
    all-reduces in ``_all_reduce_sum_gradients`` whenever it runs in a replica context, and
    the gradients it is given here are already summed (and clipped)."""
    if not callable(getattr(type(optimizer), "_all_reduce_sum_gradients", None)):
        raise RuntimeError(
            "this Keras optimizer has no _all_reduce_sum_gradients; the "
            "distributed step would sum the gradients twice"
        )
    optimizer._all_reduce_sum_gradients = list  # (grads_and_vars) -> the same pairs


def distributed_train_step(strat, model, optimizer, cfg, fresh: bool):
    """The training step ``(x, y, state) -> (loss, grad_norm, new_state)`` of
    :func:`charlm.training.step.make_train_step`, over the replicas of ``strat``: the same global
    batch in, the same results out (``fresh`` as in :func:`charlm.training.step.forward`;
    never XLA: a replica's step is a graph)."""
    clip_norm, batch_size = cfg.clip_norm, cfg.batch_size
    rows = check_batch(strat, batch_size)
    variables = list(model.trainable_variables)
    _sum_once(optimizer)

    def replica_step(x, y, state):
        ctx = tf.distribute.get_replica_context()
        first = ctx.replica_id_in_sync_group * rows
        x, y = x[first : first + rows], y[first : first + rows]
        state = [s[first : first + rows] for s in state]
        with tf.GradientTape() as tape:
            logits, new_state = forward(model, x, state, fresh)
            ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
            loss = tf.reduce_sum(ce) / tf.cast(batch_size * tf.shape(ce)[1], ce.dtype)
        grads = _all_reduce_sum(ctx, tape.gradient(loss, variables))
        grads, norm = clip_by_global_norm(grads, clip_norm)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        new_state = [ctx.all_gather(s, axis=0) for s in new_state]
        return ctx.all_reduce(tf.distribute.ReduceOp.SUM, loss), norm, new_state

    @graphs.function
    def step(x, y, state):
        results = strat.run(replica_step, args=(x, y, list(state)))
        return tf.nest.map_structure(lambda v: strat.experimental_local_results(v)[0], results)

    return step


def _all_reduce_sum(ctx, grads: list) -> list:
    """Σ over the replicas of every gradient that is not None (None stays None)."""
    present = [i for i, g in enumerate(grads) if g is not None]
    summed = ctx.all_reduce(tf.distribute.ReduceOp.SUM, [grads[i] for i in present])
    out = list(grads)
    for i, g in zip(present, summed, strict=True):
        out[i] = g
    return out


def is_chief(strat) -> bool:
    """True for the worker that saves the run: the ``chief`` task, else ``worker`` 0, or the
    only process when there is no cluster."""
    resolver = getattr(strat, "cluster_resolver", None) if strat is not None else None
    if resolver is None:
        return True
    cluster = resolver.cluster_spec().as_dict()
    if not cluster:
        return True
    if "chief" in cluster:
        return resolver.task_type == "chief"
    return resolver.task_type in (None, "worker") and (resolver.task_id or 0) == 0
