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
