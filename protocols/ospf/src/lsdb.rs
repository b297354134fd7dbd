//! The link-state database: area-scoped LSAs per area, AS-scoped (type 5) LSAs once, and the
//! LSA comparison of RFC 2328 13.1.
//!
//! Time is passed in as milliseconds on a monotonic clock; ages are derived from the age at
//! installation and the time since.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::consts::{MAX_AGE, MAX_AGE_DIFF};
use crate::packet::lsa::{LSA_EXTERNAL, LSA_SUMMARY_ASBR};
use crate::packet::{Lsa, LsaBody, LsaHeader, LsaKey};
use crate::AreaId;

/// Which of two instances is more recent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Recency {
    /// The first is newer.
    Newer,
    /// The first is older.
    Older,
    /// Same instance.
    Same,
}

/// RFC 2328 13.1: is `a` newer than, older than, or the same instance as `b`? Ages must be
/// current.
pub fn compare(a: &LsaHeader, b: &LsaHeader) -> Recency {
    use std::cmp::Ordering::*;
    let by = |o| match o {
        Greater => Recency::Newer,
        Less => Recency::Older,
        Equal => Recency::Same,
    };
    if a.seq != b.seq {
        return by(a.seq.cmp(&b.seq));
    }
    if a.checksum != b.checksum {
        return by(a.checksum.cmp(&b.checksum));
    }
    match (a.is_maxage(), b.is_maxage()) {
        (true, false) => return Recency::Newer,
        (false, true) => return Recency::Older,
        _ => {}
    }
    if a.age.abs_diff(b.age) > MAX_AGE_DIFF {
        // The younger one is newer.
        return by(b.age.cmp(&a.age));
    }
    Recency::Same
}

/// Where an LSA lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Scope {
    /// Area-scoped (types 1-4 and 7).
    Area(AreaId),
    /// AS-scoped (type 5).
    As,
}

impl Scope {
    /// The scope of an LSA of `ls_type` received in `area`.
    pub fn of(area: AreaId, ls_type: u8) -> Scope {
        if ls_type == LSA_EXTERNAL {
            Scope::As
        } else {
            Scope::Area(area)
        }
    }
}

/// One installed LSA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The LSA, shared with retransmission lists and packets being built.
    pub lsa: Arc<Lsa>,
    /// When it was installed (ms).
    pub installed_at: u64,
    /// Its age when installed (s).
    pub age_at_install: u16,
    /// Installed from flooding (MinLSArrival applies) rather than originated by us.
    pub from_flooding: bool,
}

impl Entry {
    /// The LSA's age now (capped at MaxAge).
    pub fn age(&self, now: u64) -> u16 {
        if self.age_at_install >= MAX_AGE {
            return MAX_AGE;
        }
        let elapsed = now.saturating_sub(self.installed_at) / 1000;
        (u64::from(self.age_at_install) + elapsed).min(u64::from(MAX_AGE)) as u16
    }

    /// Installed from flooding less than MinLSArrival ago (13 step 5a).
    pub fn within_min_ls_arrival(&self, now: u64) -> bool {
        self.from_flooding
            && now.saturating_sub(self.installed_at)
                < u64::from(crate::consts::MIN_LS_ARRIVAL) * 1000
    }

    /// The header with the current age.
    pub fn header(&self, now: u64) -> LsaHeader {
        let mut h = self.lsa.header;
        h.age = self.age(now);
        h
    }
}

/// What [`Lsdb::install`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Installed {
    /// The contents differ from the previous instance (13.2): routes must be recalculated.
    pub contents_changed: bool,
}

fn same_contents(a: &Lsa, b: &Lsa) -> bool {
    a.header.options == b.header.options
        && a.header.is_maxage() == b.header.is_maxage()
        && a.header.length == b.header.length
        && a.body == b.body
}

/// The link-state database of one OSPF instance.
#[derive(Debug, Clone, Default)]
pub struct Lsdb {
    areas: BTreeMap<AreaId, BTreeMap<LsaKey, Entry>>,
    external: BTreeMap<LsaKey, Entry>,
}

impl Lsdb {
    /// An empty database.
    pub fn new() -> Self {
        Self::default()
    }

    fn table(&self, scope: Scope) -> Option<&BTreeMap<LsaKey, Entry>> {
        match scope {
            Scope::Area(a) => self.areas.get(&a),
            Scope::As => Some(&self.external),
        }
    }

