"""XLA's persistent compilation cache, kept per CPU under ``~/.cache/charlm/xla`` by every
command (charlm.fsio.keep_xla_compiles): the next ``charlm sample`` reads the sampling loop
back instead of compiling it again."""

import os
import subprocess
import sys

from conftest import copy_run

from charlm.fsio import keep_xla_compiles


def test_the_cache_is_a_folder_per_cpu_under_the_users_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("TF_XLA_FLAGS", raising=False)
    monkeypatch.delenv("CHARLM_XLA_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = keep_xla_compiles()
    assert folder is not None and folder.parent == tmp_path / "cache" / "charlm" / "xla"
    assert folder.is_dir() and len(folder.name) == 12
    assert os.environ["TF_XLA_FLAGS"] == f"--tf_xla_persistent_cache_directory={folder}"


def test_a_users_own_flags_a_zero_or_a_space_in_the_path_leave_xla_as_it_is(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("TF_XLA_FLAGS", "--xla_cpu_use_thunk_runtime=false")
    assert keep_xla_compiles() is None
    assert os.environ["TF_XLA_FLAGS"] == "--xla_cpu_use_thunk_runtime=false"
    monkeypatch.delenv("TF_XLA_FLAGS")
    monkeypatch.setenv("CHARLM_XLA_CACHE", "0")
    assert keep_xla_compiles() is None and "TF_XLA_FLAGS" not in os.environ
    monkeypatch.delenv("CHARLM_XLA_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "my cache"))  # flags split on spaces
    assert keep_xla_compiles() is None and "TF_XLA_FLAGS" not in os.environ
    assert not (tmp_path / "my cache").exists()


def test_charlm_sample_leaves_its_compiled_loop_in_the_cache(workdir, shared_run):
    copy_run(shared_run("lstm"), workdir / "runs" / "r")
    env = {k: v for k, v in os.environ.items() if k not in ("TF_XLA_FLAGS", "CHARLM_XLA_CACHE")}
    env["XDG_CACHE_HOME"] = str(workdir / "cache")
    p = subprocess.run(
        [sys.executable, "-m", "charlm", "sample", "--length", "20", "--seed", "1"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    (folder,) = (workdir / "cache" / "charlm" / "xla").iterdir()
    assert any(f.name.startswith("xla_compile_cache") for f in folder.iterdir())
