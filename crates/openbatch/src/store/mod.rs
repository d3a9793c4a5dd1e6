//! The store: every acknowledged resource, durable across restarts.
//!
//! Embedded SQLite (WAL, `synchronous=FULL`, so a commit survives power loss) through sqlx.
//! Each resource kind has one table of the same layout: `(parent, id, state, doc)`, where
//! `parent` is the owning pool or job (empty for top-level resources), `id` compares
//! case-insensitively as Batch ids do, `state` is indexed for lists and counts, and `doc` is the
//! resource as JSON. Lists go by `(parent, id)` so a continuation token (the last id) stays
//! valid while items come and go.
//!
//! Writes go through one writer connection ([`Store::begin`]); a [`Tx`] groups many writes
//! in one commit, which is how the scheduler's driver amortizes fsyncs. Reads use a separate
//! pool of connections and see the last committed state.

use serde::{de::DeserializeOwned, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::path::Path;
use std::str::FromStr;

use crate::model::{
    application::Application,
    certificate::Certificate,
    job::{Job, JobLifetimeStats, JobNode},
    job_schedule::JobSchedule,
    node::Node,
    pool::Pool,
    stats::PoolLifetimeStats,
    task::Task,
};

/// A failure of the storage layer (I/O, corruption, a bug in a query).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("stored document is unreadable: {0}")]
    Doc(#[from] serde_json::Error),
}

/// Result of store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// A resource kept in its own table.
pub trait Record: Serialize + DeserializeOwned + Send + Sync {
    /// Table name.
    const TABLE: &'static str;
    /// The owning pool or job id; empty for top-level resources.
    fn parent(&self) -> &str;
    /// The resource id.
    fn id(&self) -> &str;
    /// The state column (indexed).
    fn state(&self) -> &'static str;
    /// The result column (indexed with the state): a task's `success`/`failure`.
    fn result(&self) -> Option<&'static str> {
        None
    }
    /// The weight column (a task's required slots), summed by counts.
    fn weight(&self) -> i64 {
        1
    }
    /// Whether the resource has a creation time (the `created` column, in ticks).
    const HAS_CREATED: bool = false;
    /// The creation time in .NET ticks, for resources that have one.
    fn created(&self) -> Option<i64> {
        None
    }
}

impl Record for Pool {
    const TABLE: &'static str = "pools";
    const HAS_CREATED: bool = true;
    fn created(&self) -> Option<i64> {
        Some(crate::model::time::to_ticks(&self.creation_time))
    }
    fn parent(&self) -> &str {
        ""
    }
    fn id(&self) -> &str {
        &self.spec.id
    }
    fn state(&self) -> &'static str {
        self.status.state.as_str()
    }
}

impl Record for Job {
    const TABLE: &'static str = "jobs";
    const HAS_CREATED: bool = true;
    fn created(&self) -> Option<i64> {
        Some(crate::model::time::to_ticks(&self.creation_time))
    }
    fn parent(&self) -> &str {
        ""
    }
    fn id(&self) -> &str {
        &self.spec.id
    }
    fn state(&self) -> &'static str {
        self.status.state.as_str()
    }
}

impl Record for Task {
    const TABLE: &'static str = "tasks";
    const HAS_CREATED: bool = true;
    fn created(&self) -> Option<i64> {
        Some(crate::model::time::to_ticks(&self.creation_time))
    }
    fn parent(&self) -> &str {
        &self.job_id
    }
    fn id(&self) -> &str {
        &self.spec.id
    }
    fn state(&self) -> &'static str {
        self.status.state.as_str()
    }
    fn result(&self) -> Option<&'static str> {
        self.status.execution_info.result.map(|r| r.as_str())
    }
    fn weight(&self) -> i64 {
        i64::from(self.spec.slots())
    }
}

impl Record for JobSchedule {
    const TABLE: &'static str = "jobschedules";
    const HAS_CREATED: bool = true;
    fn created(&self) -> Option<i64> {
        Some(crate::model::time::to_ticks(&self.creation_time))
    }
    fn parent(&self) -> &str {
        ""
    }
    fn id(&self) -> &str {
        &self.spec.id
    }
    fn state(&self) -> &'static str {
        self.state.as_str()
    }
}

impl Record for JobNode {
    const TABLE: &'static str = "jobnodes";
    fn parent(&self) -> &str {
        &self.job_id
    }
    fn id(&self) -> &str {
        &self.node_id
    }
    fn state(&self) -> &'static str {
        match (&self.job_release_task_execution_info, &self.job_preparation_task_execution_info) {
            (Some(r), _) => {
                if r.state == crate::model::job::PrepTaskState::Running {
                    "releasing"
                } else {
                    "released"
                }
            }
            (None, Some(p)) => {
                if p.state == crate::model::job::PrepTaskState::Running {
                    "preparing"
                } else {
                    "prepared"
                }
            }
            _ => "none",
        }
    }
}

