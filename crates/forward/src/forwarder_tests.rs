//! The forwarder against simulated hosts: frames in, frames out, no sockets.

use super::*;
use crate::rewrite::checksums_valid;
use crate::rewrite::tests::frame;
use crate::wire::{protocol, read16};
use std::net::Ipv4Addr;

const ME: Mac = [2, 0, 0, 0, 0, 0xc];
const A_MAC: Mac = [2, 0, 0, 0, 0, 0xa];
const B_MAC: Mac = [2, 0, 0, 0, 0, 0xb];
const S: u64 = 1_000_000_000;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[derive(Default)]
struct VecTx {
    sent: Vec<Vec<u8>>,
    room: Option<usize>,
    /// Super-packets sent whole (when `gso_ok`).
    gso: Vec<(Gso, Vec<u8>)>,
    gso_ok: bool,
}

impl Transmit for VecTx {
    fn transmit_gso(&mut self, gso: &Gso, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> bool {
        if !self.gso_ok {
            return false;
        }
        let mut b = vec![0u8; len];
        fill(&mut b);
        self.gso.push((*gso, b));
        true
    }

    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> bool {
        if self.room.is_some_and(|r| self.sent.len() >= r) {
            return false;
        }
        let mut b = vec![0u8; len];
        fill(&mut b);
        self.sent.push(b);
        true
    }
}

#[derive(Default)]
struct VecRec {
    on: bool,
    got: Vec<(u64, Vec<u8>)>,
}

impl Recorder for VecRec {
    fn active(&self) -> bool {
        self.on
    }
    fn record(&mut self, ts: u64, f: &[u8]) {
        self.got.push((ts, f.to_vec()));
    }
}

fn forwarder(pairs: &[&str], mode: CaptureMode) -> Forwarder {
    let inline: Inline = "10.9.0.1/24".parse().unwrap();
    let config = ForwarderConfig {
        inline,
        mac: ME,
        mtu: 1500,
        neighbours: NeighbourConfig::default(),
    };
    Forwarder::new(config, ForwardTable::parse(inline, pairs).unwrap(), mode)
}

fn arp_frame(op: ArpOp, from: (Mac, &str), to: (Mac, &str), eth_dst: Mac) -> Vec<u8> {
    let mut b = vec![0u8; ARP_FRAME_LEN];
    wire::emit_arp(&mut b, eth_dst, op, (from.0, ip(from.1)), (to.0, ip(to.1)));
    b
}

/// An IPv4 frame from (mac, ip) to our MAC and `dst`.
fn ip_frame(src: (Mac, &str), dst: &str, proto: u8, ttl: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = frame(ip(src.1), ip(dst), proto, ttl, payload, false);
    f[0..6].copy_from_slice(&ME);
    f[6..12].copy_from_slice(&src.0);
    f
}

fn echo_request() -> Vec<u8> {
    let mut p = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1];
    p.extend_from_slice(&[0x61; 56]);
    p
}

fn rx(buf: &mut [u8]) -> Received<'_> {
    let wire_len = buf.len();
    Received {
        ts_ns: 5 * S,
        data: buf,
        wire_len,
        checksum_partial: false,
        stripped_tag: None,
        gso: None,
    }
}

/// A forwarder that knows both peers' MACs (it asked, they answered).
fn resolved(pairs: &[&str], mode: CaptureMode) -> (Forwarder, VecTx) {
    let mut f = forwarder(pairs, mode);
    let mut tx = VecTx::default();
    f.poll(S, &mut tx);
    assert_eq!(tx.sent.len(), 2 * pairs.len(), "one ARP request per peer");
    for s in &tx.sent {
        let a = Arp::new_checked(&s[14..]).unwrap();
        assert_eq!(a.op(), ArpOp::Request);
        assert_eq!(&s[0..6], &BROADCAST);
        assert_eq!(a.sender_ip(), ip("10.9.0.1"));
    }
    let mut none = NoRecorder;
    for (mac, peer) in [(A_MAC, "10.9.0.2"), (B_MAC, "10.9.0.3")] {
        let mut r = arp_frame(ArpOp::Reply, (mac, peer), (ME, "10.9.0.1"), ME);
        f.receive(S, rx(&mut r), &mut tx, &mut none);
    }
    assert_eq!(f.stats().arp_resolved, 2);
    tx.sent.clear();
    (f, tx)
}

#[test]
fn answers_arp_for_the_capture_ip_only() {
    let mut f = forwarder(&["10.9.0.2=10.9.0.3"], CaptureMode::Inline);
    let mut tx = VecTx::default();
    let mut req = arp_frame(
        ArpOp::Request,
        (A_MAC, "10.9.0.2"),
        ([0; 6], "10.9.0.1"),
        BROADCAST,
    );
    f.receive(S, rx(&mut req), &mut tx, &mut NoRecorder);
    assert_eq!(tx.sent.len(), 1);
    let reply = &tx.sent[0];
    assert_eq!(&reply[0..6], &A_MAC);
    let a = Arp::new_checked(&reply[14..]).unwrap();
    assert_eq!(a.op(), ArpOp::Reply);
    assert_eq!((a.sender_mac(), a.sender_ip()), (ME, ip("10.9.0.1")));
    assert_eq!(a.target_ip(), ip("10.9.0.2"));
    assert_eq!(f.stats().arp_answered, 1);
    // The request taught us A's MAC.
    assert_eq!(f.neighbour(ip("10.9.0.2").into(), S), Some(A_MAC));
    let mut other = arp_frame(
        ArpOp::Request,
        (A_MAC, "10.9.0.2"),
        ([0; 6], "10.9.0.7"),
        BROADCAST,
    );
    f.receive(S, rx(&mut other), &mut tx, &mut NoRecorder);
    assert_eq!(tx.sent.len(), 1, "no answer for another address");
}

#[test]
fn ping_goes_a_to_b_and_the_reply_b_to_a() {
    let (mut f, mut tx) = resolved(&["10.9.0.2=10.9.0.3"], CaptureMode::Inline);
    let mut req = ip_frame(
        (A_MAC, "10.9.0.2"),
        "10.9.0.1",
        protocol::ICMP,
        64,
        &echo_request(),
    );
    f.receive(5 * S, rx(&mut req), &mut tx, &mut NoRecorder);
    let out = &tx.sent[0];
    let v = Ipv4::new_checked(&out[14..]).unwrap();
    assert_eq!(
        (v.src(), v.dst(), v.ttl()),
        (ip("10.9.0.1"), ip("10.9.0.3"), 63)
    );
    assert_eq!(&out[0..12], &[B_MAC, ME].concat()[..]);
    assert!(checksums_valid(out));
    assert_eq!(&out[34..], &req[34..], "ICMP untouched");

    let mut rep = echo_request();
    rep[0] = 0;
    let mut reply = ip_frame((B_MAC, "10.9.0.3"), "10.9.0.1", protocol::ICMP, 64, &rep);
    f.receive(5 * S, rx(&mut reply), &mut tx, &mut NoRecorder);
    let back = &tx.sent[1];
    let v = Ipv4::new_checked(&back[14..]).unwrap();
    assert_eq!((v.src(), v.dst()), (ip("10.9.0.1"), ip("10.9.0.2")));
    assert_eq!(&back[0..6], &A_MAC);
    assert!(checksums_valid(back));
    let s = f.stats();
    assert_eq!((s.a_to_b_packets, s.b_to_a_packets), (1, 1));
    assert_eq!(s.a_to_b_bytes, req.len() as u64);
    assert_eq!(s.dropped_total(), 0);
}

