//! `wirecap filter [--bpf] EXPR -r IN -w OUT`: like `tcpdump -r IN -w OUT EXPR`, for the
//! appliance language or (with `--bpf`) tcpdump syntax.

use std::fs::File;
use std::io::{Read, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use wirecap_query::{CompileError, Date, Filter, compile_named, today_utc};

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
wirecap filter --bpf 'tcp port 443' -r in.pcapng -w out.pcap\n  \
wirecap filter 'web: tcp.port == 80; dns: udp.port == 53; web | dns' -r in.pcap -w - | tcpdump -r - -nn")]
pub struct FilterArgs {
    /// EXPR is tcpdump syntax (default: the appliance filter language)
    #[arg(long)]
    bpf: bool,
    /// Input capture (pcap or pcapng), or - for standard input
    #[arg(short = 'r', value_name = "IN")]
    input: String,
    /// Output file (pcap, nanosecond timestamps), or - for standard output
    #[arg(short = 'w', value_name = "OUT")]
    out: String,
    /// The filter; several words are joined by spaces, as tcpdump does
    #[arg(required = true, value_name = "EXPR")]
    expr: Vec<String>,
}

pub fn run(a: FilterArgs) -> Result<ExitCode> {
    let expr = a.expr.join(" ");
    let input: Box<dyn Read> = if a.input == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(File::open(&a.input).with_context(|| format!("cannot open {}", a.input))?)
    };
    let shown = if a.input == "-" {
        "<stdin>"
    } else {
        a.input.as_str()
    };
    let today = today_utc(wirecap_store::now_ns());
    let compile = |link| {
        compile_expr(&expr, a.bpf, link, today)
            .map_err(|e| wirecap_query::Error::Invalid(e.to_string()))
    };
    // Filter errors carry their own caret drawing; reader errors name the file.
    let named = |e: wirecap_query::Error| -> anyhow::Error {
        match e {
            wirecap_query::Error::Pcap(p) => anyhow::anyhow!("{shown}: {p}"),
            other => anyhow::Error::new(other),
        }
    };
    let stats = if a.out == "-" {
        let mut lock = crate::output::capture_stdout("-w - | tcpdump -r -, or give -w FILE")?;
        let s = wirecap_query::filter_capture(input, compile, &mut lock).map_err(named)?;
        lock.flush()?;
        s
    } else {
        let mut part = crate::output::PartFile::create(&a.out)?;
        let s = wirecap_query::filter_capture(input, compile, part.file()).map_err(named)?;
        part.commit()?;
        s
    };
    eprintln!(
        "{} of {} packets matched ({} bytes written)",
        stats.packets, stats.packets_read, stats.bytes
    );
    if let Some(e) = stats.input_error {
        // As tcpdump does: the packets before the damage are filtered and written.
        bail!(
            "{shown}: {e} (the {} packets before it were filtered)",
            stats.packets_read
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Compiles EXPR; its errors name it as the positional argument it is, not `--filter`.
fn compile_expr(
    expr: &str,
    bpf: bool,
    link: wirecap_pcap::LinkType,
    today: Date,
) -> Result<Option<Filter>, CompileError> {
    if bpf {
        compile_named(None, Some(expr), link, today, ("EXPR", "EXPR (--bpf)"))
    } else {
        compile_named(Some(expr), None, link, today, ("EXPR", "EXPR (--bpf)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_positional_expression() {
        let today = today_utc(0);
        let link = wirecap_pcap::LinkType::ETHERNET;
        let e = compile_expr("tcp.prot == 1", false, link, today).unwrap_err();
        assert!(e.to_string().starts_with("EXPR: "), "{e}");
        let e = compile_expr("tcp and (", true, link, today).unwrap_err();
        assert!(e.to_string().starts_with("EXPR (--bpf): "), "{e}");
        assert!(!e.to_string().contains("--filter"), "{e}");
    }
}
