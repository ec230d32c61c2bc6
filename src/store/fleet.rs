//! Fleet prevalence in the store: the `filerep observe` sightings of every participant, rolled up as they are
//! recorded, so that the prevalence of a file is read, not computed, however many sightings it has (issue 7).
//!
//! Tables (schema 4; since schema 5 the per-participant ones are keyed by participant first, so that one
//! run's rows sit together):
//! * `fleet_participants`: one row per (participant, file): first and last sighting, sightings, the
//!   participant's latest OS, country and manufacturer, and the sums of each resource figure over its
//!   sightings (its own mean is sum / sightings);
//! * `fleet_totals`: one row per file: its SHA-1 and MD5 (a lookup by any of its digests finds it), unique
//!   participants, sightings, first and last sighting, and per resource figure the sum of the participants'
//!   own means (kept up to date as a participant's mean moves), the lowest and the highest value reported;
//! * `fleet_values`: which path, parent, command line, owner, platform and privilege each participant
//!   reported of a file (a set: a participant counts once per value);
//! * `fleet_counts`: per file, field and value, the participants: those six fields from `fleet_values`, and
//!   each participant's current OS, country and manufacturer (`''` when it has none).
//!
//! Each resource figure is averaged per participant first and then over the participants, so that a
//! participant that reports a file a thousand times weighs as much as one that reported it once: it cannot
//! move a file's averages by more than its own share (1 / participants). Minimum and maximum are those of
//! every value reported. Every figure is withheld while fewer than the floor of unique participants reported
//! the file ([`MIN_FLOOR`] at the least); a value of a distribution or a common path that fewer than
//! [`MIN_CELL`] participants reported is never shown on its own (it is counted under "Other").

use rusqlite::{OptionalExtension, params};

use super::sqlite::{Error, SqliteStore};
use super::{Digest, DigestKind};
use crate::report::{Figure, FleetProcess, FleetResources, Prevalence, Share};

/// The default floor: figures are withheld below this many unique participants (as the classic page says).
pub const DEFAULT_FLOOR: u64 = 200;
/// The lowest floor a server may be configured with.
pub const MIN_FLOOR: u64 = 5;
/// A value (a country, a path, …) reported by fewer participants is counted under "Other".
pub const MIN_CELL: u64 = 5;
/// Common paths and parents listed at most.
pub const MAX_COMMON: usize = 5;
/// Rows of a distribution at most (the rest under "Other").
pub const MAX_SHARES: usize = 10;

/// The fields of `fleet_values` (0–4, 8) and `fleet_counts` (0–8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Path = 0,
    Parent = 1,
    CommandLine = 2,
    Owner = 3,
    Platform = 4,
    Os = 5,
    Country = 6,
    Manufacturer = 7,
    Privilege = 8,
}

/// The resource figures besides the CPU share, in the order of their columns.
const FIGURES: [&str; 7] = ["private", "virtual", "ws", "peak", "threads", "handles", "processes"];

/// What a participant's machine is, as its sightings are rolled up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostKey {
    /// OS name and version (`Debian GNU/Linux 12`).
    pub os: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
    /// DMI manufacturer.
    pub manufacturer: Option<String>,
}

/// One sighting's figures as the roll-up adds them.
#[derive(Debug, Clone, Default)]
pub struct RollupRow<'a> {
    /// SHA-256.
    pub sha256: &'a [u8],
    /// SHA-1.
    pub sha1: &'a [u8],
    /// MD5.
    pub md5: &'a [u8],
    /// Path.
    pub path: &'a str,
    /// Parent process name.
    pub parent: Option<&'a str>,
    /// Redacted command line.
    pub command_line: Option<&'a str>,
    /// Owner.
    pub owner: Option<&'a str>,
    /// Privilege (`root`, `elevated`, `user`).
    pub privilege: Option<&'a str>,
    /// Platform.
    pub platform: Option<&'a str>,
    /// CPU share.
    pub cpu_percent: Option<f64>,
    /// Private bytes (mean over the run).
    pub private_bytes: f64,
    /// Virtual bytes.
    pub virtual_bytes: f64,
    /// Working set.
    pub working_set: f64,
    /// Peak working set.
    pub peak_working_set: f64,
    /// Threads.
    pub threads: f64,
    /// Handles.
    pub handles: f64,
    /// Processes.
    pub processes: f64,
}