impl Record for JobLifetimeStats {
    const TABLE: &'static str = "jobstats";
    fn parent(&self) -> &str {
        ""
    }
    fn id(&self) -> &str {
        Self::ID
    }
    fn state(&self) -> &'static str {
        "active"
    }
}

impl Record for PoolLifetimeStats {
    const TABLE: &'static str = "poolstats";
    fn parent(&self) -> &str {
        ""
    }
    fn id(&self) -> &str {
        Self::ID
    }
    fn state(&self) -> &'static str {
        "active"
    }
}

impl Record for crate::model::usage::PoolUsage {
    const TABLE: &'static str = "poolusage";
    fn parent(&self) -> &str {
        ""
    }
    fn id(&self) -> &str {
        &self.id
    }
    fn state(&self) -> &'static str {
        "active"
    }
}

impl Record for Node {
    const TABLE: &'static str = "nodes";
    fn parent(&self) -> &str {
        &self.pool_id
    }
    fn id(&self) -> &str {
        &self.id
    }
    fn state(&self) -> &'static str {
        self.state.as_str()
    }
}

impl Record for Application {
    const TABLE: &'static str = "applications";
    fn parent(&self) -> &str {
        ""
    }
    fn id(&self) -> &str {
        &self.id
    }
    fn state(&self) -> &'static str {
        "active"
    }
}

impl Record for Certificate {
    const TABLE: &'static str = "certificates";
    fn parent(&self) -> &str {
        ""
    }
    /// `<thumbprintAlgorithm>-<thumbprint>` ([`crate::model::certificate::key`]).
    fn id(&self) -> &str {
        &self.id
    }
    fn state(&self) -> &'static str {
        self.state.as_str()
    }
}

