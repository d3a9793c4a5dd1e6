//! The records a reactor step reads and writes: the batch's working set.
//!
//! The reactor never talks to the database. It reads pools, jobs, tasks, nodes, job-node rows
//! and the lifetime job and pool statistics through a [`Records`] working set, which loads a record from its
//! [`Backing`] the first time a step asks for it and keeps the step's changes until the driver
//! flushes them, all in one transaction. The driver's backing is a store transaction
//! ([`Tx`]); the reactor tests' backing is [`MemBacking`], a set of maps, so every Batch rule
//! runs in tests without IO.
//!
//! Task documents stay in the store rather than in memory (a million stored tasks must cost
//! little memory), which is why the reactor sees records through this interface instead of
//! holding them as HyperQueue's `tako` does.

use crate::model::certificate::Certificate;
use crate::model::job::{Job, JobLifetimeStats, JobNode};
use crate::model::job_schedule::JobSchedule;
use crate::model::node::Node;
use crate::model::pool::Pool;
use crate::model::stats::PoolLifetimeStats;
use crate::model::task::Task;
use crate::model::usage::PoolUsage;
use crate::store::{Record, StoreResult, Tx};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Where records come from and go to.
#[allow(async_fn_in_trait)]
pub trait Backing {
    /// One record, or `None` when absent.
    async fn load<T: Kind>(&mut self, parent: &str, id: &str) -> StoreResult<Option<T>>;
    /// Every record under `parent`, ordered by id.
    async fn load_children<T: Kind>(&mut self, parent: &str) -> StoreResult<Vec<T>>;
    /// Every record under `parent` whose id starts with `prefix` (ASCII case ignored), by id.
    async fn load_prefixed<T: Kind>(&mut self, parent: &str, prefix: &str) -> StoreResult<Vec<T>>;
    /// Every record with this id under any parent.
    async fn load_by_id<T: Kind>(&mut self, id: &str) -> StoreResult<Vec<T>>;
    /// Writes a record.
    async fn write<T: Kind>(&mut self, r: &T) -> StoreResult<()>;
    /// Deletes a record.
    async fn erase<T: Kind>(&mut self, parent: &str, id: &str) -> StoreResult<()>;
    /// Deletes every record under `parent`.
    async fn erase_children<T: Kind>(&mut self, parent: &str) -> StoreResult<()>;
    /// How many records under `parent` are in one of `states` (as written: callers flush
    /// the working set first).
    async fn count<T: Kind>(&mut self, parent: &str, states: &[&str]) -> StoreResult<i64>;
    /// How many records under `parent` are in `state` with `result` (as written).
    async fn count_result<T: Kind>(&mut self, parent: &str, state: &str, result: &str) -> StoreResult<i64>;
}

impl Backing for Tx {
    async fn load<T: Kind>(&mut self, parent: &str, id: &str) -> StoreResult<Option<T>> {
        self.get(parent, id).await
    }
    async fn load_children<T: Kind>(&mut self, parent: &str) -> StoreResult<Vec<T>> {
        self.children(parent, None).await
    }
    async fn load_prefixed<T: Kind>(&mut self, parent: &str, prefix: &str) -> StoreResult<Vec<T>> {
        self.children_prefixed(parent, prefix).await
    }
    async fn load_by_id<T: Kind>(&mut self, id: &str) -> StoreResult<Vec<T>> {
        self.by_id(id).await
    }
    async fn write<T: Kind>(&mut self, r: &T) -> StoreResult<()> {
        self.put(r).await
    }
    async fn erase<T: Kind>(&mut self, parent: &str, id: &str) -> StoreResult<()> {
        self.delete::<T>(parent, id).await.map(|_| ())
    }
    async fn erase_children<T: Kind>(&mut self, parent: &str) -> StoreResult<()> {
        self.delete_children::<T>(parent).await.map(|_| ())
    }
    async fn count<T: Kind>(&mut self, parent: &str, states: &[&str]) -> StoreResult<i64> {
        self.count_in_states::<T>(parent, states).await
    }
    async fn count_result<T: Kind>(&mut self, parent: &str, state: &str, result: &str) -> StoreResult<i64> {
        self.count_with_result::<T>(parent, state, result).await
    }
}

/// The records held in memory, as JSON documents per table: the reactor tests' store.
#[derive(Debug, Default, Clone)]
pub struct MemBacking {
    tables: HashMap<&'static str, BTreeMap<(String, String), String>>,
}

impl MemBacking {
    /// Every record of a kind, ordered by (parent, id).
    pub fn all<T: Kind>(&self) -> Vec<T> {
        self.tables.get(T::TABLE).into_iter().flatten().filter_map(|(_, doc)| serde_json::from_str(doc).ok()).collect()
    }
}

