//! The appliance manual's text formats, as pure functions of store and counter data.
//!
//! Every function here returns the exact bytes the appliance prints, one record a line
//! (`\n`), so that scripts written for it (`grep capture_active`, `cut -d,`) work unchanged.
//! The unit tests compare byte for byte with the manual's examples.
//!
//! Where wirecap differs from the manual's appliance, on purpose:
//! * Times (list dates, split names, capture messages) are UTC; the manual's box printed
//!   its local time.
//! * `/plain/view` lists all thirteen split views; the manual's example omits
//!   `split_1MB`…`split_100MB`, which its web section lists as supported.
//! * Time splits are aligned to UTC multiples of their width (`…:47.000.000.000`), so a
//!   split's `Start`/`Stop` are round numbers; the manual's started at a packet.
//! * A size split's cut can fall between packets with the same timestamp, which no
//!   `Start`/`Stop` pair can separate: its URL adds `&StreamView=split_1MB&Split=K`, which
//!   `/pcap/splittime` honours exactly (scripts that keep only `Start`/`Stop` still get the
//!   same packets unless timestamps tie at the cut).
//! * Errors answer `{"Status":false,"Str":"…"}` with a meaningful HTTP status (400 bad
//!   name or query, 404 unknown stream, 409 capture already running / none running,
//!   503 no capture interface, 403 no permission to capture) instead of always 200.
//! * A synthetic or replay source has no wire: `capture_link` is `up` and
//!   `capture_link_speed` is `0` (unknown, as for a veth). `bytes_cache` is always `0`.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;
use wirecap_capture::link::format_uptime;
use wirecap_store::View;

/// Everything `/sysmaster/status` prints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusFigures {
    pub uptime: Duration,
    pub packets_received: u64,
    pub packets_dropped: u64,
    pub packets_errors: u64,
    pub packets_captured: u64,
    pub bytes_captured: u64,
    pub bytes_pending: u64,
    pub bytes_cache: u64,
    pub bytes_disk: u64,
    /// `true` up, `false` down.
    pub link_up: bool,
    pub link_uptime: Duration,
    /// Mb/s, 0 when unknown.
    pub link_speed: u64,
    pub capture_bytes: u64,
    pub capture_packets: u64,
    pub capture_bps: u64,
    pub capture_pps: u64,
    /// The name the capture was started with (without the date suffix), `None` when idle.
    pub capture_name: Option<String>,
    pub capture_active: bool,
}

/// `/sysmaster/status`: `key, value` lines.
pub fn status_text(s: &StatusFigures) -> String {
    let mut o = String::with_capacity(512);
    let mut kv = |k: &str, v: &dyn std::fmt::Display| {
        let _ = writeln!(o, "{k}, {v}");
    };
    kv("uptime", &format_uptime(s.uptime));
    kv("packets_received", &s.packets_received);
    kv("packets_dropped", &s.packets_dropped);
    kv("packets_errors", &s.packets_errors);
    kv("packets_captured", &s.packets_captured);
    kv("bytes_captured", &s.bytes_captured);
    kv("bytes_pending", &s.bytes_pending);
    kv("bytes_cache", &s.bytes_cache);
    kv("bytes_disk", &s.bytes_disk);
    kv("capture_link", &if s.link_up { "up" } else { "down" });
    kv("capture_link_uptime", &format_uptime(s.link_uptime));
    kv("capture_link_speed", &s.link_speed);
    kv("capture_bytes", &s.capture_bytes);
    kv("capture_packets", &s.capture_packets);
    kv("capture_bps", &s.capture_bps);
    kv("capture_pps", &s.capture_pps);
    let name = match (&s.capture_name, s.capture_active) {
        (Some(n), true) => n.as_str(),
        _ => "none",
    };
    kv("capture_name", &name);
    kv("capture_active", &s.capture_active);
    o
}

/// The JSON answer of `/sysmaster/capture_start` and `capture_stop`, and the shape of every
/// error of the appliance routes: `{"Status":true,"Str":"..."}`.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct ApplianceJson {
    #[serde(rename = "Status")]
    pub status: bool,
    #[serde(rename = "Str")]
    pub str: String,
}

