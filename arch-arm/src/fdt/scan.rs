//! The early scan of the tree (`early_init_dt_scan_memory`, `/memreserve/`,
//! `/reserved-memory`, `/chosen`): one walk of the structure block that fills
//! [`FdtMemory`].

use super::*;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Top {
    Other,
    Chosen,
    ReservedMemory,
}

/// `fdt_path_offset("/chosen")`, `fdt_path_offset("/reserved-memory")`: the first
/// child of the root of each name is the one, later ones are other nodes.
#[derive(Clone, Copy, Default)]
pub(super) struct TopNodes {
    seen_chosen: bool,
    seen_rm: bool,
}

impl TopNodes {
    /// What the child of the root named `raw` is, and whether it is a later node of a
    /// name already seen.
    pub(super) fn classify(&mut self, raw: &[u8]) -> (Top, bool) {
        let (seen, top) = if node_name_matches(raw, b"chosen") {
            (&mut self.seen_chosen, Top::Chosen)
        } else if node_name_matches(raw, b"reserved-memory") {
            (&mut self.seen_rm, Top::ReservedMemory)
        } else {
            return (Top::Other, false);
        };
        if core::mem::replace(seen, true) {
            (Top::Other, true)
        } else {
            (top, false)
        }
    }
}

/// A memory bank `[base, base + size)` (size not 0, no overflow) split at
/// `phys_addr_max`: the part kept and the part dropped above it
/// (`early_init_dt_add_memory_arch`).
pub(super) fn split_bank(r: MemRange, max: PhysAddr) -> (Option<MemRange>, Option<MemRange>) {
    if r.base > max {
        // Linux: "Ignoring memory block".
        (None, Some(r))
    } else if r.end() - 1 > max {
        // Linux: "Ignoring memory range <max+1> - <end>", size truncated.
        let keep = MemRange::new(r.base, max - r.base + 1);
        (
            Some(keep),
            Some(MemRange::new(max + 1, r.end() - (max + 1))),
        )
    } else {
        (Some(r), None)
    }
}

/// Properties collected for one node until its end.
#[derive(Clone, Copy)]
pub(super) struct NodeProps<'a> {
    name: &'a str,
    memory: bool,
    available: bool,
    reg: Option<&'a [u8]>,
    size: Option<&'a [u8]>,
    alignment: Option<&'a [u8]>,
    alloc_ranges: Option<&'a [u8]>,
    no_map: bool,
    reusable: bool,
    shared_dma_pool: bool,
    cma_default: bool,
}

impl<'a> NodeProps<'a> {
    /// What Linux's `rmem_cma_setup` takes as a CMA pool.
    fn is_cma(&self) -> bool {
        self.shared_dma_pool && self.reusable && !self.no_map
    }

    fn new(name: &'a str) -> Self {
        Self {
            name,
            memory: false,
            available: true,
            reg: None,
            size: None,
            alignment: None,
            alloc_ranges: None,
            no_map: false,
            reusable: false,
            shared_dma_pool: false,
            cma_default: false,
        }
    }
}

/// Whether a `compatible` string list holds `want`.
pub(super) fn compatible_has(v: &[u8], want: &str) -> bool {
    v.split(|&b| b == 0).any(|c| c == want.as_bytes())
}

/// `of_fdt_device_is_available` for a `status` value: `"okay"` or `"ok"`, compared as
/// C strings (anything else, non-UTF-8 bytes included, is "not available").
pub(super) fn is_okay(status: &[u8]) -> bool {
    matches!(prop_cstr(status), b"okay" | b"ok")
}

/// A `#address-cells`/`#size-cells` value that must be 1 or 2.
pub(super) fn cells_prop(v: &[u8], what: &'static str) -> Result<u32, FdtError> {
    if v.len() != 4 {
        return Err(FdtError::BadPropLen { what, len: v.len() });
    }
    let n = be32(v, 0).unwrap_or(0);
    if n == 1 || n == 2 {
        Ok(n)
    } else {
        Err(FdtError::BadCells { what, value: n })
    }
}

/// A number of `cells` (1 or 2) cells at byte offset `at`.
pub(super) fn read_cells(v: &[u8], at: usize, cells: u32) -> Result<u64, FdtError> {
    let r = if cells == 2 {
        be64(v, at)
    } else {
        be32(v, at).map(u64::from)
    };
    r.ok_or(FdtError::Parse("cell read past the property"))
}

/// A single number of exactly one or two cells (`linux,initrd-start`).
pub(super) fn read_number(v: &[u8], what: &'static str) -> Result<u64, FdtError> {
    match v.len() {
        4 => read_cells(v, 0, 1),
        8 => read_cells(v, 0, 2),
        len => Err(FdtError::BadPropLen { what, len }),
    }
}

