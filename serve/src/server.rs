//! Runs the REST and gRPC listeners over one [`App`], with SIGHUP reload and a graceful
//! SIGTERM/SIGINT shutdown (readiness false, drain in-flight requests, exit).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::app::App;

/// Bound listeners, so callers (and tests) learn the ports before serving.
pub struct Listeners {
    pub http: TcpListener,
    pub grpc: Option<TcpListener>,
}

impl Listeners {
    pub async fn bind(http: SocketAddr, grpc: Option<SocketAddr>) -> std::io::Result<Listeners> {
        Self::bind_with(http, grpc, false).await
    }

    /// Binds; with `reuse_port`, other processes may bind the same addresses (SO_REUSEPORT)
    /// and the kernel spreads new connections over them.
    pub async fn bind_with(
        http: SocketAddr,
        grpc: Option<SocketAddr>,
        reuse_port: bool,
    ) -> std::io::Result<Listeners> {
        let http = listen(http, reuse_port)?;
        let grpc = match grpc {
            Some(a) => Some(listen(a, reuse_port)?),
            None => None,
        };
        Ok(Listeners { http, grpc })
    }
}

fn listen(addr: SocketAddr, reuse_port: bool) -> std::io::Result<TcpListener> {
    let s = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    s.set_reuseaddr(true)?;
    if reuse_port {
        s.set_reuseport(true)?;
    }
    s.bind(addr)?;
    s.listen(1024)
}

/// Serves until `shutdown` resolves, then drains for at most `drain`; over TLS when the
/// configuration has `tls`.
pub async fn serve(
    app: Arc<App>,
    l: Listeners,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> std::io::Result<()> {
    let tls = match &app.config().tls {
        Some(t) => Some((
            crate::tls::acceptor(&t.cert_file, &t.key_file, &[b"h2", b"http/1.1"])
                .map_err(std::io::Error::other)?,
            crate::tls::acceptor(&t.cert_file, &t.key_file, &[b"h2"])
                .map_err(std::io::Error::other)?,
        )),
        None => None,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let app2 = app.clone();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: readiness off, draining in-flight requests");
        app2.drain();
        let _ = stop_tx.send(true);
    });
    let mut rx1 = stop_rx.clone();
    let rest_stop = async move {
        let _ = rx1.wait_for(|s| *s).await;
    };
    let rest: std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send>> =
        match &tls {
            Some((rest_tls, _)) => {
                let listener = crate::tls::TlsListener::new(l.http, rest_tls.clone())?;
                let app = app.clone();
                Box::pin(async move {
                    axum::serve(listener, crate::rest::router(app))
                        .with_graceful_shutdown(rest_stop)
                        .await
                })
            }
            None => {
                let app = app.clone();
                Box::pin(async move {
                    axum::serve(l.http, crate::rest::router(app))
                        .with_graceful_shutdown(rest_stop)
                        .await
                })
            }
        };
    let grpc = l.grpc.map(|g| {
        let mut rx2 = stop_rx.clone();
        let stop = async move {
            let _ = rx2.wait_for(|s| *s).await;
        };
        let router =
            tonic::transport::Server::builder().add_service(crate::grpc::server(app.clone()));
        let fut: std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<(), tonic::transport::Error>> + Send>,
        > = match &tls {
            Some((_, grpc_tls)) => Box::pin(router.serve_with_incoming_shutdown(
                crate::tls::grpc_incoming(g, grpc_tls.clone()),
                stop,
            )),
            None => Box::pin(router.serve_with_incoming_shutdown(tokio_stream_listener(g), stop)),
        };
        fut
    });
    let mut rx3 = stop_rx.clone();
    let deadline = async move {
        let _ = rx3.wait_for(|s| *s).await;
        tokio::time::sleep(drain).await;
    };
    let both = async {
        match grpc {
            Some(g) => {
                let (r, g) = tokio::join!(rest, g);
                r?;
                g.map_err(std::io::Error::other)
            }
            None => rest.await,
        }
    };
    tokio::select! {
        r = both => r,
        _ = deadline => {
            tracing::warn!("drain timed out; exiting with requests still in flight");
            Ok(())
        }
    }
}

pub(crate) fn tokio_stream_listener(
    l: TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(l, |l| async move {
        let r = l.accept().await.map(|(s, _)| {
            let _ = s.set_nodelay(true);
            s
        });
        Some((r, l))
    })
}

/// Resolves on SIGTERM or SIGINT; SIGHUP reloads the configuration meanwhile.
pub async fn signals(app: Arc<App>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        std::future::pending::<()>().await;
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading the configuration");
                if let Err(e) = app.reload(None).await {
                    tracing::error!(error = %e, "reload failed; still serving the previous configuration");
                }
            }
        }
    }
}