    fn table_mut(&mut self, scope: Scope) -> &mut BTreeMap<LsaKey, Entry> {
        match scope {
            Scope::Area(a) => self.areas.entry(a).or_default(),
            Scope::As => &mut self.external,
        }
    }

    /// Looks an LSA up.
    pub fn get(&self, scope: Scope, key: &LsaKey) -> Option<&Entry> {
        self.table(scope)?.get(key)
    }

    /// Installs an LSA (RFC 2328 13.2), replacing any previous instance.
    pub fn install(&mut self, scope: Scope, lsa: Lsa, now: u64, from_flooding: bool) -> Installed {
        let key = lsa.key();
        let contents_changed = self
            .get(scope, &key)
            .is_none_or(|o| !same_contents(&o.lsa, &lsa));
        let entry = Entry {
            age_at_install: lsa.header.age,
            lsa: Arc::new(lsa),
            installed_at: now,
            from_flooding,
        };
        self.table_mut(scope).insert(key, entry);
        Installed { contents_changed }
    }

    /// Removes an LSA (a flushed MaxAge LSA no longer on any retransmission list).
    pub fn remove(&mut self, scope: Scope, key: &LsaKey) -> Option<Entry> {
        self.table_mut(scope).remove(key)
    }

    /// LSAs of an area (types 1-4, 7), in key order.
    pub fn area(&self, area: AreaId) -> impl Iterator<Item = (&LsaKey, &Entry)> {
        self.areas.get(&area).into_iter().flatten()
    }

    /// AS-external LSAs.
    pub fn externals(&self) -> impl Iterator<Item = (&LsaKey, &Entry)> {
        self.external.iter()
    }

    /// Areas with a database.
    pub fn area_ids(&self) -> impl Iterator<Item = AreaId> + '_ {
        self.areas.keys().copied()
    }

    /// Headers to describe to a neighbor in `area` entering Exchange (10.3): the area's LSAs
    /// and, unless the area is stub, the AS-external ones; MaxAge LSAs are left out (the
    /// caller puts them on the retransmission list instead).
    pub fn summary(&self, area: AreaId, stub: bool, now: u64) -> Vec<LsaHeader> {
        let ext = (!stub)
            .then_some(self.external.iter())
            .into_iter()
            .flatten();
        self.area(area)
            .filter(|(k, _)| !(stub && k.ls_type == LSA_SUMMARY_ASBR))
            .chain(ext)
            .map(|(_, e)| e.header(now))
            .filter(|h| !h.is_maxage())
            .collect()
    }

    /// LSAs that have reached MaxAge by `now` (14): to be flooded and then removed.
    pub fn maxaged(&self, now: u64) -> Vec<(Scope, LsaKey)> {
        let areas = self
            .areas
            .iter()
            .flat_map(|(a, t)| t.iter().map(move |(k, e)| (Scope::Area(*a), k, e)));
        let ext = self.external.iter().map(|(k, e)| (Scope::As, k, e));
        areas
            .chain(ext)
            .filter(|(_, _, e)| e.age(now) >= MAX_AGE)
            .map(|(s, k, _)| (s, *k))
            .collect()
    }

    /// Sets an LSA's age to MaxAge in place (premature aging, 14.1); returns the flushed LSA
    /// to flood.
    pub fn flush(&mut self, scope: Scope, key: &LsaKey, now: u64) -> Option<Arc<Lsa>> {
        let e = self.table_mut(scope).get_mut(key)?;
        let mut lsa = (*e.lsa).clone();
        lsa.header.age = MAX_AGE;
        e.lsa = Arc::new(lsa);
        e.age_at_install = MAX_AGE;
        e.installed_at = now;
        Some(e.lsa.clone())
    }

    /// Number of LSAs stored.
    pub fn len(&self) -> usize {
        self.areas.values().map(BTreeMap::len).sum::<usize>() + self.external.len()
    }

    /// Whether the database is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A MaxAge LSA may leave the database once no retransmission list holds it and no neighbor
/// is in Exchange or Loading (RFC 2328 14).
pub fn maxage_removable(on_any_retransmission_list: bool, any_nbr_exchanging: bool) -> bool {
    !on_any_retransmission_list && !any_nbr_exchanging
}

