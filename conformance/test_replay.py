"""Replay of the real Azure Batch service's recorded traffic against openbatch.

/work/shared/azure-batch-recordings/cases/*.jsonl holds 13 recordings of the
official SDK's tests talking to the live service (see FACTS.md there). Per
recording this test

1. starts a fresh openbatch instance;
2. creates, with plain signed HTTP at the recording's api-version, what the
   SDK test's fixtures (PoolPreparer / JobPreparer) created outside the
   recording, on Linux images so that tasks can run (FIXTURES below);
3. sends every recorded request in order (ids kept, recorded node ids mapped
   to openbatch's); a polling loop (consecutive identical requests) is one
   request retried for up to POLL_TIMEOUT s until it reaches the recorded
   run's last answer;
4. compares status, the headers that matter and the body's shape and
   constant values with the recording (rules: replayutil.RULES);
5. prints matched/total per recording with a one-line reason per mismatch,
   and writes all of it to target/replay-report.md.

A recording in MUST_MATCH fails the test on any mismatch; the others only
report. Counts are per replayed step: a collapsed polling loop is one step.
"""

import os
import pathlib
import time

import pytest

from replayutil import LinuxImageFor, SignedHttp, load_recording, recording_rules, replay

pytestmark = pytest.mark.sdk_versions("13.0.0")

RECORDINGS_DIR = pathlib.Path(
    os.environ.get("OPENBATCH_RECORDINGS", "/work/shared/azure-batch-recordings")) / "cases"
REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
REPORT_PATH = REPO_ROOT / "target" / "replay-report.md"
POLL_TIMEOUT = 20.0

NAMES = [
    "applications",
    "certificates",
    "compute_node_user",
    "compute_nodes",
    "create_pool_with_blobfuse_mount",
    "create_pools",
    "files",
    "job_schedules",
    "jobs",
    "network_configuration",
    "network_configuration_acceleratednetworking",
    "scale_pools",
    "update_pools",
]

# Recordings that match in full: any mismatch in them fails the test. Add a
# recording here once it matches (see target/replay-report.md).
MUST_MATCH = {
    "jobs",
    "create_pools",
    "files",
    "network_configuration",
    "create_pool_with_blobfuse_mount",
    "network_configuration_acceleratednetworking",
    "applications",
    "job_schedules",
    "update_pools",
    "compute_node_user",
    "certificates",
    "compute_nodes",
    "scale_pools",
}

# Steps whose recorded answer depends on the operating system of the recorded pool and
# cannot be reproduced on openbatch's Linux nodes by nature: (recording, method, path
# pattern) -> (status, Batch error code, why). Such a step matches when openbatch gives the
# answer the real service documents for a Linux (virtualMachineConfiguration) node instead;
# the report notes it.
BY_PLATFORM = {
    ("compute_node_user", "GET", "*/rdp"): (
        409, "OperationNotValidOnNode",
        "the recording's pool was a Windows cloudServiceConfiguration pool and got an RDP file; "
        "Get Remote Desktop is documented for Cloud Services pools only, and openbatch nodes are "
        "Linux nodes of virtualMachineConfiguration pools, for which the service refuses it"),
}


def apply_platform_rules(name, results):
    """Counts a BY_PLATFORM step as matched when openbatch answers it as documented."""
    import fnmatch
    for r in results:
        for (rec, method, pattern), (status, code, why) in BY_PLATFORM.items():
            if rec != name or r.first["method"] != method or not fnmatch.fnmatchcase(r.first["path"], pattern):
                continue
            got_code = r.live.body.get("code") if isinstance(r.live.body, dict) else None
            if r.live.status == status and got_code == code:
                r.comparison.mismatches = []
                r.comparison.notes.append("%s %s answered %d %s by platform: %s" % (method, pattern, status, code, why))

# Recordings whose Windows pools run on a Linux image here (their point is not the operating
# system, and their answers depend on the pool getting nodes): the Windows image is swapped for
# Ubuntu 22.04 in requests and shown again in answers (replayutil.LinuxImageFor).
LINUX_IMAGE = {"publisher": "canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts", "version": "latest"}
ON_LINUX = {"network_configuration_acceleratednetworking"}


