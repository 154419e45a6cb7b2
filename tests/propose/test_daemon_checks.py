"""Daemon functional checks: launch plans and probe reading on data, then daemons started,
questioned and stopped in the sandbox, the checks proved and shown to fail on broken
copies (a daemon that exits at once, a missing config)."""

from __future__ import annotations

from pathlib import Path

import pytest
from funckit import (
    analysis_of,
    analysis_with,
    assert_every_step_fails,
    drop_files,
    failures,
    gather,
    outputs,
    prove,
    replace_file,
    request_for,
    result,
    rewrite,
    synthetic_package,
)

from qackage.build import RepositoryBuild
from qackage.model import (
    Analysis,
    Candidate,
    CheckKind,
    ConfigFile,
    Daemon,
    Facts,
    ProbeResult,
    ServiceDefinition,
    ServiceManager,
)
from qackage.propose.cli_usage import parse_help
from qackage.propose.daemon_checks import DaemonProposer, config_test_key, help_key, run_key
from qackage.propose.daemon_plan import (
    choose_request,
    config_flag,
    config_test_flag,
    foreground_flag,
    grep_basic_escape,
    plan_launch,
    read_run,
    ready_text,
)

TINYD_HELP = """\
Usage: tinyd [-f] [-t] [-c FILE]

  -c FILE  read settings from FILE (default /etc/tinyd/tinyd.conf)
  -f       stay in the foreground
  -t       check the configuration and exit
  -v       show the version and exit
  -h       show this help and exit
"""

TINYD = Daemon("usr/sbin/tinyd", "tinyd", ("in usr/sbin",), ports=(7070,), config_files=("etc/tinyd/tinyd.conf",))


def _tinyd(*services: ServiceDefinition) -> Analysis:
    facts = Facts(daemons=(TINYD,), services=services, config_files=(ConfigFile("etc/tinyd/tinyd.conf", (7070,)),))
    return analysis_with(facts, name="tinyd", version="0.3.1-r0")


def _run(ready: str, *, ping: str = "PONG\n", http: str = "ERR\n", greeting: str = "", port: int = 7070,
         status: int = 0) -> str:  # fmt: skip
    return (
        f"qk-alive: yes\nqk-port: {port}\nqk-waited: 3\n"
        f"qk-section: greeting\n{greeting}qk-section: ping\n{ping}qk-section: http\n{http}"
        f"qk-section: end\nqk-status: {status}\nqk-section: ready-log\n{ready}qk-section: log\n{ready}bye\n"
    )


# --------------------------------------------------------------------------- launch plans


def test_help_flags_for_foreground_config_and_checks() -> None:
    usage = parse_help(TINYD_HELP, "tinyd")
    assert (foreground_flag(usage), config_flag(usage), config_test_flag(usage)) == ("-f", "-c", "-t")
    nginx_like = parse_help("  -g DIRECTIVES  set global directives\n  -t  test configuration and exit\n", "x")
    assert (foreground_flag(nginx_like), config_flag(nginx_like), config_test_flag(nginx_like)) == (None, None, "-t")


def test_the_service_command_runs_with_its_config_copied() -> None:
    unit = ServiceDefinition("usr/lib/systemd/system/tinyd.service", ServiceManager.SYSTEMD, "tinyd",
                             "/usr/sbin/tinyd -f -c /etc/tinyd/tinyd.conf")  # fmt: skip
    launch = plan_launch(_tinyd(unit), TINYD, parse_help("", "tinyd"))
    assert launch is not None and launch.source == "systemd service tinyd"
    assert launch.command == "/usr/sbin/tinyd -f -c /tmp/tinyd/tinyd.conf"
    assert launch.setup == "mkdir -p /tmp/tinyd\ncp /etc/tinyd/tinyd.conf /tmp/tinyd/tinyd.conf\n"


def test_the_help_text_is_the_fallback() -> None:
    templated = ServiceDefinition("etc/init.d/tinyd", ServiceManager.OPENRC, "tinyd", "/usr/sbin/tinyd $TINYD_OPTS")
    launch = plan_launch(_tinyd(templated), TINYD, parse_help(TINYD_HELP, "tinyd"))
    assert launch is not None and launch.source == "help text"
    assert launch.command == "/usr/sbin/tinyd -f -c /tmp/tinyd/tinyd.conf"
    assert plan_launch(_tinyd(), TINYD, parse_help("Usage: tinyd [-c FILE]\n", "tinyd")) is None


# --------------------------------------------------------------------------- reading runs


