//! `wirecap serve`: the appliance (capture engine + HTTP(S) API) in the foreground.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use wirecap_appliance::capture_settings::{CaptureOptions, CaptureSettings};
use wirecap_appliance::config::ForwardChoice;
use wirecap_appliance::{ServeArgs, SourceChoice};

/// Run the appliance: capture engine, the manual's HTTP API, the JSON API, metrics
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Without --http/--https it listens with HTTPS on 0.0.0.0:8443 (self-signed \
certificate kept in DIR/tls). On first start the user admin gets its password from \
WIRECAP_ADMIN_PASSWORD, or a generated one printed once and kept in DIR/initial-admin-password.\n\
Without --interface (or [capture] in DIR/wirecap.toml) it captures synthetic traffic.\n\
With --inline it forwards between --forward pairs on the interface (bump in the wire), and a \
capture records the forwarded packets in --capture-mode.\n--bpf, --snaplen, --threads, --fanout, --blocks and --block-kib set up interface captures \
(as [capture] bpf, snaplen, … in wirecap.toml, and the Config page); /api/v1/status shows them \
under capture_settings.\n\n\
Example:\n  WIRECAP_ADMIN_PASSWORD=secret wirecap serve --data /var/lib/wirecap --http 127.0.0.1:8080\n  \
curl -u admin:secret \"http://127.0.0.1:8080/sysmaster/status\"\n  \
wirecap serve --data /var/lib/wirecap --interface eth1 --inline 10.9.0.1/24 --forward 10.9.0.2=10.9.0.3 --capture-mode inline"
)]
pub struct ServeArgsCli {
    /// Data directory: streams, users, certificate, logs, wirecap.toml (also from WIRECAP_DATA)
    #[arg(long, env = "WIRECAP_DATA", value_name = "DIR")]
    data: PathBuf,
    /// Plain HTTP listener, e.g. 127.0.0.1:8080 (off unless given)
    #[arg(long, value_name = "ADDR")]
    http: Option<String>,
    /// HTTPS listener (default 0.0.0.0:8443 when neither --http nor --https is given)
    #[arg(long, value_name = "ADDR")]
    https: Option<String>,
    /// Capture this interface (needs root or CAP_NET_RAW)
    #[arg(long, short = 'i', value_name = "IF", conflicts_with_all = ["replay", "synthetic"])]
    interface: Option<String>,
    /// Replay this pcap/pcapng file as the capture source
    #[arg(long, value_name = "FILE", conflicts_with = "synthetic")]
    replay: Option<PathBuf>,
    /// Replay speed: a factor (1, 2.5, 10x) or `top`
    #[arg(long, value_name = "X|top", requires = "replay")]
    speed: Option<String>,
    /// Capture generated traffic at this many packets per second
    #[arg(long, value_name = "PPS")]
    synthetic: Option<u64>,
    /// Bump in the wire: forward between peer pairs on --interface, answering ARP for this
    /// capture IP (which must not be a kernel address of the interface)
    #[arg(long, value_name = "ADDR/PREFIX")]
    inline: Option<String>,
    /// A peer pair A=B: A's packets to the capture IP go to B, B's to A (repeatable)
    #[arg(long = "forward", value_name = "A=B", requires = "inline")]
    forward: Vec<String>,
    /// What a capture records of forwarded packets: ingress, egress, inline (A->B as if no
    /// appliance; the default) or both
    #[arg(long, value_name = "MODE", requires = "inline")]
    capture_mode: Option<String>,
    /// The CPU the forwarder has to itself, every other wirecap thread kept off it: auto
    /// (the default: the last CPU, when there are at least two), off, or a CPU number
    #[arg(long, value_name = "auto|off|CPU", requires = "inline")]
    forward_cpu: Option<String>,
    /// Capture filter in tcpdump syntax, compiled into the capture socket: other packets
    /// are never copied (interface captures; also [capture] bpf and the Config page)
    #[arg(long, value_name = "EXPR")]
    bpf: Option<String>,
    /// Bytes kept per packet, 64 to 262144 (the original length is kept)
    #[arg(long, value_name = "BYTES")]
    snaplen: Option<u32>,
    /// Capture threads: sockets of one PACKET_FANOUT group (default 1)
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// How fanout spreads packets over the threads: hash (a flow stays on one) or cpu
    #[arg(long, value_name = "hash|cpu")]
    fanout: Option<String>,
    /// Ring blocks per capture thread (default 32)
    #[arg(long, value_name = "N")]
    blocks: Option<u32>,
    /// Ring block size in KiB (default 1024)
    #[arg(long, value_name = "KIB")]
    block_kib: Option<u32>,
    /// Archive tier: write sealed segments back to s3://BUCKET/PREFIX (also gs://, az://,
    /// file:///PATH) and read them from there once the local copy is gone. Credentials
    /// and endpoint come from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    /// AWS_REGION, AWS_ENDPOINT_URL, AWS_ALLOW_HTTP=true for plain HTTP)
    #[arg(long, value_name = "URL")]
    archive: Option<String>,
    /// This probe's name in the archive (default: the hostname)
    #[arg(long, value_name = "NAME")]
    probe: Option<String>,
    /// Serve every probe's streams from the archive: no capture, no writeback (the fleet
    /// view; needs --archive or [archive] url)
    #[arg(long)]
    read_only: bool,
}

pub fn run(a: ServeArgsCli) -> anyhow::Result<ExitCode> {
    let source = if let Some(i) = a.interface {
        Some(SourceChoice::Interface(i))
    } else if let Some(path) = a.replay {
        Some(SourceChoice::Replay {
            path,
            speed: a.speed.unwrap_or_else(|| "1".into()),
        })
    } else {
        a.synthetic.map(SourceChoice::Synthetic)
    };
    let forward = match &a.inline {
        Some(inline) => Some(
            ForwardChoice::parse(inline, &a.forward, a.capture_mode.as_deref())
                .and_then(|c| c.with_cpu(a.forward_cpu.as_deref()))
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        ),
        None => None,
    };
    let capture = CaptureOptions {
        bpf: a.bpf,
        snaplen: a.snaplen,
        threads: a.threads,
        fanout: a.fanout,
        blocks: a.blocks,
        block_kib: a.block_kib,
    };
    // Checked here too, so a wrong flag is named as the flag.
    CaptureSettings::check(&capture)
        .map_err(|e| anyhow::anyhow!("--{}: {}", e.field.replace('_', "-"), e.why))?;
    let data = a.data.clone();
    wirecap_http::run(ServeArgs {
        data: a.data,
        http: a.http,
        https: a.https,
        source,
        forward,
        capture,
        archive_url: a.archive,
        probe: a.probe,
        read_only: a.read_only,
    })
    .with_context(|| format!("serve --data {}", data.display()))?;
    Ok(ExitCode::SUCCESS)
}
