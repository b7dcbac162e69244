//! Lowmem bounds. (being implemented)
