"""Configs: presets, overrides, and one clear error for each kind of mistake."""

from pathlib import Path

import pytest

from charlm.errors import CharLMError
from charlm.options.config import Config
from charlm.options.rules import parse_duration

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def test_every_bundled_preset_loads_and_says_what_it_is_for():
    presets = sorted(CONFIGS.glob("*.toml"))
    assert {p.name for p in presets} >= {
        "tiny.toml",
        "shakespeare.toml",
        "tutorial-gru.toml",
        "d2l-scratch-rnn.toml",
        "d2l-scratch-gru.toml",
        "d2l-scratch-lstm.toml",
    }
    for p in presets:
        Config.load(p)
        assert p.read_text(encoding="utf-8").startswith("#"), f"{p.name} needs a comment"


def test_flags_override_the_preset(tmp_path):
    preset = tmp_path / "p.toml"
    preset.write_text('model = "gru"\nunits = 32\n')
    cfg = Config.load(preset, {"units": 64})
    assert (cfg.model, cfg.units) == ("gru", 64)


def test_saved_config_reads_back_identically():
    cfg = Config(
        paths=["a b.txt", 'ü"\\x.txt'],
        sample_prefixes=["分开", "不分开\n"],
        lr=1e-5,
        time_budget="10m",
    )
    assert Config.from_toml_text(cfg.to_toml("header")) == cfg


@pytest.mark.parametrize(
    "name, text, message",
    [
        pytest.param(
            "typo.toml",
            "seq_lne = 50\n",
            r"unknown key 'seq_lne'; did you mean 'seq_len'\?",
            id="unknown-key-named-with-the-closest-valid-key",
        ),
        pytest.param(
            "bad.toml",
            'model = "gru"\nunits = = 3\n',
            r"bad.toml: TOML syntax error: .*line 2, column",
            id="toml-syntax-error-gives-line-and-column",
        ),
    ],
)
def test_a_bad_config_file_is_refused_naming_what_is_wrong(tmp_path, name, text, message):
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(CharLMError, match=message):
        Config.load(p)


def test_wrong_type_names_the_key_and_the_expected_type():
    with pytest.raises(CharLMError, match=r"config, line 1: units must be an integer, not 'many'"):
        Config.from_toml_text('units = "many"')
    with pytest.raises(CharLMError, match="config, line 1: lowercase must be true or false, not 1"):
        Config.from_toml_text("lowercase = 1")


def test_missing_config_file_is_named():
    with pytest.raises(CharLMError, match="nope.toml: no such config file"):
        Config.load("nope.toml")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"seq_len": 0}, "seq_len must be at least 1, not 0"),
        ({"batch_size": -3}, "batch_size must be at least 1, not -3"),
        ({"val_fraction": 1.0}, r"val_fraction must be in \[0, 1\), not 1; e.g. 0.1"),
        ({"val_fraction": -0.1}, r"val_fraction must be in \[0, 1\), not -0.1"),
        ({"lr": 0.0}, "lr must be a positive number"),
        (
            {"time_budget": "ten minutes"},
            "time_budget must be a duration, not 'ten minutes'; write e.g. 90s",
        ),
        ({"name": "../x"}, "name must be a plain folder name, not '../x'; use a name without /"),
        (
            {"sample_temperature": -0.5},
            r"sample_temperature must be 0 \(greedy\) or more, not -0.5",
        ),
        ({"sample_temperature": float("nan")}, "sample_temperature must be .* not nan"),
        ({"sample_temperature": float("inf")}, "sample_temperature must be .* not inf"),
        ({"sample_length": 2**31}, "sample_length must be a whole number from 0 to 2147483647"),
        ({"seed": -1}, r"seed must be a whole number from 0 to 2\*\*63-1, not -1"),
    ],
)
def test_out_of_range_values_are_refused(changes, message):
    with pytest.raises(CharLMError, match=message) as info:
        Config().replace(**changes)
    assert "\n" not in str(info.value)


def test_a_preset_names_a_bad_sample_temperature_as_its_key(tmp_path):
    (tmp_path / "p.toml").write_text("sample_temperature = nan\n")
    with pytest.raises(
        CharLMError,
        match=r"p.toml, line 1: sample_temperature must be 0 \(greedy\) or more, not nan",
    ):
        Config.load(tmp_path / "p.toml")


def test_the_periodic_samples_options_come_from_the_config_and_zero_is_greedy():
    opts = Config(sample_length=30, sample_temperature=0.0, seed=4).sample_options
    assert (opts.length, opts.temperature, opts.seed, opts.is_greedy) == (30, 0.0, 4, True)
    assert not Config(sample_temperature=0.7).sample_options.is_greedy


@pytest.mark.parametrize(
    "text, seconds",
    [("90", 90), ("90s", 90), ("10m", 600), ("1h30m", 5400), ("1.5h", 5400), ("2m 30s", 150)],
)
def test_durations_parse(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "-5m", "10x", "m", "1h-3m"])
def test_bad_durations_are_refused(text):
    with pytest.raises(CharLMError, match="write e.g. 90s, 10m or 1h30m"):
        parse_duration(text)


@pytest.mark.parametrize("off", ["0", "none", "None", "off", " 0 "])
def test_time_budget_0_or_none_removes_a_presets_budget(off):
    preset = Config.load(CONFIGS / "shakespeare.toml")
    assert preset.time_budget_seconds == 600
    cfg = preset.replace(time_budget=off)
    assert cfg.time_budget == "" and cfg.time_budget_seconds is None


def test_the_old_run_dir_key_is_read_as_runs_dir():
    assert Config.from_toml_text('format_version = 1\nrun_dir = "old-runs"').runs_dir == "old-runs"
    assert Config().replace(run_dir="x").runs_dir == "x"


def test_every_option_has_its_help_beside_it_and_choices_come_from_the_fields():
    from dataclasses import fields

    from charlm.options.config import CHOICES

    assert all(f.metadata["help"] for f in fields(Config))
    assert CHOICES["sampler"] == ("random", "consecutive") and "cut" in CHOICES