impl ApplianceJson {
    pub fn ok(str: impl Into<String>) -> Self {
        Self {
            status: true,
            str: str.into(),
        }
    }
    pub fn err(str: impl Into<String>) -> Self {
        Self {
            status: false,
            str: str.into(),
        }
    }
    /// The serialized object, newline-terminated.
    pub fn to_body(&self) -> String {
        let mut s = serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"Status":false,"Str":"internal error: cannot encode answer"}"#.into()
        });
        s.push('\n');
        s
    }
}

/// `[Sat Jun 20 20:28:55 2015] successfully started capture [cli_capture]`.
pub fn started_message(now_ns: u64, base_name: &str) -> String {
    format!(
        "[{}] successfully started capture [{base_name}]",
        wirecap_store::timefmt::ctime(now_ns)
    )
}

/// `[Sat Jun 20 20:39:17 2015] successfully stopped capture [cli_capture]`.
pub fn stopped_message(now_ns: u64, base_name: &str) -> String {
    format!(
        "[{}] successfully stopped capture [{base_name}]",
        wirecap_store::timefmt::ctime(now_ns)
    )
}

/// One stream in `/plain/list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListRow {
    /// Full stored name.
    pub name: String,
    /// Size of the stream as one pcap file.
    pub bytes: u64,
    pub packets: u64,
    /// Creation time, ns since the epoch.
    pub created_ns: u64,
}

/// `/plain/list`: a header line, then one line per stream, newest first as given.
pub fn list_csv(rows: &[ListRow]) -> String {
    let mut o =
        String::from("Filename , Size Bytes , Packet Count , Date ,Single PCAP Link,File Link,\n");
    for r in rows {
        let _ = writeln!(
            o,
            "{n} , {b}, {p}, {d},/pcap/single?StreamName={n}&,/en.files.html?Fn=view&StreamName={n}&,",
            n = r.name,
            b = r.bytes,
            p = r.packets,
            d = wirecap_store::timefmt::ctime(r.created_ns),
        );
    }
    o
}

/// `/plain/view`: every split view of a stream with the URL that lists its files.
pub fn view_csv(name: &str) -> String {
    let mut o = String::from("SplitMode , Link\n");
    for v in View::splits() {
        let _ = writeln!(o, "{v} , /plain/split?StreamName={name}&StreamView={v}");
    }
    o
}

/// One file of a split view in `/plain/split`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitRow {
    /// The split's name (its start time, `20150620_18:36:47.780.373.248`).
    pub name: String,
    pub bytes: u64,
    pub packets: u64,
    pub start_ns: u64,
    pub stop_ns: u64,
    /// For splits that a time range cannot address exactly (size splits, whose cut may
    /// fall between packets with the same timestamp): the view and index that can.
    pub exact: Option<(View, u64)>,
}

/// The download URL of one split: the manual's `/pcap/splittime?…&Start=…ULL&Stop=…ULL`,
/// plus `&StreamView=V&Split=K` when only the split's index addresses it exactly.
pub fn split_url(stream: &str, r: &SplitRow) -> String {
    let mut u = format!(
        "/pcap/splittime?StreamName={stream}&Start={}ULL&Stop={}ULL",
        r.start_ns, r.stop_ns
    );
    if let Some((view, k)) = r.exact {
        let _ = write!(u, "&StreamView={view}&Split={k}");
    }
    u
}

