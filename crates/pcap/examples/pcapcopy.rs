//! Copies a capture file to pcap-ns (or pcapng with `--ng`), the shape of a wirecap
//! import; used to compare against `tcpdump -r IN -w OUT`.
//!
//! `cargo run --release -p wirecap-pcap --example pcapcopy -- [--ng] IN OUT`

use std::fs::File;
use std::io::{BufWriter, Write};
use std::time::Instant;

use wirecap_pcap::{CaptureReader, PcapNsWriter, PcapngWriter};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let ng = args.first().is_some_and(|a| a == "--ng");
    if ng {
        args.remove(0);
    }
    let [input, output] = &args[..] else {
        return Err("usage: pcapcopy [--ng] IN OUT".into());
    };
    let start = Instant::now();
    let mut r = CaptureReader::new(File::open(input)?)?;
    let link = r.link_type(0).ok_or("no interface")?;
    let snaplen = r.snaplen(0).unwrap_or(0);
    let out = BufWriter::with_capacity(1 << 20, File::create(output)?);
    let mut n = 0u64;
    if ng {
        let mut w = PcapngWriter::new(out, link, snaplen)?;
        while let Some(p) = r.next_packet()? {
            w.write_packet(&p)?;
            n += 1;
        }
        w.into_inner().flush()?;
    } else {
        let mut w = PcapNsWriter::new(out, link, snaplen)?;
        while let Some(p) = r.next_packet()? {
            w.write_packet(&p)?;
            n += 1;
        }
        w.into_inner().flush()?;
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "{n} packets, {} bytes read in {secs:.3} s: {:.0} MB/s",
        r.offset(),
        r.offset() as f64 / 1e6 / secs
    );
    Ok(())
}
