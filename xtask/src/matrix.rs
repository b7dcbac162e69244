//! The QEMU boot matrix of `cargo xtask test` and its checks: the cases, the lines
//! computed from Linux's rules, the checks of a boot's log, the simulator comparisons
//! and the parallel runner.

use super::*;

/// Linux 6.1's ARM `vmalloc_size` default (240 MiB).
pub(crate) const DEFAULT_VMALLOC: u64 = 240 * MIB;
/// `VMALLOC_END - PAGE_OFFSET` for the 3G/1G split: 0xff800000 - 0xc0000000.
pub(crate) const VMALLOC_END_OFFSET: u64 = 0xff80_0000 - 0xc000_0000;
/// `VMALLOC_OFFSET`: the 8 MiB gap below the vmalloc area.
pub(crate) const VMALLOC_OFFSET: u64 = 8 * MIB;

/// The boot-log lines a correct boot prints for one RAM bank, computed from Linux's
/// rules (6.1 `adjust_lowmem_bounds`): lowmem ends `vmalloc_size + VMALLOC_OFFSET`
/// below `VMALLOC_END`, 768 MiB above the RAM base by default.
pub(crate) fn expected_lines(
    board: &BoardDesc,
    mem: u64,
    cmdline: Option<&str>,
    nomap: Option<(u64, u64)>,
) -> Vec<String> {
    let words: Vec<&str> = cmdline
        .into_iter()
        .flat_map(str::split_ascii_whitespace)
        .collect();
    let last_size = |key: &str| {
        words
            .iter()
            .filter_map(|w| w.strip_prefix(key))
            .filter_map(zonekit_core::cmdline::memparse)
            .next_back()
    };
    let vmalloc = last_size("vmalloc=").unwrap_or(DEFAULT_VMALLOC);
    // ARM's `mem=SIZE`: RAM becomes SIZE bytes from the start of RAM.
    let mem = last_size("mem=").map_or(mem, |limit| limit.min(mem) & !0xfff);
    let lowmem_size = VMALLOC_END_OFFSET - vmalloc - VMALLOC_OFFSET;
    let start = board.ram_base;
    let end = start + mem;
    let lowmem_end = end.min(start + lowmem_size);
    let mut lines = vec![format!(
        "  {:<8} [mem {:#018x}-{:#018x}]",
        "Normal",
        start,
        lowmem_end - 1
    )];
    if end > lowmem_end {
        lines.push(format!(
            "  {:<8} [mem {:#018x}-{:#018x}]",
            "HighMem",
            lowmem_end,
            end - 1
        ));
    } else {
        lines.push(format!("  {:<8} empty", "HighMem"));
    }
    // A no-map region splits memblock.memory (different flags never merge).
    let mut cuts = vec![start];
    if let Some((b, e)) = nomap {
        cuts.extend([b, e]);
    }
    cuts.push(end);
    for w in cuts.windows(2) {
        lines.push(format!(
            "  node {:>3}: [mem {:#018x}-{:#018x}]",
            0,
            w[0],
            w[1] - 1
        ));
    }
    lines.push(format!("On node 0 totalpages: {}", mem / 4096));
    lines
}

/// One boot of the test matrix.
pub(crate) struct BootCase {
    pub(crate) board: &'static str,
    pub(crate) mem: u64,
    pub(crate) cmdline: Option<&'static str>,
    pub(crate) dtb: dtb::DtbMode,
    /// Lines (prefixes) the log must also contain.
    pub(crate) also: &'static [&'static str],
    /// The guest's expected exit status: 0 for a boot that must pass all the usual
    /// checks; otherwise only this status and `also` are checked.
    pub(crate) exit: u8,
    /// Built with the `defmt` feature: the zonekit log lines are checked in the
    /// decoded defmt frames (messages), and each must carry a `file:line`.
    pub(crate) defmt: bool,
    /// CPUs QEMU models (`-smp`); the log must show the secondaries the guest
    /// starts ([`smp_lines_ok`]).
    pub(crate) smp: u32,
    /// The simulator cannot make this log (a fault on a secondary CPU, which it does
    /// not run): the golden file says `# sim: no`.
    pub(crate) no_sim: bool,
}

