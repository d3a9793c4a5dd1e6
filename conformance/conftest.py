"""Fixtures for the SDK conformance tests.

The tests drive a real `openbatch serve` process through the unmodified
official Azure Batch Python SDK. The binary comes from $OPENBATCH_BIN
(scripts/test-all.sh sets it); without it, target/release/openbatch of this
checkout is used.

Every service started here runs in its own session (start_new_session=True),
so the node agents and task processes it spawns share its process group and
are all killed together at the end.
"""

import base64
import os
import pathlib
import secrets
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest

from batchutil import http_details

API_VERSION = "2022-10-01.16.0"
REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
READY_TIMEOUT = float(os.environ.get("OPENBATCH_READY_TIMEOUT", "30"))
# Upper bound for one test, enforced with SIGALRM so that a hung request or
# polling loop fails the test (and runs the cleanup) instead of hanging CI.
DEFAULT_TEST_TIMEOUT = int(os.environ.get("OPENBATCH_TEST_TIMEOUT", "300"))
LOG_TAIL_LINES = 80


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "timeout(seconds): upper bound for one test (default %d s)" % DEFAULT_TEST_TIMEOUT
    )
    config.addinivalue_line(
        "markers",
        "sdk_versions(*versions): run only when $OPENBATCH_SDK_VERSION is one of these",
    )


def sdk_version():
    """The azure-batch version under test (set per venv by scripts/test-all.sh)."""
    try:
        from importlib.metadata import version

        return version("azure-batch")
    except Exception:  # pragma: no cover - only without the SDK installed
        return os.environ.get("OPENBATCH_SDK_VERSION", "unknown")


def typespec_generation():
    """True for the TypeSpec-generated azure-batch (15.x: azure.batch.BatchClient), False for
    the msrest one (up to 14.2.0: azure.batch.BatchServiceClient)."""
    try:
        import azure.batch
    except ImportError:  # pragma: no cover - only without the SDK installed
        return False
    return hasattr(azure.batch, "BatchClient") and not hasattr(azure.batch, "BatchServiceClient")


# These modules are written for the msrest BatchServiceClient (they import
# azure.batch.models.BatchErrorException, PoolAddParameter, ...), so they cannot even be imported
# under a 15.x release: they are not collected there. The 15.x tests live in
# conformance/sdk-<version>/; the other modules here are collected and skipped by their markers.
MSREST_ONLY_MODULES = ["test_durability.py", "test_sdk_end_to_end.py", "test_sdk_scenario.py", "test_data_azurite.py", "test_node_logs.py", "test_lifecycle.py", "test_statistics.py", "test_job_schedules.py", "test_node_scheduling.py", "test_node_ops.py", "test_pool_ops.py", "test_certificates.py", "test_autoscale.py"]
collect_ignore = MSREST_ONLY_MODULES if typespec_generation() else []


def pytest_collection_modifyitems(config, items):
    current = sdk_version()
    for item in items:
        marker = item.get_closest_marker("sdk_versions")
        if marker and current not in marker.args:
            item.add_marker(pytest.mark.skip(reason="not for azure-batch %s" % current))


def openbatch_bin():
    path = os.environ.get("OPENBATCH_BIN") or str(REPO_ROOT / "target" / "release" / "openbatch")
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        pytest.fail(
            "openbatch binary not found at %r: build it (cargo build --release) "
            "or set OPENBATCH_BIN" % path,
            pytrace=False,
        )
    return path


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def random_key():
    return base64.b64encode(secrets.token_bytes(64)).decode("ascii")


def _proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def _proc_cwd(pid):
    try:
        return os.readlink("/proc/%d/cwd" % pid)
    except OSError:
        return ""


