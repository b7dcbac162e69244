//! The linker script of the `virt` binary (linked at RAM base + 0x10000).

fn main() {
    zonekit_arch_arm::link::emit_linker_scripts();
}
