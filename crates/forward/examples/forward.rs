//! Runs the forwarder in the foreground, without a capture, printing its counters once a
//! second: `forward IF ADDR/PREFIX A=B [C=D ...]` (root; for trying it out by hand).

use std::time::Duration;
use wirecap_forward::afpacket::{ForwarderHandle, Settings};
use wirecap_forward::{CaptureMode, Pair};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [interface, inline, pairs @ ..] = args.as_slice() else {
        return Err("usage: forward IF ADDR/PREFIX A=B [C=D ...]".into());
    };
    let pairs = pairs
        .iter()
        .map(|p| p.parse())
        .collect::<Result<Vec<Pair>, _>>()?;
    let h = ForwarderHandle::start(Settings {
        interface: interface.clone(),
        inline: inline.parse()?,
        pairs,
        mode: CaptureMode::Inline,
        cpu: Default::default(),
    })?;
    eprintln!("offloads: {}", h.snapshot().offloads.join(", "));
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let s = h.snapshot();
        eprintln!(
            "forwarded {} pps {} bps {} drops {:?} arp answered {} pending {} neighbours {:?}",
            s.stats.forwarded(),
            s.pps,
            s.bps,
            s.stats.drops,
            s.stats.arp_answered,
            s.arp_pending,
            s.neighbours
        );
    }
}
