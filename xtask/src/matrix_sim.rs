//! The matrix against the simulator: which cases `cargo xtask sim` must reproduce,
//! the simulator's options for a case, and the `sim = qemu` check of a QEMU log.

use super::*;

/// Matrix cases whose QEMU log `cargo xtask sim` must reproduce (zone, node, memmap,
/// `Memory:` and MEMBLOCK dump lines).
pub(crate) fn sim_compared(case: &BootCase) -> bool {
    let mib = case.mem >> 20;
    if case.no_sim {
        // What the simulator cannot do (a fault on a secondary CPU).
        return false;
    }
    if case.exit != 0 {
        // A boot that must fail fails the same way in the sim.
        return true;
    }
    matches!(
        (case.board, mib, case.cmdline, &case.dtb),
        ("vexpress-a9", 512, None, dtb::DtbMode::Auto)
            | ("vexpress-a9", 1024, None, dtb::DtbMode::Auto)
            | (
                "vexpress-a9",
                1024,
                Some("memblock=debug"),
                dtb::DtbMode::Auto
            )
            | ("vexpress-a9", 512, None, dtb::DtbMode::None)
            | ("vexpress-a9", 128, Some("memtest=17"), dtb::DtbMode::Auto)
            | ("sabrelite", 2048, None, dtb::DtbMode::Auto)
            | ("vexpress-a9", 512, Some("mem=8G"), dtb::DtbMode::Auto)
            | (
                "vexpress-a9",
                256,
                None,
                dtb::DtbMode::Test(dtb::TestTree::Latin1)
            )
            | (
                "vexpress-a9",
                64,
                None,
                dtb::DtbMode::Test(dtb::TestTree::Quirks)
            )
            | (
                "vexpress-a9",
                128,
                _,
                dtb::DtbMode::Test(dtb::TestTree::Overlap)
            )
    )
}

/// Whether a case boots from the device tree QEMU generates itself (the simulator
/// then needs that tree: `cargo xtask bless` keeps it next to the golden log).
pub(crate) fn boots_from_qemu_tree(case: &BootCase) -> bool {
    find_board(case.board)
        .is_ok_and(|b| b.profile.qemu.dtb == DtbSource::Qemu && case.dtb == dtb::DtbMode::Auto)
}

/// The simulator's options for a matrix case (the image range from the ELF unless
/// given).
pub(crate) fn sim_for_case(
    case: &BootCase,
    image: Option<sim::ImageLayout>,
    qemu_tree: Option<Vec<u8>>,
) -> Result<sim::SimOptions, String> {
    Ok(sim::SimOptions {
        board: find_board(case.board)?,
        mem: case.mem,
        cmdline: case.cmdline.map(str::to_string),
        dtb: case.dtb.clone(),
        release: false,
        image,
        qemu_tree,
        cpus: case.smp,
    })
}

/// Run the same case in the simulator and compare with the QEMU log.
pub(crate) fn check_sim(case: &BootCase, qemu_log: &str) -> Result<(), String> {
    // A defmt boot ran the defmt image, whose size differs from the plain one's.
    let image = if case.defmt {
        Some(sim::defmt_kernel_image(find_board(case.board)?)?)
    } else {
        None
    };
    let tree = if boots_from_qemu_tree(case) {
        Some(golden::load_qemu_tree(&workspace_root(), &case.name())?)
    } else {
        None
    };
    let opts = sim_for_case(case, image, tree)?;
    let run = sim::run(&opts, false)?;
    if case.exit != 0 {
        // A boot that stops: the same status and the same lines.
        if run.exit_code() != case.exit {
            return Err(format!(
                "sim exits {} ({}), QEMU {}",
                run.exit_code(),
                run.verdict(),
                case.exit
            ));
        }
        return match case
            .also
            .iter()
            .find(|w| !run.lines.iter().any(|l| l.starts_with(*w)))
        {
            Some(w) => Err(format!("sim log lacks a line starting {w:?}")),
            None => Ok(()),
        };
    }
    if run.exit_code() != 0 {
        return Err(format!("sim: {}", run.verdict()));
    }
    sim::compare_logs(qemu_log, &run.lines)
}
