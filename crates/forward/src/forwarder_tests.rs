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
        vlan_stripped: false,
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
            vlan_stripped: false,
            gso: None,
        };
        f.receive(2 * S, r, &mut tx, &mut NoRecorder);
        assert_eq!(f.stats().dropped(reason), before + 1, "{}", reason.as_str());
    }
    assert!(tx.sent.is_empty());
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
        vlan_stripped: false,
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
            vlan_stripped: false,
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
