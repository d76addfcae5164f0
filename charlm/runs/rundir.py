"""The run directory: everything ``sample``, ``eval`` and ``--resume`` need, written by ``train``.

::

    runs/
      latest -> 20261123-121500-lstm      the newest run (a symlink)
      20261123-121500-lstm/
        config.toml        the resolved config (plain data)
        vocab.json         the vocabulary (plain data, never pickle)
        corpus.json        sizes and sha256 of the training and held-out text
        val.txt            the held-out text, for `charlm eval --perplexity`
        ids.npy            the corpus encoded (train then held-out ids), read memory-mapped
        metrics.csv        one row per validation
        best.keras         Keras runs: best weights (safe-mode .keras file)
        last.keras         Keras runs: newest weights
        best/              scratch runs: best weights (tf.train.Checkpoint)
        checkpoints/step-000000123/   resumable state: weights, optimizer, counters, carried state
        tb/                TensorBoard event files

Every write is atomic: a temporary name in the same folder, fsync, rename. A checkpoint is a
folder renamed into place only once complete, and the one before it is deleted only after
that, so a crash at any moment leaves a loadable run.
"""

from __future__ import annotations

import atexit
import csv
import io
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from ..config import FORMAT_VERSION, Config
from ..errors import CharLMError, first_line
from ..fsio import (
    atomic_write,
    fault_point,
    fsync_dir,
    fsync_tree,
    readable_path,
    replace_path,
    temp_name,
    text_sha256,
)
from ..text.vocab import Vocab

METRIC_FIELDS = [
    "step",
    "epoch",
    "train_loss",
    "train_perplexity",
    "val_loss",
    "val_perplexity",
    "val_bits_per_char",
    "chars_per_sec",
    "lr",
    "grad_norm",
    "wall_time",
]
RUN_RECORD = "run.json"  # {"parameters": N, "finished": bool, "step": N}
WEIGHTS = ("best", "last")  # the weights a run keeps: the best validation score, and the newest
CHECKPOINT_RE = re.compile(r"^step-(\d+)$")
KEEP_CHECKPOINTS = 2


# -- finding runs --------------------------------------------------------------------------------


def resolve_run(run: str | None, runs_dir: str = "runs", flag: str = "--run") -> Path:
    """The run folder named by ``run``, the newest run in ``run`` when it is a folder of runs,
    or, with no ``run``, the newest run under ``runs_dir``. ``flag`` names the option that
    takes a run folder, for the message when there is none."""
    if run:
        path = Path(run)
        if not path.is_dir():
            raise CharLMError(
                f"{run}: no such run folder; check the path, or leave it out "
                f"for the newest run under {runs_dir}/"
            )
        if not (path / "config.toml").exists() and (path / "latest").is_symlink():
            path = _newest(path) or path  # a folder of runs, e.g. the --runs-dir of a train
    else:
        path = _newest(Path(runs_dir))
        if path is None:
            verb = "to resume" if flag == "--resume" else "found"
            raise CharLMError(
                f"no run {verb} in {runs_dir}/; train one first with `charlm "
                f"train CORPUS`, or name the run folder: {flag} DIR"
            )
    if not (path / "config.toml").is_file():
        raise CharLMError(
            f"{path}: not a charlm run (no config.toml); name a run folder "
            "written by `charlm train`, or a folder of runs"
        )
    return path


def _newest(runs_dir: Path) -> Path | None:
    """The run ``runs_dir/latest`` points at or, if that run was deleted, the run written most
    recently (relative to the working folder if inside it); None if there is no run."""
    if not (runs_dir / "latest").is_symlink():
        return None
    path = (runs_dir / "latest").resolve()
    if not path.exists():  # the newest run was deleted
        runs = [p.resolve() for p in runs_dir.iterdir() if (p / "config.toml").is_file()]
        if not runs:
            return None
        path = max(runs, key=lambda p: (p / "config.toml").stat().st_mtime)
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path


