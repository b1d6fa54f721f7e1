//! The report's sections, one file each, in the order they are printed.
//!
//! A new section: a file here with a `pub fn NAME(&Settings, &mut String)`
//! that writes its markdown, a line in [`ALL`], and its subsection in
//! `docs/BENCHMARKS.md`.

use crate::Settings;

pub mod auth;
pub mod board;
pub mod cluster;
pub mod hostile;
pub mod live;
pub mod memory;
pub mod one_shot;
pub mod polls;
pub mod restart;
pub mod updates;
pub mod watchers;
pub mod web;

/// A part of the report: its name for `--only=NAME`, and what writes it.
pub type Section = (&'static str, fn(&Settings, &mut String));

pub const ALL: [Section; 12] = [
    ("polls", polls::polls),
    ("updates", updates::updates),
    ("whole-board", board::whole_board),
    ("one-shot", one_shot::one_shot),
    ("memory", memory::memory),
    ("live", live::live),
    ("auth", auth::auth),
    ("web", web::web),
    ("watchers", watchers::watchers),
    ("restart", restart::restart),
    ("cluster", cluster::cluster),
    ("hostile", hostile::hostile),
];
