"""The Azure CLI (`az batch ...`, unmodified) against openbatch.

Commands are typed as a person would, with the account on the command line:

    az batch pool create --account-name NAME --account-key KEY \\
        --account-endpoint http://127.0.0.1:PORT --id mypool ...

The CLI takes an http:// endpoint as it is (it only prefixes https:// when no
scheme is given). scripts/test-all.sh installs the newest azure-cli into
target/venvs/azure-cli and passes the `az` it installed in $OPENBATCH_AZ.
The CLI runs with its own empty config dir, telemetry, surveys, dynamic
extension installs and upgrade checks off, and every proxy variable pointing
at a closed loopback port (NO_PROXY=127.0.0.1), so nothing it does can leave
this machine.
"""

import json
import os
import pathlib
import subprocess
import time
import uuid

import pytest

from batchutil import wait_until

# Runs once per test-all.sh run (in the 13.0.0 venv's pytest run); the CLI has its own venv.
pytestmark = pytest.mark.sdk_versions("13.0.0")

IMAGE = "canonical:0001-com-ubuntu-server-jammy:22_04-lts"
NODE_AGENT_SKU = "batch.node.ubuntu 22.04"
AZ_TIMEOUT = 120


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


class AzError(AssertionError):
    pass


class Az:
    """Runs `az batch ...` with the account arguments of one openbatch service."""

    def __init__(self, exe, service, config_dir):
        self.exe = exe
        # The CLI's documented alternative to the three flags (az batch ... --help).
        self.account_env = {
            "AZURE_BATCH_ACCOUNT": service.account,
            "AZURE_BATCH_ACCESS_KEY": service.key,
            "AZURE_BATCH_ENDPOINT": service.url,
        }
        self.account_args = [
            "--account-name", service.account,
            "--account-key", service.key,
            "--account-endpoint", service.url,
        ]
        env = dict(os.environ)
        for name in list(env):
            if name.upper().startswith("AZURE_") or name.upper() in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
                del env[name]
        env.update(
            AZURE_CONFIG_DIR=str(config_dir),
            AZURE_CORE_COLLECT_TELEMETRY="false",
            AZURE_CORE_SURVEY_MESSAGE="false",
            AZURE_CORE_ERROR_RECOMMENDATION="off",
            AZURE_CORE_DISABLE_CONFIRM_PROMPT="true",
            AZURE_CORE_NO_COLOR="true",
            AZURE_CORE_OUTPUT="json",
            AZURE_EXTENSION_USE_DYNAMIC_INSTALL="no",
            # Anything not for the service on loopback goes to a closed port and fails at once.
            HTTP_PROXY="http://127.0.0.1:9",
            HTTPS_PROXY="http://127.0.0.1:9",
            NO_PROXY="127.0.0.1,localhost",
            PYTHONWARNINGS="ignore",
        )
        self.env = env
        self.calls = []

    def run(self, *args, check=True, output_json=True, account_from_env=False):
        """`az batch ARGS --account-... -o json`; returns (exit code, parsed stdout, stderr).

        With account_from_env the account comes from AZURE_BATCH_ACCOUNT,
        AZURE_BATCH_ACCESS_KEY and AZURE_BATCH_ENDPOINT instead of the flags.
        """
        cmd = [self.exe, "batch", *args]
        env = self.env
        if account_from_env:
            env = dict(env, **self.account_env)
        else:
            cmd += self.account_args
        if output_json:
            cmd += ["--output", "json"]
        started = time.monotonic()
        proc = subprocess.run(
            cmd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=AZ_TIMEOUT,
        )
        out = proc.stdout.decode("utf-8", "replace")
        err = proc.stderr.decode("utf-8", "replace")
        self.calls.append((args, proc.returncode, round(time.monotonic() - started, 2)))
        if check and proc.returncode != 0:
            raise AzError(
                "az batch %s exited %d\n--- stderr ---\n%s\n--- stdout ---\n%s"
                % (" ".join(args), proc.returncode, err[-6000:], out[-2000:])
            )
        parsed = None
        if output_json and out.strip():
            try:
                parsed = json.loads(out)
            except ValueError:
                raise AzError("az batch %s printed no JSON:\n%s\n--- stderr ---\n%s" % (" ".join(args), out[-4000:], err[-4000:]))
        return proc.returncode, parsed, err

    def __call__(self, *args):
        return self.run(*args)[1]


def field(obj, *path):
    """obj[path...], e.g. field(task, "executionInfo", "exitCode"); None when absent."""
    for name in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(name)
    return obj


