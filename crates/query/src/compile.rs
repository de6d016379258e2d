//! From `--filter` / `--bpf` text to one [`Filter`], and errors that point at the mistake.

use std::fmt;

use wirecap_filter::summary::ChunkSummary;
use wirecap_filter::{CompileOptions, Date, ErrorKind, FilterError, LinkType};

/// One or two compiled filters that must all match (`--filter X --bpf Y` is `X and Y`).
#[derive(Clone, Debug)]
pub struct Filter {
    parts: Vec<wirecap_filter::Filter>,
}

impl Filter {
    /// A filter of one compiled expression.
    pub fn new(f: wirecap_filter::Filter) -> Self {
        Self { parts: vec![f] }
    }

    /// True when the packet matches every part.
    #[inline]
    pub fn matches(&self, ts_ns: u64, orig_len: u32, data: &[u8]) -> bool {
        self.parts.iter().all(|f| f.matches(ts_ns, orig_len, data))
    }

    /// False only when no packet of the chunk whose stored summary is `summary` can
    /// match. A summary this build cannot read (another length or version) may match.
    pub fn may_match(&self, summary: &[u8]) -> bool {
        match ChunkSummary::from_bytes(summary) {
            Ok(s) => self.parts.iter().all(|f| f.may_match(&s)),
            Err(_) => true,
        }
    }

    /// False only when no packet with the given facts can match (a flow of the flow
    /// index, see [`crate::flows`]; a chunk summary goes through [`Self::may_match`]).
    pub fn may_match_facts(&self, facts: &dyn wirecap_filter::summary::Facts) -> bool {
        self.parts.iter().all(|f| f.may_match(facts))
    }

    /// The filter as text: the source of each part, joined by `and`.
    pub fn describe(&self) -> String {
        self.parts
            .iter()
            .map(|f| match f {
                wirecap_filter::Filter::Bpf(b) => format!("bpf({})", b.expr()),
                wirecap_filter::Filter::Appliance(a) => format!("filter({})", a.source()),
            })
            .collect::<Vec<_>>()
            .join(" and ")
    }
}

/// "Today" (UTC) for time-of-day-only `frame.time` values, from ns since the epoch.
pub fn today_utc(now_ns: u64) -> Date {
    Date::from_days_since_epoch((now_ns / 86_400_000_000_000) as i64)
}

/// A filter that did not compile: which option it came from, why, and where.
#[derive(Debug, Clone)]
pub struct CompileError {
    /// `--filter` / `--bpf` (or the query parameter's name).
    pub option: &'static str,
    pub error: FilterError,
    /// Byte offset of the mistake: the filter's own for the appliance language; for
    /// tcpdump syntax (libpcap reports no position) the first token after which the
    /// expression can no longer be completed.
    pub offset: Option<usize>,
}

impl CompileError {
    /// 1-based column (in characters) of the mistake, when known.
    pub fn column(&self) -> Option<usize> {
        let input = self.error.input();
        self.offset
            .map(|o| input[..o.min(input.len())].chars().count() + 1)
    }

    /// Why, without the position.
    pub fn message(&self) -> &str {
        self.error.message()
    }
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.error.kind() != ErrorKind::Bpf {
            // The filter crate renders its own caret.
            return write!(f, "{}: {}", self.option, self.error);
        }
        let input = self.error.input();
        let Some(offset) = self.offset else {
            return write!(f, "{}: {} in `{input}`", self.option, self.error.message());
        };
        let line_start = input[..offset].rfind('\n').map_or(0, |i| i + 1);
        let line_end = input[offset..]
            .find('\n')
            .map_or(input.len(), |i| offset + i);
        let col = input[line_start..offset].chars().count();
        write!(
            f,
            "{}: {} (tcpdump syntax, column {})\n  {}\n  {}^",
            self.option,
            self.error.message(),
            col + 1,
            &input[line_start..line_end],
            " ".repeat(col)
        )
    }
}

impl std::error::Error for CompileError {}

/// Compiles the appliance-language `filter` and the tcpdump expression `bpf` for packets
/// of link type `link`; when both are given a packet must match both. Blank text counts
/// as not given. `Ok(None)`: no filter at all.
pub fn compile(
    filter: Option<&str>,
    bpf: Option<&str>,
    link: LinkType,
    today: Date,
) -> Result<Option<Filter>, CompileError> {
    compile_named(filter, bpf, link, today, ("--filter", "--bpf"))
}

