"""The budget recipe: the best model charlm can train on this corpus, in this time, on this CPU.

``charlm train CORPUS --time-budget 5m`` with no other setting runs this. It measures the
machine in the first seconds, then chooses every setting the user left unset and says why:

1. **Speed.** Real training steps of two model sizes at the recipe's batch shape give
   chars/s; other sizes are predicted from those two by a power law in the parameter count
   (the step costs ~6 FLOPs per weight per character, and small matrices run less
   efficiently, which the measured exponent captures). How they are timed, and why so:
   :mod:`charlm.training.speed`.
2. **Depth.** One layer, unless the vocabulary is an alphabet and the budget is long
   (``DEEP_SECONDS``). A second layer slows early learning, and on a large vocabulary kept
   the model at the unigram level for minutes; by 10 minutes the depth no longer matters, and
   long budgets on an alphabet keep the two layers of the 10-minute race.
3. **Width.** With T seconds left, a width H processes ``rate(H)·T`` characters. The recipe
   takes the widest H that still sees ``TOKENS_PER_PARAM`` characters per weight of its layers
   with a margin (``WIDER_MARGIN``): a wider model learns more per character, a narrower one
   sees more characters, and near the bar the narrower is kept unless the wider clears it
   clearly, so that speeds measured ~10 % apart choose the same width (two runs at the bar's
   edge once chose two widths). The embedding and output rows are not counted: each trains
   only where its character occurs, and with a large vocabulary they would make every width
   look too wide.
4. **Updates.** Short budgets are limited by the number of optimizer updates more than by
   the characters seen, so batches are small (``BATCH`` windows of ``SEQ_LEN``). The random
   sampler starts every window from a zero state. Carrying the state between batches
   (consecutive sampler, truncated BPTT) scored worse, because a model that never starts from
   zero learns no good start.
5. **Schedule.** Warm-up, then cosine decay driven by the launch's clock, ending at the budget;
   a large vocabulary takes a higher peak (1e-2: its rare characters' rows get few updates).
6. **Regularisation.** Dropout only when the budget allows many passes over the corpus.
7. **Precision.** mixed_bfloat16 only when the CPU has native bf16 and measures faster.
8. **Family.** With no ``--model``, steps 1-3 and 7 run for every family the recipe races
   (an LSTM and the transformer), and the one whose learning curve predicts the lowest val
   loss from the characters it can train by the deadline is trained
   (:mod:`charlm.training.family_choice`); the others' reasons are not printed. A challenger
   is not measured where it cannot win: its curve at ``FASTEST`` times the incumbent's
   characters does not lead (measuring a transformer cost ~13 s of a 90-second race on tiny
   Shakespeare, where its curve lies above the LSTM's), its settings refuse it, or measuring
   it would take more than ``RACE_SHARE`` of the time left (``SURE_SHARE`` where its curve
   leads even at 1/``FASTEST`` of the incumbent's characters).

What it may choose for a family (the family itself when none is given, the widths, the
precisions) is that family's :class:`~charlm.models.families.Recipe`.

The figures behind each choice are in BENCHMARKS.md, "What the budget recipe and the clock
stand on".

    cfg = choose(cfg, fixed={"model"}, vocab_size=65, train_chars=1_003_854,
                 val_chars=111_540, clock=Clock(280.0))
"""

from __future__ import annotations

import dataclasses
import math

from ..models.families import Recipe, check, family, recipe_choice
from ..options.setting import OptionError
from ..say import details
from .clock import Clock, check_time_left, training_seconds, validation_seconds
from .family_choice import (
    Plan,
    curve,
    hopeless,
    large_vocabulary,
    measuring_order,
    pick_family,
    predicted_loss,
    surely_ahead,
)
from .speed import ROUNDS, measure_rates, round_seconds
from .widths import calibration_widths, pick_width, predict_rates

