"""A trained run, loaded: its config, vocabulary and model, ready to generate and evaluate.

    run = Run("runs/my-run", weights="last")
    print(run.generate("ROMEO:", length=200, temperature=0.8)[0])
    print(run.evaluate(text="To be, or not to be")["perplexity"])

TensorFlow is imported when the model is loaded, not when this module is.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import CharLMError
from ..options.sampling import SamplingOptions, check_num_samples
from ..runs.rundir import RunDir
from ..text.corpus import read_corpus
from ..text.texts import read_options
from ..use.stops import Sample
from .inputs import to_stderr


class Run:
    """A trained run: its config, vocabulary and model, ready to generate and evaluate."""

    def __init__(self, path, weights: str = "best", model=None):
        self.dir = RunDir(path)
        self.path = self.dir.path
        self.config = self.dir.read_config()
        self.vocab = self.dir.read_vocab()
        self.model = model if model is not None else self._load_model(weights)
        self._generator = None
        self._generation_model = None
        self._scorer = None

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    def _load_model(self, weights: str):
        from ..models.lm import load_model, weights_suffix

        path, way_out = self.dir.find_weights(weights, weights_suffix(self.config))
        return load_model(self.config, len(self.vocab), path, way_out)

    @property
    def generation_model(self):
        """The model that generates, for ``charlm sample`` and ``charlm export`` alike: the
        run's weights computing in float32 (see ``LanguageModel.in_float32``), so that an
        export of a mixed_bfloat16 run writes what ``charlm sample`` writes."""
        if self._generation_model is None:
            self._generation_model = self.model.in_float32()
        return self._generation_model

    @property
    def generator(self):
        if self._generator is None:
            from ..use.generate import Generator

            self._generator = Generator(self.generation_model, self.vocab)
        return self._generator

    def generate(
        self,
        prefixes: str | list[str] | None,
        length: int | None = None,
        *,
        options: SamplingOptions | None = None,
        num_samples: int = 1,
        warn=to_stderr,
        chunk: int | None = None,
        **fields,
    ) -> list[str]:
        """``num_samples`` samples for each prefix, each starting with its prefix, drawn with
        ``options`` (a :class:`~charlm.options.sampling.SamplingOptions`; default: its defaults) and
        ``length`` and any of its fields as keywords on top, as ``charlm sample`` takes them::

            run.generate("ROMEO:", length=200, temperature=0.8, stop=["\\n\\n"])
            run.generate(["A", "B"], options=SamplingOptions(top_p=0.9, seed=1))
        """
        options = _checked(options, length, fields, num_samples)
        return self.generator.generate(
            prefixes,
            options=options,
            num_samples=num_samples,
            warn=warn,
            chunk=chunk or max(1, options.length),
        )

    def stream(
        self,
        prefixes: list[str] | None,
        length: int | None = None,
        *,
        options: SamplingOptions | None = None,
        num_samples: int = 1,
        warn=to_stderr,
        chunk: int | None = None,
        **fields,
    ):
        """Like :meth:`generate`, but yields the new text of every sample chunk by chunk (the
        first yield: the prefixes); a bad option raises before the first yield."""
        options = _checked(options, length, fields, num_samples)
        return self.generator.stream(
            prefixes, options=options, num_samples=num_samples, warn=warn, chunk=chunk
        )

    def samples(
        self,
        prefixes: list[str] | None,
        length: int | None = None,
        *,
        options: SamplingOptions | None = None,
        num_samples: int = 1,
        warn=to_stderr,
        **fields,
    ) -> list[Sample]:
        """Like :meth:`generate`, but each sample is a :class:`~charlm.use.stops.Sample`: the
        text after its prefix, the prefix, why it ended, and the options with the seed used
        (drawn when none is given): what ``charlm sample --json`` prints::

            [s.finish_reason for s in run.samples(["ROMEO:"], stop=["\\n\\n"], num_samples=2)]
        """
        options = _checked(options, length, fields, num_samples).seeded()
        rows = self.generator.start(prefixes, options, num_samples, warn)
        texts = [""] * len(rows.prefixes)
        while not rows.done:
            new = rows.advance(self.generator.chunk)
            texts = [a + b for a, b in zip(texts, new, strict=True)]
        return [
            Sample(p, t, reason, options)
            for p, t, reason in zip(rows.prefixes, texts, rows.finish_reasons, strict=True)
        ]

    def evaluate(
        self,
        text: str | None = None,
        paths=None,
        batch_size: int = 64,
        seq_len: int = 256,
        carry_state: bool = True,
        encoding: str | None = None,
        errors: str | None = None,
    ) -> dict:
        """nats/char, bits/char and perplexity on ``text``, on files ``paths`` (read with the
        run's corpus options, or ``encoding``/``errors``), or, with neither, on the run's
        held-out text."""
        if text is None and paths:
            options = read_options(self.config)
            options["encoding"] = encoding or options["encoding"]
            options["errors"] = errors or options["errors"]
            text = read_corpus(list(paths), **options)
        elif text is None:
            text = self.dir.read_val_text()
            if len(text) < 2:
                raise CharLMError(
                    f"{self.path} has no held-out text (val-fraction 0); "
                    "name a file to score: charlm eval FILE"
                )
        if self._scorer is None:
            from ..use.evaluate import Scorer

            self._scorer = Scorer(self.model)
        ids = self.vocab.encode(text)
        result = self._scorer(ids, batch_size=batch_size, seq_len=seq_len, carry_state=carry_state)
        result["unknown_chars"] = int((ids[1:] == 0).sum())
        return result

    def metrics(self) -> list[dict]:
        """The metrics history (one dict per row of metrics.csv)."""
        return self.dir.read_metrics()

    def export(
        self, fmt: str, out: str | None = None, force: bool = False, batch_size: int = 1
    ) -> Path:
        """Write this run for use without charlm (:func:`charlm.use.export.export_run`).

        Args:
            fmt: ``savedmodel`` (generates text) or ``tflite`` (one step).
            out: The folder to write (default: beside the run).
            force: Replace an existing ``out``.
            batch_size: TFLite's rows per step.

        Returns:
            The folder or file written.
        """
        from ..use.export import export_run

        return export_run(self, fmt, out=out, force=force, batch_size=batch_size)


def _checked(
    options: SamplingOptions | None, length: int | None, fields: dict, num_samples: int
) -> SamplingOptions:
    """The prologue of every way to sample: ``options`` with ``length`` and the ``fields``
    given as keywords on top, and ``num_samples``, checked before anything is generated."""
    options = SamplingOptions.of(options, length=length, **fields)
    check_num_samples(num_samples)
    return options
