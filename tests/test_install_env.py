"""Which Python `make` uses (scripts/select_python.sh): an active environment or a plain
python3 as they are; an externally managed python3 (PEP 668 marker) gets the project .venv,
created once and reused."""
import os
import shutil
import subprocess
import sys

from conftest import REPO


def select(repo, env_extra, base=sys.executable):
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX")}
    env.update(env_extra)
    return subprocess.run(["sh", str(repo / "scripts" / "select_python.sh"), base], capture_output=True,
                          text=True, env=env, timeout=300)


def fake_repo(tmp_path):
    (tmp_path / "repo" / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "select_python.sh", tmp_path / "repo" / "scripts")
    return tmp_path / "repo"


def test_active_environment_or_unmanaged_python_is_used_as_is(tmp_path):
    repo = fake_repo(tmp_path)
    marked = tmp_path / "stdlib"
    marked.mkdir()
    (marked / "EXTERNALLY-MANAGED").write_text("[externally-managed]\n")
    for env in ({"VIRTUAL_ENV": "/some/venv", "COMPACTEMB_STDLIB_DIR": str(marked)},
                {"CONDA_PREFIX": "/opt/conda", "COMPACTEMB_STDLIB_DIR": str(marked)},
                {"COMPACTEMB_STDLIB_DIR": str(tmp_path)}):  # no marker there
        proc = select(repo, env)
        assert proc.returncode == 0 and proc.stdout.strip() == sys.executable and proc.stderr == "", (env, proc.stderr)
    assert not (repo / ".venv").exists()


def test_externally_managed_python_gets_a_project_venv_once(tmp_path):
    repo = fake_repo(tmp_path)
    marked = tmp_path / "stdlib"
    marked.mkdir()
    (marked / "EXTERNALLY-MANAGED").write_text("[externally-managed]\n")
    env = {"COMPACTEMB_STDLIB_DIR": str(marked)}
    first = select(repo, env)
    assert first.returncode == 0, first.stderr
    venv_python = repo / ".venv" / "bin" / "python"
    assert first.stdout.strip() == str(venv_python) and venv_python.exists()
    assert "externally managed (PEP 668)" in first.stderr and "creating the project environment" in first.stderr
    stamp = venv_python.stat().st_mtime_ns
    again = select(repo, env)  # reused, not re-created
    assert again.returncode == 0 and again.stdout.strip() == str(venv_python)
    assert "using the project environment" in again.stderr and venv_python.stat().st_mtime_ns == stamp
    out = subprocess.run([str(venv_python), "-c", "import sys; print(sys.prefix != sys.base_prefix)"],
                         capture_output=True, text=True)
    assert out.stdout.strip() == "True"


def test_makefile_uses_the_selection_unless_python_is_given():
    text = (REPO / "Makefile").read_text()
    assert "scripts/select_python.sh" in text and "ifeq ($(origin PYTHON), undefined)" in text
    # the default, whatever TEST_WORKERS the suite itself was started with (make test TEST_WORKERS=1)
    env = {k: v for k, v in os.environ.items() if k not in ("TEST_WORKERS", "MAKEFLAGS", "MAKELEVEL")}
    out = subprocess.run(["make", "-n", "test", "PYTHON=/opt/mypython"], cwd=REPO, capture_output=True, text=True,
                         env=env)
    assert "/opt/mypython -m pytest -q -n 2 --durations=15 tests" in out.stdout  # two test workers by default
    serial = subprocess.run(["make", "-n", "test", "PYTHON=/opt/mypython", "TEST_WORKERS=0"], cwd=REPO,
                            capture_output=True, text=True)
    assert "/opt/mypython -m pytest -q -n 0 --durations=15 tests" in serial.stdout
