"""Services facet: init-system definitions, daemons, configuration files and their ports."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pkgfiles import analyze, capture_view, debian_files, package_info, program, symlink, text_file

from qackage.analyze.configs import config_ports
from qackage.analyze.daemons import has_daemon_name, server_suffix
from qackage.analyze.services import ServicesFacet, parse_run_script, parse_systemd_unit, strip_chain_loaders
from qackage.apk.writer import PlannedFile
from qackage.model import ConfigFile, Daemon, Facts, ServiceDefinition, ServiceManager

EXEC = 0o755
ELF_STUB = b"\x7fELF\x02\x01\x01" + bytes(120)

SYSTEMD_UNIT = """\
[Unit]
Description=Foo daemon
# ExecStart=/usr/bin/commented-out

[Service]
Type=simple
User=foo
ExecStart=-/usr/sbin/food --config /etc/foo/foo.conf \\
    --foreground
ExecReload=/bin/kill -HUP $MAINPID

[Install]
WantedBy=multi-user.target
"""

OPENRC_SCRIPT = """\
#!/sbin/openrc-run
name="Foo daemon"
command="/usr/sbin/${RC_SVCNAME}"
command_args="--config ${FOOD_CONFIG:-/etc/foo/foo.conf} --foreground"
command_user="foo:foo"
command_background=true
pidfile="/run/${RC_SVCNAME}.pid"

depend() {
	need net
}
"""

S6_RUN = """\
#!/command/execlineb -P
# s6-overlay service for food
with-contenv
foreground { mkdir -p /run/food }
s6-setuidgid foo
/usr/sbin/food --foreground
"""

RUNIT_RUN = """\
#!/bin/sh
exec 2>&1
[ -r /etc/conf.d/food ] && . /etc/conf.d/food
exec chpst -u foo:foo /usr/sbin/food --foreground $FOOD_OPTS
"""

CONFIGS = {
    "etc/foo/foo.conf": "# foo daemon\nport = 6379   # main port\n#port = 1111\nbind 127.0.0.1 -::1\nport = 70000\n",
    "etc/foo/http.conf": "server {\n    listen 80;\n    listen [::]:8080 default_server;\n"
    "    listen unix:/run/food.sock;\n}\n",
    "etc/foo/proxy.cfg": "frontend web\n    bind *:8443 ssl crt /etc/foo/cert.pem\n    bind 127.0.0.1\n",
    "etc/foo/settings.yaml": "server:\n  listen: 0.0.0.0:9000\n  metrics_port: 9100\nclient:\n  timeout: 30\n",
    "etc/foo/api.json": '{"api":{"port":9090,"host":"0.0.0.0"},"workers":4}',
    "etc/foo/app.toml": '[http]\naddress = "127.0.0.1:5000"\nlisten_port = 5001\n',
    "etc/foo/remote": "Port 2222\nListenAddress 0.0.0.0\n",
    "etc/foo/cache.ini": "[cache]\nhttp_port 3128 intercept\n",
    "etc/foo.d/extra.conf": "; nothing listens here\nworkers = 4\n",
    "etc/conf.d/food": 'FOOD_OPTS="--verbose"\n',
}


def food_package() -> list[PlannedFile]:
    files = [
        PlannedFile("usr/sbin/food", data=ELF_STUB, mode=EXEC),
        PlannedFile("usr/bin/foo-cli", data=ELF_STUB, mode=EXEC),
        text_file("usr/lib/systemd/system/food.service", SYSTEMD_UNIT),
        text_file("usr/lib/systemd/system/food-alias.service", "[Service]\nExecStart=/usr/sbin/food\n"),
        symlink("etc/systemd/system/multi-user.target.wants/food.service", "/usr/lib/systemd/system/food.service"),
        text_file("etc/init.d/food", OPENRC_SCRIPT, EXEC),
        text_file("etc/init.d/README", "Scripts in this directory start services.\n"),
        text_file("etc/s6-overlay/s6-rc.d/food/run", S6_RUN, EXEC),
        text_file("etc/s6-overlay/s6-rc.d/food/type", "longrun\n"),
        text_file("etc/sv/food/run", RUNIT_RUN, EXEC),
        text_file("etc/sv/food/log/run", "#!/bin/sh\nexec svlogd -tt /var/log/food\n", EXEC),
        text_file("etc/foo/README.txt", "port = 1\n"),
        text_file("etc/unrelated/setting", "port = 2\n"),
        text_file("etc/foorc", "port = 3\n"),
    ]
    files += [text_file(path, text) for path, text in CONFIGS.items()]
    return files


@pytest.fixture
def food_facts(tmp_path: Path) -> Facts:
    """The facet's findings for the foo package, whose daemon food every init system starts."""
    earlier = Facts(executables=(program("usr/bin/foo-cli"), program("usr/sbin/food")))
    return analyze(tmp_path, ServicesFacet(), food_package(), earlier=earlier, info=package_info("foo"))


