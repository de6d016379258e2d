use super::*;
use crate::dissect::build::PacketBuilder;

const A: [u8; 6] = [0x00, 0xba, 0xbe, 0x11, 0x22, 0x33];
const B: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

fn today() -> Date {
    Date::new(2020, 1, 2).expect("valid")
}

fn compile(text: &str) -> Result<ApplianceFilter, FilterError> {
    ApplianceFilter::compile(text, Link::Ethernet, &CompileOptions::new(today()))
}

fn f(text: &str) -> ApplianceFilter {
    compile(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn m(text: &str, pkt: &[u8]) -> bool {
    f(text).matches(0, pkt.len() as u32, pkt)
}

fn tcp(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    PacketBuilder::ethernet(A, B)
        .ipv4([192, 168, 1, 1], [10, 0, 0, 2])
        .tcp(sport, dport, flags)
        .build()
}

fn udp(sport: u16, dport: u16) -> Vec<u8> {
    PacketBuilder::ethernet(B, A)
        .vlan(0x8100, 1234)
        .ipv4([10, 0, 0, 3], [192, 168, 2, 1])
        .udp(sport, dport)
        .build()
}

#[test]
fn manual_examples_on_built_packets() {
    let t = tcp(1500, 80, 0x12);
    let u = udp(5000, 3500);
    let v6 = PacketBuilder::ethernet(B, B)
        .ipv6([0x20; 16], [0xfe; 16])
        .icmpv6(128, 0)
        .build();
    let arp = PacketBuilder::ethernet(B, B)
        .arp(1, [1, 1, 1, 1], [2, 2, 2, 2], false)
        .build();
    assert!(
        m("ether.proto == ipv4", &t)
            && m("ether.proto == ipv4", &u)
            && !m("ether.proto == ipv4", &v6)
    );
    assert!(m("ether.proto == 0x0800", &t) && m("ether.proto == 2048", &t));
    assert!(
        m("ether.proto == arp", &arp)
            && m("ether.proto == ipv6", &v6)
            && m("ether.proto == vlan", &u)
    );
    assert!(!m("ether.proto == vlan", &t));
    assert!(m("ether.addr == 00:ba:be:", &t) && m("ether.addr == 00:ba:be:", &u));
    assert!(m("ether.addr == 00:ba:be:11:22:33", &t));
    assert!(!m("ether.addr == 00:ba:be:11:22:34", &t));
    assert!(m("ether.addr == 00:*", &t) && !m("ether.addr == 00:*", &v6));
    assert!(m("ether.addr.src == 00:ba:be:*:*:*", &t) && !m("ether.addr.src == 00:ba:be:", &u));
    assert!(m("ether.addr.dst == 00:ba:be:", &u));
    assert!(m("ipv4.addr == 192.168.1.1", &t) && !m("ipv4.addr == 192.168.1.2", &t));
    assert!(m("ipv4.addr == 192.168.1.0/24", &t) && !m("ipv4.addr == 192.168.1.0/24", &u));
    assert!(m("ipv4.addr.src == 192.168.1.0/24", &t) && !m("ipv4.addr.src == 192.168.2.0/24", &u));
    assert!(m("ipv4.addr.dst == 192.168.2.0/24", &u));
    assert!(
        m("ipv4.proto == tcp", &t) && !m("ipv4.proto == tcp", &u) && m("ipv4.proto == udp", &u)
    );
    assert!(m("ipv4.proto == 17", &u));
    assert!(m("tcp.port == 80", &t) && m("tcp.port == 1000-2000", &t) && !m("tcp.port == 80", &u));
    assert!(m("tcp.port.src == 1500", &t) && !m("tcp.port.src == 80", &t));
    assert!(
        m("udp.port == 3000-4000", &u)
            && m("udp.port.src == 5000", &u)
            && !m("udp.port.dst == 5000", &u)
    );
    assert!(m("vlan.id == 1234", &u) && !m("vlan.id == 1234", &t));
    assert!(m("frame.size <= 128", &t) && m("frame.size >= 54", &t) && m("frame.size == 54", &t));
    assert!(!m("frame.size == 64", &t));
}

#[test]
fn ne_and_absent_fields() {
    let t = tcp(1500, 80, 0x12);
    let u = udp(5000, 3500);
    assert!(!m("tcp.port != 80", &t));
    assert!(m("tcp.port != 81", &t));
    assert!(!m("tcp.port != 81", &u), "a UDP packet has no tcp.port");
    assert!(m("ipv4.proto != tcp", &u) && !m("ipv4.proto != udp", &u));
    assert!(m("vlan.id != 5", &u) && !m("vlan.id != 5", &t));
    assert!(m("ipv4.addr != 1.2.3.4", &t) && !m("ipv4.addr != 10.0.0.2", &t));
    assert!(m("ether.addr != 00:bb:", &t) && !m("ether.addr != 00:ba:", &t));
    assert!(
        m("tcp.port > 1000", &t)
            && !m("tcp.port > 1500", &t)
            && m("tcp.port < 81", &t)
            && !m("tcp.port < 80", &t)
    );
    assert!(m("udp.port >= 5000", &u) && m("udp.port <= 3500", &u) && !m("udp.port <= 3499", &u));
}

#[test]
fn tcp_flags_contain_all() {
    let synack = tcp(1, 2, 0x12);
    let syn = tcp(1, 2, 0x02);
    assert!(m("tcp.flags == syn", &synack) && m("tcp.flags == syn", &syn));
    assert!(m("tcp.flags == syn+ack", &synack) && !m("tcp.flags == syn+ack", &syn));
    assert!(
        m("tcp.flags == 0x12", &synack)
            && m("tcp.flags != ack", &syn)
            && !m("tcp.flags != syn", &syn)
    );
    assert!(!m("tcp.flags == syn", &udp(1, 2)));
}

#[test]
fn ipv6_ip_mpls_icmp() {
    let v6 = PacketBuilder::ethernet(B, B)
        .mpls(29)
        .ipv6(
            "2001:db8::1"
                .parse::<std::net::Ipv6Addr>()
                .expect("ip")
                .octets(),
            [0xff; 16],
        )
        .ipv6_ext(0, 0)
        .tcp(22, 40000, 0x10)
        .build();
    assert!(m("ipv6.addr == 2001:db8::1", &v6) && m("ipv6.addr == 2001:db8::/32", &v6));
    assert!(m("ipv6.addr.src == 2001:db8::/32", &v6) && !m("ipv6.addr.dst == 2001:db8::/32", &v6));
    assert!(
        m("ip.addr == 2001:db8::1", &v6)
            && !m("ipv4.addr == 0.0.0.0/0", &v6)
            && m("ip.addr == ::/0", &v6)
    );
    assert!(m("ipv6.proto == tcp", &v6) && m("ip.proto == 6", &v6) && !m("ipv4.proto == tcp", &v6));
    assert!(
        m("mpls.label == 29", &v6) && m("mpls.label == 20-30", &v6) && !m("mpls.label == 30", &v6)
    );
    assert!(
        m("tcp.port == 22", &v6) && m("ether.proto == ipv6", &v6) && m("ether.proto == mpls", &v6)
    );
    let ping = PacketBuilder::ethernet(B, B)
        .ipv4([1, 1, 1, 1], [2, 2, 2, 2])
        .icmp(8, 0)
        .build();
    assert!(
        m("icmp.type == 8", &ping)
            && m("icmp.type == echo-request", &ping)
            && !m("icmp.type == echo-reply", &ping)
    );
    assert!(m("icmp.code == 0", &ping) && !m("icmpv6.type == 8", &ping));
    assert!(m("ip.addr == 1.1.1.1", &ping));
}

#[test]
fn frame_time() {
    let base = 16_429u64 * 86_400 * 1_000_000_000 + 8 * 3_600 * 1_000_000_000 + 100_200_300;
    let fl = f("frame.time == 20141225_08:00:00.100.200.300");
    assert!(
        fl.matches(base, 60, &[])
            && fl.matches(base + 1, 60, &[])
            && !fl.matches(base - 1, 60, &[])
    );
    let r = f("frame.time == 20141225_08:00:00.100.200.300-20141225_17:00:00.400.500.600");
    let end = 16_429u64 * 86_400 * 1_000_000_000 + 17 * 3_600 * 1_000_000_000 + 400_500_600;
    assert!(
        r.matches(base, 60, &[])
            && r.matches(end - 1, 60, &[])
            && !r.matches(end, 60, &[])
            && !r.matches(base - 1, 60, &[])
    );
    let ne = f("frame.time != 20141225_08:00:00.100.200.300-20141225_17:00:00.400.500.600");
    assert!(!ne.matches(base, 60, &[]) && ne.matches(end, 60, &[]));
    let tod = f("frame.time == 07:00:00");
    let seven =
        today().days_since_epoch() as u64 * 86_400 * 1_000_000_000 + 7 * 3_600 * 1_000_000_000;
    assert!(tod.matches(seven, 60, &[]) && !tod.matches(seven - 1, 60, &[]));
    assert!(f("frame.time < 07:00:00").matches(seven - 1, 60, &[]));
    assert!(!f("frame.time < 07:00:00").matches(seven, 60, &[]));
    assert!(f("frame.time <= 07:00:00").matches(seven, 60, &[]));
    assert!(!f("frame.time > 07:00:00").matches(seven, 60, &[]));
}

#[test]
fn fcs() {
    let mut frame = tcp(1, 2, 0);
    let crc = block::crc32(&frame);
    frame.extend_from_slice(&crc.to_le_bytes());
    let opts = CompileOptions {
        today: today(),
        fcs_present: true,
    };
    let fail = ApplianceFilter::compile("ether.fcs == fail", Link::Ethernet, &opts).expect("valid");
    let ok = ApplianceFilter::compile("ether.fcs == ok", Link::Ethernet, &opts).expect("valid");
    let n = frame.len() as u32;
    assert!(!fail.matches(0, n, &frame) && ok.matches(0, n, &frame));
    let mut bad = frame.clone();
    bad[20] ^= 1;
    assert!(fail.matches(0, n, &bad) && !ok.matches(0, n, &bad));
    // cut by the snap length: not checkable
    assert!(!fail.matches(0, n + 10, &bad) && !ok.matches(0, n + 10, &bad));
    // Frames without FCS: the test is refused, never answered with nothing (issue 14.8).
    for text in [
        "ether.fcs == fail",
        "x: ether.fcs != ok; y: tcp.port == 80; x | y",
    ] {
        let e = ApplianceFilter::compile(text, Link::Ethernet, &CompileOptions::new(today()))
            .expect_err(text);
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(e.to_string().contains("without their FCS"), "{e}");
    }
    // known vector: CRC-32 of "123456789"
    assert_eq!(block::crc32(b"123456789"), 0xcbf4_3926);
}

#[test]
fn expressions() {
    let t = tcp(1500, 80, 0x12);
    let u = udp(5000, 3500);
    let u5000 = udp(5000, 1);
    let text = "all_udp: ipv4.proto == udp; all_tcp: ipv4.proto == tcp; all_udp_port_5000: udp.port == 5000;\n((!all_udp) & (all_tcp)) | all_udp_port_5000";
    assert!(m(text, &t) && m(text, &u5000) && m(text, &u));
    let text2 = "x: ipv4.proto == udp; y: tcp.port == 80; x | y";
    assert!(m(text2, &t) && m(text2, &u));
    let and = "x: ipv4.proto == udp; y: vlan.id == 1234; x && not y";
    assert!(!m(and, &u) && !m(and, &t));
    assert!(m("x: ipv4.proto == udp; y: vlan.id == 1234; x and y", &u));
    // precedence: ! > & > |
    let p = "a: ipv4.proto == tcp; b: ipv4.proto == udp; c: vlan.id == 1234; a | b & !c";
    assert!(m(p, &t) && !m(p, &u));
    let p2 = "a: ipv4.proto == tcp; b: ipv4.proto == udp; c: vlan.id == 1234; (a | b) & !c";
    assert!(m(p2, &t) && !m(p2, &u));
    // a single named block with no expression, and the manual's "default" example
    assert!(m("block0: ipv4.proto == tcp", &t));
    assert!(m("default: ether.addr == *:*:*:*:*:*; default", &t));
    assert!(m("  ipv4.proto == tcp ;", &t));
}

#[track_caller]
fn error_at(text: &str, kind: ErrorKind, offset: usize) {
    let e = compile(text).expect_err(text);
    assert_eq!((e.kind(), e.offset()), (kind, Some(offset)), "{text}: {e}");
    // Display always has the caret line.
    assert!(e.to_string().contains('^'), "{e}");
}

#[test]
fn errors_point_at_the_column() {
    error_at("x: tcp.prot == 80; x", ErrorKind::UnknownField, 3);
    error_at("x: tcp.port == 80; y", ErrorKind::UnknownName, 19);
    error_at("x: tcp.port == 80; (x", ErrorKind::Unbalanced, 19);
    error_at("x: tcp.port == 80; x)", ErrorKind::Unbalanced, 20);
    error_at("x: tcp.port == 80; x &", ErrorKind::Syntax, 22);
    error_at("x: tcp.port == 80; x y", ErrorKind::Syntax, 21);
    error_at("x: tcp.port == 80; x $ x", ErrorKind::Syntax, 21);
    error_at("x: tcp.port == eighty; x", ErrorKind::BadValue, 15);
    error_at("x: tcp.port == 70000", ErrorKind::BadValue, 15);
    error_at("x: tcp.port == 2000-1000", ErrorKind::BadValue, 15);
    error_at("x: tcp.port < 1000-2000", ErrorKind::BadOperator, 12);
    error_at("tcp.port = 80", ErrorKind::Syntax, 9);
    error_at("tcp.port 80", ErrorKind::Syntax, 9);
    error_at("tcp.port ==", ErrorKind::BadValue, 11);
    error_at("ipv4.addr == 10.0.0.256", ErrorKind::BadValue, 13);
    error_at("ipv4.addr == 10.0.0.0/33", ErrorKind::BadValue, 22);
    error_at("ipv4.addr == 2001:db8::1", ErrorKind::BadValue, 13);
    error_at("ipv4.addr < 10.0.0.1", ErrorKind::BadOperator, 10);
    error_at("ether.addr == 00:ba:be", ErrorKind::BadValue, 14);
    error_at("ether.addr == 00:zz:", ErrorKind::BadValue, 17);
    error_at("ether.proto == ipx", ErrorKind::BadValue, 15);
    error_at("ether.fcs == maybe", ErrorKind::BadValue, 13);
    error_at("tcp.flags == syn+foo", ErrorKind::BadValue, 17);
    error_at("frame.time == 20141325_08:00:00", ErrorKind::BadValue, 14);
    error_at("frame.time == 08:00:00-07:00:00", ErrorKind::BadValue, 14);
    error_at("frame.time == 08:00:00-07:00", ErrorKind::BadValue, 23);
    error_at("vlan.id == 4096", ErrorKind::BadValue, 11);
    error_at(
        "x: tcp.port == 1; x: udp.port == 2; x",
        ErrorKind::DuplicateName,
        18,
    );
    error_at("x: tcp.port == 1; udp.port == 2", ErrorKind::Syntax, 18);
    error_at("x: tcp.port == 1; y: udp.port == 2", ErrorKind::Syntax, 34);
    error_at("", ErrorKind::Syntax, 0);
    error_at("and: tcp.port == 1; and", ErrorKind::Syntax, 0);
    error_at(
        "x: tcp.port == 1; x; y: udp.port == 2",
        ErrorKind::Syntax,
        21,
    );
    error_at("x: tcp.port == 1; x; x", ErrorKind::Syntax, 21);
    error_at("x: tcp.port == 1;\n  (x))", ErrorKind::Unbalanced, 23);
}

#[test]
fn deep_expressions_are_bounded() {
    let deep = format!("x: tcp.port == 1; {}x{}", "(".repeat(300), ")".repeat(300));
    assert_eq!(
        compile(&deep).expect_err("too deep").kind(),
        ErrorKind::TooComplex
    );
    let wide = format!(
        "x: tcp.port == 1; {}x{}",
        "x & (".repeat(70),
        ")".repeat(70)
    );
    assert_eq!(
        compile(&wide).expect_err("too deep").kind(),
        ErrorKind::TooComplex
    );
    let ok = format!("x: tcp.port == 80; {}x{}", "(".repeat(50), ")".repeat(50));
    assert!(m(&ok, &tcp(1, 80, 0)));
    let nots = format!("x: tcp.port == 80; {}x", "!".repeat(101));
    assert!(!m(&nots, &tcp(1, 80, 0)));
}

#[test]
fn run_postfix() {
    use Step::*;
    assert!(run(&[Block(0), Block(1), Or], 0b10, false));
    assert!(!run(&[Block(0), Block(1), And], 0b10, false));
    assert!(run(&[Block(0), Not], 0, false));
    assert!(run(&[Block(0), Not], 1, true), "may: negation gives true");
    // (b0 & b1) | (b2 & !b3)
    let p = [Block(0), Block(1), And, Block(2), Block(3), Not, And, Or];
    for bits in 0..16u64 {
        let b = |i: u64| bits >> i & 1 == 1;
        assert_eq!(
            run(&p, bits, false),
            (b(0) && b(1)) || (b(2) && !b(3)),
            "{bits:04b}"
        );
    }
}

#[test]
fn a_block_name_with_a_dash_is_named_in_the_error() {
    let e = compile("a-b: tcp.port == 80; a-b").unwrap_err();
    assert!(
        e.message().contains("`a-b` cannot name a block"),
        "{}",
        e.message()
    );
    assert_eq!(e.offset(), Some(0));
    let e = compile("web: tcp.port == 80;\n  my-web : udp; web").unwrap_err();
    assert!(e.message().contains("`my-web`"), "{}", e.message());
    // Dashes elsewhere are not mistaken for a definition.
    assert!(compile("m: ether.addr == 00-ba-be-11-22-33; m").is_ok());
    assert!(compile("web_1: tcp.port == 80; web_1").is_ok());
}
