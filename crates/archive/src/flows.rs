//! Flows for the data lake: a stream's flow records, as Parquet, in a Hive-partitioned
//! tree that Athena, Trino, Spark or DuckDB query without wirecap.
//!
//! ```text
//! PREFIX/flows/probe=PROBE/date=YYYY-MM-DD/hour=HH/STREAM-bNNNNNNNN.parquet
//! ```
//! `probe`, `date` and `hour` (UTC, of the row's `first_ts`) are partition columns: they
//! are in the path, not in the files, as Hive-style readers expect. `NNNNNNNN` is the
//! first flow-index block of the export batch that wrote the object.
//!
//! # One row per flow fragment, and why
//!
//! A row is one fragment of the flow index (`wirecap_store::flows`): one flow's packets
//! within one index block (a block covers at most a minute of packet time or 256 chunks).
//! Blocks never change once written, so a batch of them maps to objects with
//! deterministic names: a retry after a failure, a restart or a `kill -9` writes the same
//! objects again, overwriting them, never a duplicate row. Per-flow rows would have to
//! wait for each flow to end, or be rewritten as it goes on. A flow's totals, as
//! `wirecap flows` lists them, are one `GROUP BY stream, flow_id` away (rows with
//! `proto = 'other'` are the packets not keyed into flows, one row per block: group them
//! by `block` as `wirecap flows` does). Each row's columns mean what the same field of
//! `wirecap flows --format json` means for the fragment alone:
//!
//! | column | type | |
//! |---|---|---|
//! | `stream` | STRING | stored stream name |
//! | `flow_id` | UINT64 | the flow's id in its stream (stream number of its first packet) |
//! | `block` | UINT64 | the fragment's block in the stream's flow index |
//! | `first_ts`, `last_ts` | TIMESTAMP(NANOS, UTC) | the fragment's first and last packet |
//! | `first_ns`, `last_ns` | INT64 | the same, ns since the epoch (for engines without nanosecond timestamps) |
//! | `proto` | STRING | `tcp`, `udp`, `icmp`, …, `arp`, `ether:0xNNNN`, `llc`, `other` |
//! | `ip_proto` | UINT8, null when not IP | |
//! | `ip_version` | UINT8, 4 or 6, null when not IP | |
//! | `ethertype` | UINT16 | |
//! | `vlan` | UINT16, null when untagged | |
//! | `mpls` | UINT32, null without MPLS | |
//! | `src_addr`, `dst_addr` | STRING | IP address, or MAC for non-IP; `src` sent the flow's first packet |
//! | `src_ipv4`, `dst_ipv4` | UINT32, null when not IPv4 | the address as a number, for range tests |
//! | `src_port`, `dst_port` | UINT16, null when not TCP/UDP/SCTP | |
//! | `icmp_type`, `icmp_id` | UINT8 / UINT16, null when not ICMP (id: echo only) | |
//! | `src_packets`, `dst_packets`, `src_bytes`, `dst_bytes`, `packets`, `bytes` | INT64 | wire lengths |
//! | `tcp_flags` | UINT8 | flags of every packet OR'd |
//! | `evicted_early` | BOOLEAN | the writer's flow table was full: later packets form another flow |
//!
//! # When
//!
//! After writeback has archived a batch of a stream's segments and written its manifest,
//! the blocks whose packets all lie in archived segments, and were not exported yet, go
//! up; then the manifest records how many blocks are out (`flows.blocks`) and the objects
//! written (`flows.objects`, what deleting the stream deletes). A closed stream's last
//! blocks go once its `flows.idx` is final. Streams without a flow index have no rows.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use parquet::basic::{Compression, ZstdLevel};
use parquet::data_type::ByteArray;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use wirecap_query::FlowRecord;
use wirecap_store::{FlowIndex, Store};

use crate::Error;
use crate::manifest::Manifest;

/// The tree's top, under the archive's prefix (a probe cannot be named so).
pub const FLOWS_DIR: &str = "flows";

/// Rows of one export batch at most (a whole block is never split): bounds the memory
/// an export takes when a long stream goes out at once (a stream archived before this
/// version, a long outage).
const MAX_ROWS: usize = 200_000;

