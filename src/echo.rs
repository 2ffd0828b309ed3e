//! Echoing user input back in error messages, safely.
//!
//! Invariants: whatever reaches the terminal through `token` or `line` has
//! every control character escaped (`\n`, `\0`, `\u{1b}`, ...), so a
//! hostile target list cannot move the cursor, change colours or add
//! lines; and a quoted token is at most `MAX_TOKEN` characters followed by
//! a note of its real length, so a 10 MB line is not echoed whole.

/// Characters of a token shown before it is cut.
pub const MAX_TOKEN: usize = 80;

/// Escape control characters (and only those) of `s`.
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
}

/// `s` escaped and cut to `MAX_TOKEN` characters (without quotes).
pub fn bare(s: &str) -> String {
    let mut out = String::new();
    let n = s.chars().count();
    if n <= MAX_TOKEN {
        escape_into(&mut out, s);
    } else {
        let cut: String = s.chars().take(MAX_TOKEN).collect();
        escape_into(&mut out, &cut);
        out.push_str(&format!("... ({} bytes)", s.len()));
    }
    out
}

/// `'s'` escaped and cut: the one way a message quotes user input.
pub fn token(s: &str) -> String {
    format!("'{}'", bare(s))
}

/// Make one line of someone else's message (clap's) safe to print: control
/// characters escaped, and every quoted `'...'` segment cut as `token`
/// does. Newlines end the line.
pub fn line(s: &str) -> String {
    let first = s.lines().next().unwrap_or("");
    let mut out = String::new();
    let mut rest = first;
    while let Some(open) = rest.find('\'') {
        escape_into(&mut out, &rest[..open]);
        let after = &rest[open + 1..];
        match after.find('\'') {
            Some(close) => {
                out.push_str(&token(&after[..close]));
                rest = &after[close + 1..];
            }
            None => {
                out.push('\'');
                out.push_str(&bare(after));
                return out;
            }
        }
    }
    escape_into(&mut out, rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(token("a\0b\x1b[31mc\n"), "'a\\0b\\u{1b}[31mc\\n'");
        assert_eq!(token("ünï"), "'ünï'");
    }

    #[test]
    fn long_tokens_are_cut() {
        let long = "x".repeat(10_000_000);
        let t = token(&long);
        assert!(t.len() < 120, "{}", t.len());
        assert!(t.contains("10000000 bytes"), "{t}");
    }

    #[test]
    fn clap_lines_are_cleaned() {
        let long = "9".repeat(5000);
        let l = line(&format!(
            "invalid value '{long}\x1b' for '--rate <PPS>': number too large\nmore"
        ));
        assert!(l.len() < 200, "{l}");
        assert!(l.contains("'--rate <PPS>'") && l.contains("number too large"));
        assert!(!l.contains('\x1b') && !l.contains("more"));
        assert_eq!(line("it's"), "it's");
    }
}
