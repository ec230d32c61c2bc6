//! The user's configuration file: a remote store and the opt-in providers.
//!
//! `$FILEREP_CONFIG`, else `$XDG_CONFIG_HOME/filerep/config.toml` (`~/.config/filerep/config.toml`). A missing
//! file is an empty configuration; anything else wrong with it (unknown keys, bad values) is a one-line error
//! naming the file. Command-line options and the environment win over the file.
//!
//! ```toml
//! [remote]
//! url = "http://reputation.example.internal:7878"
//! required = false          # true: fail when it cannot answer
//! token_file = "/etc/filerep/token"   # for --submit
//!
//! [providers]
//! enabled = ["hashlookup"]  # asked on every run; --provider names them for one run
//! cache_ttl_hours = 24
//!
//! [observe]
//! country = "DE"            # ISO 3166-1 alpha-2, for the host profile of `filerep observe`
//!
//! [providers.virustotal]
//! key = "…"                 # or FILEREP_VIRUSTOTAL_KEY; a file holding keys should be private (chmod 600)
//! requests_per_minute = 4
//! ```
//!
//! Nothing here opens a connection.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but could not be read.
    #[error("config {path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// The error (in the message, not chained: one line says it once).
        error: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped keys.
    #[error("config {path}: {why}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong (one line).
        why: String,
    },
}

/// The configuration file's content.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// A `filerep serve` instance to ask.
    #[serde(default)]
    pub remote: RemoteConfig,
    /// The opt-in public providers.
    #[serde(default)]
    pub providers: ProvidersConfig,
    /// `filerep observe`.
    #[serde(default)]
    pub observe: ObserveConfig,
    /// Where the file was read from (not a key of the file).
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

/// `[remote]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    /// Base URL (`http://host:7878`).
    pub url: Option<String>,
    /// Fail (exit 2) when the remote cannot answer, instead of a warning.
    #[serde(default)]
    pub required: bool,
    /// A file holding the write token for `--submit` (else `$FILEREP_REMOTE_TOKEN`).
    pub token_file: Option<PathBuf>,
    /// Whole-request timeout in seconds (default 30).
    pub timeout_secs: Option<u64>,
}

/// `[observe]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObserveConfig {
    /// The country of this machine, ISO 3166-1 alpha-2 (`DE`): the only source of the country in the host
    /// profile (it is never guessed from the network).
    pub country: Option<String>,
}

/// `[providers]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvidersConfig {
    /// Providers asked on every run.
    #[serde(default)]
    pub enabled: Vec<String>,
    /// How long an answer is reused from the local cache, in hours (default 24).
    pub cache_ttl_hours: Option<u64>,
    /// The longest a lookup waits for a request budget or a rate limit, in seconds.
    pub max_wait_secs: Option<u64>,
    /// `[providers.virustotal]`.
    pub virustotal: Option<ProviderConfig>,
    /// `[providers.malwarebazaar]`.
    pub malwarebazaar: Option<ProviderConfig>,
    /// `[providers.hashlookup]`.
    pub hashlookup: Option<ProviderConfig>,
}

/// `[providers.NAME]`.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// The API key (the environment variable wins).
    pub key: Option<String>,
    /// Another base URL (a self-hosted hashlookup, a proxy).
    pub url: Option<String>,
    /// Requests per minute at most (VirusTotal's free tier: 4).
    pub requests_per_minute: Option<u32>,
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("url", &self.url)
            .field("requests_per_minute", &self.requests_per_minute)
            .finish()
    }
}

/// The configuration file's path: `$FILEREP_CONFIG`, else the XDG config directory.
pub fn path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FILEREP_CONFIG").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty() && Path::new(v).is_absolute())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("filerep").join("config.toml"))
}

/// Read the configuration (an empty one when there is no file).
pub fn load() -> Result<Config, ConfigError> {
    match path() {
        Some(p) => load_from(&p),
        None => Ok(Config::default()),
    }
}

/// Files larger than this are not configuration files.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Read the configuration from `path` (an empty one when it does not exist).
pub fn load_from(path: &Path) -> Result<Config, ConfigError> {
    let display = path.display().to_string();
    let text = match std::fs::metadata(path) {
        // A directory on the way that this user may not enter (HOME of another user, under sudo -u) hides
        // nothing of this user's: no configuration.
        Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied) => {
            return Ok(Config::default());
        }
        Err(error) => return Err(ConfigError::Io { path: display, error }),
        Ok(m) if !m.is_file() => {
            return Err(ConfigError::Invalid { path: display, why: "not a regular file".into() });
        }
        Ok(m) if m.len() > MAX_CONFIG_BYTES => {
            return Err(ConfigError::Invalid { path: display, why: "larger than 1 MiB".into() });
        }
        Ok(_) => std::fs::read_to_string(path).map_err(|error| ConfigError::Io { path: display.clone(), error })?,
    };
    let mut config: Config = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
        path: display.clone(),
        // toml's message spans several lines (a snippet of the file); keep the first and the location.
        why: one_line(&e.to_string()),
    })?;
    for name in &config.providers.enabled {
        if !matches!(name.as_str(), "virustotal" | "malwarebazaar" | "hashlookup") {
            return Err(ConfigError::Invalid {
                path: display,
                why: format!(
                    "unknown provider '{}' in providers.enabled (known: virustotal, malwarebazaar, hashlookup)",
                    crate::term::sanitize(name)
                ),
            });
        }
    }
    if let Some(c) = &mut config.observe.country {
        if !is_country_code(c) {
            return Err(ConfigError::Invalid {
                path: display,
                why: format!(
                    "observe.country '{}' is not an ISO 3166-1 alpha-2 code (two letters, e.g. \"DE\")",
                    crate::term::sanitize(c)
                ),
            });
        }
        c.make_ascii_uppercase();
    }
    config.path = Some(path.to_path_buf());
    Ok(config)
}

