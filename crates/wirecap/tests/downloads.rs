//! HTTP downloads go through the one export (`wirecap_query::Export`): `Filter` and
//! `FilterBPF` together mean both (issue 11), a filtered download says what it holds
//! and is named apart (issue 14, item 9), and a damaged stream is never served as a
//! complete-looking file (issue 17, item 5). tcpdump is the oracle.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

mod support;
use support::server::{PW, Server as Serve};
use support::tcpdump;
use support::{BIN, ok, wirecap_in as wirecap_at};

/// One curl run: status, headers, body and whether curl saw a complete transfer.
struct Got {
    code: u16,
    headers: String,
    body: Vec<u8>,
    complete: bool,
    stderr: String,
}

impl Got {
    fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn get(s: &Serve, path: &str, extra: &[&str]) -> Got {
    let (r, complete, stderr) = s.curl_transfer(Some(&format!("admin:{PW}")), path, extra);
    Got {
        code: r.code,
        headers: r.headers,
        body: r.body,
        complete,
        stderr,
    }
}

/// A generated capture imported as stream `name`: (the capture file, the stored name).
fn imported(dir: &Path, name: &str, secs: u32, pps: u32) -> (PathBuf, String) {
    let src = dir.join(format!("{name}.pcap"));
    ok(&Command::new(BIN)
        .args(["generate", "--seconds", &secs.to_string()])
        .args(["--pps", &pps.to_string(), "-o"])
        .arg(&src)
        .output()
        .expect("generate"));
    let data = dir.join("data");
    let stored = ok(&wirecap_at(
        &data,
        &["import", "-q", "--name", name, src.to_str().expect("utf8")],
    ));
    (src, stored.trim().to_owned())
}

fn tools() -> bool {
    wirecap_testkit::require_tools(&["tcpdump", "curl"])
}

#[test]
fn filter_and_filter_bpf_together_mean_both() {
    if !tools() {
        return;
    }
    let t = tempfile::tempdir().expect("tempdir");
    let (src, name) = imported(t.path(), "office", 3, 3000);
    let s = Serve::start(&t.path().join("data"), &[]);
    let original = std::fs::read(&src).expect("capture");
    let dl = |q: &str| {
        let g = get(&s, &format!("/pcap/single?StreamName={name}{q}"), &[]);
        assert_eq!(g.code, 200, "{q}: {}\n{}", g.text(), s.log());
        assert!(g.complete, "{q}: {}", g.stderr);
        g
    };
    let all = dl("");
    let udp = dl("&Filter=ipv4.proto%20%3D%3D%20udp");
    let dns = dl("&FilterBPF=port%2053");
    let both = dl("&Filter=ipv4.proto%20%3D%3D%20udp&FilterBPF=port%2053");

    // Each alone agrees with tcpdump; together they are exactly the packets of both.
    assert_eq!(
        tcpdump(&udp.body, &[]),
        tcpdump(&original, &["(ip and udp) or (vlan and ip and udp)"])
    );
    assert_eq!(tcpdump(&dns.body, &[]), tcpdump(&original, &["port 53"]));
    let dns_lines: std::collections::HashSet<String> =
        tcpdump(&dns.body, &[]).lines().map(str::to_owned).collect();
    let want: Vec<String> = tcpdump(&udp.body, &[])
        .lines()
        .filter(|l| dns_lines.contains(*l))
        .map(str::to_owned)
        .collect();
    let got: Vec<String> = tcpdump(&both.body, &[])
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(!want.is_empty(), "the generated traffic holds UDP port 53");
    assert!(want.len() < dns_lines.len(), "port 53 is not only UDP here");
    assert_eq!(got, want, "Filter + FilterBPF is not their AND");
    assert_eq!(
        got.join("\n") + "\n",
        tcpdump(&original, &["ip and udp and port 53"])
    );
    // The JSON API's download means the same.
    let api = get(
        &s,
        &format!("/api/v1/streams/{name}/pcap?filter=ipv4.proto%20%3D%3D%20udp&bpf=port%2053"),
        &[],
    );
    assert_eq!(api.code, 200, "{}", api.text());
    assert_eq!(api.body, both.body);

    // Item 9: the unfiltered download counts its packets; filtered ones leave the count
    // out (it is known only after the body) and are named apart, per filter.
    assert_eq!(
        all.header("x-wirecap-packets"),
        Some(tcpdump(&original, &[]).lines().count().to_string())
    );
    for g in [&udp, &dns, &both] {
        assert_eq!(g.header("x-wirecap-packets"), None, "{}", g.headers);
    }
    let names: Vec<String> = [&all, &udp, &dns, &both]
        .iter()
        .map(|g| g.header("content-disposition").expect("disposition"))
        .collect();
    assert_eq!(names[0], format!("attachment; filename=\"{name}.pcap\""));
    for n in &names[1..] {
        assert!(n.contains(&format!("{name}_filtered_")), "{n}");
        assert!(n.ends_with(".pcap\""), "{n}");
    }
    let distinct: std::collections::HashSet<&String> = names.iter().collect();
    assert_eq!(distinct.len(), 4, "{names:?}");
    // The same filter twice: the same name.
    assert_eq!(
        dl("&FilterBPF=port%2053").header("content-disposition"),
        dns.header("content-disposition")
    );

    // A bad filter still names the parameter.
    let bad = get(
        &s,
        &format!(
            "/pcap/single?StreamName={name}&Filter=ipv4.proto%20%3D%3D%20udp&FilterBPF=udp%20and%20("
        ),
        &[],
    );
    assert_eq!(bad.code, 400);
    assert!(bad.text().contains("FilterBPF"), "{}", bad.text());
}

#[test]
fn a_damaged_stream_is_never_served_as_a_complete_file() {
    if !tools() {
        return;
    }
    let t = tempfile::tempdir().expect("tempdir");
    let (_, late) = imported(t.path(), "late", 4, 5000);
    let (_, early) = imported(t.path(), "early", 2, 2000);
    let data = t.path().join("data");
    let zero = |name: &str, at: u64| {
        let seg = data.join("streams").join(name).join("seg-00000000.wcs");
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&seg)
            .expect("segment");
        assert!(f.metadata().expect("len").len() > at + 4096);
        f.write_all_at(&[0u8; 4096], at).expect("zero 4 KiB");
    };
    // Damage deep in one stream (found after the headers went out), at the very
    // start of the other (found before).
    zero(&late, 3 << 20);
    zero(&early, 0);
    let s = Serve::start(&data, &[]);

