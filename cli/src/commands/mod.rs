//! The commands, one file each.

pub mod request;
pub mod status;
pub mod token;
