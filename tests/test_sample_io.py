"""`charlm sample` for scripts: prompts from files and standard input (read as the corpus is
read), one JSON object a line per sample, a drawn seed told on stderr that draws the same
sample again, and the line that says which device computes (train and sample)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CORPORA, TINY, copy_run, run_cli
from test_bad_input import no_tensorflow, refuses  # noqa: F401 (a fixture)

from charlm.models.device import cpu_model, cpu_name, device_line
from charlm.options.sampling import SamplingOptions

SEED_LINE = re.compile(r"^seed: (\d+) \(pass --seed \1 to get this sample again\)$", re.M)


@pytest.fixture(scope="module")
def run(shared_run):
    return str(shared_run("lstm"))


def sample(run, *args, input=None):
    """``charlm sample --run run *args`` in this process: (stdout, stderr); it must succeed."""
    code, out, err = run_cli("sample", "--run", run, *args, input=input)
    assert code == 0, err
    return out, err


def json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def cpu_model_of_this_machine() -> str:
    """The ``model name`` of /proc/cpuinfo, read here apart from charlm's reading of it."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    pytest.skip("no model name in /proc/cpuinfo")


def gpus() -> list:
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")


# -- --prefix-file -------------------------------------------------------------------------------


def test_a_prefix_file_is_read_as_the_corpus_is_read(run, tmp_path):
    """A UTF-8 BOM is dropped and CRLF becomes LF, as for the corpus: the same sample as the
    prompt given with --prefix."""
    path = tmp_path / "prompt.txt"
    path.write_bytes("\ufeffROMEO:\r\nO, ".encode())
    args = ["--length", 40, "--seed", 3]
    from_file, _ = sample(run, "--prefix-file", path, *args)
    given, _ = sample(run, "--prefix", "ROMEO:\nO, ", *args)
    assert from_file == given and from_file.startswith("ROMEO:\nO, ")


def test_a_prefix_file_dash_reads_standard_input(run):
    args = ["--length", 40, "--seed", 4]
    from_stdin, _ = sample(run, "--prefix-file", "-", *args, input="\ufeffJULIET:\r\n".encode())
    given, _ = sample(run, "--prefix", "JULIET:\n", *args)
    assert from_stdin == given and from_stdin.startswith("JULIET:\n")


def test_several_prefix_files_are_several_prompts_in_one_batch(run, tmp_path):
    (tmp_path / "a.txt").write_text("To be")
    (tmp_path / "b.txt").write_text("KING")
    args = ["--length", 20, "--seed", 5, "--json"]
    files, _ = sample(
        run, "--prefix-file", tmp_path / "a.txt", "--prefix-file", tmp_path / "b.txt", *args
    )
    given, _ = sample(run, "--prefix", "To be", "--prefix", "KING", *args)
    assert files == given and [s["prefix"] for s in json_lines(files)] == ["To be", "KING"]


def test_a_prompt_of_100000_characters_is_fed_whole(run, tmp_path):
    text = (CORPORA / "tinyshakespeare.txt").read_text()[:100_000]
    path = tmp_path / "long.txt"
    path.write_text(text)
    out, _ = sample(run, "--prefix-file", path, "--length", 50, "--seed", 6, "--json")
    (line,) = json_lines(out)
    assert line["prefix"] == text and len(line["text"]) == 50
    assert line["finish_reason"] == "length"


# -- --json --------------------------------------------------------------------------------------


