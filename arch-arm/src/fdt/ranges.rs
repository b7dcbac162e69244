//! The tree's fixed ranges, read again from the blob each time they are used: memory
//! banks (and what lies above `phys_addr_max`), static `/reserved-memory` children and
//! `/memreserve/`. Nothing copies them into a list, so no list bounds how many a tree
//! may have; memblock's table is the only limit, as in Linux. [`FdtMemory::parse`]
//! validated the whole blob first, so these walks meet no error (one would end them).

use super::*;

/// A fixed range of the tree, in tree order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdtRange {
    /// A memory bank at or below `phys_addr_max`, as given (not page-aligned); a bank
    /// crossing it is cut to end at `phys_addr_max + 1`.
    Bank(MemRange),
    /// Memory above `phys_addr_max`, not used (a whole bank, or the part of a bank
    /// beyond the limit, right after that bank's [`FdtRange::Bank`]).
    Dropped(MemRange),
    /// A `reg` entry of a `/reserved-memory` child.
    Reserved {
        /// The range.
        range: MemRange,
        /// `no-map`.
        no_map: bool,
    },
}

/// The `reg` entries of a node still to report.
#[derive(Clone, Copy)]
struct Pending<'a> {
    reg: &'a [u8],
    at: usize,
    /// `None` for a memory node, `Some(no_map)` for a reserved-memory child.
    reserved: Option<bool>,
}

/// Iterator over [`FdtRange`]s ([`FdtMemory::ranges`]): the same walk as the parse,
/// with the same choice of memory nodes, `/chosen` and `/reserved-memory`.
pub struct FdtRanges<'a> {
    bytes: &'a [u8],
    header: FdtHeader,
    tokens: FdtTokens<'a>,
    cells: (u32, u32),
    max: PhysAddr,
    depth: usize,
    top: Top,
    tops: TopNodes,
    /// The depth-2 node: `device_type = "memory"`, available, `reg`.
    memory: (bool, bool, Option<&'a [u8]>),
    /// The depth-3 `/reserved-memory` child: available, `reg`, `no-map`.
    child: (bool, Option<&'a [u8]>, bool),
    pending: Option<Pending<'a>>,
    dropped: Option<MemRange>,
    done: bool,
}

impl<'a> FdtRanges<'a> {
    pub(super) fn new(m: &FdtMemory<'a>) -> Self {
        Self {
            bytes: m.bytes,
            header: m.header,
            tokens: FdtTokens::new(m.bytes, &m.header),
            cells: (m.address_cells, m.size_cells),
            max: m.phys_addr_max,
            depth: 0,
            top: Top::Other,
            tops: TopNodes::default(),
            memory: (false, true, None),
            child: (true, None, false),
            pending: None,
            dropped: None,
            done: false,
        }
    }

    /// The next entry of the pending `reg`, if any.
    fn next_entry(&mut self) -> Option<FdtRange> {
        let (ac, sc) = self.cells;
        let entry = 4 * (ac + sc) as usize;
        while let Some(p) = self.pending.as_mut() {
            let Some(e) = p.reg.get(p.at..p.at + entry) else {
                self.pending = None;
                break;
            };
            p.at += entry;
            let (Ok(base), Ok(size)) = (read_cells(e, 0, ac), read_cells(e, 4 * ac as usize, sc))
            else {
                continue;
            };
            if size == 0 || base.checked_add(size).is_none() {
                continue;
            }
            let r = MemRange::new(base, size);
            if let Some(no_map) = p.reserved {
                return Some(FdtRange::Reserved { range: r, no_map });
            }
            match split_bank(r, self.max) {
                (Some(keep), drop) => {
                    self.dropped = drop;
                    return Some(FdtRange::Bank(keep));
                }
                (None, Some(drop)) => return Some(FdtRange::Dropped(drop)),
                (None, None) => {}
            }
        }
        None
    }

    /// Read tokens until a node with `reg` entries to report ends.
    fn advance(&mut self) -> Result<bool, FdtError> {
        loop {
            match self.tokens.next_token()?.1 {
                FdtToken::End => return Ok(false),
                FdtToken::BeginNode(raw) => {
                    self.depth += 1;
                    if self.depth == 2 {
                        self.top = self.tops.classify(raw).0;
                        self.memory = (false, true, None);
                    } else if self.depth == 3 {
                        self.child = (true, None, false);
                    }
                }
                FdtToken::Prop { nameoff, value: v } => {
                    let name = fdt_string(self.bytes, &self.header, nameoff)?;
                    match (self.depth, self.top, name) {
                        (2, Top::Other, b"device_type") => {
                            self.memory.0 = prop_cstr(v) == b"memory"
                        }
                        (2, Top::Other, b"status") => self.memory.1 = is_okay(v),
                        (2, Top::Other, b"reg") => self.memory.2 = Some(v),
                        (3, Top::ReservedMemory, b"status") => self.child.0 = is_okay(v),
                        (3, Top::ReservedMemory, b"reg") => self.child.1 = Some(v),
                        (3, Top::ReservedMemory, b"no-map") => self.child.2 = true,
                        _ => {}
                    }
                }
                FdtToken::EndNode => {
                    let pending = match (self.depth, self.top) {
                        (2, Top::Other) => match self.memory {
                            (true, true, Some(reg)) => Some((reg, None)),
                            _ => None,
                        },
                        (3, Top::ReservedMemory) => match self.child {
                            (true, Some(reg), no_map) => Some((reg, Some(no_map))),
                            _ => None,
                        },
                        _ => None,
                    };
                    if self.depth == 2 {
                        self.top = Top::Other;
                    }
                    self.depth = self.depth.saturating_sub(1);
                    if let Some((reg, reserved)) = pending {
                        self.pending = Some(Pending {
                            reg,
                            at: 0,
                            reserved,
                        });
                        return Ok(true);
                    }
                }
                FdtToken::Nop => {}
            }
        }
    }
}

impl Iterator for FdtRanges<'_> {
    type Item = FdtRange;

    fn next(&mut self) -> Option<FdtRange> {
        loop {
            if let Some(d) = self.dropped.take() {
                return Some(FdtRange::Dropped(d));
            }
            if let Some(r) = self.next_entry() {
                return Some(r);
            }
            if self.done {
                return None;
            }
            // A validated blob gives no error; should one occur, the walk ends.
            self.done = !matches!(self.advance(), Ok(true));
        }
    }
}

