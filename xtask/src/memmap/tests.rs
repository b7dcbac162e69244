//! Tests of the memory map: the ranges drawn, and a layout read back from the SVG.

use super::layout::{text_box, Anchor, BBox};
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
        cpus: 1,
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

/// A line or polyline: its `data-kind`, the label a leader belongs to, its points.
type DrawnLine = (String, Option<String>, Vec<(f64, f64)>);

/// What the layout test reads back from an SVG: its viewBox, every text's box (with
/// the id of a label), every line (with the label a leader belongs to) and every
/// drawn range.
struct Layout {
    view: BBox,
    texts: Vec<(Option<String>, String, BBox)>,
    lines: Vec<DrawnLine>,
    /// kind, name, `data-view`, label id, height.
    ranges: Vec<(String, String, Option<String>, String, f64)>,
    legend: Vec<String>,
    /// Legend captions.
    captions: usize,
}

fn layout(svg: &str) -> Layout {
    let doc = roxmltree::Document::parse(svg).expect("the SVG is well-formed XML");
    let root = doc.root_element();
    let num = |n: roxmltree::Node, a: &str| -> f64 {
        n.attribute(a)
            .unwrap_or_else(|| panic!("no {a} on {n:?}"))
            .parse()
            .unwrap()
    };
    let vb: Vec<f64> = root
        .attribute("viewBox")
        .unwrap()
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    let view = BBox {
        x0: vb[0],
        y0: vb[1],
        x1: vb[0] + vb[2],
        y1: vb[1] + vb[3],
    };
    let mut l = Layout {
        view,
        texts: Vec::new(),
        lines: Vec::new(),
        ranges: Vec::new(),
        legend: Vec::new(),
        captions: 0,
    };
    for n in doc.descendants().filter(|n| n.is_element()) {
        let kind = n.attribute("data-kind").unwrap_or("").to_string();
        match n.tag_name().name() {
            "text" => {
                let s = n.text().unwrap_or("").trim().to_string();
                let anchor = match n.attribute("text-anchor") {
                    Some("end") => Anchor::End,
                    None | Some("start") => Anchor::Start,
                    Some(a) => panic!("text-anchor {a} is not estimated"),
                };
                let b = text_box(
                    s.chars().count(),
                    num(n, "font-size"),
                    num(n, "x"),
                    num(n, "y"),
                    anchor,
                );
                l.captions += usize::from(kind == "caption");
                if kind == "legend-entry" {
                    l.legend.push(n.attribute("data-key").unwrap().to_string());
                }
                l.texts.push((n.attribute("id").map(str::to_string), s, b));
            }
            "line" => l.lines.push((
                kind,
                n.attribute("data-label").map(str::to_string),
                vec![(num(n, "x1"), num(n, "y1")), (num(n, "x2"), num(n, "y2"))],
            )),
            "polyline" => {
                let v: Vec<f64> = n
                    .attribute("points")
                    .unwrap()
                    .split([' ', ','])
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().unwrap())
                    .collect();
                let pts = v.chunks(2).map(|p| (p[0], p[1])).collect();
                l.lines
                    .push((kind, n.attribute("data-label").map(str::to_string), pts));
            }
            "rect" if matches!(kind.as_str(), "free" | "owner" | "zone" | "hole") => {
                l.ranges.push((
                    kind,
                    n.attribute("data-name").unwrap().to_string(),
                    n.attribute("data-view").map(str::to_string),
                    n.attribute("data-label").unwrap().to_string(),
                    num(n, "height"),
                ))
            }
            _ => {}
        }
    }
    l
}

