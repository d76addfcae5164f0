"""Configuration: one flat, typed record of every setting of a run.

A config comes from defaults, then a TOML preset (``--config configs/tiny.toml``), then
command-line flags, each overriding the one before. The resolved config is saved as
``config.toml`` in the run directory, so a run can always be reproduced and resumed.

    >>> cfg = Config.from_toml_text('model = "gru"\\nunits = 64')
    >>> cfg.replace(seq_len=50).seq_len
    50

Unknown keys, wrong types and values out of range are an
:class:`~charlm.options.setting.OptionError` that names the field; read from TOML, one line
that names the file, the line and the key as written there (a syntax error: the line and
column).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .rules import SAMPLE_OPTIONS, check_keys, check_type, parse_duration, validate
from .sampling import SamplingOptions
from .setting import OptionError, help_of, setting
from .toml import canonical_keys, located, parse_toml, read_text, toml_comment, toml_value

FORMAT_VERSION = 1  # bump when a run directory written before cannot be read the same way

WEIGHTS = ("best", "last")  # the weights a run keeps: the best validation score, and the newest
RUNS_DIR = "runs"  # the folder of runs when none is named: every default asks here
NO_LIMIT = ("0", "none", "off")  # what --time-budget takes for "no limit"
# the deepest stack: a transformer of 64 blocks takes ~8 s to build on a 2-core Xeon and 128
# twice that before its step is traced; 100,000 layers built for minutes before any check
MAX_LAYERS = 64
# the sections of `charlm train --help`: every field in one (tests/test_option_faces.py checks)
SECTIONS = {
    "Corpus": (
        "paths", "member", "encoding", "errors", "newlines", "lowercase", "max_chars",
        "max_input_bytes", "val_fraction", "val_file",
    ),
    "Model": (
        "model", "layers", "units", "embedding_dim", "dropout", "reset_after", "context",
        "heads", "precision", "output_bias",
    ),
    "Training": (
        "sampler", "cut", "seq_len", "batch_size", "optimizer", "lr", "lr_schedule",
        "warmup_steps", "min_lr_fraction", "clip_norm", "epochs", "steps", "seed",
    ),
    "Budget": ("time_budget", "recipe"),
    "Devices": ("strategy", "peer_timeout"),
    "Monitoring": (
        "eval_every", "eval_every_epochs", "eval_chars", "checkpoint_every", "sample_every",
        "sample_every_epochs", "sample_prefixes", "sample_length", "sample_temperature",
    ),
    "Output": ("runs_dir", "name"),
}  # fmt: skip


@dataclass(frozen=True)
class Config:
    """Every setting of a run. Field names are the TOML keys; flags use dashes (``--seq-len``)."""

    # corpus
    paths: list[str] = setting(
        factory=list,
        help="Corpus files, folders, .zip, .gz, or - for stdin.",
        resumable=True,
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
    max_chars: int = setting(
        0, "Keep only the first N characters of the corpus (0 = all).", least=0
    )
    max_input_bytes: int = setting(
        2**31,
        "Refuse .gz/.zip input that decompresses past this many bytes.",
        resumable=True,
    )
    val_fraction: float = setting(
        0.1, "Hold out this last fraction of the corpus for validation, in [0, 1)."
    )
    val_file: str = setting("", "Held-out text from this file instead of a fraction.")

    # model
    model: str = setting(
        "lstm",
        "The model family, one of the table's (charlm.models.families): the recurrent Keras "
        "layers, the scratch cells written from their equations, or a transformer.",
    )
    layers: int = setting(
        2,
        f"Number of stacked layers (recurrent layers, or blocks), at most {MAX_LAYERS}.",
        least=1,
        most=MAX_LAYERS,
    )
    units: int = setting(256, "Hidden units per layer (a transformer's width).", least=1)
    embedding_dim: int = setting(
        64, "Embedding size; 0 = one-hot input, as the tutorials do.", least=0
    )
    dropout: float = setting(0.0, "Dropout rate between layers, in [0, 1).")
    reset_after: bool = setting(
        False,
        "scratch-gru: apply the reset gate after the matmul (Keras's GRU) instead of before "
        "it (the d2l book's GRU).",
    )
    context: int = setting(
        64,
        "gpt: the characters each one attends to, itself included (the block size); "
        "generation slides this window past it.",
        least=1,
    )
    heads: int = setting(4, "gpt: attention heads; they divide --units.", least=1)
    precision: str = setting(
        "float32",
        "float32, or mixed_bfloat16 (faster on CPUs with bf16; Keras models).",
        choices=("float32", "mixed_bfloat16"),
    )
    output_bias: str = setting(
        "unigram",
        "Where a new model's output bias starts: unigram (the training text's log-frequencies, "
        "so its first step predicts as counting characters does) or zero (the tutorials').",
        choices=("unigram", "zero"),
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
    seq_len: int = setting(100, "Characters per training window (time steps).", least=1)
    batch_size: int = setting(64, "Windows per batch.", least=1)
    optimizer: str = setting("adam", "adam, sgd or rmsprop.", choices=("adam", "sgd", "rmsprop"))
    lr: float = setting(2e-3, "Learning rate.")
    lr_schedule: str = setting(
        "constant",
        "constant, or cosine decay to lr * min-lr-fraction.",
        choices=("constant", "cosine"),
    )
    warmup_steps: int = setting(0, "Linear learning-rate warm-up over this many steps.", least=0)
    min_lr_fraction: float = setting(
        0.1, "Final learning rate of the cosine schedule, as a fraction of --lr."
    )
    clip_norm: float = setting(5.0, "Clip gradients to this global norm θ (0 = off).")
    epochs: int = setting(0, "Stop after this many epochs.", least=0, resumable=True)
    steps: int = setting(0, "Stop after this many optimizer steps.", least=0, resumable=True)
    time_budget: str = setting(
        "",
        "Stop after this much training time, e.g. 90s, 10m, 1h30m (0 or none: no limit).",
        resumable=True,
    )
    seed: int = setting(0, "Random seed (weights, sampling order, dropout).")
    strategy: str = setting(
        "none",
        "none (one device), mirrored (every GPU, or CPU device, of this machine) or "
        "multi-worker (several machines, set up by TF_CONFIG); --batch-size is the global batch.",
        choices=("none", "mirrored", "multi-worker"),
    )
    peer_timeout: int = setting(
        120,
        "multi-worker: seconds to wait for every worker of TF_CONFIG to join before giving up.",
        least=1,
        resumable=True,
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
        200,
        "Validate and log a metrics row every N steps (0 = only at epoch ends).",
        least=0,
        resumable=True,
    )
    eval_every_epochs: int = setting(
        0, "Validate and log a metrics row every N epochs.", least=0, resumable=True
    )
    eval_chars: int = setting(
        0,
        "Score at most this many held-out characters during training (0 = all).",
        least=0,
        resumable=True,
    )
    checkpoint_every: int = setting(
        0,
        "Save a resumable checkpoint every N steps (0 = at each validation).",
        least=0,
        resumable=True,
    )
    sample_every: int = setting(
        0, "Print samples every N steps (0 = never).", least=0, resumable=True
    )
    sample_every_epochs: int = setting(0, "Print samples every N epochs.", least=0, resumable=True)
    sample_prefixes: list[str] = setting(
        factory=list,
        help="A prefix for the periodic samples (repeatable).",
        flag="--sample-prefix",
        resumable=True,
    )
    sample_length: int = setting(
        100, "Characters in each periodic sample.", least=1, resumable=True
    )
    sample_temperature: float = setting(
        1.0, "Temperature of the periodic samples (0 = greedy).", resumable=True
    )

    # run directory
    runs_dir: str = setting(
        RUNS_DIR,
        "Folder that holds the runs (RUNS/latest points at the newest).",
        aliases=("--run-dir",),
        resumable=True,
    )
    name: str = setting("", "Folder name of this run (default: a timestamp).", resumable=True)

    def replace(self, **changes: Any) -> Config:
        """A copy with some settings changed, checked as :meth:`from_dict` checks.

        Args:
            **changes: Setting names and their new values.

        Returns:
            The new config (this one is frozen).

        Raises:
            OptionError: an unknown key, a value of a wrong type or out of range.
        """
        return Config.from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        """Every setting and its value (lists copied), as :meth:`from_dict` takes them.

        Returns:
            A dict with one item per field.
        """
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Config:
        """A config of the settings in ``data`` (the others at their defaults), checked.

        Args:
            data: Setting names (old names too, e.g. ``run_dir``) and their values.

        Returns:
            The config.

        Raises:
            OptionError: the first unknown key, value of a wrong type or value out of range,
                naming its field.
        """
        data = canonical_keys(data)
        if str(data.get("time_budget", "")).strip().lower() in NO_LIMIT:
            data["time_budget"] = ""
        check_keys(data, [f.name for f in fields(cls)])
        cfg = cls(**{k: check_type(k, v, cls.__annotations__[k]) for k, v in data.items()})
        validate(cfg)
        return cfg

    @classmethod
    def from_toml_text(cls, text: str, source: str = "config") -> Config:
        """A config from the text of a TOML file.

        Args:
            text: The TOML text (a preset, or a run's config.toml).
            source: What the text is called in messages (a file's path).

        Returns:
            The config, checked.

        Raises:
            CharLMError: a syntax error, or a bad setting named by ``source``, its line and its
                key as written there: ``"tiny.toml, line 3: units must be at least 1, not 0"``.
        """
        try:
            return cls.from_dict(parse_toml(text, source))
        except OptionError as e:
            raise located(e, text, source) from None

    @classmethod
    def load(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
        """A config from a TOML preset, with ``overrides`` on top.

        Args:
            path: The TOML file.
            overrides: Settings that win over the file's (e.g. command-line flags).

        Returns:
            The config, checked.

        Raises:
            CharLMError: the file cannot be read or has a bad setting (its line named).
            OptionError: a bad setting in ``overrides``.
        """
        cfg = cls.from_toml_text(read_text(path), str(path))
        return cfg.replace(**overrides) if overrides else cfg

    def to_toml(self, header: str = "") -> str:
        """The config as TOML text, as a run's config.toml holds it.

        Args:
            header: The text of a comment to put first, if any (any text: characters a
                comment may not hold are escaped).

        Returns:
            The text: the format version, then every setting, one a line.
        """
        lines = [toml_comment(header)] if header else []
        lines.append(f"format_version = {FORMAT_VERSION}")
        for f in fields(self):
            lines.append(f"{f.name} = {toml_value(getattr(self, f.name))}")
        return "\n".join(lines) + "\n"

    @staticmethod
    def help(name: str) -> str:
        """The help text of a setting.

        Args:
            name: The setting's field name (``seq_len``).

        Returns:
            Its help, as ``--help`` shows it.
        """
        return help_of(Config, name)

    @property
    def sample_options(self) -> SamplingOptions:
        """The :class:`~charlm.options.sampling.SamplingOptions` of the samples printed during
        training: ``sample_length`` characters at ``sample_temperature`` (0 = greedy), seeded
        by ``seed`` (checked with the config: :mod:`charlm.options.rules`).

        >>> Config(sample_temperature=0).sample_options.is_greedy
        True
        """
        return SamplingOptions(**{o: getattr(self, k) for o, k in SAMPLE_OPTIONS.items()})

    @functools.cached_property
    def time_budget_seconds(self) -> float | None:
        """The budget in seconds (None: no limit), parsed once per config: the trainer's clock
        reads it, and a config never changes (``replace`` makes a new one)."""
        return parse_duration(self.time_budget) if self.time_budget else None


CHOICES = {f.name: f.metadata["choices"] for f in fields(Config) if f.metadata["choices"]}
# the model's shape: what a run started from another's weights (--init-from) takes from it
SHAPE_KEYS = ("model", "layers", "units", "embedding_dim", "reset_after", "context", "heads")
# the settings a resumed run may change: limits and monitoring, never the model or the data
RESUMABLE_KEYS = frozenset(f.name for f in fields(Config) if f.metadata["resumable"])