/// Iterates over the (address, size) pairs of a `reg`-like property.
pub(super) fn for_each_entry(
    v: &[u8],
    ac: u32,
    sc: u32,
    what: &'static str,
    mut f: impl FnMut(u64, u64) -> Result<(), FdtError>,
) -> Result<(), FdtError> {
    let entry = 4 * (ac + sc) as usize;
    let chunks = v.chunks_exact(entry);
    if !chunks.remainder().is_empty() {
        return Err(FdtError::BadPropLen { what, len: v.len() });
    }
    for e in chunks {
        let base = read_cells(e, 0, ac)?;
        let size = read_cells(e, 4 * ac as usize, sc)?;
        f(base, size)?;
    }
    Ok(())
}

pub(super) fn checked_range(
    base: u64,
    size: u64,
    what: &'static str,
) -> Result<MemRange, FdtError> {
    match base.checked_add(size) {
        Some(_) => Ok(MemRange::new(base, size)),
        None => Err(FdtError::Overflow { what, base, size }),
    }
}

pub(super) fn push<T, const N: usize>(
    v: &mut heapless::Vec<T, N>,
    x: T,
    what: &'static str,
) -> Result<(), FdtError> {
    v.push(x)
        .map_err(|_| FdtError::TooManyRanges { what, max: N })
}

impl<'a> FdtMemory<'a> {
    /// Parses the blob at the start of `bytes` (which may be longer than `totalsize`;
    /// it must be 4-byte aligned). Memory above `phys_addr_max` is moved to
    /// [`FdtMemory::dropped`].
    pub fn parse(bytes: &'a [u8], phys_addr_max: PhysAddr) -> Result<Self, FdtError> {
        Self::parse_at(bytes, phys_addr_max, None)
    }

    /// As [`FdtMemory::parse`], and records the blob's own range
    /// `[blob_phys, blob_phys + totalsize)` in [`FdtMemory::blob`] so it is reserved.
    pub fn parse_at(
        bytes: &'a [u8],
        phys_addr_max: PhysAddr,
        blob_phys: Option<PhysAddr>,
    ) -> Result<Self, FdtError> {
        let header = fdt_header_ok(bytes)?;
        let bytes = &bytes[..header.totalsize as usize];
        let mut m = FdtMemory {
            header,
            address_cells: 1,
            size_cells: 1,
            cma_static: heapless::Vec::new(),
            reserved_dynamic: heapless::Vec::new(),
            initrd: None,
            bootargs: None,
            blob: None,
            warnings: heapless::Vec::new(),
            warnings_lost: 0,
            bytes,
            phys_addr_max,
        };
        if bytes.as_ptr() as usize & 3 != 0 {
            return Err(FdtError::Unaligned {
                what: "blob address",
                value: bytes.as_ptr() as usize,
            });
        }
        m.parse_rsvmap(bytes)?;
        check_structure(bytes, &header)?;
        m.walk(bytes, phys_addr_max)?;
        m.check_overlaps()?;
        if let Some(pa) = blob_phys {
            m.blob = Some(checked_range(pa, header.totalsize as u64, "FDT blob")?);
        }
        Ok(m)
    }

    fn warn(&mut self, w: FdtWarning<'a>) {
        log::warn!("{w}");
        if self.warnings.push(w).is_err() {
            self.warnings_lost += 1;
        }
    }

    fn parse_rsvmap(&mut self, bytes: &[u8]) -> Result<(), FdtError> {
        let h = &self.header;
        let rsv = h.off_mem_rsvmap as usize;
        // The block runs until the next block that starts after it.
        let bound = [h.off_dt_struct as usize, h.off_dt_strings as usize]
            .into_iter()
            .filter(|&o| o > rsv)
            .fold(h.totalsize as usize, usize::min);
        let mut off = rsv;
        loop {
            if off + 16 > bound {
                return Err(FdtError::Parse("/memreserve/ block is not terminated"));
            }
            let (Some(base), Some(size)) = (be64(bytes, off), be64(bytes, off + 8)) else {
                return Err(FdtError::Parse("/memreserve/ block out of bounds"));
            };
            off += 16;
            if base == 0 && size == 0 {
                return Ok(());
            }
            if size == 0 {
                self.warn(FdtWarning::ZeroSizedReservation {
                    node: "/memreserve/",
                    base,
                });
                continue;
            }
            checked_range(base, size, "/memreserve/")?;
        }
    }

