//! `cargo xtask memmap`: run the simulated boot ([`crate::sim`]) and draw the physical
//! memory map it ends with as SVG (with the `svg` crate): one linear band per DRAM
//! bank, holes between banks, the zones above each band, reserved ranges coloured by
//! owner, free memory, every range labelled with its start address and size, and a
//! legend. Ranges too small to see get a minimum width (and a label all the same).
//!
//! Every drawn range carries `data-kind`, `data-name`, `data-start` and `data-size`
//! attributes, so tests (and other tools) can read the picture back.

use std::path::Path;

use svg::node::element::{Group, Line, Rectangle, Text, Title};
use svg::Document;
use zonekit_core::addr::MemRange;

use crate::sim::{self, MemoryMap, Owner};

/// Width of the picture.
const WIDTH: f64 = 1200.0;
/// Left and right margin.
const MARGIN: f64 = 40.0;
/// Narrowest a range is drawn.
const MIN_WIDTH: f64 = 3.0;
/// Height of the zone band and of the memory band.
const ZONE_H: f64 = 24.0;
const MEM_H: f64 = 48.0;
/// Height of one label line.
const LINE_H: f64 = 15.0;

/// Human size: the largest of GiB, MiB, KiB that divides it exactly, or that it has at
/// least ten of (then with one decimal); bytes otherwise.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (unit, name) in UNITS {
        if bytes >= unit && (bytes.is_multiple_of(unit) || bytes >= 10 * unit) {
            return if bytes.is_multiple_of(unit) {
                format!("{} {name}", bytes / unit)
            } else {
                format!("{:.1} {name}", bytes as f64 / unit as f64)
            };
        }
    }
    format!("{bytes} B")
}

fn owner_colour(o: Owner) -> &'static str {
    match o {
        Owner::KernelImage => "#d62728",
        Owner::BootData => "#8c564b",
        Owner::Dtb => "#9467bd",
        Owner::MemMap => "#1f77b4",
        Owner::Usemap => "#17becf",
        Owner::ReservedStatic => "#ff7f0e",
        Owner::ReservedDynamic => "#e377c2",
        Owner::NoMap => "#7f7f7f",
        Owner::BootAlloc => "#bcbd22",
    }
}

fn zone_colour(name: &str) -> &'static str {
    match name {
        "DMA" => "#fdd49e",
        "Normal" => "#c6dbef",
        "HighMem" => "#dadaeb",
        _ => "#eeeeee",
    }
}

const FREE_COLOUR: &str = "#a1d99b";
const HOLE_COLOUR: &str = "#f0f0f0";

const ALL_OWNERS: [Owner; 9] = [
    Owner::KernelImage,
    Owner::BootData,
    Owner::Dtb,
    Owner::MemMap,
    Owner::Usemap,
    Owner::ReservedStatic,
    Owner::ReservedDynamic,
    Owner::NoMap,
    Owner::BootAlloc,
];

/// DRAM banks: maximal runs of adjacent memblock.memory regions (no-map included).
pub fn banks(map: &MemoryMap) -> Vec<MemRange> {
    let mut out: Vec<MemRange> = Vec::new();
    for (r, _) in &map.memory {
        match out.last_mut() {
            Some(last) if last.end() == r.base => last.size += r.size,
            _ => out.push(*r),
        }
    }
    out
}

fn range_label(name: &str, r: MemRange) -> String {
    format!("{name} {:#010x} {}", r.base, human_size(r.size))
}

/// A drawn range with its data attributes and a hover title.
fn range_rect(kind: &str, name: &str, r: MemRange, x: f64, y: f64, w: f64, h: f64) -> Rectangle {
    Rectangle::new()
        .set("x", x)
        .set("y", y)
        .set("width", w)
        .set("height", h)
        .set("data-kind", kind)
        .set("data-name", name)
        .set("data-start", format!("{:#x}", r.base))
        .set("data-size", format!("{:#x}", r.size))
        .add(Title::new(format!(
            "{name}: [{:#010x}-{:#010x}] {}",
            r.base,
            r.end() - 1,
            human_size(r.size)
        )))
}

/// Linear position of addresses inside one bank's band.
struct Scale {
    bank: MemRange,
}

impl Scale {
    fn x(&self, addr: u64) -> f64 {
        let span = WIDTH - 2.0 * MARGIN;
        MARGIN + span * (addr.saturating_sub(self.bank.base)) as f64 / self.bank.size as f64
    }

