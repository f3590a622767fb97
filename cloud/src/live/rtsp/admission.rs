//! Who may hold a connection to the RTSP server (pure: no IO, no clock). Unauthenticated
//! connections and publishers are counted apart, so sockets that never log in cannot keep a real
//! publisher out:
//!
//! - an address (an IPv4 address, an IPv6 /64) holds at most `per_address` unauthenticated
//!   connections: a new one pushes out that address's oldest;
//! - the unauthenticated pool holds at most `unauthenticated`: when full, a new connection pushes out
//!   the oldest connection of an address holding the most (an attacker's flood pushes out its own
//!   sockets, not the Pi that just connected from elsewhere);
//! - a connection that authenticates leaves that pool for the publishers' (at most `publishers`;
//!   when full it is refused, the publishers in it are never pushed out).
//!
//! The handle `T` of each unauthenticated connection (its socket, in the server) is given back
//! when it is pushed out, for the caller to close.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// The pools' sizes.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub unauthenticated: usize,
    pub per_address: usize,
    pub publishers: usize,
}

/// The address a connection is counted under: an IPv4 address, or an IPv6 /64 (one host's
/// share of addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AddressKey(IpAddr);

impl From<IpAddr> for AddressKey {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => AddressKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddressKey(IpAddr::V4(v4)),
                None => {
                    let bits = u128::from(v6) & !((1u128 << 64) - 1);
                    AddressKey(IpAddr::V6(bits.into()))
                }
            },
        }
    }
}

/// What [`Admission::promote`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Promotion {
    /// Now a publisher.
    Promoted,
    /// The publishers' pool is full; the connection is left where it was.
    PublishersFull,
    /// The connection had already been pushed out.
    Evicted,
}

/// The two pools.
#[derive(Debug)]
pub struct Admission<T> {
    limits: Limits,
    /// Unauthenticated connections by id; ids grow with time, so the first is the oldest.
    waiting: BTreeMap<u64, (AddressKey, T)>,
    per_address: HashMap<AddressKey, usize>,
    publishers: usize,
}