/// Every layout rule of the picture, for one boot.
fn check_layout(what: &str, svg: &str) {
    let l = layout(svg);
    let inside =
        |b: &BBox| b.x0 >= l.view.x0 && b.y0 >= l.view.y0 && b.x1 <= l.view.x1 && b.y1 <= l.view.y1;
    // No two texts overlap, and every text is inside the picture.
    for (i, (_, s, b)) in l.texts.iter().enumerate() {
        assert!(inside(b), "{what}: {s:?} {b:?} is outside the viewBox");
        for (_, t, c) in &l.texts[i + 1..] {
            assert!(!b.overlaps(c), "{what}: {s:?} {b:?} overlaps {t:?} {c:?}");
        }
    }
    // No line crosses a text; a leader ends just short of its own label.
    let mut leaders = 0;
    for (kind, label, pts) in &l.lines {
        for seg in pts.windows(2) {
            for (id, s, b) in &l.texts {
                if id.is_some() && id == label {
                    continue;
                }
                assert!(
                    !b.hit_by_segment(seg[0], seg[1]),
                    "{what}: a {kind} line {seg:?} (for {label:?}) crosses {s:?} {b:?}"
                );
            }
        }
        if kind == "leader" {
            leaders += 1;
            let (_, s, b) = l
                .texts
                .iter()
                .find(|t| t.0.is_some() && t.0 == *label)
                .unwrap_or_else(|| panic!("{what}: a leader for {label:?}, no such label"));
            let end = *pts.last().unwrap();
            let dx = (end.0 - b.x0).abs().min((end.0 - b.x1).abs());
            assert!(
                dx <= 2.0 * LEADER_GAP && end.1 > b.y0 && end.1 < b.y1,
                "{what}: the leader of {s:?} ends at {end:?}, away from {b:?}"
            );
        }
    }
    assert!(leaders > 0, "{what}: no leader lines");
    // Every range has a label in the picture, and is readable on the bar or in the inset.
    for (kind, name, _, id, _) in &l.ranges {
        let (_, s, _) = l
            .texts
            .iter()
            .find(|t| t.0.as_deref() == Some(id.as_str()))
            .unwrap_or_else(|| panic!("{what}: the {kind} {name} has no label {id}"));
        assert!(s.starts_with(name.as_str()), "{what}: {s:?} labels {name}");
        let tallest = l
            .ranges
            .iter()
            .filter(|r| r.3 == *id)
            .map(|r| r.4)
            .fold(0.0, f64::max);
        assert!(tallest >= 4.0, "{what}: {s:?} is {tallest} px tall at most");
    }
    // The legend lists what is drawn, and only that.
    let mut drawn: Vec<String> = l.ranges.iter().map(|r| legend_key(&r.0, &r.1)).collect();
    drawn.sort();
    drawn.dedup();
    let mut legend = l.legend.clone();
    legend.sort();
    assert_eq!(legend, drawn, "{what}: legend vs kinds drawn");
    // Every legend entry has its caption beside it.
    assert_eq!(l.captions, legend.len(), "{what}: captions");
}

#[test]
fn layouts_read_well() {
    for (board, mem, dtb) in [
        ("vexpress-a9", 128 << 20, DtbMode::Auto),
        ("vexpress-a9", 512 << 20, DtbMode::Auto),
        ("vexpress-a9", 1 << 30, DtbMode::Auto),
        ("sabrelite", 2 << 30, DtbMode::Auto),
        ("vexpress-a9", 512 << 20, DtbMode::AutoNomap),
        ("vexpress-a9", 512 << 20, DtbMode::None),
        (
            "vexpress-a9",
            256 << 20,
            DtbMode::Test(crate::dtb::TestTree::Latin1),
        ),
    ] {
        let what = format!("{board} {} {dtb:?}", human_size(mem));
        check_layout(&what, &svg_for(board, mem, dtb));
    }
}

#[test]
fn small_ranges_are_in_the_inset() {
    let l = layout(&svg_for("vexpress-a9", 1 << 30, DtbMode::Auto));
    for name in ["mem_map", "usemap", "boot allocations", "DTB"] {
        assert!(
            l.ranges
                .iter()
                .any(|r| r.1 == name && r.2.as_deref() == Some("inset") && r.4 >= 16.0),
            "{name} is not in the inset"
        );
    }
}