    /// x and width of `r` clipped to the bank, at least [`MIN_WIDTH`] wide.
    fn span(&self, r: MemRange) -> (f64, f64) {
        let start = r.base.max(self.bank.base);
        let end = r.end().min(self.bank.end());
        let x = self.x(start);
        let w = (self.x(end) - x).max(MIN_WIDTH);
        (x.min(WIDTH - MARGIN - w), w)
    }
}

/// Draw `map`; `title` heads the picture.
pub fn render(title: &str, map: &MemoryMap) -> Document {
    let mut y = 30.0;
    let mut doc = Document::new().add(
        Text::new(title)
            .set("x", MARGIN)
            .set("y", y)
            .set("font-size", 18)
            .set("font-family", "sans-serif")
            .set("data-kind", "title"),
    );
    y += 20.0;
    let banks = banks(map);
    for (i, bank) in banks.iter().enumerate() {
        if i > 0 {
            // The hole between this bank and the previous one.
            let prev = banks[i - 1];
            let hole = MemRange::new(prev.end(), bank.base - prev.end());
            let g = Group::new()
                .add(
                    range_rect("hole", "hole", hole, MARGIN, y, WIDTH - 2.0 * MARGIN, 18.0)
                        .set("fill", HOLE_COLOUR)
                        .set("stroke", "#999")
                        .set("stroke-dasharray", "4 3"),
                )
                .add(label(&range_label("hole", hole), MARGIN + 6.0, y + 13.0));
            doc = doc.add(g);
            y += 30.0;
        }
        let (g, h) = draw_bank(i, *bank, map, y);
        doc = doc.add(g);
        y += h + 20.0;
    }
    let (legend, h) = draw_legend(y);
    doc = doc.add(legend);
    y += h + 10.0;
    doc.set("viewBox", (0, 0, WIDTH, y))
        .set("width", WIDTH)
        .set("height", y)
        .set("font-family", "monospace")
}

fn label(text: &str, x: f64, y: f64) -> Text {
    Text::new(text)
        .set("x", x)
        .set("y", y)
        .set("font-size", 11)
        .set("font-family", "monospace")
}

