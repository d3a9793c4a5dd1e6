//! Certificates: Delete and Cancel Deletion, and the settling of deletions.
//!
//! Rules (see `model::certificate`): Delete moves a certificate to `deleting`; once it has
//! been `deleting` for [`DELETION_DELAY_MS`] the service looks at who uses it — pools whose
//! `certificateReferences` name it, and compute nodes that have it installed (a node keeps
//! the certificates it started with until it is removed, even when its pool stops
//! referencing them) — and either removes it or marks it `deletefailed` with the
//! [`deletion_outcome`]. Cancel Deletion returns a `deletefailed` certificate to `active`.
//!
//! [`DELETION_DELAY_MS`]: crate::model::certificate::DELETION_DELAY_MS

use super::{Backing, Reactor, Records};
use crate::api::error::{ApiResult, BatchError, ResourceKind};
use crate::model::certificate::{deletion_outcome, references, Certificate, CertificateState, Refusal};
use crate::model::node::Node;
use crate::model::pool::Pool;
use crate::model::time::Timestamp;
use crate::store::StoreResult;
use std::collections::BTreeSet;

/// The reactor's view of certificate deletions: the certificates it waits to settle.
#[derive(Debug, Default)]
pub struct CertDeletions {
    /// Whether the stored `deleting` certificates were read (on the first tick after a start
    /// or a rebuild).
    loaded: bool,
    /// Record keys of the certificates that are `deleting`.
    deleting: BTreeSet<String>,
}

/// The answer to a refused state change: 409 with the certificate error code.
pub fn refusal_error(r: Refusal) -> BatchError {
    match r {
        Refusal::BeingDeleted => BatchError::being_deleted(ResourceKind::Certificate),
        Refusal::Active => BatchError::conflict("CertificateStateActive", "The specified certificate is in active state."),
    }
}

impl Reactor {
    /// Certificate Delete (the certificate's record key `id`): `deleting`, settled by a later
    /// tick. 404 `CertificateNotFound`; 409 `CertificateBeingDeleted`.
    pub(super) async fn delete_certificate<B: Backing>(&mut self, r: &mut Records<B>, id: &str) -> StoreResult<ApiResult<()>> {
        let done = self.change_certificate(r, id, Certificate::begin_delete).await?;
        if done.is_ok() {
            self.certs.deleting.insert(id.to_string());
        }
        Ok(done)
    }

    /// Certificate Cancel Deletion: `deletefailed` → `active`. 404 `CertificateNotFound`;
    /// 409 `CertificateStateActive` or `CertificateBeingDeleted`.
    pub(super) async fn cancel_certificate_deletion<B: Backing>(&mut self, r: &mut Records<B>, id: &str) -> StoreResult<ApiResult<()>> {
        self.change_certificate(r, id, Certificate::cancel_delete).await
    }

    /// Applies a state rule to the certificate `id` now and stores it when the rule allows.
    async fn change_certificate<B: Backing>(
        &mut self,
        r: &mut Records<B>,
        id: &str,
        rule: fn(&mut Certificate, Timestamp) -> Result<(), Refusal>,
    ) -> StoreResult<ApiResult<()>> {
        let now = self.now();
        let Some(mut c) = r.get::<Certificate>("", id).await? else {
            return Ok(Err(BatchError::not_found(ResourceKind::Certificate)));
        };
        if let Err(refused) = rule(&mut c, now) {
            return Ok(Err(refusal_error(refused)));
        }
        r.put(c);
        Ok(Ok(()))
    }

    /// Forgets what the reactor knew about deletions (after a rebuild: the next tick reads
    /// them again from the records).
    pub(super) fn reset_certificates(&mut self) {
        self.certs = CertDeletions::default();
    }

    /// A tick: settles every deletion that is due.
    pub(super) async fn tick_certificates<B: Backing>(&mut self, r: &mut Records<B>, now: Timestamp) -> StoreResult<()> {
        if !self.certs.loaded {
            let stored = r.children::<Certificate>("").await?;
            self.certs.deleting.extend(stored.into_iter().filter(|c| c.state == CertificateState::Deleting).map(|c| c.id));
            self.certs.loaded = true;
        }
        for id in self.certs.deleting.clone() {
            match r.get::<Certificate>("", &id).await? {
                Some(c) if c.deletion_due(now) => {
                    self.certs.deleting.remove(&id);
                    self.settle_certificate(r, c, now).await?;
                }
                Some(c) if c.state == CertificateState::Deleting => {}
                _ => {
                    self.certs.deleting.remove(&id);
                }
            }
        }
        Ok(())
    }

    /// Removes a `deleting` certificate nothing uses, or marks its deletion failed.
    async fn settle_certificate<B: Backing>(&mut self, r: &mut Records<B>, mut c: Certificate, now: Timestamp) -> StoreResult<()> {
        let mut pools = Vec::new();
        let mut nodes = Vec::new();
        for p in r.children::<Pool>("").await? {
            if references(p.spec.certificate_references.as_deref(), &c.id) {
                pools.push(p.spec.id.clone());
            }
            for n in r.children::<Node>(&p.spec.id).await? {
                if references(Some(&n.certificate_references), &c.id) {
                    nodes.push((n.pool_id.clone(), n.id.clone()));
                }
            }
        }
        match deletion_outcome(&pools, &nodes) {
            None => r.remove::<Certificate>("", &c.id),
            Some(error) => {
                c.delete_failed(error, now);
                r.put(c);
            }
        }
        Ok(())
    }
}
