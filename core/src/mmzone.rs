//! Node, zones and page frames under one name (Linux `include/linux/mmzone.h` and
//! `mm/mm_init.c`): the types, their initialisation and its self-check.
//!
//! This module defines nothing. It re-exports [`crate::mmtypes`] (the zone and
//! migrate-type enums), [`crate::zone`] (`struct zone`, `pg_data_t`) and
//! [`crate::mm_init`] (`free_area_init_node` and its parts), so that
//! `zonekit_core::mmzone::…` paths keep working for the arch crate, the boards and
//! the tests. Inside core, modules import from the defining module instead: this one
//! sits above all three and closes no cycle.

pub use crate::mm_init::{
    calc_memmap_size, free_area_init_node, usemap_size, zone_batchsize, CheckFailure, NodeCheck,
};
pub use crate::mmtypes::{MigrateType, ZoneType, MAX_NR_ZONES, MIGRATE_TYPES};
pub use crate::zone::{FreeArea, InitError, PgData, Zone, MAX_ORDER_LIMIT, NR_PAGEBLOCK_BITS};