/// The upsert of a file's totals (built once: it is run for every sighting).
fn totals_upsert_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let mut cols = String::from(
            "sha256, sha1, md5, participants, sightings, first_seen, last_seen, cpu_participants, cpu_mean_sum, \
             cpu_min, cpu_max",
        );
        let mut update = String::from(
            "participants = participants + excluded.participants, sightings = sightings + 1, \
             first_seen = min(first_seen, excluded.first_seen), last_seen = max(last_seen, excluded.last_seen), \
             cpu_participants = cpu_participants + excluded.cpu_participants, \
             cpu_mean_sum = cpu_mean_sum + excluded.cpu_mean_sum, \
             cpu_min = coalesce(min(cpu_min, excluded.cpu_min), cpu_min, excluded.cpu_min), \
             cpu_max = coalesce(max(cpu_max, excluded.cpu_max), cpu_max, excluded.cpu_max)",
        );
        for f in FIGURES {
            cols.push_str(&format!(", {f}_mean_sum, {f}_min, {f}_max"));
            update.push_str(&format!(
                ", {f}_mean_sum = {f}_mean_sum + excluded.{f}_mean_sum, {f}_min = min({f}_min, excluded.{f}_min), \
                 {f}_max = max({f}_max, excluded.{f}_max)"
            ));
        }
        let placeholders: Vec<String> = (1..=11 + 3 * FIGURES.len()).map(|i| format!("?{i}")).collect();
        format!(
            "INSERT INTO fleet_totals ({cols}) VALUES ({}) ON CONFLICT (sha256) DO UPDATE SET {update}",
            placeholders.join(", ")
        )
    })
}

/// The query of a file's totals, columns in the order [`SqliteStore::prevalence`] reads them.
fn totals_select_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let mut cols = String::from(
            "participants, sightings, first_seen, last_seen, cpu_participants, cpu_mean_sum, cpu_min, cpu_max",
        );
        for f in FIGURES {
            cols.push_str(&format!(", {f}_mean_sum, {f}_min, {f}_max"));
        }
        format!("SELECT {cols} FROM fleet_totals WHERE sha256 = ?1")
    })
}

/// A participant's roll-up row for one file, as it was before a sighting.
#[derive(Debug, Default)]
struct Before {
    sightings: i64,
    last_seen: i64,
    cpu_n: i64,
    cpu_sum: f64,
    sums: [f64; 7],
    host: [Option<String>; 3],
}

fn count_add(c: &rusqlite::Connection, sha: &[u8], field: Field, value: &str, n: i64) -> Result<(), rusqlite::Error> {
    c.prepare_cached(
        "INSERT INTO fleet_counts (sha256, field, value, participants) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (sha256, field, value) DO UPDATE SET participants = participants + excluded.participants",
    )?
    .execute(params![sha, field as i64, value, n])?;
    Ok(())
}

