"""Test helper: a minimal sandbox root made from the host's static busybox.

The root looks like a tiny Wolfi image: ``/usr/bin/busybox``, a symlink for every applet at
the path busybox itself names (``/bin/sh`` included), ``/etc/passwd`` with root and the
``build`` user (1000), and the mount points the sandbox uses.

The fixtures ``template_root`` (built once per module), ``root`` (each test's own copy),
``workspace`` and ``sandbox`` (the real bubblewrap) are found by pytest in the test module
that imports them:

    # fixtures: pytest finds them in this module, the tests ask for them by name
    from minroot import root_fixture, sandbox_fixture, template_root_fixture, workspace_fixture  # noqa: F401
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from qackage.validate.bubblewrap import Bubblewrap
from qackage.validate.sandboxing import Sandbox, SandboxLimits, SandboxOutcome, SandboxRequest

MELANGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/bin:/usr/sbin:/sbin:/bin"
BUSYBOX_CANDIDATES = (Path("/bin/busybox"), Path("/usr/bin/busybox"))
PASSWD = "root:x:0:0:root:/root:/bin/sh\nbuild:x:1000:1000:build:/home/build:/bin/sh\n"
GROUP = "root:x:0:\nbuild:x:1000:\n"
# A step that hangs fails its test within a minute rather than the sandbox's five.
STEP_LIMITS = SandboxLimits(wall_seconds=60)


def static_busybox() -> Path:
    """The host's statically linked busybox (``busybox-static``); AssertionError if missing."""
    for candidate in BUSYBOX_CANDIDATES:
        if candidate.is_file() and _is_static(candidate):
            return candidate
    raise AssertionError("a static busybox is needed: apt-get install busybox-static")


def make_minimal_root(destination: Path) -> Path:
    """Build the root in ``destination`` (created) and return it."""
    busybox = static_busybox()
    target = destination / "usr" / "bin" / "busybox"
    target.parent.mkdir(parents=True)
    shutil.copyfile(busybox, target)  # a copy: a sandbox writing / must not reach the host's binary
    target.chmod(0o755)
    applets = subprocess.run([str(busybox), "--list-full"], capture_output=True, text=True, check=True).stdout
    for applet in applets.split():
        link = destination / applet
        if link == target:
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to("/usr/bin/busybox")
    assert (destination / "bin" / "sh").is_symlink(), "busybox --list-full did not name bin/sh"
    etc = destination / "etc"
    etc.mkdir()
    (etc / "passwd").write_text(PASSWD)
    (etc / "group").write_text(GROUP)
    for mount_point in ("tmp", "proc", "dev", "run", "root", "home/build"):
        (destination / mount_point).mkdir(parents=True, exist_ok=True)
    return destination


def copy_root(template: Path, destination: Path) -> Path:
    """A private copy of ``template`` (symlinks kept as links), as each test block gets."""
    shutil.copytree(template, destination, symlinks=True)
    return destination


def melange_script(runs: str, working_directory: str = "/home/build") -> str:
    """``runs`` wrapped the way melange wraps a test step (the sandbox adds nothing)."""
    directory = shlex.quote(working_directory)
    return f"set -eo pipefail\n[ -d {directory} ] || mkdir -p {directory}\ncd {directory}\n{runs}\nexit 0"


def melange_environment(**extra: str) -> dict[str, str]:
    """The environment melange gives a test step, plus ``extra``."""
    return {"PATH": MELANGE_PATH, "HOME": "/home/build", **extra}


def run_step(
    sandbox: Sandbox,
    root: Path,
    workspace: Path,
    runs: str,
    limits: SandboxLimits = STEP_LIMITS,
    *,
    environment: Mapping[str, str] | None = None,
    uid: int = 0,
    gid: int = 0,
) -> SandboxOutcome:
    """Run ``runs`` as a melange test step in ``root``, with melange's environment unless
    another is given."""
    request = SandboxRequest(
        root=root,
        workspace=workspace,
        script=melange_script(runs),
        environment=melange_environment() if environment is None else environment,
        limits=limits,
        uid=uid,
        gid=gid,
    )
    return sandbox.run(request)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", name="template_root")
def template_root_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per test module; tests get copies (`root`)."""
    return make_minimal_root(tmp_path_factory.mktemp("minroot") / "root")


@pytest.fixture(name="root")
def root_fixture(template_root: Path, tmp_path: Path) -> Path:
    return copy_root(template_root, tmp_path / "root")


@pytest.fixture(name="workspace")
def workspace_fixture(tmp_path: Path) -> Path:
    path = tmp_path / "workspace"
    path.mkdir()
    return path


@pytest.fixture(scope="module", name="sandbox")
def sandbox_fixture() -> Bubblewrap:
    assert Bubblewrap.available() is None, "bubblewrap must work here (CI installs it)"
    return Bubblewrap()


def _is_static(path: Path) -> bool:
    with path.open("rb") as stream:
        return not any(segment["p_type"] == "PT_INTERP" for segment in ELFFile(stream).iter_segments())
