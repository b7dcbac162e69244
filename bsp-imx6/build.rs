//! One linker script per board binary of this crate, for the bare-metal target (the
//! board list and the script are in `zonekit_arch_arm::{board, link}`).

fn main() {
    zonekit_arch_arm::link::emit_linker_scripts();
}
