//! `openbatch bench --resource-url URL`: resource file downloads as a node does them (the
//! agent's code: streamed to disk, 4 at a time, with its checks and retries) next to a plain
//! download of the same blob with `reqwest`, both `count` times into a temporary directory.
//! The output is a table of bytes, seconds and MiB/s.

use crate::storage::{ResourceFileSpec, ResourceSource};
use std::time::Instant;

/// Runs the comparison for the blob at `url` (a SAS URL, or any HTTP(S) URL), `count` copies.
pub async fn run(url: &str, count: usize) -> anyhow::Result<()> {
    let count = count.max(1);
    let dir = tempfile_dir()?;
    // Plain: one GET per copy, the body streamed to a file, 4 at a time.
    let client = reqwest::Client::new();
    let plain_dir = dir.join("plain");
    std::fs::create_dir_all(&plain_dir)?;
    let started = Instant::now();
    let mut bytes = 0u64;
    for chunk in (0..count).collect::<Vec<_>>().chunks(4) {
        let mut handles = Vec::new();
        for i in chunk {
            let (client, url, dest) = (client.clone(), url.to_string(), plain_dir.join(format!("f{i}")));
            handles.push(tokio::spawn(async move {
                use futures::StreamExt;
                use tokio::io::AsyncWriteExt;
                let resp = client.get(url).send().await?.error_for_status()?;
                let mut f = tokio::fs::File::create(dest).await?;
                let mut s = resp.bytes_stream();
                let mut n = 0u64;
                while let Some(c) = s.next().await {
                    let c = c?;
                    n += c.len() as u64;
                    f.write_all(&c).await?;
                }
                f.flush().await?;
                Ok::<u64, anyhow::Error>(n)
            }));
        }
        for h in handles {
            bytes += h.await??;
        }
    }
    let plain = started.elapsed().as_secs_f64();
    // As a node: the resource file code of the agent.
    let wd = dir.join("wd");
    std::fs::create_dir_all(&wd)?;
    let specs: Vec<ResourceFileSpec> = (0..count)
        .map(|i| ResourceFileSpec {
            source: ResourceSource::Http { url: url.to_string() },
            file_path: Some(format!("f{i}")),
            file_mode: None,
        })
        .collect();
    let started = Instant::now();
    crate::storage::resource_files::download_all(&wd, &specs).await.map_err(|e| anyhow::anyhow!("{}: {:?}", e.code, e.details))?;
    let node = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    let mib = bytes as f64 / (1 << 20) as f64;
    println!();
    println!("| measure ({count} downloads of {}) | bytes | seconds | MiB/s |", crate::storage::redact(url));
    println!("|---|---:|---:|---:|");
    println!("| plain download (reqwest, 4 at a time) | {bytes} | {plain:.2} | {:.0} |", mib / plain);
    println!("| resource files as a node downloads them | {bytes} | {node:.2} | {:.0} |", mib / node);
    println!();
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("openbatch-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
