//! `XILINX_ZYNQ_A9` and the board binary's linker script, from `Cargo.toml`.

fn main() {
    zonekit_arch_arm::profile::emit_board_support();
}
