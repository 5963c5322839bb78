//! Service account tokens: the signing key in the PKI directory (`sa.key`/`sa.pub`), the JWTs
//! that the `serviceaccounts/<name>/token` subresource issues, and their verification, with the
//! claims kube-apiserver uses (`pkg/serviceaccount/claims.go`).
//!
//! Which objects a token is bound to (service account, pod, secret, node) is checked by the
//! caller against the store: this module only knows keys and claims.

use super::authn::UserInfo;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The issuer (`--service-account-issuer`) and default audience (`--api-audiences`).
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// A token expiring sooner than this is refused (`spec.expirationSeconds`).
pub const MIN_EXPIRATION_SECONDS: i64 = 600;
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// What kubelets ask for: such pod-bound tokens live a year but warn after this
/// (`--service-account-extend-token-expiration`, on by default upstream).
pub const WARN_ONLY_EXPIRATION_SECONDS: i64 = 3607;
pub const EXTENDED_EXPIRATION_SECONDS: i64 = 365 * 24 * 60 * 60;

/// Leeway on exp/nbf and for objects deleted a moment ago (go-jose's `DefaultLeeway`).
pub const LEEWAY_SECONDS: i64 = 60;

const EXTRA_POD_NAME: &str = "authentication.kubernetes.io/pod-name";
const EXTRA_POD_UID: &str = "authentication.kubernetes.io/pod-uid";
const EXTRA_NODE_NAME: &str = "authentication.kubernetes.io/node-name";
const EXTRA_NODE_UID: &str = "authentication.kubernetes.io/node-uid";
const EXTRA_CREDENTIAL_ID: &str = "authentication.kubernetes.io/credential-id";

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: not a usable ECDSA or RSA key")]
    Key(PathBuf),
    #[error("generating the service account key: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("signing: {0}")]
    Sign(jsonwebtoken::errors::Error),
}

/// Why a token that claims to be ours is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("service account token has expired")]
    Expired,
    #[error("service account token is not valid yet")]
    NotYetValid,
    #[error("invalid bearer token: {0}")]
    Malformed(String),
    #[error("token audiences {token:?} is invalid for the target audiences {target:?}")]
    Audience {
        token: Vec<String>,
        target: Vec<String>,
    },
    #[error("{0}")]
    Binding(String),
}

/// `{name, uid}` of an object a token names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Ref {
    pub name: String,
    pub uid: String,
}

/// The private `kubernetes.io` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct KubernetesClaims {
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Ref>,
    pub serviceaccount: Ref,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnafter: Option<i64>,
}

/// Audience: one string or a list, as RFC 7519 allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Audience::One(a) => vec![a.clone()],
            Audience::Many(a) => a.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub aud: Audience,
    pub exp: i64,
    pub iat: i64,
    pub iss: String,
    #[serde(default)]
    pub jti: String,
    pub nbf: i64,
    pub sub: String,
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaims,
}

/// What a token is bound to besides its service account.
#[derive(Debug, Clone, Default)]
pub struct Binding {
    pub pod: Option<Ref>,
    pub secret: Option<Ref>,
    pub node: Option<Ref>,
}

impl Claims {
    /// Claims for `namespace/sa` valid from `now` for `expiration` seconds.
    pub fn new(
        namespace: &str,
        sa: Ref,
        binding: Binding,
        audiences: Vec<String>,
        now: i64,
        expiration: i64,
        warn_after: Option<i64>,
    ) -> Claims {
        Claims {
            aud: Audience::Many(audiences),
            exp: now + expiration,
            iat: now,
            iss: ISSUER.to_string(),
            jti: uuid::Uuid::new_v4().to_string(),
            nbf: now,
            sub: username(namespace, &sa.name),
            kubernetes: KubernetesClaims {
                namespace: namespace.to_string(),
                node: binding.node,
                pod: binding.pod,
                secret: binding.secret,
                serviceaccount: sa,
                warnafter: warn_after.map(|w| now + w),
            },
        }
    }