def preparer_pool(pool_id, nodes, vm_size="Standard_A1", ubuntu="16.04"):
    """The SDK tests' PoolPreparer pool, on a Linux image openbatch runs."""
    return {
        "id": pool_id,
        "displayName": "test_pool",
        "vmSize": vm_size,
        "virtualMachineConfiguration": {
            "imageReference": {"publisher": "Canonical", "offer": "UbuntuServer", "sku": "%s-LTS" % ubuntu},
            "nodeAgentSKUId": "batch.node.ubuntu %s" % ubuntu,
        },
        "userAccounts": [{"name": "task-user", "password": "kt#_gahr!@aGERDXA", "elevationLevel": "admin"}],
        "targetDedicatedNodes": nodes,
    }


# What each SDK test's fixtures created before its recording starts, inferred
# from the ids the recording uses before creating them (and the recorded
# GETs: vmSize, image, node count). "jobs" are (job id, pool id).
# applications: its JobPreparer made a job on an auto pool (cloud service),
# which openbatch does not run; the job gets a plain pool instead.
# compute_node_user: a 'paas' (cloudServiceConfiguration, vmSize small) pool
# in the SDK test; here a Linux pool of the same vmSize.
FIXTURES = {
    "applications": {
        "pools": [preparer_pool("replay_applications_pool", 0)],
        "jobs": [("batch", "replay_applications_pool")],
        # The SDK test's account had this package (added through Azure Resource Manager).
        "apps": [("application_id", "v1.0")],
    },
    "compute_node_user": {
        "pools": [preparer_pool("test_batch_test_batch_compute_node_user3c670ff0", 1, vm_size="small")],
    },
    "compute_nodes": {
        "pools": [preparer_pool("test_batch_test_batch_compute_nodesff3f0e45", 2,
                                vm_size="standard_d2_v2", ubuntu="18.04")],
    },
    "files": {
        "pools": [preparer_pool("test_batch_test_batch_files98930ae3", 1, vm_size="standard_d2_v2", ubuntu="18.04")],
        "jobs": [("batch", "test_batch_test_batch_files98930ae3")],
    },
    "scale_pools": {
        "pools": [preparer_pool("test_batch_test_batch_scale_poolse2690d64", 0)],
    },
}


def add_package(svc, app_id, version, workdir):
    """Adds an application package the way an administrator does: `openbatch app add`."""
    import subprocess
    import zipfile
    from conftest import openbatch_bin
    path = pathlib.Path(workdir) / ("%s-%s.zip" % (app_id, version))
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.sh", "#!/bin/sh\necho hello\n")
    subprocess.run([openbatch_bin(), "app", "--url", svc.url, "--account", svc.account, "--key", svc.key,
                    "add", app_id, version, str(path), "--default"], check=True, capture_output=True, timeout=30)


def create_fixtures(http, name, api_version, timeout=30, svc=None):
    spec = FIXTURES.get(name, {})
    for app_id, version in spec.get("apps", []):
        add_package(svc, app_id, version, svc.workdir)
    for pool in spec.get("pools", []):
        http.must("POST", "/pools", api_version, body=pool)
    for pool in spec.get("pools", []):
        want = pool["targetDedicatedNodes"]
        deadline = time.monotonic() + timeout
        while True:
            p = http.must("GET", "/pools/%s" % pool["id"], api_version).body
            nodes = http.must("GET", "/pools/%s/nodes" % pool["id"], api_version).body["value"]
            states = [n.get("state") for n in nodes]
            if p.get("allocationState") == "steady" and len(nodes) == want and all(s == "idle" for s in states):
                break
            if time.monotonic() > deadline:
                raise AssertionError("fixture pool %s not ready after %ss: %s %s"
                                     % (pool["id"], timeout, p.get("allocationState"), states))
            time.sleep(0.2)
    for job_id, pool_id in spec.get("jobs", []):
        http.must("POST", "/jobs", api_version, body={"id": job_id, "poolInfo": {"poolId": pool_id}})


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

_RESULTS = {}  # name -> summary dict, for target/replay-report.md


