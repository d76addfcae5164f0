"""Keep training on new text: ``charlm train NEW_TEXT --init-from RUN``.

The new run takes RUN's model shape and weights, grows RUN's vocabulary by the new text's
characters (old ids keep their rows, bit for bit; new rows start as a fresh model's), starts a
fresh optimizer, and notes where it came from.
"""

from __future__ import annotations

import json
import math
import textwrap

import forked
import numpy as np
import pytest
from conftest import CORPORA, TINY, copy_run, run_cli, tree_snapshot
from test_distribute import MIRRORED, assert_all_close, load_npz
from test_resume import assert_same_weights

import charlm
from charlm.api import prepare
from charlm.errors import CharLMError
from charlm.models.lm import build_model
from charlm.options.config import SHAPE_KEYS
from charlm.training.report import validate

SHAKESPEARE, TIME_MACHINE = CORPORA / "tinyshakespeare.txt", CORPORA / "timemachine.txt"
SOURCE = dict(TINY, steps=300, max_chars=100_000, eval_every=100, eval_chars=4000, seed=1)
# the same short budget for the fine-tuning and the fresh model it is measured against
BUDGET = dict(TINY, steps=60, max_chars=30_000, eval_chars=4000, seed=2)
# TINY's training settings, for the runs whose shape comes from the run they start from
TRAINING = {k: v for k, v in TINY.items() if k not in SHAPE_KEYS}
NEW_LINE = "Zürich: naïve café, señor!\n"  # ü, ï, é, ñ: none is in Shakespeare


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A tiny LSTM trained on Shakespeare, once for the module: the run every test starts from."""
    home = tmp_path_factory.mktemp("finetune")
    run = charlm.train(
        [SHAKESPEARE], name="shakespeare", runs_dir=str(home / "runs"), progress=False, **SOURCE
    )
    return run.path


def start_and_end(tmp_path, name: str, **settings) -> tuple[float, float, int]:
    """The held-out loss on The Time Machine of a run's model before its first step and after
    its BUDGET of steps, and its vocabulary's size."""
    trainer = prepare(
        [TIME_MACHINE],
        name=name,
        runs_dir=str(tmp_path / "runs"),
        progress=False,
        log=lambda _: None,
        **{**BUDGET, **settings},
    )
    start = validate(trainer.score, trainer.val_ids, trainer.cfg)["nats_per_char"]
    trainer.fit()
    return start, float(trainer.rundir.read_metrics()[-1]["val_loss"]), trainer.model.vocab_size


def test_fine_tuning_starts_below_a_guess_and_ends_lower_than_a_fresh_model_of_the_same_shape(
    source, tmp_path
):
    fresh = start_and_end(tmp_path, "fresh")
    tuned = start_and_end(tmp_path, "tuned", init_from=source)
    print(
        f"val loss on The Time Machine, start -> {BUDGET['steps']} steps: fresh {fresh}, "
        f"fine-tuned {tuned}"
    )
    # a fresh model starts at the unigram's loss (its output bias is counted), the weights
    # of a small model of Shakespeare well below a guess among the characters ...
    assert tuned[0] < math.log(tuned[2]) - 0.3
    assert fresh[0] < math.log(fresh[2]) - 0.3
    assert tuned[1] < fresh[1] - 0.1  # ... and they end well below the fresh model


def assert_old_rows_kept(new_variables, old_variables, old_size: int) -> int:
    """Every weight of the old model is in the new one bit for bit: whole, or as the first
    ``old_size`` rows (or columns) of a tensor that grew with the vocabulary; how many grew."""
    grew = 0
    for new, old in zip(new_variables, old_variables, strict=True):
        new, old = new.numpy(), old.numpy()
        if new.shape != old.shape:
            axis = next(
                i for i, (a, b) in enumerate(zip(new.shape, old.shape, strict=True)) if a != b
            )
            new = np.take(new, range(old_size), axis=axis)
            grew += 1
        np.testing.assert_array_equal(new, old)
    return grew