    /// The identity a verified token stands for (after its bindings were checked).
    pub fn user_info(&self) -> UserInfo {
        let k = &self.kubernetes;
        let mut extra = BTreeMap::new();
        if let Some(p) = &k.pod {
            extra.insert(EXTRA_POD_NAME.to_string(), vec![p.name.clone()]);
            extra.insert(EXTRA_POD_UID.to_string(), vec![p.uid.clone()]);
        }
        if let Some(n) = &k.node {
            extra.insert(EXTRA_NODE_NAME.to_string(), vec![n.name.clone()]);
            extra.insert(EXTRA_NODE_UID.to_string(), vec![n.uid.clone()]);
        }
        if !self.jti.is_empty() {
            extra.insert(
                EXTRA_CREDENTIAL_ID.to_string(),
                vec![format!("JTI={}", self.jti)],
            );
        }
        UserInfo {
            name: username(&k.namespace, &k.serviceaccount.name),
            uid: k.serviceaccount.uid.clone(),
            groups: vec![
                "system:serviceaccounts".to_string(),
                format!("system:serviceaccounts:{}", k.namespace),
            ],
            extra,
        }
        .authenticated()
    }
}

pub fn username(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

struct VerifyKey {
    kid: String,
    key: DecodingKey,
    rsa: bool,
}

/// The signing key and the keys tokens are verified with.
pub struct TokenKeys {
    signing: EncodingKey,
    alg: Algorithm,
    kid: String,
    verify: Vec<VerifyKey>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TokenError + '_ {
    move |source| TokenError::Io {
        path: path.into(),
        source,
    }
}

/// `kid` as upstream computes it: the unpadded base64url SHA-256 of the PKIX public key.
fn key_id(spki_der: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(spki_der))
}

fn public_keys(pem: &str) -> Vec<(String, String)> {
    // (kid, PEM of that one key)
    let mut out = Vec::new();
    for item in rustls_pemfile::read_all(&mut pem.as_bytes()).flatten() {
        if let rustls_pemfile::Item::SubjectPublicKeyInfo(der) = item {
            let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
            let body: Vec<String> = b64
                .as_bytes()
                .chunks(64)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect();
            let one = format!(
                "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
                body.join("\n")
            );
            out.push((key_id(der.as_ref()), one));
        }
    }
    out
}

