"""The official Azure Batch SDK for JavaScript (@azure/batch 10.2.0) against openbatch.

conformance/js/batch_scenario.js runs with Node against the shared service:
supported images, a pool of 2 nodes, a job, a task plus Add Task Collection,
a task exiting 3, exit codes, stdout.txt read back, task counts, $filter lists,
resize, delete. scripts/test-all.sh installs the SDK from
conformance/js/package-lock.json into target/node/ and passes its
node_modules in $OPENBATCH_NODE_MODULES.
"""

import os
import pathlib
import shutil
import subprocess

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parent / "js" / "batch_scenario.js"

# Runs once per test-all.sh run (in the 13.0.0 venv's pytest run); it does not use the Python SDK.
pytestmark = pytest.mark.sdk_versions("13.0.0")


@pytest.mark.timeout(300)
def test_js_sdk_scenario(openbatch):
    node_modules = os.environ.get("OPENBATCH_NODE_MODULES")
    if not node_modules:
        pytest.skip(
            "OPENBATCH_NODE_MODULES is not set: scripts/test-all.sh installs @azure/batch into "
            "target/node/ (npm ci from conformance/js/) and sets it"
        )
    assert os.path.isdir(os.path.join(node_modules, "@azure", "batch")), (
        "no @azure/batch under OPENBATCH_NODE_MODULES=%s" % node_modules
    )
    node = os.environ.get("OPENBATCH_NODE") or shutil.which("node")
    assert node, "node is not on PATH (set OPENBATCH_NODE)"

    env = dict(os.environ)
    # Only loopback traffic: no proxy may redirect the SDK's requests.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(name, None)
    env.update(
        NODE_PATH=node_modules,
        OPENBATCH_URL=openbatch.url,
        OPENBATCH_ACCOUNT=openbatch.account,
        OPENBATCH_KEY=openbatch.key,
    )
    proc = subprocess.run(
        [node, str(SCRIPT)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=270,
        cwd=str(SCRIPT.parent),
    )
    output = proc.stdout.decode("utf-8", "replace")
    print(output)
    assert proc.returncode == 0, "node %s exited %d:\n%s" % (SCRIPT.name, proc.returncode, output[-12000:])
    assert "[js] all checks passed" in output, output[-4000:]
