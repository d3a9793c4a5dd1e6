//! Account operations: List Supported Images, List Pool Node Counts, Pool List Usage Metrics
//! and the lifetime job and pool statistics.

use super::list_reply;
use crate::api::error::{ApiResult, BatchError};
use crate::api::reply::Reply;
use crate::api::{App, Ctx};
use crate::model::node::{Node, NodeState, SUPPORTED_IMAGES};
use crate::model::pool::Pool;
use crate::model::time::{format_timestamp, Clock, Timestamp};
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

/// Account List Pool Node Counts: per pool, its dedicated and Spot/low-priority nodes per
/// state; `maxresults` pools a page (default 10, as the API documents), continued by
/// `odata.nextLink` for any number of pools; `$filter` on `poolId`.
pub async fn list_pool_node_counts(app: &App, ctx: &Ctx) -> ApiResult<Reply> {
    let filter = super::filter_for(ctx, crate::odata::ListKind::PoolNodeCounts)?;
    let (max, mut cursor) = super::page_params_or(ctx, 10)?;
    let mut items = Vec::new();
    let mut last = None;
    'pages: loop {
        let pools = app.store.list::<Pool>("", cursor.as_deref(), None, max).await?;
        let exhausted = pools.len() < max as usize;
        for p in &pools {
            let nodes = app.store.list::<Node>(&p.spec.id, None, None, u32::MAX).await?;
            let item = json!({"poolId": p.spec.id, "dedicated": node_counts(&nodes, true), "lowPriority": node_counts(&nodes, false)});
            if filter.as_ref().is_none_or(|f| crate::odata::eval(f, &item)) {
                items.push(ctx.view("PoolNodeCounts", item));
                if items.len() == max as usize {
                    last = Some(p.spec.id.clone());
                    break 'pages;
                }
            }
        }
        if exhausted {
            break;
        }
        cursor = pools.last().map(|p| p.spec.id.clone());
    }
    Ok(list_reply(ctx, "poolnodecounts", items, last.as_deref()))
}

/// NodeCounts of a pool's dedicated (or Spot/low-priority) nodes: one count per state.
fn node_counts(nodes: &[Node], dedicated: bool) -> Value {
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
}

/// Pool List Usage Metrics: per pool and 30-minute aggregation interval, the core-hours its
/// nodes (dedicated and Spot) used and its VM size ([`crate::model::usage`]). `starttime`
/// and `endtime` choose the intervals (those overlapping the range; by default the last
/// complete interval); pools that existed then are listed even with 0 core-hours; `$filter`
/// on `poolId`; at most `maxresults` (default 1000) entries. Metrics are available at once
/// (the real service publishes them about two hours late). Errors: 400
/// `InvalidQueryParameterValue` for a malformed time or an `endtime` before `starttime`.
pub async fn list_usage_metrics(app: &App, ctx: &Ctx) -> ApiResult<Reply> {
    use crate::model::usage::{interval_of, PoolUsage};
    let filter = super::filter_for(ctx, crate::odata::ListKind::PoolUsageMetrics)?;
    let (max, _) = super::page_params(ctx)?;
    let time = |name: &str| -> ApiResult<Option<Timestamp>> {
        ctx.q(name)
            .map(|v| {
                chrono::DateTime::parse_from_rfc3339(v)
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .map_err(|_| BatchError::invalid_query(name, v, "Not an ISO 8601 date-time."))
            })
            .transpose()
    };
    let (last_start, _) = interval_of(Clock::now() - chrono::TimeDelta::minutes(crate::model::usage::INTERVAL_MINUTES));
    let from = interval_of(time("starttime")?.unwrap_or(last_start)).0;
    let to = time("endtime")?.unwrap_or(interval_of(last_start).1);
    if to < from {
        return Err(BatchError::invalid_query("endtime", ctx.q("endtime").unwrap_or(""), "endtime is before starttime."));
    }
    // Intervals with usage, then the pools that exist now for the intervals they lived in.
    let mut entries: std::collections::BTreeMap<String, PoolUsage> = std::collections::BTreeMap::new();
    for u in app.store.list::<PoolUsage>("", None, None, u32::MAX).await? {
        if u.start_time >= from && u.start_time < to {
            entries.insert(u.id.clone(), u);
        }
    }
    for p in app.store.list::<Pool>("", None, None, u32::MAX).await? {
        let mut start = from;
        while start < to {
            let end = interval_of(start).1;
            if p.creation_time < end {
                let key = PoolUsage::key(&p.spec.id, start);
                entries.entry(key).or_insert_with(|| PoolUsage::new(&p.spec.id, start, &p.spec.vm_size));
            }
            start = end;
        }
    }
    let items = entries
        .values()
        .map(|u| {
            json!({
                "poolId": u.pool_id,
                "startTime": format_timestamp(&u.start_time),
                "endTime": format_timestamp(&u.end_time()),
                "vmSize": u.vm_size,
                "totalCoreHours": u.core_hours(),
            })
        })
        .filter(|item| filter.as_ref().is_none_or(|f| crate::odata::eval(f, item)))
        .take(max as usize)
        .map(|item| ctx.view("PoolUsageMetrics", item))
        .collect();
    Ok(list_reply(ctx, "poolusagemetrics", items, None))
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