impl BootCase {
    pub(crate) fn name(&self) -> String {
        let mut s = format!("{} {}", self.board, size_name(self.mem));
        let qemu_dtb = find_board(self.board).is_ok_and(|b| b.profile.qemu.dtb == DtbSource::Qemu);
        s.push_str(match self.dtb {
            dtb::DtbMode::Auto if qemu_dtb => " qemu-dtb",
            dtb::DtbMode::Auto => " dtb",
            dtb::DtbMode::AutoNomap => " dtb-nomap",
            dtb::DtbMode::None => " atags",
            dtb::DtbMode::File(_) => " dtb-file",
            dtb::DtbMode::Test(t) => match t {
                dtb::TestTree::Latin1 => " dtb-test:latin1",
                dtb::TestTree::Quirks => " dtb-test:quirks",
                dtb::TestTree::Overlap => " dtb-test:overlap",
            },
        });
        if let Some(c) = self.cmdline {
            s.push_str(&format!(" {c}"));
        }
        if self.defmt {
            s.push_str(" defmt");
        }
        if self.smp > 1 {
            s.push_str(&format!(" smp{}", self.smp));
        }
        s
    }

    /// How many CPUs the guest must bring up: the `-smp` CPUs (as far as the board's
    /// model has them), capped as the guest caps them (`maxcpus=`, `nosmp`,
    /// `MAX_CPUS`).
    pub(crate) fn cpus(&self) -> usize {
        let max = find_board(self.board).map_or(1, |b| b.profile.qemu.max_cpus);
        let cmdline = zonekit_core::cmdline::Cmdline::parse(self.cmdline.unwrap_or(""));
        zonekit_arch_arm::smp::cpus_to_start(self.smp.min(max) as usize, &cmdline)
    }

    /// The CPU `zonekit.fault=cpu-offline:N` keeps asleep.
    pub(crate) fn offline_cpu(&self) -> Option<usize> {
        use zonekit_arch_arm::smp::SmpFault;
        self.cmdline?
            .split_ascii_whitespace()
            .filter_map(|w| w.strip_prefix("zonekit.fault="))
            .find_map(|w| match SmpFault::parse(w) {
                Some(SmpFault::Offline(n)) => Some(n),
                _ => None,
            })
    }
}

/// The SMP lines of a log against `cpus` CPUs: with more than one, one
/// `CPUn: started` per secondary (`CPUn: failed to come online` for the `offline`
/// one), the `smp: Brought up` summary and the `on_each_cpu` smoke line, and no
/// other failure; with one, no SMP line at all.
pub(crate) fn smp_lines_ok(log: &str, cpus: usize, offline: Option<usize>) -> Result<(), String> {
    let smp: Vec<&str> = log
        .lines()
        .filter(|l| golden::smp_line(l) && !golden::smp_test_line(l))
        .collect();
    let test: Vec<&str> = log.lines().filter(|l| golden::smp_test_line(l)).collect();
    if cpus < 2 {
        return match smp.first().or(test.first()) {
            Some(l) => Err(format!("one CPU, but the log says {l:?}")),
            None => Ok(()),
        };
    }
    let mut want = vec!["smp: Bringing up secondary CPUs ...".to_string()];
    want.extend((1..cpus).map(|n| match offline == Some(n) {
        true => format!("CPU{n}: failed to come online"),
        false => format!("CPU{n}: started"),
    }));
    let up = cpus - usize::from(offline.is_some_and(|n| n < cpus));
    want.push(format!("smp: Brought up 1 node, {up} CPUs"));
    want.push(format!("zonekit: smp: {up} CPUs ran on_each_cpu"));
    // The concurrent page allocator test: a line per online CPU, then the verdict.
    let ids: Vec<usize> = (0..cpus).filter(|&n| offline != Some(n)).collect();
    let test_ok = test.len() == up + 1
        && ids
            .iter()
            .zip(&test)
            .all(|(n, l)| l.starts_with(&format!("zonekit: smp: CPU{n}: ")))
        && test[up].starts_with(&format!(
            "zonekit: smp: {up} CPUs ran the concurrent page allocator test at once, nothing lost ("
        ));
    if !test_ok {
        return Err(format!(
            "concurrent page allocator test lines for {up} CPUs: the log has {test:?}"
        ));
    }
    if smp == want {
        Ok(())
    } else {
        Err(format!(
            "SMP lines for {cpus} CPUs: expected {want:?}, the log has {smp:?}"
        ))
    }
}

