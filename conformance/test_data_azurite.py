"""Data in and out through Azure Blob Storage (Azurite), as the Batch Python quickstart does it.

With the official SDK and azure-storage-blob: input files uploaded to a container, tasks whose
resource files are SAS URLs to them (one per blob, and a whole container with a prefix), a pool
whose start task runs a script delivered as a resource file, the account's auto-storage,
output files uploaded on success and on failure, and the failures Batch reports (a missing
blob, a SAS without read permission, an upload to a missing container). Results are
downloaded from the container and checked.

Azurite comes from $OPENBATCH_AZURITE (scripts/test-all.sh installs it under target/azurite);
each test module starts its own on a free loopback port (conftest's `azurite` fixture).
"""

import datetime
import os
import pathlib
import shutil
import tempfile
import time

import pytest

import azure.batch.models as bm
from conftest import AZURITE_ACCOUNT, AZURITE_KEY, Service
from test_sdk_scenario import installed_release, make_client

pytestmark = [pytest.mark.sdk_versions("13.0.0", "11.0.0"), pytest.mark.timeout(240)]

UBUNTU = ("canonical", "0001-com-ubuntu-server-jammy", "22_04-lts", "batch.node.ubuntu 22.04")


@pytest.fixture(scope="module")
def batch(azurite, tmp_path_factory):
    """An openbatch service whose account is linked to the Azurite storage account."""
    svc = Service(tmp_path_factory.mktemp("openbatch-data"))
    os.environ["OPENBATCH_STORAGE_URL"] = azurite["url"]
    os.environ["OPENBATCH_STORAGE_KEY"] = AZURITE_KEY
    try:
        svc.start()
    finally:
        os.environ.pop("OPENBATCH_STORAGE_URL")
        os.environ.pop("OPENBATCH_STORAGE_KEY")
    _, rel = installed_release()
    client = make_client(rel, svc.url, svc.account, svc.key)
    yield svc, client
    svc.cleanup()


def sas(azurite, container, blob=None, permission="r", hours=2):
    from azure.storage.blob import BlobSasPermissions, ContainerSasPermissions, generate_blob_sas, generate_container_sas
    expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=hours)
    if blob is None:
        token = generate_container_sas(AZURITE_ACCOUNT, container, account_key=AZURITE_KEY,
                                       permission=ContainerSasPermissions.from_string(permission), expiry=expiry)
        return "%s/%s?%s" % (azurite["url"], container, token)
    token = generate_blob_sas(AZURITE_ACCOUNT, container, blob, account_key=AZURITE_KEY,
                              permission=BlobSasPermissions.from_string(permission), expiry=expiry)
    return "%s/%s/%s?%s" % (azurite["url"], container, blob, token)


def upload(azurite, container, files):
    cc = azurite["client"].get_container_client(container)
    if not cc.exists():
        cc.create_container()
    for name, data in files.items():
        cc.upload_blob(name, data, overwrite=True)


def blobs(azurite, container):
    cc = azurite["client"].get_container_client(container)
    return {b.name: cc.download_blob(b.name).readall() for b in cc.list_blobs()}


def linux_pool(pool_id, nodes=1, start_task=None):
    pub, offer, sku, agent = UBUNTU
    return bm.PoolAddParameter(
        id=pool_id, vm_size="standard_d2_v3", target_dedicated_nodes=nodes, start_task=start_task,
        virtual_machine_configuration=bm.VirtualMachineConfiguration(
            image_reference=bm.ImageReference(publisher=pub, offer=offer, sku=sku, version="latest"),
            node_agent_sku_id=agent))


