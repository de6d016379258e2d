//! What a connection may cost before it has asked for anything: a connection that never
//! sends a byte (plain HTTP, or HTTPS before or after its handshake) is closed after
//! [`ConnLimits::first_byte`]; at most [`ConnLimits::total`] connections are open at once,
//! at most [`ConnLimits::per_addr`] from one address. Each open connection holds one
//! descriptor; the caps keep the web side's share of the descriptor limit well below it, so
//! that the capture, the writer and retention always find one (see [`fd_budget`]).
//!
//! hyper's header timeout only starts once it reads the request head, and hyper-util's
//! HTTP/1-or-2 detection reads the first bytes without any timeout: the silent
//! connection is this module's to close.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// Descriptors kept for everything but client connections (capture, writer, indexes,
/// retention, downloads, logs, reports).
pub const RESERVED_FDS: u64 = 256;

/// Limits on client connections (`WIRECAP_MAX_CONNECTIONS`,
/// `WIRECAP_MAX_CONNECTIONS_PER_ADDR`, `WIRECAP_FIRST_BYTE_TIMEOUT_SECS`,
/// `WIRECAP_TLS_HANDSHAKE_TIMEOUT_SECS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    pub total: usize,
    pub per_addr: usize,
    pub first_byte: Duration,
    pub handshake: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        Self {
            total: 1024,
            per_addr: 64,
            first_byte: Duration::from_secs(10),
            handshake: Duration::from_secs(10),
        }
    }
}

fn env_secs(name: &str) -> Option<Duration> {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 86_400.0)
        .map(Duration::from_secs_f64)
}

fn env_count(name: &str) -> Option<usize> {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|n| *n > 0)
}

impl ConnLimits {
    /// The defaults, changed by the environment, and the total bounded by `fd_limit`
    /// (the descriptors this process may open) less [`RESERVED_FDS`].
    pub fn from_env(fd_limit: u64) -> Self {
        let d = Self::default();
        let total = env_count("WIRECAP_MAX_CONNECTIONS").unwrap_or(d.total);
        let budget = usize::try_from(fd_budget(fd_limit)).unwrap_or(usize::MAX);
        let total = total.min(budget).max(1);
        Self {
            total,
            per_addr: env_count("WIRECAP_MAX_CONNECTIONS_PER_ADDR")
                .unwrap_or(d.per_addr)
                .min(total),
            first_byte: env_secs("WIRECAP_FIRST_BYTE_TIMEOUT_SECS").unwrap_or(d.first_byte),
            handshake: env_secs("WIRECAP_TLS_HANDSHAKE_TIMEOUT_SECS").unwrap_or(d.handshake),
        }
    }
}

/// How many client connections `fd_limit` descriptors allow: what is left after
/// [`RESERVED_FDS`], halved (a download or a report holds files while its connection is
/// open), at least 16.
pub fn fd_budget(fd_limit: u64) -> u64 {
    (fd_limit.saturating_sub(RESERVED_FDS) / 2).max(16)
}

/// Raises the soft descriptor limit to the hard one; returns `(before, after)`.
pub fn raise_fd_limit() -> io::Result<(u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut r) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let before = r.rlim_cur;
    if r.rlim_cur < r.rlim_max {
        let want = libc::rlimit {
            rlim_cur: r.rlim_max,
            rlim_max: r.rlim_max,
        };
        // SAFETY: setrlimit reads the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const want) } != 0 {
            return Err(io::Error::last_os_error());
        }
        return Ok((before, r.rlim_max));
    }
    Ok((before, before))
}

/// Counts open connections, in total and per address.
#[derive(Debug)]
pub struct Gate {
    limits: ConnLimits,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
    refused: AtomicU64,
    timed_out: AtomicU64,
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Ticket {
    gate: Arc<Gate>,
    ip: IpAddr,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut g = self.gate.open.lock().unwrap_or_else(|e| e.into_inner());
        g.0 = g.0.saturating_sub(1);
        if let Some(n) = g.1.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                g.1.remove(&self.ip);
            }
        }
    }
}

