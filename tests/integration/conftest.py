"""Fixtures for the integration tests: a fresh Mosquitto (dynamic security) and a fresh netmakerd
on a temporary SQLite database for every test, test hosts that speak the real protocol, and the
server log in the report of every failing test.

Binaries come from $NM_BUILD_DIR (absolute, or relative to the repository root; default
`build`), e.g.:

    meson setup build && ninja -C build
    /usr/bin/python3 -m pytest tests/integration -x -q
    NM_BUILD_DIR=build-asan /usr/bin/python3 -m pytest tests/integration -q

Run as root (the broker runs as root; later tests create network namespaces). The API of the
helpers is described in tests/integration/README.md.
"""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nmtest import server as nmserver  # noqa: E402
from nmtest.client import TestHost  # noqa: E402


def _broker_class():
    from nmtest.broker import Broker
    return Broker


def pytest_report_header(config):
    return f"netmakerd: {nmserver.binary('netmakerd')} (NM_BUILD_DIR={os.environ.get('NM_BUILD_DIR', 'build')})"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for srv in getattr(item, "_nm_servers", []):
            report.sections.append((f"netmakerd log ({srv.log_path})", srv.log_tail(80)))
        for b in getattr(item, "_nm_brokers", []):
            tail = "\n".join(f"  | {line}" for line in b.log().splitlines()[-40:])
            report.sections.append((f"mosquitto log ({b.log_file})", tail))


@pytest.fixture
def make_broker(tmp_path, request):
    """Factory: make_broker() starts another broker (each in its own directory)."""
    brokers = []
    Broker = _broker_class()

    def make(**kw):
        b = Broker(tmp_path, **kw).start()
        brokers.append(b)
        request.node._nm_brokers = brokers
        return b

    yield make
    for b in reversed(brokers):
        b.stop()


@pytest.fixture
def broker(make_broker):
    """A running Mosquitto with dynamic security on 127.0.0.1 (nmtest.broker.Broker)."""
    return make_broker()


@pytest.fixture
def make_server(tmp_path, request, make_broker):  # make_broker: brokers stop after servers
    """Factory: make_server(broker, config={...}, env={...}, start=True) -> nmtest.server.Server.
    Every server is stopped with SIGTERM at the end of the test and must exit with status 0."""
    servers = []

    def make(broker=None, *, start=True, **kw):
        d = tmp_path / f"srv{len(servers)}"
        d.mkdir()
        s = nmserver.Server(d, broker, **kw)
        servers.append(s)
        request.node._nm_servers = servers
        if start:
            s.start()
        return s

    yield make
    errors = []
    for s in reversed(servers):
        try:
            s.stop(check=True)
        except AssertionError as e:
            errors.append(str(e))
    if errors:
        pytest.fail("\n".join(errors), pytrace=False)


@pytest.fixture
def server(make_server, broker):
    """A running netmakerd on a fresh SQLite database, connected to `broker`."""
    srv = make_server(broker)
    return srv


@pytest.fixture
def hosts():
    """Factory: hosts("alpha", endpoints=[...], listen_port=...) -> TestHost; all are
    disconnected at the end of the test."""
    made = []

    def make(name, **kw):
        h = TestHost(name, **kw)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()


@pytest.fixture
def office(server):
    """The network "office" (10.99.0.0/24) on `server`; returns the network object."""
    return server.create_network("office", "10.99.0.0/24")
