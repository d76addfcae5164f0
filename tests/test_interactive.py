"""`charlm sample --interactive`: a prompt loop that keeps the model loaded.

The session's rules are checked in-process with a stand-in generator; the real command is
run once with lines piped into it (as a script would), and once interrupted with Ctrl-C.
"""

import dataclasses
import io
import signal

import forked
import pytest
from conftest import run_cli

from charlm.cli.interactive import HELP, Session, escape, lines, run_session
from charlm.options.sampling import SamplingOptions

START = SamplingOptions(length=10)


def session(*typed):
    """Run a session over ``typed`` lines: (stdout, messages, the options of each sample)."""
    out, said, asked = io.StringIO(), [], []

    def generate(prefix, options):
        asked.append(options)
        yield prefix
        yield "x" * options.length

    s = Session(generate, START, out, said.append)
    run_session(s, [line + "\n" for line in typed])
    return out.getvalue(), said, asked


def test_each_line_is_a_prefix_and_its_sample_is_written_on_its_own_line():
    out, said, _ = session("ROMEO:", "JULIET:")
    assert out == "ROMEO:xxxxxxxxxx\nJULIET:xxxxxxxxxx\n" and said == []


@pytest.mark.parametrize(
    "command, key, value",
    [
        (":temperature 0.7", "temperature", 0.7),
        (":length 3", "length", 3),
        (":top_k 5", "top_k", 5),
        (":top-k 5", "top_k", 5),
        (":top_p 0.9", "top_p", 0.9),
        (":greedy on", "greedy", True),
        (":seed 7", "seed", 7),
        (":temperature 0", "temperature", 0),
        (":stop END", "stop", ("END",)),
    ],
)
def test_short_commands_change_the_settings_of_the_samples_that_follow(command, key, value):
    out, said, asked = session("a", command, "b")
    assert getattr(asked[0], key) == getattr(START, key) and getattr(asked[1], key) == value
    assert said == [f"{key} = {command.split()[1]}"]


def test_a_temperature_of_zero_is_greedy_and_takes_no_greedy_switch():
    _, said, asked = session(":temperature 0", "a")
    assert said == ["temperature = 0"] and asked[0].is_greedy and asked[0].greedy is False


def test_stop_takes_escaped_texts_several_words_several_stops_and_off_clears_them():
    _, said, asked = session(
        r":stop \n\n", "a", r":stop END a\sb \x41\u00e9 \\", "b", ":stop off", "c"
    )
    assert [o.stop for o in asked] == [("\n\n",), ("END", "a b", "Aé", "\\"), ()]
    assert said == [r"stop = \n\n", r"stop = END a\sb Aé \\", "stop = off"]


@pytest.mark.parametrize("text", ["\n\n", "a b\\", "\t\r\x01 é✓"])
def test_a_stop_string_shown_by_escape_is_read_back_the_same(text):
    _, said, asked = session(":stop " + escape(text), "a")
    assert asked[0].stop == (text,) and said == [f"stop = {escape(text)}"]


def test_greedy_off_and_seed_off_undo_them():
    _, _, asked = session(":greedy on", ":seed 3", ":greedy off", ":seed off", "a")
    assert asked[0].greedy is False and asked[0].seed is None


@pytest.mark.parametrize(
    "command, message",
    [
        (":temperature hot", ":temperature takes a number, e.g. :temperature 0.7"),
        (":temperature -0.5", ":temperature must be 0 (greedy) or more, not -0.5"),
        (":temperature nan", ":temperature must be 0 (greedy) or more, not nan"),
        (":length -1", ":length must be a whole number from 0 to 2147483647, not -1"),
        (":top_k -2", ":top_k must be 0 or -1 (off) or a whole number up to 2147483647, not -2"),
        (":top_k 2147483648", ":top_k must be 0 or -1 (off) or a whole number up to 2147483647"),
        (":top_p 1.5", ":top_p must be in (0, 1], not 1.5"),
        (":greedy maybe", ":greedy takes on or off"),
        (":seed", ":seed takes a whole number or off"),
        (":seed -1", ":seed must be a whole number from 0 to 2**63-1, not -1"),
        (":seed 9223372036854775808", ":seed must be a whole number from 0 to 2**63-1"),
        (":temperature inf", ":temperature must be 0 (greedy) or more, not inf"),
        (":stop", ":stop takes text or off"),
        (r":stop \q", ":stop takes text or off"),
        (":stop a\\", ":stop takes text or off"),
        (":warp 9", "unknown command ':warp 9'; type :help for the commands"),
    ],
)
def test_a_bad_command_or_value_is_one_line_and_the_loop_goes_on(command, message):
    out, said, asked = session(command, "a")
    assert len(said) == 1 and said[0].startswith(message), said
    assert "\n" not in said[0]
    assert asked == [START] and out == "axxxxxxxxxx\n"


