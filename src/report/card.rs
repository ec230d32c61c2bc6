//! The verdict card (placeholder: being written).

use super::Report;

/// Card rendering options.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Emit ANSI colours.
    pub color: bool,
    /// List every imported function.
    pub all_imports: bool,
}

/// Render the card of one report.
pub fn render(report: &Report, _opts: &Options) -> String {
    format!("{}  {}\n", crate::term::sanitize(&report.path), report.verdict.level)
}
