"""A trained run, loaded: its config, vocabulary and model, ready to generate and evaluate.

    run = Run("runs/my-run", weights="last")
    print(run.generate("ROMEO:", length=200, temperature=0.8)[0])
    print(run.evaluate(text="To be, or not to be")["perplexity"])

TensorFlow is imported when the model is loaded, not when this module is.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CharLMError
from ..options.sampling import SamplingOptions, check_num_samples
from ..runs.rundir import RunDir
from ..text.corpus import read_corpus
from ..text.texts import read_options
from ..use.stops import Sample
from .inputs import to_stderr

if TYPE_CHECKING:
    from ..models.lm import LanguageModel
    from ..use.evaluate import Scorer
    from ..use.generate import Generator


class Run:
    """A trained run: its config, vocabulary and model, ready to generate and evaluate.

    Args:
        path: The run folder.
        weights: Which saved weights to load: ``"best"`` (the lowest validation loss) or
            ``"last"`` (the newest checkpoint).
        model: A model to use instead of loading the run's weights.

    Raises:
        CharLMError: the run's config, vocabulary or weights are missing or damaged, or
            ``weights`` is neither.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        weights: str = "best",
        model: LanguageModel | None = None,
    ) -> None:
        self.dir = RunDir(path)
        self.path = self.dir.path
        self.config = self.dir.read_config()
        self.vocab = self.dir.read_vocab()
        self.model = model if model is not None else self._load_model(weights)
        self._generator: Generator | None = None
        self._generation_model: LanguageModel | None = None
        self._scorer: Scorer | None = None

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    def _load_model(self, weights: str) -> LanguageModel:
        from ..models.lm import load_model, weights_suffix

        path, way_out = self.dir.find_weights(weights, weights_suffix(self.config))
        return load_model(self.config, len(self.vocab), path, way_out)

    @property
    def generation_model(self) -> LanguageModel:
        """The model that generates, for ``charlm sample`` and ``charlm export`` alike: the
        run's weights computing in float32 (see ``LanguageModel.in_float32``), so that an
        export of a mixed_bfloat16 run writes what ``charlm sample`` writes."""
        if self._generation_model is None:
            self._generation_model = self.model.in_float32()
        return self._generation_model

    @property
    def generator(self) -> Generator:
        """The :class:`~charlm.use.generate.Generator` of :attr:`generation_model`, made at
        its first use (it compiles the sampling loop)."""
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
        warn: Callable[[str], None] = to_stderr,
        chunk: int | None = None,
        **fields: Any,
    ) -> list[str]:
        """Whole samples, as ``charlm sample`` draws them::

            run.generate("ROMEO:", length=200, temperature=0.8, stop=["\\n\\n"])
            run.generate(["A", "B"], options=SamplingOptions(top_p=0.9, seed=1))

        Args:
            prefixes: A prompt, a list of them, or None (one from the vocabulary's first
                character).
            length: Characters to generate after each prefix.
            options: A :class:`~charlm.options.sampling.SamplingOptions` (default: its
                defaults), with ``length`` and the ``fields`` on top.
            num_samples: Samples per prefix.
            warn: Told about prefix characters the model never saw.
            chunk: Characters generated per call of the sampling loop.
            **fields: Any field of SamplingOptions (``temperature=0.5``).

        Returns:
            ``num_samples`` samples per prefix, each starting with its prefix.

        Raises:
            OptionError: an option out of range, or an empty prefix, before anything runs.
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
        warn: Callable[[str], None] = to_stderr,
        chunk: int | None = None,
        **fields: Any,
    ) -> Iterator[list[str]]:
        """:meth:`generate`'s samples, chunk by chunk.

        Args:
            prefixes, length, options, num_samples, warn, chunk, **fields: As :meth:`generate`.

        Returns:
            An iterator of the new text of every sample, chunk by chunk; its first item is
            the prefixes.

        Raises:
            OptionError: an option out of range, when called (before the first item).
        """
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
        warn: Callable[[str], None] = to_stderr,
        **fields: Any,
    ) -> list[Sample]:
        """:meth:`generate`'s samples with what ``charlm sample --json`` prints of them::

            [s.finish_reason for s in run.samples(["ROMEO:"], stop=["\\n\\n"], num_samples=2)]

        Args:
            prefixes, length, options, num_samples, warn, **fields: As :meth:`generate`.

        Returns:
            One :class:`~charlm.use.stops.Sample` per sample: the text after its prefix, the
            prefix, why it ended, and the options with the seed used (drawn when none is given).

        Raises:
            OptionError: an option out of range, or an empty prefix, before anything runs.
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
        paths: Iterable[str] | None = None,
        batch_size: int = 64,
        seq_len: int = 256,
        carry_state: bool = True,
        encoding: str | None = None,
        errors: str | None = None,
    ) -> dict:
        """How well the model predicts a text.

        Args:
            text: The text to score.
            paths: Without ``text``: files to score, read with the run's corpus options.
                With neither: the run's held-out text.
            batch_size: Streams scored at once.
            seq_len: Characters per stream per call.
            carry_state: Carry each stream's state from one call to the next.
            encoding: The encoding of ``paths`` (default: the run's).
            errors: What to do with their invalid bytes (default: the run's).

        Returns:
            ``nats_per_char``, ``bits_per_char``, ``perplexity``, ``chars`` (scored) and
            ``unknown_chars`` (characters the vocabulary lacks).

        Raises:
            CharLMError: the text is missing, unreadable or shorter than 2 characters.
        """
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
        """The metrics history.

        Returns:
            One dict per row of metrics.csv.
        """
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

        Raises:
            CharLMError: an unknown ``fmt``, a ``batch_size`` under 1, or an ``out`` that
                exists (a folder may be replaced with ``force``).
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
