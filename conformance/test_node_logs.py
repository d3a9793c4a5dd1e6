"""Upload Batch Service Logs (POST /pools/{poolId}/nodes/{nodeId}/uploadbatchservicelogs).

With the official SDK 13.0.0 (`compute_node.upload_batch_service_logs`) and azure-storage-blob
against Azurite (conftest's `azurite` fixture): the node agent's log is uploaded to the
container under the answer's virtual directory (`<account>/<pool>/<node>/<request id>`) and
equals the file openbatch writes (`<data dir>/nodes/<pool>/<node>.agent.log`); the time range
selects it or not. As the real service does, the answer comes at once and the upload runs in
the background: a read-only SAS, a missing container or a URL naming no container answer 200
and upload nothing (the service log says why); a managed identity (400 InvalidPropertyValue
identityReference), a missing node or pool (404), a bad or missing property (400) are refused. The first and
an older api-version are checked with plain signed HTTP (replayutil.SignedHttp).
"""

import datetime
import time

import pytest

import azure.batch.models as bm
from conftest import AZURITE_ACCOUNT, AZURITE_KEY, Service
from replayutil import SignedHttp

pytestmark = [pytest.mark.sdk_versions("13.0.0"), pytest.mark.timeout(180)]

POOL = "logs-pool"
UBUNTU = ("canonical", "0001-com-ubuntu-server-jammy", "22_04-lts", "batch.node.ubuntu 22.04")


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def container_sas(azurite, container, permission):
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas
    token = generate_container_sas(AZURITE_ACCOUNT, container, account_key=AZURITE_KEY,
                                   permission=ContainerSasPermissions.from_string(permission),
                                   expiry=now() + datetime.timedelta(hours=2))
    return "%s/%s?%s" % (azurite["url"], container, token)


@pytest.fixture(scope="module")
def node(azurite, tmp_path_factory):
    """A service with a one-node pool whose node is idle: (service, client, node id)."""
    svc = Service(tmp_path_factory.mktemp("openbatch-logs"))
    svc.start()
    try:
        client = svc.client()
        pub, offer, sku, agent = UBUNTU
        client.pool.add(bm.PoolAddParameter(
            id=POOL, vm_size="standard_d2_v3", target_dedicated_nodes=1,
            virtual_machine_configuration=bm.VirtualMachineConfiguration(
                image_reference=bm.ImageReference(publisher=pub, offer=offer, sku=sku, version="latest"),
                node_agent_sku_id=agent)))
        deadline = time.monotonic() + 60
        while True:
            nodes = list(client.compute_node.list(POOL))
            if len(nodes) == 1 and nodes[0].state == bm.ComputeNodeState.idle:
                break
            assert time.monotonic() < deadline, "the node did not become idle: %s" % [n.state for n in nodes]
            time.sleep(0.2)
        yield svc, client, nodes[0].id
    finally:
        svc.cleanup()


def error_of(call):
    with pytest.raises(bm.BatchErrorException) as e:
        call()
    return e.value.response.status_code, e.value.error.code, {v.key: v.value for v in (e.value.error.values or [])}


def upload(client, node_id, url, start, end=None, **kw):
    return client.compute_node.upload_batch_service_logs(
        POOL, node_id, bm.UploadBatchServiceLogsConfiguration(container_url=url, start_time=start, end_time=end, **kw), raw=True)


def test_uploads_the_agent_log(node, azurite):
    svc, client, node_id = node
    azurite["client"].create_container("logs")
    # The agent writes little at its default level: give its log a line to recognise.
    log_path = svc.data_dir / "nodes" / POOL / ("%s.agent.log" % node_id)
    with open(log_path, "ab") as f:
        f.write(b"test_node_logs: a line of the agent log\n")
    raw = upload(client, node_id, container_sas(azurite, "logs", "w"), now() - datetime.timedelta(hours=1))
    result = raw.output
    request_id = raw.response.headers["request-id"]
    assert result.number_of_files_uploaded == 1
    assert result.virtual_directory_name == "%s/%s/%s/%s" % (svc.account, POOL, node_id, request_id)
    cc = azurite["client"].get_container_client("logs")
    deadline = time.monotonic() + 20
    while True:  # the upload runs after the answer
        names = [b.name for b in cc.list_blobs(name_starts_with=result.virtual_directory_name + "/")]
        if names or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert names == [result.virtual_directory_name + "/agent.log"]
    uploaded = cc.download_blob(names[0]).readall()
    assert uploaded == log_path.read_bytes()
    assert b"test_node_logs: a line of the agent log\n" in uploaded
    props = cc.get_blob_client(names[0]).get_blob_properties()
    assert props.content_settings.content_type == "text/plain"

    # A second upload goes to a directory of its own.
    again = upload(client, node_id, container_sas(azurite, "logs", "cw"), now() - datetime.timedelta(hours=1)).output
    assert again.virtual_directory_name != result.virtual_directory_name
    assert again.number_of_files_uploaded == 1