def grown_run(source, tmp_path, **settings):
    """The trainer of a run started from ``source`` on NEW_LINE (before its first step), and
    what it said."""
    text = tmp_path / "new.txt"
    text.write_text(NEW_LINE * 50, encoding="utf-8")
    lines = []
    trainer = prepare(
        [text],
        init_from=source,
        steps=1,
        runs_dir=str(tmp_path / "runs"),
        log=lines.append,
        progress=False,
        **{**TRAINING, **settings},
    )
    return trainer, "\n".join(lines)


def test_an_old_ids_rows_are_bit_identical_and_new_ids_start_as_a_fresh_models(source, tmp_path):
    trainer, said = grown_run(source, tmp_path)
    old, vocab = charlm.load(source), trainer.rundir.read_vocab()
    n = len(old.vocab)
    assert vocab.chars[:n] == old.vocab.chars  # every old id keeps its number
    assert set(vocab.chars[n:]) == set("Zïñüé") - set(old.vocab.chars)
    assert f"vocabulary: {len(vocab) - n} characters added to shakespeare's {n - 1} (" in said
    variables = trainer.model.trainable_variables
    assert assert_old_rows_kept(variables, old.model.trainable_variables, n) == 3
    fresh = build_model(trainer.cfg, len(vocab)).trainable_variables  # the same seed
    (embedding, *_, kernel, bias), (fresh_embedding, *_, fresh_kernel, _) = variables, fresh
    np.testing.assert_array_equal(embedding.numpy()[n:], fresh_embedding.numpy()[n:])
    np.testing.assert_array_equal(kernel.numpy()[:, n:], fresh_kernel.numpy()[:, n:])
    assert not bias.numpy()[n:].any()  # a fresh Dense layer's bias: zeros


@pytest.mark.parametrize(
    "model, embedding_dim, grown", [("scratch-gru", 0, 3 + 2), ("scratch-lstm", 8, 1 + 2)]
)
def test_a_scratch_runs_old_rows_are_kept_with_one_hot_or_embedded_input(
    tmp_path, model, embedding_dim, grown
):
    base = charlm.train(
        [SHAKESPEARE],
        model=model,
        name="base",
        steps=3,
        max_chars=5000,
        runs_dir=str(tmp_path / "runs"),
        progress=False,
        log=lambda _: None,
        **dict(TINY, embedding_dim=embedding_dim),
    )
    trainer, said = grown_run(base.path, tmp_path)
    assert trainer.cfg.model == model and trainer.cfg.embedding_dim == embedding_dim
    old = charlm.load(base.path)
    n = len(old.vocab)
    assert trainer.model.vocab_size > n
    # one-hot input grows the input rows of the first layer's three W_x, an embedding its E;
    # both grow the output W_hq and b_q
    assert (
        assert_old_rows_kept(trainer.model.trainable_variables, old.model.trainable_variables, n)
        == grown
    )
    trainer.fit()
    assert np.isfinite(charlm.load(trainer.rundir.path).evaluate()["nats_per_char"])


def test_a_run_whose_text_adds_characters_samples_them(source, tmp_path):
    text = tmp_path / "new.txt"
    text.write_text(NEW_LINE * 200, encoding="utf-8")
    run = charlm.train(
        [text],
        init_from=source,
        steps=150,
        val_fraction=0.05,
        **{**TRAINING, "lr": 0.02},
        runs_dir=str(tmp_path / "runs"),
        progress=False,
        log=lambda _: None,
    )
    sample = run.generate("Zürich: ", length=2 * len(NEW_LINE), temperature=0)[0]
    assert "naïve café, señor!" in sample


@pytest.mark.parametrize("ids", ["kept", "damaged"])
def test_a_fine_tuned_run_resumes_exactly(source, tmp_path, ids):
    """Also when its id file must be encoded again: in its own (grown) vocabulary."""
    settings = dict(
        BUDGET,
        init_from=source,
        eval_every=7,
        max_chars=5000,
        runs_dir=str(tmp_path / "runs"),
        progress=False,
        log=lambda _: None,
    )
    whole = charlm.train([TIME_MACHINE], name="whole", **{**settings, "steps": 20})
    charlm.train([TIME_MACHINE], name="parts", **{**settings, "steps": 9})
    if ids == "damaged":  # in-range ids changed: the resume encodes the corpus again
        damaged = np.load(tmp_path / "runs/parts/ids.npy")
        damaged[::7] = 0
        np.save(tmp_path / "runs/parts/ids.npy", damaged)
    resumed = charlm.train(
        resume=tmp_path / "runs/parts", steps=20, progress=False, log=lambda _: None
    )
    assert_same_weights(whole, resumed)
    assert np.array_equal(np.load(whole.path / "ids.npy"), np.load(resumed.path / "ids.npy"))
    record = json.loads((resumed.path / "run.json").read_text())
    assert record["origin"]["name"] == "shakespeare" and record["finished"] is True