def test_food_services(food_facts: Facts) -> None:
    assert food_facts.services == (
        ServiceDefinition(
            "etc/init.d/food",
            ServiceManager.OPENRC,
            "food",
            "/usr/sbin/food --config /etc/foo/foo.conf --foreground",
            "foo",
        ),
        ServiceDefinition(
            "etc/s6-overlay/s6-rc.d/food/run", ServiceManager.S6, "food", "/usr/sbin/food --foreground", "foo"
        ),
        ServiceDefinition("etc/sv/food/run", ServiceManager.RUNIT, "food", "/usr/sbin/food --foreground", "foo"),
        ServiceDefinition(
            "usr/lib/systemd/system/food-alias.service", ServiceManager.SYSTEMD, "food-alias", "/usr/sbin/food"
        ),
        ServiceDefinition(
            "usr/lib/systemd/system/food.service",
            ServiceManager.SYSTEMD,
            "food",
            "/usr/sbin/food --config /etc/foo/foo.conf --foreground",
            "foo",
        ),
    )


def test_food_config_files_and_ports(food_facts: Facts) -> None:
    assert food_facts.config_files == (
        ConfigFile("etc/conf.d/food"),
        ConfigFile("etc/foo.d/extra.conf"),
        ConfigFile("etc/foo/api.json", (9090,)),
        ConfigFile("etc/foo/app.toml", (5001,)),
        ConfigFile("etc/foo/cache.ini", (3128,)),
        ConfigFile("etc/foo/foo.conf", (6379,)),
        ConfigFile("etc/foo/http.conf", (80, 8080)),
        ConfigFile("etc/foo/proxy.cfg", (8443,)),
        ConfigFile("etc/foo/remote", (2222,)),
        ConfigFile("etc/foo/settings.yaml", (9000, 9100)),
    )


def test_food_daemon(food_facts: Facts) -> None:
    assert food_facts.daemons == (
        Daemon(
            path="usr/sbin/food",
            name="food",
            reasons=(
                "runs as openrc service food",
                "runs as runit service food",
                "runs as s6 service food",
                "runs as systemd service food",
                "runs as systemd service food-alias",
                "in usr/sbin",
                "name ends in d",
                "configured ports 80, 2222, 3128, 5001, 6379, 8080, 8443, 9000, 9090, 9100",
            ),
            ports=(80, 2222, 3128, 5001, 6379, 8080, 8443, 9000, 9090, 9100),
            config_files=tuple(sorted(CONFIGS)),
        ),
    )


def test_daemons_by_name_and_configuration(tmp_path: Path) -> None:
    files = [
        text_file("etc/redis.conf", "bind 127.0.0.1 -::1\nport 6379\n"),
        text_file("etc/nginx/nginx.conf", "http {\n  server {\n    listen 80;\n  }\n}\n"),
        text_file("etc/dnsmasq.conf", "#port=5353\ndomain-needed\n"),
    ]
    earlier = Facts(
        executables=tuple(
            program(p)
            for p in (
                "usr/bin/clangd",
                "usr/bin/head",
                "usr/bin/nginx",
                "usr/bin/redis-cli",
                "usr/bin/redis-server",
                "usr/bin/typescript-language-server",
                "usr/sbin/crond",
                "usr/sbin/dnsmasq",
                "usr/sbin/useradd",
            )
        )
    )
    facts = analyze(tmp_path, ServicesFacet(), files, earlier=earlier, info=package_info("mixed"))
    assert facts.daemons == (
        Daemon("usr/bin/nginx", "nginx", ("configured ports 80",), (80,), ("etc/nginx/nginx.conf",)),
        Daemon(
            "usr/bin/redis-server",
            "redis-server",
            ("name ends in -server", "configured ports 6379"),
            (6379,),
            ("etc/redis.conf",),
        ),
        Daemon("usr/sbin/crond", "crond", ("in usr/sbin", "name ends in d")),
    )
    assert [c.path for c in facts.config_files] == ["etc/dnsmasq.conf", "etc/nginx/nginx.conf", "etc/redis.conf"]