def test_time_range_selects_the_files(node, azurite):
    _, client, node_id = node
    azurite["client"].create_container("ranges")
    url = container_sas(azurite, "ranges", "w")
    # Ended before the node (and its log) existed; started after its last message.
    before = upload(client, node_id, url, now() - datetime.timedelta(days=2), now() - datetime.timedelta(days=1)).output
    assert before.number_of_files_uploaded == 0
    later = upload(client, node_id, url, now() + datetime.timedelta(hours=1)).output
    assert later.number_of_files_uploaded == 0
    # A range around now holds the log.
    around = upload(client, node_id, url, now() - datetime.timedelta(hours=1), now() + datetime.timedelta(hours=1)).output
    assert around.number_of_files_uploaded == 1
    cc = azurite["client"].get_container_client("ranges")
    deadline = time.monotonic() + 20
    while not list(cc.list_blobs()) and time.monotonic() < deadline:  # uploaded after the answer
        time.sleep(0.1)
    assert [b.name for b in cc.list_blobs()] == [around.virtual_directory_name + "/agent.log"]


def test_storage_failures(node, azurite):
    _, client, node_id = node
    azurite["client"].create_container("readonly")
    start = now() - datetime.timedelta(hours=1)
    # Storage failures come after the answer, as with the real service: nothing is uploaded.
    for url in (container_sas(azurite, "readonly", "rl"), container_sas(azurite, "nosuchcontainer", "w"),
                "http://127.0.0.1:1/", "https://computecontainer.blob.core.windows.net/"):
        result = upload(client, node_id, url, start).output
        assert result.number_of_files_uploaded == 1, url
    time.sleep(1)
    assert list(azurite["client"].get_container_client("readonly").list_blobs()) == []
    assert "nosuchcontainer" not in [c.name for c in azurite["client"].list_containers()]

    status, code, values = error_of(lambda: upload(client, node_id, "not a url", start))
    assert (status, code, values["PropertyName"]) == (400, "InvalidPropertyValue", "containerUrl")

    status, code, values = error_of(lambda: upload(
        client, node_id, container_sas(azurite, "readonly", "w"), start,
        identity_reference=bm.ComputeNodeIdentityReference(resource_id="/subscriptions/x/identity")))
    assert (status, code, values["PropertyName"]) == (400, "InvalidPropertyValue", "identityReference")
    assert "managed identity" in values["Reason"]

    status, code, values = error_of(lambda: upload(client, node_id, container_sas(azurite, "readonly", "w"), start,
                                                   start - datetime.timedelta(hours=1)))
    assert (status, code, values["PropertyName"]) == (400, "InvalidPropertyValue", "endTime")


def test_missing_node_and_pool(node, azurite):
    _, client, _ = node
    url = container_sas(azurite, "logs", "w")
    config = bm.UploadBatchServiceLogsConfiguration(container_url=url, start_time=now())
    status, code, _ = error_of(lambda: client.compute_node.upload_batch_service_logs(POOL, "tvmps_nosuchnode", config))
    assert (status, code) == (404, "NodeNotFound")
    status, code, _ = error_of(lambda: client.compute_node.upload_batch_service_logs("nosuchpool", "tvmps_x", config))
    assert (status, code) == (404, "PoolNotFound")


def test_plain_http_versions_and_bodies(node, azurite):
    svc, _, node_id = node
    http = SignedHttp(svc.url, svc.account, svc.key)
    path = "/pools/%s/nodes/%s/uploadbatchservicelogs" % (POOL, node_id)
    url = container_sas(azurite, "logs", "w")
    start = (now() - datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    # The first api-version with the operation, and its answer's shape.
    r = http.request("POST", path, "2018-03-01.6.1", body={"containerUrl": url, "startTime": start})
    assert r.status == 200, r.body
    assert r.body["odata.metadata"].endswith("/$metadata#Microsoft.Azure.Batch.Protocol.Entities.UploadBatchServiceLogsResult")
    assert r.body["virtualDirectoryName"] == "%s/%s/%s/%s" % (svc.account, POOL, node_id, r.headers["request-id"])
    assert r.body["numberOfFilesUploaded"] == 1
    # The version before it has no such operation.
    assert http.request("POST", path, "2017-09-01.6.0", body={"containerUrl": url, "startTime": start}).status == 404
    # identityReference is not part of 2018-03-01.6.1.
    r = http.request("POST", path, "2018-03-01.6.1", body={"containerUrl": url, "startTime": start, "identityReference": {}})
    assert (r.status, r.body["code"]) == (400, "InvalidPropertyValue")
    # Missing and malformed properties.
    r = http.request("POST", path, "2022-10-01.16.0", body={"containerUrl": url})
    assert (r.status, r.body["code"], r.body["values"][0]["value"]) == (400, "MissingRequiredProperty", "startTime")
    r = http.request("POST", path, "2022-10-01.16.0", body={"startTime": start})
    assert (r.status, r.body["code"], r.body["values"][0]["value"]) == (400, "MissingRequiredProperty", "containerUrl")
    r = http.request("POST", path, "2022-10-01.16.0", body={"containerUrl": url, "startTime": "yesterday"})
    assert (r.status, r.body["code"], r.body["values"][0]["value"]) == (400, "InvalidPropertyValue", "startTime")
    r = http.request("POST", path, "2022-10-01.16.0", body={"containerUrl": url, "startTime": start, "colour": "red"})
    assert (r.status, r.body["code"]) == (400, "InvalidPropertyValue")
    # Only POST.
    assert http.request("GET", path, "2022-10-01.16.0").status == 405