@pytest.fixture(scope="module")
def az(openbatch, tmp_path_factory):
    exe = os.environ.get("OPENBATCH_AZ")
    if not exe:
        pytest.skip(
            "OPENBATCH_AZ is not set: scripts/test-all.sh installs azure-cli into "
            "target/venvs/azure-cli and sets it to that venv's bin/az"
        )
    assert os.path.isfile(exe) and os.access(exe, os.X_OK), "OPENBATCH_AZ=%s is not an executable" % exe
    return Az(exe, openbatch, tmp_path_factory.mktemp("azure-config"))


@pytest.mark.timeout(420)
def test_azure_cli_scenario(az, tmp_path):
    pool_id = unique("cli-pool")
    job_id = unique("cli-job")

    # -- supported images: the image typed below is one of them ----------------
    images = az("pool", "supported-images", "list")
    assert isinstance(images, list) and images, images
    publisher, offer, sku = IMAGE.split(":")
    matching = [
        i for i in images
        if field(i, "nodeAgentSkuId") == NODE_AGENT_SKU
        and (field(i, "imageReference", "publisher") or "").lower() == publisher
        and field(i, "imageReference", "offer") == offer
        and field(i, "imageReference", "sku") == sku
    ]
    assert matching, "%s / %s not among the supported images: %s" % (IMAGE, NODE_AGENT_SKU, json.dumps(images)[:3000])
    assert field(matching[0], "osType") == "linux", matching[0]
    linux_only = az("pool", "supported-images", "list", "--filter", "osType eq 'linux'")
    assert linux_only and all(field(i, "osType") == "linux" for i in linux_only), linux_only

    # -- pool of 2 nodes with plain flags ---------------------------------------
    az("pool", "create", "--id", pool_id, "--vm-size", "standard_d2_v3",
       "--target-dedicated-nodes", "2", "--image", IMAGE, "--node-agent-sku-id", NODE_AGENT_SKU)
    try:
        def nodes_idle():
            nodes = az("node", "list", "--pool-id", pool_id)
            states = [field(n, "state") for n in nodes or []]
            return len(states) == 2 and all(s == "idle" for s in states), states

        wait_until("2 idle nodes in %s" % pool_id, nodes_idle, timeout=90)
        pool = az("pool", "show", "--pool-id", pool_id)
        assert field(pool, "id") == pool_id, pool
        assert field(pool, "currentDedicatedNodes") == 2, pool
        assert field(pool, "targetDedicatedNodes") == 2, pool
        assert field(pool, "allocationState") == "steady", pool
        assert field(pool, "virtualMachineConfiguration", "nodeAgentSkuId") == NODE_AGENT_SKU, pool

        # -- job and tasks ------------------------------------------------------
        az("job", "create", "--id", job_id, "--pool-id", pool_id)
        job = az("job", "show", "--job-id", job_id)
        assert field(job, "state") == "active", job
        assert field(job, "poolInfo", "poolId") == pool_id, job
        _, jobs, _ = az.run("job", "list", account_from_env=True)
        assert job_id in [field(j, "id") for j in jobs], jobs

        hello = az("task", "create", "--job-id", job_id, "--task-id", "hello",
                   "--command-line", '/bin/sh -c "echo hello from $AZ_BATCH_TASK_ID"')
        assert field(hello, "id") == "hello", hello

        tasks_file = tmp_path / "tasks.json"
        collection = [
            {"id": "echo-%d" % i, "commandLine": '/bin/sh -c "echo line-%d; echo err-%d >&2"' % (i, i)}
            for i in range(5)
        ]
        tasks_file.write_text(json.dumps(collection))
        results = az("task", "create", "--job-id", job_id, "--json-file", str(tasks_file))
        assert isinstance(results, list), results
        assert sorted(field(r, "taskId") for r in results) == ["echo-%d" % i for i in range(5)], results
        assert all(str(field(r, "status")).lower() == "success" for r in results), results

        az("task", "create", "--job-id", job_id, "--task-id", "fails",
           "--command-line", '/bin/sh -c "echo failing; exit 3"')

        def all_completed():
            tasks = az("task", "list", "--job-id", job_id)
            states = {field(t, "id"): field(t, "state") for t in tasks or []}
            return len(states) == 7 and all(s == "completed" for s in states.values()), (tasks if len(states) == 7 else states)

        tasks = wait_until("7 completed tasks in %s" % job_id, all_completed, timeout=90)
        by_id = {field(t, "id"): t for t in tasks}
        assert sorted(by_id) == sorted(["hello", "fails"] + ["echo-%d" % i for i in range(5)]), sorted(by_id)
        for task_id, task in by_id.items():
            want = 3 if task_id == "fails" else 0
            assert field(task, "executionInfo", "exitCode") == want, task

        # -- task show: exit codes and results ----------------------------------
        shown = az("task", "show", "--job-id", job_id, "--task-id", "fails")
        assert field(shown, "state") == "completed", shown
        assert field(shown, "executionInfo", "exitCode") == 3, shown
        assert field(shown, "executionInfo", "result") == "failure", shown
        # "UserError", as the real service spells it (the spec's enum says usererror)
        assert str(field(shown, "executionInfo", "failureInfo", "category")).lower() == "usererror", shown
        assert field(shown, "executionInfo", "failureInfo", "code") == "FailureExitCode", shown
        shown = az("task", "show", "--job-id", job_id, "--task-id", "hello")
        assert field(shown, "executionInfo", "exitCode") == 0, shown
        assert field(shown, "executionInfo", "result") == "success", shown
        assert field(shown, "commandLine") == '/bin/sh -c "echo hello from $AZ_BATCH_TASK_ID"', shown

        # -- files ----------------------------------------------------------------
        dest = tmp_path / "hello-stdout.txt"
        az.run("task", "file", "download", "--job-id", job_id, "--task-id", "hello",
               "--file-path", "stdout.txt", "--destination", str(dest), output_json=False)
        assert dest.read_text() == "hello from hello\n"
        dest = tmp_path / "hello-range.txt"  # sent as ocp-range: bytes=6-9
        az.run("task", "file", "download", "--job-id", job_id, "--task-id", "hello", "--file-path", "stdout.txt",
               "--start-range", "6", "--end-range", "9", "--destination", str(dest), output_json=False)
        assert dest.read_text() == "from"
        for i in (0, 4):
            for name, want in (("stdout.txt", "line-%d\n" % i), ("stderr.txt", "err-%d\n" % i)):
                dest = tmp_path / ("echo-%d-%s" % (i, name))
                az.run("task", "file", "download", "--job-id", job_id, "--task-id", "echo-%d" % i,
                       "--file-path", name, "--destination", str(dest), output_json=False)
                assert dest.read_text() == want, (i, name)
        dest = tmp_path / "fails-stdout.txt"
        az.run("task", "file", "download", "--job-id", job_id, "--task-id", "fails",
               "--file-path", "stdout.txt", "--destination", str(dest), output_json=False)
        assert dest.read_text() == "failing\n"

        files = az("task", "file", "list", "--job-id", job_id, "--task-id", "hello")
        names = {field(f, "name"): f for f in files}
        for want in ("stdout.txt", "stderr.txt", "wd"):
            assert want in names, sorted(names)
        assert field(names["stdout.txt"], "isDirectory") is False, names["stdout.txt"]
        assert int(field(names["stdout.txt"], "properties", "contentLength")) == len("hello from hello\n"), names["stdout.txt"]
        assert field(names["wd"], "isDirectory") is True, names["wd"]

        # -- task counts, $filter -------------------------------------------------
        counts = az("job", "task-counts", "show", "--job-id", job_id)
        task_counts = field(counts, "taskCounts") or counts
        assert {k: task_counts.get(k) for k in ("active", "running", "completed", "succeeded", "failed")} == {
            "active": 0, "running": 0, "completed": 7, "succeeded": 6, "failed": 1,
        }, counts

        failed = az("task", "list", "--job-id", job_id, "--filter", "executionInfo/exitCode eq 3")
        assert [field(t, "id") for t in failed] == ["fails"], failed
        echoes = az("task", "list", "--job-id", job_id, "--filter", "startswith(id, 'echo-')", "--select", "id,state")
        assert sorted(field(t, "id") for t in echoes) == ["echo-%d" % i for i in range(5)], echoes
        assert all(field(t, "commandLine") is None for t in echoes), echoes
        pools = az("pool", "list", "--filter", "id eq '%s'" % pool_id)
        assert [field(p, "id") for p in pools] == [pool_id], pools

        # -- errors come back as the CLI's errors -----------------------------------
        rc, _, err = az.run("task", "show", "--job-id", job_id, "--task-id", "no-such-task", check=False)
        assert rc != 0, "task show of a missing task succeeded"
        assert "TaskNotFound" in err, err[-3000:]

        # -- resize ---------------------------------------------------------------
        az.run("pool", "resize", "--pool-id", pool_id, "--target-dedicated-nodes", "1")

        def resized():
            p = az("pool", "show", "--pool-id", pool_id)
            nodes = az("node", "list", "--pool-id", pool_id)
            seen = (field(p, "allocationState"), field(p, "currentDedicatedNodes"), field(p, "targetDedicatedNodes"), len(nodes or []))
            return seen == ("steady", 1, 1, 1), seen

        wait_until("pool %s resized to 1 node" % pool_id, resized, timeout=60)

        # -- delete job and pool ------------------------------------------------------
        az.run("job", "delete", "--job-id", job_id, "--yes", output_json=False)

        def job_gone():
            rc, job, err = az.run("job", "show", "--job-id", job_id, check=False)
            if rc != 0:
                assert "JobNotFound" in err, err[-3000:]
                return True, rc
            return False, field(job, "state")

        wait_until("job %s deleted" % job_id, job_gone, timeout=60)
    finally:
        az.run("pool", "delete", "--pool-id", pool_id, "--yes", check=False, output_json=False)

    def pool_gone():
        pools = az("pool", "list", "--filter", "id eq '%s'" % pool_id)
        return not pools, [(field(p, "id"), field(p, "state")) for p in pools or []]

    wait_until("pool %s deleted" % pool_id, pool_gone, timeout=60)
    rc, _, err = az.run("pool", "show", "--pool-id", pool_id, check=False)
    assert rc != 0 and "PoolNotFound" in err, (rc, err[-3000:])
    print("az calls (args, exit code, seconds):")
    for call in az.calls:
        print("  ", call)


