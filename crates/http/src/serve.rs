//! `wirecap serve`: set everything up, print how to reach it, serve until SIGINT/SIGTERM,
//! then stop the capture (sealing its stream) and drain the connections.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use wirecap_store::Store;

use wirecap_appliance::auth::{AdminLogin, Authenticator, Users};
use wirecap_appliance::config::{FileConfig, LOG_DIR, ServeArgs, Settings, SourceChoice};
use wirecap_appliance::engine::Engine;
use wirecap_appliance::error::{Error, IoContext};
use wirecap_appliance::metrics::Metrics;
use wirecap_appliance::operations::Operations;
use wirecap_appliance::update::Releases;

use axum_server::accept::DefaultAcceptor;
use axum_server::tls_rustls::RustlsAcceptor;

use crate::download::Slots;
use crate::limits::Limited;
use crate::router::router;
use crate::state::AppState;
use crate::tls;

/// Environment variable with the admin password for the first start.
pub const ADMIN_PASSWORD_ENV: &str = "WIRECAP_ADMIN_PASSWORD";

/// Logs to stderr and to `DIR/log/wirecap.YYYY-MM-DD.log`. Keep the guard alive.
pub fn init_logging(
    dir: &Path,
    level: &str,
) -> Result<tracing_appender::non_blocking::WorkerGuard, Error> {
    let log_dir = dir.join(LOG_DIR);
    std::fs::create_dir_all(&log_dir).at(&log_dir)?;
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("wirecap")
        .filename_suffix("log")
        .max_log_files(14)
        .build(&log_dir)
        .map_err(|e| Error::Other(format!("log files in {}: {e}", log_dir.display())))?;
    let (file, guard) = tracing_appender::non_blocking(appender);
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .map_err(|e| Error::Other(format!("log level {level:?}: {e}")))?;
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_writer(std::io::stderr),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(file),
        )
        .try_init();
    Ok(guard)
}

fn resolve_addr(s: &str) -> Result<SocketAddr, Error> {
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_owned()
    };
    full.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            Error::Other(format!(
                "cannot read listen address {s:?} (expected HOST:PORT)"
            ))
        })
}

fn bind(s: &str) -> Result<std::net::TcpListener, Error> {
    let addr = resolve_addr(s)?;
    let l = std::net::TcpListener::bind(addr).map_err(|source| Error::Listen {
        addr: s.to_owned(),
        source,
    })?;
    l.set_nonblocking(true).map_err(|source| Error::Listen {
        addr: s.to_owned(),
        source,
    })?;
    Ok(l)
}

fn shown(addr: SocketAddr, scheme: &str) -> String {
    let host = match addr.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    format!("{scheme}://{host}:{}", addr.port())
}

