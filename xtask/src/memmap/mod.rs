//! `cargo xtask memmap`: run the simulated boot ([`crate::sim`]) and draw the physical
//! memory map it ends with as SVG (with the `svg` crate). Each DRAM bank is a vertical
//! bar at a linear scale, addresses growing downwards, with its zones beside it and
//! holes between banks; reserved ranges are coloured by owner, free memory green.
//! Ranges too small to see at that scale, and the top of lowmem where memblock places
//! `mem_map`, the usemaps and the page tables, are drawn again in an inset to the
//! right, each at a height that grows with the log of its size, with address ticks and
//! guide lines to where they lie on the bar. Every range has one label (in a column
//! beside the bar or the inset, pushed apart so that no two overlap, with a leader
//! line that crosses no label); the legend lists only the kinds drawn, each with a
//! caption.
//!
//! Every drawn range carries `data-kind`, `data-name`, `data-start`, `data-size` and
//! `data-label` (the id of its label) attributes, every leader `data-label`, so tests
//! (and other tools) can read the picture back.

mod layout;
mod legend;
#[cfg(test)]
mod tests;

use std::cell::Cell;
use std::path::Path;

use svg::node::element::{Line, Polyline, Rectangle, Text, Title};
use svg::{Document, Node};
use zonekit_core::addr::MemRange;

use crate::sim::{self, MemoryMap, Owner};
use layout::{inset_height, stack, text_box, windows, Anchor, ASCENT, DESCENT};

/// Width of the picture.
const WIDTH: f64 = 1240.0;
/// Left margin.
const MARGIN: f64 = 40.0;
/// Font size of labels and of the inset's address ticks.
const LABEL_FS: f64 = 11.0;
const TICK_FS: f64 = 10.0;
/// Pitch of a label column.
const LINE_H: f64 = 15.0;
/// Height of a bank's bar.
const BAR_H: f64 = 560.0;
/// The columns, left to right: the bar's labels (right-aligned at this x), the zone
/// band, the bar, the guide lines, the inset's ticks (right-aligned at `TICK_RIGHT`),
/// the inset, the inset's labels.
const MAIN_LABEL_RIGHT: f64 = 400.0;
const ZONE_X: f64 = 460.0;
const ZONE_W: f64 = 14.0;
const BAR_X: f64 = ZONE_X + ZONE_W;
const BAR_W: f64 = 70.0;
const GUIDE_END: f64 = 636.0;
const TICK_RIGHT: f64 = 714.0;
const INSET_X: f64 = 722.0;
const INSET_W: f64 = 56.0;
const INSET_LABEL_X: f64 = 830.0;
/// A range shorter than this on the bar goes to the inset.
const SMALL_H: f64 = 6.0;
/// Space between two windows of the inset.
const WINDOW_GAP: f64 = 28.0;
/// How far a leader line stops short of its label.
const LEADER_GAP: f64 = 3.0;

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

/// The legend key of a drawn kind: `free`, `hole`, `owner:NAME`, `zone:NAME`.
fn legend_key(kind: &str, name: &str) -> String {
    match kind {
        "owner" | "zone" => format!("{kind}:{name}"),
        _ => kind.to_string(),
    }
}

/// A drawn range with its data attributes and a hover title.
#[allow(clippy::too_many_arguments)]
fn range_rect(
    kind: &str,
    name: &str,
    r: MemRange,
    label: &str,
    x: f64,
    y: f64,
    w: f64,
    h: f64,
) -> Rectangle {
    Rectangle::new()
        .set("x", x)
        .set("y", y)
        .set("width", w)
        .set("height", h)
        .set("data-kind", kind)
        .set("data-name", name)
        .set("data-start", format!("{:#x}", r.base))
        .set("data-size", format!("{:#x}", r.size))
        .set("data-label", label)
        .add(Title::new(format!(
            "{name}: [{:#010x}-{:#010x}] {}",
            r.base,
            r.end() - 1,
            human_size(r.size)
        )))
}

/// The picture being drawn: the document, the next label id and the kinds drawn.
struct Canvas {
    doc: Document,
    next_id: usize,
    drawn: Vec<String>,
    /// The right edge of the widest text so far.
    right: Cell<f64>,
}