/// The QEMU boot matrix of `cargo xtask test`: every board at the sizes its profile
/// lists (`matrix`, default device tree), then boots of particular boards from ATAGS,
/// highmem on vexpress-a9 1G and sabrelite 2G, `vmalloc=`, `mem=`, a `no-map` hole,
/// the `memblock=debug` trace and `memtest=17`.
pub(crate) fn boot_matrix() -> Vec<BootCase> {
    use dtb::DtbMode::{Auto, AutoNomap, None as Atags, Test};
    use dtb::TestTree;
    const FROM_DTB: &[&str] = &["zonekit: memory from DTB"];
    const FROM_ATAGS: &[&str] = &["zonekit: memory from ATAGS"];
    const REPORT: &[&str] = &[
        "Node 0, zone   Normal",
        "  pages free     ",
        "        protection: (",
        "Page block order: 10",
        "Free pages count per migrate type at order ",
        "Node    0, zone   Normal, type      Movable ",
        "Number of blocks type ",
    ];
    let case = |board, mem_mib: u64, cmdline, dtb, also| BootCase {
        board,
        mem: mem_mib * MIB,
        cmdline,
        dtb,
        also,
        exit: 0,
        defmt: false,
        smp: 1,
        no_sim: false,
    };
    // `-smp 4`: the secondaries come up (the SMP lines are checked for every case).
    let smp4 = |board, mem_mib: u64, cmdline| BootCase {
        smp: 4,
        ..case(board, mem_mib, cmdline, Auto, &[])
    };
    let defmt_case = |board, mem_mib: u64, dtb| BootCase {
        defmt: true,
        ..case(board, mem_mib, None, dtb, FROM_DTB)
    };
    // A boot that must stop with EXIT_BOOT_ERROR, printing `also`.
    let boot_error = |board, mem_mib: u64, cmdline, dtb, also| BootCase {
        exit: zonekit_arch_arm::flow::EXIT_BOOT_ERROR as u8,
        ..case(board, mem_mib, Some(cmdline), dtb, also)
    };
    let profiled = boards::all().unwrap_or_default().iter().flat_map(|b| {
        let name = b.profile.name.as_str();
        b.profile.qemu.matrix.iter().map(move |&mem| BootCase {
            mem,
            ..case(name, 0, None, Auto, FROM_DTB)
        })
    });
    profiled.chain([
        case("vexpress-a9", 512, None, Atags, FROM_ATAGS),
        case("vexpress-a9", 1024, None, Auto, &[
            "zonekit: memory from DTB",
            "    lowmem  : 0xc0000000 - 0xf0000000   ( 768 MB)",
            "zonekit: kmap test: 8 highmem pages from pfn ",
        ]),
        case("vexpress-a9", 512, Some("vmalloc=600M"), Auto, FROM_DTB),
        case("vexpress-a9", 512, Some("mem=300M"), Auto, FROM_DTB),
        // mem= larger than RAM: Linux's truncation at 4 GiB, then clipped to the RAM
        // the DTB reports, with warnings; boots with 512 MiB.
        case("vexpress-a9", 512, Some("mem=8G"), Auto, &[
            "zonekit: warning: Truncating memory at 0x60000000 to fit in 32-bit physical address space",
            "zonekit: warning: mem=: ignoring [mem 0x0000000080000000-0x00000000ffffefff] outside the RAM reported by the DTB",
        ]),
        boot_error("vexpress-a9", 512, "mem=64M@0xffffffffffffffff", Auto, &[
            "zonekit: boot failed: mem=0x4000000@0xffffffffffffffff: START + SIZE overflows the 64-bit physical address space",
        ]),
        // vexpress-a9's flash, not RAM: refused instead of a hang.
        boot_error("vexpress-a9", 512, "mem=64M@0x40000000", Atags, &[
            "zonekit: warning: Ignoring memory below PHYS_OFFSET: 0x40000000-0x44000000",
            "zonekit: boot failed: mem=: no memory left, every mem= bank was ignored",
        ]),
        boot_error("vexpress-a9", 512, "mem=4096", Auto, &[
            "zonekit: boot failed: memory [mem 0x0000000060000000-0x0000000060000fff] does not hold the kernel image [mem 0x0000000060010000-",
        ]),
        // Small RAM: the fallback steal that used to loop forever (issue 9, item 1).
        case("vexpress-a9", 6, None, Atags, FROM_ATAGS),
        case("mcimx6ul-evk", 2, None, Atags, FROM_ATAGS),
        case(
            "vexpress-a9",
            512,
            Some("cma=64M"),
            Auto,
            &["cma: Reserved 64 MiB at 0x7bc00000 on node -1"],
        ),
        case(
            "vexpress-a9",
            512,
            None,
            AutoNomap,
            &["OF: reserved mem: [mem 0x0000000062000000-0x00000000620fffff] no-map"],
        ),
        case(
            "vexpress-a9",
            1024,
            Some("memblock=debug"),
            Auto,
            &[
                "MEMBLOCK configuration:",
                " memory.cnt  = 0x1",
                // paging_init's early_alloc: the L1 table, then the PKMAP L2 chunk.
                "memblock_alloc_try_nid: 16384 bytes align=0x4000 nid=-1 from=0x00000000 max_addr=0x00000000 ",
                "memblock_alloc_try_nid: 4096 bytes align=0x1000 nid=-1 from=0x00000000 max_addr=0x00000000 ",
                "memblock_alloc_try_nid_raw: 4194304 bytes align=0x40 nid=0 from=0x00000000 max_addr=0x00000000 ",
                "memblock_reserve: [",
            ],
        ),
        // Every memtest pattern over ~120 MiB of free lowmem (about 10 s under TCG).
        case(
            "vexpress-a9",
            128,
            Some("memtest=17"),
            Auto,
            &["early_memtest: # of tests: 17"],
        ),
        case("vexpress-a9", 1024, Some("zonekit.report"), Auto, REPORT),
        case("vexpress-a15", 512, Some("zonekit.report"), Auto, REPORT),
        case("sabrelite", 512, Some("zonekit.report"), Auto, REPORT),
        case("mcimx6ul-evk", 512, Some("zonekit.report"), Auto, REPORT),
        case("vexpress-a15", 1024, None, Atags, FROM_ATAGS),
        case("sabrelite", 512, None, Atags, FROM_ATAGS),
        case("sabrelite", 2048, None, Auto, &[
            "zonekit: memory from DTB",
            "    lowmem  : 0xc0000000 - 0xf0000000   ( 768 MB)",
            "zonekit: kmap test: 8 highmem pages from pfn ",
        ]),
        // LPAE (issue 13): RAM to 0x17fffffff and 0x27fffffff through long-descriptor
        // tables, kmap of highmem pages above 4 GiB (the top pages of RAM).
        case("vexpress-a15-lpae", 4096, None, Auto, &[
            "zonekit: MMU on (LPAE long descriptors, ",
            "  Normal   [mem 0x0000000080000000-0x00000000afffffff]",
            "  HighMem  [mem 0x00000000b0000000-0x000000017fffffff]",
            "On node 0 totalpages: 1048576",
            "zonekit: kmap test: 8 highmem pages from pfn 0x17fe00 (above max_low_pfn 0xb0000)",
        ]),
        case("vexpress-a15-lpae", 8192, None, Auto, &[
            "zonekit: MMU on (LPAE long descriptors, ",
            "  Normal   [mem 0x0000000080000000-0x00000000afffffff]",
            "  HighMem  [mem 0x00000000b0000000-0x000000027fffffff]",
            "On node 0 totalpages: 2097152",
            "zonekit: kmap test: 8 highmem pages from pfn 0x27fe00 (above max_low_pfn 0xb0000)",
        ]),
        case(
            "vexpress-a9",
            512,
            Some("zonekit.test_abort"),
            Auto,
            &[
                "zonekit: data abort at pc=0x",
                "zonekit: test_abort: unmapped read caught: DFAR=0xe0801000 DFSR=0x00000005 (translation fault, section)",
                "zonekit: test_abort: freed kmap slot caught: DFAR=0xbfe0",
                "zonekit: kmap test: no highmem on this boot, skipped",
            ],
        ),
        case("mcimx6ul-evk", 256, None, Atags, FROM_ATAGS),
        case("mcimx6ul-evk", 1536, None, Auto, KMAP_LINES),
        case("virt", 1024, Some("memblock=debug"), Auto, FROM_DTB),
        defmt_case("vexpress-a9", 512, Auto),
        defmt_case("sabrelite", 512, Auto),
        // Device trees Linux accepts: a Latin-1 byte in bootargs must not cost the
        // tree's memory (256 MiB, not the 128 MiB board map), its reservations or the
        // command line (memblock=debug after the byte).
        case("vexpress-a9", 256, None, Test(TestTree::Latin1), &[
            "zonekit: memory from DTB",
            "Kernel command line: console=ttyAMA0 caf\u{fffd} memblock=debug",
            "zonekit: warning: OF: fdt: bootargs are not UTF-8",
            // memblock=debug's dump: the tree's 256 MiB, its static reservation and
            // the blob's own; the /reserved-memory pool.
            " memory[0x0]\t[0x60000000-0x6fffffff], 0x10000000 bytes",
            " reserved[0x2]\t[0x61000000-0x6100ffff], 0x00010000 bytes",
            " reserved[0x3]\t[0x68000000-",
            "OF: reserved mem: allocated zonekit-pool [mem 0x000000006ff00000-0x000000006fffffff]",
        ]),
        // Long and non-UTF-8 node names, a non-UTF-8 status, /chosen then /chosen@1,
        // on 64 MiB (less than the board map: a fallback would hang).
        case("vexpress-a9", 64, None, Test(TestTree::Quirks), &[
            "zonekit: memory from DTB",
            "zonekit: warning: OF: fdt: /chosen@1: ignored, an earlier node of that name is used",
        ]),
        // Secondary CPUs (issue 12): each board's own way, then on_each_cpu.
        smp4("vexpress-a9", 1024, None),
        smp4("sabrelite", 512, None),
        smp4("vexpress-a15", 512, None),
        smp4("virt", 512, None),
        // maxcpus=1: four CPUs modelled, the boot CPU alone runs (no SMP lines).
        smp4("vexpress-a9", 512, Some("maxcpus=1")),
        // A CPU that does not come online is reported after the bounded wait, and
        // the boot goes on with the others.
        smp4("vexpress-a9", 512, Some("zonekit.fault=cpu-offline:2")),
        // An exception on a secondary is reported with its number.
        BootCase {
            // `rt::entry::EXIT_EXCEPTION` (the runtime is target-only).
            exit: 3,
            also: &[
                "CPU3: started",
                "zonekit: CPU3: unexpected exception: undefined instruction, lr=0x",
            ],
            no_sim: true,
            ..smp4("sabrelite", 512, Some("zonekit.fault=cpu-undef:3"))
        },
        // An unusable tree stops the boot with the cause ...
        BootCase {
            exit: 1,
            ..case("vexpress-a9", 128, None, Test(TestTree::Overlap), &[
                "zonekit: DTB at 0x64000000 rejected: memory banks overlap: ",
                "zonekit: the DTB is the memory description; add zonekit.fallback=board",
                "zonekit: boot failed: DTB at 0x64000000 rejected: memory banks overlap: ",
            ])
        },
        // ... unless the command line asks for the board map.
        case("vexpress-a9", 128, Some("zonekit.fallback=board"), Test(TestTree::Overlap), &[
            "zonekit: DTB at 0x64000000 rejected: memory banks overlap: ",
            "zonekit: zonekit.fallback=board: the DTB's memory and reservations are ignored",
            "zonekit: memory from board map",
        ]),
    ])
    .collect()
}

