//! Toolbelt assembled once. The binary (`toolbelt up` / `serve`), the test harnesses and
//! the benchmarks all build the app here, so every test runs what users run.
//!
//! - [`Options`]: every setting, typed; [`Options::from_env`] reads the README's
//!   configuration table, [`Options::new`] gives the defaults without reading anything.
//! - [`build`] → [`App`]: the store opened (migrations applied) and bootstrapped, the
//!   control key, the vault and OAuth, the control plane's state, the gateway — and one
//!   router over all of it, usable in-process (`tower::ServiceExt::oneshot`) without a socket.
//! - [`bind`] → [`Bound`]: the listener bound and the app built on its address, not yet
//!   accepting (the binary prints its URL here, so the line is out before anyone is answered);
//!   [`Bound::serve`] → [`Running`]: served (TCP_NODELAY on every accepted socket), the
//!   background tasks running (token rollout, toolbox liveness, login upkeep, the OAuth refresher) and,
//!   for `toolbelt up`, the `local` toolbox's DTMA in this process. [`start`] is both steps.
//!   [`Running::shutdown`] stops it gracefully, waiting at most [`SHUTDOWN_GRACE`].
//!
//! ## Adding a part
//! A new part (the dashboard, chat, TLS listeners, an OAuth authorization server) plugs in
//! at one place each:
//! - its routes: one `.merge(…)` line in [`routes::routes`], built from [`routes::Parts`]
//!   (add what it needs to `Parts` in [`build`]);
//! - its settings: a field of [`Options`], read in [`Options::from_env`];
//! - its background work: one more task in [`Bound::serve`], stopped by
//!   [`Running::shutdown`];
//! - its failures: a variant of [`AppError`].

mod app;
mod bound;
mod control_key;
mod credentials;
mod env;
mod error;
mod local;
mod options;
pub mod routes;
mod running;
mod tool_search;

pub use app::{App, build};
pub use bound::{Bound, bind, start};
pub use error::{AppError, redact_url};
pub use options::{DEFAULT_DATA_DIR, DEFAULT_LISTEN, Options, VaultKeys};
pub use running::{Running, SHUTDOWN_GRACE};