impl<'a> FdtMemory<'a> {
    /// Every fixed range of the tree, in tree order (read from the blob).
    pub fn ranges(&self) -> FdtRanges<'a> {
        FdtRanges::new(self)
    }

    /// The DRAM banks at or below `phys_addr_max`, in DTB order, as given (not
    /// page-aligned).
    pub fn banks(&self) -> impl Iterator<Item = MemRange> + 'a {
        self.ranges().filter_map(|r| match r {
            FdtRange::Bank(b) => Some(b),
            _ => None,
        })
    }

    /// Memory above `phys_addr_max` that is not used (whole banks, or the part of a
    /// bank beyond the limit).
    pub fn dropped(&self) -> impl Iterator<Item = MemRange> + 'a {
        self.ranges().filter_map(|r| match r {
            FdtRange::Dropped(d) => Some(d),
            _ => None,
        })
    }

    /// `/reserved-memory` children with `reg`: (range, `no-map`).
    pub fn reserved_static(&self) -> impl Iterator<Item = (MemRange, bool)> + 'a {
        self.ranges().filter_map(|r| match r {
            FdtRange::Reserved { range, no_map } => Some((range, no_map)),
            _ => None,
        })
    }

    /// The header's `/memreserve/` entries (size-0 entries skipped, up to the all-zero
    /// terminator).
    pub fn memreserve(&self) -> impl Iterator<Item = MemRange> + 'a {
        let bytes = self.bytes;
        let mut off = self.header.off_mem_rsvmap as usize;
        core::iter::from_fn(move || loop {
            let (base, size) = (be64(bytes, off)?, be64(bytes, off + 8)?);
            off += 16;
            if base == 0 && size == 0 {
                return None;
            }
            if size != 0 && base.checked_add(size).is_some() {
                return Some(MemRange::new(base, size));
            }
        })
    }
}
