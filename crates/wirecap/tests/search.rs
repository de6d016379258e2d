//! Search across captures and flow listing, end to end, with tcpdump and mergecap as the
//! oracle: `wirecap search` (and `GET /api/v1/search`) over a time range and a filter
//! must give what `mergecap` of the streams' exports through `tcpdump -w EXPR` gives;
//! `wirecap flows` (and `GET /api/v1/flows`) must account for exactly the packets
//! tcpdump selects, and each flow's pcap link must hold exactly that flow's packets.

use std::path::{Path, PathBuf};
use std::process::Command;

mod support;
use support::server::{PW, Server};
use support::{BIN, ok, tcpdump, wirecap_in};

const T0: u64 = 1_735_689_600_000_000_000; // 2025-01-01T00:00:00Z
const SEC: u64 = 1_000_000_000;

fn tools() -> bool {
    wirecap_testkit::require_tools(&["tcpdump", "mergecap", "curl"])
}

/// Three streams: `a` 0..4 s, `b` 2..6 s (overlapping `a`), `c` 10..12 s. Returns the
/// data directory and the stored names in merge order.
fn three(dir: &Path) -> (PathBuf, Vec<String>) {
    let data = dir.join("data");
    let mut names = Vec::new();
    for (name, from, secs, seed) in [("a", 0, 4, 1), ("b", 2, 4, 2), ("c", 10, 2, 3)] {
        let src = dir.join(format!("{name}.pcap"));
        let start = (T0 + from * SEC).to_string();
        ok(&Command::new(BIN)
            .args(["generate", "--seconds", &secs.to_string(), "--pps", "1500"])
            .args(["--seed", &seed.to_string(), "--start", &start, "-o"])
            .arg(&src)
            .output()
            .expect("generate"));
        let stored = ok(&wirecap_in(
            &data,
            &["import", "-q", "--name", name, src.to_str().unwrap()],
        ));
        names.push(stored.trim().to_owned());
    }
    (data, names)
}

/// `wirecap export NAME --start LO --stop HI -o OUT`.
fn export(data: &Path, name: &str, lo: u64, hi: u64, out: &Path) {
    let (lo, hi) = (lo.to_string(), hi.to_string());
    let args = ["export", name, "--start", &lo, "--stop", &hi, "-o"];
    let mut all: Vec<&str> = args.to_vec();
    all.push(out.to_str().unwrap());
    ok(&wirecap_in(data, &all));
}

/// `wirecap flows --start LO --stop HI EXTRA…`: its standard output.
fn flows_cli(data: &Path, lo: u64, hi: u64, extra: &[&str]) -> String {
    let (lo, hi) = (lo.to_string(), hi.to_string());
    let mut all = vec!["flows", "--start", &lo, "--stop", &hi];
    all.extend(extra);
    ok(&wirecap_in(data, &all))
}

/// What a search must give: each stream's export of the range, merged by mergecap (in
/// the search's order), through `tcpdump -w EXPR`.
fn oracle(dir: &Path, data: &Path, names: &[String], lo: u64, hi: u64, bpf: &str) -> Vec<u8> {
    let mut parts = Vec::new();
    for n in names {
        let p = dir.join(format!("{n}-{lo}-{hi}.pcap"));
        export(data, n, lo, hi, &p);
        parts.push(p);
    }
    let merged = dir.join("merged.pcap");
    let o = Command::new("mergecap")
        .arg("-F")
        .arg("nsecpcap")
        .arg("-w")
        .arg(&merged)
        .args(&parts)
        .output()
        .expect("mergecap");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = dir.join("expected.pcap");
    let mut c = Command::new("tcpdump");
    c.arg("--time-stamp-precision=nano")
        .arg("-r")
        .arg(&merged)
        .arg("-w")
        .arg(&out);
    if !bpf.is_empty() {
        c.arg(bpf);
    }
    let o = c.output().expect("tcpdump");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::read(&out).unwrap()
}

/// tcpdump's text of a capture, one string per packet (its line and hex lines), packets
/// of the same time in a canonical order: the search and mergecap both order by time,
/// but break ties differently (the search: the stream with the earlier first packet).
fn text(pcap: &[u8]) -> Vec<String> {
    let mut packets: Vec<String> = Vec::new();
    for line in tcpdump(pcap, &["-x"]).lines() {
        match packets.last_mut() {
            Some(p) if line.starts_with(char::is_whitespace) => {
                p.push('\n');
                p.push_str(line);
            }
            _ => packets.push(line.to_owned()),
        }
    }
    let time = |p: &String| p.split(' ').next().unwrap_or("").to_owned();
    assert!(
        packets.windows(2).all(|w| time(&w[0]) <= time(&w[1])),
        "packets out of time order"
    );
    packets.sort_by(|a, b| time(a).cmp(&time(b)).then_with(|| a.cmp(b)));
    packets
}

