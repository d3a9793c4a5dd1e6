//! `openbatch serve`: opens the store, starts the scheduler driver and the HTTP API.

use crate::api::{self, auth::AccountKey, task_token::TaskTokens, App};
use crate::nodes::local::LocalProvider;
use crate::scheduler::driver::Driver;
use crate::scheduler::reactor::ServiceInfo;
use crate::store::Store;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// The development account's name (like Azurite's `devstoreaccount1`).
pub const DEFAULT_ACCOUNT: &str = "devbatchaccount1";
/// The development account's well-known base64 key. Anyone can read it: use it only on
/// loopback and set your own `--key` anywhere else.
pub const DEFAULT_KEY: &str = "6hU4W6CkGy4e9blds2MXyy/s5T5AeLvN4o0jWUaCAAe6JVCX/QdSmPZ6+QgmnlwNX31KlbvUEAM3BNBQ1Mk2cw==";
/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:10400";

/// Settings of a service process.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub account: String,
    pub key: String,
    /// Base URL callers use, when it differs from `http://<listen>`.
    pub public_url: Option<String>,
    /// The account's linked storage (`autoStorageContainerName`), if any.
    pub auto_storage: Option<crate::storage::resource_files::AutoStorage>,
    /// The binary node agents run (normally this executable).
    pub agent_exe: PathBuf,
    /// Development option: how many times as fast as real time the service clock runs (1.0
    /// in production).
    pub clock_speed: f64,
    /// Development option: serve `/openbatch/v1/clock`, which moves the service clock on.
    pub clock_control: bool,
    /// Node quotas and Spot behaviour.
    pub limits: crate::scheduler::reactor::resize::PoolLimits,
    /// Development option: the shortest `autoScaleEvaluationInterval` accepted (the Batch
    /// minimum, 5 minutes, when `None`).
    pub min_autoscale_interval: Option<std::time::Duration>,
}

/// Runs the service until the process ends.
pub async fn run(mut cfg: ServeConfig) -> anyhow::Result<()> {
    // An absolute data directory, so that the node directories in the AZ_BATCH_* variables are
    // absolute paths (as Batch documents them), whatever directory a task runs in.
    std::fs::create_dir_all(&cfg.data_dir)?;
    cfg.data_dir = cfg.data_dir.canonicalize()?;
    let account = AccountKey::new(&cfg.account, &cfg.key)?;
    if cfg.clock_speed != 1.0 {
        crate::model::time::Clock::set_speed(cfg.clock_speed);
        tracing::warn!(speed = crate::model::time::Clock::speed(), "development option: the service clock runs faster than real time");
    }
    if let Some(d) = cfg.min_autoscale_interval {
        crate::model::autoscale::set_min_interval(d);
        tracing::warn!(seconds = d.as_secs_f64(), "development option: autoscale evaluation intervals shorter than 5 minutes are accepted");
    }
    if cfg.clock_control {
        tracing::warn!("development option: POST /openbatch/v1/clock moves the service clock on");
    }
    let task_tokens = Arc::new(TaskTokens::load_or_create(&cfg.data_dir, &cfg.account)?);
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    let local = listener.local_addr()?;
    let agent_host = if local.ip().is_unspecified() { format!("127.0.0.1:{}", local.port()) } else { local.to_string() };
    let service_url = format!("http://{agent_host}");
    let account_url = cfg.public_url.clone().unwrap_or_else(|| service_url.clone());
    let store = Store::open(&cfg.data_dir).await?;
    let provider = LocalProvider::new(cfg.agent_exe.clone(), &cfg.data_dir, service_url.clone());
    let info = ServiceInfo {
        account_name: cfg.account.clone(),
        account_url: account_url.clone(),
        auto_storage: cfg.auto_storage.clone(),
        nodes_dir: provider.nodes_dir(),
        task_tokens: Some(task_tokens.clone()),
        limits: cfg.limits.clone(),
    };
    let driver = Driver::start(store.clone(), provider, info.clone()).await?;
    let app = Arc::new(App {
        store,
        driver,
        account,
        info,
        public_url: cfg.public_url.clone(),
        data_dir: cfg.data_dir.clone(),
        task_tokens,
        clock_control: cfg.clock_control,
    });
    print_banner(&cfg, &account_url);
    // TCP_NODELAY: small agent messages must not wait for delayed ACKs.
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, api::router(app)).await?;
    Ok(())
}

fn print_banner(cfg: &ServeConfig, url: &str) {
    // Only the well-known development key is ever printed; a key of your own stays yours.
    let key = if cfg.key == DEFAULT_KEY { cfg.key.as_str() } else { "<the key you set>" };
    println!(
        "openbatch {} is serving the Azure Batch API at {url}
  account: {}
  key:     {key}
  data:    {}

Python (pip install azure-batch: 15.x, api-version 2025-06-01):
  from azure.batch import BatchClient
  from azure.core.credentials import AzureNamedKeyCredential
  client = BatchClient(\"{url}\", AzureNamedKeyCredential(\"{}\", \"{key}\"))
  print([i.node_agent_sku_id for i in client.list_supported_images()])

Python (azure-batch 14.x and older):
  from azure.batch import BatchServiceClient
  from azure.batch.batch_auth import SharedKeyCredentials
  client = BatchServiceClient(SharedKeyCredentials(\"{}\", \"{key}\"), batch_url=\"{url}\")

Azure CLI:
  az batch pool list --account-name {} --account-key \"{key}\" --account-endpoint {url}
",
        env!("CARGO_PKG_VERSION"),
        cfg.account,
        cfg.data_dir.display(),
        cfg.account,
        cfg.account,
        cfg.account,
    );
}
