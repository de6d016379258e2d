//! The forwarding table: peer pairs A <-> B. A packet from A to the capture IP goes to B,
//! one from B goes to A. Each peer belongs to one pair, so the direction of every packet
//! follows from its source address alone and no per-flow state is needed.

use std::collections::HashMap;
use std::net::IpAddr;

/// The capture port's address and subnet (`10.9.0.1/24` or `2001:db8::1/64`). One
/// family per forwarder: its peers must be on the subnet, so of the same family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inline {
    /// The capture IP: the address peers send to; the forwarder answers ARP for it.
    pub ip: IpAddr,
    /// Prefix length of the capture subnet; peers must be on it (they are resolved by ARP
    /// or neighbour discovery).
    pub prefix: u8,
}

impl Inline {
    /// Whether `a` is on the capture subnet.
    pub fn contains(&self, a: IpAddr) -> bool {
        match (self.ip, a) {
            (IpAddr::V4(me), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(a) & mask == u32::from(me) & mask
            }
            (IpAddr::V6(me), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(a) & mask == u128::from(me) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for Inline {
    type Err = TableError;
    fn from_str(s: &str) -> Result<Self, TableError> {
        let bad = || TableError::Inline(s.to_owned());
        let (ip, prefix) = s.split_once('/').ok_or_else(bad)?;
        let ip: IpAddr = ip.trim().parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.trim().parse().map_err(|_| bad())?;
        let usable = match ip {
            IpAddr::V4(v4) => (1..=32).contains(&prefix) && !v4.is_broadcast(),
            IpAddr::V6(v6) => (1..=128).contains(&prefix) && !v6.is_multicast(),
        };
        if !usable || ip.is_unspecified() {
            return Err(bad());
        }
        Ok(Self { ip, prefix })
    }
}

impl std::fmt::Display for Inline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.ip, self.prefix)
    }
}

/// One pair of peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pair {
    /// The left peer (`A` of `A=B`).
    pub a: IpAddr,
    /// The right peer.
    pub b: IpAddr,
    /// The VLAN IDs on which `a` and `b` are reached (`A=B@vlan100`: both on 100, tags
    /// kept; `A=B@vlan100:200`: A's side 100, B's side 200, the outer tag mapped); `None`:
    /// untagged, as is every frame of the pair. Inner (QinQ) tags pass as received.
    pub vlan: Option<(u16, u16)>,
}

impl std::str::FromStr for Pair {
    type Err = TableError;
    fn from_str(s: &str) -> Result<Self, TableError> {
        let bad = || TableError::Pair(s.to_owned());
        let (peers, vlan) = match s.split_once('@') {
            Some((p, v)) => {
                let v = v.trim().strip_prefix("vlan").ok_or_else(bad)?;
                let vid = |x: &str| {
                    x.trim()
                        .parse::<u16>()
                        .ok()
                        .filter(|v| (1..4095).contains(v))
                        .ok_or_else(bad)
                };
                let (va, vb) = match v.split_once(':') {
                    Some((va, vb)) => (vid(va)?, vid(vb)?),
                    None => (vid(v)?, vid(v)?),
                };
                (p, Some((va, vb)))
            }
            None => (s, None),
        };
        let (a, b) = peers.split_once('=').ok_or_else(bad)?;
        Ok(Self {
            a: a.trim().parse().map_err(|_| bad())?,
            b: b.trim().parse().map_err(|_| bad())?,
            vlan,
        })
    }
}

impl std::fmt::Display for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.a, self.b)?;
        match self.vlan {
            Some((va, vb)) if va == vb => write!(f, "@vlan{va}"),
            Some((va, vb)) => write!(f, "@vlan{va}:{vb}"),
            None => Ok(()),
        }
    }
}

/// Which way a packet goes through a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the pair's `a` to its `b`.
    AToB,
    /// From `b` to `a`.
    BToA,
}

