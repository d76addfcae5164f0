"""What a run leaves to look at: TensorBoard event files (scalars, samples, HParams), the
loss picture loss.png, and run.json (parameter count, finished or not)."""

import json
import struct

import pytest
from conftest import TINY, train_shakespeare

import charlm


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny run that validates and samples (greedily: temperature 0) every 10 steps."""
    return train_shakespeare(
        tmp_path_factory.mktemp("monitor"),
        max_chars=20_000,
        log=lambda m: None,
        steps=30,
        eval_every=10,
        sample_every=10,
        sample_length=20,
        sample_prefixes=["ROMEO:"],
        sample_temperature=0.0,
    )


@pytest.fixture(scope="module")
def events(run):
    """Every summary value in the run's event files: (tag, step, value proto)."""
    import tensorflow as tf

    found = []
    for path in sorted((run.path / "tb").glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                found.append((value.tag, event.step, value))
    return found


def tensor_value(value):
    import tensorflow as tf

    return tf.make_ndarray(value.tensor)


def test_every_validation_is_logged_as_tensorboard_scalars(events):
    val_steps = sorted(step for tag, step, _ in events if tag == "val_loss")
    assert val_steps == [10, 20, 30]
    tags = {tag for tag, _, _ in events}
    assert {"train_loss", "val_perplexity", "val_bits_per_char", "lr"} <= tags
    losses = [float(tensor_value(v)) for tag, _, v in events if tag == "val_loss"]
    assert all(0 < loss < 10 for loss in losses)


def test_periodic_samples_are_a_text_summary_in_code_blocks(events):
    texts = [(step, tensor_value(v).item().decode()) for tag, step, v in events if tag == "samples"]
    assert [step for step, _ in texts] == [10, 20, 30]
    for step, text in texts:
        assert text.startswith(f"**step {step}**")
        body = text.split("\n\n", 1)[1]
        assert body.startswith("```\nROMEO:") and body.endswith("\n```")


def test_a_sample_temperature_of_zero_samples_greedily(run, events):
    last = next(
        tensor_value(v).item().decode()
        for tag, step, v in events
        if tag == "samples" and step == 30
    )
    sample = last.split("```\n", 1)[1].removesuffix("\n```")
    final = charlm.load(run.path, weights="last")  # the weights of step 30
    assert sample == final.generate("ROMEO:", length=20, greedy=True)[0]
    assert len(sample) == len("ROMEO:") + 20


def test_the_settings_go_to_the_hparams_dashboard_with_val_loss_as_its_metric(events):
    from tensorboard.plugins.hparams import plugin_data_pb2

    plugin = [v for _, _, v in events if v.metadata.plugin_data.plugin_name == "hparams"]
    data = [
        plugin_data_pb2.HParamsPluginData.FromString(v.metadata.plugin_data.content) for v in plugin
    ]
    experiment = next(d.experiment for d in data if d.HasField("experiment"))
    assert [m.name.tag for m in experiment.metric_infos] == ["val_loss"]
    assert {"model", "units", "seq_len", "lr"} <= {h.name for h in experiment.hparam_infos}
    session = next(d.session_start_info for d in data if d.HasField("session_start_info"))
    assert session.hparams["units"].number_value == TINY["units"]
    assert session.hparams["model"].string_value == "lstm"


def test_training_draws_loss_png_a_real_png_of_1100_by_400_pixels(run):
    data = (run.path / "loss.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1100, 400)


def test_loss_png_shows_the_curves_not_a_blank_canvas(run):
    import matplotlib.image

    pixels = matplotlib.image.imread(run.path / "loss.png")
    assert pixels.shape[:2] == (400, 1100)
    colours = {tuple(p) for p in pixels[::4, ::4, :3].reshape(-1, 3).round(2).tolist()}
    assert len(colours) > 20  # axes, two curves, labels


def test_run_json_records_the_parameter_count_and_that_the_run_finished(run):
    record = json.loads((run.path / "run.json").read_text())
    assert record == {"parameters": run.model.count_params(), "finished": True, "step": 30}


def test_a_loss_plot_that_cannot_be_written_is_one_warning_and_training_goes_on(tmp_path):
    from charlm.training.monitor import LossPlot

    warnings = []
    plot = LossPlot(tmp_path / "no-such-folder", log=warnings.append)
    rows = [{"step": "10", "train_loss": "3.0", "val_loss": "2.9", "wall_time": "1"}]
    plot.draw(rows)
    plot.draw(rows)
    assert len(warnings) == 1 and "loss.png" in warnings[0]
