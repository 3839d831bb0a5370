#!/usr/bin/env python3
"""Set-up-and-run entry point that needs nothing but Python 3.11+.

    python3 tasks.py demo   # create .venv, install, run the reminder job end to end
    python3 tasks.py test   # create .venv, install, run the whole test suite
    python3 tasks.py lint   # ruff
    python3 tasks.py lock   # refresh constraints.txt (the pinned versions) from pyproject.toml

Installs take their versions from constraints.txt (pip-tools), so every machine gets the same set.
Extra arguments after `test` go to pytest.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".installed-sha256"
CONSTRAINTS = ROOT / "constraints.txt"
LOCK_COMMAND = [
    "pip-compile",
    "--quiet",
    "--upgrade",
    "--extra=dev",
    "--strip-extras",
    "--no-emit-index-url",
    "--no-emit-find-links",
    "--output-file=constraints.txt",
    "pyproject.toml",
]


def ensure_environment() -> None:
    """Create the virtualenv and (re)install the project when pyproject.toml or the lock changed."""
    if sys.version_info < (3, 11):
        sys.exit(f"reminder-pipeline needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + CONSTRAINTS.read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    if not (BIN / "python").exists():
        print("creating virtualenv in .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    print("installing reminder-pipeline and its dependencies (first run takes a few minutes)", flush=True)
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-c", str(CONSTRAINTS), "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(wanted)


def main(argv: list[str]) -> int:
    commands = {
        "demo": [str(BIN / "reminder-pipeline"), "demo"],
        # Two workers: the slowest tests mostly wait on Dagster daemons and sensor ticks, so two run
        # side by side in about the time of one (`-n 0` after `test` runs them one at a time).
        "test": [str(BIN / "python"), "-m", "pytest", "-n", "2", "--dist", "worksteal"],
        "lint": [str(BIN / "ruff"), "check", "."],
        "lock": [str(BIN / cmd) if i == 0 else cmd for i, cmd in enumerate(LOCK_COMMAND)],
    }
    if not argv or argv[0] not in commands:
        print(__doc__)
        return 2
    ensure_environment()
    return subprocess.run([*commands[argv[0]], *argv[1:]], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
