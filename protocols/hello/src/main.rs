//! The guide's tutorial protocol: flood connected prefixes to neighbours, install what is heard (being built).

fn main() -> anyhow::Result<()> {
    anyhow::bail!("oxr-hello is not built yet")
}