def test_json_prints_one_object_per_sample_with_every_field(run):
    args = ["--prefix", "ROMEO:", "--prefix", "分", "--num-samples", 2, "--length", 30]
    args += ["--seed", 11, "--temperature", 0.8, "--top-k", 10]
    out, err = sample(run, *args, "--json")
    plain, _ = sample(run, *args, "--separator", "|")
    lines = json_lines(out)
    assert len(lines) == 4 and len(out.splitlines()) == 4
    settings = SamplingOptions(length=30, seed=11, temperature=0.8, top_k=10).to_dict()
    for line, prefix in zip(lines, ["ROMEO:", "ROMEO:", "分", "分"], strict=True):
        assert set(line) == {"text", "prefix", "finish_reason", "seed", "settings"}
        assert line["prefix"] == prefix
        assert len(line["text"]) == 30 and line["finish_reason"] == "length"
        assert line["seed"] == 11 and line["settings"] == settings
    # the text is what follows the prefix: prefix + text is the plain output's sample
    assert [x["prefix"] + x["text"] for x in lines] == plain.removesuffix("\n").split("|")
    assert "分" in out  # characters as they are, not \\u escapes
    assert not SEED_LINE.search(err)  # a seed was given: none drawn


def test_stop_strings_with_json_give_finish_reason_stop(run):
    args = ["--prefix", "A", "--num-samples", 3, "--length", 60, "--seed", 1, "--json"]
    free = [x["text"] for x in json_lines(sample(run, *args)[0])]
    stop = free[0][10:12]
    out, _ = sample(run, *args, "--stop", "never seen", "--stop", stop)
    for line, text in zip(json_lines(out), free, strict=True):
        cut = text.find(stop)
        assert line["text"] == (text[:cut] if cut >= 0 else text)
        assert line["finish_reason"] == ("stop" if cut >= 0 else "length")
        assert line["settings"]["stop"] == ["never seen", stop]
    assert json_lines(out)[0]["finish_reason"] == "stop"


# -- the seed ------------------------------------------------------------------------------------


def test_a_drawn_seed_is_told_on_stderr_and_draws_the_same_sample_again(run):
    args = ["--prefix", "ROMEO:", "--length", 80, "--num-samples", 2]
    out, err = sample(run, *args)
    (seed,) = SEED_LINE.findall(err)
    again, err_again = sample(run, *args, "--seed", seed)
    assert again == out and not SEED_LINE.search(err_again)
    assert 0 <= int(seed) <= 2**63 - 1


def test_a_drawn_seed_is_the_seed_of_the_json_objects(run):
    out, err = sample(run, "--length", 40, "--json")
    (seed,) = SEED_LINE.findall(err)
    (line,) = json_lines(out)
    assert line["seed"] == line["settings"]["seed"] == int(seed)
    again, _ = sample(run, "--length", 40, "--json", "--seed", seed)
    assert again == out


def test_each_call_without_a_seed_draws_a_new_one():
    seeds = {SamplingOptions().seeded().seed for _ in range(20)}
    assert len(seeds) == 20 and all(0 <= s <= 2**63 - 1 for s in seeds)
    assert SamplingOptions(seed=0).seeded().seed == 0


# -- the device line -----------------------------------------------------------------------------


def device_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("device: ")]


def test_sample_says_which_device_samples(run):
    _, err = sample(run, "--length", 5)
    (line,) = device_lines(err)
    if not gpus():
        assert f"device: CPU {cpu_model_of_this_machine()} (" in line
    assert line.endswith("; precision float32")  # sampling computes in float32


def test_train_says_which_device_trains_the_precision_and_the_replicas(workdir):
    settings = {**TINY, "steps": 2, "max_chars": 5000, "name": "d"}
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in settings.items()]
    code, _, err = run_cli("train", CORPORA / "tinyshakespeare.txt", *flags, cwd=workdir)
    assert code == 0, err
    (line,) = device_lines(err)
    if not gpus():
        assert f"device: CPU {cpu_model_of_this_machine()} (" in line
    assert line.endswith("; precision float32; 1 replica (--strategy none)")


def test_the_cpu_is_named_from_cpuinfo_with_its_cores_and_bf16(tmp_path, monkeypatch):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Some CPU 9000\nflags\t\t: fpu avx512_bf16\n")
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2})
    assert cpu_name(info) == "CPU Some CPU 9000 (3 cores, native bf16)"
    info.write_text("model name : Other\nflags : fpu avx2\n")
    assert cpu_name(info) == "CPU Other (3 cores, no native bf16)"
    monkeypatch.setattr("platform.processor", lambda: "x86_64")
    assert cpu_model(tmp_path / "missing") == "x86_64"  # no /proc/cpuinfo: what platform says