    for q in [
        "",
        "&compress=gzip",
        "&format=pcapng",
        "&FilterBPF=tcp",
        "&Filter=frame.size%20%3E%20100",
    ] {
        let g = get(&s, &format!("/pcap/single?StreamName={late}{q}"), &[]);
        assert!(
            !(g.code == 200 && g.complete),
            "{q}: a 200 with a complete body from a damaged stream ({} bytes)",
            g.body.len()
        );
        if q.is_empty() {
            // Found after the headers: 200, then a cut the client sees.
            assert_eq!(g.code, 200, "{}", g.text());
            assert!(!g.complete);
        }
        if g.code == 200 {
            if let Some(len) = g.header("content-length") {
                assert!(g.body.len() < len.parse::<usize>().expect("length"));
            }
        } else {
            assert_eq!(g.code, 500, "{q}: {}", g.text());
            assert!(g.text().contains("damaged"), "{q}: {}", g.text());
        }
    }
    // A Range before the damage is still served whole.
    let head = get(
        &s,
        &format!("/pcap/single?StreamName={late}"),
        &["-r", "0-99999"],
    );
    assert_eq!(head.code, 206);
    assert!(head.complete, "{}", head.stderr);
    assert_eq!(head.body.len(), 100_000);

    for (path, api) in [
        (format!("/pcap/single?StreamName={early}"), false),
        (
            format!("/pcap/single?StreamName={early}&FilterBPF=udp"),
            false,
        ),
        (format!("/api/v1/streams/{early}/pcap"), true),
    ] {
        let g = get(&s, &path, &[]);
        assert_eq!(g.code, 500, "{path}: {}", g.text());
        let text = g.text();
        assert!(
            text.contains("is damaged") && text.contains("wirecap verify"),
            "{path}: {text}"
        );
        assert!(
            text.starts_with(if api {
                "{\"error\""
            } else {
                "{\"Status\":false"
            }),
            "{path}: {text}"
        );
    }
    let log = s.log();
    assert!(log.contains("damaged"), "{log}");
}