/// One bank: header, zone band, memory band and the labels below; returns its height.
fn draw_bank(index: usize, bank: MemRange, map: &MemoryMap, top: f64) -> (Group, f64) {
    let scale = Scale { bank };
    let mut g = Group::new().set("data-kind", "bank-group");
    let mut y = top;
    g = g.add(
        range_rect(
            "bank",
            &format!("bank {index}"),
            bank,
            MARGIN,
            y + ZONE_H + 18.0,
            WIDTH - 2.0 * MARGIN,
            MEM_H,
        )
        .set("fill", "none")
        .set("stroke", "#333"),
    );
    g = g.add(
        label(
            &format!(
                "DRAM bank {index}: [{:#010x}-{:#010x}] {}",
                bank.base,
                bank.end() - 1,
                human_size(bank.size)
            ),
            MARGIN,
            y + 12.0,
        )
        .set("font-weight", "bold"),
    );
    y += 18.0;
    // Zones.
    for (name, z) in &map.zones {
        if z.end() <= bank.base || z.base >= bank.end() {
            continue;
        }
        let (x, w) = scale.span(*z);
        g = g.add(
            range_rect("zone", name, *z, x, y, w, ZONE_H)
                .set("fill", zone_colour(name))
                .set("stroke", "#555"),
        );
        g = g.add(label(&range_label(name, *z), x + 4.0, y + 16.0));
    }
    y += ZONE_H;
    // Memory: free ranges, then owned ranges on top.
    let in_bank = |r: &MemRange| r.end() > bank.base && r.base < bank.end();
    let mut labelled: Vec<(String, MemRange, &'static str)> = Vec::new();
    for r in map.free.iter().filter(|r| in_bank(r)) {
        let (x, w) = scale.span(*r);
        g = g.add(range_rect("free", "free", *r, x, y, w, MEM_H).set("fill", FREE_COLOUR));
        labelled.push(("free".into(), *r, FREE_COLOUR));
    }
    for (o, r) in map.owned.iter().filter(|(_, r)| in_bank(r)) {
        let (x, w) = scale.span(*r);
        g = g.add(
            range_rect("owner", o.name(), *r, x, y, w, MEM_H)
                .set("fill", owner_colour(*o))
                .set("stroke", "#222")
                .set("stroke-width", 0.5),
        );
        labelled.push((o.name().into(), *r, owner_colour(*o)));
    }
    y += MEM_H;
    // Labels: one line each, by address, with a leader from the range.
    labelled.sort_by_key(|(_, r, _)| r.base);
    let mut ly = y + 8.0;
    for (name, r, colour) in &labelled {
        ly += LINE_H;
        let (x, w) = scale.span(*r);
        let cx = x + w / 2.0;
        let tx = (cx + 12.0).min(WIDTH - 420.0);
        g = g.add(
            Line::new()
                .set("x1", cx)
                .set("y1", y)
                .set("x2", cx)
                .set("y2", ly - 4.0)
                .set("stroke", *colour)
                .set("stroke-width", 1),
        );
        g = g.add(
            Line::new()
                .set("x1", cx)
                .set("y1", ly - 4.0)
                .set("x2", tx - 2.0)
                .set("y2", ly - 4.0)
                .set("stroke", *colour)
                .set("stroke-width", 1),
        );
        g = g.add(label(&range_label(name, *r), tx, ly).set("data-kind", "label"));
    }
    (g, ly - top)
}

fn draw_legend(top: f64) -> (Group, f64) {
    let mut g = Group::new().set("data-kind", "legend");
    g = g.add(label("Legend", MARGIN, top + 12.0).set("font-weight", "bold"));
    let mut entries: Vec<(&str, &str)> = vec![("free memory", FREE_COLOUR)];
    entries.extend(ALL_OWNERS.iter().map(|o| (o.name(), owner_colour(*o))));
    entries.extend([
        ("zone DMA", zone_colour("DMA")),
        ("zone Normal", zone_colour("Normal")),
        ("zone HighMem", zone_colour("HighMem")),
        ("hole", HOLE_COLOUR),
    ]);
    let per_row = 4;
    let col_w = (WIDTH - 2.0 * MARGIN) / per_row as f64;
    for (i, (name, colour)) in entries.iter().enumerate() {
        let x = MARGIN + col_w * (i % per_row) as f64;
        let y = top + 22.0 + 18.0 * (i / per_row) as f64;
        g = g.add(
            Rectangle::new()
                .set("x", x)
                .set("y", y)
                .set("width", 14)
                .set("height", 12)
                .set("fill", *colour)
                .set("stroke", "#333"),
        );
        g = g.add(label(name, x + 20.0, y + 10.0).set("data-kind", "legend-entry"));
    }
    let rows = entries.len().div_ceil(per_row);
    (g, 22.0 + 18.0 * rows as f64)
}

/// `cargo xtask memmap [sim options] -o FILE`.
pub fn cmd_memmap(opts: &sim::SimOptions, out: &Path) -> Result<u8, String> {
    let run = sim::run(opts, false)?;
    for n in &run.notes {
        eprintln!("{n}");
    }
    let map = run.map.ok_or_else(|| {
        format!(
            "the simulated boot did not get through bootmem_init: {}",
            run.outcome
        )
    })?;
    let title = title(opts);
    svg::save(out, &render(&title, &map)).map_err(|e| format!("writing {}: {e}", out.display()))?;
    eprintln!("xtask: memmap: wrote {} ({})", out.display(), run.outcome);
    Ok(0)
}

fn title(opts: &sim::SimOptions) -> String {
    let mut t = format!(
        "{} with {}, {}",
        opts.board.name,
        human_size(opts.mem),
        match &opts.dtb {
            crate::dtb::DtbMode::None => "ATAGS".to_string(),
            crate::dtb::DtbMode::File(p) => format!("DTB {}", p.display()),
            crate::dtb::DtbMode::Test(t) => format!("test DTB {}", t.name()),
            _ => "generated DTB".to_string(),
        }
    );
    if let Some(c) = &opts.cmdline {
        t.push_str(&format!(", cmdline {c:?}"));
    }
    t.push_str(": physical memory after bootmem_init");
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtb::DtbMode;

    fn svg_for(board: &str, mem: u64, dtb: DtbMode) -> String {
        let opts = sim::SimOptions {
            board: crate::find_board(board).unwrap(),
            mem,
            cmdline: None,
            dtb,
            release: false,
            image: None,
            qemu_tree: None,
        };
        let run = sim::run(&opts, false).unwrap();
        render(&title(&opts), &run.map.unwrap()).to_string()
    }

    /// (kind, name, start, size) of every drawn range.
    fn ranges(svg: &str) -> Vec<(String, String, u64, u64)> {
        let doc = roxmltree::Document::parse(svg).expect("the SVG is well-formed XML");
        let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
        doc.descendants()
            .filter(|n| n.has_tag_name("rect") && n.attribute("data-start").is_some())
            .map(|n| {
                (
                    n.attribute("data-kind").unwrap().to_string(),
                    n.attribute("data-name").unwrap().to_string(),
                    hex(n.attribute("data-start").unwrap()),
                    hex(n.attribute("data-size").unwrap()),
                )
            })
            .collect()
    }

    fn texts(svg: &str) -> Vec<String> {
        let doc = roxmltree::Document::parse(svg).unwrap();
        doc.descendants()
            .filter(|n| n.has_tag_name("text"))
            .map(|n| n.text().unwrap_or("").trim().to_string())
            .collect()
    }

    #[test]
    fn sabrelite_2g_picture() {
        let svg = svg_for("sabrelite", 2 << 30, DtbMode::Auto);
        let r = ranges(&svg);
        let has = |kind: &str, name: &str, start: u64, size: u64| {
            r.iter()
                .any(|x| x.0 == kind && x.1 == name && x.2 == start && x.3 == size)
        };
        assert!(has("bank", "bank 0", 0x1000_0000, 2 << 30), "{r:#?}");
        assert!(has("zone", "Normal", 0x1000_0000, 768 << 20));
        assert!(has("zone", "HighMem", 0x4000_0000, 1280 << 20));
        // QEMU puts the DTB 128 MiB into RAM, with (size + 10000) * 2 bytes.
        assert!(r
            .iter()
            .any(|x| x.0 == "owner" && x.1 == "DTB" && x.2 == 0x1800_0000));
        // mem_map: 512 Ki pages of 16 bytes, top-down below the lowmem limit and the
        // 20 KiB of page tables paging_init took first.
        assert!(has("owner", "mem_map", 0x3f7f_b000, 8 << 20));
        assert!(has(
            "owner",
            "kernel image",
            0x1001_0000,
            r.iter().find(|x| x.1 == "kernel image").unwrap().3
        ));
        assert!(has(
            "owner",
            "reserved-memory (static)",
            0x1100_0000,
            0x1_0000
        ));
        assert!(has(
            "owner",
            "reserved-memory (dynamic)",
            0x8ff0_0000,
            0x10_0000
        ));
        assert!(r.iter().any(|x| x.0 == "free"));
        assert!(r.iter().any(|x| x.1 == "usemap"));
        let t = texts(&svg);
        for want in [
            "mem_map 0x3f7fb000 8 MiB",
            "HighMem 0x40000000 1280 MiB",
            "reserved-memory (static) 0x11000000 64 KiB",
        ] {
            assert!(t.iter().any(|x| x == want), "no label {want:?} in {t:#?}");
        }
        assert!(t.iter().any(|x| x.starts_with("DTB 0x18000000 ")));
        assert!(t.iter().any(|x| x == "Legend"));
    }

    #[test]
    fn atags_picture_has_boot_data_and_no_dtb() {
        let svg = svg_for("vexpress-a9", 512 << 20, DtbMode::None);
        let r = ranges(&svg);
        assert!(r
            .iter()
            .any(|x| x.1 == "boot data (stub, ATAGS page)" && x.2 == 0x6000_0000));
        assert!(!r.iter().any(|x| x.1 == "DTB"));
        assert!(!r.iter().any(|x| x.1 == "HighMem"));
    }

    #[test]
    fn nomap_hole_is_drawn() {
        let svg = svg_for("vexpress-a9", 512 << 20, DtbMode::AutoNomap);
        let r = ranges(&svg);
        assert!(r
            .iter()
            .any(|x| x.1 == "no-map" && x.2 == 0x6200_0000 && x.3 == 0x10_0000));
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_size(8 << 20), "8 MiB");
        assert_eq!(human_size(0x528e), "20.6 KiB");
        assert_eq!(human_size(96), "96 B");
        assert_eq!(human_size(0x105000), "1044 KiB");
        assert_eq!(human_size(1280 << 20), "1280 MiB");
    }
}