#[test]
fn several_pairs_at_once() {
    let (mut f, mut tx) = resolved(&["10.9.0.2=10.9.0.3"], CaptureMode::Inline);
    let inline = f.config().inline;
    let t = ForwardTable::parse(inline, &["10.9.0.2=10.9.0.3", "10.9.0.4=10.9.0.5"]).unwrap();
    f.reconfigure(inline, t, CaptureMode::Inline);
    // Known MACs survive; the new peers are asked for.
    assert_eq!(f.neighbour(ip("10.9.0.3").into(), 2 * S), Some(B_MAC));
    f.poll(2 * S, &mut tx);
    assert_eq!(tx.sent.len(), 2);
    let (c, d) = ([2, 0, 0, 0, 0, 0xcc], [2, 0, 0, 0, 0, 0xdd]);
    for (mac, peer) in [(c, "10.9.0.4"), (d, "10.9.0.5")] {
        let mut r = arp_frame(ArpOp::Reply, (mac, peer), (ME, "10.9.0.1"), ME);
        f.receive(2 * S, rx(&mut r), &mut tx, &mut NoRecorder);
    }
    tx.sent.clear();
    let mut p = ip_frame((d, "10.9.0.5"), "10.9.0.1", protocol::UDP, 9, &[0; 20]);
    f.receive(3 * S, rx(&mut p), &mut tx, &mut NoRecorder);
    let mut q = ip_frame((A_MAC, "10.9.0.2"), "10.9.0.1", protocol::UDP, 9, &[0; 20]);
    f.receive(3 * S, rx(&mut q), &mut tx, &mut NoRecorder);
    let dst = |b: &[u8]| Ipv4::new_checked(&b[14..]).unwrap().dst();
    assert_eq!(dst(&tx.sent[0]), ip("10.9.0.4"));
    assert_eq!(&tx.sent[0][0..6], &c);
    assert_eq!(dst(&tx.sent[1]), ip("10.9.0.3"));
}

#[test]
fn waits_for_arp_then_sends_in_order() {
    let mut f = forwarder(&["10.9.0.2=10.9.0.3"], CaptureMode::Egress);
    let mut tx = VecTx::default();
    let mut rec = VecRec {
        on: true,
        ..VecRec::default()
    };
    for i in 0..3u8 {
        let mut p = ip_frame((A_MAC, "10.9.0.2"), "10.9.0.1", protocol::UDP, 64, &[i; 20]);
        f.receive(S, rx(&mut p), &mut tx, &mut rec);
    }
    assert_eq!(f.arp_pending(), 3);
    // Asked at once for B, broadcast.
    f.poll(S, &mut tx);
    assert!(
        tx.sent
            .iter()
            .any(|s| Arp::new_checked(&s[14..]).is_some_and(|a| a.target_ip() == ip("10.9.0.3")))
    );
    tx.sent.clear();
    let mut r = arp_frame(ArpOp::Reply, (B_MAC, "10.9.0.3"), (ME, "10.9.0.1"), ME);
    f.receive(S + 1, rx(&mut r), &mut tx, &mut rec);
    assert_eq!(f.arp_pending(), 0);
    assert_eq!(tx.sent.len(), 3);
    for (i, s) in tx.sent.iter().enumerate() {
        assert_eq!(s[42], i as u8, "in order");
        assert_eq!(&s[0..6], &B_MAC);
    }
    assert_eq!(rec.got.len(), 3, "released packets are captured too");
}

#[test]
fn unresolved_peers_time_out_and_the_queue_is_bounded() {
    let mut f = forwarder(&["10.9.0.2=10.9.0.3"], CaptureMode::Inline);
    let mut tx = VecTx::default();
    let limit = NeighbourConfig::default().queue_limit;
    for _ in 0..limit + 5 {
        let mut p = ip_frame((A_MAC, "10.9.0.2"), "10.9.0.1", protocol::UDP, 64, &[0; 20]);
        f.receive(S, rx(&mut p), &mut tx, &mut NoRecorder);
    }
    assert_eq!(f.stats().dropped(DropReason::ArpQueueFull), 5);
    f.poll(S + 4 * S, &mut tx);
    assert_eq!(f.stats().dropped(DropReason::Unresolved), limit as u64);
    assert_eq!(f.arp_pending(), 0);
}

