//! `openbatch bench`: placeholder replaced below.
pub async fn run(_tasks: usize, _nodes: u32, _slots: u32) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