impl TokenKeys {
    /// Loads `sa.key` (and the verification keys of `sa.pub`) from `dir`, creating an ECDSA
    /// P-256 key on first start. Several API servers sharing the directory end up with one key:
    /// the key file is created with a link that fails if another server made it first.
    pub fn load_or_create(dir: &Path) -> Result<TokenKeys, TokenError> {
        let key_path = dir.join("sa.key");
        let pub_path = dir.join("sa.pub");
        if !key_path.exists() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
            let key = rcgen::KeyPair::generate()?;
            let tmp = dir.join(format!("sa.key.tmp{}", std::process::id()));
            std::fs::write(&tmp, key.serialize_pem()).map_err(io(&tmp))?;
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
                    .map_err(io(&tmp))?;
            }
            let linked = std::fs::hard_link(&tmp, &key_path);
            let _ = std::fs::remove_file(&tmp);
            match linked {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(&key_path)(e)),
            }
        }
        let key_pem = std::fs::read_to_string(&key_path).map_err(io(&key_path))?;
        let parsed = rcgen::KeyPair::from_pem(&key_pem).ok();
        let derived_pub = parsed.as_ref().map(|k| k.public_key_pem());
        if !pub_path.exists() {
            let Some(p) = &derived_pub else {
                return Err(TokenError::Key(pub_path));
            };
            let tmp = dir.join(format!("sa.pub.tmp{}", std::process::id()));
            std::fs::write(&tmp, p).map_err(io(&tmp))?;
            std::fs::rename(&tmp, &pub_path).map_err(io(&pub_path))?;
        }
        let pub_pem = std::fs::read_to_string(&pub_path).map_err(io(&pub_path))?;
        let (signing, alg) = match EncodingKey::from_ec_pem(key_pem.as_bytes()) {
            Ok(k) => {
                let alg = match parsed.as_ref().map(|p| p.algorithm()) {
                    Some(a) if a == &rcgen::PKCS_ECDSA_P384_SHA384 => Algorithm::ES384,
                    _ => Algorithm::ES256,
                };
                (k, alg)
            }
            Err(_) => (
                EncodingKey::from_rsa_pem(key_pem.as_bytes())
                    .map_err(|_| TokenError::Key(key_path.clone()))?,
                Algorithm::RS256,
            ),
        };
        // The signing key's own public half is always trusted; sa.pub may add older keys.
        let own = derived_pub.as_deref().unwrap_or(&pub_pem);
        let kid = public_keys(own)
            .first()
            .map(|(k, _)| k.clone())
            .ok_or_else(|| TokenError::Key(pub_path.clone()))?;
        let mut verify: Vec<VerifyKey> = Vec::new();
        for (id, pem) in public_keys(own).into_iter().chain(public_keys(&pub_pem)) {
            if verify.iter().any(|v| v.kid == id) {
                continue;
            }
            let (key, rsa) = match DecodingKey::from_ec_pem(pem.as_bytes()) {
                Ok(k) => (k, false),
                Err(_) => match DecodingKey::from_rsa_pem(pem.as_bytes()) {
                    Ok(k) => (k, true),
                    Err(_) => continue,
                },
            };
            verify.push(VerifyKey { kid: id, key, rsa });
        }
        Ok(TokenKeys {
            signing,
            alg,
            kid,
            verify,
        })
    }

    pub fn key_id(&self) -> &str {
        &self.kid
    }

    /// A signed JWT carrying `claims`.
    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        let mut header = Header::new(self.alg);
        header.typ = None;
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.signing).map_err(TokenError::Sign)
    }

    /// Verifies a bearer token: `None` if it is not one of ours (not a JWT, another issuer);
    /// otherwise its claims and the audiences it is good for among `audiences`, or why not.
    pub fn verify(
        &self,
        token: &str,
        audiences: &[String],
        now: i64,
    ) -> Option<Result<(Claims, Vec<String>), Invalid>> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        let unverified = unverified_claims(token)?;
        if unverified.get("iss").and_then(|v| v.as_str()) != Some(ISSUER) {
            return None;
        }
        Some(self.verify_ours(token, &header, audiences, now))
    }

    fn verify_ours(
        &self,
        token: &str,
        header: &Header,
        audiences: &[String],
        now: i64,
    ) -> Result<(Claims, Vec<String>), Invalid> {
        let rsa = match header.alg {
            Algorithm::RS256 => true,
            Algorithm::ES256 | Algorithm::ES384 => false,
            other => {
                return Err(Invalid::Malformed(format!(
                    "unsupported algorithm {other:?}"
                )));
            }
        };
        let candidates = self
            .verify
            .iter()
            .filter(|k| k.rsa == rsa && header.kid.as_deref().is_none_or(|kid| kid == k.kid));
        let mut validation = Validation::new(header.alg);
        // Time and audience are checked below with upstream's rules and messages.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        validation.set_issuer(&[ISSUER]);
        let mut last = Invalid::Malformed("no key verifies the signature".into());
        let mut claims = None;
        for k in candidates {
            match jsonwebtoken::decode::<Claims>(token, &k.key, &validation) {
                Ok(data) => {
                    claims = Some(data.claims);
                    break;
                }
                Err(e) => last = Invalid::Malformed(e.to_string()),
            }
        }
        let claims = claims.ok_or(last)?;
        if now > claims.exp + LEEWAY_SECONDS {
            return Err(Invalid::Expired);
        }
        if now + LEEWAY_SECONDS < claims.nbf {
            return Err(Invalid::NotYetValid);
        }
        if claims.sub
            != username(
                &claims.kubernetes.namespace,
                &claims.kubernetes.serviceaccount.name,
            )
        {
            return Err(Invalid::Malformed(
                "sub does not match the kubernetes.io claim".into(),
            ));
        }
        let token_auds = claims.aud.to_vec();
        let good: Vec<String> = audiences
            .iter()
            .filter(|a| token_auds.contains(a))
            .cloned()
            .collect();
        if good.is_empty() {
            return Err(Invalid::Audience {
                token: token_auds,
                target: audiences.to_vec(),
            });
        }
        Ok((claims, good))
    }
}

/// The objects a token names, as (resource, namespace, name): its service account first, then
/// what it is bound to (a pod-bound token names its node for information only).
pub fn bound_objects(claims: &Claims) -> Vec<(&'static str, String, String)> {
    let k = &claims.kubernetes;
    let mut out = vec![(
        "serviceaccounts",
        k.namespace.clone(),
        k.serviceaccount.name.clone(),
    )];
    if let Some(s) = &k.secret {
        out.push(("secrets", k.namespace.clone(), s.name.clone()));
    }
    if let Some(p) = &k.pod {
        out.push(("pods", k.namespace.clone(), p.name.clone()));
    } else if let Some(n) = &k.node {
        out.push(("nodes", String::new(), n.name.clone()));
    }
    out
}