#[test]
fn drops_are_counted_with_their_reason() {
    let (mut f, mut tx) = resolved(&["10.9.0.2=10.9.0.3"], CaptureMode::Inline);
    let a = (A_MAC, "10.9.0.2");
    let mut cases: Vec<(DropReason, Vec<u8>, Option<usize>)> = Vec::new();
    let mut v6 = ip_frame(a, "10.9.0.1", protocol::UDP, 64, &[0; 20]);
    v6[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    cases.push((DropReason::NonIpv4, v6, None));
    cases.push((
        DropReason::UnknownPeer,
        ip_frame(
            ([2, 0, 0, 0, 0, 9], "10.9.0.9"),
            "10.9.0.1",
            protocol::UDP,
            64,
            &[0; 20],
        ),
        None,
    ));
    cases.push((
        DropReason::TtlExpired,
        ip_frame(a, "10.9.0.1", protocol::UDP, 1, &[0; 20]),
        None,
    ));
    let mut bad = ip_frame(a, "10.9.0.1", protocol::UDP, 64, &[0; 20]);
    bad[24] ^= 0xff;
    cases.push((DropReason::BadHeader, bad, None));
    cases.push((
        DropReason::BadHeader,
        ip_frame(a, "10.9.0.1", protocol::TCP, 64, &[0; 10]),
        None,
    ));
    cases.push((
        DropReason::NotForUs,
        ip_frame(a, "10.9.0.3", protocol::UDP, 64, &[0; 20]),
        None,
    ));
    let mut other_mac = ip_frame(a, "10.9.0.1", protocol::UDP, 64, &[0; 20]);
    other_mac[0..6].copy_from_slice(&B_MAC);
    cases.push((DropReason::NotForUs, other_mac, None));
    cases.push((
        DropReason::Oversize,
        ip_frame(a, "10.9.0.1", protocol::TCP, 64, &[0; 1600]),
        None,
    ));
    let trunc = ip_frame(a, "10.9.0.1", protocol::UDP, 64, &[0; 200]);
    cases.push((DropReason::Truncated, trunc, Some(300)));
    for (reason, mut buf, wire) in cases {
        let before = f.stats().dropped(reason);
        let wire_len = wire.unwrap_or(buf.len());
        let r = Received {
            ts_ns: S,
            data: &mut buf,
            wire_len,
            checksum_partial: false,
            stripped_tag: None,
            gso: None,
        };
        f.receive(2 * S, r, &mut tx, &mut NoRecorder);
        assert_eq!(f.stats().dropped(reason), before + 1, "{}", reason.as_str());
    }
    // Nothing forwarded; the one frame sent is the time-exceeded error to A.
    assert_eq!(tx.sent.len(), 1);
    assert_eq!(&tx.sent[0][0..6], &A_MAC);
    assert_eq!(f.stats().icmp_errors_sent, 1);
    tx.sent.clear();
    assert_eq!(f.stats().forwarded(), 0);
    // A full TX ring.
    tx.room = Some(0);
    let mut p = ip_frame(a, "10.9.0.1", protocol::UDP, 64, &[0; 20]);
    f.receive(2 * S, rx(&mut p), &mut tx, &mut NoRecorder);
    assert_eq!(f.stats().dropped(DropReason::TxFull), 1);
}

#[test]
fn completes_partial_checksums_and_keeps_udp_zero() {
    let (mut f, mut tx) = resolved(&["10.9.0.2=10.9.0.3"], CaptureMode::Inline);
    let mut p = ip_frame((A_MAC, "10.9.0.2"), "10.9.0.1", protocol::TCP, 64, &[3; 40]);
    // What checksum offload leaves: the pseudo-header sum, not complemented.
    let partial = checksum::fold(checksum::pseudo_header(
        ip("10.9.0.2"),
        ip("10.9.0.1"),
        protocol::TCP,
        40,
    ));
    p[34 + 16..34 + 18].copy_from_slice(&partial.to_be_bytes());
    assert!(!checksums_valid(&p));
    let wire_len = p.len();
    let r = Received {
        ts_ns: S,
        data: &mut p,
        wire_len,
        checksum_partial: true,
        stripped_tag: None,
        gso: None,
    };
    f.receive(2 * S, r, &mut tx, &mut NoRecorder);
    assert!(checksums_valid(&tx.sent[0]));
    assert_eq!(f.stats().checksums_completed, 1);

    let mut u = frame(
        ip("10.9.0.2"),
        ip("10.9.0.1"),
        protocol::UDP,
        64,
        &[1; 30],
        true,
    );
    u[0..6].copy_from_slice(&ME);
    u[6..12].copy_from_slice(&A_MAC);
    f.receive(2 * S, rx(&mut u), &mut tx, &mut NoRecorder);
    assert_eq!(read16(&tx.sent[1][34..], 6..8), Some(0));
}

#[test]
fn capture_modes_record_what_they_promise() {
    for mode in CaptureMode::ALL {
        let (mut f, mut tx) = resolved(&["10.9.0.2=10.9.0.3"], mode);
        let mut rec = VecRec {
            on: true,
            ..VecRec::default()
        };
        let mut p = ip_frame((A_MAC, "10.9.0.2"), "10.9.0.1", protocol::TCP, 64, &[9; 60]);
        let ingress = p.clone();
        f.receive(7 * S, rx(&mut p), &mut tx, &mut rec);
        let egress = tx.sent[0].clone();
        let got: Vec<Vec<u8>> = rec.got.iter().map(|(_, b)| b.clone()).collect();
        match mode {
            CaptureMode::Ingress => assert_eq!(got, std::slice::from_ref(&ingress)),
            CaptureMode::Egress => assert_eq!(got, std::slice::from_ref(&egress)),
            CaptureMode::Both => assert_eq!(got, [ingress.clone(), egress.clone()]),
            CaptureMode::Inline => {
                assert_eq!(got.len(), 1);
                let r = &got[0];
                let v = Ipv4::new_checked(&r[14..]).unwrap();
                assert_eq!(
                    (v.src(), v.dst(), v.ttl()),
                    (ip("10.9.0.2"), ip("10.9.0.3"), 64)
                );
                assert_eq!(&r[0..12], &[B_MAC, A_MAC].concat()[..]);
                assert!(checksums_valid(r));
                assert_eq!(&r[54..], &ingress[54..], "payload untouched");
            }
        }
        // Ingress keeps the receive time; egress is not earlier.
        assert_eq!(
            rec.got[0].0,
            if mode == CaptureMode::Egress {
                7 * S
            } else {
                5 * S
            }
        );
        // Nothing is recorded while no capture runs.
        let mut off = VecRec::default();
        let mut p = ip_frame((A_MAC, "10.9.0.2"), "10.9.0.1", protocol::TCP, 64, &[9; 60]);
        f.receive(7 * S, rx(&mut p), &mut tx, &mut off);
        assert!(off.got.is_empty());
    }
}

#[test]
fn capture_mode_names_round_trip() {
    for m in CaptureMode::ALL {
        assert_eq!(m.as_str().parse::<CaptureMode>(), Ok(m));
    }
    assert!(
        "sideways"
            .parse::<CaptureMode>()
            .unwrap_err()
            .contains("ingress, egress")
    );
}

#[test]
fn tcp_super_packets_leave_as_segments() {
    for mode in [CaptureMode::Inline, CaptureMode::Both] {
        let (mut f, mut tx) = resolved(&["10.9.0.2=10.9.0.3"], mode);
        let mut rec = VecRec {
            on: true,
            ..VecRec::default()
        };
        let mut tcp = vec![0u8; 20];
        tcp[12] = 5 << 4;
        tcp[13] = 0x10;
        tcp.extend(std::iter::repeat_n(7u8, 3000));
        let mut p = ip_frame((A_MAC, "10.9.0.2"), "10.9.0.1", protocol::TCP, 64, &tcp);
        f.receive(5 * S, rx(&mut p), &mut tx, &mut rec);
        assert_eq!(tx.sent.len(), 3);
        for s in &tx.sent {
            assert!(s.len() <= 1514);
            assert!(checksums_valid(s));
            assert_eq!(Ipv4::new_checked(&s[14..]).unwrap().dst(), ip("10.9.0.3"));
        }
        assert_eq!(f.stats().super_packets_segmented, 1);
        assert_eq!(f.stats().a_to_b_packets, 3);
        let per = if mode == CaptureMode::Both { 2 } else { 1 };
        assert_eq!(rec.got.len(), 3 * per);
        assert!(rec.got.iter().all(|(_, r)| checksums_valid(r)));
    }
}

#[test]
fn super_packets_pass_whole_when_the_kernel_segments_and_are_recorded_as_segments() {
    for mode in CaptureMode::ALL {
        let (mut f, mut tx) = resolved(&["10.9.0.2=10.9.0.3"], mode);
        tx.gso_ok = true;
        let mut rec = VecRec {
            on: true,
            ..VecRec::default()
        };
        let mut tcp = vec![0u8; 20];
        tcp[12] = 5 << 4;
        tcp[13] = 0x18;
        tcp.extend(std::iter::repeat_n(5u8, 4000));
        let mut p = ip_frame((A_MAC, "10.9.0.2"), "10.9.0.1", protocol::TCP, 64, &tcp);
        // As checksum offload hands it over: the partial pseudo-header sum.
        let partial = checksum::fold(checksum::pseudo_header(
            ip("10.9.0.2"),
            ip("10.9.0.1"),
            protocol::TCP,
            tcp.len() as u16,
        ));
        p[34 + 16..34 + 18].copy_from_slice(&partial.to_be_bytes());
        let gso = Gso {
            vnet_hdr: [1, 1, 54, 0, 0xa8, 5, 34, 0, 16, 0],
            gso_size: 1448,
        };
        let wire_len = p.len();
        let r = Received {
            ts_ns: 5 * S,
            data: &mut p,
            wire_len,
            checksum_partial: true,
            stripped_tag: None,
            gso: Some(gso),
        };
        f.receive(6 * S, r, &mut tx, &mut rec);
        assert!(tx.sent.is_empty(), "{mode}: not cut by the forwarder");
        assert_eq!(tx.gso.len(), 1);
        let (g, mut out) = tx.gso.pop().unwrap();
        assert_eq!(g, gso);
        let v = Ipv4::new_checked(&out[14..]).unwrap();
        assert_eq!(
            (v.src(), v.dst(), v.ttl()),
            (ip("10.9.0.1"), ip("10.9.0.3"), 63)
        );
        // The partial sum now matches the new addresses: completing it gives a valid packet.
        rewrite::complete_l4_checksum(&mut out);
        assert!(checksums_valid(&out));
        assert_eq!(f.stats().a_to_b_packets, 3, "three segments on the wire");
        assert_eq!(f.stats().super_packets_passed, 1);
        let per = if mode == CaptureMode::Both { 2 } else { 1 };
        assert_eq!(rec.got.len(), 3 * per, "{mode}");
        for (_, r) in &rec.got {
            assert!(r.len() <= 1514);
            assert!(checksums_valid(r), "{mode}");
        }
        let dst = |b: &[u8]| Ipv4::new_checked(&b[14..]).unwrap().dst();
        let want = match mode {
            CaptureMode::Ingress | CaptureMode::Both => ip("10.9.0.1"),
            _ => ip("10.9.0.3"),
        };
        assert_eq!(dst(&rec.got[0].1), want);
    }
}

// ---- IPv6, neighbour discovery, ICMP errors, fragments ----

const ME6: &str = "2001:db8::1";
const A6: &str = "2001:db8::2";
const B6: &str = "2001:db8::3";

fn ip6(s: &str) -> std::net::Ipv6Addr {
    s.parse().unwrap()
}

fn forwarder6(mode: CaptureMode) -> Forwarder {
    let inline: Inline = "2001:db8::1/64".parse().unwrap();
    let config = ForwarderConfig {
        inline,
        mac: ME,
        mtu: 1500,
        neighbours: NeighbourConfig::default(),
    };
    let t = ForwardTable::parse(inline, &[format!("{A6}={B6}")]).unwrap();
    Forwarder::new(config, t, mode)
}

/// An Ethernet/IPv6 frame from `src` (mac, ip) to `dst`, with `ext` extension headers
/// (first next-header `first`) and an L4 payload whose checksum is computed in full.
fn frame6(src: (Mac, &str), dst: &str, first: u8, ext: &[u8], proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 40];
    f[0..6].copy_from_slice(&ME);
    f[6..12].copy_from_slice(&src.0);
    f[12..14].copy_from_slice(&ethertype::IPV6.to_be_bytes());
    f[14] = 0x60;
    f[18..20].copy_from_slice(&((ext.len() + l4.len()) as u16).to_be_bytes());
    f[20] = first;
    f[21] = 64;
    f[22..38].copy_from_slice(&ip6(src.1).octets());
    f[38..54].copy_from_slice(&ip6(dst).octets());
    f.extend_from_slice(ext);
    let at = f.len();
    f.extend_from_slice(l4);
    let fld = match proto {
        protocol::TCP => 16..18,
        protocol::UDP => 6..8,
        _ => 2..4,
    };
    if l4.len() >= fld.end {
        f[at + fld.start..at + fld.end].fill(0);
        let acc = checksum::pseudo_header_v6(ip6(src.1), ip6(dst), proto, l4.len() as u32);
        let c = !checksum::fold(checksum::sum(acc, &f[at..]));
        f[at + fld.start..at + fld.end].copy_from_slice(&c.to_be_bytes());
    }
    f
}

