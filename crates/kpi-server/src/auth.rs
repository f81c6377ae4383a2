//! Bearer-token authentication with three roles, each allowing what the ones before it do:
//! `read` (the KPI queries), `import` (uploading workbooks) and `approve` (approving reports
//! and locking periods). Tokens are kept and compared as SHA-256 digests, in constant time.

use std::path::Path;
use std::sync::Arc;

use sha2::Digest as _;
use tonic::{Request, Status};

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Read,
    Import,
    Approve,
}

impl Role {
    fn parse(text: &str) -> Option<Role> {
        match text.trim().to_ascii_lowercase().as_str() {
            "read" => Some(Role::Read),
            "import" => Some(Role::Import),
            "approve" => Some(Role::Approve),
            _ => None,
        }
    }
}

/// Why the token configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read tokens file {path}: {source}")]
    File { path: String, source: std::io::Error },
    /// The entry itself is never shown: it may hold a token.
    #[error("{origin}: {entry} is not `ROLE TOKEN` or `ROLE sha256:HEX` with ROLE read, import or approve")]
    Malformed { origin: String, entry: String },
}

/// The SHA-256 digest of a token: what the server keeps and compares, so every comparison
/// has the same length whatever the token's, and a tokens file may hold digests only.
type Digest = [u8; 32];

/// How a tokens file or `KPI_TOKENS` names a token by its digest: `sha256:` and 64 hex digits.
const DIGEST_PREFIX: &str = "sha256:";

/// One configured token.
#[derive(Debug)]
struct Entry {
    digest: Digest,
    role: Role,
}

/// Who is calling: the configured token the call presented, by its position among the
/// tokens. The auth interceptor attaches it to every call it lets through, so admission can
/// bound each token's calls (see `admission`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub token: usize,
}

impl Caller {
    /// The caller of an authenticated request; none when authentication is off.
    pub fn of<T>(request: &Request<T>) -> Option<Caller> {
        request.extensions().get::<Caller>().copied()
    }
}

/// The configured tokens; empty means authentication is off.
#[derive(Debug, Clone, Default)]
pub struct Tokens(Arc<Vec<Entry>>);

impl Tokens {
    /// Reads tokens from a file (`ROLE TOKEN` per line, `#` comments) and from `ROLE:TOKEN`
    /// pairs separated by commas. A token written `sha256:HEX` is given by its digest.
    pub fn load(file: Option<&Path>, inline: Option<&str>) -> Result<Tokens, TokenError> {
        let mut entries = Vec::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|source| TokenError::File { path: path.display().to_string(), source })?;
            let lines = text.lines().map(str::trim).enumerate();
            for (index, line) in lines.filter(|(_, l)| !l.is_empty() && !l.starts_with('#')) {
                let entry = line.split_once(char::is_whitespace).and_then(|(role, token)| Entry::parse(role, token));
                entries.push(entry.ok_or_else(|| TokenError::Malformed {
                    origin: path.display().to_string(),
                    entry: format!("line {}", index + 1),
                })?);
            }
        }
        for (index, pair) in inline.unwrap_or_default().split(',').map(str::trim).filter(|e| !e.is_empty()).enumerate()
        {
            let entry = pair.split_once(':').and_then(|(role, token)| Entry::parse(role, token));
            entries.push(entry.ok_or_else(|| TokenError::Malformed {
                origin: "KPI_TOKENS".into(),
                entry: format!("pair {}", index + 1),
            })?);
        }
        Ok(Tokens(Arc::new(entries)))
    }

    pub fn is_enabled(&self) -> bool {
        !self.0.is_empty()
    }

    /// How many tokens are configured; callers are numbered below it.
    pub fn count(&self) -> usize {
        self.0.len()
    }

    /// The caller and role of a presented token. Its digest is compared with every
    /// configured one, each in constant time, so the time taken says nothing about which
    /// token matched or how much of one was right.
    fn identify(&self, presented: &str) -> Option<(Caller, Role)> {
        let digest = digest_of(presented);
        let mut found = None;
        for (token, entry) in self.0.iter().enumerate() {
            if constant_time_eq(&entry.digest, &digest) {
                found = Some((Caller { token }, entry.role));
            }
        }
        found
    }

    /// An interceptor that lets a call through only with a token of at least `required`, and
    /// marks it with its [`Caller`].
    pub fn require(&self, required: Role) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone + use<> {
        let tokens = self.clone();
        move |mut request: Request<()>| {
            if !tokens.is_enabled() {
                return Ok(request);
            }
            let presented =
                request.metadata().get("authorization").and_then(|value| value.to_str().ok()).and_then(bearer_token);
            match presented.and_then(|token| tokens.identify(token)) {
                None => Err(Status::unauthenticated("a valid bearer token is required")),
                Some((_, role)) if role < required => {
                    Err(Status::permission_denied("this token may not call this method"))
                }
                Some((caller, _)) => {
                    request.extensions_mut().insert(caller);
                    Ok(request)
                }
            }
        }
    }
}

