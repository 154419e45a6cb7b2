"""Scripts facet: shebangs and shell completions from real .apk files."""

from __future__ import annotations

from pathlib import Path

import pytest
from pkgfiles import analyze, capture_view, debian_files, hardlink, symlink, text_file

from qackage.analyze.scripts import (
    ScriptsFacet,
    bash_complete_commands,
    completion_shell,
    zsh_compdef_command,
)
from qackage.analyze.shebang import parse_shebang
from qackage.apk.writer import PlannedFile
from qackage.model import Completion, Script

EXEC = 0o755


@pytest.mark.parametrize(
    ("first_line", "interpreter", "shell"),
    [
        (b"#!/bin/sh -e", "/bin/sh", "sh"),
        (b"#!/usr/bin/env python3", "python3", None),
        (b"#!/usr/bin/env -S perl -w", "perl", None),
        (b"#!/usr/bin/env LC_ALL=C awk -f", "awk", None),
        (b"#!/usr/bin/env -u HOME bash", "bash", "bash"),
        (b"#! /usr/bin/zsh -f", "/usr/bin/zsh", "zsh"),
        (b"#!/bin/busybox sh", "/bin/busybox", "sh"),
        (b"#!/usr/bin/python3.12", "/usr/bin/python3.12", None),
        (b"#!/bin/ash", "/bin/ash", "ash"),
        (b"#!/usr/bin/fish", "/usr/bin/fish", "fish"),
        (b"#!/bin/ksh\r", "/bin/ksh", "ksh"),
    ],
)
def test_parse_shebang(first_line: bytes, interpreter: str, shell: str | None) -> None:
    parsed = parse_shebang(first_line + b"\necho\n")
    assert parsed is not None
    assert (parsed.interpreter, parsed.shell) == (interpreter, shell)


@pytest.mark.parametrize(
    "data",
    [b"#![allow(dead_code)]\nfn main() {}\n", b"#!\n", b"#!   \n", b"# not a shebang\n", b"\x7fELF", b"#!/bin/\0sh\n"],
)
def test_not_a_shebang(data: bytes) -> None:
    assert parse_shebang(data) is None


def test_env_without_a_command_is_not_a_script() -> None:
    assert parse_shebang(b"#!/usr/bin/env -i\n") is None


def test_scripts_in_a_package(tmp_path: Path) -> None:
    files = [
        text_file("usr/bin/tool-sh", "#!/bin/sh -e\necho hi\n", EXEC),
        text_file("usr/bin/tool-py", "#!/usr/bin/env python3\nprint('hi')\n", EXEC),
        text_file("usr/bin/tool-bash", "#!/bin/bash\nset -eu\n", EXEC),
        text_file("usr/libexec/tool/helper", "#! /usr/bin/zsh -f\nprint hi\n", EXEC),
        # Not executable, still a script: run with its interpreter.
        text_file("usr/share/tool/setup.fish", "#!/usr/bin/fish\necho hi\n"),
        hardlink("usr/bin/tool-sh-again", "usr/bin/tool-sh"),
        symlink("usr/bin/tool", "tool-sh"),  # links are not scripts of their own
        text_file("usr/src/tool/lib.rs", "#![allow(dead_code)]\nfn main() {}\n"),
        PlannedFile("usr/bin/binary", data=b"\x7fELF\x02\x01\x01" + bytes(64), mode=EXEC),
        text_file("usr/share/tool/README", "no shebang here\n"),
    ]
    facts = analyze(tmp_path, ScriptsFacet(), files)
    assert facts.scripts == (
        Script("usr/bin/tool-bash", "/bin/bash", "bash"),
        Script("usr/bin/tool-py", "python3", None),
        Script("usr/bin/tool-sh", "/bin/sh", "sh"),
        Script("usr/bin/tool-sh-again", "/bin/sh", "sh"),
        Script("usr/libexec/tool/helper", "/usr/bin/zsh", "zsh"),
        Script("usr/share/tool/setup.fish", "/usr/bin/fish", "fish"),
    )
    assert facts.completions == ()


def test_capture_keeps_only_the_shebang_line(tmp_path: Path) -> None:
    body = "#!/bin/sh\n" + "echo filler\n" * 10_000
    view = capture_view(tmp_path, [ScriptsFacet()], [text_file("usr/bin/big", body, EXEC)])
    assert view.contents["usr/bin/big"] == b"#!/bin/sh\n"


