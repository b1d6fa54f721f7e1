//! Poll throughput: `_:` from K clients, against the floor and the original.

use std::fmt::Write as _;

use crate::Settings;
use crate::common;
use crate::load::{load, poll_request};
use crate::stats::{Sample, interleaved};
use crate::targets::floor::Floor;
use crate::targets::ours::{ours_on, prefilled_state};
use crate::targets::python::Python;

pub fn polls(s: &Settings, out: &mut String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let python = Python::start();
    let mut python_entries = 0;
    writeln!(out, "## Poll throughput\n").ok();
    writeln!(
        out,
        "Requests/s, and latency p50 / p99 / max in µs; `_:` polls from K closed-loop REQ clients.\n"
    )
    .ok();
    writeln!(
        out,
        "| board | K | floor req/s | floor µs | ours req/s | ours µs | ours / floor | Python req/s | Python µs | ours / Python |"
    )
    .ok();
    writeln!(out, "|{}", " --- |".repeat(10)).ok();
    for &entries in &s.boards {
        let state = prefilled_state(dir.path(), entries);
        let server = ours_on(&state, &[]);
        let reply = server.request(b"_:");
        let floor = Floor::start(&reply, dir.path());
        let python = python.as_ref().filter(|_| !s.smoke || entries <= 1_000);
        if let Some(python) = python {
            python.fill_to(python_entries, entries);
            python_entries = entries;
            let theirs =
                common::request_parts(&python.server.endpoint, &[b"_:"]).expect("python reply");
            assert_eq!(theirs, reply, "the Python board must be the same bytes");
        }
        for &clients in &s.clients {
            let floor_run = || load(&floor.endpoint, clients, &poll_request, s);
            let ours_run = || load(&server.endpoint, clients, &poll_request, s);
            let python_run = || {
                load(
                    &python.expect("checked").server.endpoint,
                    clients,
                    &poll_request,
                    s,
                )
            };
            let mut targets: Vec<&dyn Fn() -> Sample> = vec![&floor_run, &ours_run];
            if python.is_some() {
                targets.push(&python_run);
            }
            let samples = interleaved(&targets, s.repeats);
            let (python_cells, vs_python) = match samples.get(2) {
                Some(p) => (p.cells(), format!("{:.1}×", samples[1].rps / p.rps)),
                None => ("n/a | n/a".into(), "n/a".into()),
            };
            writeln!(
                out,
                "| {entries} ({} B) | {clients} | {} | {} | {} | {python_cells} | {vs_python} |",
                reply.len(),
                samples[0].cells(),
                samples[1].cells(),
                samples[1].ratio(&samples[0], 2),
            )
            .ok();
        }
    }
    writeln!(out).ok();
}