/// Issue 17, item 5 on the server: a damaged stream is listed as damaged (the JSON API,
/// the UI's list), never fails the list nor hides; start-up recovery rebuilds a damaged
/// index with its chunk summaries and says so in the log.
#[test]
fn damaged_streams_are_listed_and_start_up_rebuilds_indexes_with_summaries() {
    if !tools() {
        return;
    }
    let t = tempfile::tempdir().expect("tempdir");
    let (_, good) = imported(t.path(), "good", 1, 1000);
    let (_, garbled) = imported(t.path(), "garbled", 1, 1000);
    let (src, cut) = imported(t.path(), "cut", 2, 2000);
    let data = t.path().join("data");
    let sdir = |n: &str| data.join("streams").join(n);
    std::fs::write(sdir(&garbled).join("meta.json"), b"{ not json").expect("garble meta");
    let meta = |n: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(sdir(n).join("meta.json")).expect("meta"))
            .expect("meta json")
    };
    let summary_len = meta(&cut)["summary_len"].as_u64().unwrap_or(0);
    assert!(summary_len > 0, "imports store chunk summaries");
    let cidx = sdir(&cut).join("chunks.idx");
    let len = std::fs::metadata(&cidx).expect("chunks.idx").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&cidx)
        .expect("chunks.idx")
        .set_len(len / 2 + 3)
        .expect("cut chunks.idx");

    let s = Serve::start(&data, &[]);
    // Start-up recovery rebuilt the cut index, summaries included, and said so.
    let log = s.log();
    assert!(log.contains("index rebuilt from the segments"), "{log}");
    assert!(log.contains(&cut), "{log}");
    assert!(
        log.contains("recovery failed") && log.contains(&garbled),
        "{log}"
    );
    assert_eq!(meta(&cut)["summary_len"].as_u64(), Some(summary_len));
    let sums = std::fs::metadata(sdir(&cut).join("summary.idx")).expect("summary.idx");
    assert!(sums.len() >= summary_len, "summaries rebuilt");
    let original = std::fs::read(&src).expect("capture");
    let udp = get(
        &s,
        &format!("/pcap/single?StreamName={cut}&FilterBPF=udp"),
        &[],
    );
    assert_eq!(udp.code, 200, "{}", udp.text());
    assert_eq!(tcpdump(&udp.body, &[]), tcpdump(&original, &["udp"]));

    // The JSON API lists every stream; the damaged one with why.
    let list = s.api("GET", "/api/v1/streams", None, 200);
    let rows = list.as_array().expect("array");
    assert_eq!(rows.len(), 3, "{list}");
    let row = |n: &str| {
        rows.iter()
            .find(|r| r["name"] == n)
            .unwrap_or_else(|| panic!("{n} not listed: {list}"))
    };
    assert_eq!(row(&good)["state"], "sealed", "{list}");
    assert_eq!(row(&cut)["state"], "sealed", "{list}");
    assert_eq!(row(&garbled)["state"], "damaged", "{list}");
    assert!(
        row(&garbled)["damage"]
            .as_str()
            .is_some_and(|d| d.contains("meta.json")),
        "{list}"
    );
    // The UI's list (the Files page) too, counted.
    let ui = s.api("GET", "/api/v1/ui/streams", None, 200);
    assert_eq!(ui["total"], 3, "{ui}");
    assert_eq!(ui["streams"][2]["name"], garbled.as_str(), "{ui}");
    assert_eq!(ui["streams"][2]["state"], "damaged", "{ui}");
    let ui = s.api("GET", "/api/v1/ui/streams?q=garb", None, 200);
    assert_eq!(ui["total"], 1, "{ui}");
    // The manual's CSV keeps its layout: only streams it can give numbers for.
    let (code, plain) = {
        let r = s.admin("GET", "/plain/list", None);
        (r.code, r.body)
    };
    assert_eq!(code, 200);
    let plain = String::from_utf8_lossy(&plain).into_owned();
    assert!(plain.contains(&good) && plain.contains(&cut), "{plain}");
    assert!(!plain.contains(&garbled), "{plain}");
    // The status page still counts what it can read.
    let sys = s.api("GET", "/api/v1/ui/system", None, 200);
    assert_eq!(sys["streams"], 2, "{sys}");
}

/// Issue 14, items 10 and 12: a capture restarted under one name within the minute gets
/// a stream of its own (as schedules do) instead of 409; the manual's "File Link"
/// opened by a browser without a session leads to the UI's login page, not to a
/// Basic-auth prompt.
#[test]
fn a_restarted_capture_gets_its_own_stream_and_file_links_lead_to_the_login_page() {
    if !tools() {
        return;
    }
    let t = tempfile::tempdir().expect("tempdir");
    let s = Serve::start(&t.path().join("data"), &["--synthetic", "2000"]);
    for _ in 0..3 {
        let (code, body) = {
            let r = s.admin("GET", "/sysmaster/capture_start?StreamName=again", None);
            (r.code, r.body)
        };
        let body = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(code, 200, "{body}\n{}", s.log());
        assert!(
            body.contains("successfully started capture [again]"),
            "{body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
        let (code, body) = {
            let r = s.admin("GET", "/sysmaster/capture_stop", None);
            (r.code, r.body)
        };
        assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    }
    let list = s.api("GET", "/api/v1/streams", None, 200);
    let mut names: Vec<String> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .filter(|n| n.starts_with("again"))
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 3, "{list}");
    // Within one minute the names are again_…, again-2_…, again-3_… (a minute boundary
    // between the starts gives plain again_… names, distinct by their minute).
    let minute = |n: &str| n.rsplit('_').take(2).collect::<Vec<_>>().join("_");
    if names.iter().all(|n| minute(n) == minute(&names[0])) {
        assert!(names[0].starts_with("again-2_"), "{names:?}");
        assert!(names[1].starts_with("again-3_"), "{names:?}");
        assert!(names[2].starts_with("again_"), "{names:?}");
    }

    // The File Link without credentials, as a browser opens it.
    let o = Command::new("curl")
        .args(["-s", "-S", "-D", "-", "-o", "/dev/null"])
        .args(["-H", "Accept: text/html"])
        .arg(s.url(&format!("/en.files.html?StreamName={}", names[0])))
        .output()
        .expect("curl");
    let head = String::from_utf8_lossy(&o.stdout).to_lowercase();
    assert!(head.starts_with("http/1.1 30"), "{head}");
    assert!(
        head.contains(&format!("location: /#/files/{}", names[0].to_lowercase())),
        "{head}"
    );
    assert!(!head.contains("www-authenticate"), "{head}");
    // It reads nothing: a bad name is still refused, and the UI asks for the login.
    let o = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(s.url("/en.files.html?StreamName=..%2Fetc"))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "400");
    let o = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(s.url("/api/v1/streams"))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "401");
}
