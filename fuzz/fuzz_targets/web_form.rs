//! A post to status_web: its `Authorization` header value, a newline, then
//! its form body, read as the gateway reads them (serde_urlencoded, as axum's
//! `Form` does, and status_web's own `form.rs`, included here by path). A
//! post the gateway accepts becomes an update request the server parses to
//! the same name and status; a login it accepts has a user name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use status_board::client::Login;
use status_board::protocol::{Limits, Request, parse_request};

#[path = "../../src/bin/status_web/form.rs"]
#[allow(dead_code)]
mod form;

fuzz_target!(|data: &[u8]| {
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (Some(&data[..at]), &data[at + 1..]),
        None => (None, data),
    };
    let login = header.map(form::basic_login);
    let user = match &login {
        Some(Ok(Login::Plain { user, .. })) => {
            assert!(!user.is_empty());
            Some(user.as_str())
        }
        Some(Ok(other)) => panic!("a Basic login is PLAIN, not {other:?}"),
        Some(Err(_)) | None => None,
    };
    let Ok(posted) = serde_urlencoded::from_bytes::<form::PostForm>(body) else {
        return;
    };
    let (name, status) = (posted.name.clone(), posted.status.clone());
    let Ok(request) = form::update_request(posted, user) else {
        return;
    };
    let status = status.expect("a status was posted");
    let name = match name.filter(|n| !n.trim().is_empty()) {
        Some(name) => name,
        None => user.expect("a name was posted or logged in").to_owned(),
    };
    let expected = Request::Update {
        name: name.trim(),
        status: &format!(": {status}"),
    };
    assert_eq!(
        parse_request(request.as_bytes(), &Limits::UNLIMITED),
        Ok(expected)
    );
});