impl Entry {
    /// A role and a token (or `sha256:HEX`), or `None` when either is malformed.
    fn parse(role: &str, token: &str) -> Option<Entry> {
        let role = Role::parse(role)?;
        let token = token.trim();
        let digest = match token.strip_prefix(DIGEST_PREFIX) {
            Some(hex) => parse_digest(hex)?,
            None if !token.is_empty() => digest_of(token),
            None => return None,
        };
        Some(Entry { digest, role })
    }
}

fn digest_of(token: &str) -> Digest {
    sha2::Sha256::digest(token.as_bytes()).into()
}

/// 64 hex digits, either case.
fn parse_digest(hex: &str) -> Option<Digest> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(hex.as_bytes().chunks(2)) {
        let text = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(text, 16).ok()?;
    }
    Some(digest)
}

/// The token of an `Authorization: Bearer TOKEN` value; the scheme is case-insensitive
/// (RFC 7235).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|token| !token.is_empty())
}

/// Equality of two digests whose time does not depend on where they differ.
fn constant_time_eq(a: &Digest, b: &Digest) -> bool {
    let difference = a.iter().zip(b).fold(0u8, |difference, (x, y)| difference | (x ^ y));
    difference == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role_of(tokens: &Tokens, presented: &str) -> Option<Role> {
        tokens.identify(presented).map(|(_, role)| role)
    }

    #[test]
    fn bearer_schemes_are_case_insensitive_and_tokens_compare_exactly() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("BEARER abc"), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        let tokens = Tokens::load(None, Some("read:abc,import:def")).unwrap_or_default();
        assert_eq!(
            (role_of(&tokens, "abc"), role_of(&tokens, "def"), role_of(&tokens, "ab"), role_of(&tokens, "abcd")),
            (Some(Role::Read), Some(Role::Import), None, None)
        );
        assert_eq!(tokens.identify("def").map(|(caller, _)| caller), Some(Caller { token: 1 }));
    }

    #[test]
    fn a_token_may_be_configured_by_its_sha256_digest() {
        // printf %s s3cr3t | sha256sum
        let digest = "4e738ca5563c06cfd0018299933d58db1dd8bf97f6973dc99bf6cdc64b5550bd";
        let path = std::env::temp_dir().join(format!("kpi-token-digests-{}", std::process::id()));
        std::fs::write(&path, format!("# digests only\napprove sha256:{digest}\n")).unwrap_or_default();
        let tokens = Tokens::load(Some(&path), Some(&format!("read:sha256:{}", digest.to_uppercase())));
        std::fs::remove_file(&path).ok();
        let tokens = tokens.unwrap_or_default();
        assert_eq!(tokens.count(), 2);
        assert_eq!(role_of(&tokens, "s3cr3t"), Some(Role::Read), "the later entry wins");
        assert_eq!(role_of(&tokens, &format!("sha256:{digest}")), None, "the digest itself is no token");
        assert!(Tokens::load(None, Some("read:sha256:abc")).is_err(), "a short digest is refused");
        assert!(Tokens::load(None, Some(&format!("read:sha256:{}", "g".repeat(64)))).is_err());
    }

    #[test]
    fn malformed_lines_are_named_by_number_never_shown() {
        let path = std::env::temp_dir().join(format!("kpi-tokens-{}", std::process::id()));
        std::fs::write(&path, "read good-token\nwriter s3cr3t-token\n").unwrap_or_default();
        let error = Tokens::load(Some(&path), None).err().map(|e| e.to_string()).unwrap_or_default();
        std::fs::remove_file(&path).ok();
        assert!(error.contains("line 2") && !error.contains("s3cr3t"), "{error}");
        let error = Tokens::load(None, Some("read:ok,admin:s3cr3t")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("pair 2") && !error.contains("s3cr3t"), "{error}");
    }

    #[test]
    fn tokens_parse_and_malformed_entries_are_refused() {
        let tokens = Tokens::load(None, Some("read:abc, import:def")).unwrap_or_default();
        assert_eq!(role_of(&tokens, "abc"), Some(Role::Read));
        assert_eq!(role_of(&tokens, "def"), Some(Role::Import));
        assert!(Tokens::load(None, Some("admin:xyz")).is_err());
        assert!(Tokens::load(None, Some("read:")).is_err());
        assert!(!Tokens::load(None, None).unwrap_or_default().is_enabled());
    }
}
