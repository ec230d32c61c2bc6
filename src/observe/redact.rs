//! Command lines with the user-specific parts taken out, before they are stored or shown.
//!
//! What goes: the values of secret-looking options (`--password X`, `--token=X`, `api_key=X`), the user
//! information of URLs (`https://user:pass@host`), e-mail addresses, the owner's home directory (`<home>`) and
//! user name (`<user>`), and long hex or base64 runs (32 characters or more: keys, tokens, session ids). What is
//! left is capped at [`MAX_COMMAND_LINE`] characters. Control and invisible characters in an argument (a
//! newline in `sh -c` script, an escape sequence) become `\xNN` / `\u{..}` escapes, as on the card: a
//! command line is one line of printable text wherever it goes.
//!
//! `-p` is left alone: it is a port (`ssh -p 22`) or a path as often as a password, and redacting its value
//! would hide more that is harmless than it protects.

/// The longest command line kept, in characters.
pub const MAX_COMMAND_LINE: usize = 1024;

const REDACTED: &str = "<redacted>";

/// Option names (without dashes, lower case) whose value is a secret.
const SECRET_OPTIONS: &[&str] = &[
    "password",
    "passwd",
    "pass",
    "pwd",
    "token",
    "secret",
    "key",
    "api-key",
    "apikey",
    "api_key",
    "access-token",
    "access_token",
    "auth",
    "auth-token",
    "credentials",
    "client-secret",
    "client_secret",
    "private-key",
];

/// Words that make a `name=value` argument's value a secret when the name contains them.
const SECRET_WORDS: &[&str] = &["password", "passwd", "secret", "token", "key", "auth", "credential", "pwd"];

/// The command line `args` as one redacted string. `user` and `home` are the process owner's.
pub fn redact_command_line(args: &[String], user: Option<&str>, home: Option<&str>) -> String {
    let mut parts = Vec::with_capacity(args.len());
    let mut value_is_secret = false;
    for arg in args {
        let arg: &str = &crate::term::sanitize(arg);
        if value_is_secret {
            value_is_secret = false;
            parts.push(REDACTED.to_string());
            continue;
        }
        let dashes = arg.len() - arg.trim_start_matches('-').len();
        let body = &arg[dashes..];
        match body.split_once('=') {
            Some((name, _)) if is_secret_name(name, dashes > 0) => {
                parts.push(format!("{}{name}={REDACTED}", &arg[..dashes]));
            }
            Some(_) => parts.push(arg.to_string()),
            None if dashes > 0 && SECRET_OPTIONS.contains(&body.to_ascii_lowercase().as_str()) => {
                value_is_secret = true;
                parts.push(arg.to_string());
            }
            None => parts.push(arg.to_string()),
        }
    }
    let joined = parts.iter().map(|p| quote(p)).collect::<Vec<_>>().join(" ");
    let mut s = redact_url_userinfo(&joined);
    s = redact_quoted_secrets(&s);
    s = redact_emails(&s);
    if let Some(home) = home.filter(|h| h.len() > 1 && *h != "/") {
        s = s.replace(home.trim_end_matches('/'), "<home>");
    }
    if let Some(user) = user.filter(|u| !u.is_empty()) {
        s = replace_word(&s, user, "<user>");
    }
    s = redact_long_tokens(&s);
    cut(s, MAX_COMMAND_LINE)
}

fn is_secret_name(name: &str, dashed: bool) -> bool {
    let lower = name.to_ascii_lowercase();
    if dashed && SECRET_OPTIONS.contains(&lower.as_str()) {
        return true;
    }
    SECRET_WORDS.iter().any(|w| lower.contains(w))
}

fn quote(arg: &str) -> String {
    if arg.is_empty() {
        "''".into()
    } else if arg.chars().any(char::is_whitespace) {
        format!("'{}'", arg.replace('\'', r"'\''"))
    } else {
        arg.to_string()
    }
}

/// JSON (or YAML-like) pairs in an argument: `"DB_PASSWORD": "x"` → `"DB_PASSWORD": "<redacted>"`.
fn redact_quoted_secrets(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    // Find `"name"` followed by optional spaces, a colon, optional spaces and a quoted value.
    while let Some(open) = rest.find('"') {
        let after_open = &rest[open + 1..];
        let Some(close) = after_open.find('"') else { break };
        let name = &after_open[..close];
        let tail = &after_open[close + 1..];
        let value = tail.trim_start().strip_prefix(':').map(str::trim_start);
        match value.and_then(|v| v.strip_prefix('"')) {
            Some(v) if is_secret_name(name, false) => {
                // The value ends at the next unescaped quote (or the end).
                let mut end = v.len();
                let mut escaped = false;
                for (i, c) in v.char_indices() {
                    match c {
                        '\\' if !escaped => escaped = true,
                        '"' if !escaped => {
                            end = i;
                            break;
                        }
                        _ => escaped = false,
                    }
                }
                let value_start = rest.len() - v.len();
                out.push_str(&rest[..value_start]);
                out.push_str(REDACTED);
                // Past the closing quote, so that it is not taken for an opening one.
                let next = if end < v.len() { end + 1 } else { end };
                out.push_str(&v[end..next]);
                rest = &v[next..];
            }
            _ => {
                out.push_str(&rest[..open + 1 + close + 1]);
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `scheme://user:pass@host` → `scheme://<redacted>@host`.
fn redact_url_userinfo(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let authority_end =
            tail.find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace()).unwrap_or(tail.len());
        match tail[..authority_end].rfind('@') {
            Some(at) => {
                out.push_str(REDACTED);
                out.push_str(&tail[at..authority_end]);
            }
            None => out.push_str(&tail[..authority_end]),
        }
        rest = &tail[authority_end..];
    }
    out.push_str(rest);
    out
}

fn is_local_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-')
}

fn is_domain_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-')
}