/// Runs the server until SIGINT or SIGTERM.
pub fn run(args: ServeArgs) -> Result<(), Error> {
    let header_timeout =
        header_timeout(std::env::var("WIRECAP_HEADER_TIMEOUT_SECS").ok().as_deref())?;
    let dir = args.data.clone();
    std::fs::create_dir_all(&dir).at(&dir)?;
    wirecap_appliance::os::cleanup_temp_files(&dir);
    let file = FileConfig::load(&dir)?;
    let settings = Settings::resolve(args, file.clone());
    let _log_guard = init_logging(&dir, &settings.log_level)?;
    let fd_limit = match crate::limits::raise_fd_limit() {
        Ok((before, after)) => {
            tracing::info!(
                before,
                after,
                "descriptor limit (RLIMIT_NOFILE) raised to its hard limit"
            );
            after
        }
        Err(e) => {
            tracing::warn!("cannot read or raise the descriptor limit: {e}");
            1024
        }
    };
    let limits = crate::limits::ConnLimits::from_env(fd_limit);
    tracing::info!(
        max_connections = limits.total,
        per_address = limits.per_addr,
        first_byte_timeout_s = limits.first_byte.as_secs_f64(),
        "client connection limits"
    );
    // Before anything is opened: this may exec the selected release instead.
    Releases::new(&dir).on_start(settings.update.health_timeout());
    tls::install_crypto_provider();

    let archive = open_archive(&settings)?;
    let mut store = Store::open(&dir)?;
    if let Some(a) = &archive {
        store = store.with_source(Arc::new(a.reader()));
    }
    // With the summarizer, a rebuilt index keeps its chunk summaries (filters skip
    // chunks again); plain `recover()` would rebuild it without them.
    for (name, rec) in store.recover_with(Some(&wirecap_query::FilterSummarizer))? {
        log_recovery(&name, &rec);
    }
    let env_pw = std::env::var(ADMIN_PASSWORD_ENV).ok();
    let (users, login) = Users::open_or_init(&dir, env_pw.as_deref())?;
    let mut engine = Engine::new(store, settings.source.clone()).map_err(Error::Other)?;
    let capture = wirecap_appliance::capture_settings::CaptureSettings::check(&settings.capture)
        .map_err(|e| Error::Other(format!("capture settings: {e}")))?;
    engine
        .set_capture_settings(capture)
        .map_err(|e| Error::Other(e.to_string()))?;
    if let Some(f) = &settings.forward {
        engine.set_forwarder(start_forwarder(&settings.source, f)?);
    }
    let ops = Operations::new(&dir, &file, &engine);
    if let Some(a) = archive {
        if !a.read_only() {
            ops.retention.set_archive(a.clone());
        }
        a.start(engine.store().clone());
        engine.set_archive(a);
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("wc-http")
        .build()
        .map_err(|e| Error::Other(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(serve(
        settings,
        engine,
        ops,
        users,
        login,
        limits,
        header_timeout,
    ))
}

/// The archive tier of `[archive]` / `--archive`, connected (nothing sent yet). Its
/// settings are logged without credentials: there are none in them.
fn open_archive(settings: &Settings) -> Result<Option<Arc<wirecap_archive::Archive>>, Error> {
    if settings.archive.read_only && settings.archive.url.is_none() {
        return Err(Error::Other(
            "--read-only serves an archive: give --archive URL (or [archive] url)".into(),
        ));
    }
    let probe = wirecap_appliance::hostname::effective(settings.hostname.as_deref());
    // A hostname is not always a valid probe name (e.g. `localhost.localdomain` is, `a b`
    // is not): `--probe` names it then.
    let Some(s) = settings
        .archive
        .validate(&probe)
        .map_err(|e| Error::Other(e.to_string()))?
    else {
        return Ok(None);
    };
    tracing::info!(
        url = %s.target,
        probe = %s.probe,
        read_only = s.read_only,
        concurrency = s.concurrency,
        max_bytes_per_sec = ?s.max_bytes_per_sec,
        "archive tier"
    );
    wirecap_archive::Archive::open(s)
        .map(Some)
        .map_err(|e| Error::Other(e.to_string()))
}

/// Says what start-up recovery did to stream `name`: a stream it could not repair is
/// an error (it is listed as damaged), a rebuilt index a warning naming the damage.
fn log_recovery(name: &str, rec: &wirecap_store::Recovery) {
    if let Some(why) = &rec.failed {
        tracing::error!(
            stream = %name,
            "recovery failed; the stream is listed as damaged (run `wirecap verify {name}`): {why}"
        );
    } else if rec.orphan_removed {
        tracing::warn!(stream = %name, "removed a directory left without meta.json by an interrupted creation");
    } else if let Some(why) = &rec.index_rebuilt {
        tracing::warn!(
            stream = %name,
            chunks_kept = rec.chunks_kept,
            chunks_dropped = rec.chunks_dropped,
            "index rebuilt from the segments ({why}); damaged chunks left out: {}",
            rec.chunks_dropped
        );
    } else {
        tracing::warn!(
            stream = %name,
            chunks_kept = rec.chunks_kept,
            chunks_reindexed = rec.chunks_reindexed,
            bytes_cut = rec.bytes_cut,
            "recovered a stream (its writer died, or a retention trim was cut short)"
        );
    }
}

/// How long a client may take to send a request's headers (`WIRECAP_HEADER_TIMEOUT_SECS`
/// overrides the default of 10 s). Without a limit, clients that open connections and
/// trickle bytes (slowloris) hold sockets and memory forever. A value that is not a
/// positive number of seconds a `Duration` can hold is refused at start: a typo must not
/// silently become the default, and a huge value must not panic the listener.
fn header_timeout(value: Option<&str>) -> Result<Duration, Error> {
    let Some(v) = value else {
        return Ok(Duration::from_secs(10));
    };
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| {
            Error::Other(format!(
                "WIRECAP_HEADER_TIMEOUT_SECS={v:?}: expected a positive number of seconds (at most {})",
                Duration::MAX.as_secs()
            ))
        })
}

fn limit_header_time(
    b: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    timeout: Duration,
) {
    b.http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(timeout);
}

/// Starts the inline forwarder on the capture interface.
fn start_forwarder(
    source: &SourceChoice,
    f: &wirecap_appliance::config::ForwardChoice,
) -> Result<wirecap_forward::afpacket::ForwarderHandle, Error> {
    let SourceChoice::Interface(interface) = source else {
        return Err(Error::Other(
            "--inline (or [forward] inline) needs --interface IF (or [capture] interface): the forwarder runs on the capture interface".into(),
        ));
    };
    wirecap_appliance::forward::start(interface, f)
        .map_err(|e| Error::Other(format!("inline forwarder: {e}")))
}

async fn serve(
    settings: Settings,
    engine: Engine,
    ops: Operations,
    users: Users,
    login: AdminLogin,
    limits: crate::limits::ConnLimits,
    header_timeout: Duration,
) -> Result<(), Error> {
    let dir = settings.data.clone();
    // One gate for both listeners: the caps count every client connection.
    let gate = crate::limits::Gate::new(limits);
    let http = settings.http.as_deref().map(bind).transpose()?;
    let https = settings.https.as_deref().map(bind).transpose()?;
    let tls_files = match &https {
        Some(_) => Some(tls::cert_files(
            &dir,
            settings.tls_cert.as_deref(),
            settings.tls_key.as_deref(),
        )?),
        None => None,
    };
    let engine = Arc::new(engine);
    let hostname = wirecap_appliance::hostname::effective(settings.hostname.as_deref());
    if let Some(h) = &settings.hostname {
        // The configured name wins over the OS's after a reboot too, when allowed.
        match wirecap_appliance::hostname::apply_to_os(
            h,
            settings.apply_hostname_to_os,
            Path::new(wirecap_appliance::hostname::ETC_HOSTNAME),
        ) {
            Ok(wirecap_appliance::hostname::OsApply::NoCapability) => tracing::warn!(
                hostname = %h,
                "apply_hostname_to_os is on but the process lacks CAP_SYS_ADMIN: the OS keeps its name"
            ),
            Ok(_) => {}
            Err(e) => tracing::error!("cannot apply the hostname to the OS: {e}"),
        }
    }
    let ops = Arc::new(ops);
    if let Some(f) = &tls_files {
        // Alerts when the HTTPS certificate nears its end (issue 14.6).
        ops.alerts.watch_certificate(&f.cert);
    }
    let state = Arc::new(AppState {
        ops: ops.clone(),
        engine: engine.clone(),
        auth: Authenticator::new(users),
        metrics: Metrics::new(),
        slots: Slots::default(),
        settings: settings.clone(),
        hostname: std::sync::RwLock::new(hostname),
        reports: wirecap_appliance::report::Jobs::default(),
    });
    let shared = state.clone();
    let app = router(state);
    let handle = axum_server::Handle::new();
    let mut tasks = Vec::new();
    let mut urls = Vec::new();

    if let Some(l) = http {
        let addr = l.local_addr().at(&dir)?;
        urls.push(shown(addr, "http"));
        let mut server = axum_server::from_tcp(l)
            .handle(handle.clone())
            .acceptor(Limited::new(DefaultAcceptor::new(), gate.clone()));
        limit_header_time(server.http_builder(), header_timeout);
        let svc = app
            .clone()
            .into_make_service_with_connect_info::<SocketAddr>();
        tasks.push(tokio::spawn(async move { server.serve(svc).await }));
        tracing::info!(%addr, "listening (HTTP)");
    }
    if let (Some(l), Some(files)) = (https, &tls_files) {
        let addr = l.local_addr().at(&dir)?;
        urls.push(shown(addr, "https"));
        let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&files.cert, &files.key)
            .await
            .map_err(|e| {
                Error::Tls(format!(
                    "{} / {}: {e}",
                    files.cert.display(),
                    files.key.display()
                ))
            })?;
        let tls = RustlsAcceptor::new(config).handshake_timeout(limits.handshake);
        let mut server = axum_server::from_tcp(l)
            .handle(handle.clone())
            .acceptor(Limited::new(tls, gate.clone()));
        limit_header_time(server.http_builder(), header_timeout);
        let svc = app
            .clone()
            .layer(axum::middleware::map_response(tls::secure_cookies))
            .into_make_service_with_connect_info::<SocketAddr>();
        tasks.push(tokio::spawn(async move { server.serve(svc).await }));
        tracing::info!(%addr, cert = %files.cert.display(), "listening (HTTPS)");
    }

    banner(&settings, &engine, &login, &urls, tls_files.as_ref());
    // Listeners bound and the store open: a release restarted into is good to keep.
    Releases::new(&dir).mark_healthy();

    // Once a second: watch the link, seal a replay that reached its end, notice users
    // changed by `wirecap users` beside the server.
    let ticker = {
        let engine = engine.clone();
        let state = shared.clone();
        tokio::spawn(async move {
            let mut t = tokio::time::interval(Duration::from_secs(1));
            loop {
                t.tick().await;
                let e = engine.clone();
                let s = state.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    e.observe_link();
                    e.observe_disk();
                    e.reap_finished();
                    s.auth.reload_if_changed();
                    // `wirecap hostname` beside the server writes the file only; without
                    // a configured name the OS's is shown, and the OS's may change too.
                    if let Ok(c) = FileConfig::load(&s.settings.data) {
                        let h = wirecap_appliance::hostname::effective(c.hostname.as_deref());
                        if h != s.hostname() {
                            s.set_hostname(&h);
                        }
                    }
                })
                .await;
            }
        })
    };

    let ops_for_retention = ops.clone();
    // Once a second, just after the second turns (schedule windows start on whole
    // seconds): schedules, retention, changes to wirecap.toml.
    let operations = {
        let engine = engine.clone();
        tokio::spawn(async move {
            loop {
                let (e, o) = (engine.clone(), ops.clone());
                let _ = tokio::task::spawn_blocking(move || o.tick(&e)).await;
                let into = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos());
                let wait = Duration::from_nanos(1_000_000_000 - u64::from(into))
                    + Duration::from_millis(5);
                tokio::time::sleep(wait).await;
            }
        })
    };

    // Retention's check, ten times a second: the writer's growth and the free space.
    let retention = {
        let engine = engine.clone();
        let ops = ops_for_retention;
        tokio::spawn(async move {
            let mut t = tokio::time::interval(wirecap_appliance::operations::RETENTION_CHECK_EVERY);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                t.tick().await;
                let (e, o) = (engine.clone(), ops.clone());
                let _ = tokio::task::spawn_blocking(move || o.retention_step(&e)).await;
            }
        })
    };

    shutdown_signal().await;
    tracing::info!("shutting down: stopping the capture, draining connections");
    ticker.abort();
    operations.abort();
    retention.abort();
    let e = engine.clone();
    let _ = tokio::task::spawn_blocking(move || e.shutdown()).await;
    handle.graceful_shutdown(Some(Duration::from_secs(5)));
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("listener failed: {e}"),
            Err(e) => tracing::error!("listener task failed: {e}"),
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