def test_runs_and_info_show_where_a_run_came_from(source, tmp_path):
    runs = tmp_path / "runs"
    copy_run(source, runs / "shakespeare")
    flags = "--name tuned --steps 2 --max-chars 5000 --seq-len 16 --batch-size 8"
    code, _, err = run_cli(
        "train", TIME_MACHINE, "--init-from", "shakespeare", "--init-weights", "last",
        "--runs-dir", runs, *flags.split(),
    )  # fmt: skip
    assert code == 0, err
    steps = SOURCE["steps"]
    assert f"starting from {runs}/shakespeare's last weights from step {steps}" in err
    assert "the optimizer starts fresh" in err
    record = json.loads((runs / "tuned/run.json").read_text())["origin"]
    assert record == {
        "run": str((runs / "shakespeare").resolve()),
        "name": "shakespeare",
        "step": steps,
        "weights": "last",
    }
    code, out, _ = run_cli("runs", "--runs-dir", runs)
    header, *rows = out.splitlines()
    assert "FROM" in header
    assert f"shakespeare@{steps}" in next(r for r in rows if r.startswith("tuned"))
    code, out, _ = run_cli("info", runs / "tuned")
    assert (
        f"started from: {(runs / 'shakespeare').resolve()}, its last weights at step {steps}" in out
    )
    code, out, _ = run_cli("runs", "--runs-dir", runs, "--json")
    by_name = {r["name"]: r for r in json.loads(out)}
    assert by_name["tuned"]["origin"]["step"] == steps and by_name["shakespeare"]["origin"] is None


def test_the_best_weights_are_the_default_and_their_step_is_the_best_validations(source, tmp_path):
    lines = []
    prepare(
        [TIME_MACHINE],
        init_from=source,
        steps=1,
        max_chars=3000,
        progress=False,
        runs_dir=str(tmp_path / "runs"),
        log=lines.append,
        **TRAINING,
    )
    rows = charlm.load(source).metrics()
    best = min(rows, key=lambda r: float(r["val_loss"]))["step"]
    assert f"{source}'s best weights from step {best} (lstm 1x32, embedding 16)" in "\n".join(lines)


def test_the_recipe_chooses_only_what_the_weights_leave_open(source, tmp_path):
    lines = []
    run = charlm.train(
        [TIME_MACHINE],
        init_from=source,
        time_budget="14s",
        max_chars=20_000,
        runs_dir=str(tmp_path / "runs"),
        log=lines.append,
        progress=False,
    )
    said = "\n".join(lines)
    assert f"recipe: the model's shape is that of {source}'s best weights" in said
    assert "chooses only what they leave open" in said
    assert "recipe: width" not in said and "recipe: model lstm" not in said
    assert "recipe: 1 layer" not in said and "recipe: embedding" not in said
    assert (run.config.layers, run.config.units, run.config.embedding_dim) == (1, 32, 16)
    assert run.config.lr_schedule == "cosine"  # chosen by the recipe


def one_line_error(tmp_path, *args) -> str:
    """Run ``charlm train ARGS`` and check that it failed in one line and created nothing."""
    before = tree_snapshot(tmp_path)
    code, out, err = run_cli("train", *args, cwd=tmp_path)
    assert code != 0 and out == ""
    assert err.startswith("Error: ") and err.count("\n") == 1, err
    assert tree_snapshot(tmp_path) == before
    return err