/// `/plain/split`: a header line, then one line per split file.
pub fn split_csv(stream: &str, rows: &[SplitRow]) -> String {
    let mut o = String::from("Name , Size Bytes, Packet Count, URL\n");
    for r in rows {
        let _ = writeln!(
            o,
            "{} , {}, {}, {}",
            r.name,
            r.bytes,
            r.packets,
            split_url(stream, r)
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use wirecap_store::timefmt::parse_time;

    /// The manual's text lost its newlines; put one before every key / row again.
    fn lines(manual: &str, starts: &[&str]) -> String {
        let mut out = manual.to_owned();
        for s in starts {
            out = out.replace(&format!(" {s}"), &format!("\n{s}"));
        }
        out.push('\n');
        out
    }

    const KEYS: [&str; 17] = [
        "packets_received,",
        "packets_dropped,",
        "packets_errors,",
        "packets_captured,",
        "bytes_captured,",
        "bytes_pending,",
        "bytes_cache,",
        "bytes_disk,",
        "capture_link,",
        "capture_link_uptime,",
        "capture_link_speed,",
        "capture_bytes,",
        "capture_packets,",
        "capture_bps,",
        "capture_pps,",
        "capture_name,",
        "capture_active,",
    ];

    #[test]
    fn status_matches_the_manual_while_capturing() {
        let manual = "uptime, 0D 3H 36M packets_received, 453468480 packets_dropped, 0 packets_errors, 0 packets_captured, 453468480 bytes_captured, 30835857408 bytes_pending, 4812701696 bytes_cache, 0 bytes_disk, 33742389248 capture_link, up capture_link_uptime, 0D 3H 36M capture_link_speed, 10000 capture_bytes, 31705286552 capture_packets, 466254210 capture_bps, 7726900224 capture_pps, 14203859 capture_name, manual_capture_cli capture_active, true";
        let up = Duration::from_secs(3 * 3600 + 36 * 60 + 12);
        let s = StatusFigures {
            uptime: up,
            packets_received: 453468480,
            packets_dropped: 0,
            packets_errors: 0,
            packets_captured: 453468480,
            bytes_captured: 30835857408,
            bytes_pending: 4812701696,
            bytes_cache: 0,
            bytes_disk: 33742389248,
            link_up: true,
            link_uptime: up,
            link_speed: 10000,
            capture_bytes: 31705286552,
            capture_packets: 466254210,
            capture_bps: 7726900224,
            capture_pps: 14203859,
            capture_name: Some("manual_capture_cli".into()),
            capture_active: true,
        };
        assert_eq!(status_text(&s), lines(manual, &KEYS));
    }

    #[test]
    fn status_matches_the_manual_when_idle() {
        let manual = "uptime, 0D 0H 11M packets_received, 101000000 packets_dropped, 0 packets_errors, 0 packets_captured, 101000000 bytes_captured, 6867999744 bytes_pending, 0 bytes_cache, 0 bytes_disk, 30809784320 capture_link, up capture_link_uptime, 0D 0H 11M capture_link_speed, 10000 capture_bytes, 6868000000 capture_packets, 101000000 capture_bps, 0 capture_pps, 0 capture_name, none capture_active, false";
        let up = Duration::from_secs(11 * 60 + 59);
        let s = StatusFigures {
            uptime: up,
            packets_received: 101000000,
            packets_captured: 101000000,
            bytes_captured: 6867999744,
            bytes_disk: 30809784320,
            link_up: true,
            link_uptime: up,
            link_speed: 10000,
            capture_bytes: 6868000000,
            capture_packets: 101000000,
            // The last capture's name is kept but not shown once it stopped.
            capture_name: Some("cli_capture".into()),
            capture_active: false,
            ..StatusFigures::default()
        };
        assert_eq!(status_text(&s), lines(manual, &KEYS));
        let text = status_text(&s);
        assert!(text.lines().any(|l| l == "capture_active, false"));
    }

    #[test]
    fn start_and_stop_answers_match_the_manual() {
        let t = parse_time("20150620_20:28:55").unwrap();
        assert_eq!(
            ApplianceJson::ok(started_message(t, "cli_capture")).to_body(),
            "{\"Status\":true,\"Str\":\"[Sat Jun 20 20:28:55 2015] successfully started capture [cli_capture]\"}\n"
        );
        let t = parse_time("20150620_20:39:17").unwrap();
        assert_eq!(
            ApplianceJson::ok(stopped_message(t, "cli_capture")).to_body(),
            "{\"Status\":true,\"Str\":\"[Sat Jun 20 20:39:17 2015] successfully stopped capture [cli_capture]\"}\n"
        );
        assert_eq!(
            ApplianceJson::err("quote \" and \\").to_body(),
            "{\"Status\":false,\"Str\":\"quote \\\" and \\\\\"}\n"
        );
    }

    #[test]
    fn list_matches_the_manual() {
        let manual = "Filename , Size Bytes , Packet Count , Date ,Single PCAP Link,File Link, cli_capture_20150620_2028 , 8484028416, 101000000, Sat Jun 20 20:28:56 2015,/pcap/single?StreamName=cli_capture_20150620_2028&,/en.files.html?Fn=view&StreamName=cli_capture_20150620_2028&, manual_capture_cli_20150620_1836 , 84000112640, 1000000000, Sat Jun 20 18:36:12 2015,/pcap/single?StreamName=manual_capture_cli_20150620_1836&,/en.files.html?Fn=view&StreamName=manual_capture_cli_20150620_1836&, manual_capture_20150620_1730 , 262144, 0, Sat Jun 20 17:30:13 2015,/pcap/single?StreamName=manual_capture_20150620_1730&,/en.files.html?Fn=view&StreamName=manual_capture_20150620_1730&,";
        let row = |name: &str, bytes, packets, date: &str| ListRow {
            name: name.into(),
            bytes,
            packets,
            created_ns: parse_time(date).unwrap(),
        };
        let rows = [
            row(
                "cli_capture_20150620_2028",
                8484028416,
                101000000,
                "20150620_20:28:56",
            ),
            row(
                "manual_capture_cli_20150620_1836",
                84000112640,
                1000000000,
                "20150620_18:36:12",
            ),
            row(
                "manual_capture_20150620_1730",
                262144,
                0,
                "20150620_17:30:13",
            ),
        ];
        let want = lines(
            manual,
            &[
                "cli_capture_20150620_2028 ,",
                "manual_capture_cli_20150620_1836 ,",
                "manual_capture_20150620_1730 ,",
            ],
        );
        assert_eq!(list_csv(&rows), want);
    }

    #[test]
    fn view_lists_every_split_in_the_manuals_layout() {
        let n = "manual_capture_cli_20150620_1836";
        let text = view_csv(n);
        let mut it = text.lines();
        assert_eq!(it.next(), Some("SplitMode , Link"));
        assert_eq!(
            it.next(),
            Some(
                "split_1sec , /plain/split?StreamName=manual_capture_cli_20150620_1836&StreamView=split_1sec"
            )
        );
        // Every line the manual shows is there, in the same order.
        let manual = "split_10sec , /plain/split?StreamName=manual_capture_cli_20150620_1836&StreamView=split_10sec split_1min , /plain/split?StreamName=manual_capture_cli_20150620_1836&StreamView=split_1min split_10min , /plain/split?StreamName=manual_capture_cli_20150620_1836&StreamView=split_10min split_15min , /plain/split?StreamName=manual_capture_cli_20150620_1836&StreamView=split_15min split_1hour , /plain/split?StreamName=manual_capture_cli_20150620_1836&StreamView=split_1hour split_1GB , /plain/split?StreamName=manual_capture_cli_20150620_1836&StreamView=split_1GB split_10GB , /plain/split?StreamName=manual_capture_cli_20150620_1836&StreamView=split_10GB split_100GB , /plain/split?StreamName=manual_capture_cli_20150620_1836&StreamView=split_100GB split_1TB , /plain/split?StreamName=manual_capture_cli_20150620_1836&StreamView=split_1TB";
        let want: Vec<String> = lines(manual, &["split_"])
            .lines()
            .map(str::to_owned)
            .collect();
        let got: Vec<&str> = text.lines().collect();
        let mut at = 0;
        for w in &want {
            let pos = got[at..].iter().position(|g| g == w);
            assert!(pos.is_some(), "{w:?} missing or out of order in\n{text}");
            at += pos.unwrap_or(0) + 1;
        }
        assert_eq!(got.len(), 1 + 13);
    }

    #[test]
    fn split_list_matches_the_manual() {
        let manual = "Name , Size Bytes, Packet Count, URL 20150620_18:36:47.780.373.248 , 1193017344, 14202589, /pcap/splittime?StreamName=manual_capture_cli_20150620_1836&Start=1434793007780373366ULL&Stop=1434793008780383914ULL 20150620_18:36:48.780.384.000 , 1193279488, 14205708, /pcap/splittime?StreamName=manual_capture_cli_20150620_1836&Start=1434793008780383914ULL&Stop=1434793009780514262ULL";
        let rows = [
            SplitRow {
                name: "20150620_18:36:47.780.373.248".into(),
                bytes: 1193017344,
                packets: 14202589,
                start_ns: 1434793007780373366,
                stop_ns: 1434793008780383914,
                exact: None,
            },
            SplitRow {
                name: "20150620_18:36:48.780.384.000".into(),
                bytes: 1193279488,
                packets: 14205708,
                start_ns: 1434793008780383914,
                stop_ns: 1434793009780514262,
                exact: None,
            },
        ];
        let want = lines(manual, &["20150620_18:36:4"]);
        assert_eq!(split_csv("manual_capture_cli_20150620_1836", &rows), want);
        let sized = SplitRow {
            exact: Some((View::Size { level: 0 }, 7)),
            ..rows[0].clone()
        };
        assert!(split_url("s", &sized).ends_with("ULL&StreamView=split_1MB&Split=7"));
    }
}
