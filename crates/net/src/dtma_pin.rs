//! The DTMA's TLS key, pinned. A DTMA that serves TLS sends the SHA-256 of its public key
//! (SPKI) when it joins (over the control plane's own TLS, with the one-time join token);
//! from then on the control plane and the gateway accept that key only from it — not any
//! certificate a trusted CA signed for its name, so a proxy or a misissued certificate
//! holding a valid TLS position in front of the DTMA is refused, and the DTMA needs no CA
//! at all (a self-signed certificate is enough). A key, not one certificate: renewing the
//! certificate for the same key (certbot `--reuse-key`, cert-manager `rotationPolicy:
//! Never`) needs nothing; a new key needs a new join. As with DANE-EE `3 1 1`, name and
//! validity dates are not checked: the pin is the trust.
//!
//! [`Pinned`] is the rustls verifier: the presented end-entity's SPKI must hash to the
//! pin, and the handshake must be signed by that key (so copying the DTMA's certificate
//! without its private key gets nowhere). [`DtmaClients`] keeps one reqwest client per
//! pin (connections pooled per toolbox).

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// `sha256:<hex of the DER SubjectPublicKeyInfo>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpkiPin(String);

const PREFIX: &str = "sha256:";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error("not a certificate: {0}")]
    Certificate(String),
    #[error("a pin is sha256: and 64 hex digits")]
    Syntax,
}

impl SpkiPin {
    pub fn parse(s: &str) -> Result<SpkiPin, PinError> {
        let hex = s.strip_prefix(PREFIX).ok_or(PinError::Syntax)?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(PinError::Syntax);
        }
        Ok(SpkiPin(format!("{PREFIX}{}", hex.to_ascii_lowercase())))
    }

    /// The pin of a certificate's public key.
    pub fn of_cert(der: &CertificateDer<'_>) -> Result<SpkiPin, PinError> {
        let cert = webpki::EndEntityCert::try_from(der)
            .map_err(|e| PinError::Certificate(e.to_string()))?;
        let spki = cert.subject_public_key_info();
        let der: &[u8] = spki.as_ref();
        Ok(SpkiPin(format!(
            "{PREFIX}{}",
            hex::encode(Sha256::digest(der))
        )))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SpkiPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The presented key is not the pinned one (shown in calls' errors and server status).
#[derive(thiserror::Error)]
#[error(
    "the DTMA's TLS key ({presented}) is not the key pinned when it joined ({pinned}): something else answers at its address, or its key was replaced — join it again (toolbelt toolbox join-token) if that was you"
)]
pub struct PinMismatch {
    pub pinned: SpkiPin,
    pub presented: SpkiPin,
}

/// As its message: rustls's error and some clients' chains (rmcp's) render it with `{:?}`,
/// and the reason must read the same there.
impl std::fmt::Debug for PinMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Accepts exactly the pinned key.
#[derive(Debug)]
pub struct Pinned {
    pin: SpkiPin,
    algs: WebPkiSupportedAlgorithms,
}

impl Pinned {
    pub fn new(pin: SpkiPin) -> Pinned {
        crate::http::install_provider();
        Pinned {
            pin,
            algs: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = SpkiPin::of_cert(end_entity).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        if presented == self.pin {
            return Ok(ServerCertVerified::assertion());
        }
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::Other(rustls::OtherError(Arc::new(PinMismatch {
                pinned: self.pin.clone(),
                presented,
            }))),
        ))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// A rustls client configuration that trusts only `pin` (HTTP/1.1, as DTMAs speak).
pub fn client_config(pin: SpkiPin) -> rustls::ClientConfig {
    crate::http::install_provider();
    let mut c = rustls::ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned::new(pin)))
        .with_no_client_auth();
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    c
}

type Finish = dyn Fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder + Send + Sync;

/// The clients that call DTMAs, one per pin (and one for unpinned DTMAs: plain HTTP, or
/// HTTPS verified by the roots), each built by [`crate::http::Outbound::dtma_builder`]
/// and finished the same way (timeouts, pools).
pub struct DtmaClients {
    outbound: crate::http::Outbound,
    finish: Box<Finish>,
    clients: Mutex<HashMap<Option<SpkiPin>, reqwest::Client>>,
}

impl DtmaClients {
    pub fn new(
        outbound: &crate::http::Outbound,
        finish: impl Fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder + Send + Sync + 'static,
    ) -> DtmaClients {
        DtmaClients {
            outbound: outbound.clone(),
            finish: Box::new(finish),
            clients: Mutex::default(),
        }
    }

    /// The client for a toolbox with this stored pin (a pin that does not parse pins
    /// nothing anyone can present: calls fail rather than fall back to the roots).
    pub fn get(&self, pin: Option<&str>) -> reqwest::Client {
        let pin = pin.map(|p| {
            SpkiPin::parse(p).unwrap_or_else(|_| SpkiPin(format!("{PREFIX}unparsable:{p}")))
        });
        let mut map = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = map.get(&pin) {
            return c.clone();
        }
        let mut b = self.outbound.dtma_builder();
        if let Some(p) = &pin {
            b = b.tls_backend_preconfigured(client_config(p.clone()));
        }
        let c = (self.finish)(b).build().expect("an HTTP client builds");
        map.insert(pin, c.clone());
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_parse_strictly() {
        let p = SpkiPin::parse(&format!("sha256:{}", "AB".repeat(32))).unwrap();
        assert_eq!(p.as_str(), format!("sha256:{}", "ab".repeat(32)));
        for bad in [
            "",
            "sha256:",
            &format!("sha1:{}", "ab".repeat(32)),
            &format!("sha256:{}", "zz".repeat(32)),
            &format!("sha256:{}", "ab".repeat(31)),
        ] {
            assert_eq!(SpkiPin::parse(bad), Err(PinError::Syntax), "{bad}");
        }
    }

    #[test]
    fn a_certificate_for_the_same_key_keeps_its_pin_another_key_does_not() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = |k: &rcgen::KeyPair, name: &str| {
            rcgen::CertificateParams::new(vec![name.to_string()])
                .unwrap()
                .self_signed(k)
                .unwrap()
                .der()
                .clone()
        };
        let first = SpkiPin::of_cert(&cert(&key, "a.example")).unwrap();
        // Renewed for the same key (another name even): the same pin.
        assert_eq!(SpkiPin::of_cert(&cert(&key, "b.example")).unwrap(), first);
        let other = rcgen::KeyPair::generate().unwrap();
        assert_ne!(SpkiPin::of_cert(&cert(&other, "a.example")).unwrap(), first);
        assert_eq!(SpkiPin::parse(first.as_str()).unwrap(), first);
        assert!(SpkiPin::of_cert(&CertificateDer::from(vec![1, 2, 3])).is_err());
    }

    #[test]
    fn the_verifier_refuses_another_key_naming_both_pins() {
        let pinned_key = rcgen::KeyPair::generate().unwrap();
        let other_key = rcgen::KeyPair::generate().unwrap();
        let der = |k: &rcgen::KeyPair| {
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
                .unwrap()
                .self_signed(k)
                .unwrap()
                .der()
                .clone()
        };
        let pin = SpkiPin::of_cert(&der(&pinned_key)).unwrap();
        let v = Pinned::new(pin.clone());
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let now = UnixTime::now();
        assert!(
            v.verify_server_cert(&der(&pinned_key), &[], &name, &[], now)
                .is_ok()
        );
        let e = v
            .verify_server_cert(&der(&other_key), &[], &name, &[], now)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not the key pinned"), "{e}");
        assert!(e.contains(pin.as_str()), "{e}");
    }
}
