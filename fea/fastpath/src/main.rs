//! The oxr fast-path dataplane process: XDP and AF_XDP engines over oxr-lpm (being built).

fn main() -> anyhow::Result<()> {
    anyhow::bail!("oxr-fastpath is not built yet")
}