    fn walk(&mut self, bytes: &'a [u8], phys_addr_max: PhysAddr) -> Result<(), FdtError> {
        let h = self.header;
        let mut tokens = FdtTokens::new(bytes, &h);
        let mut depth = 0usize;
        let mut top = Top::Other;
        let mut node1 = NodeProps::new("");
        let mut node2 = NodeProps::new("");
        let mut tops = TopNodes::default();
        // /reserved-memory's own cells and `ranges`, checked once its first child
        // starts or it ends.
        let (mut rm_ac, mut rm_sc, mut rm_ranges, mut rm_checked) = (None, None, false, false);
        let (mut initrd_start, mut initrd_end) = (None, None);

        loop {
            match tokens.next_token()?.1 {
                FdtToken::End => break,
                FdtToken::BeginNode(raw) => {
                    let name = node_name(raw);
                    depth += 1;
                    if depth == 2 {
                        let (t, duplicate) = tops.classify(raw);
                        top = t;
                        if duplicate {
                            self.warn(FdtWarning::DuplicateNode { node: name });
                        }
                        node1 = NodeProps::new(name);
                    } else if depth == 3 && top == Top::ReservedMemory {
                        if !rm_checked {
                            self.check_rm_root(rm_ac, rm_sc, rm_ranges)?;
                            rm_checked = true;
                        }
                        node2 = NodeProps::new(name);
                    }
                }
                FdtToken::Prop { nameoff, value: v } => {
                    let name = fdt_string(bytes, &h, nameoff)?;
                    match (depth, top) {
                        (1, _) => match name {
                            b"#address-cells" => {
                                self.address_cells = cells_prop(v, "root #address-cells")?
                            }
                            b"#size-cells" => self.size_cells = cells_prop(v, "root #size-cells")?,
                            _ => {}
                        },
                        (2, Top::Other) => match name {
                            b"device_type" => node1.memory = prop_cstr(v) == b"memory",
                            b"status" => node1.available = is_okay(v),
                            b"reg" => node1.reg = Some(v),
                            _ => {}
                        },
                        (2, Top::Chosen) => match name {
                            b"bootargs" if !v.is_empty() => {
                                let (raw, cut) = bootargs_bytes(v);
                                let args = Bootargs::new(raw);
                                if cut {
                                    self.warn(FdtWarning::BootargsTruncated { kept: raw.len() });
                                }
                                if !args.is_utf8() {
                                    self.warn(FdtWarning::BootargsNotUtf8);
                                }
                                self.bootargs = Some(args);
                            }
                            b"linux,initrd-start" => {
                                initrd_start = Some(read_number(v, "linux,initrd-start")?)
                            }
                            b"linux,initrd-end" => {
                                initrd_end = Some(read_number(v, "linux,initrd-end")?)
                            }
                            _ => {}
                        },
                        (2, Top::ReservedMemory) => match name {
                            b"#address-cells" => rm_ac = Some(v),
                            b"#size-cells" => rm_sc = Some(v),
                            b"ranges" => rm_ranges = true,
                            _ => {}
                        },
                        (3, Top::ReservedMemory) => match name {
                            b"status" => node2.available = is_okay(v),
                            b"reg" => node2.reg = Some(v),
                            b"size" => node2.size = Some(v),
                            b"alignment" => node2.alignment = Some(v),
                            b"alloc-ranges" => node2.alloc_ranges = Some(v),
                            b"no-map" => node2.no_map = true,
                            b"reusable" => node2.reusable = true,
                            b"compatible" => {
                                node2.shared_dma_pool = compatible_has(v, "shared-dma-pool")
                            }
                            b"linux,cma-default" => node2.cma_default = true,
                            _ => {}
                        },
                        _ => {}
                    }
                }
                FdtToken::EndNode => {
                    match (depth, top) {
                        (3, Top::ReservedMemory) => self.reserved_child(&node2)?,
                        (2, Top::Other) if node1.memory => {
                            self.memory_node(&node1, phys_addr_max)?
                        }
                        (2, Top::ReservedMemory) if !rm_checked => {
                            self.check_rm_root(rm_ac, rm_sc, rm_ranges)?;
                            rm_checked = true;
                        }
                        _ => {}
                    }
                    if depth == 2 {
                        top = Top::Other;
                    }
                    depth = depth
                        .checked_sub(1)
                        .ok_or(FdtError::Parse("unbalanced FDT_END_NODE"))?;
                }
                FdtToken::Nop => {}
            }
        }
        self.set_initrd(initrd_start, initrd_end)
    }