fn ndp_frame(kind: NdpKind, from: (Mac, &str), dst: std::net::Ipv6Addr, target: &str) -> Vec<u8> {
    let mut b = vec![0u8; NDP_FRAME_LEN];
    let eth_dst = if dst.is_multicast() {
        wire::multicast_mac(dst)
    } else {
        ME
    };
    wire::emit_ndp(
        &mut b,
        &NdpMessage {
            kind,
            eth_src: from.0,
            eth_dst,
            src: ip6(from.1),
            dst,
            target: ip6(target),
            flags: ndp::FLAG_SOLICITED | ndp::FLAG_OVERRIDE,
        },
    );
    b
}

fn resolved6(mode: CaptureMode) -> (Forwarder, VecTx) {
    let mut f = forwarder6(mode);
    let mut tx = VecTx::default();
    f.poll(S, &mut tx);
    assert_eq!(tx.sent.len(), 2, "one solicitation per peer");
    for s in &tx.sent {
        let v = Ipv6::new_checked(&s[14..]).unwrap();
        let nd = Ndp::new_checked(v.upper_payload()).unwrap();
        assert_eq!(nd.kind(), NdpKind::Solicit);
        assert_eq!(v.dst(), wire::solicited_node(nd.target()));
        assert_eq!(&s[0..6], &wire::multicast_mac(v.dst()));
        assert_eq!(v.src(), ip6(ME6));
        assert_eq!(nd.lladdr(ndp::OPT_SOURCE_LLADDR), Some(ME));
    }
    for (mac, peer) in [(A_MAC, A6), (B_MAC, B6)] {
        let mut na = ndp_frame(NdpKind::Advert, (mac, peer), ip6(ME6), peer);
        f.receive(S, rx(&mut na), &mut tx, &mut NoRecorder);
    }
    assert_eq!(f.stats().arp_resolved, 2);
    tx.sent.clear();
    (f, tx)
}

