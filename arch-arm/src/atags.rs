//! ATAGS (ARM boot tags) parsing. (being implemented)
