//! A webhook receiver for the emulator's deliveries: keeps each request's headers and body
//! for the test, answering 500 to the first few (to see them sent again) and 204 after.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use tokio::sync::{Mutex, mpsc};

use crate::local_server::LocalServer;

/// One delivery as received: its headers (lowercase names) and its body.
pub type Delivery = (Vec<(String, String)>, String);

/// A running receiver; it stops when dropped.
pub struct WebhookReceiver {
    url: String,
    deliveries: Mutex<mpsc::UnboundedReceiver<Delivery>>,
    _server: LocalServer,
}

struct Receiving {
    sender: mpsc::UnboundedSender<Delivery>,
    refuse_left: AtomicU32,
}

impl WebhookReceiver {
    /// Listens on a free loopback port; the first `refuse` deliveries are answered 500.
    pub async fn start(refuse: u32) -> Self {
        let (sender, deliveries) = mpsc::unbounded_channel();
        let state = Arc::new(Receiving {
            sender,
            refuse_left: AtomicU32::new(refuse),
        });
        let router = axum::Router::new().fallback(receive).with_state(state);
        let server = LocalServer::start(router).await;
        Self {
            url: format!("{}/hook", server.url()),
            deliveries: Mutex::new(deliveries),
            _server: server,
        }
    }

    /// Where to send webhooks.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The next delivery, waited for at most `within`.
    pub async fn next(&self, within: Duration) -> Delivery {
        let mut deliveries = self.deliveries.lock().await;
        tokio::time::timeout(within, deliveries.recv())
            .await
            .unwrap_or_else(|_| panic!("no delivery within {within:?}"))
            .expect("the receiver runs")
    }
}

async fn receive(
    State(state): State<Arc<Receiving>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let headers = headers
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    let _ = state
        .sender
        .send((headers, String::from_utf8_lossy(&body).into_owned()));
    let refused = state
        .refuse_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            left.checked_sub(1)
        })
        .is_ok();
    if refused {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    }
}
