use super::build::PacketBuilder;
use super::*;
use proptest::prelude::*;

const A: [u8; 6] = [0x00, 0xba, 0xbe, 0x11, 0x22, 0x33];
const B: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

#[test]
fn tcp_over_qinq() {
    let pkt = PacketBuilder::ethernet(A, B)
        .vlan(0x88a8, 100)
        .vlan(0x8100, 1234)
        .ipv4([10, 0, 0, 1], [192, 168, 1, 9])
        .tcp(1000, 80, 0x12)
        .build();
    let d = dissect(Link::Ethernet, &pkt);
    assert_eq!(d.eth_src, Some(MacAddr(A)));
    assert_eq!(d.vlan_ids.as_slice(), &[100, 1234]);
    assert_eq!(d.ethertypes.as_slice(), &[0x88a8, 0x8100, 0x0800]);
    assert_eq!(d.ip_proto(), Some(6));
    assert_eq!(d.ports(), Some((1000, 80)));
    assert_eq!(
        d.transport,
        Transport::Tcp {
            src: 1000,
            dst: 80,
            flags: Some(0x12)
        }
    );
    assert_eq!(d.network_offset, 22);
    assert!(!d.truncated);
}

#[test]
fn mpls_stack_then_ipv6_with_extension_headers() {
    let pkt = PacketBuilder::ethernet(A, B)
        .mpls(29)
        .mpls(1000)
        .ipv6([0x20; 16], [0xff; 16])
        .ipv6_ext(0, 0)
        .ipv6_ext(60, 0)
        .ipv6_ext(44, 0)
        .udp(53, 4000)
        .build();
    let d = dissect(Link::Ethernet, &pkt);
    assert_eq!(d.mpls_labels.as_slice(), &[29, 1000]);
    let Network::Ipv6(info) = d.network else {
        panic!("no ipv6: {d:?}")
    };
    assert_eq!(info.next_header, 0);
    assert_eq!(info.proto, Some(17));
    assert_eq!(info.fragment, Some((0, false)));
    assert_eq!(d.ports(), Some((53, 4000)));
}

#[test]
fn later_fragments_have_no_transport() {
    let pkt = PacketBuilder::ethernet(A, B)
        .ipv4_full([1, 2, 3, 4], [5, 6, 7, 8], 2, 185, false)
        .udp(1, 2)
        .build();
    let d = dissect(Link::Ethernet, &pkt);
    assert!(matches!(
        d.network,
        Network::Ipv4(Ipv4Info {
            frag_offset: 185,
            ..
        })
    ));
    assert_eq!(d.transport, Transport::None);
    let pkt = PacketBuilder::ethernet(A, B)
        .ipv6([1; 16], [2; 16])
        .ipv6_ext(44, 7)
        .tcp(1, 2, 0)
        .build();
    let d = dissect(Link::Ethernet, &pkt);
    assert_eq!(d.ip_proto(), Some(6));
    assert_eq!(d.transport, Transport::None);
}

#[test]
fn options_are_skipped() {
    let pkt = PacketBuilder::ethernet(A, B)
        .ipv4_full([1, 2, 3, 4], [5, 6, 7, 8], 3, 0, true)
        .tcp(22, 5555, 0x02)
        .build();
    let d = dissect(Link::Ethernet, &pkt);
    assert_eq!(d.transport_offset, 14 + 32);
    assert_eq!(d.ports(), Some((22, 5555)));
}

#[test]
fn truncation_keeps_what_was_read() {
    let pkt = PacketBuilder::ethernet(A, B)
        .vlan(0x8100, 7)
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2])
        .tcp(1, 2, 0)
        .build();
    // cut in the middle of TCP, after the ports
    let d = dissect(Link::Ethernet, &pkt[..14 + 4 + 20 + 6]);
    assert_eq!(
        d.transport,
        Transport::Tcp {
            src: 1,
            dst: 2,
            flags: None
        }
    );
    assert!(d.truncated);
    // cut inside the IP header
    let d = dissect(Link::Ethernet, &pkt[..14 + 4 + 10]);
    assert_eq!(d.network, Network::None);
    assert_eq!(d.vlan_ids.as_slice(), &[7]);
    assert!(d.truncated);
    let d = dissect(Link::Ethernet, &pkt[..5]);
    assert_eq!(
        d,
        Dissected {
            truncated: true,
            ..Dissected::default()
        }
    );
}

