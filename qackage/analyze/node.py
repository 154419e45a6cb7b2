"""Node.js: the packages a package installs globally, with their entry points and commands.

Global packages live at ``usr/lib/node_modules/<name>/`` (``<@scope>/<name>/`` when scoped;
Debian uses ``usr/share/nodejs/``). Only those top-level packages are reported: anything
below a nested ``node_modules/`` is a bundled dependency, not what the package offers.

``name`` is the install name (the directory), since that is what ``require()`` resolves,
even when ``package.json`` says otherwise (npm aliases). A ``"bin": "cli.js"`` string
installs a command named after the package's own unscoped name, as npm does.
"""

from __future__ import annotations

import json
import re
from typing import ClassVar

from qackage.analyze.base import PackageView
from qackage.model import Entry, Facts, NodePackage

KIB = 1024
MIB = 1024 * KIB
PACKAGE_JSON_CAPTURE = 1 * MIB

_MANIFEST = re.compile(
    r"^(?:usr/(?:local/)?)(?:lib/node_modules|share/nodejs|lib/nodejs)"
    r"/(?P<name>@[^/@.][^/]*/[^/.][^/]*|[^/@.][^/]*)/package\.json$"
)


def install_name(path: str) -> str | None:
    """``usr/lib/node_modules/@scope/pkg/package.json`` -> ``@scope/pkg``; None if nested."""
    match = _MANIFEST.match(path)
    return None if match is None else match["name"]


def load_manifest(text: str) -> dict[str, object]:
    """The package.json object, or an empty one when the text is not a JSON object."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # malformed, or nested deep enough to blow the stack
        return {}
    return data if isinstance(data, dict) else {}


def _bins(manifest: dict[str, object], name: str) -> tuple[tuple[str, str], ...]:
    declared = manifest.get("bin")
    if isinstance(declared, str) and declared:
        own_name = manifest.get("name")
        command = own_name if isinstance(own_name, str) and own_name else name
        return ((command.rsplit("/", 1)[-1], declared),)
    if isinstance(declared, dict):
        return tuple(
            sorted((command, target) for command, target in declared.items() if command and isinstance(target, str))
        )
    return ()


def describe_package(path: str, name: str, text: str | None) -> NodePackage:
    manifest = load_manifest(text) if text is not None else {}
    version = manifest.get("version")
    main = manifest.get("main")
    return NodePackage(
        name=name,
        version=version if isinstance(version, str) else "",
        path=path,
        main=main if isinstance(main, str) and main else None,
        bins=_bins(manifest, name),
    )


def find_packages(view: PackageView) -> tuple[NodePackage, ...]:
    packages = [
        describe_package(entry.path, name, view.text(entry.path))
        for entry in view.files()
        if (name := install_name(entry.path)) is not None
    ]
    return tuple(sorted(packages, key=lambda p: (p.name, p.path)))


class NodeFacet:
    """Globally installed Node.js packages from their package.json."""

    name: ClassVar[str] = "node"

    def capture(self, entry: Entry, head: bytes) -> int:
        if not entry.path.endswith("/package.json") or install_name(entry.path) is None:
            return 0
        return min(entry.size, PACKAGE_JSON_CAPTURE)

    def analyze(self, view: PackageView, earlier: Facts) -> Facts:
        return Facts(node_packages=find_packages(view))