def test_service_programs_found_after_usr_merge(tmp_path: Path) -> None:
    """A unit that says /usr/sbin/food still names usr/bin/food once sbin is merged."""
    files = [
        PlannedFile("usr/bin/food", data=ELF_STUB, mode=EXEC),
        symlink("usr/sbin/food", "../bin/food"),
        text_file("usr/lib/systemd/system/food.service", "[Service]\nExecStart=@/usr/sbin/food food-argv0 -f\n"),
        text_file("usr/lib/systemd/system/other.service", "[Service]\nExecStart=/usr/bin/not-here\n"),
        text_file("etc/s6/barsrv/run", "#!/command/execlineb -P\nfood -x\n", EXEC),
    ]
    earlier = Facts(executables=(program("usr/bin/food"), program("usr/sbin/food")))
    facts = analyze(tmp_path, ServicesFacet(), files, earlier=earlier)
    assert [s.command for s in facts.services] == ["food -x", "/usr/sbin/food -f", "/usr/bin/not-here"]
    assert facts.daemons == (
        Daemon(
            "usr/bin/food",
            "food",
            ("runs as s6 service barsrv", "runs as systemd service food", "in usr/sbin", "name ends in d"),
        ),
    )


def test_services_that_run_once_make_no_daemon(tmp_path: Path) -> None:
    """A oneshot unit or an init script that runs sysctl defines a service, not a daemon."""
    files = [
        PlannedFile("usr/bin/loadkeysd", data=ELF_STUB, mode=EXEC),
        PlannedFile("usr/bin/tuned", data=ELF_STUB, mode=EXEC),
        text_file("usr/lib/systemd/system/keys.service", "[Service]\nType=oneshot\nExecStart=/usr/bin/loadkeysd\n"),
        text_file(
            "etc/init.d/tune", "#!/bin/sh\nDAEMON=/usr/bin/tuned\ncase $1 in start) $DAEMON --once ;; esac\n", EXEC
        ),
        text_file(
            "etc/init.d/tuned",
            "#!/bin/sh\nDAEMON=/usr/bin/tuned\nstart-stop-daemon --start --background --exec $DAEMON\n",
            EXEC,
        ),
    ]
    earlier = Facts(executables=(program("usr/bin/loadkeysd"), program("usr/bin/tuned")))
    facts = analyze(tmp_path, ServicesFacet(), files, earlier=earlier)
    assert [(s.name, s.command) for s in facts.services] == [
        ("tune", "/usr/bin/tuned"),
        ("tuned", "/usr/bin/tuned"),
        ("keys", "/usr/bin/loadkeysd"),
    ]
    assert [(d.path, d.reasons) for d in facts.daemons] == [
        ("usr/bin/tuned", ("runs as sysvinit service tuned", "name ends in d"))
    ]


