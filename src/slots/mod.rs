//! The snapshot slots: a fixed array, one slot per open enumeration, each holding the
//! snapshot it pins and (for handles) its cursor.
//!
//! [`array`] holds the slots and their free set, [`registration`] pins snapshots and feed
//! floors against the reclaimer (invariant 3), [`handles`] is the handle state machine
//! (invariant 4).

mod array;
mod handles;
mod registration;

pub(crate) use array::{Kind, Slots};
pub(crate) use registration::Scan;