/// Checks that the objects a token names ([`bound_objects`], looked up by the caller in the
/// same order: `None` if absent) still exist with the same uid and were not deleted more than
/// [`LEEWAY_SECONDS`] ago (`claims.go` `Validate`).
pub fn check_bindings(
    claims: &Claims,
    now: i64,
    current: &[Option<serde_json::Value>],
) -> Result<(), Invalid> {
    let k = &claims.kubernetes;
    let claimed: Vec<(&str, &Ref)> = std::iter::once(("service account", &k.serviceaccount))
        .chain(k.secret.as_ref().map(|r| ("secret", r)))
        .chain(k.pod.as_ref().map(|r| ("pod", r)))
        .chain(
            k.node
                .as_ref()
                .filter(|_| k.pod.is_none())
                .map(|r| ("node", r)),
        )
        .collect();
    for (i, ((what, r), (resource, _, _))) in claimed.iter().zip(bound_objects(claims)).enumerate()
    {
        let Some(obj) = current.get(i).and_then(Option::as_ref) else {
            return Err(Invalid::Binding(format!(
                "{resource} \"{}\" not found",
                r.name
            )));
        };
        let uid = obj
            .pointer("/metadata/uid")
            .and_then(|u| u.as_str())
            .unwrap_or_default();
        if uid != r.uid {
            return Err(Invalid::Binding(if i == 0 {
                format!(
                    "service account UID ({uid}) does not match claim ({})",
                    r.uid
                )
            } else {
                format!(
                    "{what} UID ({uid}) does not match service account {what} ref claim ({})",
                    r.uid
                )
            }));
        }
        let deleted_long_ago = obj
            .pointer("/metadata/deletionTimestamp")
            .and_then(|t| t.as_str())
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .is_some_and(|t| t.as_second() < now - LEEWAY_SECONDS);
        if deleted_long_ago {
            return Err(Invalid::Binding(
                "service account token has been invalidated".into(),
            ));
        }
    }
    Ok(())
}