/// The Parquet schema of a row (see the module doc).
pub const SCHEMA: &str = "message wirecap_flow {
  required binary stream (STRING);
  required int64 flow_id (INTEGER(64,false));
  required int64 block (INTEGER(64,false));
  required int64 first_ts (TIMESTAMP(NANOS,true));
  required int64 last_ts (TIMESTAMP(NANOS,true));
  required int64 first_ns;
  required int64 last_ns;
  required binary proto (STRING);
  optional int32 ip_proto (INTEGER(8,false));
  optional int32 ip_version (INTEGER(8,false));
  required int32 ethertype (INTEGER(16,false));
  optional int32 vlan (INTEGER(16,false));
  optional int32 mpls (INTEGER(32,false));
  required binary src_addr (STRING);
  required binary dst_addr (STRING);
  optional int32 src_ipv4 (INTEGER(32,false));
  optional int32 dst_ipv4 (INTEGER(32,false));
  optional int32 src_port (INTEGER(16,false));
  optional int32 dst_port (INTEGER(16,false));
  optional int32 icmp_type (INTEGER(8,false));
  optional int32 icmp_id (INTEGER(16,false));
  required int64 src_packets;
  required int64 dst_packets;
  required int64 src_bytes;
  required int64 dst_bytes;
  required int64 packets;
  required int64 bytes;
  required int32 tcp_flags (INTEGER(8,false));
  required boolean evicted_early;
}";

/// One column's values, in schema order; `None` is null (optional columns only).
enum Col {
    I64(Vec<i64>),
    I32(Vec<i32>),
    OptI32(Vec<Option<i32>>),
    Str(Vec<ByteArray>),
    Bool(Vec<bool>),
}

/// A row: the fragment's record and its block.
pub struct Row {
    pub block: u64,
    pub record: FlowRecord,
}

fn columns(rows: &[Row]) -> Vec<Col> {
    let i64s = |f: &dyn Fn(&Row) -> u64| Col::I64(rows.iter().map(|r| f(r) as i64).collect());
    let i32s = |f: &dyn Fn(&Row) -> u32| Col::I32(rows.iter().map(|r| f(r) as i32).collect());
    let opt = |f: &dyn Fn(&Row) -> Option<u32>| {
        Col::OptI32(rows.iter().map(|r| f(r).map(|v| v as i32)).collect())
    };
    let strs =
        |f: &dyn Fn(&Row) -> &str| Col::Str(rows.iter().map(|r| ByteArray::from(f(r))).collect());
    let ip = |a: &str| a.parse::<std::net::IpAddr>().ok();
    let v4 = |a: &str| match ip(a) {
        Some(std::net::IpAddr::V4(v)) => Some(u32::from(v)),
        _ => None,
    };
    vec![
        strs(&|r| &r.record.stream),
        i64s(&|r| r.record.id),
        i64s(&|r| r.block),
        i64s(&|r| r.record.first_ns),
        i64s(&|r| r.record.last_ns),
        i64s(&|r| r.record.first_ns),
        i64s(&|r| r.record.last_ns),
        strs(&|r| &r.record.proto),
        opt(&|r| r.record.ip_proto.map(u32::from)),
        opt(&|r| {
            r.record.ip_proto?;
            Some(if ip(&r.record.src_addr)?.is_ipv4() {
                4
            } else {
                6
            })
        }),
        i32s(&|r| u32::from(r.record.ethertype)),
        opt(&|r| r.record.vlan.map(u32::from)),
        opt(&|r| r.record.mpls),
        strs(&|r| &r.record.src_addr),
        strs(&|r| &r.record.dst_addr),
        opt(&|r| r.record.ip_proto.and_then(|_| v4(&r.record.src_addr))),
        opt(&|r| r.record.ip_proto.and_then(|_| v4(&r.record.dst_addr))),
        opt(&|r| r.record.src_port.map(u32::from)),
        opt(&|r| r.record.dst_port.map(u32::from)),
        opt(&|r| r.record.icmp_type.map(u32::from)),
        opt(&|r| r.record.icmp_id.map(u32::from)),
        i64s(&|r| r.record.src_packets),
        i64s(&|r| r.record.dst_packets),
        i64s(&|r| r.record.src_bytes),
        i64s(&|r| r.record.dst_bytes),
        i64s(&|r| r.record.packets),
        i64s(&|r| r.record.bytes),
        i32s(&|r| u32::from(r.record.tcp_flags)),
        Col::Bool(rows.iter().map(|r| r.record.evicted_early).collect()),
    ]
}

