//! ELF analysis (placeholder: being written).
use crate::report::{Anomaly, ElfInfo};

/// Analyse an ELF image.
pub fn analyse(_data: &[u8], _anomalies: &mut Vec<Anomaly>) -> Option<ElfInfo> {
    None
}
