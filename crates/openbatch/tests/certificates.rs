//! Certificates over HTTP: Certificate Add (pfx with its password, modern and legacy
//! encryption; cer), its checks (thumbprint, password, format, algorithm, duplicates), List
//! with `$filter` and `$select`, Get, Delete with its state machine against a referencing pool,
//! Cancel Deletion, pools referencing missing certificates, and the installation of a pool's
//! certificates on its node where a task finds them through `AZ_BATCH_CERTIFICATES_DIR`.
//! Fixtures: `tests/fixtures/certificates/` (see its README).

mod common;

use base64::Engine;
use common::*;
use serde_json::{json, Value};

const PFX_THUMBPRINT: &str = "2588c8eb241c481a2ef9160f7f66b5517fecda54";
const CER_THUMBPRINT: &str = "38739f77ac484d6a27f01e399240f28443d8a462";
const PASSWORD: &str = "openbatch-pfx";

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/certificates").join(name);
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(path).unwrap())
}

fn pfx(file: &str, thumbprint: &str, password: &str) -> Value {
    json!({"thumbprint": thumbprint, "thumbprintAlgorithm": "sha1", "data": fixture(file), "certificateFormat": "pfx", "password": password})
}

fn cer() -> Value {
    json!({"thumbprint": CER_THUMBPRINT, "thumbprintAlgorithm": "sha1", "data": fixture("cer.cer"), "certificateFormat": "cer"})
}

fn path(thumbprint: &str) -> String {
    format!("/certificates(thumbprintAlgorithm=sha1,thumbprint={thumbprint})")
}

