//! The neighbour cache: the peers' MAC addresses, learnt by ARP (IPv4) or neighbour
//! discovery (IPv6), the same rules for both: refreshed before they
//! expire, and a bounded queue of packets waiting for a peer to be resolved.
//!
//! Sans-I/O: time comes in as nanoseconds, and [`Neighbours::poll`] says which ARP
//! requests to send (broadcast to resolve, unicast to refresh, as Linux does).

use crate::wire::Mac;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

const NS_PER_SEC: u64 = 1_000_000_000;

/// Timers and bounds of the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighbourConfig {
    /// How long an answer is trusted.
    pub lifetime_ns: u64,
    /// Age after which an entry is refreshed (a unicast request), before it expires.
    pub refresh_after_ns: u64,
    /// Gap between two requests for the same peer.
    pub retry_ns: u64,
    /// Gap between requests for a peer that did not answer its first tries.
    pub slow_retry_ns: u64,
    /// Requests at the fast pace before slowing down.
    pub fast_tries: u32,
    /// Most packets waiting for resolution, all peers together.
    pub queue_limit: usize,
    /// Longest a packet waits for resolution before it is dropped.
    pub queue_timeout_ns: u64,
}

impl Default for NeighbourConfig {
    fn default() -> Self {
        Self {
            lifetime_ns: 60 * NS_PER_SEC,
            refresh_after_ns: 30 * NS_PER_SEC,
            retry_ns: NS_PER_SEC,
            slow_retry_ns: 10 * NS_PER_SEC,
            fast_tries: 3,
            queue_limit: 256,
            queue_timeout_ns: 3 * NS_PER_SEC,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    mac: Option<Mac>,
    /// When the MAC was last confirmed.
    confirmed_ns: u64,
    /// When we last asked, and how many times in a row without an answer.
    asked_ns: Option<u64>,
    tries: u32,
}

/// An ARP request or neighbour solicitation to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Solicit {
    /// Whom to ask about.
    pub ip: IpAddr,
    /// `Some`: unicast to the MAC we have (refresh); `None`: broadcast (resolve).
    pub unicast: Option<Mac>,
}

/// A packet waiting for its next hop to be resolved.
#[derive(Debug, Clone)]
pub struct Waiting<P> {
    /// Next hop.
    pub ip: IpAddr,
    /// When it was queued.
    pub since_ns: u64,
    /// The packet.
    pub packet: P,
}

/// The cache and the waiting queue.
#[derive(Debug, Clone)]
pub struct Neighbours<P> {
    config: NeighbourConfig,
    entries: HashMap<IpAddr, Entry>,
    queue: VecDeque<Waiting<P>>,
}

impl<P> Neighbours<P> {
    /// An empty cache that will resolve `peers`.
    pub fn new(config: NeighbourConfig, peers: impl IntoIterator<Item = IpAddr>) -> Self {
        let mut n = Self {
            config,
            entries: HashMap::new(),
            queue: VecDeque::new(),
        };
        n.set_peers(peers);
        n
    }

    /// Keeps the entries of `peers` (and adds empty ones for new peers); forgets others and
    /// drops what waited for them (returned).
    pub fn set_peers(&mut self, peers: impl IntoIterator<Item = IpAddr>) -> Vec<Waiting<P>> {
        let keep: HashMap<IpAddr, Entry> = peers
            .into_iter()
            .map(|ip| {
                let e = self.entries.get(&ip).copied().unwrap_or(Entry {
                    mac: None,
                    confirmed_ns: 0,
                    asked_ns: None,
                    tries: 0,
                });
                (ip, e)
            })
            .collect();
        self.entries = keep;
        let mut gone = Vec::new();
        for w in std::mem::take(&mut self.queue) {
            if self.entries.contains_key(&w.ip) {
                self.queue.push_back(w);
            } else {
                gone.push(w);
            }
        }
        gone
    }

    /// The MAC of `ip` if known and not expired.
    pub fn lookup(&self, ip: IpAddr, now_ns: u64) -> Option<Mac> {
        let e = self.entries.get(&ip)?;
        let mac = e.mac?;
        (now_ns.saturating_sub(e.confirmed_ns) < self.config.lifetime_ns).then_some(mac)
    }

    /// Records what an ARP packet from `ip` said, if `ip` is a peer. Returns the packets
    /// that waited for it (now sendable), in order.
    pub fn learn(&mut self, ip: IpAddr, mac: Mac, now_ns: u64) -> Option<Vec<Waiting<P>>> {
        let e = self.entries.get_mut(&ip)?;
        e.mac = Some(mac);
        e.confirmed_ns = now_ns;
        e.asked_ns = None;
        e.tries = 0;
        if !self.queue.iter().any(|w| w.ip == ip) {
            return Some(Vec::new());
        }
        let mut ready = Vec::new();
        for w in std::mem::take(&mut self.queue) {
            if w.ip == ip {
                ready.push(w);
            } else {
                self.queue.push_back(w);
            }
        }
        Some(ready)
    }

