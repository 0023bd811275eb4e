//! Texts from sources as acemux keeps them. Everything a list, a search
//! answer, a plugin or a guide says is bounded, and a one-line text (a
//! name, a group, a URL) loses its control characters, so nothing a
//! source sends can break a line of `/playlist.m3u` or a guide's XML.

/// A one-line text (see [`crate::values::one_line`]).
pub use crate::values::one_line as field;

/// A text for XML 1.0 (lines kept): at most `max` bytes (cut at a
/// character), without the characters XML 1.0 cannot carry.
pub fn xml(value: &str, max: usize) -> String {
    let mut out = String::with_capacity(value.len().min(max));
    for c in value.chars() {
        if out.len() + c.len_utf8() > max {
            break;
        }
        if matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{fffe}' && c != '\u{ffff}') {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_is_one_bounded_line() {
        assert_eq!(field("  News\n#EXTINF:-1,x \u{7}", 100).as_deref(), Some("News#EXTINF:-1,x"));
        assert_eq!(field("  \n ", 100), None);
        assert_eq!(field("añb", 2).as_deref(), Some("a"), "cut at a character");
        assert_eq!(xml("a\u{1}\nb\u{fffe}", 100), "a\nb");
    }

    proptest::proptest! {
        #[test]
        fn fields_hold_their_bounds(value in ".{0,80}", max in 0usize..40) {
            if let Some(f) = field(&value, max) {
                proptest::prop_assert!(f.len() <= max && !f.chars().any(char::is_control) && !f.is_empty());
            }
            proptest::prop_assert!(xml(&value, max).len() <= max);
        }
    }
}
