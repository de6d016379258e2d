//! Query planning over the flow index's lookup tables ([`wirecap_store::lut`]): which
//! fragments of a block a filter may need, found by lookups instead of reading every
//! fragment record.
//!
//! # How a filter becomes lookups
//!
//! Both filter languages answer "may a set of packets match?" through the same questions
//! ([`Facts`]: may it hold this net, this port, this IP protocol...). Over one flow
//! fragment, each question's answer follows from the fragment's key — that is what
//! [`crate::flows::FragmentFacts`] answers — except the per-packet ones (lengths, TCP
//! flags), which we leave open. So the planner runs the filter's own conservative test
//! on *symbolic* facts: every question asked is an atom; the test is run again with each
//! atom fixed to `true` and to `false` until every run is decided (a decision tree, at
//! most [`MAX_RUNS`] runs). Each run that says "may match" is a conjunction of atoms and
//! their answers, and the fragments to read are the union, over those runs, of the
//! fragments whose keys give exactly those answers: intersections of lookups for the
//! atoms answered `true`, minus the lookups of those answered `false` (`not` is a
//! complement). The open per-packet atoms constrain nothing.
//!
//! The lookup of an atom is exact: the fragments for which `FragmentFacts` answers
//! `true` (the opaque fragment always among them). So the union holds every fragment the
//! filter may match, and the export still tests `may_match` on each, then the filter on
//! each packet: the answer is the scan's. Because of that re-test a run may also leave
//! out some of its atoms (a superset is picked): where it has a narrow atom answered
//! `true` (host, net, port, VLAN id, label), its broad ones (IP protocol, EtherType —
//! `tcp` holds most flows) are not looked up. Where a run that may match fixes no indexable
//! atom to `true` (`not host H`, `greater 100`, a byte test), the lookups would pick
//! nearly everything: the plan is `None` and blocks are read whole.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;

use wirecap_filter::dissect::{ethertype, ipproto};
use wirecap_filter::summary::Facts;
use wirecap_store::lut::{Section, TableProbe};

use crate::Filter;

/// Most runs of the filter's test a plan may take.
pub const MAX_RUNS: u32 = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Atom {
    Net(IpAddr, u8),
    Port(u8, u16),
    V4Proto(u8),
    V6Proto(u8),
    Ether(u16),
    Vlan(u16),
    Mpls(u32),
    /// Per-packet facts: not in the tables.
    Len(u64, u64),
    Flags(u8),
}

impl Atom {
    fn indexed(&self) -> bool {
        !matches!(self, Self::Len(..) | Self::Flags(_))
    }

    /// Atoms most fragments answer `true` to (`tcp`, `ip`): their lookups read much of
    /// the table and narrow little.
    fn broad(&self) -> bool {
        matches!(self, Self::V4Proto(_) | Self::V6Proto(_) | Self::Ether(_))
    }
}

/// Facts whose answers are fixed by `fixed`; the first question not in it is noted.
struct Symbolic<'a> {
    fixed: &'a [(Atom, bool)],
    unknown: RefCell<Option<Atom>>,
    linktype: u16,
}

impl Symbolic<'_> {
    fn ask(&self, a: Atom) -> bool {
        if let Some(&(_, v)) = self.fixed.iter().find(|(x, _)| *x == a) {
            return v;
        }
        self.unknown.borrow_mut().get_or_insert(a);
        false
    }
}

impl Facts for Symbolic<'_> {
    fn is_empty(&self) -> bool {
        // A fragment holds at least one packet.
        false
    }
    fn linktype(&self) -> Option<u16> {
        Some(self.linktype)
    }
    fn may_have_len_in(&self, lo: u64, hi: u64) -> bool {
        self.ask(Atom::Len(lo, hi))
    }
    fn may_have_ethertype(&self, t: u16) -> bool {
        self.ask(Atom::Ether(t))
    }
    fn may_have_ipv4_proto(&self, p: u8) -> bool {
        self.ask(Atom::V4Proto(p))
    }
    fn may_have_ipv6_proto(&self, p: u8) -> bool {
        self.ask(Atom::V6Proto(p))
    }
    fn may_have_tcp_flags(&self, mask: u8) -> bool {
        self.ask(Atom::Flags(mask))
    }
    fn may_have_net(&self, addr: IpAddr, prefix: u8) -> bool {
        self.ask(Atom::Net(addr, prefix))
    }
    fn may_have_port(&self, proto: u8, port: u16) -> bool {
        self.ask(Atom::Port(proto, port))
    }
    fn may_have_vlan(&self, vid: u16) -> bool {
        self.ask(Atom::Vlan(vid))
    }
    fn may_have_mpls_label(&self, label: u32) -> bool {
        self.ask(Atom::Mpls(label))
    }
}

/// Which fragments a filter needs, as lookups (see the module doc).
#[derive(Clone, Debug)]
pub struct Plan {
    /// Runs that may match: the indexed atoms they fixed, each with at least one `true`.
    runs: Vec<Vec<(Atom, bool)>>,
}