const TABLES: &[&str] =
    &["pools", "jobs", "tasks", "nodes", "jobnodes", "jobstats", "poolstats", "applications", "jobschedules", "certificates", "poolusage"];

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) the database `openbatch.db` in `data_dir`.
    pub async fn open(data_dir: &Path) -> StoreResult<Store> {
        std::fs::create_dir_all(data_dir).map_err(sqlx::Error::Io)?;
        let path = data_dir.join("openbatch.db");
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(std::time::Duration::from_secs(30));
        let writer = SqlitePoolOptions::new().max_connections(1).connect_with(opts.clone()).await?;
        for table in TABLES {
            sqlx::query(&format!(
                "CREATE TABLE IF NOT EXISTS {table} (
                    parent TEXT NOT NULL COLLATE NOCASE,
                    id TEXT NOT NULL COLLATE NOCASE,
                    state TEXT NOT NULL,
                    result TEXT,
                    weight INTEGER NOT NULL DEFAULT 1,
                    created INTEGER,
                    doc TEXT NOT NULL,
                    PRIMARY KEY (parent, id)
                ) WITHOUT ROWID"
            ))
            .execute(&writer)
            .await?;
            sqlx::query(&format!("CREATE INDEX IF NOT EXISTS {table}_state ON {table} (parent, state, id)")).execute(&writer).await?;
            sqlx::query(&format!("CREATE INDEX IF NOT EXISTS {table}_counts ON {table} (parent, state, result, weight)"))
                .execute(&writer)
                .await?;
            sqlx::query(&format!("CREATE INDEX IF NOT EXISTS {table}_created ON {table} (parent, created)")).execute(&writer).await?;
        }
        let reader = SqlitePoolOptions::new().max_connections(4).connect_with(opts.read_only(true)).await?;
        Ok(Store { writer, reader })
    }

    /// Starts a write transaction; writers queue for the single writer connection.
    pub async fn begin(&self) -> StoreResult<Tx> {
        let tx = self.writer.begin().await?;
        Ok(Tx { tx })
    }

    /// Reads one resource by parent and id (ids compare case-insensitively).
    pub async fn get<R: Record>(&self, parent: &str, id: &str) -> StoreResult<Option<R>> {
        let row = sqlx::query(&format!("SELECT doc FROM {} WHERE parent = ? AND id = ?", R::TABLE))
            .bind(parent)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| Ok(serde_json::from_str(r.get::<&str, _>(0))?)).transpose()
    }

    /// Lists up to `limit` resources under `parent` with ids after `after`, in id order,
    /// optionally only those in `state`.
    pub async fn list<R: Record>(&self, parent: &str, after: Option<&str>, state: Option<&str>, limit: u32) -> StoreResult<Vec<R>> {
        let rows = sqlx::query(&format!(
            "SELECT doc FROM {} WHERE parent = ? AND id > ? AND (? IS NULL OR state = ?) ORDER BY id LIMIT ?",
            R::TABLE
        ))
        .bind(parent)
        .bind(after.unwrap_or(""))
        .bind(state)
        .bind(state)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(|r| Ok(serde_json::from_str(r.get::<&str, _>(0))?)).collect()
    }

    /// Like [`Store::list`], with a `$filter`'s push-down applied in SQL on the indexed
    /// columns (ids compare case-insensitively; states and results too). The caller still
    /// evaluates the whole filter: the push-down only narrows, never widens, what is read.
    pub async fn list_pushdown<R: Record>(
        &self,
        parent: &str,
        after: Option<&str>,
        push: &crate::odata::Pushdown,
        limit: u32,
    ) -> StoreResult<Vec<R>> {
        let mut sql = format!("SELECT doc FROM {} WHERE parent = ? AND id > ?", R::TABLE);
        let mut binds: Vec<String> = vec![parent.to_string(), after.unwrap_or("").to_string()];
        if let Some(ids) = &push.ids {
            if let Some(eq) = &ids.eq {
                sql.push_str(" AND id = ?");
                binds.push(eq.clone());
            }
            if let Some(prefix) = &ids.prefix {
                sql.push_str(" AND id LIKE ? ESCAPE '\\'");
                binds.push(crate::odata::IdCond::like_pattern(prefix));
            }
            if let Some(b) = &ids.lower {
                sql.push_str(if b.inclusive { " AND id >= ?" } else { " AND id > ?" });
                binds.push(b.value.clone());
            }
            if let Some(b) = &ids.upper {
                sql.push_str(if b.inclusive { " AND id <= ?" } else { " AND id < ?" });
                binds.push(b.value.clone());
            }
        }
        for (column, values) in [("state", &push.states), ("result", &push.results)] {
            if let Some(values) = values {
                if values.is_empty() {
                    return Ok(Vec::new());
                }
                sql.push_str(&format!(" AND {column} COLLATE NOCASE IN ({})", vec!["?"; values.len()].join(", ")));
                binds.extend(values.iter().cloned());
            }
        }
        let mut times: Vec<i64> = Vec::new();
        if let (true, Some(range)) = (R::HAS_CREATED, &push.created) {
            if let Some(l) = range.lower {
                sql.push_str(" AND created >= ?");
                times.push(l);
            }
            if let Some(u) = range.upper {
                sql.push_str(" AND created <= ?");
                times.push(u);
            }
        }
        sql.push_str(" ORDER BY id LIMIT ?");
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = q.bind(b);
        }
        for t in &times {
            q = q.bind(*t);
        }
        let rows = q.bind(i64::from(limit)).fetch_all(&self.reader).await?;
        rows.iter().map(|r| Ok(serde_json::from_str(r.get::<&str, _>(0))?)).collect()
    }

    /// Every resource of a kind across all parents (start-up recovery).
    pub async fn all<R: Record>(&self) -> StoreResult<Vec<R>> {
        let rows = sqlx::query(&format!("SELECT doc FROM {} ORDER BY parent, id", R::TABLE)).fetch_all(&self.reader).await?;
        rows.iter().map(|r| Ok(serde_json::from_str(r.get::<&str, _>(0))?)).collect()
    }

    /// Task counts of a job: per state and result, the number of tasks and of their slots.
    /// Returns `(state, result, tasks, slots)` rows.
    pub async fn task_counts(&self, job_id: &str) -> StoreResult<Vec<(String, Option<String>, i64, i64)>> {
        let rows = sqlx::query("SELECT state, result, COUNT(*), SUM(weight) FROM tasks WHERE parent = ? GROUP BY state, result")
            .bind(job_id)
            .fetch_all(&self.reader)
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get::<Option<String>, _>(1), r.get(2), r.get(3))).collect())
    }
}

/// A write transaction on the single writer connection. Dropped without
/// [`Tx::commit`], it rolls back.
pub struct Tx {
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
}

impl Tx {
    /// Reads one resource inside the transaction.
    pub async fn get<R: Record>(&mut self, parent: &str, id: &str) -> StoreResult<Option<R>> {
        let row = sqlx::query(&format!("SELECT doc FROM {} WHERE parent = ? AND id = ?", R::TABLE))
            .bind(parent)
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.map(|r| Ok(serde_json::from_str(r.get::<&str, _>(0))?)).transpose()
    }

    /// True when a resource with this parent and id exists.
    pub async fn exists<R: Record>(&mut self, parent: &str, id: &str) -> StoreResult<bool> {
        let row = sqlx::query(&format!("SELECT 1 FROM {} WHERE parent = ? AND id = ?", R::TABLE))
            .bind(parent)
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?;
        Ok(row.is_some())
    }