/// Why a table or an address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// Not `ADDR/PREFIX`.
    #[error("capture address {0:?} is not ADDR/PREFIX (e.g. 10.9.0.1/24 or 2001:db8::1/64)")]
    Inline(String),
    /// Not `A=B`.
    #[error(
        "forwarding pair {0:?} is not A=B with two IP addresses (e.g. 10.9.0.2=10.9.0.3 or 2001:db8::2=2001:db8::3)"
    )]
    Pair(String),
    /// A peer appears in two pairs or twice in one.
    #[error(
        "peer {0} appears more than once in the forwarding table: each peer belongs to one pair"
    )]
    Duplicate(IpAddr),
    /// A peer is the capture address.
    #[error("peer {0} is the capture address itself")]
    CaptureIp(IpAddr),
    /// A peer is not on the capture subnet.
    #[error(
        "peer {peer} is not on the capture subnet {inline}: peers are reached by ARP or neighbour discovery, so they share its subnet and family"
    )]
    OffSubnet {
        /// The peer.
        peer: IpAddr,
        /// The capture address.
        inline: Inline,
    },
}

/// The pairs, indexed by peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardTable {
    pairs: Vec<Pair>,
    by_peer: HashMap<IpAddr, (usize, Direction)>,
}

impl ForwardTable {
    /// A table of `pairs`, checked against the capture address.
    pub fn new(inline: Inline, pairs: &[Pair]) -> Result<Self, TableError> {
        let mut by_peer = HashMap::new();
        for (i, p) in pairs.iter().enumerate() {
            for (peer, dir) in [(p.a, Direction::AToB), (p.b, Direction::BToA)] {
                if peer == inline.ip {
                    return Err(TableError::CaptureIp(peer));
                }
                if !inline.contains(peer) {
                    return Err(TableError::OffSubnet { peer, inline });
                }
                if by_peer.insert(peer, (i, dir)).is_some() {
                    return Err(TableError::Duplicate(peer));
                }
            }
        }
        Ok(Self {
            pairs: pairs.to_vec(),
            by_peer,
        })
    }

    /// Parses `A=B` strings into a table.
    pub fn parse<S: AsRef<str>>(inline: Inline, pairs: &[S]) -> Result<Self, TableError> {
        let p = pairs
            .iter()
            .map(|s| s.as_ref().parse())
            .collect::<Result<Vec<Pair>, _>>()?;
        Self::new(inline, &p)
    }

    /// Where a packet from `src` goes, and which way that is.
    pub fn route(&self, src: IpAddr) -> Option<(IpAddr, Direction)> {
        let &(i, dir) = self.by_peer.get(&src)?;
        let p = self.pairs[i];
        Some(match dir {
            Direction::AToB => (p.b, dir),
            Direction::BToA => (p.a, dir),
        })
    }

    /// The VLAN ID on which `peer` is reached (`None`: untagged, or not a peer).
    pub fn vlan_of(&self, peer: IpAddr) -> Option<u16> {
        let &(i, dir) = self.by_peer.get(&peer)?;
        let (va, vb) = self.pairs[i].vlan?;
        Some(match dir {
            Direction::AToB => va,
            Direction::BToA => vb,
        })
    }

    /// Whether `a` is a peer.
    pub fn is_peer(&self, a: IpAddr) -> bool {
        self.by_peer.contains_key(&a)
    }

    /// The pairs in the order given.
    pub fn pairs(&self) -> &[Pair] {
        &self.pairs
    }

    /// Every peer.
    pub fn peers(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.pairs.iter().flat_map(|p| [p.a, p.b])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inline() -> Inline {
        "10.9.0.1/24".parse().unwrap()
    }

    #[test]
    fn routes_both_ways_for_several_pairs() {
        let t =
            ForwardTable::parse(inline(), &["10.9.0.2=10.9.0.3", "10.9.0.4 = 10.9.0.5"]).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            t.route(ip("10.9.0.2")),
            Some((ip("10.9.0.3"), Direction::AToB))
        );
        assert_eq!(
            t.route(ip("10.9.0.3")),
            Some((ip("10.9.0.2"), Direction::BToA))
        );
        assert_eq!(
            t.route(ip("10.9.0.5")),
            Some((ip("10.9.0.4"), Direction::BToA))
        );
        assert_eq!(t.route(ip("10.9.0.9")), None);
        assert_eq!(t.pairs().len(), 2);
    }

