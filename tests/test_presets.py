"""The tutorial presets in configs/ do what their first comment says they do."""

import pytest
from conftest import CONFIGS

from charlm.options.config import Config

HELLO = "Hello, how are you?"
TUTORIALS = [
    "tutorial-gru",
    "hamlet",
    "hello",
    "d2l-scratch-rnn",
    "d2l-scratch-gru",
    "d2l-scratch-lstm",
]


@pytest.mark.parametrize("name", TUTORIALS)
def test_a_tutorial_preset_names_its_recipe_and_what_it_reaches_and_runs_as_written(name):
    text = (CONFIGS / f"{name}.toml").read_text(encoding="utf-8")
    header = text[: text.index("\nmodel = ")]
    assert header.startswith(f"# {name}: ")
    assert "# Reaches: " in header
    assert Config.load(CONFIGS / f"{name}.toml").recipe == "fixed"  # no automatic changes


@pytest.mark.parametrize("name", ["d2l-scratch-rnn", "d2l-scratch-gru", "d2l-scratch-lstm"])
def test_the_d2l_presets_cut_the_text_as_the_first_edition_does(name):
    cfg = Config.load(CONFIGS / f"{name}.toml")
    assert (cfg.cut, cfg.sampler, cfg.seq_len, cfg.batch_size) == ("fixed", "consecutive", 35, 32)


def test_the_hello_preset_memorises_its_line_and_says_it_back_from_the_first_character(tmp_path):
    import charlm

    corpus = tmp_path / "hello.txt"
    corpus.write_text(HELLO, encoding="utf-8")
    run = charlm.train(
        [str(corpus)],
        config=str(CONFIGS / "hello.toml"),
        run_dir=str(tmp_path),
        log=lambda *a: None,
        progress=False,
    )
    assert run.generate("H", length=len(HELLO) - 1, greedy=True) == [HELLO]
