"""One bad value, -1 for the temperature, through every face of charlm: each names the field
in its own language (the HTTP face's test is in test_serve.py, beside its server)."""

import io

from conftest import run_cli

import charlm
from charlm.cli.interactive import Session, run_session
from charlm.options.sampling import SamplingOptions
from charlm.options.setting import OptionError

PROBLEM = "must be 0 (greedy) or more, not -1"


def error_line(ran) -> str:
    code, _, err = ran
    lines = [line for line in err.splitlines() if line.startswith("Error:")]
    assert code == 1 and len(lines) == 1, err
    return lines[0]


def test_the_command_line_names_the_flag(workdir):
    assert error_line(run_cli("sample", "--temperature", "-1")) == f"Error: --temperature {PROBLEM}"


def test_the_command_line_names_the_training_samples_flag(workdir):
    (workdir / "c.txt").write_text("some text\n" * 20)
    ran = run_cli("train", "c.txt", "--sample-temperature", "-1")
    assert error_line(ran) == f"Error: --sample-temperature {PROBLEM}"
    assert not (workdir / "runs").exists()


def test_a_toml_file_names_the_file_the_line_and_the_key_as_written(workdir):
    (workdir / "c.txt").write_text("some text\n" * 20)
    (workdir / "p.toml").write_text('model = "gru"\n\nsample_temperature = -1\n')
    ran = run_cli("train", "c.txt", "--config", "p.toml")
    assert error_line(ran) == f"Error: p.toml, line 3: sample_temperature {PROBLEM}"


def test_a_toml_file_names_an_old_key_as_it_stands_there(workdir):
    """run_dir is read as today's runs_dir; its error names it as the file does."""
    (workdir / "c.txt").write_text("some text\n" * 20)
    (workdir / "p.toml").write_text("units = 8\nrun_dir = 5\n")
    ran = run_cli("train", "c.txt", "--config", "p.toml")
    assert error_line(ran) == "Error: p.toml, line 2: run_dir must be a string, not 5"


def test_the_interactive_prompt_names_the_command():
    said = []
    session = Session(lambda p, o: iter([p]), SamplingOptions(), io.StringIO(), said.append)
    run_session(session, [":temperature -1\n"])
    assert said == [f":temperature {PROBLEM}"]
    assert session.options.temperature == 1.0  # the options stay as they were


def test_the_python_api_names_the_keyword():
    try:
        charlm.SamplingOptions(temperature=-1)
    except OptionError as e:
        assert (e.field, e.value, str(e)) == ("temperature", -1, f"temperature {PROBLEM}")
    else:
        raise AssertionError("a temperature of -1 was taken")


def test_a_family_rule_in_a_toml_file_names_the_file_the_line_and_the_key(workdir):
    """The family table's rules (charlm.models.families) are worded by the same faces."""
    (workdir / "c.txt").write_text("some text\n" * 20)
    (workdir / "p.toml").write_text('units = 8\nmodel = "transformer"\n')
    line = error_line(run_cli("train", "c.txt", "--config", "p.toml"))
    assert line.startswith("Error: p.toml, line 2: model must be one of lstm, gru, rnn")
    assert line.endswith("not 'transformer'")
    (workdir / "p.toml").write_text('model = "lstm"\nreset_after = true\n')
    line = error_line(run_cli("train", "c.txt", "--config", "p.toml"))
    assert line.startswith("Error: p.toml, line 2: reset_after applies only to scratch-gru")


def test_a_family_rule_on_the_command_line_names_the_flag(workdir):
    (workdir / "c.txt").write_text("some text\n" * 20)
    line = error_line(run_cli("train", "c.txt", "--model", "lstm", "--reset-after"))
    assert line.startswith("Error: --reset-after applies only to scratch-gru, not to lstm")
    assert not (workdir / "runs").exists()


def test_a_family_rule_in_python_names_the_keyword(workdir):
    (workdir / "c.txt").write_text("some text\n" * 20)
    try:
        charlm.train(["c.txt"], model="transformer", steps=1)
    except OptionError as e:
        assert (e.field, e.value) == ("model", "transformer")
        assert str(e).startswith("model must be one of lstm")
    else:
        raise AssertionError("an unknown family was trained")
    assert not (workdir / "runs").exists()


def test_train_help_lists_its_flags_in_sections_with_their_defaults():
    """Every Config field is in one section of `charlm train --help`; each shows its default
    (the field's: a preset or the recipe may choose otherwise)."""
    import dataclasses

    from click.testing import CliRunner

    from charlm.cli import main
    from charlm.options.config import SECTIONS, Config

    named = [n for names in SECTIONS.values() for n in names]
    assert sorted(named) == sorted(f.name for f in dataclasses.fields(Config))
    help_text = CliRunner().invoke(main, ["train", "--help"]).stdout
    at = [help_text.index(f"\n{title}:\n") for title in ["Run", *SECTIONS]]
    assert at == sorted(at)  # in this order
    model = help_text[help_text.index("\nModel:\n") : help_text.index("\nTraining:\n")]
    assert "--units INTEGER" in model and "[default: (256)]" in model
    assert "-v, --verbose" in help_text[: help_text.index("\nCorpus:\n")]


def test_the_recipes_reasons_are_details_that_charlm_train_shows_with_v(capsys):
    from charlm.cli.train import without_details
    from charlm.say import Detail

    without_details(Detail("recipe: width 1x256 (why)"))
    without_details("recipe: lstm 1x256, ...")
    assert capsys.readouterr().err == "recipe: lstm 1x256, ...\n"
