//! Tests of the memory map: the ranges drawn, and a layout read back from the SVG.

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
