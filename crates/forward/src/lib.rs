//! wirecap's inline L3 forwarder, the "bump in the wire" of the appliance manual: where
//! there is no SPAN port or tap (a cloud network is layer 3 only), host A sends to the
//! capture port's IP, the appliance relays to host B with the capture IP as the source,
//! B's replies go back to A the same way, and a capture records the traffic.
//!
//! ```text
//!            ┌──────────── afpacket (the only I/O, the only unsafe) ─────────────┐
//!  wire ───► │ TPACKET_V3 RX ring ─► Forwarder::receive ─► PACKET_TX_RING ─► sendto (one per batch)
//!            │                          │    ▲                                    │
//!            │                          │    └─ Forwarder::poll (ARP timers)      │
//!            └──────────────────────────┼─────────────────────────────────────────┘
//!                                       └─► Recorder ─► tap (bounded queue) ─► capture pipeline
//! ```
//!
//! What it owns: the address rewrite of IPv4 and IPv6 packets, fragments and the packets
//! ICMP errors quote ([`rewrite`]), VLAN tags per pair (keep or map, [`table`]), software segmentation of TCP super-packets
//! ([`segment`]), the forwarding table ([`table`]),
//! the neighbour cache ([`neighbour`]), the forwarder's own CPU ([`cpu`]), the forwarder's decisions and counters
//! ([`forwarder`], sans-I/O, unit tested without sockets), the AF_PACKET edge
//! ([`afpacket`]) and the tap into the capture pipeline ([`tap`]).
//!
//! What it never does: touch the store (records go to the capture pipeline), route by a
//! kernel table (peers are on the capture subnet and resolved by ARP or IPv6 neighbour
//! discovery), reassemble
//! fragments, keep per-flow state, or drop a packet without counting why. Header layouts
//! and the Internet checksum are `wirecap-wire`'s ([`wire`], [`checksum`]); the
//! TPACKET_V3 block walk and the ring's system calls are `wirecap-capture`'s
//! (`ring::block::RawPackets`, `ring::sys`).

pub mod afpacket;
pub mod cpu;
pub use wirecap_wire::{self as wire, checksum};
pub mod forwarder;
pub mod neighbour;
pub mod rewrite;
pub mod segment;
pub mod table;
pub mod tap;

pub use forwarder::{
    CaptureMode, DropReason, Forwarder, ForwarderConfig, Received, Recorder, Stats, Transmit,
};
pub use table::{Direction, ForwardTable, Inline, Pair, TableError};