/// `name@example.org` → `<email>`.
fn redact_emails(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut copied = 0;
    while i < chars.len() {
        if chars[i] != '@' {
            i += 1;
            continue;
        }
        let mut start = i;
        while start > copied && is_local_char(chars[start - 1]) {
            start -= 1;
        }
        let mut end = i + 1;
        while end < chars.len() && is_domain_char(chars[end]) {
            end += 1;
        }
        // Trailing dots are punctuation, not the domain.
        while end > i + 1 && chars[end - 1] == '.' {
            end -= 1;
        }
        let domain: String = chars[i + 1..end].iter().collect();
        let tld_ok = domain.rsplit_once('.').is_some_and(|(host, tld)| {
            !host.is_empty() && tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic())
        });
        if start < i && tld_ok {
            out.extend(&chars[copied..start]);
            out.push_str("<email>");
            copied = end;
            i = end;
        } else {
            i += 1;
        }
    }
    out.extend(&chars[copied..]);
    out
}

/// Replace `word` where it stands alone (not inside a longer name).
fn replace_word(s: &str, word: &str, with: &str) -> String {
    let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '-' || c == '.';
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(word) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + word.len()..].chars().next();
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        if before.is_some_and(is_word) || after.is_some_and(is_word) {
            out.push_str(&tail[..word.len()]);
        } else {
            out.push_str(with);
        }
        rest = &tail[word.len()..];
    }
    out.push_str(rest);
    out
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '_' | '-' | '=')
}

/// Runs of 32 or more token characters that look like a key: hex (with or without dashes, as in a UUID), or
/// base64 with digits and both cases of letters. Long option names (`--disable-background-networking`) stay.
fn looks_like_token(run: &str) -> bool {
    if run.len() < 32 {
        return false;
    }
    let hex = run.chars().filter(|c| *c != '-').all(|c| c.is_ascii_hexdigit());
    let digits = run.chars().any(|c| c.is_ascii_digit());
    let upper = run.chars().any(|c| c.is_ascii_uppercase());
    let lower = run.chars().any(|c| c.is_ascii_lowercase());
    (hex && digits && run.chars().filter(char::is_ascii_hexdigit).count() >= 32) || (digits && upper && lower)
}

fn redact_long_tokens(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut run_start: Option<usize> = None;
    for (i, c) in s.char_indices().chain(std::iter::once((s.len(), ' '))) {
        if i < s.len() && is_token_char(c) {
            run_start.get_or_insert(i);
            continue;
        }
        if let Some(start) = run_start.take() {
            let run = &s[start..i];
            // A `name=` in front of the value is kept.
            let (name, value) = match run.find('=') {
                Some(eq) if eq + 1 < run.len() => run.split_at(eq + 1),
                _ => ("", run),
            };
            if looks_like_token(value) {
                out.push_str(name);
                out.push_str(REDACTED);
            } else {
                out.push_str(run);
            }
        }
        if i < s.len() {
            out.push(c);
        }
    }
    out
}

