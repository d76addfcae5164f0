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
        train.lock         flock-ed while a process trains the run (its pid in it then)
        INCOMPLETE         only until the first checkpoint of a trained step (folders.py)

Every write is atomic: a temporary name in the same folder, fsync, rename. This module holds
:class:`RunDir` and its plain-data files (config, vocabulary, corpus, record, metrics);
:mod:`.folders` names new runs, keeps ``latest`` and finds the run a command means;
:mod:`.checkpoints` writes and reads the checkpoints and weights.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from ..errors import CharLMError
from ..fsio import atomic_write, text_sha256, to_stderr
from ..metrics import FIELDS, cell
from ..models import families
from ..options.config import FORMAT_VERSION, Config
from ..options.setting import OptionError
from ..options.toml import located
from ..text.vocab import Vocab
from .checkpoints import WEIGHTS, SavedModel
from .folders import (
    CONFIG,
    claim_run_folder,
    complete_run,
    incomplete_reason,
    is_incomplete,
    mark_latest,
    unmark_latest,
)
from .lock import RunLock

RUN_RECORD = "run.json"  # {"parameters": N, "finished": bool, "step": N, "origin": {...}}
CORPUS_KEYS = ("train_chars", "val_chars", "train_sha256", "val_sha256")  # corpus.json's


def read_run_file(path: Path, way_out: str) -> str | None:
    """The text of the run file ``path``, None if it is missing; anything else that stops it
    being read (a folder in its place, bytes that are not UTF-8, no permission) is one
    CharLMError that names the file and ends with ``way_out``. Every plain-data file of a
    run is read through here, so a damaged one is never a traceback.

    >>> read_run_file(Path("/nonexistent/metrics.csv"), "retrain") is None
    True
    """
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise CharLMError(f"{path} is a folder, not the run's file; {way_out}") from None
    except UnicodeDecodeError as e:
        raise CharLMError(f"{path}: not UTF-8 text (byte {e.start}); {way_out}") from None
    except OSError as e:
        raise CharLMError(f"{path}: cannot read it ({e.strerror}); {way_out}") from None