    #[test]
    fn refuses_bad_tables_with_a_reason() {
        let e = |p: &[&str]| ForwardTable::parse(inline(), p).unwrap_err().to_string();
        assert!(e(&["10.9.0.2=10.9.0.3", "10.9.0.3=10.9.0.4"]).contains("more than once"));
        assert!(e(&["10.9.0.2=10.9.0.2"]).contains("more than once"));
        assert!(e(&["10.9.0.1=10.9.0.3"]).contains("capture address"));
        assert!(e(&["10.9.1.2=10.9.0.3"]).contains("not on the capture subnet"));
        assert!(e(&["10.9.0.2-10.9.0.3"]).contains("A=B"));
        assert!(e(&["10.9.0.2=host"]).contains("A=B"));
        assert!(e(&["2001:db8::2=10.9.0.3"]).contains("not on the capture subnet"));
    }

    #[test]
    fn pairs_carry_their_vlans() {
        let t = ForwardTable::parse(
            inline(),
            &[
                "10.9.0.2=10.9.0.3@vlan100",
                "10.9.0.4=10.9.0.5@vlan100:200",
                "10.9.0.6=10.9.0.7",
            ],
        )
        .unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let v: Vec<_> = ["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"]
            .iter()
            .map(|p| t.vlan_of(ip(p)))
            .collect();
        assert_eq!(v, [Some(100), Some(100), Some(100), Some(200), None]);
        let shown: Vec<String> = t.pairs().iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "10.9.0.2=10.9.0.3@vlan100",
                "10.9.0.4=10.9.0.5@vlan100:200",
                "10.9.0.6=10.9.0.7"
            ]
        );
        for bad in [
            "10.9.0.2=10.9.0.3@100",
            "10.9.0.2=10.9.0.3@vlan0",
            "10.9.0.2=10.9.0.3@vlan4095",
        ] {
            assert!(bad.parse::<Pair>().is_err(), "{bad}");
        }
    }

    #[test]
    fn routes_ipv6_pairs() {
        let i: Inline = "2001:db8::1/64".parse().unwrap();
        let t = ForwardTable::parse(i, &["2001:db8::2 = 2001:db8::3"]).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            t.route(ip("2001:db8::3")),
            Some((ip("2001:db8::2"), Direction::BToA))
        );
        assert!(ForwardTable::parse(i, &["10.9.0.2=10.9.0.3"]).is_err());
    }

    #[test]
    fn parses_the_capture_address() {
        let i: Inline = "10.9.0.1/24".parse().unwrap();
        assert!(i.contains("10.9.0.200".parse().unwrap()));
        assert!(!i.contains("10.9.1.2".parse().unwrap()));
        assert_eq!(i.to_string(), "10.9.0.1/24");
        for bad in ["10.9.0.1", "10.9.0.1/33", "10.9.0.1/0", "x/24", "0.0.0.0/8"] {
            assert!(bad.parse::<Inline>().is_err(), "{bad}");
        }
        let v6: Inline = "2001:db8::1/64".parse().unwrap();
        assert!(v6.contains("2001:db8::ffff:3".parse().unwrap()));
        assert!(!v6.contains("2001:db9::3".parse().unwrap()));
        assert!(!v6.contains("10.9.0.2".parse().unwrap()));
        assert_eq!(v6.to_string(), "2001:db8::1/64");
        for bad in ["2001:db8::1/129", "::/64", "ff02::1/64"] {
            assert!(bad.parse::<Inline>().is_err(), "{bad}");
        }
        let all: Inline = "10.0.0.1/32".parse().unwrap();
        assert!(!all.contains("10.0.0.2".parse().unwrap()));
    }
}
