#!/usr/bin/env python3
"""Container HEALTHCHECK for every role of the reminder-pipeline image (docs/deployment-container.md).

The image runs one of three long-lived roles, chosen by its command, and Docker allows one
HEALTHCHECK per image. This script finds the role and asks that role whether it serves:

- ``$ROLE`` when set (``webserver``, ``code-server``, ``daemon``, or ``none`` to skip the check);
- else the command line of PID 1 (``reminder-pipeline serve <role> ...``; with ``init: true`` PID 1
  is the init, whose command line holds the same words), else of any process in the container.

webserver:   GET http://127.0.0.1:<port>/server_info answers 200 (port: ``--port``, default 3000)
code-server: ``dagster api grpc-health-check -p <port>`` says SERVING (``--port``, else CODE_SERVER_PORT, 4000)
daemon:      ``dagster-daemon liveness-check``: every Dagster daemon wrote a heartbeat recently
             (run with the environment of the ``dagster-daemon`` process, which holds DAGSTER_PG_URL)

Any other command (``migrate``, ``watchdog``, ``doctor``) has nothing to serve: healthy.
Exit code 0 healthy, 1 unhealthy; one line of output either way, never a setting's value.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

ROLES = ("webserver", "code-server", "daemon")
BIN = Path(sys.executable).parent
TIMEOUT = 15


def _cmdline(pid: str) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _pids() -> list[str]:
    return sorted((entry.name for entry in Path("/proc").iterdir() if entry.name.isdigit()), key=int)


def _serve_args(args: list[str]) -> tuple[str, list[str]] | None:
    """(role, the arguments after it) when `args` is a `reminder-pipeline ... serve <role> ...` command."""
    for index, word in enumerate(args[:-1]):
        if word == "serve" and args[index + 1] in ROLES:
            return args[index + 1], args[index + 2 :]
    return None


def _option(args: list[str], name: str) -> str | None:
    for index, word in enumerate(args):
        if word == name and index + 1 < len(args):
            return args[index + 1]
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    return None


def find_role() -> tuple[str | None, list[str]]:
    role = os.environ.get("ROLE", "").strip()
    if role == "none":
        return None, []
    found = _serve_args(_cmdline("1"))
    if found is None:
        for pid in _pids():
            found = _serve_args(_cmdline(pid))
            if found is not None:
                break
    if role:
        if role not in ROLES:
            print(f"ROLE must be one of {', '.join(ROLES)} or none")
            sys.exit(1)
        return role, found[1] if found and found[0] == role else []
    return (found[0], found[1]) if found else (None, [])


def _host(args: list[str]) -> str:
    host = _option(args, "--host") or "127.0.0.1"
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def check_webserver(args: list[str]) -> int:
    host, port = _host(args), _option(args, "--port") or "3000"
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/server_info"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:  # loopback, fixed scheme
            response.read(4096)
            ok = response.status == 200
    except Exception as error:  # refused, timeout, HTTP error: unhealthy either way
        print(f"webserver: {url} did not answer ({type(error).__name__})")
        return 1
    print(f"webserver: {url} {'answers' if ok else 'answered an error'}")
    return 0 if ok else 1


def _code_server_port(args: list[str]) -> str:
    port = _option(args, "--port")
    if port:
        return port
    try:  # CODE_SERVER_PORT from the environment or the env file, as the role itself read it
        from reminder_pipeline.core import settings

        return str(settings.load().code_server_port)
    except Exception:
        return os.environ.get("CODE_SERVER_PORT", "4000")


def check_code_server(args: list[str]) -> int:
    port = _code_server_port(args)
    command = [str(BIN / "dagster"), "api", "grpc-health-check", "-p", port, "-h", _host(args)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        print(f"code-server: no answer on port {port} within {TIMEOUT} s")
        return 1
    print(f"code-server: port {port}: {(result.stdout or result.stderr).strip().splitlines()[-1:] or ['?']}")
    return 0 if result.returncode == 0 else 1


def _daemon_environment() -> dict[str, str] | None:
    """The environment of the running `dagster-daemon run` (the CLI exported DAGSTER_PG_URL to it)."""
    for pid in _pids():
        args = _cmdline(pid)
        if any(Path(word).name == "dagster-daemon" for word in args[:2]) and "run" in args:
            try:
                raw = Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                return None
            pairs = (part.decode(errors="replace").split("=", 1) for part in raw.split(b"\0") if b"=" in part)
            return dict(pairs)
    return None


def check_daemon() -> int:
    environment = _daemon_environment()
    if environment is None:
        print("daemon: no dagster-daemon process is running")
        return 1
    try:
        result = subprocess.run(
            [str(BIN / "dagster-daemon"), "liveness-check"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env=environment,
            cwd=environment.get("DAGSTER_HOME") or None,
        )
    except subprocess.TimeoutExpired:
        print(f"daemon: liveness check took longer than {TIMEOUT} s")
        return 1
    lines = (result.stdout or "").strip().splitlines()
    print(f"daemon: {lines[-1] if lines else 'liveness check failed (exit ' + str(result.returncode) + ')'}")
    return 0 if result.returncode == 0 else 1


def main() -> int:
    role, args = find_role()
    if role is None:
        print("no serve role in this container: nothing to check")
        return 0
    if role == "webserver":
        return check_webserver(args)
    if role == "code-server":
        return check_code_server(args)
    return check_daemon()


if __name__ == "__main__":
    sys.exit(main())
