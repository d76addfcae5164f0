"""Configuration: one flat, typed record of every setting of a run.

A config comes from defaults, then a TOML preset (``--config configs/tiny.toml``), then
command-line flags, each overriding the one before. The resolved config is saved as
``config.toml`` in the run directory, so a run can always be reproduced and resumed.

    >>> cfg = Config.from_toml_text('model = "gru"\\nunits = 64')
    >>> cfg.replace(seq_len=50).seq_len
    50

Unknown keys, wrong types and TOML syntax errors are :class:`CharLMError` with one line
that names the key (and the closest valid one) or the line and column.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import math
import re
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

from .errors import CharLMError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FORMAT_VERSION = 1  # bump when a run directory written before cannot be read the same way

MODELS = ("lstm", "gru", "rnn", "scratch-rnn", "scratch-gru", "scratch-lstm")
LEGACY_KEYS = {"run_dir": "runs_dir"}  # old names still read (run configs written before 0.2)
NO_LIMIT = ("0", "none", "off")  # what --time-budget takes for "no limit"


def setting(default=None, help: str = "", *, factory=None, choices=None, flag=None, aliases=()):
    """A Config field with its help text and, where it has them, its choices and flag names:
    each option is described once, here, and the CLI builds its options from it."""
    metadata = {"help": help, "choices": choices, "flag": flag, "aliases": tuple(aliases)}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Config:
    """Every setting of a run. Field names are the TOML keys; flags use dashes (``--seq-len``)."""

    # corpus
    paths: list[str] = setting(
        factory=list, help="Corpus files, folders, .zip, .gz, or - for stdin."
    )
    member: str = setting("", "Read only this member of a .zip corpus.")
    encoding: str = setting("utf-8", "Text encoding of the corpus (any Python codec).")
    errors: str = setting(
        "strict",
        "What to do with invalid bytes: strict (stop with an error), replace or ignore.",
        choices=("strict", "replace", "ignore"),
    )
    newlines: str = setting(
        "keep",
        "keep newlines, or turn them into spaces (space; the d2l lyrics recipe).",
        choices=("keep", "space"),
    )
    lowercase: bool = setting(False, "Lowercase the corpus.")
    max_chars: int = setting(0, "Keep only the first N characters of the corpus (0 = all).")
    max_input_bytes: int = setting(
        2**31, "Refuse .gz/.zip input that decompresses past this many bytes."
    )
    val_fraction: float = setting(
        0.1, "Hold out this last fraction of the corpus for validation, in [0, 1)."
    )
    val_file: str = setting("", "Held-out text from this file instead of a fraction.")

    # model
    model: str = setting(
        "lstm",
        "lstm, gru, rnn (Keras layers) or scratch-rnn, scratch-gru, scratch-lstm.",
        choices=MODELS,
    )
    layers: int = setting(2, "Number of stacked recurrent layers.")
    units: int = setting(256, "Hidden units per layer.")
    embedding_dim: int = setting(64, "Embedding size; 0 = one-hot input, as the tutorials do.")
    dropout: float = setting(0.0, "Dropout rate between layers, in [0, 1).")
    reset_after: bool = setting(
        False,
        "scratch-gru: apply the reset gate after the matmul (Keras's GRU) instead of before "
        "it (the d2l book's GRU).",
    )
    precision: str = setting(
        "float32",
        "float32, or mixed_bfloat16 (faster on CPUs with bf16; Keras models).",
        choices=("float32", "mixed_bfloat16"),
    )

    # training
    sampler: str = setting(
        "random",
        "random (shuffled windows, state reset) or consecutive (state carried).",
        choices=("random", "consecutive"),
    )
    cut: str = setting(
        "random-offset",
        "Where the sampler cuts the text: random-offset (a new random offset each epoch; d2l "
        "2nd edition) or fixed (windows at k * seq-len, streams at r * (len // batch-size); "
        "d2l 1st edition).",
        choices=("random-offset", "fixed"),
    )
    seq_len: int = setting(100, "Characters per training window (time steps).")
    batch_size: int = setting(64, "Windows per batch.")
    optimizer: str = setting("adam", "adam, sgd or rmsprop.", choices=("adam", "sgd", "rmsprop"))
    lr: float = setting(2e-3, "Learning rate.")
    lr_schedule: str = setting(
        "constant",
        "constant, or cosine decay to lr * min-lr-fraction.",
        choices=("constant", "cosine"),
    )
    warmup_steps: int = setting(0, "Linear learning-rate warm-up over this many steps.")
    min_lr_fraction: float = setting(
        0.1, "Final learning rate of the cosine schedule, as a fraction of --lr."
    )
    clip_norm: float = setting(5.0, "Clip gradients to this global norm θ (0 = off).")
    epochs: int = setting(0, "Stop after this many epochs.")
    steps: int = setting(0, "Stop after this many optimizer steps.")
    time_budget: str = setting(
        "", "Stop after this much training time, e.g. 90s, 10m, 1h30m (0 or none: no limit)."
    )
    seed: int = setting(0, "Random seed (weights, sampling order, dropout).")
    strategy: str = setting(
        "none",
        "none (one device), mirrored (every GPU, or CPU device, of this machine) or "
        "multi-worker (several machines, set up by TF_CONFIG); --batch-size is the global batch.",
        choices=("none", "mirrored", "multi-worker"),
    )
    recipe: str = setting(
        "auto",
        "With a --time-budget: auto measures this CPU and chooses the model size, "
        "batch, window, sampler, dropout and learning-rate schedule you did not set, so the "
        "run is the best it can be in that time; fixed uses the settings as they are.",
        choices=("auto", "fixed"),
    )

    # monitoring and checkpoints
    eval_every: int = setting(
        200, "Validate and log a metrics row every N steps (0 = only at epoch ends)."
    )
    eval_every_epochs: int = setting(0, "Validate and log a metrics row every N epochs.")
    eval_chars: int = setting(
        0, "Score at most this many held-out characters during training (0 = all)."
    )
    checkpoint_every: int = setting(
        0, "Save a resumable checkpoint every N steps (0 = at each validation)."
    )
    sample_every: int = setting(0, "Print samples every N steps (0 = never).")
    sample_every_epochs: int = setting(0, "Print samples every N epochs.")
    sample_prefixes: list[str] = setting(
        factory=list, help="A prefix for the periodic samples (repeatable).", flag="--sample-prefix"
    )
    sample_length: int = setting(100, "Characters in each periodic sample.")
    sample_temperature: float = setting(1.0, "Temperature of the periodic samples (0 = greedy).")

    # run directory
    runs_dir: str = setting(
        "runs",
        "Folder that holds the runs (RUNS/latest points at the newest).",
        aliases=("--run-dir",),
    )
    name: str = setting("", "Folder name of this run (default: a timestamp).")

    def replace(self, **changes) -> Config:
        """A copy with ``changes`` applied and checked."""
        return Config.from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict, source: str = "config") -> Config:
        """Build and check a config; unknown keys and wrong types are CharLMError."""
        data = canonical_keys(data)
        if str(data.get("time_budget", "")).strip().lower() in NO_LIMIT:
            data["time_budget"] = ""
        known = {f.name: f for f in fields(cls)}
        for key in data:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
                hint = (
                    f"; did you mean '{close[0]}'?"
                    if close
                    else "; the keys are the flags of `charlm train --help`, with _ for -"
                )
                raise CharLMError(f"{source}: unknown key '{key}'{hint}")
        values = {}
        for key, value in data.items():
            values[key] = _check_type(key, value, cls.__annotations__[key], source)
        cfg = cls(**values)
        cfg._validate(source)
        return cfg

    @classmethod
    def from_toml_text(cls, text: str, source: str = "config") -> Config:
        return cls.from_dict(_parse_toml(text, source), source)

    @classmethod
    def load(cls, path, overrides: dict | None = None) -> Config:
        """Read a TOML preset, then apply ``overrides`` (e.g. command-line flags)."""
        cfg = cls.from_dict(read_preset(path), str(path))
        return cfg.replace(**overrides) if overrides else cfg

    def to_toml(self, header: str = "") -> str:
        """The config as TOML text, every key present (with the format version on top)."""
        lines = [header] if header else []
        lines.append(f"format_version = {FORMAT_VERSION}")
        for f in fields(self):
            lines.append(f"{f.name} = {_toml_value(getattr(self, f.name))}")
        return "\n".join(lines) + "\n"

    # -- checks -----------------------------------------------------------------------------

    def _validate(self, source: str) -> None:
        """Check every value; ``source`` names where they came from ("" = command-line flags,
        which the messages then name as ``--seq-len``)."""

        def bad(msg):
            raise CharLMError(f"{source}: {msg}" if source else f"--{msg}")

        for key, choices in CHOICES.items():
            if getattr(self, key) not in choices:
                bad(
                    f"{key.replace('_', '-')} must be one of {', '.join(choices)}, "
                    f"not '{getattr(self, key)}'"
                )
        for key in ("layers", "units", "seq_len", "batch_size", "sample_length"):
            if getattr(self, key) < 1:
                bad(f"{key.replace('_', '-')} must be at least 1, not {getattr(self, key)}")
        for key in (
            "embedding_dim",
            "max_chars",
            "epochs",
            "steps",
            "eval_every",
            "eval_every_epochs",
            "eval_chars",
            "checkpoint_every",
            "sample_every",
            "sample_every_epochs",
            "warmup_steps",
        ):
            if getattr(self, key) < 0:
                bad(f"{key.replace('_', '-')} must be 0 or more, not {getattr(self, key)}")
        if self.max_input_bytes < 1:
            bad("max-input-bytes must be at least 1")
        if not 0.0 <= self.val_fraction < 1.0:
            bad(
                f"val-fraction must be in [0, 1), not {self.val_fraction:g}; e.g. 0.1 holds out "
                "the last 10%, 0 none"
            )
        if not 0.0 <= self.dropout < 1.0:
            bad(f"dropout must be in [0, 1), not {self.dropout}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            bad(f"lr must be a positive number, not {self.lr}")
        if not 0.0 <= self.min_lr_fraction <= 1.0:
            bad(f"min-lr-fraction must be in [0, 1], not {self.min_lr_fraction}")
        if self.clip_norm < 0 or not math.isfinite(self.clip_norm):
            bad(f"clip-norm must be 0 (off) or positive, not {self.clip_norm}")
        try:  # the periodic samples' options: checked as every sample's are
            _ = self.sample_options
        except CharLMError as e:
            bad(str(e).removeprefix("--"))
        if self.time_budget:
            parse_duration(self.time_budget, source or "--time-budget")
        if self.name and (
            self.name in (".", "..", "latest") or "/" in self.name or "\\" in self.name
        ):
            bad(
                f"name '{self.name}' is not a valid run folder name; use a plain name "
                "without / (and not latest)"
            )
        if self.precision not in self.precisions:
            bad(
                f"precision {self.precision} is for the Keras models (lstm, gru, rnn); "
                f"{self.model} trains in float32: drop the precision setting"
            )

    @staticmethod
    def help(name: str) -> str:
        """The help text of setting ``name``."""
        return next(f.metadata["help"] for f in fields(Config) if f.name == name)

    @property
    def precisions(self) -> tuple[str, ...]:
        """The precisions this model can train in: the scratch cells, float32 only."""
        return ("float32",) if self.is_scratch else CHOICES["precision"]

    @property
    def sample_options(self):
        """The :class:`~charlm.sampling.SamplingOptions` of the samples printed during
        training: ``sample_length`` characters at ``sample_temperature`` (0 = greedy), seeded
        by ``seed``; a value out of range is named as its setting (``--sample-temperature``).

        >>> Config(sample_temperature=0).sample_options.is_greedy
        True
        """
        # imported here: charlm.sampling builds its fields with setting() above
        from .sampling import SamplingOptions

        try:
            return SamplingOptions(
                length=self.sample_length, temperature=self.sample_temperature, seed=self.seed
            )
        except CharLMError as e:
            named = re.sub(r"^--(length|temperature)\b", r"--sample-\1", str(e))
            raise CharLMError(named) from None

    @property
    def is_scratch(self) -> bool:
        return self.model.startswith("scratch-")

    @functools.cached_property
    def time_budget_seconds(self) -> float | None:
        """The budget in seconds (None: no limit), parsed once per config: the trainer's clock
        reads it, and a config never changes (``replace`` makes a new one)."""
        return parse_duration(self.time_budget) if self.time_budget else None


CHOICES = {f.name: f.metadata["choices"] for f in fields(Config) if f.metadata["choices"]}


def read_preset(path) -> dict:
    """The settings a TOML preset gives, as written in it (not yet checked)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CharLMError(
            f"{path}: no such config file; check the path (the bundled presets are in configs/)"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise CharLMError(
            f"{path}: cannot read config ({e}); check the file and its permissions"
        ) from None
    return _parse_toml(text, str(path))


def _parse_toml(text: str, source: str) -> dict:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CharLMError(
            f"{source}: TOML syntax error: {e}; fix it "
            "(one `key = value` a line, strings in double quotes)"
        ) from None
    data.pop("format_version", None)
    data.pop("charlm_version", None)
    return canonical_keys(data)


def canonical_keys(values: dict) -> dict:
    """``values`` with old setting names (e.g. ``run_dir``) renamed to today's."""
    return {LEGACY_KEYS.get(k, k): v for k, v in values.items()}


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(h|m|s)")


def parse_duration(text: str, source: str = "time-budget") -> float:
    """Seconds in a duration such as ``"90"``, ``"90s"``, ``"10m"``, ``"1h30m"``.

    >>> parse_duration("1h30m")
    5400.0
    """
    s = str(text).strip().lower().replace(" ", "")
    try:
        seconds = float(s)
    except ValueError:
        seconds = None
    if seconds is None and s and _DURATION.sub("", s) == "":
        seconds = sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in _DURATION.findall(s))
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        raise CharLMError(
            f"{source}: cannot read the duration '{text}'; write e.g. 90s, 10m or 1h30m"
        )
    return seconds


def _check_type(key: str, value, annotation: str, source: str):
    def wrong(expected):
        raise CharLMError(
            f"{source}: '{key}' must be {expected}, not {json.dumps(value, default=str)}"
        )

    if annotation == "bool":
        if not isinstance(value, bool):
            wrong("true or false")
    elif annotation == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            wrong("an integer")
    elif annotation == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            wrong("a number")
        value = float(value)
    elif annotation == "str":
        if not isinstance(value, str):
            wrong("a string")
    elif annotation == "list[str]":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            wrong("a list of strings")
        value = list(value)
    return value


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return (
            repr(value)
            if math.isfinite(value)
            else ("nan" if value != value else ("inf" if value > 0 else "-inf"))
        )
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON string escapes are valid TOML
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")
