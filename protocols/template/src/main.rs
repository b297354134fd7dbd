//! Template for a new oxr routing protocol process (copied by oxr-new-protocol) (being built).

fn main() -> anyhow::Result<()> {
    anyhow::bail!("oxr-template is not built yet")
}
