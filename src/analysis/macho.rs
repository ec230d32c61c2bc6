//! Mach-O analysis (placeholder: being written).
use crate::report::{Anomaly, MachoInfo};

/// Analyse a thin or fat Mach-O image.
pub fn analyse(_data: &[u8], _anomalies: &mut Vec<Anomaly>) -> Option<MachoInfo> {
    None
}
