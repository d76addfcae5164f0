"""SamplingOptions as every entry point takes it: `charlm sample`'s flags are its fields (help
texts included), `--temperature 0` is `--greedy`, `--stop` ends a sample before the stop
string, and the Python API takes the options or their fields as keywords. (Bad values: see
test_bad_input.py; the interactive commands: test_interactive.py.)"""

import dataclasses

import pytest
from click.testing import CliRunner
from conftest import CORPORA, TINY
from hypothesis import given, settings
from hypothesis import strategies as st

import charlm
from charlm.cli import main
from charlm.errors import CharLMError
from charlm.options.sampling import SamplingOptions
from charlm.options.setting import OptionError


def cli(*args) -> str:
    """Run the real `charlm` command in this process; its stdout."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("sampling")
    return charlm.train(
        [CORPORA / "tinyshakespeare.txt"],
        max_chars=20_000,
        steps=20,
        runs_dir=str(work / "runs"),
        progress=False,
        log=lambda m: None,
        **{**TINY, "eval_every": 0},
    )


def test_sample_help_shows_each_sampling_options_help_text():
    text = "".join(cli("sample", "--help").split())  # the help is wrapped: compare the words
    for f in dataclasses.fields(SamplingOptions):
        flag = f.metadata["flag"] or "--" + f.name.replace("_", "-")
        assert flag in text and "".join(f.metadata["help"].split()) in text, f.name


def test_sample_temperature_zero_is_greedy(run):
    greedy = cli("sample", "--run", run.path, "--prefix", "ROMEO:", "--length", 60, "--greedy")
    zero = cli(
        "sample",
        "--run",
        run.path,
        "--prefix",
        "ROMEO:",
        "--length",
        60,
        "--temperature",
        0,
        "--seed",
        3,
        "--top-k",
        5,
    )
    assert zero == greedy and len(greedy) == len("ROMEO:") + 60 + 1


def test_sample_stop_ends_the_sample_before_the_stop_string(run):
    args = ["sample", "--run", run.path, "--prefix", "ROMEO:", "--length", 80, "--seed", 3]
    generated = cli(*args)[len("ROMEO:") : -1]
    stop = generated[30:32]
    stopped = cli(*args, "--stop", "never seen", "--stop", stop)
    assert stopped == "ROMEO:" + generated[: generated.find(stop)] + "\n"


def test_sample_stop_ends_each_of_several_samples_on_its_own(run):
    args = [
        "sample",
        "--run",
        run.path,
        "--prefix",
        "A",
        "--num-samples",
        3,
        "--length",
        50,
        "--seed",
        1,
        "--separator",
        "|",
    ]
    free = cli(*args).removesuffix("\n").split("|")
    stop = free[0][10:12]
    stopped = cli(*args, "--stop", stop).removesuffix("\n").split("|")
    assert stopped == ["A" + cut(t[1:], stop) for t in free]  # the prefix is never cut


def cut(text: str, stop: str) -> str:
    return text[: text.find(stop)] if stop in text else text


def test_the_api_takes_options_or_their_fields_as_keywords(run):
    options = SamplingOptions(length=25, temperature=0.8, top_k=10, seed=4)
    by_options = run.generate(["ROMEO:", "KING"], options=options, num_samples=2)
    by_fields = run.generate(
        ["ROMEO:", "KING"], length=25, temperature=0.8, top_k=10, seed=4, num_samples=2
    )
    assert by_options == by_fields and [len(t) for t in by_options] == [31, 31, 29, 29]
    assert run.generate("ROMEO:", options=options, seed=5) != by_options[:1]  # fields on top
    streamed = list(run.stream(["ROMEO:"], options=options, chunk=10))
    assert "".join(p[0] for p in streamed) == run.generate("ROMEO:", options=options)[0]


def test_the_api_length_defaults_to_the_options(run):
    assert len(run.generate("ROMEO:", options=SamplingOptions(length=7))[0]) == len("ROMEO:") + 7
    assert len(run.generate("ROMEO:", seed=1)[0]) == len("ROMEO:") + SamplingOptions().length


def test_the_api_temperature_zero_is_greedy(run):
    assert run.generate("ROMEO:", length=40, temperature=0) == run.generate(
        "ROMEO:", length=40, greedy=True
    )


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"temperature": float("nan")}, "temperature must be 0 (greedy) or more, not nan"),
        ({"top_k": 2**31}, "top_k must be 0 or -1 (off) or a whole number up to"),
        ({"seed": -1}, "seed must be a whole number from 0 to 2**63-1, not -1"),
        ({"stop": [""]}, "stop must be non-empty text"),
        ({"num_samples": 0}, "num_samples must be at least 1, not 0"),
    ],
)
def test_the_api_refuses_a_bad_option_in_one_line_before_streaming(run, fields, words):
    for call in (run.generate, run.stream):  # stream: at the call, not at the first yield
        with pytest.raises(CharLMError) as info:
            call(["ROMEO:"], length=5, **fields)
        assert words in str(info.value) and "\n" not in str(info.value)


_ANY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=3),
    st.lists(st.text(max_size=2), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([f.name for f in dataclasses.fields(SamplingOptions)]), _ANY, max_size=4
    )
)
def test_any_values_give_options_or_one_clear_error(values):
    """Whatever a client sends (JSON, a preset, a Python caller), the options are made or
    refused with an OptionError's one line that starts with the field's name; never another
    exception."""
    try:
        SamplingOptions(**values)
    except OptionError as e:
        assert "\n" not in str(e) and str(e).startswith(e.field + " ")
        assert e.field in values