impl Canvas {
    fn id(&mut self) -> String {
        self.next_id += 1;
        format!("label-{}", self.next_id)
    }

    fn add<T: Into<Box<dyn Node>>>(&mut self, node: T) {
        self.doc.append(node);
    }

    /// A text at font size `size`, its baseline at `y`; the picture grows to hold it.
    fn text(&self, s: &str, x: f64, y: f64, size: f64, anchor: Anchor) -> Text {
        let b = text_box(s.chars().count(), size, x, y, anchor);
        self.right.set(self.right.get().max(b.x1));
        Text::new(s)
            .set("x", x)
            .set("y", y)
            .set("font-size", size)
            .set("font-family", "monospace")
            .set(
                "text-anchor",
                match anchor {
                    Anchor::Start => "start",
                    Anchor::End => "end",
                },
            )
    }

    /// Note that a range of `kind`/`name` is drawn (for the legend).
    fn drawn(&mut self, kind: &str, name: &str) {
        let key = legend_key(kind, name);
        if !self.drawn.contains(&key) {
            self.drawn.push(key);
        }
    }
}

/// Baseline of a text of font size `size` whose box is centred on `y`.
fn baseline(y: f64, size: f64) -> f64 {
    y + (ASCENT - DESCENT) / 2.0 * size
}

/// Draw `map`; `title` heads the picture.
pub fn render(title: &str, map: &MemoryMap) -> Document {
    let mut c = Canvas {
        doc: Document::new(),
        next_id: 0,
        drawn: Vec::new(),
        right: Cell::new(WIDTH),
    };
    c.add(
        c.text(title, MARGIN, 30.0, 18.0, Anchor::Start)
            .set("font-family", "sans-serif")
            .set("data-kind", "title"),
    );
    for (i, line) in [
        "Each DRAM bank is drawn at a linear scale, addresses growing downwards, its zones on the left.",
        "Ranges too small to see there, and the top of lowmem where memblock allocates, are drawn again",
        "in the inset on the right, each as tall as the log of its size; dashed guides show where they lie.",
    ]
    .iter()
    .enumerate()
    {
        c.add(
            c.text(line, MARGIN, 52.0 + 14.0 * i as f64, LABEL_FS, Anchor::Start)
                .set("data-kind", "note"),
        );
    }
    let mut y = 94.0;
    let banks = banks(map);
    for (i, bank) in banks.iter().enumerate() {
        if i > 0 {
            // The hole between this bank and the previous one.
            let prev = banks[i - 1];
            let hole = MemRange::new(prev.end(), bank.base - prev.end());
            let id = c.id();
            c.add(
                range_rect("hole", "hole", hole, &id, BAR_X, y, BAR_W, 24.0)
                    .set("fill", HOLE_COLOUR)
                    .set("stroke", "#999")
                    .set("stroke-dasharray", "4 3"),
            );
            c.drawn("hole", "hole");
            c.add(
                c.text(
                    &range_label("hole", hole),
                    MAIN_LABEL_RIGHT,
                    baseline(y + 12.0, LABEL_FS),
                    LABEL_FS,
                    Anchor::End,
                )
                .set("id", id)
                .set("data-kind", "label"),
            );
            y += 44.0;
        }
        y = draw_bank(&mut c, i, *bank, map, y) + 20.0;
    }
    y = draw_legend(&mut c, y);
    let width = WIDTH.max(c.right.get() + MARGIN / 2.0).ceil();
    c.doc
        .set("viewBox", (0, 0, width, y))
        .set("width", width)
        .set("height", y)
        .set("font-family", "monospace")
}

/// One range of a bank, clipped to it, with the id of its label.
struct Item {
    kind: &'static str,
    name: String,
    range: MemRange,
    colour: &'static str,
    /// Whether it goes to the inset (labelled there).
    small: bool,
    id: String,
}

/// A label to place in a column: where it would like its centre, its text, its id,
/// where its leader starts, the leader's colour.
struct Pending {
    want: f64,
    text: String,
    id: String,
    from: (f64, f64),
    colour: &'static str,
}