def test_runs_are_read_into_values_and_sections() -> None:
    run = read_run(_run("tinyd: listening on port 7070\n"))
    assert (run.alive, run.port, run.status, run.killed) == (True, 7070, 0, False)
    assert run.section("ping") == "PONG"
    assert run.section("log") == "tinyd: listening on port 7070\nbye"


def test_ready_text_keeps_only_what_both_runs_logged() -> None:
    first = read_run(_run("2024-05-01T10:00:01Z [pid 311] server listening on :7070\n"))
    second = read_run(_run("2024-05-01T10:00:09Z [pid 4] server listening on :7070\n"))
    assert ready_text(first, second, "1.0-r0") == "server listening on :7070"
    versioned = read_run(_run("tinyd 0.3.1 listening\n"))
    assert ready_text(versioned, versioned, "0.3.1-r0") is None
    assert grep_basic_escape("listening on [::]:80.") == r"listening on \[::\]:80\."


def test_requests_prefer_a_line_protocol_then_http_then_a_greeting() -> None:
    ping = read_run(_run("ready\n"))
    chosen = choose_request(ping, ping, "1-r0")
    assert chosen is not None and (chosen.kind, chosen.expected) == ("line", "PONG")
    web = read_run(_run("ready\n", ping="HTTP/1.0 400 Bad Request\n", http="HTTP/1.0 404 Not Found\r\n\r\n"))
    chosen = choose_request(web, web, "1-r0")
    assert chosen is not None and (chosen.kind, chosen.expected) == ("http-status", "404")
    smtp = read_run(_run("ready\n", ping="", http="", greeting="220 mail ESMTP ready\r\n"))
    chosen = choose_request(smtp, smtp, "1-r0")
    assert chosen is not None and (chosen.kind, chosen.expected) == ("greeting", "220 mail ESMTP ready")
    other = read_run(_run("ready\n", ping="PONG 2\n"))
    assert choose_request(ping, other, "1-r0") is None  # replies that differ between runs say nothing
    assert choose_request(ping, read_run(_run("ready\n", port=7071)), "1-r0") is None


# --------------------------------------------------------------------------- the proposer on data


def _seen(first: str, second: str) -> dict[str, ProbeResult]:
    return {
        help_key(TINYD): result(help_key(TINYD), TINYD_HELP),
        run_key(TINYD, 1): result(run_key(TINYD, 1), first),
        run_key(TINYD, 2): result(run_key(TINYD, 2), second),
        config_test_key(TINYD): result(config_test_key(TINYD), "qk-good: 0\nqk-broken: 1\n"),
    }


def test_rounds_help_then_runs_and_configuration_check() -> None:
    analysis = _tinyd()
    assert [c.key for c in DaemonProposer().probes(analysis, {})] == [help_key(TINYD)]
    seen = {help_key(TINYD): result(help_key(TINYD), TINYD_HELP)}
    keys = [c.key for c in DaemonProposer().probes(analysis, seen)]
    assert keys == [help_key(TINYD), run_key(TINYD, 1), run_key(TINYD, 2), config_test_key(TINYD)]


def test_daemon_check_output_with_a_request_and_a_runs_fallback() -> None:
    ready = "tinyd: listening on port 7070\n"
    config, daemon = DaemonProposer().candidates(_tinyd(), _seen(_run(ready), _run(ready)))
    assert config.step.name == "tinyd accepts its shipped configuration and rejects a broken one"
    assert "missing-config" in config.targets
    assert daemon.kind is CheckKind.FUNCTIONAL and daemon.step.uses == "test/daemon-check-output"
    inputs = dict(daemon.step.with_)
    assert inputs["start"] == "/usr/sbin/tinyd -f -c /tmp/tinyd/tinyd.conf"
    assert inputs["expected_output"] == "tinyd: listening on port 7070\n"
    assert "= PONG" in inputs["post"]
    (fallback,) = daemon.fallbacks
    assert "until listening 7070 > /dev/null; do" in (fallback.runs or "")
    assert 'wait "$pid"\n' in (fallback.runs or "")  # it exited 0 on SIGTERM both times


def test_error_looking_logs_use_the_runs_script() -> None:
    ready = "tinyd: listening on port 7070 (ERROR reporting on)\n"
    candidates = DaemonProposer().candidates(_tinyd(), _seen(_run(ready, status=143), _run(ready, status=143)))
    daemon = candidates[-1]
    assert daemon.step.uses is None and daemon.fallbacks == ()
    assert 'wait "$pid" || true' in (daemon.step.runs or "")