#[test]
fn answers_neighbour_solicitations_for_the_capture_address_only() {
    let mut f = forwarder6(CaptureMode::Inline);
    let mut tx = VecTx::default();
    let group = wire::solicited_node(ip6(ME6));
    let mut ns = ndp_frame(NdpKind::Solicit, (A_MAC, A6), group, ME6);
    f.receive(S, rx(&mut ns), &mut tx, &mut NoRecorder);
    assert_eq!(tx.sent.len(), 1);
    let na = &tx.sent[0];
    assert_eq!(&na[0..6], &A_MAC);
    let v = Ipv6::new_checked(&na[14..]).unwrap();
    assert_eq!((v.src(), v.dst(), v.hop_limit()), (ip6(ME6), ip6(A6), 255));
    let msg = v.upper_payload();
    let acc = checksum::pseudo_header_v6(v.src(), v.dst(), protocol::ICMPV6, msg.len() as u32);
    assert!(checksum::verifies(acc, msg));
    let nd = Ndp::new_checked(msg).unwrap();
    assert_eq!((nd.kind(), nd.target()), (NdpKind::Advert, ip6(ME6)));
    assert_eq!(nd.lladdr(ndp::OPT_TARGET_LLADDR), Some(ME));
    assert_eq!(msg[4] & ndp::FLAG_SOLICITED, ndp::FLAG_SOLICITED);
    assert_eq!(f.stats().arp_answered, 1);
    // A's solicitation taught us A's MAC.
    assert_eq!(f.neighbour(ip6(A6).into(), S), Some(A_MAC));
    // Not for us: no answer. A forwarded one (hop limit below 255) or a bad checksum: refused.
    let mut other = ndp_frame(NdpKind::Solicit, (A_MAC, A6), group, "2001:db8::99");
    f.receive(S, rx(&mut other), &mut tx, &mut NoRecorder);
    let mut hop = ndp_frame(NdpKind::Solicit, (A_MAC, A6), group, ME6);
    hop[21] = 254;
    f.receive(S, rx(&mut hop), &mut tx, &mut NoRecorder);
    let mut bad = ndp_frame(NdpKind::Solicit, (A_MAC, A6), group, ME6);
    bad[60] ^= 1;
    f.receive(S, rx(&mut bad), &mut tx, &mut NoRecorder);
    assert_eq!(tx.sent.len(), 1);
    assert_eq!(f.stats().dropped(DropReason::BadHeader), 2);
}

#[test]
fn ipv6_is_forwarded_both_ways_with_checksums_updated() {
    let (mut f, mut tx) = resolved6(CaptureMode::Inline);
    let mut rec = VecRec {
        on: true,
        ..VecRec::default()
    };
    // UDP from A, through a hop-by-hop and a destination-options header.
    let ext = [
        protocol::DEST_OPTS,
        0,
        1,
        4,
        0,
        0,
        0,
        0, // hop-by-hop: PadN
        protocol::UDP,
        0,
        1,
        4,
        0,
        0,
        0,
        0, // destination options: PadN
    ];
    let mut udp = vec![0x30, 0x39, 0x00, 0x35, 0, 28, 0, 0];
    udp.extend_from_slice(&[0x42; 20]);
    let mut p = frame6(
        (A_MAC, A6),
        ME6,
        protocol::HOP_BY_HOP,
        &ext,
        protocol::UDP,
        &udp,
    );
    assert!(checksums_valid(&p));
    f.receive(2 * S, rx(&mut p), &mut tx, &mut rec);
    assert_eq!(tx.sent.len(), 1);
    let out = &tx.sent[0];
    assert_eq!((&out[0..6], &out[6..12]), (&B_MAC[..], &ME[..]));
    let v = Ipv6::new_checked(&out[14..]).unwrap();
    assert_eq!((v.src(), v.dst(), v.hop_limit()), (ip6(ME6), ip6(B6), 63));
    assert!(checksums_valid(out));
    // The inline record: A -> B, valid checksums, hop limit untouched.
    let (_, r) = &rec.got[0];
    let v = Ipv6::new_checked(&r[14..]).unwrap();
    assert_eq!((v.src(), v.dst(), v.hop_limit()), (ip6(A6), ip6(B6), 64));
    assert!(checksums_valid(r));
    // An echo reply from B goes to A (ICMPv6's checksum covers the addresses).
    let mut echo = vec![icmpv6::ECHO_REPLY, 0, 0, 0, 0, 7, 0, 1];
    echo.extend_from_slice(&[0x61; 40]);
    let mut p = frame6(
        (B_MAC, B6),
        ME6,
        protocol::ICMPV6,
        &[],
        protocol::ICMPV6,
        &echo,
    );
    f.receive(2 * S, rx(&mut p), &mut tx, &mut rec);
    let out = &tx.sent[1];
    let v = Ipv6::new_checked(&out[14..]).unwrap();
    assert_eq!((v.src(), v.dst()), (ip6(ME6), ip6(A6)));
    assert!(checksums_valid(out));
    assert_eq!((f.stats().a_to_b_packets, f.stats().b_to_a_packets), (1, 1));
    // Hop limit 1 may make no further hop; IPv4 on an IPv6 forwarder is not for us.
    let mut p = frame6((A_MAC, A6), ME6, protocol::UDP, &[], protocol::UDP, &udp);
    p[21] = 1;
    f.receive(2 * S, rx(&mut p), &mut tx, &mut rec);
    assert_eq!(f.stats().dropped(DropReason::TtlExpired), 1);
    let mut v4 = ip_frame((A_MAC, "10.9.0.2"), "10.9.0.1", protocol::UDP, 64, &[0; 20]);
    f.receive(2 * S, rx(&mut v4), &mut tx, &mut rec);
    assert_eq!(f.stats().dropped(DropReason::NotForUs), 1);
}

#[test]
fn ipv6_waits_for_neighbour_discovery_then_goes() {
    let mut f = forwarder6(CaptureMode::Inline);
    let mut tx = VecTx::default();
    let udp = [0x30, 0x39, 0x00, 0x35, 0, 12, 0, 0, 1, 2, 3, 4];
    let mut p = frame6((A_MAC, A6), ME6, protocol::UDP, &[], protocol::UDP, &udp);
    f.receive(S, rx(&mut p), &mut tx, &mut NoRecorder);
    assert_eq!(f.arp_pending(), 1);
    f.poll(S, &mut tx);
    // Solicitations for both peers; B's advertisement releases the packet.
    assert!(
        tx.sent
            .iter()
            .all(|s| s[12..14] == ethertype::IPV6.to_be_bytes())
    );
    tx.sent.clear();
    let mut na = ndp_frame(NdpKind::Advert, (B_MAC, B6), ip6(ME6), B6);
    f.receive(S + 1000, rx(&mut na), &mut tx, &mut NoRecorder);
    assert_eq!(f.arp_pending(), 0);
    assert_eq!(tx.sent.len(), 1);
    assert!(checksums_valid(&tx.sent[0]));
    // Refresh after 30 s: a unicast solicitation to the MAC we have.
    tx.sent.clear();
    f.poll(32 * S, &mut tx);
    let to_b: Vec<_> = tx.sent.iter().filter(|s| s[0..6] == B_MAC).collect();
    assert_eq!(to_b.len(), 1);
    let v = Ipv6::new_checked(&to_b[0][14..]).unwrap();
    assert_eq!(v.dst(), ip6(B6));
}

/// An ICMPv4 "fragmentation needed" from `router` quoting `quoted` (an IP packet).
fn frag_needed(router: (Mac, &str), quoted: &[u8], mtu: u16) -> Vec<u8> {
    let mut icmp = vec![icmpv4::DST_UNREACHABLE, 4, 0, 0, 0, 0];
    icmp.extend_from_slice(&mtu.to_be_bytes());
    icmp.extend_from_slice(quoted);
    ip_frame(router, "10.9.0.1", protocol::ICMP, 64, &icmp)
}