def wait(what, fn, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(0.2)


def wait_tasks(client, job_id, n):
    def done():
        tasks = list(client.task.list(job_id))
        return tasks if len(tasks) == n and all(t.state == bm.TaskState.completed for t in tasks) else None
    return {t.id: t for t in wait("%d completed tasks in %s" % (n, job_id), done)}


def stdout(client, job_id, task_id):
    return b"".join(client.file.get_from_task(job_id, task_id, "stdout.txt")).decode()


def test_quickstart_resource_and_output_files(batch, azurite):
    svc, client = batch
    inputs = {"taskdata0.txt": b"first input\n", "taskdata1.txt": b"second input\n", "data/a.csv": b"1,2\n", "data/b.csv": b"3,4\n"}
    upload(azurite, "input", inputs)
    upload(azurite, "output", {})
    upload(azurite, "scripts", {"setup.sh": b"#!/bin/sh\necho prepared > $AZ_BATCH_NODE_SHARED_DIR/setup-ran\n"})

    # The start task runs a script delivered as a resource file (auto-storage container).
    start = bm.StartTask(
        command_line="/bin/sh setup.sh", wait_for_success=True,
        resource_files=[bm.ResourceFile(auto_storage_container_name="scripts", blob_prefix="setup")])
    client.pool.add(linux_pool("data-pool", 1, start))
    client.job.add(bm.JobAddParameter(id="quickstart", pool_info=bm.PoolInformation(pool_id="data-pool")))

    out_sas = sas(azurite, "output", permission="rwl")
    # uploadHeaders came with 2022-01-01.15.0 (azure-batch 12.0.0).
    headers = {"upload_headers": [bm.HttpHeader(name="Content-Type", value="text/plain")]} if hasattr(bm, "HttpHeader") else {}

    def outputs(prefix):
        return [
            bm.OutputFile(file_pattern="result*.txt",
                          destination=bm.OutputFileDestination(container=bm.OutputFileBlobContainerDestination(
                              container_url=out_sas, path=prefix, **headers)),
                          upload_options=bm.OutputFileUploadOptions(upload_condition="taskSuccess")),
            bm.OutputFile(file_pattern="../std*.txt",
                          destination=bm.OutputFileDestination(container=bm.OutputFileBlobContainerDestination(
                              container_url=out_sas, path=prefix + "/logs")),
                          upload_options=bm.OutputFileUploadOptions(upload_condition="taskFailure")),
        ]

    tasks = []
    for i in range(2):
        name = "taskdata%d.txt" % i
        tasks.append(bm.TaskAddParameter(
            id="cat%d" % i,
            command_line='/bin/sh -c "cat %s && cat %s > result-%d.txt && cat $AZ_BATCH_NODE_SHARED_DIR/setup-ran"' % (name, name, i),
            resource_files=[bm.ResourceFile(http_url=sas(azurite, "input", name), file_path=name, file_mode="0640")],
            output_files=outputs("cat%d" % i)))
    # A whole container, filtered by prefix, under a directory.
    tasks.append(bm.TaskAddParameter(
        id="container",
        command_line='/bin/sh -c "ls -R in | sort; cat in/data/*.csv; stat -c %a in/data/a.csv"',
        resource_files=[bm.ResourceFile(storage_container_url=sas(azurite, "input", permission="rl"), blob_prefix="data/", file_path="in")]))
    # A failing task: its logs are uploaded (taskFailure), its results are not (taskSuccess).
    tasks.append(bm.TaskAddParameter(
        id="fails", command_line='/bin/sh -c "echo partial > result-x.txt; echo oops; exit 4"', output_files=outputs("fails")))
    client.task.add_collection("quickstart", tasks)
    done = wait_tasks(client, "quickstart", len(tasks))

    for i in range(2):
        t = done["cat%d" % i]
        assert t.execution_info.exit_code == 0, t.execution_info
        assert stdout(client, "quickstart", t.id) == inputs["taskdata%d.txt" % i].decode() + "prepared\n"
    t = done["container"]
    assert t.execution_info.exit_code == 0, t.execution_info
    out = stdout(client, "quickstart", "container")
    assert "1,2\n3,4\n" in out and out.rstrip().endswith("770"), out
    assert "taskdata0.txt" not in out, out
    t = done["fails"]
    assert t.execution_info.exit_code == 4 and t.execution_info.failure_info.code == "FailureExitCode", t.execution_info

    got = blobs(azurite, "output")
    assert got["cat0/result-0.txt"] == b"first input\n", sorted(got)
    assert got["cat1/result-1.txt"] == b"second input\n", sorted(got)
    assert got["fails/logs/stdout.txt"] == b"oops\n", sorted(got)
    assert "fails/logs/stderr.txt" in got, sorted(got)
    assert not any(k.startswith("fails/result") for k in got), sorted(got)
    assert not any(k.startswith("cat0/logs") for k in got), sorted(got)
    if headers:
        props = azurite["client"].get_blob_client("output", "cat0/result-0.txt").get_blob_properties()
        assert props.content_settings.content_type == "text/plain", props.content_settings
    log = b"".join(client.file.get_from_task("quickstart", "cat0", "fileuploadout.txt")).decode()
    assert "result-0.txt" in log, log


def test_data_failures_are_reported_as_batch_does(batch, azurite):
    svc, client = batch
    upload(azurite, "fail-in", {"here.txt": b"x"})
    client.pool.add(linux_pool("fail-pool", 1))
    client.job.add(bm.JobAddParameter(id="failures", pool_info=bm.PoolInformation(pool_id="fail-pool")))
    no_read = sas(azurite, "fail-in", "here.txt", permission="w")
    tasks = [
        bm.TaskAddParameter(id="missing", command_line="/bin/true",
                            resource_files=[bm.ResourceFile(http_url=sas(azurite, "fail-in", "absent.txt"), file_path="absent.txt")]),
        bm.TaskAddParameter(id="denied", command_line="/bin/true",
                            resource_files=[bm.ResourceFile(http_url=no_read, file_path="here.txt")]),
        bm.TaskAddParameter(id="expired", command_line="/bin/true",
                            resource_files=[bm.ResourceFile(http_url=sas(azurite, "fail-in", "here.txt", hours=-1), file_path="here.txt")]),
        bm.TaskAddParameter(id="nocontainer", command_line="/bin/true",
                            resource_files=[bm.ResourceFile(storage_container_url=sas(azurite, "no-such-container", permission="rl"))]),
        bm.TaskAddParameter(id="upload", command_line='/bin/sh -c "echo r > r.txt"',
                            output_files=[bm.OutputFile(
                                file_pattern="r.txt",
                                destination=bm.OutputFileDestination(container=bm.OutputFileBlobContainerDestination(
                                    container_url=sas(azurite, "never-created", permission="rwl"))),
                                upload_options=bm.OutputFileUploadOptions(upload_condition="taskCompletion"))]),
    ]
    client.task.add_collection("failures", tasks)
    done = wait_tasks(client, "failures", len(tasks))
    codes = {tid: (t.execution_info.failure_info.code if t.execution_info.failure_info else None) for tid, t in done.items()}
    assert codes == {"missing": "BlobNotFound", "denied": "BlobAccessDenied", "expired": "BlobAccessDenied",
                     "nocontainer": "ResourceContainerNotFound", "upload": "FileUploadError"}, codes
    for tid in ("missing", "denied", "expired", "nocontainer"):
        info = done[tid].execution_info
        assert info.exit_code is None and info.result == bm.TaskExecutionResult.failure, info
        assert info.failure_info.category == bm.ErrorCategory.user_error, info.failure_info
        details = {d.name: d.value for d in info.failure_info.details}
        assert "sig=" not in str(details), details  # no SAS in what the service shows
    details = {d.name: d.value for d in done["missing"].execution_info.failure_info.details}
    assert details["FilePath"] == "absent.txt" and details["Url"].endswith("/fail-in/absent.txt"), details
    up = done["upload"].execution_info
    assert up.exit_code == 0 and up.result == bm.TaskExecutionResult.failure, up
    err = b"".join(client.file.get_from_task("failures", "upload", "fileuploaderr.txt")).decode()
    assert "r.txt" in err, err

    # A filePath that leaves the working directory is refused when the task is added.
    with pytest.raises(bm.BatchErrorException) as e:
        client.task.add("failures", bm.TaskAddParameter(
            id="escape", command_line="/bin/true",
            resource_files=[bm.ResourceFile(http_url=sas(azurite, "fail-in", "here.txt"), file_path="../../etc/x")]))
    assert e.value.error.code == "InvalidPropertyValue"
    assert any(v.value == "resourceFiles[0].filePath" for v in e.value.error.values), e.value.error.values