async fn wait_state(svc: &Service, thumbprint: &str, state: &str) -> Value {
    let deadline = std::time::Instant::now() + secs(15);
    loop {
        let c = svc.get_json(&path(thumbprint)).await;
        if c["state"] == state {
            return c;
        }
        assert!(std::time::Instant::now() < deadline, "certificate not {state}: {c}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn certificates_are_checked_added_listed_and_shown_without_secrets() {
    let svc = Service::start().await;
    // Bad input first: each names the property at fault.
    let wrong = "0000000000000000000000000000000000000000";
    let cases = [
        (pfx("pfx-aes.pfx", wrong, PASSWORD), "thumbprint"),
        (pfx("pfx-aes.pfx", PFX_THUMBPRINT, "not-the-password"), "password"),
        (pfx("pfx-aes.pfx", "xyz", PASSWORD), "thumbprint"),
        (
            json!({"thumbprint": PFX_THUMBPRINT, "thumbprintAlgorithm": "sha256", "data": fixture("pfx-aes.pfx"), "password": PASSWORD}),
            "thumbprintAlgorithm",
        ),
        (
            json!({"thumbprint": CER_THUMBPRINT, "thumbprintAlgorithm": "sha1", "data": "bm90IGEgY2VydA==", "certificateFormat": "cer"}),
            "data",
        ),
        (json!({"thumbprint": CER_THUMBPRINT, "thumbprintAlgorithm": "sha1", "data": "***", "certificateFormat": "cer"}), "data"),
        (json!({"thumbprint": PFX_THUMBPRINT, "thumbprintAlgorithm": "sha1", "data": fixture("cer.cer"), "password": "x"}), "data"),
    ];
    for (body, property) in cases {
        let e = svc.post("/certificates").json(body).send().await.expect_error(400, "InvalidPropertyValue");
        assert_eq!(e["values"][0]["value"], property, "{e}");
    }
    let e = svc.post("/certificates").json(json!({"thumbprint": CER_THUMBPRINT, "thumbprintAlgorithm": "sha1"})).send().await;
    e.expect_error(400, "MissingRequiredProperty");

    // A pfx (AES, as OpenSSL 3 writes them) and a cer; the thumbprint may be upper case with spaces.
    let r = svc.post("/certificates").json(pfx("pfx-aes.pfx", PFX_THUMBPRINT, PASSWORD)).send().await;
    r.expect_status(201);
    let location = r.header("location").unwrap();
    assert!(location.ends_with(&format!("/certificates(ThumbprintAlgorithm=sha1,Thumbprint={PFX_THUMBPRINT})")), "{location}");
    assert_eq!(r.header("dataserviceid"), Some(location));
    let mut spaced = cer();
    spaced["thumbprint"] = json!(CER_THUMBPRINT
        .to_uppercase()
        .chars()
        .collect::<Vec<_>>()
        .chunks(2)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" "));
    svc.post("/certificates").json(spaced).send().await.expect_status(201);
    // The same certificate again, in the legacy pfx encryption (RC2/3DES): it exists.
    svc.post("/certificates").json(pfx("pfx-legacy.pfx", PFX_THUMBPRINT, PASSWORD)).send().await.expect_error(409, "CertificateExists");
    // The oldest and the last api-version with certificates read the body too (2024-07-01.20.0
    // writes it as a Certificate).
    for v in ["2015-06-01.2.0", "2024-07-01.20.0"] {
        let r = svc.post("/certificates").api_version(v).json(pfx("pfx-legacy.pfx", PFX_THUMBPRINT, PASSWORD)).send().await;
        r.expect_error(409, "CertificateExists");
    }

    let c = svc.get_json(&path(PFX_THUMBPRINT)).await;
    assert!(c["odata.metadata"].as_str().unwrap().ends_with("$metadata#certificates/@Element"), "{c}");
    assert_eq!(c["thumbprint"], PFX_THUMBPRINT);
    assert_eq!(c["state"], "active");
    assert!(c["url"].as_str().unwrap().ends_with(&path(PFX_THUMBPRINT)), "{c}");
    let der = base64::engine::general_purpose::STANDARD.decode(c["publicData"].as_str().unwrap()).unwrap();
    assert_eq!(der[0], 0x30, "publicData is the certificate's DER");
    for secret in ["data", "password", "format", "certificateFormat", "id", "previousState"] {
        assert!(c.get(secret).is_none(), "{secret} shown: {c}");
    }
    let cer_get = svc.get_json(&path(&CER_THUMBPRINT.to_uppercase())).await;
    assert_eq!(cer_get["publicData"], fixture("cer.cer"));
    svc.get(&path(wrong)).send().await.expect_error(404, "CertificateNotFound");
    svc.get("/certificates(thumbprintAlgorithm=sha1)").send().await.expect_error(400, "InvalidUri");

    let list = svc.get_json("/certificates").await;
    assert!(list["odata.metadata"].as_str().unwrap().ends_with("$metadata#certificates"), "{list}");
    let thumbprints: Vec<&str> = list["value"].as_array().unwrap().iter().map(|c| c["thumbprint"].as_str().unwrap()).collect();
    assert_eq!(thumbprints.len(), 2, "{list}");
    let page = svc.get_json("/certificates?maxresults=1&$select=thumbprint,state").await;
    assert_eq!(page["value"].as_array().unwrap().len(), 1);
    assert_eq!(page["value"][0].as_object().unwrap().len(), 2, "{page}");
    assert!(page["odata.nextLink"].is_string(), "{page}");
    let none = svc.get_json("/certificates?$filter=state%20eq%20'deletefailed'").await;
    assert_eq!(none["value"], json!([]));
    svc.get("/certificates?$filter=thumbprint%20eq%20'x'").send().await.expect_error(400, "InvalidQueryParameterValue");
    // Not an operation of 2025-06-01.
    svc.get("/certificates").api_version("2025-06-01").send().await.expect_status(404);
}

#[tokio::test]
async fn deletion_fails_while_a_pool_references_the_certificate() {
    let svc = Service::start().await;
    svc.post("/certificates").json(cer()).send().await.expect_status(201);
    // References must name certificates of the account.
    let missing = json!({"certificateReferences": [{"thumbprint": PFX_THUMBPRINT, "thumbprintAlgorithm": "sha1"}]});
    let e = svc.post("/pools").json({
        let mut p = linux_pool("nope", 0);
        merge(&mut p, missing);
        p
    });
    e.send().await.expect_error(409, "InvalidCertificateReferences");
    let refs = json!({"certificateReferences": [{"thumbprint": CER_THUMBPRINT, "thumbprintAlgorithm": "sha1"}]});
    svc.add_pool("p", 0, refs.clone()).await;

    svc.post(&format!("{}/canceldelete", path(CER_THUMBPRINT))).send().await.expect_error(409, "CertificateStateActive");
    svc.delete(&path(CER_THUMBPRINT)).send().await.expect_status(202);
    let c = svc.get_json(&path(CER_THUMBPRINT)).await;
    assert_eq!((c["state"].as_str(), c["previousState"].as_str()), (Some("deleting"), Some("active")), "{c}");
    svc.delete(&path(CER_THUMBPRINT)).send().await.expect_error(409, "CertificateBeingDeleted");
    // A deleting certificate cannot be referenced.
    let e = svc.patch("/pools/p").json(refs.clone()).send().await;
    e.expect_error(409, "InvalidCertificateReferences");
    let c = wait_state(&svc, CER_THUMBPRINT, "deletefailed").await;
    assert_eq!(
        c["deleteCertificateError"],
        json!({"code": "PoolsReferencingCertificate", "message": "The specified certificate is being used by the below mentioned pool(s)", "values": [{"name": "Pools", "value": "p"}]})
    );
    let failed = svc.get_json("/certificates?$filter=state%20eq%20'deletefailed'").await;
    assert_eq!(failed["value"].as_array().unwrap().len(), 1, "{failed}");
    svc.post(&format!("{}/canceldelete", path(CER_THUMBPRINT))).send().await.expect_status(204);
    let c = svc.get_json(&path(CER_THUMBPRINT)).await;
    assert_eq!(c["state"], "active");
    assert!(c.get("deleteCertificateError").is_none(), "{c}");

    // Once no pool references it (and the pool had no nodes), it goes.
    svc.patch("/pools/p").json(json!({"certificateReferences": []})).send().await.expect_status(200);
    svc.delete(&path(CER_THUMBPRINT)).send().await.expect_status(202);
    let deadline = std::time::Instant::now() + secs(15);
    while svc.get(&path(CER_THUMBPRINT)).send().await.status.as_u16() != 404 {
        assert!(std::time::Instant::now() < deadline, "the certificate was not deleted");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    svc.post(&format!("{}/canceldelete", path(CER_THUMBPRINT))).send().await.expect_error(404, "CertificateNotFound");
}

#[tokio::test]
async fn a_pools_certificates_are_installed_for_its_start_task_and_tasks() {
    let svc = Service::start().await;
    svc.post("/certificates").json(pfx("pfx-legacy.pfx", PFX_THUMBPRINT, PASSWORD)).send().await.expect_status(201);
    svc.post("/certificates").json(cer()).send().await.expect_status(201);
    let refs = json!([
        {"thumbprint": PFX_THUMBPRINT, "thumbprintAlgorithm": "sha1", "visibility": ["task"]},
        {"thumbprint": CER_THUMBPRINT, "thumbprintAlgorithm": "sha1", "visibility": ["starttask"]}
    ]);
    let list = "/bin/sh -c 'cd $AZ_BATCH_CERTIFICATES_DIR && ls && stat -c %a *'";
    let start = json!({"commandLine": list, "waitForSuccess": true});
    svc.add_pool("p", 1, json!({"certificateReferences": refs, "startTask": start})).await;
    let nodes = svc.wait_pool_idle("p", 1, secs(30)).await;
    assert_eq!(nodes[0]["certificateReferences"], refs, "{}", nodes[0]);
    let node = nodes[0]["id"].as_str().unwrap();
    let started = svc.get(&format!("/pools/p/nodes/{node}/files/startup/stdout.txt")).send().await;
    assert_eq!(started.text(), format!("sha1-{CER_THUMBPRINT}.cer\n600\n"));

    svc.add_job("j", "p", json!({})).await;
    svc.add_task("j", "t", list, json!({})).await;
    let t = svc.wait_task_completed("j", "t", secs(30)).await;
    assert_eq!(t["executionInfo"]["exitCode"], 0, "{t}");
    let out = svc.task_file("j", "t", "stdout.txt").await;
    assert_eq!(out, format!("sha1-{PFX_THUMBPRINT}.pfx\nsha1-{PFX_THUMBPRINT}.pfx.pw\n600\n600\n"));
    // The pfx as added, and its password beside it.
    let check = format!(
        "/bin/sh -c 'cd $AZ_BATCH_CERTIFICATES_DIR && cat sha1-{PFX_THUMBPRINT}.pfx.pw && echo && base64 -w0 sha1-{PFX_THUMBPRINT}.pfx'"
    );
    svc.add_task("j", "u", &check, json!({})).await;
    svc.wait_task_completed("j", "u", secs(30)).await;
    assert_eq!(svc.task_file("j", "u", "stdout.txt").await, format!("{PASSWORD}\n{}", fixture("pfx-legacy.pfx")));

    // The node has them installed: deleting one fails even once the pool stops referencing it.
    svc.patch("/pools/p").json(json!({"certificateReferences": []})).send().await.expect_status(200);
    svc.delete(&path(CER_THUMBPRINT)).send().await.expect_status(202);
    let c = wait_state(&svc, CER_THUMBPRINT, "deletefailed").await;
    assert_eq!(c["deleteCertificateError"]["code"], "NodesReferencingCertificate", "{c}");
    assert_eq!(c["deleteCertificateError"]["values"][0]["value"], format!("p/{node}"));
}