#[test]
fn icmp_errors_go_to_the_sender_with_the_quote_rewritten() {
    for mode in [CaptureMode::Egress, CaptureMode::Inline] {
        let (mut f, mut tx) = resolved(&["10.9.0.2=10.9.0.3"], mode);
        let mut rec = VecRec {
            on: true,
            ..VecRec::default()
        };
        // What A sent, and what the forwarder made of it (towards B).
        let data: Vec<u8> = (0..1400u32).map(|i| i as u8).collect();
        let mut tcp = vec![0u8; 20];
        tcp[0..4].copy_from_slice(&[0x9c, 0x40, 0x00, 0x50]);
        tcp[12] = 5 << 4;
        tcp.extend_from_slice(&data);
        let sent_by_a = ip_frame((A_MAC, "10.9.0.2"), "10.9.0.1", protocol::TCP, 64, &tcp);
        let mut p = sent_by_a.clone();
        f.receive(2 * S, rx(&mut p), &mut tx, &mut NoRecorder);
        let to_b = tx.sent.remove(0);
        // A router on B's side (not a peer) quotes the first 548 bytes of it.
        let mut err = frag_needed(
            ([2, 0, 0, 0, 0, 0x77], "10.9.0.254"),
            &to_b[14..14 + 548],
            1280,
        );
        f.receive(3 * S, rx(&mut err), &mut tx, &mut rec);
        assert_eq!(tx.sent.len(), 1, "{mode}");
        let out = &tx.sent[0];
        assert_eq!(&out[0..6], &A_MAC);
        assert!(checksums_valid(out), "{mode}");
        let v = Ipv4::new_checked(&out[14..]).unwrap();
        assert_eq!((v.src(), v.dst()), (ip("10.9.0.1"), ip("10.9.0.2")));
        let icmp = v.payload();
        assert_eq!(
            (icmp[0], icmp[1], &icmp[6..8]),
            (3, 4, &1280u16.to_be_bytes()[..])
        );
        // The quote is what A sent, except the TTL the forwarder took: the header
        // checksum verifies and the TCP checksum is the one A computed.
        let q = Ipv4::new_checked(&icmp[8..]).map(|q| (q.src(), q.dst()));
        assert_eq!(q, Err(wire::Ipv4Error::Malformed), "the quote is cut short");
        let quote = &icmp[8..];
        assert!(checksum::verifies(0, &quote[..20]));
        assert_eq!(&quote[12..16], &ip("10.9.0.2").octets());
        assert_eq!(&quote[16..20], &ip("10.9.0.1").octets());
        assert_eq!(&quote[20..548], &sent_by_a[34..14 + 548], "{mode}");
        assert_eq!(f.stats().b_to_a_packets, 1);
        if mode == CaptureMode::Inline {
            // Recorded as if there were no appliance: from the router to A, quoting A -> B.
            let r = &rec.got[0].1;
            assert!(checksums_valid(r));
            let v = Ipv4::new_checked(&r[14..]).unwrap();
            assert_eq!((v.src(), v.dst()), (ip("10.9.0.254"), ip("10.9.0.2")));
            assert_eq!(&v.payload()[8 + 16..8 + 20], &ip("10.9.0.3").octets());
            assert!(checksum::verifies(0, &v.payload()[8..28]));
        }
        // An error quoting something the forwarder never sent is nobody's.
        let mut stray = frag_needed(
            ([2, 0, 0, 0, 0, 0x77], "10.9.0.254"),
            &sent_by_a[14..80],
            1280,
        );
        f.receive(3 * S, rx(&mut stray), &mut tx, &mut rec);
        assert_eq!(f.stats().dropped(DropReason::UnknownPeer), 1);
    }
}

#[test]
fn packet_too_big_reaches_the_ipv6_sender_with_its_own_packet_quoted() {
    let (mut f, mut tx) = resolved6(CaptureMode::Inline);
    let udp: Vec<u8> = [0x30, 0x39, 0x00, 0x35, 0x05, 0x08, 0, 0]
        .into_iter()
        .chain((0..1280u32).map(|i| i as u8))
        .collect();
    let sent_by_a = frame6((A_MAC, A6), ME6, protocol::UDP, &[], protocol::UDP, &udp);
    let mut p = sent_by_a.clone();
    f.receive(2 * S, rx(&mut p), &mut tx, &mut NoRecorder);
    let to_b = tx.sent.remove(0);
    let mut ptb = vec![icmpv6::PACKET_TOO_BIG, 0, 0, 0, 0, 0, 0x05, 0x00];
    ptb.extend_from_slice(&to_b[14..14 + 1232 - 48]);
    let mut err = frame6(
        ([2, 0, 0, 0, 0, 0x77], "2001:db8::fe"),
        ME6,
        protocol::ICMPV6,
        &[],
        protocol::ICMPV6,
        &ptb,
    );
    f.receive(3 * S, rx(&mut err), &mut tx, &mut NoRecorder);
    assert_eq!(tx.sent.len(), 1);
    let out = &tx.sent[0];
    assert!(checksums_valid(out));
    let v = Ipv6::new_checked(&out[14..]).unwrap();
    assert_eq!((v.src(), v.dst()), (ip6(ME6), ip6(A6)));
    let quote = &v.upper_payload()[8..];
    let q = Ipv6::new_quoted(quote).unwrap();
    assert_eq!((q.src(), q.dst()), (ip6(A6), ip6(ME6)));
    // All but the hop limit is what A sent, UDP checksum included.
    assert_eq!(&quote[8..], &sent_by_a[22..14 + quote.len()]);
}

#[test]
fn fragments_are_forwarded_each_with_its_addresses_rewritten() {
    let (mut f, mut tx) = resolved(&["10.9.0.2=10.9.0.3"], CaptureMode::Inline);
    // A 2000-byte UDP datagram as two IPv4 fragments, its checksum over the whole.
    let mut udp = vec![0x30, 0x39, 0x00, 0x35, 0x07, 0xd0, 0, 0];
    udp.extend((0..1992u32).map(|i| (i * 7) as u8));
    let whole = frame(
        ip("10.9.0.2"),
        ip("10.9.0.1"),
        protocol::UDP,
        64,
        &udp,
        false,
    );
    let l4 = &whole[34..];
    let mut frags = Vec::new();
    for (off, chunk, more) in [(0usize, &l4[..1480], true), (1480, &l4[1480..], false)] {
        let mut fr = whole[..34].to_vec();
        fr[0..6].copy_from_slice(&ME);
        fr[6..12].copy_from_slice(&A_MAC);
        fr.extend_from_slice(chunk);
        let ip = &mut fr[14..];
        ip[2..4].copy_from_slice(&((20 + chunk.len()) as u16).to_be_bytes());
        let ff = (off / 8) as u16 | if more { 0x2000 } else { 0 };
        ip[6..8].copy_from_slice(&ff.to_be_bytes());
        ip[10..12].fill(0);
        let c = checksum::checksum(&ip[..20]);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        frags.push(fr);
    }
    for fr in &mut frags {
        f.receive(2 * S, rx(fr), &mut tx, &mut NoRecorder);
    }
    assert_eq!(tx.sent.len(), 2);
    let mut joined = Vec::new();
    for s in &tx.sent {
        let v = Ipv4::new_checked(&s[14..]).unwrap();
        assert_eq!(
            (v.src(), v.dst(), v.ttl()),
            (ip("10.9.0.1"), ip("10.9.0.3"), 63)
        );
        joined.extend_from_slice(v.payload());
    }
    // Reassembled, the datagram's checksum verifies against the new addresses.
    let acc = checksum::pseudo_header(ip("10.9.0.1"), ip("10.9.0.3"), 17, joined.len() as u16);
    assert!(checksum::verifies(acc, &joined));
    assert_eq!(&joined[8..], &udp[8..]);
}

