//! A local stand-in for Replicate's predictions API, for tests and the local stack. Never
//! deployed.
//!
//! It creates predictions by model and by version, answers `Prefer: wait` (201 when final,
//! 202 when not), reads and cancels them, checks the Bearer token, and serves the outputs
//! itself: a real JPEG derived from the input image (a data URI, or a URL it fetches). A
//! prediction created with a `webhook` is told there, signed, when it completes. Faults are
//! switched per test with `PUT /admin/faults`; `GET /admin/counts` says how many calls of
//! each kind it got; `POST /admin/reset` forgets everything.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

mod faults;
mod images;
mod routes;
mod state;
mod webhooks;

pub use faults::{Counts, Faults};
pub use images::padded_jpeg;

use state::{AppState, Inner, Shared};

/// A running emulator; it stops when dropped.
#[derive(Debug)]
pub struct Emulator {
    shared: AppState,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Emulator {
    /// Serves on `addr` (port 0 picks a free one). With `token`, only `Bearer {token}` is
    /// accepted; without, any non-empty token.
    pub async fn start(addr: SocketAddr, token: Option<String>) -> std::io::Result<Self> {
        Self::start_signing(addr, token, webhooks::new_secret()).await
    }

    /// Like [`Self::start`], signing webhooks with `webhook_secret` (`whsec_<base64>`).
    pub async fn start_signing(
        addr: SocketAddr,
        token: Option<String>,
        webhook_secret: String,
    ) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let fetcher = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner::default()),
            base_url,
            token,
            fetcher,
            webhook_secret,
        });
        let router = routes::router(shared.clone());
        let (shutdown, stop) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let stopped = async {
                let _ = stop.await;
            };
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(stopped)
                .await;
        });
        Ok(Self {
            shared,
            shutdown: Some(shutdown),
        })
    }

    /// The emulator's base URL, e.g. `http://127.0.0.1:41234`.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// The `whsec_` secret its webhooks are signed with.
    pub fn webhook_secret(&self) -> &str {
        &self.shared.webhook_secret
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}