@pytest.mark.parametrize(
    ("text", "ports"),
    [
        ("port = 6379\n", (6379,)),
        ("Port 22\n", (22,)),
        ("  port: 8080 # yaml\n", (8080,)),
        ('  "port": 9090,\n', (9090,)),
        ("server.port = 8081\n", (8081,)),
        ("http_port 3128\n", (3128,)),
        ("http_port 127.0.0.1:3129 intercept\n", (3129,)),
        ("ListenPort = 51820\n", (51820,)),
        ("listen 80;\n", (80,)),
        ("Listen 0.0.0.0:443\n", (443,)),
        ('listen: ":8080"\n', (8080,)),
        ("listen = [::1]:9000\n", (9000,)),
        ("bind *:8080\n", (8080,)),
        ("bind 0.0.0.0:443 ssl crt /x.pem\n", (443,)),
        ("bind [::]:80\n", (80,)),
        ("web.listen-address: 0.0.0.0:9093\n", (9093,)),
        ("PORT=8000\n", (8000,)),
        ("port 1\nport 65535\n", (1, 65535)),
        ("port = 80\nport = 80\n", (80,)),
        # Not ports: comments, other keys, out of range, not numbers, sockets, bare addresses.
        ("#port 22\n; port = 1\n// port = 2\n", ()),
        ("report = 5\nportal = 7\nimport 9\nsupport_port = 4\n", ()),
        ("port = 0\nport = 65536\nport = 123456\n", ()),
        ("port = 80abc\nport = 8.5\nport = ${PORT}\nport = -1\n", ()),
        ("listen unix:/run/x.sock;\nlisten localhost;\n", ()),
        ("bind 127.0.0.1 -::1\nbind 8080\n", ()),
        ("timeout 30\nworkers: 4\n", ()),
    ],
)
def test_config_ports(text: str, ports: tuple[int, ...]) -> None:
    assert config_ports("etc/x/x.conf", text) == ports


def test_json_ports_need_a_json_file() -> None:
    minified = '{"a":1,"port":7000}'
    assert config_ports("etc/x/x.json", minified) == (7000,)
    assert config_ports("etc/x/x.conf", minified) == ()


def test_systemd_parsing_details() -> None:
    text = "[Service]\nExecStart=/bin/first\nExecStart=\nExecStart=+/usr/bin/second --a\nUser=\n"
    launch = parse_systemd_unit(text)
    assert (launch.command, launch.user) == ("/usr/bin/second --a", None)
    assert parse_systemd_unit("[Socket]\nExecStart=/bin/x\n").command is None


def test_chain_loaders() -> None:
    assert strip_chain_loaders(["chpst", "-u", "redis:redis", "-o", "1024", "redis-server", "/etc/r.conf"]) == (
        ("redis-server", "/etc/r.conf"),
        "redis",
    )
    assert strip_chain_loaders(["su-exec", "nobody", "env", "A=1", "/usr/bin/x"]) == (("/usr/bin/x",), "nobody")
    assert strip_chain_loaders(["fdmove", "-c", "2", "1", "s6-setuidgid", "n", "nginx"]) == (("nginx",), "n")
    assert strip_chain_loaders(["chpst"]) == ((), None)


def test_run_script_without_exec_names_nothing() -> None:
    assert parse_run_script("#!/bin/sh\necho starting\nsleep 1\n").command is None
    assert parse_run_script("#!/bin/sh\nexec 2>&1 >/dev/null\n").command is None


@pytest.mark.parametrize(
    ("name", "daemon"),
    [
        ("sshd", True),
        ("crond", True),
        ("rpc.statd", True),
        ("atd", True),
        ("useradd", False),
        ("usermod", False),
        ("chpasswd", False),
        ("blkid", False),
        ("head", False),
        ("find", False),
        ("expand", False),
        ("ldd", False),
        ("blkdiscard", False),
        ("od", False),
    ],
)
def test_daemon_names(name: str, daemon: bool) -> None:
    assert has_daemon_name(name) is daemon


def test_server_suffixes() -> None:
    assert server_suffix("redis-server") == "-server"
    assert server_suffix("avahi-daemon") == "-daemon"
    assert server_suffix("server") is None
    assert server_suffix("vscode-json-language-server") is None


def test_capture_caps_and_skips_binary_configs(tmp_path: Path) -> None:
    files = [
        PlannedFile("etc/foo/big.conf", data=b"port 1234\n" + b"x = y\n" * 100_000),
        PlannedFile("etc/foo/blob.conf", data=b"\0\1\2" + b"port 80\n"),
        PlannedFile("usr/share/foo/data.conf", data=b"port 1\n"),
    ]
    view = capture_view(tmp_path, [ServicesFacet()], files)
    assert len(view.contents["etc/foo/big.conf"]) == 256 * 1024
    assert set(view.contents) == {"etc/foo/big.conf"}
    facts = ServicesFacet().analyze(view, Facts())
    assert facts.config_files == (ConfigFile("etc/foo/big.conf", (1234,)), ConfigFile("etc/foo/blob.conf"))