def summarize(name, interactions, results, seconds):
    return {
        "name": name,
        "api_version": interactions[0]["api_version"],
        "interactions": len(interactions),
        "steps": len(results),
        "matched": sum(1 for r in results if r.ok),
        "seconds": seconds,
        "failures": [(r.label, r.comparison.mismatches) for r in results if not r.ok],
        "extras": sorted({e for r in results for e in r.comparison.extras}),
        "notes": sorted({n for r in results for n in r.comparison.notes}),
    }


def text_table(s):
    lines = ["replay %s (api-version %s): %d/%d steps matched (%d recorded interactions, %.1f s)%s" % (
        s["name"], s["api_version"], s["matched"], s["steps"], s["interactions"], s["seconds"],
        "  [MUST_MATCH]" if s["name"] in MUST_MATCH else "")]
    for label, reasons in s["failures"]:
        lines.append("  %s" % label)
        for reason in reasons:
            lines.append("      - %s" % reason)
    if s["extras"]:
        lines.append("  extra properties (not mismatches): %s" % ", ".join(s["extras"]))
    return "\n".join(lines)


def _md(text):
    return text.replace("|", "\\|")


def write_report():
    rows = [_RESULTS[n] for n in NAMES if n in _RESULTS]
    out = [
        "# openbatch replay of recorded Azure Batch traffic",
        "",
        "Generated by `conformance/test_replay.py` (recordings: `%s`)." % RECORDINGS_DIR,
        "Steps: the recorded interactions with each polling loop collapsed into one step.",
        "",
        "| recording | api-version | matched / steps | interactions | MUST_MATCH |",
        "|---|---|---:|---:|---|",
    ]
    for s in rows:
        out.append("| %s | %s | %d / %d | %d | %s |" % (
            s["name"], s["api_version"], s["matched"], s["steps"], s["interactions"],
            "yes" if s["name"] in MUST_MATCH else ""))
    total_m = sum(s["matched"] for s in rows)
    total_s = sum(s["steps"] for s in rows)
    out.append("| **total** | | **%d / %d** | %d | |" % (total_m, total_s, sum(s["interactions"] for s in rows)))
    for s in rows:
        out += ["", "## %s" % s["name"], ""]
        if not s["failures"]:
            out.append("All %d steps match." % s["steps"])
        for label, reasons in s["failures"]:
            out.append("- `%s`" % label)
            for reason in reasons:
                out.append("  - %s" % _md(reason))
        if s["extras"]:
            out += ["", "Extra properties (not mismatches): %s" % ", ".join("`%s`" % e for e in s["extras"])]
        if s["notes"]:
            out += ["", "Notes: %s" % "; ".join(_md(n) for n in s["notes"])]
    REPORT_PATH.parent.mkdir(parents=True, exist_ok=True)
    REPORT_PATH.write_text("\n".join(out) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------


@pytest.mark.timeout(150)
@pytest.mark.parametrize("name", NAMES)
def test_replay(name, service_factory):
    path = RECORDINGS_DIR / ("test_batch.test_batch_%s.jsonl" % name)
    if not path.is_file():
        pytest.skip("recording not found: %s" % path)
    interactions = load_recording(path)
    api_version = interactions[0]["api_version"]

    svc = service_factory()
    svc.start()
    http = SignedHttp(svc.url, svc.account, svc.key)
    started = time.monotonic()
    create_fixtures(http, name, api_version, svc=svc)
    images = LinuxImageFor(LINUX_IMAGE, "batch.node.ubuntu 22.04") if name in ON_LINUX else None
    with recording_rules(name):
        results = replay(http, interactions, poll_timeout=POLL_TIMEOUT, images=images)
    apply_platform_rules(name, results)

    summary = summarize(name, interactions, results, time.monotonic() - started)
    _RESULTS[name] = summary
    write_report()
    print(text_table(summary))

    if name in MUST_MATCH and summary["failures"]:
        pytest.fail("%s is in MUST_MATCH but did not match:\n%s\n(report: %s)"
                    % (name, text_table(summary), REPORT_PATH), pytrace=False)