# What the recipe may choose (a setting the user gave is never changed).
CHOSEN = (
    "model",
    "layers",
    "units",
    "embedding_dim",
    "dropout",
    "precision",
    "sampler",
    "seq_len",
    "batch_size",
    "lr",
    "lr_schedule",
    "warmup_steps",
    "min_lr_fraction",
    "eval_every",
    "checkpoint_every",
    "eval_chars",
)
BATCH, SEQ_LEN = 32, 64  # 2,048 characters per update
DEEP_SECONDS = 480.0  # budget left at which an alphabet's model gets a second layer
EVALS_PER_BUDGET = 10  # validations spread over the budget
RACE_SHARE = 0.08  # the most of the time left that measuring one more family may take (a
# family cost 5-6 s of a 1-minute budget, Intel Xeon 2026-12-08: at 0.1 a minute raced both on
# the Time Machine, where the curves leave the transformer no chance)
SURE_SHARE = 0.5  # the same for a family whose curve leads even at 1/FASTEST the characters
# bf16/float32 speed ratios within a machine's noise: 5 measurements each (speed.py's, 0.15 s
# rounds, Intel Xeon with AMX, 2026-12-08) read 1.15-1.37 for an LSTM 1x384, 1.01-1.20 for a
# transformer 1x256 on 5,992 characters; a threshold of 1.1 flipped the transformer's choice
BF16_BAND = (1.0, 1.3)


def pick_shape(
    vocab_size: int, budget_left: float, fixed: set[str], own: Recipe
) -> tuple[dict, str]:
    """Depth and embedding size for this vocabulary and budget (those the user did not give)
    in the family whose recipe is ``own``, and why (the depth's reason only where the recipe
    chose the depth)."""
    large = large_vocabulary(vocab_size)
    shallow, deep = own.large_depth if large else own.depth
    layers = deep if budget_left >= DEEP_SECONDS else shallow
    shape = {
        k: v
        for k, v in {"layers": layers, "embedding_dim": 128 if large else 64}.items()
        if k not in fixed
    }
    why = f"{vocab_size:,} characters, {'a large vocabulary' if large else 'an alphabet'}"
    if "layers" in shape and shallow == deep:
        why += "; a second layer kept such models at the unigram level for minutes"
    elif "layers" in shape:
        why += (
            f", {budget_left:.0f} s left: long enough for {deep} layers"
            if layers == deep
            else f", under {DEEP_SECONDS:.0f} s left: too short for more layers, which learn slower"
        )
    return shape, why


def describe_shape(shape: dict) -> str:
    """``"1 layer, embedding 64"``: the parts of ``shape`` the recipe chose."""
    parts = []
    if "layers" in shape:
        parts.append(f"{shape['layers']} layer{'s' * (shape['layers'] > 1)}")
    if "embedding_dim" in shape:
        parts.append(f"embedding {shape['embedding_dim']}")
    return ", ".join(parts)


def choose(
    cfg,
    fixed: set[str],
    vocab_size: int,
    train_chars: int,
    val_chars: int,
    clock: Clock,
    log=print,
    shape_from: str | None = None,
):
    """``cfg`` with every setting in CHOSEN that is not in ``fixed`` chosen for a run that
    must end when ``clock`` (the launch's, which the trainer goes on with) runs out; each
    choice is logged with its reason. ``shape_from``: the weights a fine-tuning starts from
    (``--init-from``), which fix the model's shape (in ``fixed``)."""
    check_time_left(cfg.time_budget, clock.budget_left(), "auto")
    say, log = log, details(log)  # the reasons are details; the choice, one line, is said
    if shape_from:
        log(
            f"recipe: the model's shape is that of {shape_from}, which fix it; the recipe "
            "chooses only what they leave open: the batch, window, learning rate and its "
            "schedule, dropout and precision"
        )
    base = {
        "batch_size": BATCH,
        "seq_len": SEQ_LEN,
        "sampler": "random",
        "lr_schedule": "cosine",
        "min_lr_fraction": 0.1,
    }
    cfg = cfg.replace(**{k: v for k, v in base.items() if k not in fixed})
    if "model" in fixed:
        plan = _plan(cfg, fixed, vocab_size, clock, log)
    else:
        plan = _race(cfg, fixed, vocab_size, clock, log)
    seconds = training_seconds(clock.budget_left())  # what the measuring left
    cfg = _schedule(
        plan.cfg,
        fixed,
        plan.rate,
        seconds,
        train_chars,
        val_chars,
        large_vocabulary(vocab_size),
        log,
    )
    say(chosen(cfg, plan.rate, seconds))
    clock.planned_steps = updates(cfg, plan.rate, seconds)
    return cfg


