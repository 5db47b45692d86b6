//! A throwaway certificate authority for TLS tests: a CA and a server certificate for
//! `127.0.0.1` and `localhost` it signed, written as PEM files in a temporary directory.

use std::path::PathBuf;

pub struct TestCa {
    _dir: tempfile::TempDir,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    /// The CA certificate (what `TOOLBELT_CA_FILE` names).
    pub ca: PathBuf,
    /// The server's certificate and its key.
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    /// A fresh CA named `name`, and a server certificate from it.
    pub fn new(name: &str) -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let dir = tempfile::tempdir().unwrap();
        let path = |f: &str| dir.path().join(f);
        std::fs::write(path("ca.pem"), ca_cert.pem()).unwrap();
        let ca = TestCa {
            ca: path("ca.pem"),
            cert: path("cert.pem"),
            key: path("key.pem"),
            issuer,
            _dir: dir,
        };
        ca.reissue();
        ca
    }

    /// A new server certificate (and key) in place of the old, each file replaced by a
    /// rename as rotation tools do; returns its DER.
    pub fn reissue(&self) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .unwrap()
                .signed_by(&key, &self.issuer)
                .unwrap();
        for (path, text) in [(&self.key, key.serialize_pem()), (&self.cert, leaf.pem())] {
            let tmp = path.with_extension("new");
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, path).unwrap();
        }
        leaf.der().to_vec()
    }

    /// A new certificate for the key already in `key` (a renewal that keeps the key, as
    /// certbot `--reuse-key` does), replacing `cert` by a rename; returns its DER.
    pub fn renew_same_key(&self) -> Vec<u8> {
        let key = rcgen::KeyPair::from_pem(&std::fs::read_to_string(&self.key).unwrap()).unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .unwrap();
        params.serial_number = Some(rcgen::SerialNumber::from(vec![0x5e, 0x11]));
        let leaf = params.signed_by(&key, &self.issuer).unwrap();
        let tmp = self.cert.with_extension("new");
        std::fs::write(&tmp, leaf.pem()).unwrap();
        std::fs::rename(&tmp, &self.cert).unwrap();
        leaf.der().to_vec()
    }

    /// Another certificate from this CA, for the same names but with a key of its own (what
    /// an interceptor with a validly issued certificate would present), in `dir`.
    pub fn other_leaf(&self, dir: &std::path::Path) -> toolbelt_net::tls::TlsFiles {
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .unwrap()
                .signed_by(&key, &self.issuer)
                .unwrap();
        let files = toolbelt_net::tls::TlsFiles {
            cert: dir.join("other-cert.pem"),
            key: dir.join("other-key.pem"),
        };
        std::fs::write(&files.cert, leaf.pem()).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        files
    }

    /// The files as `--tls-cert`/`--tls-key` take them.
    pub fn files(&self) -> toolbelt_net::tls::TlsFiles {
        toolbelt_net::tls::TlsFiles {
            cert: self.cert.clone(),
            key: self.key.clone(),
        }
    }

    /// Outbound TLS trusting this CA (besides the platform's roots).
    pub fn outbound(&self) -> toolbelt_net::http::Outbound {
        toolbelt_net::http::Outbound::with_ca_file(&self.ca).unwrap()
    }

    /// The flags the Python fixtures serve HTTPS with.
    pub fn server_args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.cert.display().to_string(),
            "--tls-key".into(),
            self.key.display().to_string(),
        ]
    }
}