def test_completions_for_three_shells(tmp_path: Path) -> None:
    bash_foo = "_foo() { COMPREPLY=(); }\ncomplete -F _foo foo\n"
    git_style = (
        "__git_main() { :; }\n"
        "complete -o bashdefault -o default -o nospace -F __git_wrap__git_main git 2>/dev/null \\\n"
        "complete -F _gitk gitk\n"
    )
    files = [
        text_file("usr/share/bash-completion/completions/foo", bash_foo),
        text_file("usr/share/bash-completion/completions/bar.bash", "complete -W 'a b' bar\n"),
        symlink("usr/share/bash-completion/completions/fooctl", "foo"),
        text_file("etc/bash_completion.d/git-completion.bash", git_style),
        text_file("usr/share/zsh/site-functions/_foo", "#compdef foo fooctl=foo\n_arguments '-h[help]'\n"),
        text_file("usr/share/zsh/site-functions/_qux", "#compdef -p 'qux-*' qux\n"),
        text_file("usr/share/zsh/site-functions/prompt_foo_setup", "prompt_foo_setup() { :; }\n"),
        text_file("usr/share/zsh/vendor-completions/_baz", "# no compdef line\n_baz() { :; }\n"),
        text_file("usr/share/fish/vendor_completions.d/foo.fish", "complete -c foo -s h -l help\n"),
        text_file("usr/share/fish/completions/qux.fish", "complete -c qux -f\n"),
        text_file("usr/share/fish/vendor_functions.d/foo_helper.fish", "function foo_helper; end\n"),
    ]
    facts = analyze(tmp_path, ScriptsFacet(), files)
    assert facts.completions == (
        Completion("etc/bash_completion.d/git-completion.bash", "bash", "git"),
        Completion("usr/share/bash-completion/completions/bar.bash", "bash", "bar"),
        Completion("usr/share/bash-completion/completions/foo", "bash", "foo"),
        Completion("usr/share/bash-completion/completions/fooctl", "bash", "fooctl"),
        Completion("usr/share/fish/completions/qux.fish", "fish", "qux"),
        Completion("usr/share/fish/vendor_completions.d/foo.fish", "fish", "foo"),
        Completion("usr/share/zsh/site-functions/_foo", "zsh", "foo"),
        Completion("usr/share/zsh/site-functions/_qux", "zsh", "qux"),
        Completion("usr/share/zsh/vendor-completions/_baz", "zsh", "baz"),
    )


def test_completion_helpers() -> None:
    assert completion_shell("usr/share/bash-completion/completions/x") == "bash"
    assert completion_shell("usr/share/bash-completion/completions/sub/x") is None
    assert completion_shell("usr/share/fish/completions/x.txt") is None
    assert zsh_compdef_command("#compdef -k complete-word \\C-x\n") is None
    assert zsh_compdef_command("not compdef\n") is None
    assert bash_complete_commands("complete -F _a a b c\ncomplete -r\n# complete -F _x x\n") == ("a", "b", "c")


def test_hostile_content_never_raises(tmp_path: Path) -> None:
    files = [
        PlannedFile("usr/bin/garbage", data=b"#!" + bytes(range(256)) * 64, mode=EXEC),
        PlannedFile("usr/bin/long", data=b"#!/bin/" + b"a" * (1 << 20) + b"\n", mode=EXEC),
        PlannedFile("usr/share/bash-completion/completions/huge", data=b"complete " + b"-o " * (1 << 19)),
        PlannedFile("usr/share/zsh/site-functions/_bin", data=bytes(range(256)) * 16),
    ]
    facts = analyze(tmp_path, ScriptsFacet(), files)
    assert [s.path for s in facts.scripts] == ["usr/bin/long"]
    assert len(facts.scripts[0].interpreter) < 1100
    assert [(c.path, c.command) for c in facts.completions] == [
        ("usr/share/bash-completion/completions/huge", "huge"),
        ("usr/share/zsh/site-functions/_bin", "bin"),
    ]


def test_real_debian_curl(tmp_path: Path) -> None:
    """curl ships a zsh completion whose #compdef line names curl."""
    facts = analyze(tmp_path, ScriptsFacet(), debian_files("curl"))
    zsh = [c for c in facts.completions if c.shell == "zsh"]
    if not zsh:
        pytest.skip("this curl build ships no zsh completion")
    assert zsh == [Completion("usr/share/zsh/vendor-completions/_curl", "zsh", "curl")]
    assert facts.scripts == ()  # curl itself is an ELF program
