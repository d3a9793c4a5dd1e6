//! Reactor tests of certificate deletion: `deleting`, then gone or `deletefailed` (pools that
//! reference the certificate, nodes that have it installed), Cancel Deletion, and deletions
//! that outlive a restart.

use super::testenv::TestEnv;
use super::{Effect, Event};
use crate::agent::protocol::ServiceMessage;
use crate::model::certificate::{key, Certificate, CertificateFormat, CertificateState, SHA1};
use crate::model::pool::Pool;
use serde_json::json;

fn add_cert(env: &mut TestEnv, thumbprint: &str) {
    let now = env.reactor.now();
    env.put(Certificate::active(thumbprint, CertificateFormat::Cer, now));
}

fn cert(env: &TestEnv, thumbprint: &str) -> Option<Certificate> {
    env.all::<Certificate>().into_iter().find(|c| c.thumbprint == thumbprint)
}

fn delete(env: &mut TestEnv, thumbprint: &str) -> Result<(), String> {
    env.call(Event::DeleteCertificate { id: key(SHA1, thumbprint) }).map_err(|e| e.code)
}

fn cancel(env: &mut TestEnv, thumbprint: &str) -> Result<(), String> {
    env.call(Event::CancelCertificateDeletion { id: key(SHA1, thumbprint) }).map_err(|e| e.code)
}

fn referencing_pool(env: &mut TestEnv, thumbprint: &str) {
    let refs = json!([{"thumbprint": thumbprint, "thumbprintAlgorithm": "sha1", "visibility": ["task"]}]);
    env.pool_with("p", json!({"id": "p", "vmSize": "standard_d2s_v3", "targetDedicatedNodes": 1, "certificateReferences": refs}));
}

#[test]
fn nodes_get_their_pools_certificates_in_the_welcome() {
    let mut env = TestEnv::new();
    add_cert(&mut env, "ab");
    referencing_pool(&mut env, "ab");
    let node = env.nodes("p").pop().expect("a node");
    assert_eq!(node.certificate_references.len(), 1);
    let welcomed = env.effects.iter().find_map(|e| match e {
        Effect::Send { msg: ServiceMessage::Welcome { certificates, .. }, .. } => Some(certificates.clone()),
        _ => None,
    });
    let certs = welcomed.expect("a welcome");
    assert_eq!((certs[0].stem(), certs[0].visibility.clone()), ("sha1-ab".to_string(), vec!["task".to_string()]));
}

#[test]
fn deletion_fails_while_a_pool_references_the_certificate_and_can_be_cancelled() {
    let mut env = TestEnv::new();
    add_cert(&mut env, "ab");
    referencing_pool(&mut env, "ab");
    assert_eq!(cancel(&mut env, "ab"), Err("CertificateStateActive".into()));
    delete(&mut env, "ab").unwrap();
    assert_eq!(cert(&env, "ab").unwrap().state, CertificateState::Deleting);
    assert_eq!(delete(&mut env, "ab"), Err("CertificateBeingDeleted".into()));
    assert_eq!(cancel(&mut env, "ab"), Err("CertificateBeingDeleted".into()));
    // The service takes its time.
    env.advance(0);
    assert_eq!(cert(&env, "ab").unwrap().state, CertificateState::Deleting);
    env.advance(1);
    let c = cert(&env, "ab").unwrap();
    assert_eq!((c.state, c.previous_state), (CertificateState::DeleteFailed, Some(CertificateState::Deleting)));
    let e = c.delete_certificate_error.expect("an error");
    assert_eq!((e.code.as_str(), e.values[0].name.as_str(), e.values[0].value.as_str()), ("PoolsReferencingCertificate", "Pools", "p"));
    // Delete may be tried again; Cancel Deletion makes it active.
    delete(&mut env, "ab").unwrap();
    env.advance(1);
    assert_eq!(cert(&env, "ab").unwrap().state, CertificateState::DeleteFailed);
    cancel(&mut env, "ab").unwrap();
    let c = cert(&env, "ab").unwrap();
    assert_eq!((c.state, c.delete_certificate_error), (CertificateState::Active, None));
}

#[test]
fn nodes_keep_a_certificate_their_pool_no_longer_references() {
    let mut env = TestEnv::new();
    add_cert(&mut env, "ab");
    referencing_pool(&mut env, "ab");
    let mut pool = env.all::<Pool>().pop().unwrap();
    pool.spec.certificate_references = Some(vec![]);
    env.put(pool);
    delete(&mut env, "ab").unwrap();
    env.advance(2);
    let c = cert(&env, "ab").unwrap();
    let e = c.delete_certificate_error.expect("an error");
    let node = env.nodes("p").pop().unwrap().id;
    assert_eq!((e.code.as_str(), e.values[0].value.clone()), ("NodesReferencingCertificate", format!("p/{node}")));
}

#[test]
fn an_unused_certificate_goes_and_a_deletion_outlives_a_restart() {
    let mut env = TestEnv::new();
    add_cert(&mut env, "ab");
    add_cert(&mut env, "cd");
    referencing_pool(&mut env, "ab");
    delete(&mut env, "cd").unwrap();
    env.advance(1);
    assert!(cert(&env, "cd").is_none());
    assert_eq!(delete(&mut env, "cd"), Err("CertificateNotFound".into()));
    delete(&mut env, "ab").unwrap();
    env.restart();
    env.advance(1);
    assert_eq!(cert(&env, "ab").unwrap().state, CertificateState::DeleteFailed);
}
