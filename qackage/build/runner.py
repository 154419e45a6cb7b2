"""Run one ``runs:`` step on the host, the way melange runs it inside its build sandbox.

The step's text becomes ``/bin/sh -c 'set -e; cd WD; <runs>'`` in the workspace, with a
small fixed environment so builds do not depend on the caller's shell. A failure becomes
one `InputError` line that names the step and quotes the step's last line of output.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from qackage.errors import InputError

STEP_TIMEOUT_SECONDS = 300
BUILD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/bin:/usr/sbin:/sbin:/bin"
_OUTPUT_TAIL_BYTES = 4096


@dataclass(frozen=True, slots=True)
class StepCommand:
    """A step ready to run: text already substituted."""

    where: str  # "hello/melange.yaml: hello pipeline step 'Build'"
    script: str
    working_directory: str = ""
    environment: tuple[tuple[str, str], ...] = ()


def base_environment(workspace: Path) -> dict[str, str]:
    return {
        "PATH": BUILD_PATH,
        "HOME": str(workspace),
        "LC_ALL": "C",
        "SOURCE_DATE_EPOCH": "0",
        "TMPDIR": str(workspace / ".tmp"),
    }


def shell_script(command: StepCommand) -> str:
    lines = ["set -e"]
    if command.working_directory:
        directory = shlex.quote(command.working_directory)
        lines.append(f"[ -d {directory} ] || mkdir -p {directory}")
        lines.append(f"cd {directory}")
    lines.append(command.script)
    return "\n".join(lines) + "\n"


def run_step(
    command: StepCommand,
    workspace: Path,
    environment: Mapping[str, str],
    *,
    timeout: float = STEP_TIMEOUT_SECONDS,
) -> None:
    env = {**base_environment(workspace), **environment, **dict(command.environment)}
    Path(env["TMPDIR"]).mkdir(parents=True, exist_ok=True)
    # Output goes to a file, not a pipe: a step that leaves a background process holding
    # its stdout must not keep us waiting after the shell itself has finished.
    with tempfile.TemporaryFile() as output:
        try:
            process = subprocess.Popen(
                ["/bin/sh", "-c", shell_script(command)],
                cwd=workspace,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise InputError(f"{command.where}: cannot start /bin/sh: {exc.strerror or exc}") from exc
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _end_group(process.pid)
            process.wait()
            raise InputError(f"{command.where}: did not finish within {timeout:g} s") from None
        # Anything the step left running in its own session is ours to end.
        _end_group(process.pid)
        if code != 0:
            reason = f"killed by signal {-code}" if code < 0 else f"exit {code}"
            last = _last_line(output)
            detail = f": {last}" if last else ""
            raise InputError(f"{command.where} failed ({reason}){detail}")


def _end_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _last_line(output: IO[bytes]) -> str:
    output.seek(0, os.SEEK_END)
    size = output.tell()
    output.seek(max(0, size - _OUTPUT_TAIL_BYTES))
    tail: bytes = output.read()
    for line in reversed(tail.decode("utf-8", errors="replace").splitlines()):
        if line.strip():
            text = " ".join(line.split())
            return text if len(text) <= 200 else text[:197] + "..."
    return ""
