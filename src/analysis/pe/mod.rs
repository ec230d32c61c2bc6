//! PE analysis (placeholder: being written).

use crate::report::{Anomaly, PeInfo};

/// What the PE analysis returns.
pub struct PeOutput {
    /// The facts.
    pub info: PeInfo,
    /// pefile-compatible imphash.
    pub imphash: Option<String>,
    /// MD5 of the decoded Rich header.
    pub rich_header_md5: Option<String>,
}

/// Analyse a PE image.
pub fn analyse(_data: &[u8], _anomalies: &mut Vec<Anomaly>) -> Option<PeOutput> {
    None
}
