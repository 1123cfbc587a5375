//! An axum router served on a free loopback port from the test process, stopped when its
//! handle is dropped: the HTTP front and the webhook receiver run this way.

use tokio::sync::oneshot;

/// A running server; it stops when dropped.
pub(crate) struct LocalServer {
    url: String,
    shutdown: Option<oneshot::Sender<()>>,
}

impl LocalServer {
    /// Serves `router` on 127.0.0.1, on a port the system picks.
    pub(crate) async fn start(router: axum::Router) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free loopback port");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let (shutdown, stop) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let stopped = async {
                let _ = stop.await;
            };
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(stopped)
                .await;
        });
        Self {
            url,
            shutdown: Some(shutdown),
        }
    }

    /// Its base URL, e.g. `http://127.0.0.1:41234`.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}