def test_a_shape_flag_that_disagrees_with_the_run_is_one_line_naming_it(source, tmp_path):
    err = one_line_error(tmp_path, TIME_MACHINE, "--init-from", source, "--units", "64")
    assert f"--units 64 disagrees with {source}, whose model has units 32" in err
    err = one_line_error(tmp_path, TIME_MACHINE, "--init-from", source, "--model", "gru")
    assert "--model gru disagrees" in err and "model lstm" in err
    err = one_line_error(tmp_path, TIME_MACHINE, "--init-from", source, "--reset-after")
    assert "--reset-after disagrees" in err and "reset-after false" in err
    preset = tmp_path / "p.toml"
    preset.write_text("embedding_dim = 8\nlr = 0.01\n")
    err = one_line_error(tmp_path, TIME_MACHINE, "--init-from", source, "--config", preset)
    assert f"{preset} sets embedding_dim = 8, which disagrees" in err
    assert "embedding-dim 16" in err
    run = charlm.train(
        [TIME_MACHINE],
        init_from=source,
        units=32,
        layers=1,
        steps=1,
        max_chars=3000,
        runs_dir=str(tmp_path / "ok"),
        progress=False,
        **TRAINING,
        log=lambda _: None,
    )  # flags that agree are fine
    assert run.config.units == 32


def test_bad_init_from_inputs_are_one_line_and_create_nothing(source, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    err = one_line_error(tmp_path, TIME_MACHINE, "--init-from", plain)
    assert "not a charlm run" in err
    err = one_line_error(tmp_path, TIME_MACHINE, "--init-from", "nowhere")
    assert "--init-from nowhere: no such run folder" in err
    broken = copy_run(source, tmp_path / "broken")
    (broken / "best.keras").write_bytes((broken / "best.keras").read_bytes()[:100])
    err = one_line_error(tmp_path, TIME_MACHINE, "--init-from", broken)
    assert "truncated or corrupt" in err and "try --init-weights last" in err
    (broken / "vocab.json").unlink()
    err = one_line_error(tmp_path, TIME_MACHINE, "--init-from", broken)
    assert "vocab.json is missing" in err
    err = one_line_error(tmp_path, "--resume", source, "--init-from", source)
    assert "pass only one of them" in err
    err = one_line_error(tmp_path, TIME_MACHINE, "--init-weights", "last")
    assert "--init-weights chooses the weights of --init-from" in err


def test_a_new_run_may_not_replace_the_run_it_starts_from(source, tmp_path):
    copy = copy_run(source, tmp_path / "runs/shakespeare")
    before = tree_snapshot(copy)
    with pytest.raises(CharLMError, match="would replace .* the run --init-from starts from"):
        charlm.train(
            [TIME_MACHINE],
            init_from=copy,
            name="shakespeare",
            force=True,
            runs_dir=str(tmp_path / "runs"),
            steps=1,
            progress=False,
        )
    assert tree_snapshot(copy) == before


FINE_TUNE_MIRRORED = MIRRORED.split("import charlm")[0] + textwrap.dedent("""
    import charlm
    corpus, out, settings = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    base = charlm.train([corpus], steps=5, name="base", runs_dir=out, progress=False,
                        **settings)
    for strategy in ("none", "mirrored"):
        kept = {k: settings[k] for k in ("seq_len", "batch_size", "optimizer", "lr")}
        run = charlm.train([sys.argv[4]], init_from=base.path, steps=6, strategy=strategy,
                           name=strategy, runs_dir=out, progress=False, seed=4,
                           eval_every=3, **kept)
        np.savez(f"{out}/{strategy}.npz", *[v.numpy() for v in run.model.trainable_variables])
""")


@pytest.mark.parametrize("model", ["lstm", "scratch-gru", "gpt"])
def test_fine_tuning_under_a_strategy_trains_the_same_weights_as_one_device(model, tmp_path):
    new_text = tmp_path / "new.txt"
    new_text.write_text(NEW_LINE * 40, encoding="utf-8")
    settings = dict(TINY, model=model, max_chars=4000, optimizer="sgd", lr=0.5, seed=3)
    code, _, err = forked.run(
        [SHAKESPEARE, tmp_path / "runs", json.dumps(settings), new_text], code=FINE_TUNE_MIRRORED
    )
    assert code == 0, err[-3000:]
    one, two = (load_npz(tmp_path / "runs" / f"{s}.npz") for s in ("none", "mirrored"))
    assert_all_close(two, one)
    assert json.loads((tmp_path / "runs/mirrored/run.json").read_text())["origin"]["name"] == "base"