impl Gate {
    pub fn new(limits: ConnLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            open: Mutex::new((0, HashMap::new())),
            refused: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
        })
    }

    pub fn limits(&self) -> ConnLimits {
        self.limits
    }

    /// A place for a connection from `ip`, or `None` when a cap is reached.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Ticket> {
        let mut g = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let from = g.1.get(&ip).copied().unwrap_or(0);
        if g.0 >= self.limits.total || from >= self.limits.per_addr {
            drop(g);
            // Logged once per 1,000: a flood must not fill the log.
            if self
                .refused
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(1000)
            {
                tracing::warn!(
                    %ip,
                    total = self.limits.total,
                    per_addr = self.limits.per_addr,
                    "connection refused: too many open connections (logged once per 1000)"
                );
            }
            return None;
        }
        g.0 += 1;
        *g.1.entry(ip).or_insert(0) += 1;
        Some(Ticket {
            gate: self.clone(),
            ip,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).0
    }

    fn timed_out(&self) {
        if self
            .timed_out
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(1000)
        {
            tracing::info!(
                "closed a connection that sent nothing for {:?} (logged once per 1000)",
                self.limits.first_byte
            );
        }
    }
}

/// A connection's stream with its place in the [`Gate`] and, until its first byte of
/// request, a deadline: a read that is still waiting at the deadline fails, and hyper
/// closes the connection.
pub struct Watched<S> {
    inner: S,
    deadline: Option<Pin<Box<Sleep>>>,
    _ticket: Ticket,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        match r {
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                self.deadline = None;
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                let expired = self
                    .deadline
                    .as_mut()
                    .is_some_and(|d| d.as_mut().poll(cx).is_ready());
                if expired {
                    self._ticket.gate.timed_out();
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no request before the first-byte timeout",
                    )));
                }
                Poll::Pending
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// An acceptor that admits a TCP connection through the [`Gate`], runs `inner` (nothing,
/// or the TLS handshake) within the first-byte deadline and hands on a [`Watched`] stream.
#[derive(Clone)]
pub struct Limited<A> {
    inner: A,
    gate: Arc<Gate>,
}

impl<A> Limited<A> {
    pub fn new(inner: A, gate: Arc<Gate>) -> Self {
        Self { inner, gate }
    }
}

type Accepted<St, Sv> = io::Result<(Watched<St>, Sv)>;

impl<A, S> Accept<TcpStream, S> for Limited<A>
where
    A: Accept<TcpStream, S> + Clone + Send + 'static,
    A::Future: Send + 'static,
    A::Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    A::Service: Send + 'static,
    S: Send + 'static,
{
    type Stream = Watched<A::Stream>;
    type Service = A::Service;
    type Future = Pin<Box<dyn Future<Output = Accepted<A::Stream, A::Service>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let gate = self.gate.clone();
        let inner = self.inner.clone();
        Box::pin(async move {
            let ip = stream
                .peer_addr()
                .map_or(IpAddr::from([0, 0, 0, 0]), |a: SocketAddr| a.ip());
            // Refused: the stream is dropped (closed) at once.
            let ticket = gate
                .admit(ip)
                .ok_or_else(|| io::Error::other("too many connections"))?;
            let deadline = Instant::now() + gate.limits.first_byte;
            let (s, svc) =
                match tokio::time::timeout_at(deadline, inner.accept(stream, service)).await {
                    Ok(r) => r?,
                    Err(_) => {
                        gate.timed_out();
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "TLS handshake not done before the first-byte timeout",
                        ));
                    }
                };
            Ok((
                Watched {
                    inner: s,
                    deadline: Some(Box::pin(tokio::time::sleep_until(deadline))),
                    _ticket: ticket,
                },
                svc,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_count_per_address_and_in_total() {
        let g = Gate::new(ConnLimits {
            total: 3,
            per_addr: 2,
            ..ConnLimits::default()
        });
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let t1 = g.admit(a).unwrap();
        let _t2 = g.admit(a).unwrap();
        assert!(g.admit(a).is_none(), "per address");
        let _t3 = g.admit(b).unwrap();
        assert!(g.admit(b).is_none(), "in total");
        drop(t1);
        assert_eq!(g.open(), 2);
        assert!(g.admit(b).is_some());
    }

    #[test]
    fn the_total_stays_inside_the_descriptor_limit() {
        assert_eq!(fd_budget(1024), 384);
        assert_eq!(fd_budget(100), 16);
        assert!(ConnLimits::from_env(1024).total <= 384);
    }
}