/// Lines (prefixes) every boot prints once `paging_init` has switched the MMU on.
pub(crate) const MMU_ON_LINES: &[&str] = &[
    "zonekit: MMU on (",
    "zonekit: linear map test: 64 words at ",
    "zonekit: linear map test: page pfn ",
];

/// Linux's `Virtual kernel memory layout:` block (fixed lines of the 3G/1G split).
pub(crate) const LAYOUT_LINES: &[&str] = &[
    "Virtual kernel memory layout:",
    "    vector  : 0xffff0000 - 0xffff1000   (   4 kB)",
    "    fixmap  : 0xffc00000 - 0xfff00000   (3072 kB)",
    "    vmalloc : 0x",
    "    lowmem  : 0xc0000000 - 0x",
    "    pkmap   : 0xbfe00000 - 0xc0000000   (   2 MB)",
    "    modules : 0xbf000000 - 0xbfe00000   (  14 MB)",
];

/// The highmem kmap test.
pub(crate) const KMAP_LINES: &[&str] = &["zonekit: kmap test: 8 highmem pages from pfn "];

/// QEMU boots `cargo xtask test` runs at once: `ZONEKIT_QEMU_JOBS`, else the
/// available parallelism (at most 4).
pub(crate) fn boot_jobs() -> usize {
    std::env::var("ZONEKIT_QEMU_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(4)
        })
}