fn unverified_claims(token: &str) -> Option<serde_json::Value> {
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(now: i64, auds: &[&str]) -> Claims {
        Claims::new(
            "shop",
            Ref {
                name: "default".into(),
                uid: "sa-uid".into(),
            },
            Binding {
                pod: Some(Ref {
                    name: "web".into(),
                    uid: "pod-uid".into(),
                }),
                ..Binding::default()
            },
            auds.iter().map(|a| a.to_string()).collect(),
            now,
            3600,
            None,
        )
    }

    #[test]
    fn keys_are_created_once_and_shared() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = TokenKeys::load_or_create(dir.path()).expect("create");
        let b = TokenKeys::load_or_create(dir.path()).expect("load");
        assert_eq!(a.key_id(), b.key_id());
        assert!(dir.path().join("sa.key").exists() && dir.path().join("sa.pub").exists());
        let now = jiff::Timestamp::now().as_second();
        let token = a.sign(&claims(now, &[ISSUER])).expect("sign");
        let (c, auds) = b
            .verify(&token, &[ISSUER.to_string()], now)
            .expect("ours")
            .expect("valid");
        assert_eq!(auds, vec![ISSUER.to_string()]);
        assert_eq!(c.sub, "system:serviceaccount:shop:default");
    }

    #[test]
    fn tokens_carry_the_upstream_claims() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = TokenKeys::load_or_create(dir.path()).expect("create");
        let token = keys.sign(&claims(1_000, &[ISSUER])).expect("sign");
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(parts[0])
                .expect("b64"),
        )
        .expect("json");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], keys.key_id());
        assert!(header.get("typ").is_none());
        let body = unverified_claims(&token).expect("claims");
        assert_eq!(body["iss"], ISSUER);
        assert_eq!(body["sub"], "system:serviceaccount:shop:default");
        assert_eq!(body["aud"], serde_json::json!([ISSUER]));
        assert_eq!(body["exp"], 4_600);
        assert_eq!(body["iat"], 1_000);
        assert_eq!(body["nbf"], 1_000);
        assert_eq!(body["kubernetes.io"]["namespace"], "shop");
        assert_eq!(
            body["kubernetes.io"]["serviceaccount"],
            serde_json::json!({"name": "default", "uid": "sa-uid"})
        );
        assert_eq!(
            body["kubernetes.io"]["pod"],
            serde_json::json!({"name": "web", "uid": "pod-uid"})
        );
        assert!(body["kubernetes.io"].get("secret").is_none());
        assert_eq!(body["jti"].as_str().map(str::len), Some(36));
    }

    #[test]
    fn expiry_audience_issuer_and_signature_are_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = TokenKeys::load_or_create(dir.path()).expect("create");
        let api = vec![ISSUER.to_string()];
        let token = keys.sign(&claims(1_000, &[ISSUER])).expect("sign");
        assert!(
            keys.verify(&token, &api, 1_000 + 3600)
                .expect("ours")
                .is_ok()
        );
        assert_eq!(
            keys.verify(&token, &api, 1_000 + 3600 + 61)
                .expect("ours")
                .err(),
            Some(Invalid::Expired)
        );
        assert_eq!(
            keys.verify(&token, &api, 900).expect("ours").err(),
            Some(Invalid::NotYetValid)
        );
        let vault = keys.sign(&claims(1_000, &["vault"])).expect("sign");
        assert!(matches!(
            keys.verify(&vault, &api, 1_000).expect("ours"),
            Err(Invalid::Audience { .. })
        ));
        assert!(
            keys.verify(&vault, &["vault".to_string()], 1_000)
                .expect("ours")
                .is_ok()
        );
        // Signed by another cluster's key.
        let other_dir = tempfile::tempdir().expect("tempdir");
        let other = TokenKeys::load_or_create(other_dir.path()).expect("create");
        let forged = other.sign(&claims(1_000, &[ISSUER])).expect("sign");
        assert!(matches!(
            keys.verify(&forged, &api, 1_000).expect("ours"),
            Err(Invalid::Malformed(_))
        ));
        // Tampered payload.
        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        let mut body = unverified_claims(&token).expect("claims");
        body["kubernetes.io"]["namespace"] = serde_json::json!("kube-system");
        parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&body).expect("json"));
        assert!(
            keys.verify(&parts.join("."), &api, 1_000)
                .expect("ours")
                .is_err()
        );
        // Not ours at all.
        assert!(keys.verify("abc123", &api, 1_000).is_none());
    }

    #[test]
    fn bindings_must_still_exist_with_the_same_uid() {
        let c = claims(1_000, &[ISSUER]);
        assert_eq!(
            bound_objects(&c),
            vec![
                ("serviceaccounts", "shop".to_string(), "default".to_string()),
                ("pods", "shop".to_string(), "web".to_string())
            ]
        );
        let sa = serde_json::json!({"metadata": {"uid": "sa-uid"}});
        let pod = serde_json::json!({"metadata": {"uid": "pod-uid"}});
        assert!(check_bindings(&c, 1_000, &[Some(sa.clone()), Some(pod.clone())]).is_ok());
        assert_eq!(
            check_bindings(&c, 1_000, &[None, Some(pod.clone())]),
            Err(Invalid::Binding(
                "serviceaccounts \"default\" not found".into()
            ))
        );
        let other = serde_json::json!({"metadata": {"uid": "new"}});
        assert_eq!(
            check_bindings(&c, 1_000, &[Some(other.clone()), Some(pod.clone())]),
            Err(Invalid::Binding(
                "service account UID (new) does not match claim (sa-uid)".into()
            ))
        );
        assert_eq!(
            check_bindings(&c, 1_000, &[Some(sa.clone()), Some(other)]),
            Err(Invalid::Binding(
                "pod UID (new) does not match service account pod ref claim (pod-uid)".into()
            ))
        );
        // A pod being deleted keeps its tokens for a minute.
        let deleting = serde_json::json!({"metadata": {"uid": "pod-uid",
            "deletionTimestamp": "1970-01-01T00:16:00Z"}});
        assert!(check_bindings(&c, 1_000, &[Some(sa.clone()), Some(deleting.clone())]).is_ok());
        assert_eq!(
            check_bindings(&c, 1_100, &[Some(sa), Some(deleting)]),
            Err(Invalid::Binding(
                "service account token has been invalidated".into()
            ))
        );
    }

    #[test]
    fn user_info_follows_upstream() {
        let u = claims(1_000, &[ISSUER]).user_info();
        assert_eq!(u.name, "system:serviceaccount:shop:default");
        assert_eq!(u.uid, "sa-uid");
        assert_eq!(
            u.groups,
            vec![
                "system:serviceaccounts",
                "system:serviceaccounts:shop",
                "system:authenticated"
            ]
        );
        assert_eq!(u.extra[EXTRA_POD_NAME], vec!["web".to_string()]);
        assert_eq!(u.extra[EXTRA_POD_UID], vec!["pod-uid".to_string()]);
        assert!(u.extra[EXTRA_CREDENTIAL_ID][0].starts_with("JTI="));
    }
}