fn search_cli(data: &Path, out: &Path, lo: u64, hi: u64, args: &[&str]) -> Vec<u8> {
    let (lo, hi) = (lo.to_string(), hi.to_string());
    let mut all = vec![
        "search",
        "--start",
        &lo,
        "--stop",
        &hi,
        "-o",
        out.to_str().unwrap(),
    ];
    all.extend(args);
    ok(&wirecap_in(data, &all));
    std::fs::read(out).unwrap()
}

#[test]
fn search_equals_mergecap_of_the_exports_through_tcpdump() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (data, names) = three(dir.path());
    let out = dir.path().join("out.pcap");
    for (lo, hi, streams) in [
        (T0, T0 + 20 * SEC, &names[..]),
        (T0 + SEC, T0 + 3 * SEC, &names[..2]),
        (T0 + 3 * SEC + SEC / 2, T0 + 11 * SEC, &names[..]),
        (T0 + 6 * SEC + SEC / 2, T0 + 11 * SEC, &names[2..]),
    ] {
        for bpf in [
            "",
            "tcp",
            "udp and not port 53",
            "host 10.0.0.7 or portrange 1000-2000",
        ] {
            let want = oracle(dir.path(), &data, streams, lo, hi, bpf);
            let args: Vec<&str> = if bpf.is_empty() {
                vec![]
            } else {
                vec!["--bpf", bpf]
            };
            let got = search_cli(&data, &out, lo, hi, &args);
            let (g, w) = (text(&got), text(&want));
            assert!(
                !w.is_empty() || bpf.contains("host"),
                "{lo} {hi} {bpf:?}: empty oracle"
            );
            let first = g.iter().zip(&w).position(|(a, b)| a != b);
            assert!(
                g == w,
                "{lo}..{hi} {bpf:?}: {} packets, tcpdump/mergecap {}; first difference:\n{:?}\n{:?}",
                g.len(),
                w.len(),
                first.map(|i| &g[i]),
                first.map(|i| &w[i])
            );
        }
    }
    // The appliance language selects as its tcpdump equivalent does.
    let got = search_cli(
        &data,
        &out,
        T0,
        T0 + 20 * SEC,
        &["--filter", "x: udp.port == 53; y: ipv4.proto == tcp; x | y"],
    );
    // (The appliance language sees through a VLAN tag; tcpdump needs `vlan and` for it.)
    let eq = "udp port 53 or (ip and tcp) or (vlan and (udp port 53 or (ip and tcp)))";
    let want = oracle(dir.path(), &data, &names, T0, T0 + 20 * SEC, eq);
    assert!(text(&got) == text(&want), "appliance language");
    // ISO-8601 times; pcapng holds the same packets.
    let o = wirecap_in(
        &data,
        &[
            "search",
            "--start",
            "2025-01-01T00:00:01Z",
            "--stop",
            "2025-01-01T00:00:03Z",
            "--format",
            "pcapng",
            "-o",
            "-",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let want = oracle(dir.path(), &data, &names[..2], T0 + SEC, T0 + 3 * SEC, "");
    assert!(text(&o.stdout) == text(&want), "pcapng over ISO-8601 times");
    // Mistakes are clear.
    let o = wirecap_in(
        &data,
        &[
            "search",
            "--start",
            "x",
            "--stop",
            "1",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--start"));
    let o = wirecap_in(
        &data,
        &[
            "search",
            "--start",
            "1",
            "--stop",
            "2",
            "--bpf",
            "tcp prot 80",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--bpf"),
        "{o:?}"
    );
}

#[test]
fn search_over_http_streams_the_same_file_with_ranges_for_viewers_too() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (data, names) = three(dir.path());
    let s = Server::start(&data, &[]);
    s.api(
        "POST",
        "/api/v1/users",
        Some(r#"{"name":"vera","password":"vera-password","role":"viewer"}"#),
        201,
    );
    let (lo, hi) = (T0 + SEC, T0 + 11 * SEC);
    let cli = search_cli(
        &data,
        &dir.path().join("cli.pcap"),
        lo,
        hi,
        &["--bpf", "tcp"],
    );
    let r = s.curl_as(
        Some("vera:vera-password"),
        &format!("/api/v1/search?start={lo}&stop={hi}&bpf=tcp"),
        &[],
    );
    assert_eq!(r.code, 200, "{}", r.text());
    assert!(r.body == cli, "HTTP and CLI searches differ");
    assert_eq!(r.header("x-wirecap-streams").as_deref(), Some("3"));
    let want = oracle(dir.path(), &data, &names, lo, hi, "tcp");
    assert!(text(&r.body) == text(&want));

    // Unfiltered: an exact length, and byte ranges of overlapping (merged) streams and of
    // consecutive (concatenated) ones.
    for (lo, hi) in [(T0, T0 + 20 * SEC), (T0 + 5 * SEC, T0 + 20 * SEC)] {
        let path = format!("/api/v1/search?start={lo}&stop={hi}");
        let whole = s.curl(&path, &[]);
        assert_eq!(whole.code, 200);
        let len = whole.body.len();
        assert_eq!(whole.header("content-length"), Some(len.to_string()));
        assert_eq!(whole.header("accept-ranges").as_deref(), Some("bytes"));
        let want = oracle(dir.path(), &data, &names, lo, hi, "");
        assert!(text(&whole.body) == text(&want), "{lo}..{hi} unfiltered");
        for (a, b) in [
            (0, 99),
            (24, len / 2),
            (len / 3, len - 1),
            (len - 10, len - 1),
        ] {
            let part = s.curl(&path, &["-r", &format!("{a}-{b}")]);
            assert_eq!(part.code, 206, "{a}-{b}");
            assert!(
                part.body[..] == whole.body[a..=b],
                "{lo}..{hi} bytes {a}-{b}"
            );
        }
    }
    // Mistakes: 400 with a message that says what.
    for (q, says) in [
        ("stop=1", "start"),
        (&*format!("start={lo}&stop={hi}&bpf=tcp%20prot%2080"), "bpf"),
        (
            &*format!("start={lo}&stop={hi}&filter=x%3A%20tcp.prt%20%3D%3D%201%3B%20x"),
            "filter",
        ),
        ("start=5&stop=1", "before"),
    ] {
        let r = s.curl(&format!("/api/v1/search?{q}"), &[]);
        assert_eq!(r.code, 400, "{q}: {}", r.text());
        assert!(r.text().contains(says), "{q}: {}", r.text());
    }
    let r = s.curl_as(None, &format!("/api/v1/search?start={lo}&stop={hi}"), &[]);
    assert_eq!(r.code, 401);
    // In the OpenAPI document.
    let doc = s.ok("/api/v1/openapi.json").json();
    assert!(doc["paths"]["/api/v1/search"]["get"].is_object());
    assert!(doc["paths"]["/api/v1/flows"]["get"].is_object());
    assert!(doc["components"]["schemas"]["FlowPage"].is_object());
}

/// tcpdump's packet count of `pcap` through `expr`.
fn count(pcap: &[u8], expr: &str) -> u64 {
    let args: Vec<&str> = expr.split(' ').collect();
    tcpdump(pcap, &args).lines().count() as u64
}

#[test]
fn flows_account_for_every_matching_packet_and_link_to_their_packets() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (data, names) = three(dir.path());
    // Over the whole of every stream, the flows' packets are every packet tcpdump selects
    // (the filter names a protocol: the flow index decides it exactly). (The appliance
    // language sees through a VLAN tag; tcpdump needs `vlan and` for it.)
    let (lo, hi) = (T0, T0 + 20 * SEC);
    let all = oracle(dir.path(), &data, &names, lo, hi, "");
    let ipv4_tcp = ["--filter", "x: ipv4.proto == tcp; x"];
    let page: serde_json::Value =
        serde_json::from_str(&flows_cli(&data, lo, hi, &ipv4_tcp)).unwrap();
    let tcp = count(&all, "(ip and tcp) or (vlan and ip and tcp)");
    assert!(tcp > 100, "{tcp} tcp packets");
    assert_eq!(
        page["packets"].as_u64(),
        Some(tcp),
        "flow packets = tcpdump's count"
    );
    let flows = page["flows"].as_array().unwrap();
    assert_eq!(flows.len() as u64, page["total"].as_u64().unwrap());
    assert!(flows.iter().all(|f| f["proto"] == "tcp"));
    let sum: u64 = flows.iter().map(|f| f["packets"].as_u64().unwrap()).sum();
    assert_eq!(sum, tcp);
    // Sorted by start.
    let starts: Vec<u64> = flows
        .iter()
        .map(|f| f["first_ns"].as_u64().unwrap())
        .collect();
    assert!(starts.windows(2).all(|w| w[0] <= w[1]));
    // A narrower range lists the flows whose span overlaps it.
    let (lo, hi) = (T0 + SEC, T0 + 11 * SEC);
    let page: serde_json::Value =
        serde_json::from_str(&flows_cli(&data, lo, hi, &["--bpf", "ip and tcp"])).unwrap();
    let flows = page["flows"].as_array().unwrap();
    assert!(
        flows.iter().all(|f| {
            f["first_ns"].as_u64().unwrap() < hi && f["last_ns"].as_u64().unwrap() >= lo
        })
    );

    // CSV: one line per flow.
    let csv = flows_cli(
        &data,
        lo,
        hi,
        &[&ipv4_tcp[..], &["--format", "csv", "--sort=-bytes"]].concat(),
    );
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("stream,id,proto,src,sport")
    );
    let bytes: Vec<u64> = lines
        .map(|l| l.split(',').nth(12).unwrap().parse().unwrap())
        .collect();
    assert_eq!(bytes.len(), flows.len());
    assert!(
        bytes.windows(2).all(|w| w[0] >= w[1]),
        "sorted by bytes, descending"
    );

    // Over HTTP: pages of 7 by cursor give the same rows as one page.
    let s = Server::start(&data, &[]);
    let base = format!(
        "/api/v1/flows?start={lo}&stop={hi}&filter=x%3A%20ipv4.proto%20%3D%3D%20tcp%3B%20x&sort=-packets"
    );
    let one = s.ok(&format!("{base}&limit=10000")).json();
    assert_eq!(one["total"], page["total"]);
    let mut paged = Vec::new();
    let mut cursor = String::new();
    for _ in 0..1000 {
        let p = s.ok(&format!("{base}&limit=7&cursor={cursor}")).json();
        paged.extend(p["flows"].as_array().unwrap().iter().cloned());
        match p["next"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(paged, *one["flows"].as_array().unwrap(), "paged = one page");

    // Each flow's pcap link holds exactly its packets: as many as it counts, each one of
    // its 5-tuple (tcpdump), every one of the 5-tuple in its span (tcpdump over its
    // stream's export of that span).
    for f in one["flows"].as_array().unwrap().iter().take(8) {
        let link = f["pcap"].as_str().unwrap();
        let r = s.curl(link, &[]);
        assert_eq!(r.code, 200, "{link}: {}", r.text());
        let expr = format!(
            "{vlan}tcp and ((src host {a} and src port {p} and dst host {b} and dst port {q}) or (src host {b} and src port {q} and dst host {a} and dst port {p}))",
            a = f["src"].as_str().unwrap(),
            p = f["sport"],
            b = f["dst"].as_str().unwrap(),
            q = f["dport"],
            vlan = if f["vlan"].is_null() { "" } else { "vlan and " },
        );
        let got = tcpdump(&r.body, &[]);
        assert_eq!(
            got.lines().count() as u64,
            f["packets"].as_u64().unwrap(),
            "{link}"
        );
        assert_eq!(
            tcpdump(&r.body, &[&expr]),
            got,
            "{link}: not all of its 5-tuple"
        );
        let export_to = dir.path().join("flow.pcap");
        let (first, last) = (
            f["first_ns"].as_u64().unwrap(),
            f["last_ns"].as_u64().unwrap(),
        );
        export(
            &data,
            f["stream"].as_str().unwrap(),
            first,
            last + 1,
            &export_to,
        );
        let want = tcpdump(&std::fs::read(&export_to).unwrap(), &[&expr]);
        assert_eq!(got, want, "{link}");
    }
    let r = s.curl(
        &format!("/api/v1/streams/{}/flows/1234567/pcap", names[0]),
        &[],
    );
    assert_eq!(r.code, 404, "{}", r.text());
    // CSV over HTTP, and mistakes.
    let r = s.ok(&format!("{base}&format=csv&limit=3"));
    assert_eq!(r.text().lines().count(), 4);
    assert!(r.header("x-wirecap-next").is_some());
    for (q, says) in [
        ("sort=size", "sort"),
        ("limit=0", "limit"),
        ("cursor=zz", "cursor"),
        ("bpf=tcp%20prot%2080", "bpf"),
    ] {
        let r = s.curl(&format!("/api/v1/flows?start={lo}&stop={hi}&{q}"), &[]);
        assert_eq!(r.code, 400, "{q}: {}", r.text());
        assert!(r.text().contains(says), "{q}: {}", r.text());
    }
    let _ = PW;
}
