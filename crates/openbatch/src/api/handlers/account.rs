//! Account operations: List Supported Images and List Pool Node Counts.

use super::list_reply;
use crate::api::error::ApiResult;
use crate::api::reply::Reply;
use crate::api::{App, Ctx};
use crate::model::node::{Node, NodeState, SUPPORTED_IMAGES};
use crate::model::pool::Pool;
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

/// Get Lifetime Job Statistics: totals over every task that completed in the account —
/// succeeded, failed, retries, wall-clock and wait time, and the CPU time and block I/O the
/// kernel accounted to the task processes (64-bit counters as JSON strings, durations ISO 8601,
/// I/O volumes in GiB from 512-byte blocks).
pub async fn lifetime_job_stats(app: &App, ctx: &Ctx) -> ApiResult<Reply> {
    use crate::model::job::JobLifetimeStats;
    use crate::model::time::{format_duration, format_timestamp, Clock};
    use std::time::Duration;
    let s = app.store.get::<JobLifetimeStats>("", JobLifetimeStats::ID).await?.unwrap_or_else(|| JobLifetimeStats::new(Clock::now()));
    let dur = |ms: u64| format_duration(Duration::from_millis(ms));
    let gib = |blocks: u64| (blocks as f64) * 512.0 / (1u64 << 30) as f64;
    let body = json!({
        "odata.metadata": format!("{}/$metadata#jobstats/@Element", ctx.base),
        "url": format!("{}/lifetimejobstats", ctx.base),
        "startTime": format_timestamp(&s.start_time),
        "lastUpdateTime": format_timestamp(&s.last_update_time),
        "userCPUTime": dur(s.user_cpu_ms),
        "kernelCPUTime": dur(s.kernel_cpu_ms),
        "wallClockTime": dur(s.wall_clock_ms),
        "readIOps": s.read_blocks.to_string(),
        "writeIOps": s.write_blocks.to_string(),
        "readIOGiB": gib(s.read_blocks),
        "writeIOGiB": gib(s.write_blocks),
        "numSucceededTasks": s.succeeded.to_string(),
        "numFailedTasks": s.failed.to_string(),
        "numTaskRetries": s.retries.to_string(),
        "waitTime": dur(s.wait_ms),
    });
    Ok(Reply::json(ctx.view("JobStatistics", body)))
}
