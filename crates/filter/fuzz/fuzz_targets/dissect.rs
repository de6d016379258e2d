//! Dissection, matching and summaries never panic on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wirecap_filter::dissect::{Link, dissect};
use wirecap_filter::summary::ChunkSummary;
use wirecap_pcap::LinkType;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, pkt)) = data.split_first() else { return };
    let lt = [1u16, 101, 228, 229, 0, 113, 276][usize::from(sel) % 7];
    let d = dissect(Link::from_linktype(lt), pkt);
    assert!(d.network_offset <= pkt.len() && d.transport_offset <= pkt.len());
    let mut s = ChunkSummary::new();
    s.add(LinkType(lt), pkt, pkt.len() as u32);
    assert!(ChunkSummary::from_bytes(&s.to_bytes()).is_ok());
});
