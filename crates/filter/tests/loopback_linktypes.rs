//! DLT_NULL and DLT_LOOP carry the sender's address family before the IP header, and
//! IPv6 has a different AF_INET6 on every OS (10 Linux, 24 NetBSD/OpenBSD, 28 FreeBSD,
//! 30 macOS). tcpdump reading a file accepts the BSD values for `ip6`; a filter compiled
//! without a savefile would use the host's. Both link types are checked against tcpdump.

use std::path::Path;
use std::process::Command;

use wirecap_filter::{Filter, LinkType};

fn ipv4() -> Vec<u8> {
    let mut h = vec![
        0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    h.extend_from_slice(&[0x30, 0x39, 0, 53, 0, 8, 0, 0]);
    h
}

fn ipv6(next: u8) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0, 0, 8, next, 64];
    h.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8].repeat(4));
    h.extend_from_slice(&[0xfe, 0x80, 0, 0].repeat(4));
    h.extend_from_slice(&[0x30, 0x39, 0, 80, 0, 8, 0, 0]);
    h
}

/// A pcap of `link` with one packet per (family, payload); NULL stores the family in the
/// writer's byte order (here little-endian, as the file), LOOP in network order.
fn write(path: &Path, link: u32, packets: &[(u32, Vec<u8>)]) {
    let mut f = Vec::new();
    f.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    f.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    f.extend_from_slice(&65535u32.to_le_bytes());
    f.extend_from_slice(&link.to_le_bytes());
    for (i, (af, payload)) in packets.iter().enumerate() {
        let mut data = if link == 0 {
            af.to_le_bytes().to_vec()
        } else {
            af.to_be_bytes().to_vec()
        };
        data.extend_from_slice(payload);
        f.extend_from_slice(&(1_700_000_000u32 + i as u32).to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&(data.len() as u32).to_le_bytes());
        f.extend_from_slice(&(data.len() as u32).to_le_bytes());
        f.extend_from_slice(&data);
    }
    std::fs::write(path, f).unwrap();
}

fn tcpdump_count(file: &Path, expr: &str) -> usize {
    let o = Command::new("tcpdump")
        .args(["-nn", "-r"])
        .arg(file)
        .arg(expr)
        .output()
        .expect("tcpdump runs");
    assert!(
        o.status.success(),
        "tcpdump {expr}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Packets of an unknown family come with an indented hex dump: count first lines.
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.starts_with(char::is_whitespace))
        .count()
}

#[test]
fn ip6_on_null_and_loop_matches_tcpdump() {
    if !wirecap_testkit::require_tool("tcpdump") {
        return;
    }
    let packets: Vec<(u32, Vec<u8>)> = vec![
        (2, ipv4()),
        (10, ipv6(17)),
        (24, ipv6(17)),
        (28, ipv6(6)),
        (30, ipv6(17)),
        (30, ipv6(6)),
    ];
    let dir = tempfile::tempdir().unwrap();
    for link in [0u32, 108] {
        let file = dir.path().join(format!("link{link}.pcap"));
        write(&file, link, &packets);
        for expr in [
            "ip6",
            "ip",
            "ip6 and udp",
            "ip6 and tcp",
            "not ip6",
            "udp port 53",
        ] {
            let f = Filter::bpf(expr, LinkType(link as u16)).unwrap();
            let ours = packets
                .iter()
                .filter(|(af, p)| {
                    let mut data = if link == 0 {
                        af.to_le_bytes().to_vec()
                    } else {
                        af.to_be_bytes().to_vec()
                    };
                    data.extend_from_slice(p);
                    f.matches(0, data.len() as u32, &data)
                })
                .count();
            assert_eq!(ours, tcpdump_count(&file, expr), "link type {link}: {expr}");
        }
    }
}
