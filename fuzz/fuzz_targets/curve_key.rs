//! CURVE key files (`public-key = "Z85"`, `secret-key = "Z85"`) and the Z85
//! keys of the users file. A key that decodes is written in Z85 exactly as
//! it was read (one text per key), so a key user cannot be named twice in
//! two spellings, and a key pair read back from its file is the same pair.
#![no_main]

use libfuzzer_sys::fuzz_target;
use status_board::curve::decode_key;
use status_board::fuzz_api::{encode_key, parse_key_pair};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(key) = decode_key(text) {
        assert_eq!(encode_key(&key), text, "one Z85 text per key");
    }
    if let Ok(pair) = parse_key_pair(text) {
        let file = format!(
            "# status-board CURVE key pair: keep this file private\n\
             public-key = \"{}\"\nsecret-key = \"{}\"\n",
            encode_key(&pair.public),
            encode_key(&pair.secret)
        );
        assert_eq!(parse_key_pair(&file), Ok(pair));
    }
});