    fn check_rm_root(
        &self,
        ac: Option<&[u8]>,
        sc: Option<&[u8]>,
        ranges: bool,
    ) -> Result<(), FdtError> {
        for (v, root, what) in [
            (ac, self.address_cells, "/reserved-memory #address-cells"),
            (sc, self.size_cells, "/reserved-memory #size-cells"),
        ] {
            let v = v.ok_or(FdtError::Parse(
                "/reserved-memory lacks #address-cells or #size-cells",
            ))?;
            if v.len() != 4 {
                return Err(FdtError::BadPropLen { what, len: v.len() });
            }
            let n = be32(v, 0).unwrap_or(0);
            if n != root {
                // Linux: "Reserved memory: unsupported node format, ignoring".
                return Err(FdtError::BadCells { what, value: n });
            }
        }
        if !ranges {
            return Err(FdtError::Parse("/reserved-memory lacks `ranges`"));
        }
        Ok(())
    }

    fn memory_node(&mut self, n: &NodeProps<'a>, max: PhysAddr) -> Result<(), FdtError> {
        if !n.available {
            self.warn(FdtWarning::DisabledNode { node: n.name });
            return Ok(());
        }
        let Some(reg) = n.reg else {
            self.warn(FdtWarning::MemoryNodeWithoutReg { node: n.name });
            return Ok(());
        };
        let (ac, sc) = (self.address_cells, self.size_cells);
        for_each_entry(reg, ac, sc, "memory reg", |base, size| {
            if size == 0 {
                self.warn(FdtWarning::ZeroSizedBank { node: n.name, base });
                return Ok(());
            }
            // The banks themselves are read again when used (FdtMemory::banks).
            let r = checked_range(base, size, "memory reg")?;
            if let (_, Some(range)) = split_bank(r, max) {
                self.warn(FdtWarning::IgnoredMemory { range });
            }
            Ok(())
        })
    }

    fn reserved_child(&mut self, n: &NodeProps<'a>) -> Result<(), FdtError> {
        if !n.available {
            self.warn(FdtWarning::DisabledNode { node: n.name });
            return Ok(());
        }
        let (ac, sc) = (self.address_cells, self.size_cells);
        if let Some(reg) = n.reg {
            return for_each_entry(reg, ac, sc, "reserved-memory reg", |base, size| {
                if size == 0 {
                    self.warn(FdtWarning::ZeroSizedReservation { node: n.name, base });
                    return Ok(());
                }
                // Read again when used (FdtMemory::reserved_static); CMA pools are
                // kept, up to Linux's MAX_CMA_AREAS.
                let r = checked_range(base, size, "reserved-memory reg")?;
                if n.is_cma() {
                    push(&mut self.cma_static, (r, n.cma_default), "CMA pools")?;
                }
                Ok(())
            });
        }
        let Some(size) = n.size else {
            self.warn(FdtWarning::ReservedNodeWithoutRegOrSize { node: n.name });
            return Ok(());
        };
        let one = |v: &[u8], what| {
            if v.len() != 4 * sc as usize {
                Err(FdtError::BadPropLen { what, len: v.len() })
            } else {
                read_cells(v, 0, sc)
            }
        };
        let size = one(size, "reserved-memory size")?;
        let alignment = n
            .alignment
            .map(|v| one(v, "reserved-memory alignment"))
            .transpose()?;
        let mut alloc_ranges = heapless::Vec::new();
        if let Some(v) = n.alloc_ranges {
            for_each_entry(v, ac, sc, "alloc-ranges", |base, size| {
                let r = checked_range(base, size, "alloc-ranges")?;
                push(&mut alloc_ranges, r, "alloc-ranges entries")
            })?;
        }
        if size == 0 {
            self.warn(FdtWarning::ZeroSizedReservation {
                node: n.name,
                base: 0,
            });
            return Ok(());
        }
        push(
            &mut self.reserved_dynamic,
            DynamicReservation {
                name: n.name,
                size,
                alignment,
                alloc_ranges,
                no_map: n.no_map,
                reusable: n.reusable,
                cma: n.is_cma(),
                cma_default: n.cma_default,
            },
            "dynamic reserved-memory nodes",
        )
    }

    fn set_initrd(&mut self, start: Option<u64>, end: Option<u64>) -> Result<(), FdtError> {
        match (start, end) {
            (None, None) => {}
            (Some(_), None) | (None, Some(_)) => self.warn(FdtWarning::IncompleteInitrd),
            (Some(start), Some(end)) if end < start => {
                return Err(FdtError::BadInitrd { start, end })
            }
            (Some(start), Some(end)) if end == start => {
                self.warn(FdtWarning::EmptyInitrd { start })
            }
            (Some(start), Some(end)) => self.initrd = Some(MemRange::new(start, end - start)),
        }
        Ok(())
    }

    fn check_overlaps(&self) -> Result<(), FdtError> {
        for (i, a) in self.banks().enumerate() {
            if let Some(b) = self.banks().skip(i + 1).find(|b| a.overlaps(b)) {
                return Err(FdtError::OverlappingBanks {
                    first: a,
                    second: b,
                });
            }
        }
        Ok(())
    }
}
