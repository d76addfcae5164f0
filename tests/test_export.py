"""charlm export: a SavedModel that generates text where charlm is not installed, and a
one-step TFLite model that computes what the model's own step computes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import CORPORA, TINY

import charlm
from charlm.cli import main
from charlm.options.sampling import SamplingOptions
from charlm.use.loop import CHUNK

# a run of each model, and one trained in mixed_bfloat16 (the recipe's choice on a CPU with bf16)
RUNS = {
    **{
        m: {"model": m}
        for m in ["lstm", "gru", "rnn", "scratch-lstm"]  # the scratch cells share their export
    },
    "lstm-bf16": {"model": "lstm", "precision": "mixed_bfloat16"},
    "gpt": {"model": "gpt", "context": 16},  # LENGTH is 5x its context: the window slides
}
MODELS = list(RUNS)
PREFIXES = ["ROMEO:", "a", "Zebra✓ at"]  # three lengths; ✓ is not in the vocabulary
LENGTH = CHUNK + 18  # chunks of 64 in `charlm sample`; two calls of the compiled loop
SEED = 7
NEUTRAL = dict(min_p=0.0, repetition_penalty=1.0, frequency_penalty=0.0, presence_penalty=0.0)
SETTINGS = {  # every input of the signature but the prefixes, the length and the seed
    "greedy": dict(temperature=1.0, top_k=0, top_p=1.0, greedy=True, **NEUTRAL),
    "sampled": dict(temperature=0.8, top_k=20, top_p=0.9, greedy=False, **NEUTRAL),
    "penalised": dict(
        temperature=0.9,
        top_k=-1,
        top_p=1.0,
        greedy=False,
        min_p=0.05,
        repetition_penalty=1.3,
        frequency_penalty=0.4,
        presence_penalty=0.2,
    ),
}
PENALISED = ("lstm", "gpt")
SEPARATOR = "\n<<sample>>\n"

# Runs in a fresh interpreter where charlm cannot be imported: -I -S (no site, so no .pth file
# installs charlm's editable finder) with only the folder that holds TensorFlow on sys.path.
RELOAD = r"""
import json, sys
sys.path.append(sys.argv[1])
args = json.loads(sys.argv[2])
try:
    import charlm
    found = charlm.__file__
except ImportError:
    found = None
import tensorflow as tf
out = {"charlm": found, "texts": {}}
for model, path in args["exports"].items():
    loaded = tf.saved_model.load(path)
    sig = loaded.signatures["serving_default"]
    out["prefixes_shape"] = sig.structured_input_signature[1]["prefixes"].shape.as_list()
    for name, s in args["settings"].items():
        if name == "penalised" and model not in args["penalised"]:
            continue
        result = sig(prefixes=tf.constant(args["prefixes"]), length=tf.constant(args["length"]),
                     seed=tf.constant(args["seed"], tf.int64),
                     **{k: tf.constant(v) for k, v in s.items()})
        out["texts"][model + "/" + name] = [t.decode() for t in result["text"].numpy()]
    five = loaded.generate(tf.constant(["a"] * 5), 3, 1.0, 0, 1.0, tf.constant(1, tf.int64), False)
    out["five"] = [t.decode() for t in five["text"].numpy()]
