//! Bearer-token authentication with three roles, each allowing what the ones before it do:
//! `read` (the KPI queries), `import` (uploading workbooks) and `approve` (approving reports
//! and locking periods).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

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
    #[error("{origin}: {entry} is not `ROLE TOKEN` with ROLE read, import or approve")]
    Malformed { origin: String, entry: String },
}

/// The configured tokens; empty means authentication is off.
#[derive(Debug, Clone, Default)]
pub struct Tokens(Arc<HashMap<String, Role>>);

impl Tokens {
    /// Reads tokens from a file (`ROLE TOKEN` per line, `#` comments) and from `ROLE:TOKEN`
    /// pairs separated by commas.
    pub fn load(file: Option<&Path>, inline: Option<&str>) -> Result<Tokens, TokenError> {
        let mut tokens = HashMap::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|source| TokenError::File { path: path.display().to_string(), source })?;
            let lines = text.lines().map(str::trim).enumerate();
            for (index, line) in lines.filter(|(_, l)| !l.is_empty() && !l.starts_with('#')) {
                let parsed = line
                    .split_once(char::is_whitespace)
                    .and_then(|(role, token)| Some((Role::parse(role)?, token.trim())));
                let (role, token) = parsed.filter(|(_, token)| !token.is_empty()).ok_or_else(|| {
                    TokenError::Malformed { origin: path.display().to_string(), entry: format!("line {}", index + 1) }
                })?;
                tokens.insert(token.to_owned(), role);
            }
        }
        for entry in inline.unwrap_or_default().split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let parsed = entry.split_once(':').and_then(|(role, token)| Some((Role::parse(role)?, token.trim())));
            let (role, token) = parsed
                .filter(|(_, token)| !token.is_empty())
                .ok_or_else(|| TokenError::Malformed { origin: "KPI_TOKENS".into(), entry: "(hidden)".into() })?;
            tokens.insert(token.to_owned(), role);
        }
        Ok(Tokens(Arc::new(tokens)))
    }

    pub fn is_enabled(&self) -> bool {
        !self.0.is_empty()
    }

    /// The role of a presented token. Every configured token is compared, each in constant
    /// time, so the time taken says nothing about how much of a token was right.
    fn role_of(&self, presented: &str) -> Option<Role> {
        let mut found = None;
        for (token, role) in self.0.iter() {
            if constant_time_eq(token.as_bytes(), presented.as_bytes()) {
                found = Some(*role);
            }
        }
        found
    }

    /// An interceptor that lets a call through only with a token of at least `required`.
    pub fn require(&self, required: Role) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone + use<> {
        let tokens = self.clone();
        move |request: Request<()>| {
            if !tokens.is_enabled() {
                return Ok(request);
            }
            let presented =
                request.metadata().get("authorization").and_then(|value| value.to_str().ok()).and_then(bearer_token);
            match presented.and_then(|token| tokens.role_of(token)) {
                None => Err(Status::unauthenticated("a valid bearer token is required")),
                Some(role) if role < required => Err(Status::permission_denied("this token may not call this method")),
                Some(_) => Ok(request),
            }
        }
    }
}

/// The token of an `Authorization: Bearer TOKEN` value; the scheme is case-insensitive
/// (RFC 7235).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|token| !token.is_empty())
}

/// Equality whose time depends on the lengths only, not on where the bytes differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut difference = a.len() ^ b.len();
    for index in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(index).copied().unwrap_or(0), b.get(index).copied().unwrap_or(0));
        difference |= usize::from(x ^ y);
    }
    difference == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_schemes_are_case_insensitive_and_tokens_compare_exactly() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("BEARER abc"), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        let tokens = Tokens::load(None, Some("read:abc,import:def")).unwrap_or_default();
        assert_eq!(
            (tokens.role_of("abc"), tokens.role_of("def"), tokens.role_of("ab")),
            (Some(Role::Read), Some(Role::Import), None)
        );
    }

    #[test]
    fn malformed_lines_are_named_by_number_never_shown() {
        let path = std::env::temp_dir().join(format!("kpi-tokens-{}", std::process::id()));
        std::fs::write(&path, "read good-token\nwriter s3cr3t-token\n").unwrap_or_default();
        let error = Tokens::load(Some(&path), None).err().map(|e| e.to_string()).unwrap_or_default();
        std::fs::remove_file(&path).ok();
        assert!(error.contains("line 2") && !error.contains("s3cr3t"), "{error}");
    }

    #[test]
    fn tokens_parse_and_malformed_entries_are_refused() {
        let tokens = Tokens::load(None, Some("read:abc, import:def")).unwrap();
        assert_eq!(tokens.0.get("abc"), Some(&Role::Read));
        assert_eq!(tokens.0.get("def"), Some(&Role::Import));
        assert!(Tokens::load(None, Some("admin:xyz")).is_err());
        assert!(!Tokens::load(None, None).unwrap().is_enabled());
    }
}