    /// Inserts or replaces a resource.
    pub async fn put<R: Record>(&mut self, r: &R) -> StoreResult<()> {
        let doc = serde_json::to_string(r)?;
        sqlx::query(&format!(
            "INSERT INTO {} (parent, id, state, result, weight, created, doc) VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (parent, id) DO UPDATE SET state = excluded.state, result = excluded.result,
                 weight = excluded.weight, created = excluded.created, doc = excluded.doc",
            R::TABLE
        ))
        .bind(r.parent())
        .bind(r.id())
        .bind(r.state())
        .bind(r.result())
        .bind(r.weight())
        .bind(r.created())
        .bind(doc)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Deletes one resource; true when it existed.
    pub async fn delete<R: Record>(&mut self, parent: &str, id: &str) -> StoreResult<bool> {
        let done = sqlx::query(&format!("DELETE FROM {} WHERE parent = ? AND id = ?", R::TABLE))
            .bind(parent)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The resources with this id under any parent (a node's rows in every job).
    pub async fn by_id<R: Record>(&mut self, id: &str) -> StoreResult<Vec<R>> {
        let rows = sqlx::query(&format!("SELECT doc FROM {} WHERE id = ?", R::TABLE)).bind(id).fetch_all(&mut *self.tx).await?;
        rows.iter().map(|r| Ok(serde_json::from_str(r.get::<&str, _>(0))?)).collect()
    }

    /// Deletes the resources with this id under any parent (a node's rows in every job).
    pub async fn delete_id<R: Record>(&mut self, id: &str) -> StoreResult<u64> {
        let done = sqlx::query(&format!("DELETE FROM {} WHERE id = ?", R::TABLE)).bind(id).execute(&mut *self.tx).await?;
        Ok(done.rows_affected())
    }

    /// Deletes every resource under a parent (the tasks of a job, the nodes of a pool).
    pub async fn delete_children<R: Record>(&mut self, parent: &str) -> StoreResult<u64> {
        let done = sqlx::query(&format!("DELETE FROM {} WHERE parent = ?", R::TABLE)).bind(parent).execute(&mut *self.tx).await?;
        Ok(done.rows_affected())
    }

    /// All resources under a parent, optionally in one state.
    pub async fn children<R: Record>(&mut self, parent: &str, state: Option<&str>) -> StoreResult<Vec<R>> {
        let rows = sqlx::query(&format!("SELECT doc FROM {} WHERE parent = ? AND (? IS NULL OR state = ?) ORDER BY id", R::TABLE))
            .bind(parent)
            .bind(state)
            .bind(state)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(|r| Ok(serde_json::from_str(r.get::<&str, _>(0))?)).collect()
    }

    /// All resources under a parent whose id starts with `prefix` (case-insensitively), by id:
    /// the jobs of a job schedule.
    pub async fn children_prefixed<R: Record>(&mut self, parent: &str, prefix: &str) -> StoreResult<Vec<R>> {
        let rows = sqlx::query(&format!("SELECT doc FROM {} WHERE parent = ? AND id LIKE ? ESCAPE '\\' ORDER BY id", R::TABLE))
            .bind(parent)
            .bind(crate::odata::IdCond::like_pattern(prefix))
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(|r| Ok(serde_json::from_str(r.get::<&str, _>(0))?)).collect()
    }

    /// Number of resources under a parent in any of `states`.
    pub async fn count_in_states<R: Record>(&mut self, parent: &str, states: &[&str]) -> StoreResult<i64> {
        let mut n = 0;
        for s in states {
            let row = sqlx::query(&format!("SELECT COUNT(*) FROM {} WHERE parent = ? AND state = ?", R::TABLE))
                .bind(parent)
                .bind(s)
                .fetch_one(&mut *self.tx)
                .await?;
            n += row.get::<i64, _>(0);
        }
        Ok(n)
    }

    /// Number of resources under a parent in `state` with `result` (a task's `success` or
    /// `failure`).
    pub async fn count_with_result<R: Record>(&mut self, parent: &str, state: &str, result: &str) -> StoreResult<i64> {
        let sql = format!("SELECT COUNT(*) FROM {} WHERE parent = ? AND state = ? AND result = ?", R::TABLE);
        let row = sqlx::query(&sql).bind(parent).bind(state).bind(result).fetch_one(&mut *self.tx).await?;
        Ok(row.get(0))
    }

    /// Number of resources under a parent whose state is not `state`.
    pub async fn count_not_in_state<R: Record>(&mut self, parent: &str, state: &str) -> StoreResult<i64> {
        let row = sqlx::query(&format!("SELECT COUNT(*) FROM {} WHERE parent = ? AND state <> ?", R::TABLE))
            .bind(parent)
            .bind(state)
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(row.get(0))
    }

    /// Commits durably.
    pub async fn commit(self) -> StoreResult<()> {
        self.tx.commit().await?;
        Ok(())
    }
}