proptest::proptest! {
    /// Any IPv6 rewrite of TCP/UDP/ICMPv6 verifies, as a full recomputation says.
    #[test]
    fn ipv6_incremental_equals_full(
        proto in proptest::sample::select(vec![protocol::TCP, protocol::UDP, protocol::ICMPV6]),
        l4 in proptest::collection::vec(proptest::prelude::any::<u8>(), 20..300),
        src in proptest::prelude::any::<[u8; 16]>(),
        nsrc in proptest::prelude::any::<[u8; 16]>(),
        ndst in proptest::prelude::any::<[u8; 16]>(),
    ) {
        let s = std::net::Ipv6Addr::from(src).to_string();
        let mut f = frame6((A_MAC, &s), ME6, proto, &[], proto, &l4);
        let r = Rewrite {
            eth_src: [1; 6], eth_dst: [3; 6],
            ip_src: std::net::Ipv6Addr::from(nsrc).into(),
            ip_dst: std::net::Ipv6Addr::from(ndst).into(),
            decrement_ttl: true, l4_partial: false, quoted: None,
        };
        rewrite::apply(&mut f, &r);
        proptest::prop_assert!(checksums_valid(&f));
    }
}

/// `f` with `tags` after its MAC addresses.
fn tag(f: &[u8], tags: &[u8]) -> Vec<u8> {
    [&f[..12], tags, &f[12..]].concat()
}

#[test]
fn a_tagged_pair_resolves_and_forwards_on_its_vlans_mapping_the_outer_tag() {
    let mut f = forwarder(&["10.9.0.2=10.9.0.3@vlan100:200"], CaptureMode::Both);
    let mut tx = VecTx::default();
    f.poll(S, &mut tx);
    // ARP requests go out on each peer's VLAN.
    let vids: Vec<_> = tx
        .sent
        .iter()
        .map(|s| (s[12..14].to_vec(), s[15], s[16..18].to_vec()))
        .collect();
    assert!(vids.contains(&(vec![0x81, 0], 100, vec![8, 6])), "{vids:?}");
    assert!(vids.contains(&(vec![0x81, 0], 200, vec![8, 6])), "{vids:?}");
    tx.sent.clear();
    // A's reply arrives with its tag stripped by the kernel, B's with the tag in band.
    let mut ra = arp_frame(ArpOp::Reply, (A_MAC, "10.9.0.2"), (ME, "10.9.0.1"), ME);
    let wire_len = ra.len();
    f.receive(
        S,
        Received {
            ts_ns: S,
            data: &mut ra,
            wire_len,
            checksum_partial: false,
            stripped_tag: Some([0x81, 0, 0, 100]),
            gso: None,
        },
        &mut tx,
        &mut NoRecorder,
    );
    // B answering on the wrong VLAN is not believed.
    let mut wrong = tag(
        &arp_frame(ArpOp::Reply, (B_MAC, "10.9.0.3"), (ME, "10.9.0.1"), ME),
        &[0x81, 0, 0, 100],
    );
    f.receive(S, rx(&mut wrong), &mut tx, &mut NoRecorder);
    assert_eq!(f.neighbour(ip("10.9.0.3").into(), S), None);
    let mut rb = tag(
        &arp_frame(ArpOp::Reply, (B_MAC, "10.9.0.3"), (ME, "10.9.0.1"), ME),
        &[0x81, 0, 0, 200],
    );
    f.receive(S, rx(&mut rb), &mut tx, &mut NoRecorder);
    assert_eq!(f.stats().arp_resolved, 2);
    // QinQ from A: outer 802.1ad VID 100 priority 3, inner 802.1Q VID 7.
    let tags_in = [0x88, 0xa8, 0x60, 100, 0x81, 0x00, 0, 7];
    let plain = ip_frame((A_MAC, "10.9.0.2"), "10.9.0.1", protocol::UDP, 64, &[9; 30]);
    let mut p = tag(&plain, &tags_in);
    let mut rec = VecRec {
        on: true,
        ..VecRec::default()
    };
    f.receive(2 * S, rx(&mut p), &mut tx, &mut rec);
    assert_eq!(tx.sent.len(), 1);
    let out = &tx.sent[0];
    // To B on VID 200, priority and inner tag kept.
    assert_eq!(&out[12..20], &[0x88, 0xa8, 0x60, 200, 0x81, 0x00, 0, 7]);
    assert_eq!(&out[0..6], &B_MAC);
    let untagged = [&out[..12], &out[20..]].concat();
    assert!(checksums_valid(&untagged));
    let v = Ipv4::new_checked(&untagged[14..]).unwrap();
    assert_eq!((v.src(), v.dst()), (ip("10.9.0.1"), ip("10.9.0.3")));
    // Recorded as the wire carries them: ingress with A's tags, egress with B's.
    assert_eq!(rec.got.len(), 2);
    assert_eq!(rec.got[0].1, tag(&plain, &tags_in));
    assert_eq!(&rec.got[1].1, out);
    // Untagged, or on another VLAN, from a tagged pair's peer: dropped.
    for mut bad in [plain.clone(), tag(&plain, &[0x81, 0, 0, 200])] {
        f.receive(2 * S, rx(&mut bad), &mut tx, &mut NoRecorder);
    }
    assert_eq!(f.stats().dropped(DropReason::WrongVlan), 2);
    assert_eq!(tx.sent.len(), 1);
}

#[test]
fn an_untagged_pair_drops_tagged_frames() {
    let (mut f, mut tx) = resolved(&["10.9.0.2=10.9.0.3"], CaptureMode::Inline);
    let plain = ip_frame((A_MAC, "10.9.0.2"), "10.9.0.1", protocol::UDP, 64, &[9; 30]);
    let mut p = tag(&plain, &[0x81, 0, 0, 5]);
    f.receive(2 * S, rx(&mut p), &mut tx, &mut NoRecorder);
    assert_eq!(f.stats().dropped(DropReason::WrongVlan), 1);
    // Three tags are more than a frame may carry here.
    let mut p = tag(&plain, &[0x81, 0, 0, 5, 0x81, 0, 0, 6, 0x81, 0, 0, 7]);
    f.receive(2 * S, rx(&mut p), &mut tx, &mut NoRecorder);
    assert_eq!(f.stats().dropped(DropReason::BadHeader), 1);
}

