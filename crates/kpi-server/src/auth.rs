//! Bearer-token authentication with two roles: `read` (the KPI queries) and `import`
//! (uploading workbooks, and reading).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use tonic::{Request, Status};

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Read,
    Import,
}

impl Role {
    fn parse(text: &str) -> Option<Role> {
        match text.trim().to_ascii_lowercase().as_str() {
            "read" => Some(Role::Read),
            "import" => Some(Role::Import),
            _ => None,
        }
    }
}

/// Why the token configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read tokens file {path}: {source}")]
    File { path: String, source: std::io::Error },
    #[error("{origin}: {entry:?} is not `ROLE TOKEN` with ROLE read or import")]
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
            for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
                let parsed = line
                    .split_once(char::is_whitespace)
                    .and_then(|(role, token)| Some((Role::parse(role)?, token.trim())));
                let (role, token) = parsed.filter(|(_, token)| !token.is_empty()).ok_or_else(|| {
                    TokenError::Malformed { origin: path.display().to_string(), entry: line.to_owned() }
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

    /// An interceptor that lets a call through only with a token of at least `required`.
    pub fn require(&self, required: Role) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone + use<> {
        let tokens = self.clone();
        move |request: Request<()>| {
            if !tokens.is_enabled() {
                return Ok(request);
            }
            let presented = request
                .metadata()
                .get("authorization")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer "))
                .map(str::trim);
            match presented.and_then(|token| tokens.0.get(token)) {
                None => Err(Status::unauthenticated("a valid bearer token is required")),
                Some(role) if *role < required => Err(Status::permission_denied("this token may not call this method")),
                Some(_) => Ok(request),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_and_malformed_entries_are_refused() {
        let tokens = Tokens::load(None, Some("read:abc, import:def")).unwrap();
        assert_eq!(tokens.0.get("abc"), Some(&Role::Read));
        assert_eq!(tokens.0.get("def"), Some(&Role::Import));
        assert!(Tokens::load(None, Some("admin:xyz")).is_err());
        assert!(!Tokens::load(None, None).unwrap().is_enabled());
    }
}
