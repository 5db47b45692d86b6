//! argon2id password hashes on a bounded set of permits.
//!
//! Each argon2 run takes ~19 MiB and a core for tens of milliseconds, so a login flood
//! must not start one per request: a run needs one of [`HashingLimits::permits`]; a
//! request that cannot get one within [`HashingLimits::wait`] is refused as
//! [`ServiceError::Busy`] instead of queueing without bound. Every run is counted
//! (`toolbelt_password_hashes_total`), which is also how tests check that a known and an
//! unknown email cost the same: one run each.

use crate::service::ServiceError;
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use prometheus_client::metrics::counter::Counter;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Verified against when an account is unknown or has no password, so that such a login
/// costs exactly what a wrong password does: one argon2 run with the default parameters
/// (a test keeps them equal). Random salt and output: no password matches it.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$zApfAs1m4P8C66pr+OjeUQ$5k/kiUsa2hMlX2jfQx41ZHSf+343XWnzf0ebtMyntUA";

/// How much hashing may run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingLimits {
    /// argon2 runs at once (default: the number of cores).
    pub permits: usize,
    /// How long a request waits for a permit before it is refused as busy.
    pub wait: Duration,
}

impl Default for HashingLimits {
    fn default() -> Self {
        HashingLimits {
            permits: std::thread::available_parallelism().map_or(2, |n| n.get()),
            wait: Duration::from_secs(2),
        }
    }
}

/// The hasher of the control plane (one per process).
pub struct Passwords {
    permits: Arc<Semaphore>,
    wait: Duration,
    runs: Counter,
}

impl Passwords {
    /// `runs` counts every argon2 run (registered as a metric by the caller).
    pub fn new(limits: HashingLimits, runs: Counter) -> Passwords {
        Passwords {
            permits: Arc::new(Semaphore::new(limits.permits.max(1))),
            wait: limits.wait,
            runs,
        }
    }

    /// argon2 runs so far.
    pub fn runs(&self) -> u64 {
        self.runs.get()
    }

    /// A new PHC string for `password`.
    pub async fn hash(&self, password: String) -> Result<String, ServiceError> {
        self.run(move |runs| {
            runs.inc();
            Argon2::default()
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
        })
        .await?
        .map_err(|e| {
            tracing::error!(error = %e, "argon2 hash failed");
            ServiceError::Internal
        })
    }

    /// Whether `password` matches the stored PHC string. Without one (unknown account, no
    /// password set) it verifies against [`DUMMY_HASH`] and answers false: the same work.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, ServiceError> {
        self.run(move |runs| {
            let phc = stored.as_deref().unwrap_or(DUMMY_HASH);
            let ok = PasswordHash::new(phc)
                .map(|h| {
                    runs.inc();
                    Argon2::default()
                        .verify_password(password.as_bytes(), &h)
                        .is_ok()
                })
                .unwrap_or(false);
            ok && stored.is_some()
        })
        .await
    }

    /// Runs one argon2 job under a permit, off the async runtime; the job counts each
    /// argon2 call it makes on the counter it is given.
    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Counter) -> T + Send + 'static,
    ) -> Result<T, ServiceError> {
        let permit = tokio::time::timeout(self.wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| ServiceError::Busy {
                retry_after: Duration::from_secs(1),
            })?
            .map_err(|_| ServiceError::Internal)?;
        let runs = self.runs.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job(&runs)
        })
        .await
        .map_err(|_| ServiceError::Internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::Params;

    fn passwords(permits: usize, wait: Duration) -> Passwords {
        Passwords::new(HashingLimits { permits, wait }, Counter::default())
    }

    #[test]
    fn the_dummy_costs_what_a_fresh_hash_costs() {
        let dummy = PasswordHash::new(DUMMY_HASH).unwrap();
        let fresh_text = Argon2::default().hash_password(b"pw").unwrap().to_string();
        let fresh = PasswordHash::new(&fresh_text).unwrap();
        assert_eq!(dummy.algorithm, fresh.algorithm);
        assert_eq!(dummy.version, fresh.version);
        let (d, f) = (
            Params::try_from(&dummy).unwrap(),
            Params::try_from(&fresh).unwrap(),
        );
        assert_eq!(
            (d.m_cost(), d.t_cost(), d.p_cost(), d.output_len()),
            (f.m_cost(), f.t_cost(), f.p_cost(), f.output_len())
        );
    }

    #[tokio::test]
    async fn one_run_per_verification_whether_or_not_there_is_a_hash() {
        let p = passwords(2, Duration::from_secs(5));
        let stored = p.hash("right".into()).await.unwrap();
        assert_eq!(p.runs(), 1);
        assert!(
            p.verify("right".into(), Some(stored.clone()))
                .await
                .unwrap()
        );
        assert!(!p.verify("wrong".into(), Some(stored)).await.unwrap());
        assert!(!p.verify("anything".into(), None).await.unwrap());
        assert_eq!(p.runs(), 4);
    }

    #[tokio::test]
    async fn a_request_that_finds_no_permit_in_time_is_refused_as_busy() {
        let p = passwords(1, Duration::from_millis(20));
        let held = p.permits.clone().acquire_owned().await.unwrap();
        let e = p.verify("x".into(), None).await.unwrap_err();
        assert!(matches!(e, ServiceError::Busy { .. }), "{e:?}");
        assert_eq!(p.runs(), 0, "nothing was hashed");
        drop(held);
        assert!(!p.verify("x".into(), None).await.unwrap());
    }
}