def test_hostile_content_never_raises(tmp_path: Path) -> None:
    garbage = bytes(range(256)) * 256
    files = [
        PlannedFile("usr/lib/systemd/system/g.service", data=garbage),
        PlannedFile("etc/init.d/g", data=b"#!/sbin/openrc-run\n" + garbage),
        PlannedFile("etc/init.d/long", data=b"#!/bin/sh\nDAEMON=/usr/sbin/" + b"a" * (1 << 20) + b"\n"),
        PlannedFile("etc/sv/g/run", data=b"#!/bin/sh\nexec '" + b"x" * (1 << 20)),
        PlannedFile("etc/s6/g/run", data=b"#!/command/execlineb\n" + b"{ " * (1 << 18)),
        PlannedFile("etc/g/g.conf", data=b"port " + b"9" * (1 << 20) + b"\nlisten " + b":" * (1 << 20)),
        PlannedFile("etc/g/h.json", data=b'"port":' * (1 << 17)),
        PlannedFile("etc/g/i.yaml", data=b"a." * (1 << 19) + b"port: 1\n"),
    ]
    facts = analyze(tmp_path, ServicesFacet(), files)
    assert {s.path for s in facts.services} == {
        "usr/lib/systemd/system/g.service",
        "etc/init.d/g",
        "etc/init.d/long",
        "etc/sv/g/run",
        "etc/s6/g/run",
    }
    assert all(c.ports == () for c in facts.config_files)


def test_real_debian_dbus(tmp_path: Path) -> None:
    """dbus ships a systemd unit and a sysvinit script; both start dbus-daemon."""
    daemon_files = debian_files("dbus-daemon", lambda path: path == "usr/bin/dbus-daemon")
    files = debian_files("dbus") + daemon_files
    earlier = Facts(executables=(program("usr/bin/dbus-daemon"),))
    facts = analyze(tmp_path, ServicesFacet(), files, earlier=earlier, info=package_info("dbus"))
    by_manager = {s.manager: s for s in facts.services}
    unit, script = by_manager[ServiceManager.SYSTEMD], by_manager[ServiceManager.SYSVINIT]
    assert (unit.name, script.name) == ("dbus", "dbus")
    assert unit.command is not None
    assert unit.command.startswith("/usr/bin/dbus-daemon --system")
    assert (script.command, script.user) == ("/usr/bin/dbus-daemon", "messagebus")
    [daemon] = facts.daemons
    assert daemon.path == "usr/bin/dbus-daemon"
    assert daemon.reasons[:3] == (
        "runs as systemd service dbus",
        "runs as sysvinit service dbus",
        "name ends in -daemon",
    )
    assert "etc/default/dbus" in daemon.config_files


def test_real_postgresql_config_port(tmp_path: Path) -> None:
    """postgresql.conf says `port = 5432  # (change requires restart)`; whatever the
    cluster's value, we must read the same number as PostgreSQL's own tool does."""
    confs = sorted(Path("/etc/postgresql").glob("*/main/postgresql.conf"))
    if not confs:
        pytest.skip("no PostgreSQL cluster configuration on this machine")
    text = confs[0].read_text(errors="replace")
    expected = [line.split("=")[1].split("#")[0].strip() for line in text.splitlines() if line.startswith("port")]
    facts = analyze(tmp_path, ServicesFacet(), [text_file("etc/postgresql/postgresql.conf", text)])
    assert facts.config_files == (ConfigFile("etc/postgresql/postgresql.conf", tuple(int(p) for p in expected)),)
    try:
        shown = subprocess.run(["pg_conftool", "-s", "show", "port"], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return
    if shown.returncode == 0 and shown.stdout.strip().isdigit():
        assert facts.config_files[0].ports == (int(shown.stdout.strip()),)