print(json.dumps(out))
"""


def cli(*args) -> str:
    """Run the real `charlm` command in this process; its stdout."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny run of each of :data:`RUNS` (in ``runs/`` of a fresh folder, the last one the
    newest), trained on the first 20,000 characters of Shakespeare."""
    home, back = tmp_path_factory.mktemp("export"), os.getcwd()
    os.chdir(home)
    try:
        for name, settings in RUNS.items():
            charlm.train(
                [CORPORA / "tinyshakespeare.txt"],
                max_chars=20_000,
                name=name,
                progress=False,
                log=lambda _: None,
                **{**TINY, "steps": 40, **settings},
            )
    finally:
        os.chdir(back)
    return {model: charlm.load(home / "runs" / model) for model in MODELS}


@pytest.fixture(scope="module")
def reloaded(runs, tmp_path_factory):
    """What the SavedModel of every run generates in a process without charlm."""
    out = tmp_path_factory.mktemp("savedmodels")
    exports = {}
    for model, run in runs.items():
        cli("export", run.path, "--format", "savedmodel", "--out", out / model)
        exports[model] = str(out / model)
    args = dict(
        exports=exports,
        settings=SETTINGS,
        prefixes=PREFIXES,
        length=LENGTH,
        seed=SEED,
        penalised=PENALISED,
    )
    tf_home = str(Path(__import__("tensorflow").__file__).parent.parent)
    p = subprocess.run(
        [sys.executable, "-I", "-S", "-c", RELOAD, tf_home, json.dumps(args)],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.splitlines()[-1])


def charlm_sample(run, setting) -> list[str]:
    """What ``charlm sample`` prints with ``setting``: the command itself for the greedy one,
    the Python API (the same generator, already compiled: seconds saved a case) for the
    others."""
    s = SETTINGS[setting]
    if setting != "greedy":
        options = {k: v for k, v in s.items() if k != "greedy"}
        return run.generate(PREFIXES, LENGTH, seed=SEED, warn=lambda _: None, **options)
    flags = [
        a
        for k, v in s.items()
        if k != "greedy" and not (s["greedy"] and k in ("temperature", "top_k", "top_p", "min_p"))
        for a in ("--" + k.replace("_", "-"), v)
    ] + (["--greedy"] if s["greedy"] else [])
    prefixes = [a for p in PREFIXES for a in ("--prefix", p)]
    out = cli(
        "sample",
        "--run",
        run.path,
        "--length",
        LENGTH,
        "--seed",
        SEED,
        "--separator",
        SEPARATOR,
        *prefixes,
        *flags,
    )
    return out.removesuffix("\n").split(SEPARATOR)


def test_the_reloading_process_cannot_import_charlm(reloaded):
    assert reloaded["charlm"] is None


# the penalties are the loop's, the same code for every model: tried on a recurrent run and the
# transformer (whose state is a cache), not on all eight
CASES = [(m, s) for m in MODELS for s in sorted(SETTINGS) if s != "penalised" or m in PENALISED]


@pytest.mark.parametrize("model, setting", CASES)
def test_savedmodel_without_charlm_generates_exactly_what_charlm_sample_prints(
    runs, reloaded, model, setting
):
    expected = charlm_sample(runs[model], setting)
    assert [t[: len(p)] for t, p in zip(expected, PREFIXES, strict=True)] == PREFIXES
    assert reloaded["texts"][f"{model}/{setting}"] == expected


def test_reloaded_savedmodel_keeps_a_none_batch_and_takes_any_number_of_prefixes(reloaded):
    assert reloaded["prefixes_shape"] == [None]
    assert len(reloaded["five"]) == 5 and len(set(reloaded["five"])) > 1


@pytest.fixture(scope="module")
def one_savedmodel(runs, tmp_path_factory):
    import tensorflow as tf

    from charlm.use.export import export_run

    path = export_run(runs["gru"], "savedmodel", out=tmp_path_factory.mktemp("one") / "sm")
    return tf.saved_model.load(str(path))


def _generate(loaded, prefixes, length=5, temperature=1.0, greedy=False):
    import tensorflow as tf

    return loaded.generate(
        tf.constant(prefixes), length, temperature, 0, 1.0, tf.constant(1, tf.int64), greedy
    )


def test_savedmodel_length_zero_gives_back_the_prefixes(one_savedmodel):
    out = _generate(one_savedmodel, ["ab", "c"], length=0)
    assert [t.decode() for t in out["text"].numpy()] == ["ab", "c"]


@pytest.mark.parametrize(
    "prefixes, temperature, message",
    [
        (["ok", ""], 1.0, "a prefix must not be empty"),
        (["ok"], -0.5, r"unless greedy, temperature must be 0 \(greedy\) or more"),
        (["ok"], float("nan"), r"unless greedy, temperature must be 0 \(greedy\) or more"),
    ],
)
def test_savedmodel_refuses_bad_arguments_with_a_message(
    one_savedmodel, prefixes, temperature, message
):
    import tensorflow as tf

    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        _generate(one_savedmodel, prefixes, temperature=temperature)


def test_savedmodel_temperature_zero_is_greedy(one_savedmodel):
    prefixes = ["ROMEO:", "a"]
    zero = _generate(one_savedmodel, prefixes, length=40, temperature=0.0)
    greedy = _generate(one_savedmodel, prefixes, length=40, greedy=True)
    assert zero["text"].numpy().tolist() == greedy["text"].numpy().tolist()


def test_savedmodel_inputs_left_out_are_sampling_options_defaults(runs, one_savedmodel):
    import tensorflow as tf

    prefixes = ["ROMEO:", "a"]
    seeded = one_savedmodel.generate(tf.constant(prefixes), seed=tf.constant(3, tf.int64))
    texts = [t.decode() for t in seeded["text"].numpy()]
    assert texts == runs["gru"].generate(prefixes, seed=3)  # length 200, temperature 1 ...
    assert [len(t) for t in texts] == [len(p) + SamplingOptions().length for p in prefixes]
    unseeded = [one_savedmodel.generate(tf.constant(["a"]))["text"].numpy()[0] for _ in "ab"]
    assert unseeded[0] != unseeded[1]  # no seed: a new one each call, as charlm sample


@pytest.mark.parametrize("model", MODELS)
def test_tflite_step_gives_the_logits_and_state_of_the_model_step(runs, model, tmp_path):
    import tensorflow as tf

    try:
        from ai_edge_litert.interpreter import Interpreter  # LiteRT, the TFLite runtime
    except ImportError:  # where only TensorFlow's own copy is installed
        Interpreter = tf.lite.Interpreter

    run = runs[model]
    cli("export", run.path, "--format", "tflite", "--batch-size", 3, "--out", tmp_path / "t")
    step = run.generation_model  # the run's weights in float32 math (itself for float32 runs)
    info = json.loads((tmp_path / "t" / "export.json").read_text())
    assert charlm.text.vocab.Vocab.load(tmp_path / "t" / "vocab.json") == run.vocab
    interpreter = Interpreter(model_path=str(tmp_path / "t" / "model.tflite"))
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert not [op for op in ops if op.startswith("Flex")], ops  # builtins only
    # a real state: the model's own after three different prefixes
    warm = run.vocab.encode("ROMEO: the").astype(np.int32).reshape(1, -1).repeat(3, 0)
    warm[1, :3], warm[2, -2:] = run.vocab.encode("xyz"), run.vocab.encode("?!")
    _, state = step(tf.constant(warm), step.initial_state(3), training=False)
    ids = warm[:, -1:]
    logits, new_state = step(tf.constant(ids), state, training=False)
    got = interpreter.get_signature_runner()(
        ids=ids, **{f"state_{i}": s.numpy() for i, s in enumerate(state)}
    )
    assert info["state_shapes"] == [list(s.shape[1:]) for s in state]
    vectors = all(len(s.shape) == 2 for s in state)  # format 1's field, where it can say it
    assert info.get("state_sizes") == ([int(s.shape[-1]) for s in state] if vectors else None)
    for name, want in [
        ("logits", logits[:, -1]),
        *[(f"state_{i}", s) for i, s in enumerate(new_state)],
    ]:
        want = want.numpy()
        error = np.abs(got[name] - want).max() / max(1.0, np.abs(want).max())
        assert error < 1e-5, (name, error)


def test_export_refuses_an_existing_output_and_replaces_it_with_force(runs, tmp_path):
    out = tmp_path / "x"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    result = CliRunner().invoke(
        main, ["export", str(runs["rnn"].path), "--format", "tflite", "--out", str(out)]
    )
    assert result.exit_code == 1 and "already exists; pass --force" in result.output
    assert (out / "mine.txt").read_text() == "keep"
    cli("export", runs["rnn"].path, "--format", "tflite", "--out", out, "--force")
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "model.tflite", "vocab.json"]
    assert not [p for p in tmp_path.iterdir() if p.name != "x"]  # no temporary folder left


def test_export_without_a_run_exports_the_newest_into_its_folder(runs):
    run_dir = runs[MODELS[-1]].path.parent
    cli("export", "--run-dir", run_dir, "--format", "tflite")
    assert (run_dir / MODELS[-1] / "export" / "tflite" / "model.tflite").is_file()


def test_a_mixed_bfloat16_run_generates_in_float32_with_its_own_weights(runs):
    import tensorflow as tf

    run = runs["lstm-bf16"]
    assert run.config.precision == "mixed_bfloat16"
    assert {layer.dtype_policy.name for layer in run.model.keras_model.layers} > {"float32"}
    twin = run.generation_model
    assert {layer.dtype_policy.name for layer in twin.keras_model.layers} == {"float32"}
    for mine, its in zip(twin.keras_model.weights, run.model.keras_model.weights, strict=True):
        assert mine.path == its.path and np.array_equal(mine.numpy(), its.numpy())
    ids = tf.constant(run.vocab.encode("ROMEO: the king").reshape(1, -1).astype(np.int32))
    bf16, _ = run.model(ids, run.model.initial_state(1))
    f32, _ = twin(ids, twin.initial_state(1))
    assert 0 < np.abs(bf16 - f32).max() < 0.1  # the same model, rounded differently
    assert runs["lstm"].generation_model is runs["lstm"].model  # a float32 run: no copy
