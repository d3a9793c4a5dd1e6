//! Account operations: List Supported Images, List Pool Node Counts and the lifetime job and
//! pool statistics.

use super::list_reply;
use crate::api::error::ApiResult;
use crate::api::reply::Reply;
use crate::api::{App, Ctx};
use crate::model::node::{Node, NodeState, SUPPORTED_IMAGES};
use crate::model::pool::Pool;
use crate::model::time::Clock;
use serde_json::{json, Map, Value};

/// Account List Supported Images: the Linux images openbatch's nodes run.
pub fn list_supported_images(ctx: &Ctx) -> ApiResult<Reply> {
    let items = SUPPORTED_IMAGES
        .iter()
        .map(|i| {
            let mut m = Map::new();
            m.insert("imageReference".into(), json!({"publisher": i.publisher, "offer": i.offer, "sku": i.sku, "version": "latest"}));
            m.insert("verificationType".into(), json!(i.verification));
            m.insert("nodeAgentSKUId".into(), json!(i.node_agent_sku_id));
            if !i.capabilities.is_empty() {
                m.insert("capabilities".into(), json!(i.capabilities));
            }
            m.insert("osType".into(), json!("linux"));
            Value::Object(m)
        })
        .collect();
    let items = super::apply_filter(&super::filter_for(ctx, crate::odata::ListKind::SupportedImages)?, items);
    Ok(list_reply(ctx, "supportedimages", items.into_iter().map(|i| ctx.view("ImageInformation", i)).collect(), None))
}

/// Account List Node Agent SKUs (api-versions up to 2018-12-01.8.0): the same Linux images,
/// grouped by node agent SKU.
pub fn list_node_agent_skus(ctx: &Ctx) -> ApiResult<Reply> {
    let mut skus: Vec<(&str, Vec<Value>)> = Vec::new();
    for i in SUPPORTED_IMAGES.iter().filter(|i| i.verification == "verified") {
        let image = json!({"publisher": i.publisher, "offer": i.offer, "sku": i.sku, "version": "latest"});
        match skus.iter_mut().find(|(id, _)| *id == i.node_agent_sku_id) {
            Some((_, images)) => images.push(image),
            None => skus.push((i.node_agent_sku_id, vec![image])),
        }
    }
    let items = skus
        .into_iter()
        .map(|(id, images)| ctx.view("NodeAgentSku", json!({"id": id, "verifiedImageReferences": images, "osType": "linux"})))
        .collect();
    Ok(list_reply(ctx, "nodeagentskus", items, None))
}

/// Account List Pool Node Counts: per pool, nodes per state (all local nodes are dedicated).
pub async fn list_pool_node_counts(app: &App, ctx: &Ctx) -> ApiResult<Reply> {
    let filter = super::filter_for(ctx, crate::odata::ListKind::PoolNodeCounts)?;
    let pools = app.store.list::<Pool>("", None, None, 1000).await?;
    let mut items = Vec::new();
    for p in pools {
        let nodes = app.store.list::<Node>(&p.spec.id, None, None, u32::MAX).await?;
        let count = |dedicated: bool| {
            let mut counts = Map::new();
            for s in NodeState::ALL {
                counts.insert(s.as_str().to_string(), json!(0));
            }
            let mine: Vec<&Node> = nodes.iter().filter(|n| n.is_dedicated == dedicated).collect();
            for n in &mine {
                let k = n.state.as_str().to_string();
                let v = counts.get(&k).and_then(Value::as_i64).unwrap_or(0) + 1;
                counts.insert(k, json!(v));
            }
            counts.insert("total".into(), json!(mine.len()));
            // States of newer api-versions that openbatch nodes never enter (they have no OS
            // upgrades and are not deallocated): counted, always zero.
            for later in ["upgradingOS", "deallocated", "deallocating"] {
                counts.insert(later.into(), json!(0));
            }
            Value::Object(counts)
        };
        let item = json!({"poolId": p.spec.id, "dedicated": count(true), "lowPriority": count(false)});
        if filter.as_ref().is_none_or(|f| crate::odata::eval(f, &item)) {
            items.push(ctx.view("PoolNodeCounts", item));
        }
    }
    Ok(list_reply(ctx, "poolnodecounts", items, None))
}

/// Get Lifetime Job Statistics (up to 2022-10-01.16.0): JobStatistics over every task
/// attempt that ended in the account — succeeded, failed, retries, wall-clock and wait time,
/// and the CPU time and block I/O the kernel accounted to the task processes (see
/// [`super::stats::job`] for units).
pub async fn lifetime_job_stats(app: &App, ctx: &Ctx) -> ApiResult<Reply> {
    use crate::model::stats::JobLifetimeStats;
    let s = app.store.get::<JobLifetimeStats>("", JobLifetimeStats::ID).await?.unwrap_or_else(|| JobLifetimeStats::new(Clock::now()));
    let body = with_metadata(ctx, super::stats::job(format!("{}/lifetimejobstats", ctx.base), &s.0), "jobstats");
    Ok(Reply::json(ctx.view("JobStatistics", body)))
}

/// Get All Pool Lifetime Statistics (up to 2022-10-01.16.0): PoolStatistics over every node
/// of every pool the account has had — dedicated core-time, and the CPU, memory, disk and
/// disk I/O the nodes' agents measured (see [`super::stats::pool`]).
pub async fn lifetime_pool_stats(app: &App, ctx: &Ctx) -> ApiResult<Reply> {
    use crate::model::stats::PoolLifetimeStats;
    let s = app.store.get::<PoolLifetimeStats>("", PoolLifetimeStats::ID).await?.unwrap_or_else(|| PoolLifetimeStats::new(Clock::now()));
    let body = with_metadata(ctx, super::stats::pool(format!("{}/lifetimepoolstats", ctx.base), &s.0), "poolstats");
    Ok(Reply::json(ctx.view("PoolStatistics", body)))
}

/// A statistics answer with `odata.metadata` (`$metadata#<set>/@Element`) first.
fn with_metadata(ctx: &Ctx, body: Value, set: &str) -> Value {
    let fields = match body {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    crate::api::reply::entity(Some(format!("{}/$metadata#{set}/@Element", ctx.base)), None, fields)
}
