//! The `sim = qemu` subset check of `cargo xtask test`: the zone, node, memmap,
//! `Memory:` and MEMBLOCK lines of a QEMU log and of the simulator's log of the same
//! boot must be the same, in order (the golden logs compare everything else).

/// Is `line` one of the zone/node/memmap lines sim and QEMU must agree on?
pub fn is_compared_line(line: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "Zone ranges:",
        "Movable zone start",
        "Early memory node ranges",
        "  node ",
        "Initmem setup",
        "On node",
        "Memory:",
        "MEMBLOCK configuration:",
        " memory",
        " reserved",
        "free_area_init_node:",
    ];
    if PREFIXES.iter().any(|p| line.starts_with(p)) {
        return true;
    }
    // `early_memtest` passes and bad ranges.
    if line.starts_with("early_memtest:")
        || (line.starts_with("  0x") && line.contains(" pattern "))
        || line.contains(" bad mem addr ")
    {
        return true;
    }
    // `Zone ranges:` entries and `  <Zone> zone: ...` lines.
    ["DMA", "Normal", "HighMem", "Movable"].iter().any(|z| {
        line.strip_prefix("  ").is_some_and(|l| {
            l.starts_with(z)
                && (l.contains(" zone: ") || l.contains("[mem ") || l.ends_with("empty"))
        })
    })
}

/// Compare the compared lines of a QEMU log and a sim log; `Err` lists differences.
pub fn compare_logs(qemu: &str, sim: &[String]) -> Result<(), String> {
    let q: Vec<&str> = qemu.lines().filter(|l| is_compared_line(l)).collect();
    let s: Vec<&str> = sim
        .iter()
        .map(String::as_str)
        .filter(|l| is_compared_line(l))
        .collect();
    if q.is_empty() {
        return Err("no zone/node lines in the QEMU log".into());
    }
    if q == s {
        return Ok(());
    }
    let mut diff = String::new();
    for i in 0..q.len().max(s.len()) {
        let (a, b) = (q.get(i).copied(), s.get(i).copied());
        if a != b {
            diff.push_str(&format!(
                "\n    qemu: {}\n    sim:  {}",
                a.unwrap_or("<none>"),
                b.unwrap_or("<none>")
            ));
        }
    }
    Err(format!("sim and QEMU logs differ:{diff}"))
}