/// Stack `labels` in a column (right-aligned at `x` with `Anchor::End`, left-aligned
/// with `Start`), each with a leader from its range that bends at `bend` (the x where
/// the leader leaves the range's side) and ends just short of the label; returns the
/// lowest label's bottom.
fn place_labels(
    c: &mut Canvas,
    mut labels: Vec<Pending>,
    x: f64,
    anchor: Anchor,
    bend: f64,
    top: f64,
    bottom: f64,
) -> f64 {
    labels.sort_by(|a, b| a.want.total_cmp(&b.want));
    let wanted: Vec<f64> = labels.iter().map(|l| l.want - LINE_H / 2.0).collect();
    let ys = stack(&wanted, &vec![LINE_H; labels.len()], 0.0, top, bottom);
    let end_x = match anchor {
        Anchor::End => x + LEADER_GAP,
        Anchor::Start => x - LEADER_GAP,
    };
    let elbow_x = match anchor {
        Anchor::End => x + 12.0,
        Anchor::Start => x - 12.0,
    };
    let mut low = top;
    for (l, ty) in labels.iter().zip(ys) {
        let cy = ty + LINE_H / 2.0;
        let points = vec![l.from, (bend, l.from.1), (elbow_x, cy), (end_x, cy)];
        c.add(
            Polyline::new()
                .set("points", points)
                .set("fill", "none")
                .set("stroke", l.colour)
                .set("stroke-width", 1)
                .set("data-kind", "leader")
                .set("data-label", l.id.as_str()),
        );
        c.add(
            c.text(&l.text, x, baseline(cy, LABEL_FS), LABEL_FS, anchor)
                .set("id", l.id.as_str())
                .set("data-kind", "label"),
        );
        low = low.max(ty + LINE_H);
    }
    low
}

/// One bank: header, zone band, bar, inset and labels; returns its bottom.
fn draw_bank(c: &mut Canvas, index: usize, bank: MemRange, map: &MemoryMap, top: f64) -> f64 {
    let bar_top = top + 30.0;
    let ya = |addr: u64| {
        let a = addr.clamp(bank.base, bank.end());
        bar_top + BAR_H * (a - bank.base) as f64 / bank.size as f64
    };
    let mut bottom = bar_top + BAR_H;
    c.add(
        c.text(
            &format!(
                "DRAM bank {index}: [{:#010x}-{:#010x}] {}",
                bank.base,
                bank.end() - 1,
                human_size(bank.size)
            ),
            MARGIN,
            top + 10.0,
            LABEL_FS,
            Anchor::Start,
        )
        .set("font-weight", "bold")
        .set("data-kind", "heading"),
    );
    let bank_id = c.id();
    c.add(
        range_rect(
            "bank",
            &format!("bank {index}"),
            bank,
            &bank_id,
            BAR_X,
            bar_top,
            BAR_W,
            BAR_H,
        )
        .set("fill", "none")
        .set("stroke", "#333"),
    );
    let mut main_labels: Vec<Pending> = Vec::new();
    // Zones, labelled beside the bar.
    for (name, z) in &map.zones {
        if z.end() <= bank.base || z.base >= bank.end() {
            continue;
        }
        let (y0, y1) = (ya(z.base), ya(z.end()));
        let id = c.id();
        c.add(
            range_rect("zone", name, *z, &id, ZONE_X, y0, ZONE_W, y1 - y0)
                .set("fill", zone_colour(name))
                .set("stroke", "#555"),
        );
        c.drawn("zone", name);
        main_labels.push(Pending {
            want: (y0 + y1) / 2.0,
            text: range_label(name, *z),
            id,
            from: (ZONE_X, (y0 + y1) / 2.0),
            colour: "#555",
        });
    }
    // The bank's ranges by address: free, then owned.
    let clip = |r: &MemRange| {
        let s = r.base.max(bank.base);
        let e = r.end().min(bank.end());
        (e > s).then(|| MemRange::new(s, e - s))
    };
    let mut items: Vec<Item> = Vec::new();
    for r in map.free.iter().filter_map(clip) {
        items.push(Item {
            kind: "free",
            name: "free".into(),
            range: r,
            colour: FREE_COLOUR,
            small: false,
            id: String::new(),
        });
    }
    for (o, r) in &map.owned {
        if let Some(r) = clip(r) {
            items.push(Item {
                kind: "owner",
                name: o.name().into(),
                range: r,
                colour: owner_colour(*o),
                // memblock's allocations at the top of lowmem always go to the inset.
                small: matches!(o, Owner::MemMap | Owner::Usemap | Owner::BootAlloc),
                id: String::new(),
            });
        }
    }
    items.sort_by_key(|i| i.range.base);
    for it in &mut items {
        it.small |= ya(it.range.end()) - ya(it.range.base) < SMALL_H;
        it.id = c.id();
    }
    for it in &items {
        let (y0, y1) = (ya(it.range.base), ya(it.range.end()));
        let mut rect = range_rect(
            it.kind,
            &it.name,
            it.range,
            &it.id,
            BAR_X,
            y0,
            BAR_W,
            y1 - y0,
        )
        .set("fill", it.colour)
        .set("data-view", "bar");
        if it.kind == "owner" {
            rect = rect.set("stroke", "#222").set("stroke-width", 0.3);
        }
        c.add(rect);
        c.drawn(it.kind, &it.name);
        if !it.small {
            main_labels.push(Pending {
                want: (y0 + y1) / 2.0,
                text: range_label(&it.name, it.range),
                id: it.id.clone(),
                from: (BAR_X, (y0 + y1) / 2.0),
                colour: it.colour,
            });
        }
    }
    let low = place_labels(
        c,
        main_labels,
        MAIN_LABEL_RIGHT,
        Anchor::End,
        ZONE_X - 10.0,
        bar_top - 4.0,
        bar_top + BAR_H + 4.0,
    );
    bottom = bottom.max(low);
    let small: Vec<bool> = items.iter().map(|i| i.small).collect();
    let wins = windows(&small);
    if !wins.is_empty() {
        let low = draw_inset(c, &items, &wins, &ya, bar_top);
        bottom = bottom.max(low);
    }
    bottom
}