impl<T> Admission<T> {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            waiting: BTreeMap::new(),
            per_address: HashMap::new(),
            publishers: 0,
        }
    }

    /// A new unauthenticated connection (`id` above every earlier one); the handles of the
    /// connections it pushes out.
    pub fn admit(&mut self, id: u64, address: AddressKey, handle: T) -> Vec<T> {
        let mut out = Vec::new();
        if self.per_address.get(&address).copied().unwrap_or(0) >= self.limits.per_address {
            out.extend(self.evict_oldest_of(address));
        }
        if self.waiting.len() >= self.limits.unauthenticated {
            out.extend(self.evict_oldest_of_busiest());
        }
        if self.limits.unauthenticated > 0 && self.limits.per_address > 0 {
            self.waiting.insert(id, (address, handle));
            *self.per_address.entry(address).or_default() += 1;
        } else {
            out.push(handle);
        }
        out
    }

    /// `id` authenticated: it moves to the publishers' pool if there is room.
    pub fn promote(&mut self, id: u64) -> Promotion {
        if !self.waiting.contains_key(&id) {
            return Promotion::Evicted;
        }
        if self.publishers >= self.limits.publishers {
            return Promotion::PublishersFull;
        }
        self.remove_waiting(id);
        self.publishers += 1;
        Promotion::Promoted
    }

    /// `id` ended (`promoted`: it was a publisher). Ending a connection pushed out is a no-op.
    pub fn release(&mut self, id: u64, promoted: bool) {
        if promoted {
            self.publishers = self.publishers.saturating_sub(1);
        } else {
            self.remove_waiting(id);
        }
    }

    pub fn unauthenticated(&self) -> usize {
        self.waiting.len()
    }

    pub fn publishers(&self) -> usize {
        self.publishers
    }

    /// The oldest connection of an address holding the most; among several such addresses, the
    /// one whose connection is the oldest (so a newcomer is never the first choice).
    fn evict_oldest_of_busiest(&mut self) -> Option<T> {
        let most = self.per_address.values().copied().max()?;
        let id = self
            .waiting
            .iter()
            .find(|(_, (a, _))| self.per_address.get(a) == Some(&most))
            .map(|(id, _)| *id)?;
        self.remove_waiting(id)
    }

    fn evict_oldest_of(&mut self, address: AddressKey) -> Option<T> {
        let id = self
            .waiting
            .iter()
            .find(|(_, (a, _))| *a == address)
            .map(|(id, _)| *id)?;
        self.remove_waiting(id)
    }

    fn remove_waiting(&mut self, id: u64) -> Option<T> {
        let (address, handle) = self.waiting.remove(&id)?;
        if let Some(n) = self.per_address.get_mut(&address) {
            *n -= 1;
            if *n == 0 {
                self.per_address.remove(&address);
            }
        }
        Some(handle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        unauthenticated: 4,
        per_address: 3,
        publishers: 2,
    };

    fn addr(last: u8) -> AddressKey {
        AddressKey::from(IpAddr::from([10, 0, 0, last]))
    }

    #[test]
    fn an_address_at_its_cap_pushes_out_its_own_oldest_connection() {
        let mut a = Admission::new(LIMITS);
        for id in 1..=3 {
            assert!(a.admit(id, addr(1), id).is_empty());
        }
        assert_eq!(a.admit(4, addr(1), 4), vec![1]);
        assert_eq!(a.unauthenticated(), 3);
    }

    #[test]
    fn a_full_pool_pushes_out_the_oldest_of_the_busiest_address_not_the_newcomer() {
        let mut a = Admission::new(LIMITS);
        a.admit(1, addr(2), 1);
        for id in 2..=4 {
            a.admit(id, addr(1), id);
        }
        // Full (4): the flooding address loses its oldest; the lone 10.0.0.2 stays.
        assert_eq!(a.admit(5, addr(3), 5), vec![2]);
        assert_eq!(a.admit(6, addr(4), 6), vec![3]);
        assert_eq!(a.promote(1), Promotion::Promoted);
        assert_eq!(a.promote(5), Promotion::Promoted);
    }

    #[test]
    fn a_flood_from_one_address_never_pushes_out_a_connection_from_another() {
        let mut a = Admission::new(LIMITS);
        a.admit(0, addr(9), 0);
        for id in 1..1000 {
            let out = a.admit(id, addr(1), id);
            assert!(
                !out.contains(&0),
                "the other address's connection was pushed out"
            );
        }
        assert_eq!(a.promote(0), Promotion::Promoted);
        assert_eq!(a.unauthenticated(), 3);
    }

    #[test]
    fn with_every_address_holding_one_the_oldest_goes_not_the_newcomer() {
        let mut a = Admission::new(LIMITS);
        for id in 1..=4 {
            a.admit(id, addr(10 - id as u8), id);
        }
        assert_eq!(a.admit(5, addr(0), 5), vec![1]);
        assert_eq!(a.admit(6, addr(20), 6), vec![2]);
        assert_eq!(a.promote(5), Promotion::Promoted);
    }

    #[test]
    fn publishers_have_their_own_pool_and_a_full_one_refuses_without_pushing_out() {
        let mut a = Admission::new(LIMITS);
        for id in 1..=3 {
            a.admit(id, addr(id as u8), id);
        }
        assert_eq!(a.promote(1), Promotion::Promoted);
        assert_eq!(a.promote(2), Promotion::Promoted);
        assert_eq!(a.promote(3), Promotion::PublishersFull);
        assert_eq!((a.publishers(), a.unauthenticated()), (2, 1));
        // Unauthenticated newcomers do not count against publishers.
        for id in 10..20 {
            a.admit(id, addr(id as u8), id);
        }
        assert_eq!(a.publishers(), 2);
        a.release(1, true);
        assert_eq!(a.promote(19), Promotion::Promoted);
    }

    #[test]
    fn a_pushed_out_connection_cannot_be_promoted_and_its_release_changes_nothing() {
        let mut a = Admission::new(LIMITS);
        for id in 1..=4 {
            a.admit(id, addr(1), id);
        }
        assert_eq!(a.promote(1), Promotion::Evicted);
        a.release(1, false);
        assert_eq!(a.unauthenticated(), 3);
    }

    #[test]
    fn ipv6_addresses_of_one_slash_64_count_as_one() {
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let other: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(AddressKey::from(one), AddressKey::from(other));
        assert_ne!(AddressKey::from(one), AddressKey::from(elsewhere));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(AddressKey::from(mapped), addr(1));
    }
}
