//! Terminal concerns: whether to colour, and the one sanitiser every file-controlled string passes through
//! before it reaches a terminal.
//!
//! A version string, section name, export name or file name comes from the file, and the file may be
//! hostile: an escape sequence in it could rewrite the screen, retitle the window or hide text. [`sanitize`]
//! makes every control character (C0, DEL, C1), and the Unicode characters that reorder or hide text (bidi
//! overrides and isolates, zero-width characters), visible as `\x1b` / `\u{202e}` escapes.

use std::io::IsTerminal;

/// `--color` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour when stdout is a terminal, `NO_COLOR` is unset or empty, and `TERM` is not `dumb`.
    #[default]
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

impl ColorChoice {
    /// Decide, given the environment and whether stdout is a terminal.
    pub fn resolve(
        self,
        no_color: Option<&std::ffi::OsStr>,
        term: Option<&std::ffi::OsStr>,
        stdout_is_tty: bool,
    ) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                // https://no-color.org: set and not empty disables colour.
                let no_color = no_color.is_some_and(|v| !v.is_empty());
                let dumb = term.is_some_and(|t| t == "dumb");
                stdout_is_tty && !no_color && !dumb
            }
        }
    }

    /// Decide for this process's stdout.
    pub fn resolve_for_stdout(self) -> bool {
        self.resolve(
            std::env::var_os("NO_COLOR").as_deref(),
            std::env::var_os("TERM").as_deref(),
            std::io::stdout().is_terminal(),
        )
    }
}

/// True for characters that must not reach a terminal raw.
fn is_dangerous(c: char) -> bool {
    c.is_control() // C0, DEL, C1
        || matches!(c,
            '\u{200b}'..='\u{200f}' // zero-width space/joiners, LRM, RLM
            | '\u{2028}' | '\u{2029}' // line and paragraph separators
            | '\u{202a}'..='\u{202e}' // bidi embeddings and overrides
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}' // bidi isolates
            | '\u{feff}' // BOM / zero-width no-break space
            | '\u{fff9}'..='\u{fffb}' // interlinear annotation
        )
}

/// Make a file-controlled string safe to print: control and invisible/reordering characters become escapes.
pub fn sanitize(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(is_dangerous) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_dangerous(c) {
            let v = c as u32;
            if v < 0x100 {
                out.push_str(&format!("\\x{v:02x}"));
            } else {
                out.push_str(&format!("\\u{{{v:x}}}"));
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn sanitizes_escapes_and_bidi() {
        assert_eq!(sanitize("Microsoft Corporation"), "Microsoft Corporation");
        assert_eq!(sanitize("a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(sanitize("x\u{9b}31m"), "x\\x9b31m");
        assert_eq!(sanitize("evil\u{202e}exe.txt"), "evil\\u{202e}exe.txt");
        assert_eq!(sanitize("tab\there\r\n"), "tab\\x09here\\x0d\\x0a");
        assert_eq!(sanitize("Microsoft® C Runtime"), "Microsoft® C Runtime");
    }

    #[test]
    fn colour_choice() {
        let a = ColorChoice::Auto;
        assert!(a.resolve(None, Some(OsStr::new("xterm")), true));
        assert!(!a.resolve(None, None, false));
        assert!(!a.resolve(Some(OsStr::new("1")), None, true));
        assert!(a.resolve(Some(OsStr::new("")), None, true));
        assert!(!a.resolve(None, Some(OsStr::new("dumb")), true));
        assert!(ColorChoice::Always.resolve(Some(OsStr::new("1")), None, false));
        assert!(!ColorChoice::Never.resolve(None, None, true));
    }
}