class RunDir(SavedModel):
    """One run folder and the files in it: its plain data here, the checkpoints and weights
    in :class:`~charlm.runs.checkpoints.SavedModel`; and its life as a process trains it
    (:mod:`.folders`): claimed and locked, incomplete until its first checkpoint of a trained
    step, then the newest run. ``log`` tells what a training should hear (default stderr)."""

    def __init__(self, path: str | os.PathLike[str], log: Callable[[str], None] | None = None):
        self.path = Path(path)
        self.log = log or to_stderr
        self.lock: RunLock | None = None  # held while this process trains the run
        self.created = False  # made by this process: removed if it fails before completing

    @classmethod
    def create(cls, cfg: Config, force: bool = False, log=None) -> RunDir:
        """A new run folder for ``cfg``, incomplete and locked
        (:func:`~charlm.runs.folders.claim_run_folder`)."""
        path, lock = claim_run_folder(cfg, force, log or to_stderr)
        rundir = cls(path, log)
        rundir.lock, rundir.created = lock, True
        return rundir

    def mark_latest(self) -> None:
        """Point ``<runs_dir>/latest`` at this run, once it is complete."""
        mark_latest(self.path, self.log)

    # -- its life: locked while trained, incomplete until its first checkpoint ----------------

    def lock_for_training(self) -> None:
        """Hold this run's lock (:class:`~charlm.runs.lock.RunLock`), or raise the line naming
        the process that trains it."""
        if self.lock is None:
            self.lock = RunLock.take(self.path)

    def release(self) -> None:
        """Let other processes train this run again."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def abandon(self) -> None:
        """After a failure: remove the run if this process made it and it failed before it
        wrote any checkpoint (there is nothing in it to keep), then release it. One that
        failed later, before its first checkpoint of a trained step, stays incomplete: no
        command takes it for the newest run, and training it again under its name replaces it."""
        if self.created and self.lock is not None and self.incomplete() and not self.checkpoints():
            unmark_latest(self.path)
            shutil.rmtree(self.path, ignore_errors=True)
        self.release()

    def incomplete(self) -> bool:
        return is_incomplete(self.path)

    def complete(self) -> None:
        """The run has a checkpoint of its training: it becomes the newest run."""
        complete_run(self.path, self.log)

    def save_checkpoint(self, tf_checkpoint, step: int) -> Path:
        """:meth:`SavedModel.save_checkpoint`; the first after a trained step completes the run
        (step 0's checkpoint is only the state a failed first step rolls back to)."""
        final = super().save_checkpoint(tf_checkpoint, step)
        if step > 0:
            self.complete()
        return final

    def find_weights(self, which: str, suffix: str, flag: str = "--weights") -> tuple[Path, str]:
        """:meth:`SavedModel.find_weights`; weights missing from an incomplete run are
        explained as such."""
        try:
            return super().find_weights(which, suffix, flag)
        except CharLMError:
            if which not in WEIGHTS or not self.incomplete():
                raise
        raise CharLMError(
            f"{self.path} is incomplete ({incomplete_reason(self.path)}) and has no {which} "
            f"weights; name another run, or train this one: charlm train --resume {self.path}"
        )

    def check_resumable(self) -> None:
        """Refuse a resume that would start at step 0 over weights and metrics of an earlier
        training: a complete run whose checkpoints are gone."""
        if self.checkpoints() or self.incomplete():
            return
        names = [f"{w}{suffix}" for w in WEIGHTS for suffix in (".keras", "")]
        kept = [n for n in (*names, "metrics.csv") if (self.path / n).exists()]
        if kept:
            raise CharLMError(
                f"{self.path} has no checkpoint to resume from ({self.checkpoint_dir.name}/ is "
                f"missing or holds none) but holds {', '.join(kept)} of its training; restore "
                f"{self.checkpoint_dir.name}/, or train a new run (another --name, or --force "
                "to replace this one)"
            )

    # -- plain-data files ---------------------------------------------------------------------------

    def write_config(self, cfg: Config, version: str) -> None:
        """Write the resolved config, headed by the charlm ``version`` that trains the run."""
        header = f"charlm {version} run config: `charlm train --resume {self.path}` continues it"
        atomic_write(self.path / CONFIG, cfg.to_toml(header))

    def read_config(self) -> Config:
        path = self.path / CONFIG
        text = read_run_file(path, "restore the file or retrain the run")
        if text is None:
            raise CharLMError(f"{self.path}: {CONFIG} is missing; not a complete run")
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
        cfg = Config.from_toml_text(text, str(path))
        try:  # the family's own rules; a setting only another family takes stays readable
            families.check(cfg, settings=False)
        except OptionError as e:
            raise located(e, text, str(path)) from None
        return cfg

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

    def corpus_info(self, missing_ok: bool = False) -> dict | None:
        """corpus.json: what the run's corpus was (:meth:`EncodedCorpus.info`); None if it is
        missing and ``missing_ok``. One CharLMError naming it if it is damaged: not JSON, not
        an object, or without the keys it always holds."""
        path = self.path / "corpus.json"
        way_out = "restore it, or start a new run (a resume checks its corpus against it)"
        text = read_run_file(path, way_out)
        if text is None and missing_ok:
            return None
        try:
            info = json.loads(text) if text is not None else None
        except ValueError:
            info = None
        lacks = [k for k in CORPUS_KEYS if k not in info] if isinstance(info, dict) else []
        if not isinstance(info, dict) or lacks:
            why = f" (no {', '.join(lacks)})" if lacks else ""
            raise CharLMError(f"{path} is missing or corrupt{why}; {way_out}")
        return info

    def check_corpus(self, corpus) -> None:
        """Refuse to resume on a corpus other than the one the run started with: ``corpus``'s
        hashes (an :class:`~charlm.text.idfile.EncodedCorpus`) against corpus.json."""
        train, val = corpus.info()["train_sha256"], corpus.info()["val_sha256"]
        info = self.corpus_info()
        assert info is not None  # corpus_info gives None only when missing_ok
        if info.get("train_sha256") != train or info.get("val_sha256") != val:
            raise CharLMError(
                f"the corpus is not the one {self.path} was trained on "
                f"({info.get('train_chars')} + {info.get('val_chars')} characters); "
                "resume with the same corpus and options, or start a new run"
            )

    def read_val_text(self, missing_ok: bool = False) -> str:
        """val.txt, the held-out text ("" if it is missing and ``missing_ok``)."""
        path = self.path / "val.txt"
        text = read_run_file(path, "restore it, or name held-out text: charlm eval FILE")
        if text is None and not missing_ok:
            raise CharLMError(f"{path} is missing; name held-out text: charlm eval FILE")
        return text or ""

    # -- the record of the run ------------------------------------------------------------------

    def write_record(self, parameters: int, finished: bool, step: int) -> None:
        """Write ``run.json`` (atomically): training keeps it, ``charlm runs`` reads it. The
        run's origin (:meth:`write_origin`) stays in it."""
        record = {"parameters": int(parameters), "finished": bool(finished), "step": int(step)}
        origin = self.read_record().get("origin")
        atomic_write(
            self.path / RUN_RECORD,
            json.dumps({**record, **({"origin": origin} if origin else {})}) + "\n",
        )

    def write_origin(self, origin: dict) -> None:
        """Note in ``run.json`` the run this one started from (``charlm train --init-from``):
        ``{"run": its path, "name": ..., "step": ..., "weights": "best" or "last"}``."""
        record = {**self.read_record(), "origin": origin}
        atomic_write(self.path / RUN_RECORD, json.dumps(record) + "\n")

    def read_record(self) -> dict:
        """``run.json`` (parameters, finished, step, and origin for a run started from another's
        weights), or {} for a run trained before it existed."""
        try:
            record = json.loads((self.path / RUN_RECORD).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return record if isinstance(record, dict) else {}

    # -- metrics --------------------------------------------------------------------------------------

    def append_metrics(self, row: dict) -> None:
        path = self.path / "metrics.csv"
        new = not path.exists()
        try:
            with open(path, "a", newline="", encoding="utf-8") as f:
                w = csv.DictWriter(f, FIELDS, lineterminator="\n")
                if new:
                    w.writeheader()
                w.writerow({k: cell(row.get(k)) for k in FIELDS})
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:  # a full disk: name the file (a write error names none)
            e.filename = e.filename or str(path)
            raise

    def read_metrics(self) -> list[dict]:
        """metrics.csv's complete rows ([] if there is none yet); a damaged file (not UTF-8,
        not CSV, a step that is no whole number, a folder) is one CharLMError naming it."""
        path = self.path / "metrics.csv"
        way_out = "restore it, or move it aside (the run keeps its weights, not its history)"
        text = read_run_file(path, way_out)
        if text is None:
            return []
        try:
            rows = list(csv.DictReader(io.StringIO(text, newline="")))
        except csv.Error as e:
            raise CharLMError(f"{path}: not a metrics table ({e}); {way_out}") from None
        rows = [r for r in rows if r.get("wall_time") not in (None, "")]
        for line, row in enumerate(rows, start=2):
            if not str(row.get("step")).isdigit():
                raise CharLMError(
                    f"{path}: row {line}: step {row.get('step')!r} is not a whole number; {way_out}"
                )
        return rows

    def truncate_metrics(self, step: int) -> None:
        """Keep only complete rows up to ``step`` (a resumed run redoes what came after)."""
        rows = [r for r in self.read_metrics() if int(r["step"]) <= step]
        buf = io.StringIO()
        w = csv.DictWriter(buf, FIELDS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        atomic_write(self.path / "metrics.csv", buf.getvalue())
