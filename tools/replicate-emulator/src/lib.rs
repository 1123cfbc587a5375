//! A local stand-in for Replicate's predictions, trainings and models APIs, for tests and the
//! local stack. Never deployed.
//!
//! It creates predictions by model and by version, answers `Prefer: wait` (201 when final,
//! 202 when not), reads and cancels them, checks the Bearer token, and serves the outputs
//! itself: a real JPEG derived from the input image (a data URI, or a URL it fetches).
//!
//! It creates and reads models, and trains into them: a training's `input_images` zip is
//! fetched and checked as the trainer does (it opens, holds images, and captions unless
//! `autocaption`); the training then runs on the clock (`starting`, `processing`,
//! `succeeded`), can be read, listed and canceled, and its weights are served as a real
//! `trained_model.tar`. `GET /admin/trainings` shows what each training received.
//!
//! A prediction or training created with a `webhook` is told there, signed, when it
//! completes. Faults are switched per test with `PUT /admin/faults`; `GET /admin/counts` says
//! how many calls of each kind it got; `POST /admin/reset` forgets everything.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

mod dataset;
mod faults;
mod images;
mod models;
mod routes;
mod state;
mod training_state;
mod trainings;
mod webhooks;
mod weights;

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