/// The inset: each window of small ranges stacked beside the bar at a log scale, with
/// ticks, guides to the bar and labels; returns its bottom.
fn draw_inset(
    c: &mut Canvas,
    items: &[Item],
    wins: &[(usize, usize)],
    ya: &dyn Fn(u64) -> f64,
    bar_top: f64,
) -> f64 {
    c.add(
        c.text(
            "inset (log scale)",
            INSET_X,
            bar_top - 20.0,
            LABEL_FS,
            Anchor::Start,
        )
        .set("font-weight", "bold")
        .set("data-kind", "heading"),
    );
    let heights: Vec<f64> = wins
        .iter()
        .map(|(a, b)| {
            items[*a..=*b]
                .iter()
                .map(|i| inset_height(i.range.size))
                .sum()
        })
        .collect();
    let wanted: Vec<f64> = wins
        .iter()
        .zip(&heights)
        .map(|((a, b), h)| (ya(items[*a].range.base) + ya(items[*b].range.end())) / 2.0 - h / 2.0)
        .collect();
    let tops = stack(&wanted, &heights, WINDOW_GAP, bar_top, bar_top + BAR_H);
    let mut labels: Vec<Pending> = Vec::new();
    let mut low = bar_top;
    for (((a, b), h), wtop) in wins.iter().zip(&heights).zip(tops) {
        let (start, end) = (items[*a].range.base, items[*b].range.end());
        // Guides from where the window lies on the bar.
        for (from, to) in [(ya(start), wtop), (ya(end), wtop + h)] {
            c.add(
                Line::new()
                    .set("x1", BAR_X + BAR_W)
                    .set("y1", from)
                    .set("x2", GUIDE_END)
                    .set("y2", to)
                    .set("stroke", "#888")
                    .set("stroke-width", 0.8)
                    .set("stroke-dasharray", "3 2")
                    .set("data-kind", "guide"),
            );
        }
        let mut y = wtop;
        let tick = |c: &mut Canvas, y: f64, addr: u64| {
            c.add(
                Line::new()
                    .set("x1", INSET_X - 6.0)
                    .set("y1", y)
                    .set("x2", INSET_X)
                    .set("y2", y)
                    .set("stroke", "#333")
                    .set("data-kind", "tick"),
            );
            c.add(
                c.text(
                    &format!("{addr:#010x}"),
                    TICK_RIGHT,
                    baseline(y, TICK_FS),
                    TICK_FS,
                    Anchor::End,
                )
                .set("fill", "#444")
                .set("data-kind", "tick-label"),
            );
        };
        for it in &items[*a..=*b] {
            let ih = inset_height(it.range.size);
            let mut rect = range_rect(it.kind, &it.name, it.range, &it.id, INSET_X, y, INSET_W, ih)
                .set("fill", it.colour)
                .set("data-view", "inset");
            if it.kind == "owner" {
                rect = rect.set("stroke", "#222").set("stroke-width", 0.5);
            }
            c.add(rect);
            tick(c, y, it.range.base);
            labels.push(Pending {
                want: y + ih / 2.0,
                text: range_label(&it.name, it.range),
                id: it.id.clone(),
                from: (INSET_X + INSET_W, y + ih / 2.0),
                colour: it.colour,
            });
            y += ih;
        }
        tick(c, y, end);
        c.add(
            Rectangle::new()
                .set("x", INSET_X)
                .set("y", wtop)
                .set("width", INSET_W)
                .set("height", *h)
                .set("fill", "none")
                .set("stroke", "#333")
                .set("data-kind", "inset-window"),
        );
        low = low.max(y + 6.0);
    }
    let l = place_labels(
        c,
        labels,
        INSET_LABEL_X,
        Anchor::Start,
        INSET_X + INSET_W + 10.0,
        bar_top - 4.0,
        bar_top + BAR_H + 4.0,
    );
    low.max(l)
}