/// `f` over `items` on `jobs` threads; the results in the order of `items`.
pub(crate) fn run_parallel<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1).min(items.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                out.lock().expect("no panics while holding the lock")[i] = Some(r);
            });
        }
    });
    out.into_inner()
        .expect("no panics while holding the lock")
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect()
}

pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|l| format!("    | {l}\n"))
        .collect()
}

/// The defmt line a `--defmt` boot must show: the node's page total, logged from
/// zonekit-core with its source location.
pub(crate) fn check_defmt_location(lines: &[defmt::Line]) -> Result<(), String> {
    let line = lines
        .iter()
        .find(|l| l.message.starts_with("On node 0 totalpages"))
        .ok_or("no decoded `On node 0 totalpages` frame")?;
    let ok = line.location.starts_with("core/src/")
        && line
            .location
            .split_once(".rs:")
            .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "decoded line without a core/src/*.rs:N location: {line}"
        ))
    }
}

/// Time limit of one matrix boot: debug images at 1-2 GiB take about a minute on a
/// loaded two-CPU machine (the page-allocator self-test touches every page).
pub(crate) const MATRIX_TIMEOUT_SECS: u64 = 180;

/// QEMU's options for a matrix case.
pub(crate) fn matrix_boot_options(case: &BootCase) -> Result<BootOptions, String> {
    Ok(BootOptions {
        board: find_board(case.board)?,
        mem: case.mem,
        cmdline: case.cmdline.map(str::to_string),
        release: false,
        timeout_secs: MATRIX_TIMEOUT_SECS,
        dtb: case.dtb.clone(),
        workdir: None,
        gdb: None,
        smp: case.smp,
        icount: false,
    })
}

