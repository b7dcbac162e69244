//! Link `minimal-os` where QEMU loads a raw image on vexpress-a9 (RAM base + 0x10000).

fn main() {
    let load = zonekit_bsp_vexpress::VEXPRESS_A9.load_address();
    zonekit_arch_arm::link::emit_linker_script("minimal-os", load);
}