/// [`compile`] with the names the errors give the two inputs (for HTTP: `Filter`,
/// `FilterBPF`).
pub fn compile_named(
    filter: Option<&str>,
    bpf: Option<&str>,
    link: LinkType,
    today: Date,
    names: (&'static str, &'static str),
) -> Result<Option<Filter>, CompileError> {
    let mut parts = Vec::new();
    if let Some(text) = filter.filter(|s| !s.trim().is_empty()) {
        let f = wirecap_filter::Filter::appliance(text, link, &CompileOptions::new(today))
            .map_err(|e| CompileError {
                option: names.0,
                offset: e.offset(),
                error: e,
            })?;
        parts.push(f);
    }
    if let Some(text) = bpf.filter(|s| !s.trim().is_empty()) {
        let f = wirecap_filter::Filter::bpf(text, link).map_err(|e| CompileError {
            option: names.1,
            offset: locate_bpf_error(text, link),
            error: e,
        })?;
        parts.push(f);
    }
    Ok((!parts.is_empty()).then_some(Filter { parts }))
}

/// Start offsets of the tokens of a tcpdump expression (words, numbers and addresses,
/// each bracket, runs of operator characters).
fn token_starts(expr: &str) -> Vec<(usize, usize)> {
    let b = expr.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let word = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'.' | b':' | b'_' | b'/' | b'\\');
    let op = |c: u8| {
        matches!(
            c,
            b'=' | b'!' | b'<' | b'>' | b'&' | b'|' | b'+' | b'-' | b'*' | b'%' | b'^'
        )
    };
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if word(c) || !c.is_ascii() {
            while i < b.len() && (word(b[i]) || !b[i].is_ascii()) {
                i += 1;
            }
        } else if op(c) {
            while i < b.len() && op(b[i]) {
                i += 1;
            }
        } else {
            i += 1;
        }
        out.push((start, i));
    }
    out
}

/// Where a tcpdump expression goes wrong, found by asking libpcap: the start of the first
/// token after which no simple completion compiles. libpcap only says "syntax error"
/// (or names a bad host or port), never where; this points at the likely culprit.
pub(crate) fn locate_bpf_error(expr: &str, link: LinkType) -> Option<usize> {
    const COMPLETIONS: [&str; 12] = [
        "", " 1", " 1.2.3.4", " ip", ")", " 1)", "))", " 1))", "] == 1", " 1] == 1", " 1 == 1",
        " and ip",
    ];
    let tokens = token_starts(expr);
    if tokens.len() > 64 {
        return None;
    }
    let compiles = |s: &str| wirecap_filter::Filter::bpf(s, link).is_ok();
    for &(start, end) in &tokens {
        let prefix = &expr[..end];
        if !COMPLETIONS
            .iter()
            .any(|c| compiles(&format!("{prefix}{c}")))
        {
            return Some(start);
        }
    }
    // Every prefix can be completed: the expression stops too early.
    Some(expr.trim_end().len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> Date {
        Date::new(2025, 1, 1).unwrap()
    }

    #[test]
    fn both_languages_are_anded() {
        let f = compile(
            Some("ipv4.proto == tcp"),
            Some("port 80"),
            LinkType::ETHERNET,
            today(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(f.describe(), "filter(ipv4.proto == tcp) and bpf(port 80)");
        assert!(
            compile(None, Some("  "), LinkType::ETHERNET, today())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn errors_point_at_the_column() {
        let e = compile(Some("x: tcp.prot == 80"), None, LinkType::ETHERNET, today()).unwrap_err();
        assert_eq!(e.column(), Some(4));
        assert!(e.to_string().starts_with("--filter: "), "{e}");
        assert!(e.to_string().contains("\n     ^"), "{e}");

        let e = compile(
            None,
            Some("tcp and port 80 xx 3"),
            LinkType::ETHERNET,
            today(),
        )
        .unwrap_err();
        assert_eq!(e.option, "--bpf");
        assert_eq!(e.offset, Some(16), "{e}");
        let text = e.to_string();
        assert!(text.contains("column 17"), "{text}");
        assert!(
            text.ends_with("\n  tcp and port 80 xx 3\n                  ^"),
            "{text}"
        );

        let e = compile(None, Some("tcp and"), LinkType::ETHERNET, today()).unwrap_err();
        assert_eq!(e.offset, Some(7));
        let e = compile(
            None,
            Some("host 10.1.2.3 and (port 80"),
            LinkType::ETHERNET,
            today(),
        )
        .unwrap_err();
        assert_eq!(e.offset, Some(26));
    }
}
