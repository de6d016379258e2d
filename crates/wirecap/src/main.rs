//! `wirecap`: the command-line entry point of the wirecap appliance.
//!
//! This crate only parses arguments, calls the library crates and prints; the logic
//! lives in `wirecap-store`, `wirecap-pcap` and friends.

mod analyze_cmd;
mod capture_cmd;
mod client_cmd;
mod doctor;
mod export;
mod filter_cmd;
mod flows_cmd;
mod generate;
mod hostname_cmd;
mod import;
mod install_cmd;
mod listing;
mod ops_cmd;
mod output;
mod reindex_cmd;
mod release_cmd;
mod report_cmd;
mod search_cmd;
mod serve_cmd;
mod tokens_cmd;
mod update_cmd;
mod users_cmd;
mod verify_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "wirecap",
    version,
    about = "Full packet capture: record every packet, get any slice back as a pcap",
    long_about = "wirecap records every packet of a link to an indexed store on local disk and \
gives any time window, size slice or filter of it back as a pcap.\n\n\
Every stream has all its views at once: single, split_1sec, split_10sec, split_1min, \
split_10min, split_15min, split_1hour, split_1MB, split_10MB, split_100MB, split_1GB, \
split_10GB, split_100GB and split_1TB.",
    after_help = "Examples:\n  \
wirecap import --data /var/lib/wirecap --name office trace.pcap\n  \
wirecap list --data /var/lib/wirecap\n  \
wirecap splits --data /var/lib/wirecap office_20250101_0900 --view split_1min\n  \
wirecap export --data /var/lib/wirecap office_20250101_0900 --start 2025-01-01T09:00:05Z --stop 2025-01-01T09:00:06Z -o - | tcpdump -r - -nn"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// The data directory argument shared by every store command.
#[derive(clap::Args, Clone)]
struct DataDir {
    /// Data directory of the store (also from WIRECAP_DATA)
    #[arg(long, env = "WIRECAP_DATA", value_name = "DIR")]
    data: PathBuf,
}