def test_the_device_line_counts_the_replicas():
    assert device_line("mixed_bfloat16", 4, "mirrored").endswith(
        "; precision mixed_bfloat16; 4 replicas (--strategy mirrored)"
    )
    assert device_line("float32").count(";") == 1  # sampling: no strategy


# -- bad input: one line, a non-zero exit, nothing touched ---------------------------------------


@pytest.fixture
def in_workdir(workdir, shared_run):
    """The shared LSTM run copied into workdir/runs, as the newest run."""
    copy_run(shared_run("lstm"), workdir / "runs" / "lstm")
    (workdir / "runs/latest").symlink_to("lstm")
    (workdir / "latin1.txt").write_bytes("café".encode("latin-1"))
    (workdir / "empty.txt").write_text("")
    (workdir / "prompt.txt").write_text("ROMEO:")
    return workdir


@pytest.mark.parametrize(
    "args, words",
    [
        (["--prefix-file", "nope.txt"], ["--prefix-file nope.txt", "no such file"]),
        (["--prefix-file", "runs"], ["--prefix-file runs", "is a folder", "text file"]),
        (["--prefix-file", "empty.txt"], ["--prefix-file empty.txt", "is empty"]),
        (["--prefix-file", "-"], ["--prefix-file - (standard input) is empty"]),
        (["--prefix-file", "latin1.txt"], ["latin1.txt", "invalid utf-8", "save it in utf-8"]),
        (["--prefix", "x", "--prefix-file", "prompt.txt"], ["--prefix and --prefix-file", "one"]),
        (["--prefix-file", "-", "--prefix-file", "-"], ["standard input", "only once"]),
        (["--prefix", ""], ["prefix must not be empty"]),
    ],
)
def test_bad_prompts_are_refused_before_tensorflow_loads(
    in_workdir,
    charlm_cli,
    no_tensorflow,  # noqa: F811 (the fixture of test_bad_input.py)
    args,
    words,
):
    message = refuses(charlm_cli, in_workdir, "sample", *args, words=words, env=no_tensorflow)
    assert "Traceback" not in message


@pytest.mark.parametrize("flag", [["--json"], ["--prefix-file", "prompt.txt"]])
def test_interactive_refuses_json_and_prefix_files_by_name(in_workdir, charlm_cli, flag):
    refuses(charlm_cli, in_workdir, "sample", "-i", *flag, words=[f"drop {flag[0]}"], usage=True)


def test_the_python_api_keeps_tensorflows_start_up_lines_off_stderr():
    """As the CLI does: `import charlm` then `charlm.load` (TensorFlow imported) prints nothing
    of TensorFlow's C++ chatter (a plain `import tensorflow` here prints several lines)."""
    code = "import charlm; charlm.Run; import tensorflow as tf; tf.constant(1) + 1; print('ok')"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.stdout == "ok\n" and p.stderr == "", p.stderr


def test_stop_and_prefix_read_escapes_as_the_interactive_prompt_does(run):
    """``--stop '\\n\\n'`` typed with plain quotes is a blank line, as ``$'\\n\\n'`` is;
    ``\\\\n`` is a backslash and an n."""
    typed, _ = sample(
        run, "--prefix", "A\\tB", "--length", "300", "--seed", "4", "--stop", "\\n\\n"
    )
    real, _ = sample(run, "--prefix", "A\tB", "--length", "300", "--seed", "4", "--stop", "\n\n")
    assert typed == real and typed.startswith("A\tB")
    literal, _ = sample(run, "--prefix", "a\\\\n", "--length", "5", "--seed", "1")
    assert literal.startswith("a\\n")