    /// Queues `packet` until `ip` is resolved; `Err(packet)` when the queue is full.
    pub fn enqueue(&mut self, ip: IpAddr, packet: P, now_ns: u64) -> Result<(), P> {
        if self.queue.len() >= self.config.queue_limit {
            return Err(packet);
        }
        self.queue.push_back(Waiting {
            ip,
            since_ns: now_ns,
            packet,
        });
        // Ask at once rather than at the next poll: the first packet of a flow waits less.
        if let Some(e) = self.entries.get_mut(&ip)
            && e.asked_ns.is_none()
        {
            e.asked_ns = Some(now_ns.saturating_sub(self.config.retry_ns));
        }
        Ok(())
    }

    /// Packets waiting.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// Peers with a usable MAC.
    pub fn resolved(&self, now_ns: u64) -> usize {
        self.entries
            .keys()
            .filter(|ip| self.lookup(**ip, now_ns).is_some())
            .count()
    }

    /// What to do now: the ARP requests due (into `solicit`) and the packets that waited
    /// too long (returned, to be dropped and counted).
    pub fn poll(&mut self, now_ns: u64, solicit: &mut Vec<Solicit>) -> Vec<Waiting<P>> {
        let c = self.config;
        for (ip, e) in &mut self.entries {
            let age = now_ns.saturating_sub(e.confirmed_ns);
            let usable = e.mac.is_some() && age < c.lifetime_ns;
            let waiting = self.queue.iter().any(|w| w.ip == *ip);
            let due_refresh = usable && age >= c.refresh_after_ns;
            if usable && !due_refresh {
                continue;
            }
            let gap = if e.tries < c.fast_tries || waiting {
                c.retry_ns
            } else {
                c.slow_retry_ns
            };
            if e.asked_ns.is_some_and(|t| now_ns.saturating_sub(t) < gap) {
                continue;
            }
            e.asked_ns = Some(now_ns);
            e.tries = e.tries.saturating_add(1);
            solicit.push(Solicit {
                ip: *ip,
                unicast: if usable { e.mac } else { None },
            });
        }
        let mut expired = Vec::new();
        while self
            .queue
            .front()
            .is_some_and(|w| now_ns.saturating_sub(w.since_ns) >= c.queue_timeout_ns)
        {
            expired.extend(self.queue.pop_front());
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = NS_PER_SEC;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn resolves_refreshes_and_expires() {
        let mut n: Neighbours<u32> = Neighbours::new(NeighbourConfig::default(), [ip("10.0.0.2")]);
        let mut out = Vec::new();
        n.poll(S, &mut out);
        assert_eq!(
            out,
            [Solicit {
                ip: ip("10.0.0.2"),
                unicast: None
            }]
        );
        out.clear();
        n.poll(S + S / 2, &mut out);
        assert!(out.is_empty(), "no second request within the retry gap");
        assert!(n.learn(ip("10.0.0.2"), [9; 6], 2 * S).unwrap().is_empty());
        assert_eq!(n.lookup(ip("10.0.0.2"), 3 * S), Some([9; 6]));
        n.poll(20 * S, &mut out);
        assert!(out.is_empty(), "fresh entries are not refreshed");
        n.poll(33 * S, &mut out);
        assert_eq!(
            out,
            [Solicit {
                ip: ip("10.0.0.2"),
                unicast: Some([9; 6])
            }]
        );
        // Still usable while the refresh is outstanding, gone after the lifetime.
        assert_eq!(n.lookup(ip("10.0.0.2"), 40 * S), Some([9; 6]));
        assert_eq!(n.lookup(ip("10.0.0.2"), 62 * S), None);
        assert_eq!(n.resolved(62 * S), 0);
        // Only peers are learnt.
        assert!(n.learn(ip("10.0.0.9"), [1; 6], 63 * S).is_none());
    }

    #[test]
    fn queue_is_bounded_released_in_order_and_times_out() {
        let cfg = NeighbourConfig {
            queue_limit: 3,
            ..NeighbourConfig::default()
        };
        let mut n: Neighbours<u32> = Neighbours::new(cfg, [ip("10.0.0.2"), ip("10.0.0.3")]);
        n.enqueue(ip("10.0.0.2"), 1, S).unwrap();
        n.enqueue(ip("10.0.0.3"), 2, S).unwrap();
        n.enqueue(ip("10.0.0.2"), 3, S).unwrap();
        assert_eq!(n.enqueue(ip("10.0.0.2"), 4, S), Err(4));
        assert_eq!(n.pending(), 3);
        let ready = n.learn(ip("10.0.0.2"), [2; 6], 2 * S).unwrap();
        assert_eq!(ready.iter().map(|w| w.packet).collect::<Vec<_>>(), [1, 3]);
        let mut out = Vec::new();
        assert!(n.poll(3 * S, &mut out).is_empty());
        let expired = n.poll(4 * S, &mut out);
        assert_eq!(expired.iter().map(|w| w.packet).collect::<Vec<_>>(), [2]);
        assert_eq!(n.pending(), 0);
    }

    #[test]
    fn slows_down_for_a_silent_peer() {
        let mut n: Neighbours<u32> = Neighbours::new(NeighbourConfig::default(), [ip("10.0.0.2")]);
        let mut asked = 0;
        for t in 0..60 {
            let mut out = Vec::new();
            n.poll(t * S, &mut out);
            asked += out.len();
        }
        // Three at one a second, then one every ten seconds.
        assert!((7..=9).contains(&asked), "{asked}");
    }
}
