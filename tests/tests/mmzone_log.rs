//! The boot-log lines of `free_area_init_node`, captured and compared with the text
//! Linux prints (a separate test binary, since the logger is process-global).

use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};
use zonekit_core::memblock::Memblock;
use zonekit_core::mmzone::free_area_init_node;
use zonekit_core::storage::VecPageStorage;
use zonekit_core::MmConfig;

struct Capture(Mutex<Vec<(Level, String)>>);

impl Log for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &Record<'_>) {
        self.0
            .lock()
            .unwrap()
            .push((record.level(), record.args().to_string()));
    }
    fn flush(&self) {}
}

static LOGGER: Capture = Capture(Mutex::new(Vec::new()));

fn take() -> Vec<(Level, String)> {
    std::mem::take(&mut *LOGGER.0.lock().unwrap())
}

#[test]
fn linux_log_lines() {
    log::set_logger(&LOGGER).unwrap();
    log::set_max_level(LevelFilter::Trace);

    // The seed articles' board on Linux 4.x.
    let mut mb: Memblock = Memblock::new(u32::MAX as u64);
    mb.add(0x8000_0000, 0x2000_0000).unwrap();
    mb.set_current_limit(0xa000_0000);
    let mut st = VecPageStorage::default();
    let node = free_area_init_node(
        &mut mb,
        &mut st,
        &MmConfig::LINUX_4X_ARM,
        0,
        &[0, 0x20000, 0, 0],
        0x80000,
        &[0; 4],
        0,
    )
    .unwrap();
    let lines = take();
    let node_mem_map = format!(
        "free_area_init_node: node 0, pgdat 00000000, node_mem_map {:08x}",
        node.mem_map_phys
    );
    let expected: Vec<(Level, &str)> = vec![
        (Level::Debug, "On node 0 totalpages: 131072"),
        (Level::Debug, &node_mem_map),
        (Level::Debug, "  Normal zone: 1024 pages used for memmap"),
        (Level::Debug, "  Normal zone: 0 pages reserved"),
        (Level::Debug, "  Normal zone: 131072 pages, LIFO batch:31"),
    ];
    let got: Vec<(Level, &str)> = lines.iter().map(|(l, s)| (*l, s.as_str())).collect();
    assert_eq!(got, expected);

    // Two banks with a 32768-page gap in one zone.
    let mut mb: Memblock = Memblock::new(u32::MAX as u64);
    mb.add(0x8000_0000, 0x0800_0000).unwrap();
    mb.add(0x9000_0000, 0x0800_0000).unwrap();
    mb.set_current_limit(0x9800_0000);
    let mut st = VecPageStorage::default();
    free_area_init_node(
        &mut mb,
        &mut st,
        &MmConfig::ZONEKIT,
        0,
        &[0, 0x18000, 0, 0],
        0x80000,
        &[0, 0x8000, 0, 0],
        0,
    )
    .unwrap();
    let lines = take();
    assert!(lines.contains(&(
        Level::Info,
        "On node 0, zone Normal: 32768 pages in unavailable ranges".to_string()
    )));
    assert!(lines.contains(&(Level::Debug, "On node 0 totalpages: 65536".to_string())));
    assert!(lines.contains(&(
        Level::Debug,
        "  Normal zone: 384 pages used for memmap".to_string()
    )));
}
