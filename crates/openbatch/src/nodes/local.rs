//! The local node provider: each compute node is an `openbatch agent` process on this machine
//! with its own node root directory under `<data dir>/nodes/<pool>/<node>/`, so killing the
//! process is a node failure. Agents are reaped by the service; their logs go to
//! `<data dir>/nodes/<pool>/<node>.agent.log`, outside the node root.

use std::path::{Path, PathBuf};
use std::process::Stdio;

/// Starts and stops node agents on this machine.
#[derive(Debug, Clone)]
pub struct LocalProvider {
    exe: PathBuf,
    data_dir: PathBuf,
    service_url: String,
}

impl LocalProvider {
    /// A provider that runs `exe agent …` and points agents at `service_url`.
    pub fn new(exe: PathBuf, data_dir: &Path, service_url: String) -> Self {
        LocalProvider { exe, data_dir: data_dir.to_path_buf(), service_url }
    }

    /// The directory holding every pool's node roots.
    pub fn nodes_dir(&self) -> PathBuf {
        self.data_dir.join("nodes")
    }

    /// The node root directory of a node.
    pub fn node_root(&self, pool_id: &str, node_id: &str) -> PathBuf {
        self.nodes_dir().join(pool_id).join(node_id)
    }

    /// The directory holding a pool's node roots.
    pub fn pool_dir(&self, pool_id: &str) -> PathBuf {
        self.data_dir.join("nodes").join(pool_id)
    }

    /// Starts the agent of a node; returns its process id.
    pub fn spawn(&self, pool_id: &str, node_id: &str, token: &str) -> std::io::Result<u32> {
        let root = self.node_root(pool_id, node_id);
        std::fs::create_dir_all(&root)?;
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(self.pool_dir(pool_id).join(format!("{node_id}.agent.log")))?;
        let mut child = tokio::process::Command::new(&self.exe)
            .arg("agent")
            .arg("--service-url")
            .arg(&self.service_url)
            .arg("--pool-id")
            .arg(pool_id)
            .arg("--node-id")
            .arg(node_id)
            .arg("--root")
            .arg(&root)
            .env("OPENBATCH_AGENT_TOKEN", token)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let pid = child.id().unwrap_or(0);
        // Reap the agent whenever it exits.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        Ok(pid)
    }

    /// Kills an agent process (its tasks die with it).
    pub fn kill(&self, pid: u32) {
        if pid > 0 {
            // SAFETY: plain kill(2) on a process id this provider started.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
        }
    }

    /// Restarts a node's agent: kills `pid` (when this service knows it) and waits until it
    /// is gone (its tasks die with it), empties the node root when `wipe` (a reimage), then
    /// starts a new agent; returns its process id.
    pub async fn restart(&self, pool_id: &str, node_id: &str, token: &str, pid: Option<u32>, wipe: bool) -> std::io::Result<u32> {
        if let Some(pid) = pid.filter(|p| *p > 0) {
            self.kill(pid);
            // The agent is reaped by its waiter (or by init); kill(pid, 0) fails once it is gone.
            for _ in 0..250 {
                // SAFETY: signal 0 only checks that the process exists.
                if unsafe { libc::kill(pid as i32, 0) } != 0 {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            // Its task processes get SIGKILL when it dies (PR_SET_PDEATHSIG); let them go.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        if wipe {
            let root = self.node_root(pool_id, node_id);
            tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&root) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            })
            .await
            .map_err(std::io::Error::other)??;
        }
        self.spawn(pool_id, node_id, token)
    }
}