/// Area view of the database for [`crate::neighbor::DbExchange`].
pub struct AreaDbView<'a> {
    /// The database.
    pub db: &'a Lsdb,
    /// Area of the interface.
    pub area: AreaId,
    /// Area is stub or NSSA.
    pub stub: bool,
    /// Now (ms).
    pub now: u64,
}

impl crate::neighbor::DbView for AreaDbView<'_> {
    fn summary(&self) -> Vec<LsaHeader> {
        self.db.summary(self.area, self.stub, self.now)
    }

    fn lookup(&self, key: &LsaKey) -> Option<LsaHeader> {
        self.db
            .get(Scope::of(self.area, key.ls_type), key)
            .map(|e| e.header(self.now))
    }
}

/// Whether an LSA body is understood (unknown types are not flooded by this implementation).
pub fn is_known(lsa: &Lsa) -> bool {
    !matches!(lsa.body, LsaBody::Unknown(_))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::lsa::{options, NetworkLsa, LSA_NETWORK};
    use std::net::Ipv4Addr;

    fn h(seq: i32, checksum: u16, age: u16) -> LsaHeader {
        LsaHeader {
            age,
            options: 0,
            ls_type: 1,
            lsid: Ipv4Addr::new(1, 1, 1, 1),
            adv_router: Ipv4Addr::new(1, 1, 1, 1),
            seq,
            checksum,
            length: 24,
        }
    }

    #[test]
    fn comparison_follows_13_1() {
        assert_eq!(compare(&h(5, 1, 0), &h(4, 9, 0)), Recency::Newer);
        // Sequence numbers are signed: 0x80000001 is the oldest.
        assert_eq!(compare(&h(i32::MIN + 1, 1, 0), &h(0, 1, 0)), Recency::Older);
        assert_eq!(compare(&h(5, 2, 0), &h(5, 1, 0)), Recency::Newer);
        assert_eq!(compare(&h(5, 1, MAX_AGE), &h(5, 1, 10)), Recency::Newer);
        assert_eq!(compare(&h(5, 1, 10), &h(5, 1, MAX_AGE)), Recency::Older);
        assert_eq!(compare(&h(5, 1, 10), &h(5, 1, 1000)), Recency::Newer);
        assert_eq!(compare(&h(5, 1, 10), &h(5, 1, 900)), Recency::Same);
        assert_eq!(compare(&h(5, 1, 10), &h(5, 1, 11)), Recency::Same);
    }

    fn net(attached: u8, seq: i32) -> Lsa {
        Lsa::new(
            options::E,
            LSA_NETWORK,
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(1, 1, 1, 1),
            seq,
            LsaBody::Network(NetworkLsa {
                mask: Ipv4Addr::new(255, 255, 255, 0),
                attached: (1..=attached).map(|i| Ipv4Addr::new(i, i, i, i)).collect(),
            }),
        )
    }

    #[test]
    fn install_reports_content_changes_only() {
        let mut db = Lsdb::new();
        let s = Scope::Area(Ipv4Addr::UNSPECIFIED);
        assert!(db.install(s, net(2, 1), 0, true).contents_changed);
        assert!(!db.install(s, net(2, 2), 0, true).contents_changed);
        assert!(db.install(s, net(3, 3), 0, true).contents_changed);
        assert_eq!(db.len(), 1);
    }

    #[test]
    fn ages_advance_and_maxage_is_found_and_flushed() {
        let mut db = Lsdb::new();
        let s = Scope::Area(Ipv4Addr::UNSPECIFIED);
        let mut l = net(2, 1);
        l.header.age = MAX_AGE - 10;
        let key = l.key();
        db.install(s, l, 1_000, true);
        assert_eq!(db.get(s, &key).unwrap().age(6_000), MAX_AGE - 5);
        assert!(db.maxaged(10_999).is_empty());
        assert_eq!(db.maxaged(11_000), vec![(s, key)]);
        // Summary for database exchange leaves MaxAge LSAs out.
        assert!(db.summary(Ipv4Addr::UNSPECIFIED, false, 11_000).is_empty());
        assert_eq!(db.summary(Ipv4Addr::UNSPECIFIED, false, 0).len(), 1);
        let f = db.flush(s, &key, 0).unwrap();
        assert!(f.header.is_maxage());
        assert!(maxage_removable(false, false));
        assert!(!maxage_removable(true, false));
        assert!(!maxage_removable(false, true));
    }
}
