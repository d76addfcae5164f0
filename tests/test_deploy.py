"""The ways to deploy ``charlm serve`` that the README and the Dockerfile show: built and run
where docker is on the machine; everywhere, the Dockerfile linted (its instructions, the files
it copies, the flags it passes, the port it exposes), and every ``charlm`` command the README
shows checked against the command's real flags."""

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from charlm.cli import main

ROOT = Path(__file__).resolve().parent.parent
INSTRUCTIONS = {
    "FROM",
    "WORKDIR",
    "COPY",
    "RUN",
    "USER",
    "ENV",
    "EXPOSE",
    "HEALTHCHECK",
    "ENTRYPOINT",
    "CMD",
    "ARG",
    "LABEL",
}


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions, continuation lines joined, comments left out."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]


def test_the_dockerfile_is_well_formed_and_serves_as_a_user_on_its_exposed_port():
    steps = instructions()
    assert {kind for kind, _ in steps} <= INSTRUCTIONS
    assert steps[0][0] == "FROM" and steps[0][1].startswith("python:3.")
    for kind, arg in steps:
        if kind == "COPY":
            *sources, _ = arg.split()
            assert all((ROOT / s).exists() for s in sources), arg
    entry = json.loads(dict(steps)["ENTRYPOINT"])
    assert entry[:2] == ["charlm", "serve"]
    assert set(a for a in entry if a.startswith("--")) <= help_flags("serve")
    assert entry[entry.index("--host") + 1] == "0.0.0.0"
    assert dict(steps)["EXPOSE"] == entry[entry.index("--port") + 1]
    assert dict(steps)["USER"] not in ("root", "0")
    assert "/health" in dict(steps)["HEALTHCHECK"]
    assert '".[serve]"' in dict(steps)["RUN"]  # the server's own dependencies


def help_flags(command: str) -> set[str]:
    """Every flag ``charlm COMMAND`` takes, from its own help."""
    help_text = CliRunner().invoke(main, [command, "--help"]).stdout
    return set(re.findall(r"(--[a-z][a-z0-9-]+)", help_text))


def readme_commands() -> list[tuple[str, str]]:
    """Each ``charlm COMMAND ...`` line of the README's code (its comment left out), with
    the command: the README's own words, to hold against the code."""
    found = []
    for line in (ROOT / "README.md").read_text().splitlines():
        text = line.strip().split("ExecStart=")[-1]
        words = text.split()
        code = words and (words[0] == "charlm" or words[0].endswith("/charlm"))  # not prose
        if code and len(words) > 1 and not text.startswith("charlm trains"):
            if re.fullmatch(r"[a-z]+", words[1]):
                found.append((words[1], text.split("  #")[0].split(" # ")[0]))
    return found


def test_every_flag_the_readme_shows_exists():
    commands = readme_commands()
    assert {c for c, _ in commands} >= {"train", "sample", "eval", "info", "export", "serve"}
    flags = {c: help_flags(c) for c, _ in commands}
    for command, line in commands:
        for word in shlex.split(line.replace("\\", ""), comments=False):
            if word.startswith("--"):
                assert word.split("=")[0] in flags[command], (word, line)


def docker_runs() -> bool:
    """Whether a docker daemon answers here (a docker command alone cannot build)."""
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode == 0


@pytest.mark.skipif(not docker_runs(), reason="no docker daemon on this machine")
def test_the_image_builds():
    p = subprocess.run(
        ["docker", "build", "-q", "-t", "charlm-test", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert p.returncode == 0, p.stderr[-2000:]


def test_ci_runs_exactly_the_readmes_test_command():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", readme, flags=re.S)
    test_command = " ".join(
        part.strip() for part in blocks[1].replace("\\\n", " ").split("\n") if part.strip()
    )
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert " ".join(test_command.split()) == " ".join(ci.split())
    assert "pytest" in ci and "charlm train" in blocks[0]