impl Backing for MemBacking {
    async fn load<T: Kind>(&mut self, parent: &str, id: &str) -> StoreResult<Option<T>> {
        let doc = self.tables.get(T::TABLE).and_then(|t| t.get(&(parent.to_string(), id.to_string())));
        Ok(match doc {
            Some(d) => Some(serde_json::from_str(d)?),
            None => None,
        })
    }
    async fn load_children<T: Kind>(&mut self, parent: &str) -> StoreResult<Vec<T>> {
        let t = self.tables.get(T::TABLE);
        let docs = t.into_iter().flatten().filter(|((p, _), _)| p == parent);
        docs.map(|(_, d)| Ok(serde_json::from_str(d)?)).collect()
    }
    async fn load_prefixed<T: Kind>(&mut self, parent: &str, prefix: &str) -> StoreResult<Vec<T>> {
        let t = self.tables.get(T::TABLE);
        let fits = |(p, i): &(String, String)| p == parent && i.to_ascii_lowercase().starts_with(&prefix.to_ascii_lowercase());
        let docs = t.into_iter().flatten().filter(|(k, _)| fits(k));
        docs.map(|(_, d)| Ok(serde_json::from_str(d)?)).collect()
    }
    async fn load_by_id<T: Kind>(&mut self, id: &str) -> StoreResult<Vec<T>> {
        let t = self.tables.get(T::TABLE);
        let docs = t.into_iter().flatten().filter(|((_, i), _)| i == id);
        docs.map(|(_, d)| Ok(serde_json::from_str(d)?)).collect()
    }
    async fn write<T: Kind>(&mut self, r: &T) -> StoreResult<()> {
        let doc = serde_json::to_string(r)?;
        self.tables.entry(T::TABLE).or_default().insert((r.parent().to_string(), r.id().to_string()), doc);
        Ok(())
    }
    async fn erase<T: Kind>(&mut self, parent: &str, id: &str) -> StoreResult<()> {
        if let Some(t) = self.tables.get_mut(T::TABLE) {
            t.remove(&(parent.to_string(), id.to_string()));
        }
        Ok(())
    }
    async fn erase_children<T: Kind>(&mut self, parent: &str) -> StoreResult<()> {
        if let Some(t) = self.tables.get_mut(T::TABLE) {
            t.retain(|(p, _), _| p != parent);
        }
        Ok(())
    }
    async fn count<T: Kind>(&mut self, parent: &str, states: &[&str]) -> StoreResult<i64> {
        let children: Vec<T> = self.load_children(parent).await?;
        Ok(children.iter().filter(|r| states.contains(&r.state())).count() as i64)
    }
    async fn count_result<T: Kind>(&mut self, parent: &str, state: &str, result: &str) -> StoreResult<i64> {
        let children: Vec<T> = self.load_children(parent).await?;
        Ok(children.iter().filter(|r| r.state() == state && r.result() == Some(result)).count() as i64)
    }
}

/// Records loaded and changed within one batch, per kind.
#[derive(Debug)]
pub struct Cache<R> {
    map: HashMap<(String, String), Option<R>>,
    dirty: HashSet<(String, String)>,
    /// Parents whose children were all deleted in this batch (written before `dirty`).
    cleared: HashSet<String>,
}

impl<R> Default for Cache<R> {
    fn default() -> Self {
        Cache { map: HashMap::new(), dirty: HashSet::new(), cleared: HashSet::new() }
    }
}

/// A resource kind the reactor reads and writes.
pub trait Kind: Record + Clone + serde::Serialize + serde::de::DeserializeOwned + Send + 'static {
    /// This kind's cache in a working set.
    fn cache(c: &mut Caches) -> &mut Cache<Self>;
}

/// One cache per kind.
#[derive(Debug, Default)]
pub struct Caches {
    pools: Cache<Pool>,
    jobs: Cache<Job>,
    tasks: Cache<Task>,
    nodes: Cache<Node>,
    jobnodes: Cache<JobNode>,
    stats: Cache<JobLifetimeStats>,
    poolstats: Cache<PoolLifetimeStats>,
    schedules: Cache<JobSchedule>,
    usage: Cache<PoolUsage>,
    certificates: Cache<Certificate>,
}

macro_rules! kind {
    ($t:ty, $field:ident) => {
        impl Kind for $t {
            fn cache(c: &mut Caches) -> &mut Cache<Self> {
                &mut c.$field
            }
        }
    };
}
kind!(Pool, pools);
kind!(Job, jobs);
kind!(Task, tasks);
kind!(Node, nodes);
kind!(JobNode, jobnodes);
kind!(JobLifetimeStats, stats);
kind!(PoolLifetimeStats, poolstats);
kind!(JobSchedule, schedules);
kind!(PoolUsage, usage);
kind!(Certificate, certificates);

/// A batch's working set over a backing: reads go through to the backing once, writes stay
/// here until [`Records::flush`].
pub struct Records<B> {
    /// Where records come from (a store transaction, or maps in tests).
    pub backing: B,
    caches: Caches,
}

impl<B: Backing> Records<B> {
    /// An empty working set over `backing`.
    pub fn new(backing: B) -> Self {
        Records { backing, caches: Caches::default() }
    }

    /// A record as this batch sees it.
    pub async fn get<T: Kind>(&mut self, parent: &str, id: &str) -> StoreResult<Option<T>> {
        let key = (parent.to_string(), id.to_string());
        let cache = T::cache(&mut self.caches);
        if let Some(v) = cache.map.get(&key) {
            return Ok(v.clone());
        }
        let v: Option<T> = if cache.cleared.contains(parent) { None } else { self.backing.load(parent, id).await? };
        T::cache(&mut self.caches).map.insert(key, v.clone());
        Ok(v)
    }