#[test]
fn legend_has_only_what_is_drawn() {
    // 128 MiB: no HighMem, no DTB-less boot data caption needed beyond what is there.
    let svg = svg_for("vexpress-a9", 128 << 20, DtbMode::Auto);
    let l = layout(&svg);
    assert!(!l
        .legend
        .iter()
        .any(|k| k == "zone:HighMem" || k == "owner:no-map" || k == "hole"));
    let svg = svg_for("vexpress-a9", 512 << 20, DtbMode::AutoNomap);
    assert!(layout(&svg).legend.iter().any(|k| k == "owner:no-map"));
    let t = texts(&svg_for("vexpress-a9", 1 << 30, DtbMode::Auto));
    assert!(t
        .iter()
        .any(|x| x.starts_with("other memblock allocations made during boot")));
}

#[test]
fn the_layout_check_catches_overlaps_and_crossings() {
    let fails = |body: &str| {
        let svg = format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 400 200">{body}</svg>"##
        );
        std::panic::catch_unwind(|| check_layout("hand-made", &svg)).is_err()
    };
    let range = r##"<rect data-kind="free" data-name="free" data-label="a" height="10" x="0" y="0" width="5"/>
        <text data-kind="legend-entry" data-key="free" font-size="11" x="0" y="190">free</text>
        <text data-kind="caption" font-size="11" x="300" y="190">caption</text>"##;
    let leader = r##"<polyline data-kind="leader" data-label="a" points="5 5 17 36"/>"##;
    let label = r##"<text id="a" font-size="11" x="20" y="40">free 0x0 1 B</text>"##;
    // As drawn: passes.
    assert!(!fails(&format!("{range}{leader}{label}")));
    // Another text over the label.
    assert!(fails(&format!(
        r##"{range}{leader}{label}<text font-size="11" x="30" y="44">x</text>"##
    )));
    // A line through the label.
    assert!(fails(&format!(
        r##"{range}{leader}{label}<line x1="0" y1="36" x2="200" y2="36"/>"##
    )));
    // A leader that ends far from its label, a label outside the picture.
    assert!(fails(&format!(
        r##"{range}<polyline data-kind="leader" data-label="a" points="5 5 10 80"/>{label}"##
    )));
    assert!(fails(&format!(
        r##"{range}{leader}<text id="a" font-size="11" x="380" y="40">free 0x0 1 B</text>"##
    )));
}

#[test]
fn two_banks_and_high_addresses_read_well() {
    check_layout(
        "virt-lpae 6 GiB",
        &svg_for("virt-lpae", 6 << 30, DtbMode::Auto),
    );
    // Two banks with a hole between them, drawn from a hand-made map.
    let mib = |n: u64| n << 20;
    let r = |base: u64, size: u64| MemRange::new(base, size);
    let map = MemoryMap {
        memory: vec![
            (r(0x6000_0000, mib(256)), false),
            (r(0x8000_0000, mib(256)), false),
        ],
        zones: vec![("Normal", r(0x6000_0000, mib(256 + 512)))],
        owned: vec![
            (Owner::KernelImage, r(0x6001_0000, mib(1))),
            (Owner::MemMap, r(0x8f00_0000, mib(1))),
            (Owner::BootAlloc, r(0x8f10_0000, 0x5000)),
        ],
        free: vec![
            r(0x6000_0000, 0x1_0000),
            r(0x6011_0000, 0x6000_0000 + mib(256) - 0x6011_0000),
            r(0x8000_0000, mib(240)),
            r(0x8f10_5000, 0x9000_0000 - 0x8f10_5000),
        ],
    };
    let svg = render("two banks", &map).to_string();
    check_layout("two banks", &svg);
    // A title longer than the picture is wide (a long --cmdline): the picture widens.
    let long = render(&"a long command line ".repeat(10), &map).to_string();
    check_layout("a long title", &long);
    let l = layout(&svg);
    assert!(l.ranges.iter().any(|x| x.0 == "hole"));
    assert!(l.legend.iter().any(|k| k == "hole"));
}