/// `rows` as one Parquet file (one row group, zstd pages).
pub fn encode(rows: &[Row]) -> Result<Vec<u8>, Error> {
    use parquet::column::writer::ColumnWriter as W;
    let pq = |e: parquet::errors::ParquetError| Error::Verify(format!("parquet: {e}"));
    let schema = Arc::new(parse_message_type(SCHEMA).map_err(pq)?);
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_created_by(concat!("wirecap ", env!("CARGO_PKG_VERSION")).into())
        .build();
    let mut w = SerializedFileWriter::new(Vec::new(), schema, Arc::new(props)).map_err(pq)?;
    let mut rg = w.next_row_group().map_err(pq)?;
    for col in columns(rows) {
        let mut c = rg
            .next_column()
            .map_err(pq)?
            .ok_or_else(|| Error::Verify("parquet: more columns than the schema".into()))?;
        let r = match (col, c.untyped()) {
            (Col::I64(v), W::Int64ColumnWriter(t)) => t.write_batch(&v, None, None),
            (Col::I32(v), W::Int32ColumnWriter(t)) => t.write_batch(&v, None, None),
            (Col::OptI32(v), W::Int32ColumnWriter(t)) => {
                let defs: Vec<i16> = v.iter().map(|x| i16::from(x.is_some())).collect();
                let vals: Vec<i32> = v.into_iter().flatten().collect();
                t.write_batch(&vals, Some(&defs), None)
            }
            (Col::Str(v), W::ByteArrayColumnWriter(t)) => t.write_batch(&v, None, None),
            (Col::Bool(v), W::BoolColumnWriter(t)) => t.write_batch(&v, None, None),
            _ => {
                return Err(Error::Verify(
                    "parquet: a column's values do not match the schema".into(),
                ));
            }
        };
        r.map_err(pq)?;
        c.close().map_err(pq)?;
    }
    rg.close().map_err(pq)?;
    w.into_inner().map_err(pq)
}

/// What one export batch writes: objects (key under the prefix, bytes) and the
/// manifest's new count of exported blocks; `more` when a batch must follow.
#[derive(Default)]
pub(crate) struct Export {
    pub objects: Vec<(String, Vec<u8>)>,
    pub blocks: u64,
    pub more: bool,
}

/// Where a row whose first packet is at `ns` goes, under the prefix.
pub fn object_key(probe: &str, stream: &str, first_block: u64, ns: u64) -> String {
    let t = wirecap_store::timefmt::rfc3339(ns);
    let (date, hour) = (&t[..10], &t[11..13]);
    format!("{FLOWS_DIR}/probe={probe}/date={date}/hour={hour}/{stream}-b{first_block:08}.parquet")
}

/// The partitions `flows/probe=P/date=D/hour=H/` from hour of `first_ns` to that of
/// `last_ns` (where a stream's objects can be).
pub fn partitions(probe: &str, first_ns: u64, last_ns: u64) -> Vec<String> {
    const HOUR: u64 = 3_600_000_000_000;
    let mut out = Vec::new();
    let mut h = first_ns / HOUR;
    while h <= last_ns / HOUR && out.len() < 24 * 366 * 10 {
        let k = object_key(probe, "x", 0, h * HOUR);
        out.push(k[..k.rfind('/').map_or(0, |i| i + 1)].to_owned());
        h += 1;
    }
    out
}