/// Boot one matrix case in QEMU and check its log; returns the log.
pub(crate) fn check_boot(case: &BootCase, built: &Built) -> Result<String, String> {
    let board = find_board(case.board)?;
    let mut opts = matrix_boot_options(case)?;
    if case.defmt {
        opts.workdir = Some(defmt_workdir(&case.name().replace(' ', "_"))?);
    }
    let run = run_qemu(&opts, &built.bin, false)?;
    // With defmt the zonekit log lines are in the frames, the rest on the console.
    let decoded = opts.workdir.as_ref().map(|dir| read_defmt(dir, &built.elf));
    let mut log = run.stdout.clone();
    if let Some(Ok(lines)) = &decoded {
        for l in lines {
            log.push_str(&l.message);
            log.push('\n');
        }
    }
    let log = &log;
    let mmu_lines = MMU_ON_LINES.iter().chain(LAYOUT_LINES);
    let fail = |why: String| {
        let mut s = format!("{why}\n  guest log tail:\n{}", tail(log, 15));
        if !run.stderr.trim().is_empty() {
            s.push_str(&format!("  QEMU stderr:\n{}", tail(&run.stderr, 5)));
        }
        Err(s)
    };
    if run.timed_out {
        return fail(format!("timed out after {} s", opts.timeout_secs));
    }
    // The device tree and the arguments xtask hands QEMU leave it nothing to warn
    // about (an interrupt controller for vexpress's virtio, audio silenced).
    if let Some(w) = run.stderr.lines().find(|l| l.contains("warning")) {
        return fail(format!("QEMU warned: {w}"));
    }
    if case.exit != 0 {
        if run.status != case.exit {
            return fail(format!(
                "exit status {} (expected {})",
                run.status, case.exit
            ));
        }
        return match missing_line(log.lines(), case.also) {
            Some(want) => fail(format!("missing line starting {want:?}")),
            None => Ok(log.clone()),
        };
    }
    if run.status != 0 {
        return fail(format!("exit status {}", run.status));
    }
    if !log.lines().any(|l| l == "zonekit: self-check passed") {
        return fail("no `zonekit: self-check passed`".into());
    }
    if let Err(e) = smp_lines_ok(log, case.cpus(), case.offline_cpu()) {
        return fail(e);
    }
    let nomap = (case.dtb == dtb::DtbMode::AutoNomap).then(|| {
        let b = board.ram_base + dtb::NOMAP_OFFSET;
        (b, b + dtb::NOMAP_SIZE)
    });
    for want in expected_lines(board, case.mem, case.cmdline, nomap) {
        if !log.lines().any(|l| l == want) {
            return fail(format!("missing line {want:?}"));
        }
    }
    // Every boot turns the MMU on, retires memblock into the buddy allocator and
    // self-tests it.
    for want in ["Memory: ", "zonekit: page allocator self-test: "]
        .iter()
        .chain(mmu_lines)
        .chain(case.also)
    {
        if !log.lines().any(|l| l.starts_with(want)) {
            return fail(format!("missing line starting {want:?}"));
        }
    }
    // The MMU goes on with the caches on (SCTLR.C and .I), unless told not to.
    let nocache = case
        .cmdline
        .is_some_and(|c| c.split_whitespace().any(|w| w == "zonekit.nocache"));
    let want_caches = if nocache { "caches off)" } else { "caches on)" };
    if !log
        .lines()
        .any(|l| l.starts_with("zonekit: MMU on (") && l.contains(want_caches))
    {
        return fail(format!("the MMU line does not say {want_caches:?}"));
    }
    // A CMA area on the command line shows in the Memory: line (Linux's totalcma_pages).
    let cma_asked = case.cmdline.is_some_and(|c| {
        c.split_whitespace()
            .any(|w| w.starts_with("cma=") && w != "cma=0")
    });
    if cma_asked
        && !log
            .lines()
            .any(|l| l.starts_with("Memory: ") && l.contains("K cma-reserved, "))
    {
        return fail("no `cma-reserved` in the Memory: line".into());
    }
    match decoded {
        None => Ok(log.clone()),
        Some(Err(e)) => fail(format!("defmt decoding failed: {e}")),
        Some(Ok(lines)) => match check_defmt_location(&lines) {
            Ok(()) => Ok(log.clone()),
            Err(e) => fail(e),
        },
    }
}