def test_help_lists_every_command_and_settings_shows_them():
    _, said, _ = session(":help", ":temperature 0.5", ":settings")
    for command in ("temperature", "length", "top_k", "top_p", "greedy", "seed", "stop", "quit"):
        assert f":{command}" in said[0]
    assert said[2] == (
        "length = 10  temperature = 0.5  top_k = 0  top_p = 1  min_p = 0  repetition_penalty = 1  "
        "frequency_penalty = 0  presence_penalty = 0  greedy = off  seed = off  stop = off"
    )


def test_help_is_each_sampling_options_field_with_its_help_text():
    for f in dataclasses.fields(SamplingOptions):
        line = next(line for line in HELP.splitlines() if line.startswith(f"  :{f.name} "))
        words = " ".join(HELP[HELP.index(line) :].split()[2:])  # the help wraps onto more lines
        assert words.startswith(" ".join(f.metadata["help"].replace("--", ":").split()))


def test_a_prefix_starting_with_a_colon_is_written_with_two():
    out, said, _ = session("::-)")
    assert out.startswith(":-)x") and said == []


def test_quit_ends_the_session_and_blank_lines_are_skipped():
    out, _, asked = session("", "a", ":quit", "b")
    assert len(asked) == 1 and out == "axxxxxxxxxx\n"


def test_ctrl_c_leaves_the_loop_quietly():
    def typed():
        yield "a\n"
        raise KeyboardInterrupt

    out, said = io.StringIO(), []
    run_session(Session(lambda p, s: iter([p]), START, out, said.append), typed())
    assert out.getvalue() == "a\n"


def test_the_prompt_is_written_to_stderr_only_when_stdin_is_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    err = io.StringIO()
    assert list(lines(io.StringIO("a\nb\n"), err)) == ["a\n", "b\n"] and err.getvalue() == ""
    assert list(lines(Terminal("a\n"), err)) == ["a\n"] and err.getvalue() == "> > \n"


# -- the real command ------------------------------------------------------------------------------


@pytest.fixture
def run_path(shared_run):
    """The session's tiny LSTM run (sampling reads it and writes nothing)."""
    return str(shared_run("lstm"))


@pytest.mark.parametrize("model", ["lstm", "gpt"])
def test_piped_lines_give_the_samples_alone_on_stdout(shared_run, model):
    run_path = str(shared_run(model))  # a transformer's session reads as an LSTM's
    typed = ":greedy on\n:length 30\nROMEO:\n:warp\nROMEO:\n:greedy off\n:seed 5\nKING\n"
    code, out, err = forked.run(["sample", "--interactive", "--run", run_path], input=typed)
    assert code == 0 and "Traceback" not in err, err
    samples = out.splitlines()
    assert len(samples) == 3 and [len(s) for s in samples] == [36, 36, 34]
    assert samples[0] == samples[1] and samples[0].startswith("ROMEO:")  # greedy: the same
    assert "unknown command ':warp'" in err and "> " not in out + err


def test_piped_temperature_zero_is_greedy_and_stop_ends_the_sample_before_it(run_path):
    typed = ":length 40\n:greedy on\nROMEO:\n:greedy off\n:temperature 0\n:seed 5\nROMEO:\n"
    code, out, err = forked.run(["sample", "-i", "--run", run_path], input=typed)
    assert code == 0 and "Traceback" not in err, err
    sample = out[: len(out) // 2]
    assert out == sample * 2 and len(sample) == len("ROMEO:") + 40 + 1  # greedy twice
    generated = sample[len("ROMEO:") : -1]
    stop = generated[20:22]
    typed = f":temperature 0\n:length 40\n:stop {escape(stop)} never\\sseen\nROMEO:\n"
    code, out, err = forked.run(["sample", "-i", "--run", run_path], input=typed)
    assert code == 0 and "Traceback" not in err, err
    assert out == "ROMEO:" + generated[: generated.find(stop)] + "\n"


def test_ctrl_c_at_the_prompt_leaves_with_exit_status_0(run_path):
    p = forked.start(["sample", "-i", "--run", run_path], stdin=forked.PIPE)
    p.stdin.write(":length 5\nab\n")
    p.stdin.flush()
    first = p.stdout.read(8)  # "ab" and 5 characters (maybe newlines) and the newline after them
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert first.startswith("ab") and len(first) == 8
    assert p.returncode == 0 and "Traceback" not in err, err


def test_interactive_with_prefixes_or_several_samples_is_a_usage_error(run_path):
    for extra, named in (
        (["--prefix", "x"], "--prefix"),
        (["--num-samples", "2"], "--num-samples"),
        (["--prefix", "x", "--num-samples", "2"], "--prefix and --num-samples"),
    ):
        code, out, err = run_cli("sample", "-i", "--run", run_path, *extra)
        assert code == 2 and "Traceback" not in err
        assert err.strip().splitlines()[-1] == (
            "Error: --interactive reads its prefixes from "
            f"standard input, one sample each; drop {named}"
        )
