//! State-file records as replay reads them: a record that decodes is the
//! checked contents the server would have written, byte for byte, and ends
//! within the data; resync finds only such records, never past the end.
#![no_main]

use libfuzzer_sys::fuzz_target;
use status_board::fuzz_api::{decode_record, encode_record, resync};
use status_board::protocol::{Field, POLL_NAME, check_line, check_stored_name};

fuzz_target!(|data: &[u8]| {
    // The first byte picks where resync starts, so that it is tried from
    // everywhere; the rest is the data.
    let Some((&from, data)) = data.split_first() else {
        return;
    };
    if let Ok((record, size)) = decode_record(data) {
        assert!(size <= data.len() && size >= 8 + 11);
        assert!(check_stored_name(record.name).is_ok() && record.name != POLL_NAME);
        match record.remove {
            true => assert!(record.status.is_empty()),
            false => {
                assert!(record.status.starts_with(':'));
                assert!(check_line(record.status, Field::Status).is_ok());
            }
        }
        let encoded = encode_record(&record).expect("a decoded record fits");
        assert_eq!(encoded, &data[..size], "re-encodes to the same bytes");
    }
    let from = usize::from(from) % (data.len() + 1);
    match resync(data, from) {
        Some(next) => {
            assert!(
                next >= from && next < data.len(),
                "resync stays within the data"
            );
            let (_, size) = decode_record(&data[next..]).expect("resync finds a valid record");
            assert!(next + size <= data.len());
            assert!(
                (from..next).all(|at| decode_record(&data[at..]).is_err()),
                "resync finds the first record"
            );
        }
        None => assert!((from..data.len()).all(|at| decode_record(&data[at..]).is_err())),
    }
});