/// The first of `wanted` (prefixes) that no line of `lines` starts with.
pub(crate) fn missing_line<'a, 'b>(
    lines: impl Iterator<Item = &'a str> + Clone,
    wanted: &[&'b str],
) -> Option<&'b str> {
    wanted
        .iter()
        .copied()
        .find(|w| !lines.clone().any(|l| l.starts_with(w)))
}

/// Boot a reuse example on its board (512 MiB, generated DTB): it must exit 0, print
/// its lines, and show the same zones as a board binary.
pub(crate) fn check_example(example: &Example, image: &Path) -> Result<(), String> {
    let board = find_board(&example.profile.board)?;
    let opts = BootOptions {
        board,
        mem: 512 * MIB,
        cmdline: None,
        release: false,
        timeout_secs: DEFAULT_TIMEOUT_SECS,
        dtb: dtb::DtbMode::Auto,
        icount: false,
        workdir: None,
        gdb: None,
        smp: 1,
    };
    let run = run_qemu(&opts, image, false)?;
    let log = &run.stdout;
    let fail = |why: String| Err(format!("{why}\n  guest log tail:\n{}", tail(log, 15)));
    if run.timed_out {
        return fail(format!("timed out after {} s", opts.timeout_secs));
    }
    if run.status != 0 {
        return fail(format!("exit status {}", run.status));
    }
    let expected = expected_lines(board, opts.mem, None, None);
    for want in &expected {
        if !log.lines().any(|l| l == want) {
            return fail(format!("missing line {want:?}"));
        }
    }
    for want in &example.profile.expect {
        if !log.lines().any(|l| l.starts_with(want)) {
            return fail(format!("missing line starting {want:?}"));
        }
    }
    // The README next to the manifest shows a run: its lines are this run's.
    for want in readme_sample(example)? {
        if !log.lines().any(|l| l == want) {
            return fail(format!(
                "the example's README shows {want:?}, the boot does not"
            ));
        }
    }
    Ok(())
}

/// The output lines an example's README shows for `cargo xtask qemu --example NAME`
/// (the fenced block that starts with that command; `...` lines skipped).
pub(crate) fn readme_sample(example: &Example) -> Result<Vec<String>, String> {
    let Some(dir) = example.manifest.parent() else {
        return Ok(Vec::new());
    };
    let path = dir.join("README.md");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    let command = format!("$ cargo xtask qemu --example {}", example.profile.bin);
    let mut lines = text.lines().skip_while(|l| l.trim() != command);
    if lines.next().is_none() {
        return Ok(Vec::new());
    }
    Ok(lines
        .take_while(|l| !l.starts_with("```"))
        .filter(|l| l.trim() != "...")
        .map(str::to_string)
        .collect())
}