class RunDir:
    """One run folder and the files in it."""

    def __init__(self, path):
        self.path = Path(path)

    # -- creating ---------------------------------------------------------------------------------

    @classmethod
    def create(cls, cfg: Config, force: bool = False) -> RunDir:
        """A new, empty run folder for ``cfg``; an existing non-empty one is refused unless ``force``."""
        parent = Path(cfg.runs_dir)
        name = cfg.name or time.strftime("%Y%m%d-%H%M%S") + f"-{cfg.model}"
        path = parent / name
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            if not force:
                raise CharLMError(
                    f"{path} already holds a run; pass --resume to continue it, "
                    "--force to replace it, or choose another --name"
                )
            if not (path / "config.toml").is_file():
                raise CharLMError(
                    f"{path} is not a charlm run; --force replaces only runs; choose another --name"
                )
            shutil.rmtree(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CharLMError(
                f"cannot create the run folder {path}: {e.strerror}; "
                "choose another --runs-dir or --name"
            ) from None
        return cls(path)

    def mark_latest(self) -> None:
        """Point ``<runs_dir>/latest`` at this run (atomically, by renaming a new symlink)."""
        link = self.path.parent / "latest"
        tmp = self.path.parent / f".latest.tmp-{os.getpid()}"
        try:
            if tmp.is_symlink():
                tmp.unlink()
            tmp.symlink_to(self.path.name)
            os.replace(tmp, link)
        except OSError:
            pass  # no symlinks here: `--run DIR` still works

    # -- plain-data files ---------------------------------------------------------------------------

    def write_config(self, cfg: Config, version: str) -> None:
        """Write the resolved config, headed by the charlm ``version`` that trains the run."""
        header = f"# charlm {version} run config: `charlm train --resume {self.path}` continues it"
        atomic_write(self.path / "config.toml", cfg.to_toml(header))

    def read_config(self) -> Config:
        path = self.path / "config.toml"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CharLMError(f"{self.path}: config.toml is missing; not a complete run") from None
        except (OSError, UnicodeDecodeError) as e:
            raise CharLMError(
                f"{path}: cannot read ({e}); check the file and its permissions, or retrain the run"
            ) from None
        version = re.search(r"^format_version\s*=\s*(\d+)", text, re.M)
        if not version:
            raise CharLMError(
                f"{path}: no format_version line, so this is not a run config "
                "written by charlm train; restore the file or retrain the run"
            )
        if int(version.group(1)) != FORMAT_VERSION:
            raise CharLMError(
                f"{path}: run format version {version.group(1)} is not the version "
                f"this charlm reads ({FORMAT_VERSION}); use the charlm that wrote "
                "it, or retrain"
            )
        return Config.from_toml_text(text, str(path))

    def write_vocab(self, vocab: Vocab) -> None:
        vocab.save(self.path / "vocab.json")

    def read_vocab(self) -> Vocab:
        path = self.path / "vocab.json"
        if not path.is_file():
            raise CharLMError(
                f"{path} is missing; the run cannot be used without its "
                "vocabulary; restore the file or retrain the run"
            )
        vocab = Vocab.load(path)
        expected = self._corpus_json() or {}
        if expected.get("vocab_sha256") not in (None, text_sha256(vocab.to_json())):
            raise CharLMError(
                f"{path} is not the vocabulary this run was trained with (it was "
                "edited); restore the run's own vocab.json or retrain the run"
            )
        return vocab

    def write_corpus_info(self, corpus, vocab: Vocab) -> None:
        """corpus.json from ``corpus`` (an :class:`~charlm.text.idfile.EncodedCorpus`), whose id file
        and held-out text move into the run folder (ids.npy, val.txt)."""
        info = {**corpus.info(), "vocab_sha256": text_sha256(vocab.to_json())}
        corpus.place(self.path)
        atomic_write(self.path / "corpus.json", json.dumps(info, indent=1) + "\n")

    def _corpus_json(self) -> dict | None:
        """corpus.json as a dict, or None if it is missing or not a JSON object."""
        try:
            info = json.loads((self.path / "corpus.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return info if isinstance(info, dict) else None

    def corpus_info(self) -> dict:
        """corpus.json: what the run's corpus was (:meth:`EncodedCorpus.info`)."""
        info = self._corpus_json()
        if info is None:
            raise CharLMError(
                f"{self.path}/corpus.json is missing or corrupt; cannot check "
                "that the corpus is unchanged; start a new run"
            )
        return info

    def check_corpus(self, corpus) -> None:
        """Refuse to resume on a corpus other than the one the run started with: ``corpus``'s
        hashes (an :class:`~charlm.text.idfile.EncodedCorpus`) against corpus.json."""
        train, val = corpus.info()["train_sha256"], corpus.info()["val_sha256"]
        info = self.corpus_info()
        if info.get("train_sha256") != train or info.get("val_sha256") != val:
            raise CharLMError(
                f"the corpus is not the one {self.path} was trained on "
                f"({info.get('train_chars')} + {info.get('val_chars')} characters); "
                "resume with the same corpus and options, or start a new run"
            )

    def read_val_text(self) -> str:
        path = self.path / "val.txt"
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CharLMError(f"{path} is missing; name held-out text: charlm eval FILE") from None

    # -- the record of the run ------------------------------------------------------------------

    def write_record(self, parameters: int, finished: bool, step: int) -> None:
        """Write ``run.json`` (atomically): training keeps it, ``charlm runs`` reads it."""
        record = {"parameters": int(parameters), "finished": bool(finished), "step": int(step)}
        atomic_write(self.path / RUN_RECORD, json.dumps(record) + "\n")

    def read_record(self) -> dict:
        """``run.json`` (parameters, finished, step), or {} for a run trained before it existed."""
        try:
            record = json.loads((self.path / RUN_RECORD).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return record if isinstance(record, dict) else {}

    # -- metrics --------------------------------------------------------------------------------------

    def append_metrics(self, row: dict) -> None:
        path = self.path / "metrics.csv"
        new = not path.exists()
        with open(path, "a", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, METRIC_FIELDS, lineterminator="\n")
            if new:
                w.writeheader()
            w.writerow({k: _fmt(row.get(k)) for k in METRIC_FIELDS})
            f.flush()
            os.fsync(f.fileno())

    def read_metrics(self) -> list[dict]:
        path = self.path / "metrics.csv"
        if not path.exists():
            return []
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        return [r for r in rows if r.get("wall_time") not in (None, "")]

    def truncate_metrics(self, step: int) -> None:
        """Keep only complete rows up to ``step`` (a resumed run redoes what came after)."""
        rows = [r for r in self.read_metrics() if int(r["step"]) <= step]
        buf = io.StringIO()
        w = csv.DictWriter(buf, METRIC_FIELDS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        atomic_write(self.path / "metrics.csv", buf.getvalue())

    # -- checkpoints ------------------------------------------------------------------------------------

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    def checkpoints(self) -> list[tuple[int, Path]]:
        """Complete checkpoints, oldest first."""
        if not self.checkpoint_dir.is_dir():
            return []
        found = []
        for p in self.checkpoint_dir.iterdir():
            m = CHECKPOINT_RE.match(p.name)
            if m and p.is_dir():
                found.append((int(m.group(1)), p))
        return sorted(found)

    def save_checkpoint(self, tf_checkpoint, step: int) -> Path:
        """Write a ``tf.train.Checkpoint`` as ``checkpoints/step-N`` atomically; keep the previous one."""
        self.checkpoint_dir.mkdir(exist_ok=True)
        final = self.checkpoint_dir / f"step-{step:09d}"
        tmp = self.checkpoint_dir / f".tmp-step-{step:09d}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tf_checkpoint.write(str(tmp / "ckpt"))
        fault_point("checkpoint-written")
        fsync_tree(tmp)
        fault_point("checkpoint-synced")
        if final.exists():  # the same step saved again (e.g. on interrupt right after a save)
            shutil.rmtree(tmp)
            return final
        os.rename(tmp, final)
        fsync_dir(self.checkpoint_dir)
        fault_point("checkpoint-renamed")
        for _, old in self.checkpoints()[:-KEEP_CHECKPOINTS]:
            shutil.rmtree(old, ignore_errors=True)
        for stale in self.checkpoint_dir.glob(".tmp-step-*"):
            shutil.rmtree(stale, ignore_errors=True)
        return final

    def restore_checkpoint(self, tf_checkpoint, warn=print) -> int:
        """Restore the newest readable checkpoint into ``tf_checkpoint``; its step, or -1 if none."""
        errors = []
        for step, path in reversed(self.checkpoints()):
            try:
                tf_checkpoint.read(str(path / "ckpt")).assert_existing_objects_matched()
            except Exception as e:  # TF raises OpError, ValueError, IndexError, ... on bad files
                errors.append(f"{path.name}: {first_line(e)}")
                warn(
                    f"warning: checkpoint {path} is unreadable ({errors[-1]}); trying an older one"
                )
                continue
            return step
        if errors:
            raise CharLMError(
                f"{self.path}: no readable checkpoint ({'; '.join(errors)}); start a new run"
            )
        return -1

    # -- weights for sample / eval ---------------------------------------------------------------------

    def weights_path(self, which: str, suffix: str) -> Path:
        """Where the ``which`` ("best" or "last") weights of a model saving ``suffix`` files live."""
        return self.path / f"{which}{suffix}"

    def save_weights(self, model, which: str) -> None:
        """Save ``model``'s ``best`` or ``last`` weights atomically, in the model's own format."""
        final = self.weights_path(which, model.weights_suffix)
        tmp = temp_name(final, model.weights_suffix)  # Keras insists on the .keras ending
        shutil.rmtree(tmp, ignore_errors=True)
        model.save(tmp)
        fault_point("weights-written")
        fsync_tree(tmp)
        replace_path(tmp, final)

    def find_weights(self, which: str, suffix: str) -> tuple[Path, str]:
        """The saved ``which`` weights, and the way out to name if they cannot be loaded."""
        if which not in WEIGHTS:
            raise CharLMError(f"--weights must be {' or '.join(WEIGHTS)}, not '{which}'")
        other = next(w for w in WEIGHTS if w != which)
        way_out = (
            f"try --weights {other}, or retrain the run"
            if self.weights_path(other, suffix).exists()
            else "retrain the run"
        )
        path = readable_path(self.weights_path(which, suffix))
        if not path.exists():
            raise CharLMError(f"{path} is missing; the run has no {which} weights; {way_out}")
        return path, way_out


class WorkerRunDir(RunDir):
    """A non-chief worker's run folder: a temporary copy of the run's plain files (config,
    vocabulary, corpus sizes, held-out text) that every save writes into and then deletes;
    checkpoints are read from ``source``, the run folder it was given. The folder goes when
    the process exits (with ``source`` when this worker made it and it holds no checkpoint)."""

    PLAIN_FILES = ("config.toml", "vocab.json", "corpus.json", "val.txt")

    def __init__(self, source: RunDir):
        super().__init__(tempfile.mkdtemp(prefix="charlm-worker-"))
        self.source = source
        for name in self.PLAIN_FILES:
            if (source.path / name).is_file():
                shutil.copyfile(source.path / name, self.path / name)
        atexit.register(self.cleanup)

    def restore_checkpoint(self, tf_checkpoint, warn=print) -> int:
        return self.source.restore_checkpoint(tf_checkpoint, warn=warn)

    def save_checkpoint(self, tf_checkpoint, step: int) -> Path:
        final = super().save_checkpoint(tf_checkpoint, step)
        shutil.rmtree(self.checkpoint_dir, ignore_errors=True)
        return final

    def save_weights(self, model, which: str) -> None:
        super().save_weights(model, which)
        final = self.weights_path(which, model.weights_suffix)
        if final.is_dir():  # a scratch model's checkpoint folder
            shutil.rmtree(final, ignore_errors=True)
        else:
            final.unlink(missing_ok=True)

    def cleanup(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        if self.source.path.is_dir() and not self.source.checkpoints():  # its own, not the chief's
            link = self.source.path.parent / "latest"
            if link.is_symlink() and link.resolve() == self.source.path.resolve():
                link.unlink()
            shutil.rmtree(self.source.path, ignore_errors=True)


def _fmt(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return v
