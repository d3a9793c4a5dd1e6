//! Compute node user accounts: Add User, Update User, Delete User, and their expiry.
//!
//! Rules (Azure Batch, ComputeNode_AddUser / UpdateUser / DeleteUser): accounts are added,
//! changed and deleted on a booted node (see [`super::node_ops::not_ready`]); a name already
//! there is 409 `NodeUserExists`, an unknown one 404 `NodeUserNotFound`; `expiryTime` defaults
//! to a day after the request, and Update User replaces every updatable property (an omitted
//! password or SSH key is removed). An account goes at its `expiryTime`, by the reactor's
//! clock. openbatch keeps the accounts on the node record only: no operating-system account
//! is created for them yet.

use super::node_ops::not_ready;
use super::{Backing, Reactor, Records};
use crate::api::error::{ApiResult, BatchError};
use crate::model::node::Node;
use crate::model::node_ops::{NodeUser, NodeUserAdd, NodeUserUpdate};
use crate::model::time::Timestamp;
use crate::store::StoreResult;
use axum::http::StatusCode;

/// 404 `NodeUserNotFound`.
fn user_not_found() -> BatchError {
    BatchError::new(StatusCode::NOT_FOUND, "NodeUserNotFound", "The specified node user does not exist.")
}

impl Reactor {
    /// Loads a booted node for a user operation, its expired accounts dropped.
    async fn node_for_users<B: Backing>(&mut self, r: &mut Records<B>, pool_id: &str, node_id: &str) -> StoreResult<ApiResult<Node>> {
        let mut node = match self.node_for_operation(r, pool_id, node_id).await? {
            Ok(n) => n,
            Err(e) => return Ok(Err(e)),
        };
        if let Some(e) = not_ready(node.state, false) {
            return Ok(Err(e));
        }
        node.ops.expire_users(self.now());
        Ok(Ok(node))
    }

    /// When an account given `expiry` (or none: a day from now) expires.
    fn expiry_or_default(&self, expiry: Option<Timestamp>) -> Timestamp {
        expiry.unwrap_or_else(|| self.now() + chrono::Duration::days(1))
    }

    /// Add User: 409 `NodeUserExists` when the node has an account of that name.
    pub(super) async fn add_node_user<B: Backing>(
        &mut self,
        r: &mut Records<B>,
        (pool_id, node_id): (&str, &str),
        add: NodeUserAdd,
    ) -> StoreResult<ApiResult<()>> {
        let mut node = match self.node_for_users(r, pool_id, node_id).await? {
            Ok(n) => n,
            Err(e) => return Ok(Err(e)),
        };
        let name = add.name.unwrap_or_default();
        if node.ops.user_mut(&name).is_some() {
            return Ok(Err(BatchError::conflict("NodeUserExists", "The specified node user already exists.")));
        }
        let expiry_time = self.expiry_or_default(add.expiry_time);
        node.ops.users.push(NodeUser {
            name,
            is_admin: add.is_admin.unwrap_or(false),
            expiry_time,
            has_password: add.password.is_some(),
            ssh_public_key: add.ssh_public_key,
        });
        self.user_expiry.insert((expiry_time, node.pool_id.clone(), node.id.clone()));
        r.put(node);
        Ok(Ok(()))
    }

    /// Update User: replaces the password, SSH key and expiry of an account.
    pub(super) async fn update_node_user<B: Backing>(
        &mut self,
        r: &mut Records<B>,
        (pool_id, node_id): (&str, &str),
        name: &str,
        update: NodeUserUpdate,
    ) -> StoreResult<ApiResult<()>> {
        let mut node = match self.node_for_users(r, pool_id, node_id).await? {
            Ok(n) => n,
            Err(e) => return Ok(Err(e)),
        };
        let expiry_time = self.expiry_or_default(update.expiry_time);
        let Some(user) = node.ops.user_mut(name) else { return Ok(Err(user_not_found())) };
        user.expiry_time = expiry_time;
        user.has_password = update.password.is_some();
        user.ssh_public_key = update.ssh_public_key;
        self.user_expiry.insert((expiry_time, node.pool_id.clone(), node.id.clone()));
        r.put(node);
        Ok(Ok(()))
    }

    /// Delete User.
    pub(super) async fn delete_node_user<B: Backing>(
        &mut self,
        r: &mut Records<B>,
        (pool_id, node_id): (&str, &str),
        name: &str,
    ) -> StoreResult<ApiResult<()>> {
        let mut node = match self.node_for_users(r, pool_id, node_id).await? {
            Ok(n) => n,
            Err(e) => return Ok(Err(e)),
        };
        let before = node.ops.users.len();
        node.ops.users.retain(|u| !u.name.eq_ignore_ascii_case(name));
        if node.ops.users.len() == before {
            return Ok(Err(user_not_found()));
        }
        r.put(node);
        Ok(Ok(()))
    }

    /// Remembers when the accounts of a stored node expire (at start).
    pub(super) fn restore_user_expiry(&mut self, node: &Node) {
        for u in &node.ops.users {
            self.user_expiry.insert((u.expiry_time, node.pool_id.clone(), node.id.clone()));
        }
    }

    /// Removes the accounts whose `expiryTime` has come.
    pub(super) async fn expire_node_users<B: Backing>(&mut self, r: &mut Records<B>, now: Timestamp) -> StoreResult<()> {
        while let Some((at, pool_id, node_id)) = self.user_expiry.first().cloned() {
            if at > now {
                break;
            }
            self.user_expiry.pop_first();
            if let Some(mut node) = r.get::<Node>(&pool_id, &node_id).await? {
                let before = node.ops.users.len();
                node.ops.expire_users(now);
                if node.ops.users.len() != before {
                    r.put(node);
                }
            }
        }
        Ok(())
    }
}
