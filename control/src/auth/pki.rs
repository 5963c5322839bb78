//! The cluster's certificate authority and the certificates it issues.
//!
//! On first start `ketch-control` creates the CA, its serving certificate and an admin client
//! certificate in the PKI directory; later starts (and other instances sharing the directory)
//! reuse them.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{0}: not a valid PEM certificate or key")]
    Parse(PathBuf),
    #[error(
        "a certificate issued here names at most one group (got {0}); rcgen encodes one organization"
    )]
    TooManyGroups(usize),
}

fn read(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|source| PkiError::Io {
        path: path.into(),
        source,
    })
}

fn write(path: &Path, contents: &str, private: bool) -> Result<(), PkiError> {
    let io = |source| PkiError::Io {
        path: path.into(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    // Write-then-rename so that a second instance starting at the same time never reads half a file.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, contents).map_err(io)?;
    if private {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)
}

/// A certificate and its key, PEM-encoded.
#[derive(Clone)]
pub struct CertPair {
    pub cert_pem: String,
    pub key_pem: String,
}

pub struct Pki {
    dir: PathBuf,
    ca: CertPair,
}

impl Pki {
    /// Loads the CA from `dir`, creating it if absent.
    pub fn load_or_create(dir: &Path) -> Result<Pki, PkiError> {
        let cert = dir.join("ca.crt");
        let key = dir.join("ca.key");
        if cert.exists() && key.exists() {
            return Ok(Pki {
                dir: dir.into(),
                ca: CertPair {
                    cert_pem: read(&cert)?,
                    key_pem: read(&key)?,
                },
            });
        }
        let key_pair = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = dn("ketch-ca", &[]);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = params.self_signed(&key_pair)?;
        let ca = CertPair {
            cert_pem: ca_cert.pem(),
            key_pem: key_pair.serialize_pem(),
        };
        write(&key, &ca.key_pem, true)?;
        write(&cert, &ca.cert_pem, false)?;
        Ok(Pki {
            dir: dir.into(),
            ca,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca.cert_pem
    }

    fn issuer(&self) -> Result<Issuer<'static, KeyPair>, PkiError> {
        let key = KeyPair::from_pem(&self.ca.key_pem)
            .map_err(|_| PkiError::Parse(self.dir.join("ca.key")))?;
        Issuer::from_ca_cert_pem(&self.ca.cert_pem, key)
            .map_err(|_| PkiError::Parse(self.dir.join("ca.crt")))
    }

    /// A client certificate: CN is the user, O the groups (Kubernetes x509 authentication).
    pub fn issue_client(&self, user: &str, groups: &[&str]) -> Result<CertPair, PkiError> {
        if groups.len() > 1 {
            return Err(PkiError::TooManyGroups(groups.len()));
        }
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = dn(user, groups);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.issuer()?)?;
        Ok(CertPair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A serving certificate for these DNS names and IP addresses.
    pub fn issue_serving(
        &self,
        cn: &str,
        names: &[String],
        ips: &[IpAddr],
    ) -> Result<CertPair, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names.to_vec())?;
        for ip in ips {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        params.distinguished_name = dn(cn, &[]);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.issuer()?)?;
        Ok(CertPair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Loads `<name>.crt`/`<name>.key` from the PKI directory, issuing them with `make` if absent.
    pub fn load_or_issue(
        &self,
        name: &str,
        make: impl FnOnce(&Pki) -> Result<CertPair, PkiError>,
    ) -> Result<CertPair, PkiError> {
        let cert = self.dir.join(format!("{name}.crt"));
        let key = self.dir.join(format!("{name}.key"));
        if cert.exists() && key.exists() {
            return Ok(CertPair {
                cert_pem: read(&cert)?,
                key_pem: read(&key)?,
            });
        }
        let pair = make(self)?;
        write(&key, &pair.key_pem, true)?;
        write(&cert, &pair.cert_pem, false)?;
        Ok(pair)
    }
}

fn dn(cn: &str, orgs: &[&str]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    for o in orgs {
        dn.push(DnType::OrganizationName, *o);
    }
    dn
}

/// A kubeconfig for `user` authenticating with a client certificate.
pub fn kubeconfig(server: &str, ca_pem: &str, user: &str, client: &CertPair) -> String {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: {server}\n  name: ketch\ncontexts:\n- context:\n    cluster: ketch\n    user: {user}\n  name: {user}@ketch\ncurrent-context: {user}@ketch\npreferences: {{}}\nusers:\n- name: {user}\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\n",
        ca = b64(ca_pem),
        cert = b64(&client.cert_pem),
        key = b64(&client.key_pem),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_is_created_once_and_issues_client_certs_with_groups() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki::load_or_create(dir.path()).expect("create");
        let again = Pki::load_or_create(dir.path()).expect("load");
        assert_eq!(pki.ca_pem(), again.ca_pem());
        assert!(matches!(
            pki.issue_client("bob", &["dev", "ops"]),
            Err(PkiError::TooManyGroups(2))
        ));
        let client = pki.issue_client("alice", &["dev"]).expect("issue");
        let der = rustls_pemfile::certs(&mut client.cert_pem.as_bytes())
            .next()
            .expect("one cert")
            .expect("pem");
        let id = crate::auth::authn::identity_from_cert(der.as_ref()).expect("identity");
        assert_eq!(id.name, "alice");
        assert_eq!(id.groups, vec!["dev".to_string()]);
    }
}