fn banner(
    s: &Settings,
    engine: &Engine,
    login: &AdminLogin,
    urls: &[String],
    tls_files: Option<&tls::CertFiles>,
) {
    let mut out = String::new();
    out.push_str(&format!(
        "wirecap appliance, data in {}\n",
        s.data.display()
    ));
    let src = engine.describe_source();
    match engine.source() {
        SourceChoice::Synthetic(_) => out.push_str(&format!(
            "  capture source: {src} (SYNTHETIC: {}; give --interface IF as root to capture a link)\n",
            s.source_reason
        )),
        _ => out.push_str(&format!("  capture source: {src} ({})\n", s.source_reason)),
    }
    for u in urls {
        out.push_str(&format!("  listening:      {u}/\n"));
    }
    // Issue 14.7: the manual's scripts use http://; say how to get it, HTTPS staying the
    // default.
    if !urls.iter().any(|u| u.starts_with("http:")) {
        out.push_str(&format!(
            "  plain HTTP:     off; for http:// scripts add --http 0.0.0.0:8080, or http = \"0.0.0.0:8080\" in {}, or install with `wirecap install --http 0.0.0.0:8080`\n",
            s.data.join("wirecap.toml").display()
        ));
    }
    if let Some(f) = tls_files {
        if f.self_signed {
            out.push_str(&format!(
                "  certificate:    self-signed, {} (use curl -k, or replace it with [tls] cert/key in wirecap.toml)\n",
                f.cert.display()
            ));
        } else {
            out.push_str(&format!("  certificate:    {}\n", f.cert.display()));
        }
    }
    let pw_shown = match login {
        AdminLogin::FromEnv => {
            out.push_str("  login:          admin / the password in WIRECAP_ADMIN_PASSWORD\n");
            "$WIRECAP_ADMIN_PASSWORD".to_owned()
        }
        AdminLogin::Generated { password, file } => {
            out.push_str(&format!(
                "  login:          admin / {password}   (shown once; also in {})\n",
                file.display()
            ));
            password.clone()
        }
        AdminLogin::Existing { initial_file } => {
            match initial_file {
                Some(f) => out.push_str(&format!(
                    "  login:          admin / the password in {}\n",
                    f.display()
                )),
                None => out.push_str("  login:          admin / the password set at first start\n"),
            }
            "PASSWORD".to_owned()
        }
    };
    if let Some(u) = urls.first() {
        let k = if u.starts_with("https") { "-k " } else { "" };
        out.push_str(&format!(
            "  try:            curl {k}-u admin:{pw_shown} \"{u}/sysmaster/status\"\n                  curl {k}-u admin:{pw_shown} \"{u}/sysmaster/capture_start?StreamName=demo\"\n"
        ));
    }
    print!("{out}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_timeout_is_checked_not_panicked_on() {
        assert_eq!(header_timeout(None).unwrap(), Duration::from_secs(10));
        assert_eq!(
            header_timeout(Some("1.5")).unwrap(),
            Duration::from_millis(1500)
        );
        for bad in ["1e20", "0", "-1", "NaN", "inf", "ten", ""] {
            let e = header_timeout(Some(bad)).expect_err(bad).to_string();
            assert!(
                e.contains("WIRECAP_HEADER_TIMEOUT_SECS") && e.contains("positive number"),
                "{bad}: {e}"
            );
        }
    }
}
