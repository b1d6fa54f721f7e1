//! What a post to `POST /status` says, as bytes from the browser: the form
//! (`name=alice&status=in+a+meeting`) and the `Authorization: Basic` header,
//! checked and turned into the update request before anything is sent.
//!
//! No axum or tokio here, only text: `fuzz/` includes this file by path.

use base64::Engine;

use status_board::client::Login;
use status_board::protocol::{self, Field, Limits, POLL_NAME};

/// The form: `name=alice&status=in+a+meeting`; the name may be left out
/// when the browser logs in (it is then the user's).
#[derive(Debug, serde::Deserialize)]
pub(crate) struct PostForm {
    pub(crate) name: Option<String>,
    pub(crate) status: Option<String>,
}

/// The update request for `form`, posted with the login of `user` if any;
/// or why it is refused (a bad request).
pub(crate) fn update_request(form: PostForm, user: Option<&str>) -> Result<String, String> {
    let name = form
        .name
        .filter(|n| !n.trim().is_empty())
        .or(user.map(str::to_owned));
    let Some(name) = name else {
        return Err("give a name (name=NAME), or log in".into());
    };
    let Some(text) = form.status else {
        return Err("give a status (status=TEXT)".into());
    };
    let name = name.trim();
    if name == POLL_NAME {
        return Err("the name '_' only reads the board".into());
    }
    if let Err(e) = protocol::check_name(name, &Limits::UNLIMITED) {
        return Err(format!("the name {name:?}: {e}"));
    }
    if let Err(e) = protocol::check_line(&text, Field::Status) {
        return Err(format!("the status: {e}"));
    }
    Ok(protocol::format_update(name, &text))
}

/// The value of an `Authorization` header, `Basic BASE64(user:password)`,
/// as a PLAIN login.
pub(crate) fn basic_login(value: &[u8]) -> Result<Login, &'static str> {
    let bad = "the Authorization header is not HTTP Basic (user:password in base64)";
    // What http's `HeaderValue::to_str` takes: visible ASCII and tabs.
    if !value
        .iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
    {
        return Err(bad);
    }
    let value = std::str::from_utf8(value).map_err(|_| bad)?;
    let (scheme, encoded) = value.trim().split_once(' ').ok_or(bad)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| bad)?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad)?;
    let (user, password) = decoded.split_once(':').ok_or(bad)?;
    if user.is_empty() {
        return Err("the login has no user name");
    }
    Ok(Login::Plain {
        user: user.to_owned(),
        password: password.to_owned(),
    })
}