    /// Writes a record (at the end of the batch).
    pub fn put<T: Kind>(&mut self, r: T) {
        let cache = T::cache(&mut self.caches);
        let key = (r.parent().to_string(), r.id().to_string());
        cache.dirty.insert(key.clone());
        cache.map.insert(key, Some(r));
    }

    /// Deletes a record (at the end of the batch).
    pub fn remove<T: Kind>(&mut self, parent: &str, id: &str) {
        let cache = T::cache(&mut self.caches);
        let key = (parent.to_string(), id.to_string());
        cache.dirty.insert(key.clone());
        cache.map.insert(key, None);
    }

    /// Deletes every record under `parent` (a job's tasks), in one statement at flush.
    pub fn remove_children<T: Kind>(&mut self, parent: &str) {
        let cache = T::cache(&mut self.caches);
        cache.map.retain(|k, _| k.0 != parent);
        cache.dirty.retain(|k| k.0 != parent);
        cache.cleared.insert(parent.to_string());
    }

    /// Every record under `parent` as this batch sees it, ordered by id.
    pub async fn children<T: Kind>(&mut self, parent: &str) -> StoreResult<Vec<T>> {
        let cleared = T::cache(&mut self.caches).cleared.contains(parent);
        let stored: Vec<T> = if cleared { Vec::new() } else { self.backing.load_children(parent).await? };
        let mut out: BTreeMap<String, T> = BTreeMap::new();
        for r in stored {
            let id = r.id().to_string();
            if let Some(v) = self.get::<T>(parent, &id).await? {
                out.insert(id, v);
            }
        }
        for ((p, id), v) in T::cache(&mut self.caches).map.iter() {
            if p == parent {
                if let Some(v) = v {
                    out.insert(id.clone(), v.clone());
                }
            }
        }
        Ok(out.into_values().collect())
    }

    /// Every record with this id under any parent, as this batch sees it.
    pub async fn by_id<T: Kind>(&mut self, id: &str) -> StoreResult<Vec<T>> {
        let stored: Vec<T> = self.backing.load_by_id(id).await?;
        let mut out: BTreeMap<String, T> = BTreeMap::new();
        for r in stored {
            let parent = r.parent().to_string();
            if let Some(v) = self.get::<T>(&parent, id).await? {
                out.insert(parent, v);
            }
        }
        for ((p, i), v) in T::cache(&mut self.caches).map.iter() {
            if i == id {
                if let Some(v) = v {
                    out.insert(p.clone(), v.clone());
                }
            }
        }
        Ok(out.into_values().collect())
    }

    /// Every record under `parent` whose id starts with `prefix`, counting this batch's
    /// changes (the working set is flushed first).
    pub async fn prefixed<T: Kind>(&mut self, parent: &str, prefix: &str) -> StoreResult<Vec<T>> {
        self.flush().await?;
        self.backing.load_prefixed::<T>(parent, prefix).await
    }

    /// How many records under `parent` are in one of `states`, counting this batch's
    /// changes (the working set is flushed first).
    pub async fn count<T: Kind>(&mut self, parent: &str, states: &[&str]) -> StoreResult<i64> {
        self.flush().await?;
        self.backing.count::<T>(parent, states).await
    }

    /// Writes the batch's changes to the backing and forgets them.
    pub async fn flush(&mut self) -> StoreResult<()> {
        flush_kind::<Pool, B>(&mut self.caches.pools, &mut self.backing).await?;
        flush_kind::<Job, B>(&mut self.caches.jobs, &mut self.backing).await?;
        flush_kind::<Task, B>(&mut self.caches.tasks, &mut self.backing).await?;
        flush_kind::<Node, B>(&mut self.caches.nodes, &mut self.backing).await?;
        flush_kind::<JobNode, B>(&mut self.caches.jobnodes, &mut self.backing).await?;
        flush_kind::<JobLifetimeStats, B>(&mut self.caches.stats, &mut self.backing).await?;
        flush_kind::<PoolLifetimeStats, B>(&mut self.caches.poolstats, &mut self.backing).await?;
        flush_kind::<JobSchedule, B>(&mut self.caches.schedules, &mut self.backing).await?;
        flush_kind::<PoolUsage, B>(&mut self.caches.usage, &mut self.backing).await?;
        flush_kind::<Certificate, B>(&mut self.caches.certificates, &mut self.backing).await
    }
}

async fn flush_kind<T: Kind, B: Backing>(cache: &mut Cache<T>, backing: &mut B) -> StoreResult<()> {
    for parent in cache.cleared.drain() {
        backing.erase_children::<T>(&parent).await?;
    }
    for key in cache.dirty.drain() {
        match cache.map.get(&key) {
            Some(Some(r)) => backing.write(r).await?,
            _ => backing.erase::<T>(&key.0, &key.1).await?,
        }
    }
    cache.map.clear();
    Ok(())
}