def chosen(cfg, rate: float, seconds: float) -> str:
    """The recipe's choice in one line: what ``charlm train`` says without ``-v``."""
    bf16 = ", bf16" if cfg.precision == "mixed_bfloat16" else ""
    return (
        f"recipe: {cfg.model} {cfg.layers}x{cfg.units}{bf16}, batch {cfg.batch_size} x "
        f"{cfg.seq_len}, lr {cfg.lr:g} {cfg.lr_schedule}, dropout {cfg.dropout:g}: "
        f"~{updates(cfg, rate, seconds):,} updates in {seconds:.0f} s (measured on this CPU; "
        "-v says why)"
    )


def updates(cfg, rate: float, seconds: float) -> int:
    """The optimizer steps ``seconds`` of training at ``rate`` chars/s make."""
    return max(1, int(rate * seconds / (cfg.batch_size * cfg.seq_len)))


def _race(cfg, fixed: set[str], vocab_size: int, clock: Clock, log) -> Plan:
    """Plan every raced family that the time left affords (in :func:`measuring_order`), log
    the choice and the chosen family's reasons."""
    incumbent = recipe_choice()
    plans: dict[str, Plan] = {}
    unraced: list[str] = []
    cost = 0.0  # the seconds planning the first family took
    for own in measuring_order(incumbent, vocab_size, clock.budget_left()):
        left = clock.budget_left()
        refusal = _refusal(cfg.replace(model=own.name))
        first = next(iter(plans.values()), None)
        if first and not refusal:
            refusal = hopeless(own, first, vocab_size, own is not incumbent)
        sure = first and surely_ahead(own, first, vocab_size)
        if first and not refusal and left * (SURE_SHARE if sure else RACE_SHARE) < cost:
            refusal = f"measuring it takes ~{cost:.0f} s of the {left:.0f} s left"
        if refusal and (first or own is not incumbent):  # the incumbent takes any settings
            unraced.append(f"{own.name} not raced: {refusal}")
            continue
        lines: list[str] = []
        plan = _plan(cfg.replace(model=own.name), fixed, vocab_size, clock, lines.append)
        plans[own.name] = dataclasses.replace(plan, lines=tuple(lines))
        cost = cost or left - clock.budget_left()
    if len(plans) == 1:
        name = next(iter(plans))
        why = "; ".join([family(name).recipe.why or _first_why(name), *unraced])
        log(f"recipe: model {name} ({why})")
    else:
        name, why = pick_family(plans, incumbent.name)
        log(f"recipe: model {why}")
    for line in plans[name].lines:
        log(line)
    return plans[name]


def _final_only() -> str:
    return "validation at the end only (one costs over 3 % of this budget), a checkpoint halfway"


def _first_why(name: str) -> str:
    return f"{name}'s curve leads at the characters this budget trains, so it was measured first"


def _refusal(cfg) -> str:
    """Why ``cfg``'s family refuses the settings given with it ("": it takes them)."""
    try:
        check(cfg)
    except OptionError as e:
        return str(e)
    return ""


def _plan(cfg, fixed: set[str], vocab_size: int, clock: Clock, log) -> Plan:
    """The depth, width and precision of ``cfg``'s family for the time left, from its speed
    measured here, and the loss its curve predicts."""
    own = family(cfg.model).recipe
    kept = fixed if own.embedding else fixed | {"embedding_dim"}  # its own to choose, or none
    shape, why = pick_shape(vocab_size, clock.budget_left(), kept, own)
    cfg = cfg.replace(**shape)
    if shape:
        log(f"recipe: {describe_shape(shape)} ({why})")
    cfg, measured = _calibrate(cfg, fixed, vocab_size, clock.budget_left(), log)
    seconds = training_seconds(clock.budget_left())
    if "units" not in fixed:
        rates = predict_rates(cfg, vocab_size, measured)
        units, why = pick_width(cfg, vocab_size, rates, seconds)
        cfg = cfg.replace(units=units)
        log(f"recipe: width {why}")
        rate = rates[units]
    else:
        rate = measured[cfg.units]
    points = curve(family(cfg.model), vocab_size)
    loss = predicted_loss(points, rate * seconds) if points else math.inf
    return Plan(cfg, rate, rate * seconds, loss, ())