/// `s` cut to at most `max` characters, the last of them `…` when it was longer.
fn cut(s: String, max: usize) -> String {
    if s.chars().count() <= max {
        return s;
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A process-controlled text (a path, a process name, a user name) as one line of printable text of at most
/// `max` characters: control and invisible characters escaped as [`crate::term::sanitize`] does, the rest cut
/// with `…`.
pub fn printable(s: &str, max: usize) -> String {
    cut(crate::term::sanitize(s).into_owned(), max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(args: &[&str]) -> String {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        redact_command_line(&args, Some("alice"), Some("/home/alice"))
    }

    #[test]
    fn control_characters_become_escapes() {
        // A shell script with a newline and an escape sequence: one printable line, the secret still found.
        let line = r(&["sh", "-c", "sleep 30\n: \x1b[2J", "--token\x07", "x", "--password", "hunter2\r"]);
        assert_eq!(line, r"sh -c 'sleep 30\x0a: \x1b[2J' --token\x07 x --password <redacted>");
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert_eq!(r(&["a\u{202e}b", "\u{85}"]), r"a\u{202e}b \x85");
    }

    #[test]
    fn printable_escapes_and_caps() {
        assert_eq!(printable("/usr/bin/sleep", 4096), "/usr/bin/sleep");
        assert_eq!(printable("/tmp/a\nb", 4096), r"/tmp/a\x0ab");
        assert_eq!(printable("abcdef", 4), "abc…");
        assert_eq!(printable("a\nb", 4), r"a\x…");
        assert!(printable(&"\x1b".repeat(2000), 4096).chars().count() <= 4096);
    }

    #[test]
    fn secret_options_lose_their_values() {
        assert_eq!(r(&["mysql", "--password", "hunter2", "-u", "bob"]), "mysql --password <redacted> -u bob");
        assert_eq!(r(&["app", "--token=abc", "--verbose"]), "app --token=<redacted> --verbose");
        assert_eq!(r(&["app", "-key", "k"]), "app -key <redacted>");
        assert_eq!(r(&["app", "--API-KEY", "k", "x"]), "app --API-KEY <redacted> x");
        assert_eq!(
            r(&["env", "DB_PASSWORD=hunter2", "secret=1", "token=2", "key=3", "mode=fast"]),
            "env DB_PASSWORD=<redacted> secret=<redacted> token=<redacted> key=<redacted> mode=fast"
        );
        // A secret option at the very end has no value to hide.
        assert_eq!(r(&["app", "--password"]), "app --password");
        // -p is a port as often as a password: kept.
        assert_eq!(r(&["ssh", "-p", "22", "host"]), "ssh -p 22 host");
    }

    #[test]
    fn secrets_in_json_arguments_go() {
        assert_eq!(
            r(&["run", "--env", r#"{"HOME": "/x", "API_TOKEN": "abc\"def", "Secret" : "s", "n": 1}"#]),
            r#"run --env '{"HOME": "/x", "API_TOKEN": "<redacted>", "Secret" : "<redacted>", "n": 1}'"#
        );
        // An unterminated value is redacted to the end.
        assert_eq!(r(&["x", r#"{"password": "open"#]), r#"x '{"password": "<redacted>"#);
        assert_eq!(r(&["x", r#"{"password": 5}"#]), r#"x '{"password": 5}'"#);
        assert_eq!(r(&["x", r#""unterminated"#]), r#"x "unterminated"#);
    }

    #[test]
    fn url_userinfo_and_emails_go() {
        assert_eq!(
            r(&["git", "clone", "https://bob:pw@example.com/x.git"]),
            "git clone https://<redacted>@example.com/x.git"
        );
        assert_eq!(r(&["curl", "http://example.com/a@b"]), "curl http://example.com/a@b");
        assert_eq!(r(&["mail", "bob.smith+x@mail.example.org."]), "mail <email>.");
        assert_eq!(r(&["x", "not@an-address", "@", "a@"]), "x not@an-address @ a@");
    }

    #[test]
    fn the_owner_home_and_name_go() {
        assert_eq!(
            r(&["/home/alice/bin/tool", "--user", "alice", "/home/alice/"]),
            "<home>/bin/tool --user <user> <home>/"
        );
        // Inside a longer name the user name stays.
        assert_eq!(r(&["alicetool", "malice", "alice-x"]), "alicetool malice alice-x");
        let args = vec!["/root/x".to_string(), "root".to_string(), "chroot".to_string()];
        assert_eq!(redact_command_line(&args, Some("root"), Some("/root")), "<home>/x <user> chroot");
        // "/" as a home directory is not replaced everywhere.
        let args = vec!["/usr/bin/x".to_string()];
        assert_eq!(redact_command_line(&args, Some("daemon"), Some("/")), "/usr/bin/x");
    }

    #[test]
    fn long_tokens_go_and_long_words_stay() {
        let hex = "0123456789abcdef0123456789abcdef";
        assert_eq!(r(&["x", hex]), "x <redacted>");
        assert_eq!(r(&["x", &format!("/tmp/{hex}/f")]), "x /tmp/<redacted>/f");
        assert_eq!(r(&["x", "--session=aGVsbG8gd29ybGQgaGVsbG8gd29ybGQ0MTIz"]), "x --session=<redacted>");
        assert_eq!(r(&["x", "123e4567-e89b-12d3-a456-426614174000"]), "x <redacted>");
        // Short hex (a commit prefix) and long option names stay.
        assert_eq!(r(&["x", "0123456789abcdef"]), "x 0123456789abcdef");
        assert_eq!(
            r(&["chrome", "--disable-background-timer-throttling"]),
            "chrome --disable-background-timer-throttling"
        );
        assert_eq!(r(&["x", "/usr/lib/x86_64-linux-gnu/libfoo.so"]), "x /usr/lib/x86_64-linux-gnu/libfoo.so");
    }

    #[test]
    fn arguments_with_spaces_are_quoted_and_the_length_is_capped() {
        assert_eq!(r(&["sh", "-c", "sleep 30"]), "sh -c 'sleep 30'");
        let long = "a ".repeat(2000);
        let out = r(&["x", &long]);
        assert_eq!(out.chars().count(), MAX_COMMAND_LINE);
        assert!(out.ends_with('…'));
        assert_eq!(r(&[]), "");
    }
}
