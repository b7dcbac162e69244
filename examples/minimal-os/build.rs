//! Link `minimal-os` where QEMU loads a raw image on vexpress-a9 (RAM base + 0x10000).

fn main() {
    let board = zonekit_arch_arm::board::VEXPRESS_A9;
    zonekit_arch_arm::link::emit_linker_script("minimal-os", board.load_address());
}