/// Logical position where the first chunk not in an archived segment starts (`u64::MAX`
/// when every chunk's segment is archived). Segments below `head` were deleted by
/// retention (lost, if never archived): they hold nothing to wait for.
fn archived_end_pos(dir: &Path, m: &Manifest, head: u32) -> u64 {
    use wirecap_store::index::{CHUNK_RECORD_LEN, ChunkRecord};
    let Ok(data) = std::fs::read(dir.join(wirecap_store::layout::CHUNKS)) else {
        return 0;
    };
    data.chunks_exact(CHUNK_RECORD_LEN)
        .filter_map(|r| ChunkRecord::decode(r.try_into().expect("record length")))
        .filter(|r| r.segment >= head && !m.segments.contains_key(&r.segment))
        .map(|r| r.pos)
        .min()
        .unwrap_or(u64::MAX)
}

/// The next export batch of stream `name` after manifest `m` (blocking: reads the index).
pub(crate) fn prepare(
    store: &Store,
    name: &str,
    dir: &Path,
    m: &Manifest,
) -> Result<Export, Error> {
    let done = m.flows.blocks;
    let r = store.open_stream(name)?;
    let Some(ix) = FlowIndex::load(&r)? else {
        return Ok(Export {
            objects: Vec::new(),
            blocks: done,
            more: false,
        });
    };
    let head = store.layout_of(name)?.info.head.segment;
    let bound = archived_end_pos(dir, m, head);
    let from = (done as usize).min(ix.blocks.len());
    let mut to = from;
    let mut rows = 0;
    while let Some(b) = ix.blocks.get(to)
        && b.cover_end_pos <= bound
        && (to == from || rows + b.records as usize <= MAX_ROWS)
    {
        rows += b.records as usize;
        to += 1;
    }
    let mut by_key: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for (i, f) in ix.fragments.iter().enumerate() {
        let block = ix.block_of[i] as usize;
        if !(from..to).contains(&block) {
            continue;
        }
        by_key
            .entry(object_key(&m.probe, name, from as u64, f.first_ts))
            .or_default()
            .push(Row {
                block: block as u64,
                record: FlowRecord::of_fragment(name, i, f),
            });
    }
    let objects = by_key
        .into_iter()
        .map(|(k, rows)| Ok((k, encode(&rows)?)))
        .collect::<Result<_, Error>>()?;
    Ok(Export {
        objects,
        blocks: to as u64,
        more: ix.blocks.get(to).is_some_and(|b| b.cover_end_pos <= bound),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_hive_partitions_by_utc_hour() {
        // 2026-12-04T21:30:00Z
        let ns = 1_796_419_800_000_000_000;
        assert_eq!(
            object_key("p1", "s_20261204_2130", 3, ns),
            "flows/probe=p1/date=2026-12-04/hour=21/s_20261204_2130-b00000003.parquet"
        );
        let p = partitions("p1", ns, ns + 2 * 3_600_000_000_000);
        assert_eq!(
            p,
            [
                "flows/probe=p1/date=2026-12-04/hour=21/",
                "flows/probe=p1/date=2026-12-04/hour=22/",
                "flows/probe=p1/date=2026-12-04/hour=23/"
            ]
        );
    }

    #[test]
    fn rows_encode_with_the_schema() {
        let rec = FlowRecord {
            stream: "s".into(),
            id: 7,
            proto: "tcp".into(),
            ip_proto: Some(6),
            ethertype: 0x800,
            vlan: None,
            mpls: None,
            src_addr: "10.0.0.1".into(),
            dst_addr: "10.0.0.2".into(),
            src_port: Some(1234),
            dst_port: Some(80),
            icmp_type: None,
            icmp_id: None,
            first_ns: 1,
            last_ns: 2,
            src_packets: 3,
            dst_packets: 4,
            src_bytes: 300,
            dst_bytes: 400,
            packets: 7,
            bytes: 700,
            tcp_flags: 0x12,
            evicted_early: false,
            fragments: Vec::new(),
        };
        let b = encode(&[Row {
            block: 0,
            record: rec,
        }])
        .unwrap();
        assert_eq!(&b[..4], b"PAR1");
        assert_eq!(&b[b.len() - 4..], b"PAR1");
        let schema = parse_message_type(SCHEMA).unwrap();
        assert_eq!(schema.get_fields().len(), columns(&[]).len());
    }
}
