"""Certificates through azure-batch 13.0.0 (api-version 2023-05-01.17.0).

Adds a pfx (with its password) and a cer made for the tests
(crates/openbatch/tests/fixtures/certificates), lists and gets them (never their data or
password), refuses a wrong thumbprint, a wrong password and a duplicate, creates a pool that
references the cer, sees its deletion fail (`deletefailed`, `PoolsReferencingCertificate`),
cancels that, and deletes the pfx nothing references.
"""

import base64
import pathlib

import pytest

import azure.batch.models as batchmodels
from azure.batch.models import BatchErrorException

from batchutil import delete_quietly, pick_linux_image, unique, vm_config, wait_until

pytestmark = pytest.mark.sdk_versions("13.0.0")

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "crates" / "openbatch" / "tests" / "fixtures" / "certificates"
PFX_THUMBPRINT = "2588c8eb241c481a2ef9160f7f66b5517fecda54"
CER_THUMBPRINT = "38739f77ac484d6a27f01e399240f28443d8a462"
PASSWORD = "openbatch-pfx"
WAIT = 30


def data(name):
    return base64.b64encode((FIXTURES / name).read_bytes()).decode()


def error_code(call, *args):
    with pytest.raises(BatchErrorException) as exc:
        call(*args)
    return exc.value.error.code


def test_certificates_add_list_get_delete_and_cancel(batch_client):
    client = batch_client
    pool_id = unique("cert-pool")
    pfx = batchmodels.CertificateAddParameter(thumbprint=PFX_THUMBPRINT, thumbprint_algorithm="sha1", data=data("pfx-aes.pfx"),
                                              certificate_format=batchmodels.CertificateFormat.pfx, password=PASSWORD)
    cer = batchmodels.CertificateAddParameter(thumbprint=CER_THUMBPRINT, thumbprint_algorithm="sha1", data=data("cer.cer"),
                                              certificate_format=batchmodels.CertificateFormat.cer)
    try:
        wrong = batchmodels.CertificateAddParameter(thumbprint="00" * 20, thumbprint_algorithm="sha1", data=data("pfx-aes.pfx"),
                                                    password=PASSWORD)
        assert error_code(client.certificate.add, wrong) == "InvalidPropertyValue"
        bad_password = batchmodels.CertificateAddParameter(thumbprint=PFX_THUMBPRINT, thumbprint_algorithm="sha1",
                                                           data=data("pfx-legacy.pfx"), password="nope")
        assert error_code(client.certificate.add, bad_password) == "InvalidPropertyValue"

        client.certificate.add(pfx)
        client.certificate.add(cer)
        assert error_code(client.certificate.add, pfx) == "CertificateExists"

        listed = {c.thumbprint: c for c in client.certificate.list()}
        assert set(listed) == {PFX_THUMBPRINT, CER_THUMBPRINT}
        got = client.certificate.get("sha1", CER_THUMBPRINT)
        assert isinstance(got, batchmodels.Certificate)
        assert got.state == batchmodels.CertificateState.active and got.thumbprint_algorithm == "sha1"
        assert got.public_data == data("cer.cer") and got.delete_certificate_error is None
        assert not hasattr(got, "password") and not hasattr(got, "data")
        assert error_code(client.certificate.get, "sha1", "00" * 20) == "CertificateNotFound"
        assert error_code(client.certificate.cancel_deletion, "sha1", CER_THUMBPRINT) == "CertificateStateActive"

        client.pool.add(batchmodels.PoolAddParameter(
            id=pool_id, vm_size="standard_d2_v3", virtual_machine_configuration=vm_config(pick_linux_image(client)),
            target_dedicated_nodes=0,
            certificate_references=[batchmodels.CertificateReference(thumbprint=CER_THUMBPRINT, thumbprint_algorithm="sha1")]))
        client.certificate.delete("sha1", CER_THUMBPRINT)
        assert error_code(client.certificate.delete, "sha1", CER_THUMBPRINT) == "CertificateBeingDeleted"
        failed = wait_until("deletion failed", lambda: (
            lambda c: (c.state == batchmodels.CertificateState.delete_failed, c))(client.certificate.get("sha1", CER_THUMBPRINT)), WAIT)
        assert failed.previous_state == batchmodels.CertificateState.deleting
        assert failed.delete_certificate_error.code == "PoolsReferencingCertificate"
        assert [(v.name, v.value) for v in failed.delete_certificate_error.values] == [("Pools", pool_id)]
        only_failed = list(client.certificate.list(batchmodels.CertificateListOptions(filter="state eq 'deletefailed'")))
        assert [c.thumbprint for c in only_failed] == [CER_THUMBPRINT]

        client.certificate.cancel_deletion("sha1", CER_THUMBPRINT)
        assert client.certificate.get("sha1", CER_THUMBPRINT).state == batchmodels.CertificateState.active

        client.certificate.delete("sha1", PFX_THUMBPRINT)
        wait_until("pfx deleted", lambda: (PFX_THUMBPRINT not in {c.thumbprint for c in client.certificate.list()}, None), WAIT)
    finally:
        delete_quietly(client.pool.delete, pool_id)