@pytest.mark.timeout(240)
def test_azure_cli_job_schedule(az):
    """`az batch job-schedule ...`: create (with a job manager task), show, list with a
    filter, the schedule's jobs, disable/enable, set (PATCH), reset (PUT), stop, delete. The
    schedule's jobs name a pool that does not exist, so job-1 stays active: this is about what
    the CLI sends and shows."""
    schedule_id = unique("cli-sched")
    az("job-schedule", "create", "--id", schedule_id, "--pool-id", "no-such-pool",
       "--recurrence-interval", "PT1H", "--start-window", "PT30M",
       "--job-manager-task-id", "manager", "--job-manager-task-command-line", "/bin/true",
       "--metadata", "team=data")
    try:
        shown = az("job-schedule", "show", "--job-schedule-id", schedule_id)
        assert field(shown, "state") == "active", shown
        assert field(shown, "schedule", "recurrenceInterval") in ("PT1H", "1:00:00"), shown
        assert field(shown, "executionInfo", "recentJob", "id") == schedule_id + ":job-1", shown
        assert field(shown, "jobSpecification", "jobManagerTask", "id") == "manager", shown
        assert field(shown, "metadata") == [{"name": "team", "value": "data"}], shown

        listed = az("job-schedule", "list", "--filter", "id eq '%s'" % schedule_id)
        assert [field(s, "id") for s in listed] == [schedule_id], listed
        jobs = az("job", "list", "--job-schedule-id", schedule_id)
        assert [field(j, "id") for j in jobs] == [schedule_id + ":job-1"], jobs
        job = az("job", "show", "--job-id", schedule_id + ":job-1")
        assert field(job, "poolInfo", "poolId") == "no-such-pool", job

        az.run("job-schedule", "disable", "--job-schedule-id", schedule_id, output_json=False)
        assert field(az("job-schedule", "show", "--job-schedule-id", schedule_id), "state") == "disabled"
        rc, _, err = az.run("job-schedule", "disable", "--job-schedule-id", schedule_id, check=False, output_json=False)
        assert rc != 0 and "JobScheduleDisabled" in err, (rc, err[-3000:])
        az.run("job-schedule", "enable", "--job-schedule-id", schedule_id, output_json=False)

        az.run("job-schedule", "set", "--job-schedule-id", schedule_id, "--metadata", "team=ops", output_json=False)
        shown = az("job-schedule", "show", "--job-schedule-id", schedule_id)
        assert field(shown, "state") == "active", shown
        assert field(shown, "metadata") == [{"name": "team", "value": "ops"}], shown
        assert field(shown, "schedule", "recurrenceInterval") in ("PT1H", "1:00:00"), shown

        az.run("job-schedule", "reset", "--job-schedule-id", schedule_id, "--pool-id", "other-pool",
               "--recurrence-interval", "PT2H", output_json=False)
        shown = az("job-schedule", "show", "--job-schedule-id", schedule_id)
        assert field(shown, "schedule", "recurrenceInterval") in ("PT2H", "2:00:00"), shown
        assert field(shown, "jobSpecification", "poolInfo", "poolId") == "other-pool", shown
        assert field(shown, "metadata") is None, shown

        az.run("job-schedule", "stop", "--job-schedule-id", schedule_id, output_json=False)

        def completed():
            s = az("job-schedule", "show", "--job-schedule-id", schedule_id)
            return field(s, "state") == "completed", field(s, "state")

        wait_until("job schedule %s completed" % schedule_id, completed, timeout=30)
        job = az("job", "show", "--job-id", schedule_id + ":job-1")
        assert field(job, "state") == "completed", job
    finally:
        az.run("job-schedule", "delete", "--job-schedule-id", schedule_id, "--yes", check=False, output_json=False)

    def gone():
        rc, _, err = az.run("job-schedule", "show", "--job-schedule-id", schedule_id, check=False)
        return rc != 0 and "JobScheduleNotFound" in err, rc

    wait_until("job schedule %s deleted" % schedule_id, gone, timeout=30)
