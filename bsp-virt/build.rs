//! The `VIRT` constant and the `virt` binary's linker script, from `Cargo.toml`.

fn main() {
    zonekit_arch_arm::profile::emit_board_support();
}