/// The plan of `filter` over fragments of link type `linktype`; `None` when lookups
/// cannot narrow it (read every fragment).
pub fn plan(filter: &Filter, linktype: u16) -> Option<Plan> {
    fn walk(
        filter: &Filter,
        linktype: u16,
        fixed: &mut Vec<(Atom, bool)>,
        runs: &mut Vec<Vec<(Atom, bool)>>,
        budget: &mut u32,
    ) -> Option<()> {
        *budget = budget.checked_sub(1)?;
        let s = Symbolic {
            fixed,
            unknown: RefCell::new(None),
            linktype,
        };
        let may = filter.may_match_facts(&s);
        match s.unknown.into_inner() {
            None if may => {
                let run: Vec<(Atom, bool)> =
                    fixed.iter().filter(|(a, _)| a.indexed()).copied().collect();
                // A run no lookup narrows: every fragment may be needed.
                if !run.iter().any(|&(_, v)| v) {
                    return None;
                }
                runs.push(run);
            }
            None => {}
            Some(a) => {
                for v in [true, false] {
                    fixed.push((a, v));
                    walk(filter, linktype, fixed, runs, budget)?;
                    fixed.pop();
                }
            }
        }
        Some(())
    }
    let mut runs = Vec::new();
    let mut budget = MAX_RUNS;
    walk(filter, linktype, &mut Vec::new(), &mut runs, &mut budget)?;
    Some(Plan { runs })
}

fn union(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut v = Vec::with_capacity(a.len() + b.len());
    v.extend_from_slice(a);
    v.extend_from_slice(b);
    v.sort_unstable();
    v.dedup();
    v
}

fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    a.iter()
        .copied()
        .filter(|x| b.binary_search(x).is_ok())
        .collect()
}

fn minus(a: &[u32], b: &[u32]) -> Vec<u32> {
    a.iter()
        .copied()
        .filter(|x| b.binary_search(x).is_err())
        .collect()
}

/// The fragments of the table's block for which [`crate::flows::FragmentFacts`] answers
/// `true` to atom `a`. `None`: the table is damaged there.
fn lookup(t: &TableProbe, a: Atom, opaque: &[u32]) -> Option<Vec<u32>> {
    let one = |s: Section, k: u128| t.find(s, k, k);
    let found = match a {
        Atom::Net(addr, prefix) => {
            let ips = match addr {
                IpAddr::V4(n) => {
                    let m = u32::MAX
                        .checked_shl(32 - u32::from(prefix.min(32)))
                        .unwrap_or(0);
                    let lo = u32::from(n) & m;
                    t.find(Section::V4, u128::from(lo), u128::from(lo | !m))?
                }
                IpAddr::V6(n) => {
                    let m = u128::MAX
                        .checked_shl(128 - u32::from(prefix.min(128)))
                        .unwrap_or(0);
                    let lo = u128::from(n) & m;
                    t.find(Section::V6, lo, lo | !m)?
                }
            };
            // ARP and RARP carry addresses their keys do not hold.
            let arp = union(
                &one(Section::Ether, u128::from(ethertype::ARP))?,
                &one(Section::Ether, u128::from(ethertype::RARP))?,
            );
            union(&ips, &arp)
        }
        Atom::Port(proto, port) => {
            if matches!(proto, ipproto::TCP | ipproto::UDP | ipproto::SCTP) {
                one(Section::Port, u128::from(proto) << 16 | u128::from(port))?
            } else {
                Vec::new()
            }
        }
        Atom::V4Proto(p) => one(Section::Proto, 4 << 8 | u128::from(p))?,
        Atom::V6Proto(p) => one(Section::Proto, 6 << 8 | u128::from(p))?,
        Atom::Ether(ty) => {
            let mut v = union(
                &one(Section::Ether, u128::from(ty))?,
                &one(Section::Tpid, u128::from(ty))?,
            );
            if ty <= 1500 {
                v = union(&v, &one(Section::Ether, 0)?);
            }
            if ty == ethertype::MPLS || ty == ethertype::MPLS_MC {
                v = union(&v, &t.find(Section::Mpls, 1, u128::MAX)?);
            }
            v
        }
        Atom::Vlan(vid) => one(Section::Vlan, u128::from(vid))?,
        Atom::Mpls(label) => one(Section::Mpls, u128::from(label) + 1)?,
        Atom::Len(..) | Atom::Flags(_) => return None,
    };
    Some(union(&found, opaque))
}

impl Plan {
    /// The fragments (ordinals, sorted) of the table's block the filter may need;
    /// `None`: read the block whole.
    ///
    /// Picking more than needed is allowed (every pick is tested with `may_match`): a
    /// run with a narrow atom answered `true` (a host, net, port, VLAN id or label)
    /// leaves its broad atoms (protocols, EtherTypes) out rather than read their large
    /// lookups.
    pub fn select(&self, t: &TableProbe) -> Option<Vec<u32>> {
        let opaque = t.find(Section::Opaque, 0, 0)?;
        let mut memo: HashMap<Atom, Vec<u32>> = HashMap::new();
        let mut set = |a: Atom| -> Option<Vec<u32>> {
            if let Some(v) = memo.get(&a) {
                return Some(v.clone());
            }
            let v = lookup(t, a, &opaque)?;
            memo.insert(a, v.clone());
            Some(v)
        };
        let mut out: Vec<u32> = Vec::new();
        for run in &self.runs {
            let narrow = run.iter().any(|&(a, v)| v && !a.broad());
            let run: Vec<(Atom, bool)> = run
                .iter()
                .copied()
                .filter(|(a, _)| !(narrow && a.broad()))
                .collect();
            let mut pick: Option<Vec<u32>> = None;
            for &(a, v) in &run {
                if v {
                    let s = set(a)?;
                    pick = Some(match pick {
                        None => s,
                        Some(p) => intersect(&p, &s),
                    });
                }
            }
            let mut pick = pick?;
            for &(a, v) in &run {
                if !v && !pick.is_empty() {
                    pick = minus(&pick, &set(a)?);
                }
            }
            out = union(&out, &pick);
        }
        Some(out)
    }
}