#[derive(Subcommand)]
enum Cmd {
    /// Import pcap/pcapng files into a new stream
    Import(import::ImportArgs),
    /// List streams, newest first: stored name, packets, pcap bytes, first and last packet time
    List(listing::ListArgs),
    /// List the views of a stream (single and every split)
    Views(listing::ViewsArgs),
    /// List the splits of one view of a stream, with exact packets and bytes
    Splits(listing::SplitsArgs),
    /// Write a stream, a time range or one split as pcap or pcapng
    Export(export::ExportArgs),
    /// Filter a capture file into a pcap, like `tcpdump -r IN -w OUT EXPR` (appliance
    /// language, or tcpdump syntax with --bpf)
    Filter(filter_cmd::FilterArgs),
    /// Analyze a stream, a time range and/or a filter: protocols, talkers, ports, series, flows
    Analyze(analyze_cmd::AnalyzeArgs),
    /// Repair and seal streams whose writer died (the server does this at start)
    Recover(DataDir),
    /// Check every chunk CRC and index record of a stream against its segments
    Verify(verify_cmd::VerifyArgs),
    /// Delete a stream
    Delete(listing::DeleteArgs),
    /// Capture an interface (or a replay, or synthetic traffic) into a new stream, in the
    /// foreground: Ctrl-C stops and seals it
    Capture(capture_cmd::CaptureArgs),
    /// Write a synthetic capture file (realistic mixed traffic) for demos and benchmarks
    Generate(generate::GenerateArgs),
    /// Run the appliance: capture engine and HTTP(S) API (the manual's routes, JSON, metrics)
    Serve(serve_cmd::ServeArgsCli),
    /// Show a server's capture status (client of `wirecap serve`)
    Status(client_cmd::StatusArgs),
    /// Start a capture on a server: the stream is NAME_YYYYMMDD_HHMM
    Start(client_cmd::StartArgs),
    /// Stop a server's capture
    Stop(client_cmd::StopArgs),
    /// List a server's streams
    Ls(client_cmd::LsArgs),
    /// Download a stream, a time range or one split from a server
    Get(client_cmd::GetArgs),
    /// Make release archives and signing keys for the software update
    Release(release_cmd::ReleaseArgs),
    /// Software update of a running server: upload, list, activate (client of `wirecap serve`)
    Update(update_cmd::UpdateArgs),
    /// Install as a systemd service: system user, binary, unit (see --dry-run)
    Install(install_cmd::InstallArgs),
    /// Check the host (capabilities, memlock, disk, interface, clock, kernel) and say what to fix
    Doctor(doctor::DoctorArgs),
    /// Watches a restart into a new release and rolls it back if it does not come up
    /// (started by the server itself)
    #[command(name = "update-watchdog", hide = true)]
    UpdateWatchdog(update_cmd::WatchdogArgs),
    /// Users and roles of the data directory: list, add, remove, passwd, role
    Users(users_cmd::UsersArgs),
    /// Show or set the appliance's hostname (kept in DIR/wirecap.toml)
    Hostname(hostname_cmd::HostnameArgs),
    /// Make a system report (logs, config without secrets, streams, system facts) in DIR/upload
    Report(report_cmd::ReportArgs),
    /// Capture schedules in DIR/wirecap.toml: list, add, remove (a running server applies
    /// changes within a second)
    Schedule(ops_cmd::ScheduleArgs),
    /// Show the disk budget, usage and retention horizon; --budget/--high/--low set them
    Retention(ops_cmd::RetentionArgs),
    /// Pin a stream so that retention never deletes it (--off unpins)
    Pin(ops_cmd::PinArgs),
    /// API tokens for scripts (Authorization: Bearer): list, add, revoke
    Tokens(tokens_cmd::TokensArgs),
    /// Search every stream: a time range and a filter, as one time-ordered pcap
    Search(search_cmd::SearchArgs),
    /// List the flows of every stream in a time range, through a filter (JSON or CSV)
    Flows(flows_cmd::FlowsArgs),
    /// Build the flow index of a stream written without one (queries then read only the
    /// packets of matching flows)
    Reindex(reindex_cmd::ReindexArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Import(a) => import::run(a),
        Cmd::List(a) => listing::list(a),
        Cmd::Views(a) => listing::views(a),
        Cmd::Splits(a) => listing::splits(a),
        Cmd::Export(a) => export::run(a),
        Cmd::Filter(a) => filter_cmd::run(a),
        Cmd::Analyze(a) => analyze_cmd::run(a),
        Cmd::Recover(a) => listing::recover(a),
        Cmd::Verify(a) => verify_cmd::run(a),
        Cmd::Delete(a) => listing::delete(a),
        Cmd::Generate(a) => generate::run(a),
        Cmd::Capture(a) => capture_cmd::run(a).map(|()| ExitCode::SUCCESS),
        Cmd::Serve(a) => serve_cmd::run(a),
        Cmd::Status(a) => client_cmd::status(a),
        Cmd::Start(a) => client_cmd::start(a),
        Cmd::Stop(a) => client_cmd::stop(a),
        Cmd::Ls(a) => client_cmd::ls(a),
        Cmd::Get(a) => client_cmd::get(a),
        Cmd::Release(a) => release_cmd::run(a),
        Cmd::Update(a) => update_cmd::run(a),
        Cmd::Install(a) => install_cmd::run(a),
        Cmd::Doctor(a) => doctor::run(a),
        Cmd::UpdateWatchdog(a) => update_cmd::watchdog(a),
        Cmd::Users(a) => users_cmd::run(a),
        Cmd::Hostname(a) => hostname_cmd::run(a),
        Cmd::Report(a) => report_cmd::run(a),
        Cmd::Schedule(a) => ops_cmd::schedule(a),
        Cmd::Retention(a) => ops_cmd::retention(a),
        Cmd::Pin(a) => ops_cmd::pin(a),
        Cmd::Tokens(a) => tokens_cmd::run(a),
        Cmd::Search(a) => search_cmd::run(a),
        Cmd::Flows(a) => flows_cmd::run(a),
        Cmd::Reindex(a) => reindex_cmd::run(a),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            // A closed pipe (`wirecap export -o - | head`) is the reader's choice, not an error.
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("wirecap: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