#[test]
fn arp_pppoe_and_other_links() {
    let pkt = PacketBuilder::ethernet(A, B)
        .arp(1, [10, 0, 0, 1], [10, 0, 0, 2], false)
        .build();
    let d = dissect(Link::Ethernet, &pkt);
    assert!(matches!(d.network, Network::Arp(ArpInfo { oper: 1, .. })));
    let pkt = PacketBuilder::ethernet(A, B)
        .vlan(0x8100, 1)
        .pppoe()
        .ipv6([1; 16], [2; 16])
        .icmpv6(128, 0)
        .build();
    let d = dissect(Link::Ethernet, &pkt);
    assert_eq!(d.transport, Transport::Icmpv6 { ty: 128, code: 0 });
    assert_eq!(d.ethertypes.as_slice(), &[0x8100, 0x8864, 0x86dd]);
    let raw = PacketBuilder::raw()
        .ipv4([1, 1, 1, 1], [2, 2, 2, 2])
        .igmp(0x11)
        .build();
    assert_eq!(
        dissect(Link::Raw, &raw).transport,
        Transport::Igmp { ty: 0x11 }
    );
    assert_eq!(dissect(Link::Ipv4, &raw).ip_proto(), Some(2));
    let mut sll = vec![0u8; 16];
    sll[14..16].copy_from_slice(&[0x08, 0x00]);
    sll.extend_from_slice(&raw);
    assert_eq!(dissect(Link::LinuxSll, &sll).ip_proto(), Some(2));
    let mut sll2 = vec![0u8; 20];
    sll2[0..2].copy_from_slice(&[0x08, 0x00]);
    sll2.extend_from_slice(&raw);
    assert_eq!(dissect(Link::LinuxSll2, &sll2).ip_proto(), Some(2));
    let mut null = vec![2u8, 0, 0, 0];
    null.extend_from_slice(&raw);
    assert_eq!(dissect(Link::Null, &null).ip_proto(), Some(2));
    assert_eq!(dissect(Link::Other(147), &raw), Dissected::default());
}

fn sample_packets() -> Vec<Vec<u8>> {
    vec![
        PacketBuilder::ethernet(A, B)
            .vlan(0x8100, 5)
            .vlan(0x9100, 6)
            .mpls(3)
            .mpls(4)
            .ipv4_full([1, 2, 3, 4], [5, 6, 7, 8], 1, 0, false)
            .tcp(80, 81, 2)
            .payload(&[1; 10])
            .build(),
        PacketBuilder::ethernet(A, B)
            .ipv6([1; 16], [2; 16])
            .ipv6_ext(0, 0)
            .ipv6_ext(43, 0)
            .ipv6_ext(51, 0)
            .ipv6_ext(44, 0)
            .ipv6_ext(60, 0)
            .udp(1, 2)
            .build(),
        PacketBuilder::ethernet(A, B)
            .pppoe()
            .ipv4([1, 1, 1, 1], [2, 2, 2, 2])
            .icmp(8, 0)
            .build(),
        PacketBuilder::ethernet(A, B)
            .arp(2, [1, 1, 1, 1], [2, 2, 2, 2], true)
            .build(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn never_panics_on_random_bytes(link in 0u16..300, data in proptest::collection::vec(any::<u8>(), 0..128)) {
        let link = Link::from_linktype(link);
        let _ = dissect(link, &data);
        let _ = dissect(Link::Ethernet, &data);
    }

    #[test]
    fn never_panics_on_mutated_packets(
        which in 0usize..4,
        muts in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut pkt = sample_packets().swap_remove(which);
        for (i, v) in muts {
            let at = i.index(pkt.len());
            pkt[at] = v;
        }
        let len = cut.index(pkt.len() + 1);
        let d = dissect(Link::Ethernet, &pkt[..len]);
        prop_assert!(d.network_offset <= len);
        prop_assert!(d.transport_offset <= len);
    }

    #[test]
    fn every_prefix_of_a_packet_is_handled(which in 0usize..4) {
        let pkt = sample_packets().swap_remove(which);
        let full = dissect(Link::Ethernet, &pkt);
        prop_assert!(!full.truncated);
        for len in 0..pkt.len() {
            let d = dissect(Link::Ethernet, &pkt[..len]);
            // a prefix never finds more VLANs/labels than the whole packet
            prop_assert!(d.vlan_ids.len() <= full.vlan_ids.len());
            prop_assert!(d.mpls_labels.len() <= full.mpls_labels.len());
        }
    }
}
