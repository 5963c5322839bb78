//! Authentication: who is asking. x509 client certificates (CN = user, O = groups) and bearer
//! tokens from a static token file (the `--token-auth-file` CSV format of kube-apiserver).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// A user with a name and groups (uid and extra left empty).
    pub fn new(name: impl Into<String>, groups: &[&str]) -> Self {
        UserInfo {
            name: name.into(),
            groups: groups.iter().map(|g| (*g).to_string()).collect(),
            ..UserInfo::default()
        }
    }

    pub fn is_superuser(&self) -> bool {
        self.in_group("system:masters")
    }

    /// Adds `system:authenticated`, as Kubernetes does for every authenticated user.
    pub fn authenticated(mut self) -> UserInfo {
        if !self.groups.iter().any(|g| g == "system:authenticated") {
            self.groups.push("system:authenticated".into());
        }
        self
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthnError {
    #[error("token file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("token file {path} line {line}: {message}")]
    Format {
        path: String,
        line: usize,
        message: String,
    },
}

/// The identity in a client certificate that already passed chain verification.
pub fn identity_from_cert(der: &[u8]) -> Option<UserInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .map(String::from)
        .collect();
    Some(UserInfo {
        name,
        uid: String::new(),
        groups,
        extra: BTreeMap::new(),
    })
}

/// Static bearer tokens.
#[derive(Default)]
pub struct TokenFile {
    tokens: HashMap<String, UserInfo>,
}

impl TokenFile {
    /// Lines `token,user,uid[,"group1,group2"]`; blank lines and `#` comments are skipped.
    pub fn load(path: &Path) -> Result<TokenFile, AuthnError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| AuthnError::Read {
            path: p.clone(),
            source,
        })?;
        TokenFile::parse(&text).map_err(|(line, message)| AuthnError::Format {
            path: p,
            line,
            message,
        })
    }

    pub fn parse(text: &str) -> Result<TokenFile, (usize, String)> {
        let mut tokens = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields = split_csv(line);
            if fields.len() < 3 {
                return Err((i + 1, "expected token,user,uid[,\"groups\"]".into()));
            }
            if fields[0].is_empty() || fields[1].is_empty() {
                return Err((i + 1, "token and user must not be empty".into()));
            }
            let groups = fields
                .get(3)
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            tokens.insert(
                fields[0].clone(),
                UserInfo {
                    name: fields[1].clone(),
                    uid: fields[2].clone(),
                    groups,
                    extra: BTreeMap::new(),
                },
            );
        }
        Ok(TokenFile { tokens })
    }

    pub fn authenticate(&self, token: &str) -> Option<UserInfo> {
        self.tokens.get(token).cloned()
    }
}

fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur).trim().to_string()),
            c => cur.push(c),
        }
    }
    out.push(cur.trim().to_string());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file_with_quoted_groups() {
        let tf = TokenFile::parse("# comment\nabc123,alice,1001,\"dev,ops\"\ndef,bob,1002\n")
            .expect("parse");
        let alice = tf.authenticate("abc123").expect("alice");
        assert_eq!(alice.name, "alice");
        assert_eq!(alice.groups, vec!["dev", "ops"]);
        assert_eq!(
            tf.authenticate("def").expect("bob").groups,
            Vec::<String>::new()
        );
        assert!(tf.authenticate("nope").is_none());
        assert_eq!(TokenFile::parse("x,y").err().map(|e| e.0), Some(1));
    }
}
