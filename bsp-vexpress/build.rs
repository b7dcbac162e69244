//! The board constants and one linker script per board binary, from the boards this
//! crate's `Cargo.toml` declares (`[package.metadata.zonekit.boards]`).

fn main() {
    zonekit_arch_arm::profile::emit_board_support();
}
