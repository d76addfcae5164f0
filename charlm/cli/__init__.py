"""The ``charlm`` command: the click group ``main`` and its subcommands, one module a group.

    train.py   train                 sample.py  sample (and sample --interactive)
    runs.py    runs, info, eval      export.py  export
    serve.py   serve                 common.py  the error boundary and the shared options

Only option parsing lives here; each subcommand turns its options into library calls
(charlm.api). Problems the user can fix are printed as one line (``Error: ...``) with a
non-zero exit (common.user_errors).
"""

from __future__ import annotations

import time

import click

LAUNCHED = time.monotonic()  # a --time-budget counts from here: launch to exit

from . import export, runs, sample, serve, train  # noqa: E402 (after LAUNCHED)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="charlm")
def main():
    """charlm: train character-level language models, sample from them, measure them."""


for _command in (
    train.train,
    sample.sample,
    runs.runs,
    runs.info,
    runs.eval_,
    export.export,
    serve.serve,
):
    main.add_command(_command)