/// The officially assigned ISO 3166-1 alpha-2 codes.
const ISO_3166_ALPHA2: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ \
BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI \
FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT \
JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ \
MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS \
RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA \
UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// True for an officially assigned ISO 3166-1 alpha-2 code (either case).
pub fn is_country_code(code: &str) -> bool {
    code.len() == 2
        && code.bytes().all(|b| b.is_ascii_alphabetic())
        && ISO_3166_ALPHA2.split_ascii_whitespace().any(|c| c.eq_ignore_ascii_case(code))
}

/// True when a file that holds secrets can be read by other users.
#[cfg(unix)]
pub fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).map(|m| m.permissions().mode() & 0o077 != 0).unwrap_or(false)
}

/// True when a file that holds secrets can be read by other users.
#[cfg(not(unix))]
pub fn readable_by_others(_path: &Path) -> bool {
    false
}

impl Config {
    /// True when the file holds an API key.
    pub fn has_keys(&self) -> bool {
        [&self.providers.virustotal, &self.providers.malwarebazaar, &self.providers.hashlookup]
            .into_iter()
            .any(|p| p.as_ref().is_some_and(|p| p.key.is_some()))
    }

    /// The `[providers.NAME]` table.
    pub fn provider(&self, name: &str) -> Option<&ProviderConfig> {
        match name {
            "virustotal" => self.providers.virustotal.as_ref(),
            "malwarebazaar" => self.providers.malwarebazaar.as_ref(),
            "hashlookup" => self.providers.hashlookup.as_ref(),
            _ => None,
        }
    }
}

/// toml's multi-line error as one line: the message, then where.
fn one_line(msg: &str) -> String {
    let mut lines = msg.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("invalid TOML").to_string();
    // The last line is the explanation ("unknown field `x`, expected …"); the first says where.
    match msg.lines().map(str::trim).rfind(|l| !l.is_empty() && !l.starts_with('|') && !l.starts_with('^')) {
        Some(last) if last != first => format!("{first}: {last}"),
        _ => first,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    #[test]
    fn a_missing_file_is_an_empty_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let c = load_from(&dir.path().join("none.toml")).unwrap();
        assert!(c.remote.url.is_none() && c.providers.enabled.is_empty() && c.path.is_none());
    }

    #[test]
    fn the_documented_example_parses() {
        let (_d, p) = write(
            "[remote]\nurl = \"http://127.0.0.1:7878\"\nrequired = true\n\n[providers]\nenabled = [\"hashlookup\"]\n\
             cache_ttl_hours = 2\n\n[providers.virustotal]\nkey = \"SECRET-KEY\"\nrequests_per_minute = 4\n",
        );
        let c = load_from(&p).unwrap();
        assert_eq!(c.remote.url.as_deref(), Some("http://127.0.0.1:7878"));
        assert!(c.remote.required);
        assert_eq!(c.providers.enabled, ["hashlookup"]);
        assert_eq!(c.providers.cache_ttl_hours, Some(2));
        assert_eq!(c.provider("virustotal").unwrap().requests_per_minute, Some(4));
        assert!(c.has_keys());
        // The key never shows in a debug print.
        assert!(!format!("{c:?}").contains("SECRET-KEY"));
    }

    #[test]
    fn the_observe_country_is_validated_and_upper_cased() {
        let (_d, p) = write("[observe]\ncountry = \"de\"\n");
        assert_eq!(load_from(&p).unwrap().observe.country.as_deref(), Some("DE"));
        assert_eq!(ISO_3166_ALPHA2.split_ascii_whitespace().count(), 249);
        assert!(is_country_code("US") && is_country_code("ax") && !is_country_code("UK") && !is_country_code("D"));
    }

    #[test]
    fn mistakes_are_one_line_errors_naming_the_file() {
        for (text, want) in [
            ("[remote]\nurll = \"x\"\n", "unknown field"),
            ("[providers]\nenabled = [\"virustotl\"]\n", "unknown provider 'virustotl'"),
            ("[remote\n", "config"),
            ("[providers.virustotal]\nkey = 5\n", "invalid type"),
            ("[observe]\ncountry = \"XX\"\n", "not an ISO 3166-1 alpha-2 code"),
            ("[observe]\ncountry = \"DEU\"\n", "not an ISO 3166-1 alpha-2 code"),
            ("[observe]\ncontry = \"DE\"\n", "unknown field"),
        ] {
            let (_d, p) = write(text);
            let e = load_from(&p).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
            assert!(e.contains("config.toml"), "{e}");
            assert!(!e.contains('\n'), "{e:?}");
        }
    }
}