def _calibrate(cfg, fixed: set[str], vocab_size: int, left: float, log):
    """Measure the training speed (and pick the precision): {width: chars/s}. The bf16 step,
    where it is a candidate, is timed in the same alternating rounds as the widths."""
    widths = (cfg.units,) if "units" in fixed else calibration_widths(cfg)
    cfgs = {(h, cfg.precision): cfg.replace(units=h) for h in widths}
    bf16, h = "mixed_bfloat16", widths[-1]
    given = "precision" in fixed  # the user's: kept, and nothing to say of it
    why = "" if given else _bf16_refusal(cfg)
    candidate = not (given or why)
    if candidate:
        cfgs[h, bf16] = cfg.replace(units=h, precision=bf16)
    rates = measure_rates(cfgs, vocab_size, round_seconds(left))
    measured = {w: rates[w, cfg.precision] for w in widths}
    shown = ", ".join(f"{cfg.layers}x{w}: {r:,.0f}" for w, r in measured.items())
    log(
        f"recipe: measured {cfg.model} training speed at batch {cfg.batch_size} x "
        f"{cfg.seq_len} on this CPU (chars/s, the median step of {ROUNDS} alternating "
        f"rounds): {shown}"
    )
    if not candidate:
        if why:
            log(f"recipe: precision float32 ({why})")
        return cfg, measured
    ratio = rates[h, bf16] / measured[h]
    chosen = pick_precision(ratio, family(cfg.model).recipe.precisions[0])
    log(
        f"recipe: precision {chosen} (native bf16: {cfg.layers}x{h} runs {ratio:.2f}x float32's "
        f"speed in it; bf16 from {BF16_BAND[1]:g}x, float32 up to {BF16_BAND[0]:g}x, "
        f"{cfg.model}'s own choice between)"
    )
    if chosen == bf16:
        return cfg.replace(precision=bf16), {w: r * ratio for w, r in measured.items()}
    return cfg, measured


def pick_precision(ratio: float, preferred: str) -> str:
    """The precision of a step that runs ``ratio`` times float32's speed in bf16: inside
    BF16_BAND, where repeated measurements of one machine fall on both sides of any
    threshold, the family's ``preferred`` one, so that noise cannot flip the choice."""
    low, high = BF16_BAND
    if ratio >= high:
        return "mixed_bfloat16"
    return "float32" if ratio <= low else preferred


def _bf16_refusal(cfg) -> str:
    """Why bf16 cannot be ``cfg``'s precision ("": it is a candidate)."""
    if "mixed_bfloat16" not in family(cfg.model).recipe.precisions:
        return f"the recipe gives {cfg.model} float32 only"
    from ..models.fastrnn import cpu_has_native_bf16

    return "" if cpu_has_native_bf16() else "this CPU has no native bfloat16"


def _schedule(
    cfg,
    fixed: set[str],
    rate: float,
    seconds: float,
    train_chars: int,
    val_chars: int,
    large_vocab: bool,
    log,
):
    """Learning rate, warm-up, dropout and validation spacing for ``seconds`` at ``rate``."""
    chars = rate * seconds
    steps = updates(cfg, rate, seconds)
    passes = chars / max(1, train_chars)
    eval_seconds = validation_seconds(val_chars, rate)
    evals = int(max(1, min(EVALS_PER_BUDGET, 0.03 * seconds / max(eval_seconds, 1e-3))))
    choice = {
        "lr": 1e-2 if large_vocab else (3e-3 if cfg.units <= 256 else 2e-3),
        "warmup_steps": max(10, steps // 50),
        "dropout": 0.0 if passes < 3 else (0.1 if passes < 8 else 0.2),
        "eval_every": max(20, steps // evals) if evals > 1 else 0,  # 0: at the end only
        "checkpoint_every": 0 if evals > 1 else max(20, steps // 2),
        "eval_chars": 0,
    }
    cfg = cfg.replace(**{k: v for k, v in choice.items() if k not in fixed})
    why = (
        "random windows, each from a zero state, train the start of a text as well as its middle"
        if cfg.sampler == "random"
        else "the state is carried between batches"
    )
    log(
        f"recipe: {cfg.sampler} sampler, batch {cfg.batch_size} x {cfg.seq_len} chars: "
        f"~{steps:,} updates in {seconds:.0f} s (short budgets gain more from updates than "
        f"from bigger batches; {why})"
    )
    log(
        f"recipe: lr {cfg.lr:g}, warm-up {cfg.warmup_steps} steps, then {cfg.lr_schedule} "
        f"decay to {cfg.min_lr_fraction:g}x, driven by the clock so it ends with the budget"
    )
    log(
        f"recipe: dropout {cfg.dropout:g} (~{passes:.1f} passes over the training text); "
        + (f"validation every {cfg.eval_every} steps" if cfg.eval_every else _final_only())
    )
    return cfg