def test_daemons_that_die_get_no_run_check() -> None:
    dead = _run("tinyd: cannot listen\n").replace("qk-alive: yes", "qk-alive: no")
    candidates = DaemonProposer().candidates(_tinyd(), _seen(dead, dead))
    assert [c.step.name for c in candidates] == ["tinyd accepts its shipped configuration and rejects a broken one"]


# --------------------------------------------------------------------------- in the sandbox


def _propose(repo: RepositoryBuild, apk: Path, cache: Path) -> tuple[tuple[Candidate, ...], dict[str, ProbeResult]]:
    analysis = analysis_of(apk)
    seen = gather(DaemonProposer(), analysis, request_for(repo, apk, cache))
    return DaemonProposer().candidates(analysis, seen), seen


def _with_fallbacks(candidates: tuple[Candidate, ...]) -> tuple[Candidate, ...]:
    """Every candidate and every fallback as a candidate of its own (all must pass)."""
    return candidates + tuple(
        Candidate(step=f, kind=c.kind, rationale="fallback") for c in candidates for f in c.fallbacks
    )


@pytest.mark.slow
def test_tinyd_answers_ping_and_checks_its_config(fixture_repo: RepositoryBuild, tmp_path: Path) -> None:
    apk = fixture_repo.package("tinyd").path
    candidates, seen = _propose(fixture_repo, apk, tmp_path / "cache")
    assert [c.step.name for c in candidates] == [
        "tinyd accepts its shipped configuration and rejects a broken one",
        "tinyd starts in the foreground and answers PING",
    ], outputs(seen, "daemon:")
    every = _with_fallbacks(candidates)
    report = prove(fixture_repo, apk, every, tmp_path / "good")
    assert report.passed, failures(report)
    silent = rewrite(apk, tmp_path / "silent.apk", replace_file("usr/sbin/tinyd", b"#!/bin/sh\nexit 0\n"))
    assert_every_step_fails(prove(fixture_repo, silent, every, tmp_path / "silent"), every)
    no_config = rewrite(apk, tmp_path / "no-config.apk", drop_files(lambda p: p == "etc/tinyd/tinyd.conf"))
    assert_every_step_fails(prove(fixture_repo, no_config, every, tmp_path / "no-config"), every)


WEBD = b"""#!/bin/sh
# webd: serve a folder over HTTP with busybox httpd.
usage() {
	cat <<'EOF'
Usage: webd [-f] [-c FILE]

  -c FILE  read settings from FILE (default /etc/webd/webd.conf)
  -f       do not daemonize, stay in the foreground
  -h       show this help and exit
EOF
}
config=/etc/webd/webd.conf
foreground=0
while getopts c:fh option; do
	case $option in
	c) config=$OPTARG ;;
	f) foreground=1 ;;
	h) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
. "$config"
echo "webd: serving $root on port $port"
if [ "$foreground" = 1 ]; then
	exec busybox httpd -f -p "127.0.0.1:$port" -h "$root"
fi
exec busybox httpd -p "127.0.0.1:$port" -h "$root"
"""


@pytest.mark.slow
def test_a_web_server_from_its_help_text(fixture_repo: RepositoryBuild, tmp_path: Path) -> None:
    files = {
        "usr/sbin/webd": (WEBD, 0o755),
        "etc/webd/webd.conf": (b"# webd settings\nport=8080\nroot=/usr/share/webd/www\n", 0o644),
        "usr/share/webd/www/index.html": (b"<h1>webd works</h1>\n", 0o644),
    }
    apk = synthetic_package(tmp_path, "webd", files, depends="busybox")
    candidates, seen = _propose(fixture_repo, apk, tmp_path / "cache")
    (daemon,) = candidates
    assert daemon.step.name == "webd starts in the foreground and answers an HTTP GET", outputs(seen, "daemon:")
    inputs = dict(daemon.step.with_)
    assert inputs["expected_output"] == "webd: serving /usr/share/webd/www on port 8080\n"
    assert "wget -q -O /tmp/webd/response http://127.0.0.1:8080/" in inputs["post"]
    every = _with_fallbacks(candidates)
    report = prove(fixture_repo, apk, every, tmp_path / "good")
    assert report.passed, failures(report)
    # Started, but its page is gone (drop-data-file): the request fails though the ready line shows.
    empty = rewrite(apk, tmp_path / "empty.apk", drop_files(lambda p: p.endswith("index.html")))
    assert_every_step_fails(prove(fixture_repo, empty, every, tmp_path / "empty"), every)
