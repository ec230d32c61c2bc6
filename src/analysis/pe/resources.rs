//! A bounded walk of the resource directory tree, before goblin's resource parser sees it.
//!
//! Resource directories nest (type → name → language → data in every real file) and every offset in them is
//! taken from the file, so a crafted tree can loop back on itself or nest thousands of levels deep. This
//! walk visits each directory at most once, stops at pefile's depth limit and at 65,536 entries, and says
//! whether the tree is sound enough to hand to goblin.

use std::collections::HashSet;

use super::headers::{Pe, u16_at, u32_at};
use crate::report::Anomaly;

/// pefile `MAX_RESOURCE_DEPTH`.
const MAX_DEPTH: usize = 32;
/// Entries visited at most (directories and data entries together).
const MAX_ENTRIES: usize = 65_536;

/// What the walk found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tree {
    /// Entries visited.
    pub entries: usize,
    /// Deepest directory level reached (the root is level 1).
    pub depth: usize,
    /// True when the tree loops, nests too deep or has too many entries: not passed on to goblin.
    pub unsound: bool,
}

/// Walk the tree rooted at the resource directory (`rva`), recording anomalies.
pub fn walk(pe: &Pe<'_>, rva: u32, anomalies: &mut Vec<Anomaly>) -> Tree {
    let mut tree = Tree::default();
    let mut seen = HashSet::new();
    // (offset of a directory relative to the resource base, its level)
    let mut stack = vec![(0u32, 1usize)];
    while let Some((off, level)) = stack.pop() {
        if !seen.insert(off) {
            anomalies.push(Anomaly::limiting(
                "resource-directory-cycle",
                format!("the resource tree loops back to the directory at offset 0x{off:x}; resources were not read"),
            ));
            tree.unsound = true;
            break;
        }
        if level > MAX_DEPTH {
            anomalies.push(Anomaly::limiting(
                "resource-directory-too-deep",
                format!("resource directories nest deeper than {MAX_DEPTH} levels; resources were not read"),
            ));
            tree.unsound = true;
            break;
        }
        tree.depth = tree.depth.max(level);
        let Some(head) = rva.checked_add(off).and_then(|r| pe.get_data(r, 16)).filter(|d| d.len() == 16) else {
            if off == 0 {
                // The root itself is missing: there is nothing to hand to goblin.
                anomalies.push(Anomaly::limiting(
                    "resource-directory-invalid",
                    format!("the resource directory at RVA 0x{rva:x} lies outside the file; resources were not read"),
                ));
                tree.unsound = true;
                break;
            }
            anomalies.push(Anomaly::new(
                "resource-directory-invalid",
                format!("a resource directory at offset 0x{off:x} lies outside the file"),
            ));
            continue;
        };
        let count = usize::from(u16_at(head, 12).unwrap_or(0)) + usize::from(u16_at(head, 14).unwrap_or(0));
        let Some(entries) =
            rva.checked_add(off).and_then(|r| r.checked_add(16)).and_then(|r| pe.get_data(r, count * 8))
        else {
            continue;
        };
        for e in entries.chunks_exact(8) {
            tree.entries += 1;
            if tree.entries > MAX_ENTRIES {
                anomalies.push(Anomaly::limiting(
                    "resource-directory-too-large",
                    format!("more than {MAX_ENTRIES} resource entries; the rest were not read"),
                ));
                tree.unsound = true;
                return tree;
            }
            let target = u32_at(e, 4).unwrap_or(0);
            if target & 0x8000_0000 != 0 {
                stack.push((target & 0x7fff_ffff, level + 1));
            }
        }
    }
    tree
}
