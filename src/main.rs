//! The `occi-so` command line.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("occi-so: nothing to run yet (the server lands with issue 5)")
}