/// The legend below the banks: an entry per kind drawn, with its caption; returns
/// the bottom.
fn draw_legend(c: &mut Canvas, top: f64) -> f64 {
    let mut entries: Vec<(String, &'static str, &'static str, String)> = Vec::new();
    let mut push = |key: String, name: &'static str, colour: &'static str, caption: String| {
        if c.drawn.contains(&key) {
            entries.push((key, name, colour, caption));
        }
    };
    push(
        "free".into(),
        "free memory",
        FREE_COLOUR,
        legend::FREE_CAPTION.into(),
    );
    for o in ALL_OWNERS {
        push(
            legend_key("owner", o.name()),
            o.name(),
            owner_colour(o),
            legend::owner_caption(o),
        );
    }
    for z in ["DMA", "Normal", "HighMem"] {
        let name = match z {
            "DMA" => "zone DMA",
            "Normal" => "zone Normal",
            _ => "zone HighMem",
        };
        push(
            legend_key("zone", z),
            name,
            zone_colour(z),
            legend::zone_caption(z).into(),
        );
    }
    push(
        "hole".into(),
        "hole",
        HOLE_COLOUR,
        legend::HOLE_CAPTION.into(),
    );
    c.add(
        c.text("Legend", MARGIN, top + 12.0, LABEL_FS, Anchor::Start)
            .set("font-weight", "bold")
            .set("data-kind", "heading"),
    );
    let name_w = 30.0 * layout::CHAR_W * LABEL_FS;
    for (i, (key, name, colour, caption)) in entries.iter().enumerate() {
        let y = top + 22.0 + 18.0 * i as f64;
        c.add(
            Rectangle::new()
                .set("x", MARGIN)
                .set("y", y)
                .set("width", 14)
                .set("height", 12)
                .set("fill", *colour)
                .set("stroke", "#333")
                .set("data-kind", "legend-swatch"),
        );
        c.add(
            c.text(name, MARGIN + 20.0, y + 10.0, LABEL_FS, Anchor::Start)
                .set("data-kind", "legend-entry")
                .set("data-key", key.as_str()),
        );
        c.add(
            c.text(
                caption,
                MARGIN + 20.0 + name_w,
                y + 10.0,
                LABEL_FS,
                Anchor::Start,
            )
            .set("fill", "#333")
            .set("data-kind", "caption"),
        );
    }
    top + 22.0 + 18.0 * entries.len() as f64 + 10.0
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
