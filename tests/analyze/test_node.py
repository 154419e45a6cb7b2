"""Node facet: globally installed packages from real .apk files."""

from __future__ import annotations

import json
from pathlib import Path

from pkgfiles import analyze, capture_view, text_file

from qackage.analyze.node import NodeFacet, install_name, load_manifest
from qackage.apk.writer import PlannedFile
from qackage.model import Facts, NodePackage

MODULES = "usr/lib/node_modules"


def _json(path: str, manifest: object) -> PlannedFile:
    return text_file(path, json.dumps(manifest, indent=2) + "\n")


def _node_tree() -> list[PlannedFile]:
    return [
        _json(
            f"{MODULES}/npm/package.json",
            {
                "name": "npm",
                "version": "10.2.4",
                "main": "./index.js",
                "bin": {"npx": "bin/npx-cli.js", "npm": "bin/npm-cli.js"},
                "dependencies": {"abbrev": "^2.0.0"},
            },
        ),
        text_file(f"{MODULES}/npm/index.js", "module.exports = require('./lib/npm.js')\n"),
        text_file(f"{MODULES}/npm/bin/npm-cli.js", "#!/usr/bin/env node\n", mode=0o755),
        # bundled dependencies and inner manifests are not what the package offers
        _json(f"{MODULES}/npm/node_modules/abbrev/package.json", {"name": "abbrev", "version": "2.0.0"}),
        _json(f"{MODULES}/npm/node_modules/@npmcli/arborist/package.json", {"name": "@npmcli/arborist"}),
        _json(f"{MODULES}/npm/lib/package.json", {"type": "commonjs"}),
        _json(
            f"{MODULES}/@angular/cli/package.json",
            {"name": "@angular/cli", "version": "17.0.0", "bin": {"ng": "./bin/ng.js"}},
        ),
        # a string "bin" is a command named after the unscoped package name
        _json(
            f"{MODULES}/@vue/cli-service/package.json",
            {"name": "@vue/cli-service", "version": "5.0.8", "main": "lib/Service.js", "bin": "bin/vue-cli-service.js"},
        ),
        # an npm alias: require() resolves the directory name
        _json(
            f"{MODULES}/typescript-legacy/package.json", {"name": "typescript", "version": "4.9.5", "bin": "bin/tsc"}
        ),
        _json("usr/share/nodejs/semver/package.json", {"name": "semver", "version": "7.5.4", "main": "index.js"}),
        text_file(f"{MODULES}/.package-lock.json", "{}"),
        text_file(f"{MODULES}/.bin/ng", "../@angular/cli/bin/ng.js"),
        _json("usr/share/doc/npm/package.json", {"name": "not-installed"}),
    ]


def test_top_level_packages(tmp_path: Path) -> None:
    facts = analyze(tmp_path, NodeFacet(), _node_tree())
    assert facts == Facts(
        node_packages=(
            NodePackage(
                "@angular/cli", "17.0.0", f"{MODULES}/@angular/cli/package.json", bins=(("ng", "./bin/ng.js"),)
            ),
            NodePackage(
                "@vue/cli-service",
                "5.0.8",
                f"{MODULES}/@vue/cli-service/package.json",
                main="lib/Service.js",
                bins=(("cli-service", "bin/vue-cli-service.js"),),
            ),
            NodePackage(
                "npm",
                "10.2.4",
                f"{MODULES}/npm/package.json",
                main="./index.js",
                bins=(("npm", "bin/npm-cli.js"), ("npx", "bin/npx-cli.js")),
            ),
            NodePackage("semver", "7.5.4", "usr/share/nodejs/semver/package.json", main="index.js"),
            NodePackage(
                "typescript-legacy",
                "4.9.5",
                f"{MODULES}/typescript-legacy/package.json",
                bins=(("typescript", "bin/tsc"),),
            ),
        )
    )


def test_capture_keeps_only_top_level_manifests(tmp_path: Path) -> None:
    view = capture_view(tmp_path, [NodeFacet()], _node_tree())
    assert sorted(view.contents) == [
        f"{MODULES}/@angular/cli/package.json",
        f"{MODULES}/@vue/cli-service/package.json",
        f"{MODULES}/npm/package.json",
        f"{MODULES}/typescript-legacy/package.json",
        "usr/share/nodejs/semver/package.json",
    ]


def test_hostile_manifests_keep_the_install_name(tmp_path: Path) -> None:
    files = [
        PlannedFile(f"{MODULES}/garbage/package.json", data=bytes(range(256))),
        text_file(f"{MODULES}/deep/package.json", "[" * 200_000 + "]" * 200_000),
        text_file(f"{MODULES}/list/package.json", '["not", "an", "object"]'),
        text_file(f"{MODULES}/bignum/package.json", '{"version": ' + "9" * 5000 + "}"),
        _json(
            f"{MODULES}/wrong-types/package.json",
            {"version": 2, "main": ["a"], "bin": {"ok": "cli.js", "bad": 3, "": "empty.js", "nested": {"x": 1}}},
        ),
        _json(f"{MODULES}/empty-bin/package.json", {"version": "1.0.0", "bin": "", "main": ""}),
    ]
    facts = analyze(tmp_path, NodeFacet(), files)
    assert facts.node_packages == (
        NodePackage("bignum", "", f"{MODULES}/bignum/package.json"),
        NodePackage("deep", "", f"{MODULES}/deep/package.json"),
        NodePackage("empty-bin", "1.0.0", f"{MODULES}/empty-bin/package.json"),
        NodePackage("garbage", "", f"{MODULES}/garbage/package.json"),
        NodePackage("list", "", f"{MODULES}/list/package.json"),
        NodePackage("wrong-types", "", f"{MODULES}/wrong-types/package.json", bins=(("ok", "cli.js"),)),
    )


def test_install_name_and_loader() -> None:
    assert install_name(f"{MODULES}/@scope/pkg/package.json") == "@scope/pkg"
    assert install_name(f"{MODULES}/pkg/package.json") == "pkg"
    assert install_name("usr/local/lib/node_modules/pkg/package.json") == "pkg"
    assert install_name(f"{MODULES}/@scope/package.json") is None
    assert install_name(f"{MODULES}/pkg/node_modules/dep/package.json") is None
    assert install_name(f"{MODULES}/.bin/package.json") is None
    assert load_manifest('{"name": "x"}') == {"name": "x"}
    assert load_manifest("{") == {}
