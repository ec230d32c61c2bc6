//! .NET CLR header and metadata (placeholder: being written).

use super::headers::Pe;
use crate::report::{Anomaly, DotNet};

/// Parse the CLR header when the COM descriptor directory is set.
pub fn parse(pe: &Pe<'_>, _anomalies: &mut Vec<Anomaly>) -> Option<DotNet> {
    let (rva, _) = pe.directory(14);
    if rva == 0 {
        return None;
    }
    Some(DotNet::default())
}