class Service:
    """One `openbatch serve` instance on a loopback port with its own data dir.

    start() may be called again after a kill to restart on the same data dir
    and port. Every process group ever started is remembered, so cleanup()
    also ends node agents that outlived a SIGKILL of the service alone.

    extra_args are added to every `openbatch serve` command line of this
    instance, restarts included (e.g. ["--clock-control"] for clock() and
    advance_clock()).
    """

    def __init__(self, workdir, port=None, account="conformance", key=None, extra_args=None):
        self.workdir = pathlib.Path(workdir)
        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "service.log"
        self.port = port or free_port()
        self.account = account
        self.key = key or random_key()
        self.url = "http://127.0.0.1:%d" % self.port
        self.extra_args = list(extra_args or [])
        self.proc = None
        self.pgids = []
        self.starts = 0

    # -- lifecycle -----------------------------------------------------
    def start(self):
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(b"\n===== openbatch serve start #%d (%s) =====\n" % (self.starts, time.ctime().encode()))
        log.flush()
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        env.setdefault("NO_COLOR", "1")  # plain text in service.log
        self.proc = subprocess.Popen(
            [
                openbatch_bin(),
                "serve",
                "--listen",
                "127.0.0.1:%d" % self.port,
                "--data-dir",
                str(self.data_dir),
                "--account",
                self.account,
                "--key",
                self.key,
                *self.extra_args,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            cwd=str(self.workdir),
        )
        log.close()
        self.pgids.append(self.proc.pid)  # session leader: pgid == pid
        self.wait_ready()
        return self

    def wait_ready(self, timeout=READY_TIMEOUT):
        """Poll GET /pools until any HTTP answer (401/403 count: it is up)."""
        deadline = time.monotonic() + timeout
        probe = "%s/pools?api-version=%s" % (self.url, API_VERSION)
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    "openbatch serve exited with status %s before answering\n%s"
                    % (self.proc.returncode, self.log_tail())
                )
            try:
                with urllib.request.urlopen(probe, timeout=2):
                    return
            except urllib.error.HTTPError:
                return
            except (urllib.error.URLError, OSError) as e:
                last = e
            time.sleep(0.1)
        raise RuntimeError(
            "openbatch serve did not answer %s within %ss (last error: %r)\n%s"
            % (probe, timeout, last, self.log_tail())
        )

    def kill_service_only(self):
        """SIGKILL the service process alone; its node agents live on."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        if self.proc:
            self.proc.wait(timeout=10)

    def kill_group(self):
        """SIGKILL the current process group: service, agents and tasks."""
        if self.proc is not None:
            _killpg(self.proc.pid)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def _stray_pids(self):
        """Processes that belong to this instance but left its groups."""
        mine = str(self.data_dir)
        mine_dir = mine + "/"
        out = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            if pid == os.getpid():
                continue
            cwd = _proc_cwd(pid)
            if mine in _proc_cmdline(pid) or cwd == mine or cwd.startswith(mine_dir):
                out.append(pid)
        return out

    def cleanup(self):
        for pgid in self.pgids:
            _killpg(pgid)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for pid in self._stray_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    # -- diagnostics ---------------------------------------------------
    def log_tail(self, lines=LOG_TAIL_LINES):
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no service log at %s)" % self.log_path
        tail = text.splitlines()[-lines:]
        return "--- last %d lines of %s ---\n%s" % (len(tail), self.log_path, "\n".join(tail))

    # -- SDK -----------------------------------------------------------
    def client(self, key=None, account=None):
        return make_client(self.url, account or self.account, key or self.key)

    # -- development clock (serve --clock-control) ---------------------
    CLOCK_PATH = "/openbatch/v1/clock"

    def _clock_request(self, method, body=None):
        from replayutil import SignedHttp

        r = SignedHttp(self.url, self.account, self.key).request(method, self.CLOCK_PATH, None, body=body)
        if r.status != 200:
            raise AssertionError("%s %s answered %s: %s" % (method, self.CLOCK_PATH, r.status, r.raw[:1000]))
        return r.body

    def clock(self):
        """The service clock: {"now": ISO 8601 UTC time, "speed": factor} (needs
        extra_args=["--clock-control"])."""
        return self._clock_request("GET")

    def advance_clock(self, duration):
        """Moves the service clock forward by an ISO 8601 duration ("PT1M"); the scheduler
        has acted on the new time (job schedule recurrences, ...) when this returns.
        Answers as clock()."""
        return self._clock_request("POST", {"advance": duration})


def _killpg(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def make_client(url, account, key):
    from azure.batch import BatchServiceClient
    from azure.batch.batch_auth import SharedKeyCredentials

    client = BatchServiceClient(SharedKeyCredentials(account, key), batch_url=url)
    # Fail fast and visibly: no silent retries of 5xx answers, no 100 s hangs.
    client.config.retry_policy.retries = 0
    client.config.connection.timeout = 30
    return client


@pytest.fixture
def service_factory(request, tmp_path_factory):
    """Start extra, private service instances (used by the durability test). Keyword
    arguments go to Service (e.g. extra_args=["--clock-control"])."""
    started = []
    request.node._openbatch_services = started

    def factory(**kwargs):
        svc = Service(tmp_path_factory.mktemp("openbatch"), **kwargs)
        started.append(svc)
        return svc

    yield factory
    for svc in started:
        svc.cleanup()


@pytest.fixture(scope="session")
def openbatch(tmp_path_factory):
    """The shared service: fresh data dir, fresh random key, free port."""
    svc = Service(tmp_path_factory.mktemp("openbatch-shared"))
    try:
        svc.start()
        yield svc
    finally:
        svc.cleanup()


@pytest.fixture(scope="session")
def batch_client(openbatch):
    """An authenticated azure.batch.BatchServiceClient for the shared service."""
    return openbatch.client()


@pytest.fixture(autouse=True)
def _per_test_timeout(request):
    marker = request.node.get_closest_marker("timeout")
    seconds = int(marker.args[0]) if marker else DEFAULT_TEST_TIMEOUT

    def on_alarm(signum, frame):
        raise TimeoutError("test exceeded its %d s limit" % seconds)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    if call.excinfo is not None:
        details = http_details(call.excinfo.value)
        if details:
            report.sections.append(("openbatch HTTP exchange", details))
    services = list(getattr(item, "_openbatch_services", []))
    shared = getattr(item, "funcargs", {}).get("openbatch")
    if isinstance(shared, Service):
        services.insert(0, shared)
    for svc in services:
        report.sections.append(("openbatch service log (%s)" % svc.url, svc.log_tail()))


# -- Azurite (Azure Blob Storage emulator), for the tests that move data through blobs --------
# Azurite comes from $OPENBATCH_AZURITE (scripts/test-all.sh installs it under target/azurite).

AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_command():
    path = os.environ.get("OPENBATCH_AZURITE")
    if not path:
        pytest.fail("OPENBATCH_AZURITE is not set: scripts/test-all.sh installs Azurite and sets it", pytrace=False)
    return path


@pytest.fixture(scope="module")
def azurite(tmp_path_factory):
    """One Azurite blob service per test module on a free loopback port: {"url": account URL
    (path-style, http://127.0.0.1:<port>/devstoreaccount1), "client": a BlobServiceClient}."""
    port = free_port()
    where = tmp_path_factory.mktemp("azurite")
    log = open(where / "azurite.log", "wb")
    proc = subprocess.Popen(
        [azurite_command(), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(where),
         "--silent", "--skipApiVersionCheck", "--loose"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = "http://127.0.0.1:%d/%s" % (port, AZURITE_ACCOUNT)
    from azure.storage.blob import BlobServiceClient
    conn = ("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;"
            % (AZURITE_ACCOUNT, AZURITE_KEY, url))
    deadline = time.monotonic() + 30
    while True:
        try:
            client = BlobServiceClient.from_connection_string(conn)
            list(client.list_containers())
            break
        except Exception:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError("Azurite did not start: %s" % (where / "azurite.log").read_text())
            time.sleep(0.2)
    yield {"url": url, "client": client}
    os.killpg(proc.pid, 15)
    proc.wait(timeout=10)