#[test]
fn an_ipv6_tcp_super_packet_is_cut_into_valid_segments() {
    let (mut f, mut tx) = resolved6(CaptureMode::Inline);
    let mut tcp = vec![0u8; 20];
    tcp[0..4].copy_from_slice(&[0x9c, 0x40, 0x00, 0x50]);
    tcp[4..8].copy_from_slice(&5000u32.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x18;
    let data: Vec<u8> = (0..4000u32).map(|i| (i * 3) as u8).collect();
    tcp.extend_from_slice(&data);
    let ext = [protocol::TCP, 0, 1, 4, 0, 0, 0, 0];
    let mut p = frame6(
        (A_MAC, A6),
        ME6,
        protocol::DEST_OPTS,
        &ext,
        protocol::TCP,
        &tcp,
    );
    f.receive(2 * S, rx(&mut p), &mut tx, &mut NoRecorder);
    // 1500 - 40 - 8 - 20 = 1432 bytes a segment: three segments.
    assert_eq!(tx.sent.len(), 3);
    assert_eq!(f.stats().super_packets_segmented, 1);
    let mut joined = Vec::new();
    for (k, s) in tx.sent.iter().enumerate() {
        assert!(checksums_valid(s), "segment {k}");
        let v = Ipv6::new_checked(&s[14..]).unwrap();
        assert!(v.total_len() <= 1500);
        assert_eq!(
            (v.src(), v.dst(), v.upper().offset),
            (ip6(ME6), ip6(B6), 48)
        );
        let t = v.upper_payload();
        assert_eq!(
            u32::from_be_bytes(t[4..8].try_into().unwrap()),
            5000 + (k * 1432) as u32
        );
        joined.extend_from_slice(&t[20..]);
    }
    assert_eq!(joined, data);
}

/// This hop answers as a router does (traceroute, path-MTU discovery): TTL 1 gets a time
/// exceeded from the capture address quoting the packet; oversize UDP with DF gets
/// fragmentation needed with the MTU; never an error about an ICMP error; and no more
/// than the rate limit allows, however many expire.
#[test]
fn expiring_and_oversize_packets_get_icmp_errors_within_a_rate_limit() {
    let (mut f, mut tx) = resolved(&["10.9.0.2=10.9.0.3"], CaptureMode::Inline);
    let a = (A_MAC, "10.9.0.2");
    // The first error at a real clock's time (ns since the epoch: the rate limiter's
    // arithmetic must not overflow on it, as it once did).
    let mut p = ip_frame(a, "10.9.0.1", protocol::UDP, 1, &[7; 30]);
    f.receive(1_800_000_000 * S, rx(&mut p), &mut tx, &mut NoRecorder);
    assert_eq!(tx.sent.len(), 1);
    let (mut f, mut tx) = resolved(&["10.9.0.2=10.9.0.3"], CaptureMode::Inline);
    let mut p = ip_frame(a, "10.9.0.1", protocol::UDP, 1, &[7; 30]);
    let sent = p.clone();
    f.receive(2 * S, rx(&mut p), &mut tx, &mut NoRecorder);
    assert_eq!(tx.sent.len(), 1);
    let e = &tx.sent[0];
    assert_eq!((&e[0..6], &e[6..12]), (&A_MAC[..], &ME[..]));
    let v = Ipv4::new_checked(&e[14..]).unwrap();
    assert_eq!((v.src(), v.dst()), (ip("10.9.0.1"), ip("10.9.0.2")));
    assert_eq!(v.protocol(), protocol::ICMP);
    let msg = v.payload();
    assert_eq!((msg[0], msg[1]), (icmpv4::TIME_EXCEEDED, 0));
    assert_eq!(checksum::checksum(msg), 0);
    assert_eq!(&msg[8..], &sent[14..], "the whole (short) packet is quoted");
    assert_eq!(f.stats().dropped(DropReason::TtlExpired), 1);
    // An echo request (what `ping -t 1` sends) too.
    let mut p = ip_frame(a, "10.9.0.1", protocol::ICMP, 1, &echo_request());
    f.receive(2 * S, rx(&mut p), &mut tx, &mut NoRecorder);
    assert_eq!(tx.sent.len(), 2);
    tx.sent.pop();

    // Oversize UDP with DF: fragmentation needed, next-hop MTU 1500.
    let mut big = ip_frame(a, "10.9.0.1", protocol::UDP, 64, &[1; 1600]);
    assert_eq!(big[14 + 6] & 0x40, 0x40, "DF");
    f.receive(2 * S, rx(&mut big), &mut tx, &mut NoRecorder);
    assert_eq!(tx.sent.len(), 2);
    let v = Ipv4::new_checked(&tx.sent[1][14..]).unwrap();
    let msg = v.payload();
    assert_eq!((msg[0], msg[1]), (icmpv4::DST_UNREACHABLE, 4));
    assert_eq!(read16(msg, 6..8), Some(1500));
    assert_eq!(v.total_len(), 576, "quoted up to 576 bytes");
    // Without DF: dropped as oversize, no error.
    let mut big = ip_frame(a, "10.9.0.1", protocol::UDP, 64, &[1; 1600]);
    big[14 + 6] &= !0x40;
    big[14 + 10..14 + 12].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(&big[14..34]);
    big[14 + 10..14 + 12].copy_from_slice(&c.to_be_bytes());
    f.receive(2 * S, rx(&mut big), &mut tx, &mut NoRecorder);
    assert_eq!(tx.sent.len(), 2);
    assert_eq!(f.stats().dropped(DropReason::Oversize), 2);

    // An ICMP error that expires here gets no error back.
    let mut quote = vec![11, 0, 0, 0, 0, 0, 0, 0];
    quote.extend_from_slice(
        &frame(
            ip("10.9.0.1"),
            ip("10.9.0.3"),
            protocol::UDP,
            1,
            &[0; 8],
            false,
        )[14..],
    );
    let mut err = ip_frame((B_MAC, "10.9.0.3"), "10.9.0.1", protocol::ICMP, 1, &quote);
    f.receive(2 * S, rx(&mut err), &mut tx, &mut NoRecorder);
    assert_eq!(tx.sent.len(), 2);

    // A flood of expiring packets at one instant: only the burst is answered; a second
    // later the bucket has refilled.
    tx.sent.clear();
    for _ in 0..500 {
        let mut p = ip_frame(a, "10.9.0.1", protocol::UDP, 1, &[7; 30]);
        f.receive(3 * S, rx(&mut p), &mut tx, &mut NoRecorder);
    }
    let burst = tx.sent.len();
    assert!(
        (1..=50).contains(&burst),
        "{burst} errors for 500 expiring packets"
    );
    let mut p = ip_frame(a, "10.9.0.1", protocol::UDP, 1, &[7; 30]);
    f.receive(4 * S, rx(&mut p), &mut tx, &mut NoRecorder);
    assert_eq!(tx.sent.len(), burst + 1);
}