/// Add one sighting to the roll-up (inside the caller's transaction): the participant's row, the file's
/// totals (the participant's mean moves by the sighting, the file's sum of means by as much), and the counts
/// of the values this participant reports for the first time.
pub(super) fn add_sighting(
    c: &rusqlite::Connection,
    participant: &str,
    at: i64,
    host: &HostKey,
    s: &RollupRow<'_>,
) -> Result<(), rusqlite::Error> {
    let values =
        [s.private_bytes, s.virtual_bytes, s.working_set, s.peak_working_set, s.threads, s.handles, s.processes];
    let before: Option<Before> = c
        .prepare_cached(
            "SELECT sightings, last_seen, cpu_n, cpu_sum, private_sum, virtual_sum, ws_sum, peak_sum, threads_sum, \
             handles_sum, processes_sum, os, country, manufacturer FROM fleet_participants \
             WHERE sha256 = ?1 AND participant = ?2",
        )?
        .query_row(params![s.sha256, participant], |r| {
            let mut b = Before {
                sightings: r.get(0)?,
                last_seen: r.get(1)?,
                cpu_n: r.get(2)?,
                cpu_sum: r.get(3)?,
                ..Before::default()
            };
            for (i, v) in b.sums.iter_mut().enumerate() {
                *v = r.get(4 + i)?;
            }
            b.host = [r.get(11)?, r.get(12)?, r.get(13)?];
            Ok(b)
        })
        .optional()?;
    let new_participant = before.is_none();
    let b = before.unwrap_or_default();
    let mean = |sum: f64, n: i64| if n > 0 { sum / n as f64 } else { 0.0 };
    let n1 = b.sightings + 1;
    let mut sums = b.sums;
    let mut deltas = [0.0; 7];
    for i in 0..7 {
        sums[i] += values[i];
        deltas[i] = mean(sums[i], n1) - mean(b.sums[i], b.sightings);
    }
    let cpu_n1 = b.cpu_n + i64::from(s.cpu_percent.is_some());
    let cpu_sum1 = b.cpu_sum + s.cpu_percent.unwrap_or(0.0);
    let cpu_delta = mean(cpu_sum1, cpu_n1) - mean(b.cpu_sum, b.cpu_n);
    let new_cpu_participant = b.cpu_n == 0 && cpu_n1 > 0;
    // The newest sighting says what the participant's machine is now.
    let newer = new_participant || at >= b.last_seen;
    let host_now =
        if newer { [host.os.clone(), host.country.clone(), host.manufacturer.clone()] } else { b.host.clone() };

    c.prepare_cached(
        "INSERT INTO fleet_participants (sha256, participant, first_seen, last_seen, sightings, os, country, \
         manufacturer, cpu_n, cpu_sum, private_sum, virtual_sum, ws_sum, peak_sum, threads_sum, handles_sum, \
         processes_sum) VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) \
         ON CONFLICT (participant, sha256) DO UPDATE SET first_seen = min(first_seen, excluded.first_seen), \
         last_seen = max(last_seen, excluded.last_seen), sightings = excluded.sightings, os = excluded.os, \
         country = excluded.country, manufacturer = excluded.manufacturer, cpu_n = excluded.cpu_n, \
         cpu_sum = excluded.cpu_sum, private_sum = excluded.private_sum, virtual_sum = excluded.virtual_sum, \
         ws_sum = excluded.ws_sum, peak_sum = excluded.peak_sum, threads_sum = excluded.threads_sum, \
         handles_sum = excluded.handles_sum, processes_sum = excluded.processes_sum",
    )?
    .execute(params![
        s.sha256,
        participant,
        at,
        n1,
        host_now[0],
        host_now[1],
        host_now[2],
        cpu_n1,
        cpu_sum1,
        sums[0],
        sums[1],
        sums[2],
        sums[3],
        sums[4],
        sums[5],
        sums[6],
    ])?;

    // The file's totals.
    let sql = totals_upsert_sql();
    let mut args: Vec<rusqlite::types::Value> = vec![
        s.sha256.to_vec().into(),
        s.sha1.to_vec().into(),
        s.md5.to_vec().into(),
        i64::from(new_participant).into(),
        1i64.into(),
        at.into(),
        at.into(),
        i64::from(new_cpu_participant).into(),
        cpu_delta.into(),
        s.cpu_percent.into(),
        s.cpu_percent.into(),
    ];
    for i in 0..7 {
        args.extend([deltas[i].into(), values[i].into(), values[i].into()]);
    }
    c.prepare_cached(sql)?.execute(rusqlite::params_from_iter(args))?;

    // Values this participant reports for the first time.
    let reported = [
        (Field::Path, Some(s.path)),
        (Field::Parent, s.parent),
        (Field::CommandLine, s.command_line),
        (Field::Owner, s.owner),
        (Field::Privilege, s.privilege),
        (Field::Platform, s.platform),
    ];
    for (field, value) in reported {
        let Some(v) = value.filter(|v| !v.is_empty()) else { continue };
        let added = c
            .prepare_cached(
                "INSERT OR IGNORE INTO fleet_values (sha256, field, value, participant) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![s.sha256, field as i64, v, participant])?;
        if added == 1 {
            count_add(c, s.sha256, field, v, 1)?;
        }
    }
    // The machine: counted once per participant, moved when it changed (a new OS version).
    for (i, field) in [Field::Os, Field::Country, Field::Manufacturer].into_iter().enumerate() {
        let now = host_now[i].as_deref().unwrap_or("");
        let was = b.host[i].as_deref().unwrap_or("");
        if new_participant {
            count_add(c, s.sha256, field, now, 1)?;
        } else if now != was {
            count_add(c, s.sha256, field, was, -1)?;
            count_add(c, s.sha256, field, now, 1)?;
        }
    }
    Ok(())
}

fn round(v: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (v * f).round() / f
}

impl SqliteStore {
    /// The SHA-256 of the sighted file that one of `digests` names (SHA-256, SHA-1 or MD5).
    fn fleet_sha256(&self, digests: &[Digest]) -> Result<Option<Vec<u8>>, Error> {
        for d in digests {
            let sql = match d.kind() {
                DigestKind::Sha256 => "SELECT sha256 FROM fleet_totals WHERE sha256 = ?1",
                DigestKind::Sha1 => "SELECT sha256 FROM fleet_totals WHERE sha1 = ?1 LIMIT 1",
                DigestKind::Md5 => "SELECT sha256 FROM fleet_totals WHERE md5 = ?1 LIMIT 1",
                _ => continue,
            };
            let found: Option<Vec<u8>> = self
                .conn()
                .prepare_cached(sql)
                .and_then(|mut st| st.query_row([d.bytes()], |r| r.get(0)).optional())
                .map_err(|e| self.sql_err(e))?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// The fleet prevalence of the file `digests` name, with figures withheld below `floor` participants
    /// (raised to [`MIN_FLOOR`]). Reads the file's totals and the top rows of its counts: the cost does not
    /// grow with its sightings.
    pub fn prevalence(&self, digests: &[Digest], floor: u64) -> Result<Prevalence, Error> {
        let floor = floor.max(MIN_FLOOR);
        let mut p = Prevalence {
            min_participants: floor,
            withheld: true,
            source: Some(self.path().display().to_string()),
            ..Prevalence::default()
        };
        let Some(sha) = self.fleet_sha256(digests)? else { return Ok(p) };
        let sql = totals_select_sql();
        let row = self
            .conn()
            .prepare_cached(sql)
            .and_then(|mut st| {
                st.query_row([&sha], |r| {
                    let n: i64 = r.get(0)?;
                    let n = u64::try_from(n).unwrap_or(0);
                    if n < floor {
                        return Ok((n, None));
                    }
                    let sightings: i64 = r.get(1)?;
                    let (first, last): (i64, i64) = (r.get(2)?, r.get(3)?);
                    let cpu_n = u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0);
                    let fig = |i: usize, count: u64, decimals: i32| -> Result<Option<Figure>, rusqlite::Error> {
                        let sum: f64 = r.get(i)?;
                        let (min, max): (Option<f64>, Option<f64>) = (r.get(i + 1)?, r.get(i + 2)?);
                        Ok(match (min, max) {
                            (Some(min), Some(max)) if count >= floor => Some(Figure {
                                mean: round(sum / count as f64, decimals),
                                min: round(min, decimals),
                                max: round(max, decimals),
                                participants: count,
                            }),
                            _ => None,
                        })
                    };
                    let resources = FleetResources {
                        cpu_percent: fig(5, cpu_n, 2)?,
                        private_bytes: fig(8, n, 0)?,
                        virtual_bytes: fig(11, n, 0)?,
                        working_set: fig(14, n, 0)?,
                        peak_working_set: fig(17, n, 0)?,
                        threads: fig(20, n, 2)?,
                        handles: fig(23, n, 2)?,
                        processes: fig(26, n, 2)?,
                    };
                    Ok((n, Some((sightings, first, last, resources))))
                })
            })
            .map_err(|e| self.sql_err(e))?;
        let (n, figures) = row;
        p.participants = n;
        let Some((sightings, first, last, resources)) = figures else { return Ok(p) };
        p.withheld = false;
        p.sightings = u64::try_from(sightings).ok();
        p.first_seen = Some(crate::analysis::pe::rfc3339(first));
        p.last_seen = Some(crate::analysis::pe::rfc3339(last));
        p.resources = resources;
        p.os_versions = Some(self.shares(&sha, Field::Os, n, MAX_SHARES, true)?);
        p.countries = Some(self.shares(&sha, Field::Country, n, MAX_SHARES, true)?);
        p.manufacturers = Some(self.shares(&sha, Field::Manufacturer, n, MAX_SHARES, true)?);
        let paths = self.shares(&sha, Field::Path, n, MAX_COMMON, false)?;
        let parents = self.shares(&sha, Field::Parent, n, MAX_COMMON, false)?;
        let top = |f: Field| -> Result<Option<String>, Error> {
            Ok(self.shares(&sha, f, n, 1, false)?.into_iter().next().map(|s| s.value))
        };
        p.process = FleetProcess {
            typical_path: paths.first().map(|s| s.value.clone()),
            typical_command_line: top(Field::CommandLine)?,
            typical_owner: top(Field::Owner)?,
            typical_privilege: top(Field::Privilege)?,
            typical_parent: parents.first().map(|s| s.value.clone()),
            platform: top(Field::Platform)?,
            paths: Some(paths),
            parents: Some(parents),
        };
        Ok(p)
    }

    /// The file's `field` values with the most participants (at most `limit`, each reported by at least
    /// [`MIN_CELL`]); with `other`, the participants of every other value are counted under "Other".
    fn shares(&self, sha: &[u8], field: Field, total: u64, limit: usize, other: bool) -> Result<Vec<Share>, Error> {
        let rows: Vec<(Option<String>, i64)> = self
            .conn()
            .prepare_cached(
                "SELECT value, participants FROM fleet_counts WHERE sha256 = ?1 AND field = ?2 \
                 ORDER BY participants DESC, value LIMIT ?3",
            )
            .and_then(|mut st| {
                st.query_map(params![sha, field as i64, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
            })
            .map_err(|e| self.sql_err(e))?;
        Ok(shares(rows, total, other))
    }
}

/// Percent with one decimal.
fn percent(n: u64, total: u64) -> f64 {
    if total == 0 { 0.0 } else { round(n as f64 * 100.0 / total as f64, 1) }
}

/// Rows (value, participants), most first, as shares of `total`: values that fewer than [`MIN_CELL`]
/// participants reported are left out; with `other`, every participant not in a row shown (a small value, or
/// one beyond the rows read) is counted under "Other". `''` is "Unknown" (a participant without the value).
fn shares(rows: Vec<(Option<String>, i64)>, total: u64, other: bool) -> Vec<Share> {
    let mut out: Vec<Share> = Vec::new();
    let mut shown = 0u64;
    for (value, n) in rows {
        let n = u64::try_from(n).unwrap_or(0);
        if n < MIN_CELL {
            continue;
        }
        shown += n;
        let value = value.filter(|v| !v.is_empty()).unwrap_or_else(|| "Unknown".into());
        out.push(Share { value, participants: n, percent: percent(n, total) });
    }
    let rest = total.saturating_sub(shown);
    if other && rest > 0 {
        out.push(Share { value: "Other".into(), participants: rest, percent: percent(rest, total) });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_are_gathered_under_other() {
        let rows =
            vec![(Some("DE".to_string()), 10), (None, 6), (Some("FR".to_string()), 4), (Some("LI".to_string()), 1)];
        let s = shares(rows, 21, true);
        let got: Vec<(&str, u64, f64)> = s.iter().map(|s| (s.value.as_str(), s.participants, s.percent)).collect();
        assert_eq!(got, vec![("DE", 10, 47.6), ("Unknown", 6, 28.6), ("Other", 5, 23.8)]);
        // Without "Other" (common paths), small values are left out altogether.
        let s = shares(vec![(Some("/a".into()), 7), (Some("/home/alice/a".into()), 1)], 8, false);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].value, "/a");
    }

    use crate::store::sqlite::{Mode, ObservationRow, SightingRow};

    fn run(store: &SqliteStore, participant: usize, at: i64, country: &str, ws: i64, cpu: Option<f64>) -> bool {
        let row = ObservationRow {
            participant: format!("{participant:032x}"),
            started_at: at,
            duration_ms: 1000,
            samples: 2,
            host: "{}".into(),
            host_key: HostKey {
                os: Some("Debian GNU/Linux 12".into()),
                country: Some(country.into()),
                manufacturer: None,
            },
        };
        let s = SightingRow {
            sha256: [1; 32],
            sha1: [2; 20],
            md5: [3; 16],
            path: if participant % 2 == 0 { "/usr/bin/a".into() } else { format!("/home/u{participant}/a") },
            processes: 1,
            owner: Some("root".into()),
            cpu_percent: cpu,
            working_set: (ws, ws),
            threads: (2.0, 2),
            ..SightingRow::default()
        };
        store.record_observation(&row, &[], &[s]).unwrap().is_some()
    }

    #[test]
    fn figures_are_per_participant_and_withheld_below_the_floor() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.sqlite"), Mode::Write).unwrap();
        let sha = [Digest::parse_hex(DigestKind::Sha256, &"01".repeat(32)).unwrap()];
        // Four participants: below the floor of 5 nothing but the count is given.
        for i in 1..=4 {
            assert!(run(&store, i, 1000 + i as i64, "DE", 0, Some(1.0)));
        }
        let p = store.prevalence(&sha, 5).unwrap();
        assert_eq!((p.participants, p.withheld, p.min_participants), (4, true, 5));
        assert_eq!(p.resources, FleetResources::default());
        assert_eq!((p.sightings, p.first_seen.as_ref(), p.countries.as_ref()), (None, None, None));
        assert_eq!(p.process, FleetProcess::default());
        // A floor below 5 is raised to 5.
        assert!(store.prevalence(&sha, 1).unwrap().withheld);
        // A fifth participant floods: 100 runs with a large working set. It weighs as one participant.
        for k in 0..100 {
            assert!(run(&store, 5, 5000 + k, "FR", 1000, None));
        }
        // A replay of a run already recorded is not counted again.
        assert!(!run(&store, 5, 5000, "FR", 1000, None));
        let p = store.prevalence(&sha, 5).unwrap();
        assert_eq!((p.participants, p.withheld, p.sightings), (5, false, Some(104)));
        let ws = p.resources.working_set.unwrap();
        assert_eq!((ws.mean, ws.min, ws.max, ws.participants), (200.0, 0.0, 1000.0, 5));
        // Only four participants reported a CPU share: below the floor, that figure alone is withheld.
        assert_eq!(p.resources.cpu_percent, None);
        assert_eq!(p.resources.threads.unwrap().mean, 2.0);
        assert_eq!(p.first_seen.as_deref(), Some("1970-01-01T00:16:41Z"));
        // Countries: DE 4 of 5 is below the cell size, FR 1: both gathered under "Other".
        let c: Vec<(String, u64)> = p.countries.unwrap().into_iter().map(|s| (s.value, s.participants)).collect();
        assert_eq!(c, vec![("Other".to_string(), 5)]);
        let os = p.os_versions.unwrap();
        assert_eq!((os[0].value.as_str(), os[0].participants, os[0].percent), ("Debian GNU/Linux 12", 5, 100.0));
        assert_eq!(p.manufacturers.unwrap()[0].value, "Unknown");
        // Paths: /usr/bin/a by 2 participants only, each home path by one: none is shown.
        assert_eq!(p.process.paths, Some(vec![]));
        assert_eq!(p.process.typical_path, None);
        assert_eq!(p.process.typical_owner.as_deref(), Some("root"));
        // Found by SHA-1 and MD5 too; another file is not.
        let by_md5 = [Digest::parse_hex(DigestKind::Md5, &"03".repeat(16)).unwrap()];
        assert_eq!(store.prevalence(&by_md5, 5).unwrap().participants, 5);
        let other = [Digest::parse_hex(DigestKind::Sha256, &"09".repeat(32)).unwrap()];
        assert_eq!(store.prevalence(&other, 5).unwrap().participants, 0);
    }

    #[test]
    fn a_participant_that_upgrades_its_os_moves_in_the_distribution() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.sqlite"), Mode::Write).unwrap();
        let sha = [Digest::parse_hex(DigestKind::Sha256, &"01".repeat(32)).unwrap()];
        for i in 0..6 {
            run(&store, i, 100, "DE", 10, None);
        }
        // Participant 0 upgrades; an older run arriving late does not move it back.
        let mut row = ObservationRow {
            participant: format!("{:032x}", 0),
            started_at: 200,
            duration_ms: 1,
            samples: 1,
            host: "{}".into(),
            host_key: HostKey { os: Some("Debian GNU/Linux 13".into()), country: None, manufacturer: None },
        };
        let s = SightingRow {
            sha256: [1; 32],
            sha1: [2; 20],
            md5: [3; 16],
            path: "/usr/bin/a".into(),
            ..Default::default()
        };
        store.record_observation(&row, &[], std::slice::from_ref(&s)).unwrap();
        row.started_at = 50;
        row.host_key.os = Some("Debian GNU/Linux 11".into());
        store.record_observation(&row, &[], &[s]).unwrap();
        let p = store.prevalence(&sha, 5).unwrap();
        let os: Vec<(String, u64)> = p.os_versions.unwrap().into_iter().map(|s| (s.value, s.participants)).collect();
        assert_eq!(os, vec![("Debian GNU/Linux 12".to_string(), 5), ("Other".to_string(), 1)]);
        let c: Vec<(String, u64)> = p.countries.unwrap().into_iter().map(|s| (s.value, s.participants)).collect();
        assert_eq!(c, vec![("DE".to_string(), 5), ("Other".to_string(), 1)], "participant 0 has no country now");
        assert_eq!((p.participants, p.sightings), (6, Some(8)));
    }

    #[test]
    fn a_schema_3_store_is_rolled_up_when_it_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.sqlite");
        {
            let c = rusqlite::Connection::open(&old).unwrap();
            for m in &crate::store::sqlite::MIGRATIONS[..3] {
                c.execute_batch(m).unwrap();
            }
            c.pragma_update(None, "user_version", 3).unwrap();
            for i in 0..6i64 {
                let host = format!(
                    r#"{{"os_name":"Debian GNU/Linux","os_version":"12","country":"{}"}}"#,
                    if i < 5 { "DE" } else { "FR" }
                );
                c.execute(
                    "INSERT INTO observations (participant, started_at, duration_ms, samples, host) VALUES (?1, ?2, 1, 1, ?3)",
                    params![format!("{i:032x}"), 100 + i, host],
                )
                .unwrap();
                c.execute(
                    "INSERT INTO sightings (observation, participant, sha256, sha1, md5, path, observed_at, processes, \
                     owner, cpu_percent, private_mean, private_max, virtual_mean, virtual_max, ws_mean, ws_max, peak_ws, \
                     threads_mean, threads_max, handles_mean, handles_max) \
                     VALUES (?1, ?2, ?3, ?4, ?5, '/usr/bin/a', ?6, 1, 'root', ?7, 1, 1, 1, 1, ?8, ?8, 9, 2.0, 2, 3.0, 3)",
                    params![i + 1, format!("{i:032x}"), vec![1u8; 32], vec![2u8; 20], vec![3u8; 16], 100 + i, i as f64, 100 * i],
                )
                .unwrap();
            }
        }
        let store = SqliteStore::open(&old, Mode::Write).unwrap();
        let p = store.prevalence(&[Digest::parse_hex(DigestKind::Md5, &"03".repeat(16)).unwrap()], 5).unwrap();
        assert_eq!((p.participants, p.sightings, p.withheld), (6, Some(6), false));
        let ws = p.resources.working_set.unwrap();
        assert_eq!((ws.mean, ws.min, ws.max), (250.0, 0.0, 500.0));
        assert_eq!(p.resources.cpu_percent.unwrap().mean, 2.5);
        assert_eq!(p.process.typical_path.as_deref(), Some("/usr/bin/a"));
        assert_eq!(p.process.typical_owner.as_deref(), Some("root"));
        let c: Vec<(String, u64)> = p.countries.unwrap().into_iter().map(|s| (s.value, s.participants)).collect();
        assert_eq!(c, vec![("DE".to_string(), 5), ("Other".to_string(), 1)]);
        assert_eq!(p.first_seen.as_deref(), Some("1970-01-01T00:01:40Z"));

        // The migrated roll-up (re-keyed by schema 5) goes on: a participant seen before counts once, and so
        // does the path it reported before.
        let run = ObservationRow {
            participant: format!("{:032x}", 0),
            started_at: 200,
            duration_ms: 1,
            samples: 1,
            host: "{}".into(),
            host_key: HostKey {
                os: Some("Debian GNU/Linux 12".into()),
                country: Some("DE".into()),
                manufacturer: None,
            },
        };
        let again = SightingRow {
            sha256: [1; 32],
            sha1: [2; 20],
            md5: [3; 16],
            path: "/usr/bin/a".into(),
            owner: Some("root".into()),
            ..Default::default()
        };
        store.record_observation(&run, &[], &[again]).unwrap();
        let p = store.prevalence(&[Digest::parse_hex(DigestKind::Md5, &"03".repeat(16)).unwrap()], 5).unwrap();
        assert_eq!((p.participants, p.sightings), (6, Some(7)));
        let c = rusqlite::Connection::open(&old).unwrap();
        let path_count: i64 =
            c.query_row("SELECT participants FROM fleet_counts WHERE field = 0", [], |r| r.get(0)).unwrap();
        assert_eq!(path_count, 6);
        let version: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, crate::store::sqlite::SCHEMA_VERSION);
    }

    #[test]
    fn participants_beyond_the_rows_read_are_other() {
        let rows: Vec<(Option<String>, i64)> = (0..10).map(|i| (Some(format!("v{i:02}")), 20 - i)).collect();
        let s = shares(rows, 1000, true);
        assert_eq!(s.len(), 11);
        assert_eq!(s.last().unwrap().value, "Other");
        assert_eq!(s.last().unwrap().participants, 1000 - (11..=20).sum::<u64>());
    }
}
