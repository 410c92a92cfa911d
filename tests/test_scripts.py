"""scripts/services.sh: the virtualenv is installed into again only when what it holds is stale."""

from __future__ import annotations

import subprocess
from pathlib import Path

SERVICES = Path(__file__).resolve().parent.parent / "scripts" / "services.sh"

# Stands in for the virtualenv's interpreter: it records each pip command it is given.
FAKE_PYTHON = '#!/bin/sh\necho "$@" >> "$(dirname "$0")/../calls"\n'


def checkout_and_venv(tmp_path: Path, python_script: str) -> tuple[Path, Path]:
    """A checkout with a pyproject.toml, and a virtualenv whose interpreter is ``python_script``."""
    root, venv = tmp_path / "checkout", tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    root.mkdir()
    python = venv / "bin" / "python"
    python.write_text(python_script)
    python.chmod(0o755)
    (root / "pyproject.toml").write_text('[project]\nname = "x"\n')
    return root, venv


def ensure_venv(root: Path, venv: Path, extras: str) -> list[str]:
    """Runs ensure_venv for a checkout at root; returns the pip commands it ran."""
    calls = venv / "calls"
    calls.unlink(missing_ok=True)
    subprocess.run(
        ["bash", "-c", f'source "{SERVICES}"; ensure_venv "$1"', "-", extras],
        env={"ROOT": str(root), "VENV": str(venv), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    return calls.read_text().splitlines() if calls.exists() else []


def test_pip_runs_again_only_when_pyproject_or_the_extras_change(tmp_path: Path) -> None:
    root, venv = checkout_and_venv(tmp_path, FAKE_PYTHON)

    first = ensure_venv(root, venv, "test,bench")
    assert first[-1] == f"-m pip install -q -e {root}[test,bench]"
    assert ensure_venv(root, venv, "test,bench") == []

    assert ensure_venv(root, venv, "run")[-1] == f"-m pip install -q -e {root}[run]"
    assert ensure_venv(root, venv, "test,bench") == [], "each set of extras keeps its own stamp"

    (root / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "2"\n')
    assert ensure_venv(root, venv, "test,bench")[-1] == f"-m pip install -q -e {root}[test,bench]"
    assert ensure_venv(root, venv, "test,bench") == []


def test_a_failed_install_leaves_no_stamp_so_the_next_run_tries_again(tmp_path: Path) -> None:
    root, venv = checkout_and_venv(tmp_path, FAKE_PYTHON + "exit 1\n")

    failed = subprocess.run(
        ["bash", "-c", f'source "{SERVICES}"; ensure_venv test'],
        env={"ROOT": str(root), "VENV": str(venv), "PATH": "/usr/bin:/bin"},
        capture_output=True,
    )
    assert failed.returncode != 0
    assert list(venv.glob(".rakuda-installed*")) == []
