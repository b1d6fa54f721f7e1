//! The rules of a name and of a status line.

use super::{Field, Limits, ProtocolError};

/// Checks a name as the server would, so a client can refuse it before sending.
pub fn check_name(name: &str, limits: &Limits) -> Result<(), ProtocolError> {
    check_name_length(name, limits)?;
    check_stored_name(name)?;
    if let Some((offset, found)) = name.char_indices().find(|&(_, c)| does_not_show(c)) {
        return Err(ProtocolError::InvisibleChar { found, offset });
    }
    if name.starts_with(' ') || name.ends_with(' ') {
        return Err(ProtocolError::EdgeSpace);
    }
    Ok(())
}

pub(super) fn check_name_length(name: &str, limits: &Limits) -> Result<(), ProtocolError> {
    match name.len() > limits.max_name {
        true => Err(ProtocolError::NameTooLong {
            len: name.len(),
            limit: limits.max_name,
        }),
        false => Ok(()),
    }
}

/// The rules every name on a board keeps, whenever it was set: not empty,
/// no `:`, no control character. A state file written before the stricter
/// rules of [`check_name`] still replays whole.
pub fn check_stored_name(name: &str) -> Result<(), ProtocolError> {
    if name.is_empty() {
        return Err(ProtocolError::EmptyName);
    }
    if name.contains(':') {
        // Unreachable from parse_request; guards clients building a request.
        return Err(ProtocolError::ColonInName);
    }
    check_line(name, Field::Name)
}

/// Whether `c` shows nothing by itself, so that a name holding it could pass
/// for another (`\u{202e}ecila` renders as "alice"; U+200B is not there at all):
/// format characters (general category Cf, the bidi controls among them),
/// default-ignorable code points (Hangul fillers, variation selectors, tags),
/// and blanks other than the plain space. Unicode 16.0's tables
/// (DerivedCoreProperties.txt, DerivedGeneralCategory.txt, PropList.txt).
pub(crate) fn does_not_show(c: char) -> bool {
    const RANGES: &[(u32, u32)] = &[
        (0x00A0, 0x00A0), // no-break space
        (0x00AD, 0x00AD), // soft hyphen
        (0x034F, 0x034F), // combining grapheme joiner
        (0x0600, 0x0605), // Arabic number signs (Cf)
        (0x061C, 0x061C), // Arabic letter mark
        (0x06DD, 0x06DD),
        (0x070F, 0x070F),
        (0x0890, 0x0891),
        (0x08E2, 0x08E2),
        (0x115F, 0x1160), // Hangul choseong and jungseong fillers
        (0x1680, 0x1680), // Ogham space mark
        (0x17B4, 0x17B5), // Khmer inherent vowels
        (0x180B, 0x180F), // Mongolian variation selectors and vowel separator
        (0x2000, 0x200F), // en quad .. hair space, zero width space .. right-to-left mark
        (0x2028, 0x202F), // line and paragraph separators, bidi embeddings, narrow nbsp
        (0x205F, 0x206F), // medium math space, word joiner .. bidi isolates, deprecated controls
        (0x2800, 0x2800), // braille pattern blank
        (0x3000, 0x3000), // ideographic space
        (0x3164, 0x3164), // Hangul filler
        (0xFE00, 0xFE0F), // variation selectors
        (0xFEFF, 0xFEFF), // zero width no-break space (BOM)
        (0xFFA0, 0xFFA0), // halfwidth Hangul filler
        (0xFFF0, 0xFFFB), // unassigned specials, interlinear annotation controls
        (0x110BD, 0x110BD),
        (0x110CD, 0x110CD),
        (0x13430, 0x1343F), // Egyptian hieroglyph format controls
        (0x1BCA0, 0x1BCA3), // shorthand format controls
        (0x1D173, 0x1D17A), // musical symbol format controls
        (0xE0000, 0xE0FFF), // tags, variation selectors supplement
    ];
    let c = u32::from(c);
    RANGES
        .binary_search_by(|&(low, high)| {
            if high < c {
                std::cmp::Ordering::Less
            } else if low > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Rejects control characters: a newline in a status would forge a board line.
pub fn check_line(text: &str, field: Field) -> Result<(), ProtocolError> {
    match text.char_indices().find(|(_, c)| c.is_control()) {
        Some((offset, found)) => Err(ProtocolError::ControlChar {
            field,
            found,
            offset,
        }),
        None => Ok(()),
    }
}
