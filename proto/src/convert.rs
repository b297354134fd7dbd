//! Conversions between wire types and `std::net` / `ipnet`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::Bytes;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::types::{IpAddress, PackedPrefixes, Prefix};

/// A wire value that is not a valid address or prefix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConvertError {
    #[error("address has {0} octets, expected 4 or 16")]
    AddressLength(usize),
    #[error("prefix length {len} is too long for {family}")]
    PrefixLength { len: u32, family: &'static str },
    #[error("missing field {0}")]
    Missing(&'static str),
}

/// Octets of an address, 4 or 16 of them.
pub fn addr_octets(addr: IpAddr) -> Bytes {
    match addr {
        IpAddr::V4(a) => Bytes::copy_from_slice(&a.octets()),
        IpAddr::V6(a) => Bytes::copy_from_slice(&a.octets()),
    }
}

/// Parse 4 or 16 octets as an address.
pub fn addr_from_octets(octets: &[u8]) -> Result<IpAddr, ConvertError> {
    match octets.len() {
        4 => {
            let o: [u8; 4] = octets.try_into().expect("length checked");
            Ok(IpAddr::V4(Ipv4Addr::from(o)))
        }
        16 => {
            let o: [u8; 16] = octets.try_into().expect("length checked");
            Ok(IpAddr::V6(Ipv6Addr::from(o)))
        }
        n => Err(ConvertError::AddressLength(n)),
    }
}

impl From<IpAddr> for IpAddress {
    fn from(addr: IpAddr) -> Self {
        IpAddress {
            octets: addr_octets(addr),
        }
    }
}

impl TryFrom<&IpAddress> for IpAddr {
    type Error = ConvertError;
    fn try_from(a: &IpAddress) -> Result<Self, ConvertError> {
        addr_from_octets(&a.octets)
    }
}

impl From<IpNet> for Prefix {
    fn from(net: IpNet) -> Self {
        Prefix {
            addr: addr_octets(net.network()),
            len: u32::from(net.prefix_len()),
        }
    }
}

impl TryFrom<&Prefix> for IpNet {
    type Error = ConvertError;
    /// Host bits, if any, are cleared.
    fn try_from(p: &Prefix) -> Result<Self, ConvertError> {
        let len = u8::try_from(p.len).unwrap_or(u8::MAX);
        let net = match addr_from_octets(&p.addr)? {
            IpAddr::V4(a) => {
                IpNet::V4(
                    Ipv4Net::new(a, len).map_err(|_| ConvertError::PrefixLength {
                        len: p.len,
                        family: "IPv4",
                    })?,
                )
            }
            IpAddr::V6(a) => {
                IpNet::V6(
                    Ipv6Net::new(a, len).map_err(|_| ConvertError::PrefixLength {
                        len: p.len,
                        family: "IPv6",
                    })?,
                )
            }
        };
        Ok(net.trunc())
    }
}

/// Converts an optional wire address, naming the field when it is missing.
pub fn req_addr(a: Option<&IpAddress>, field: &'static str) -> Result<IpAddr, ConvertError> {
    IpAddr::try_from(a.ok_or(ConvertError::Missing(field))?)
}

/// Converts an optional wire prefix, naming the field when it is missing.
pub fn req_prefix(p: Option<&Prefix>, field: &'static str) -> Result<IpNet, ConvertError> {
    IpNet::try_from(p.ok_or(ConvertError::Missing(field))?)
}

/// Octets of one IPv4 record of [`PackedPrefixes`]: address, then length.
pub const PACKED_V4: usize = 5;
/// Octets of one IPv6 record of [`PackedPrefixes`]: address, then length.
pub const PACKED_V6: usize = 17;

/// Builds a [`PackedPrefixes`] without an allocation per prefix.
#[derive(Debug, Default, Clone)]
pub struct PackedBuilder {
    v4: Vec<u8>,
    v6: Vec<u8>,
}

impl PackedBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an IPv4 prefix given as its address (host order) and length.
    pub fn push_v4(&mut self, addr: u32, len: u8) {
        self.v4.extend_from_slice(&addr.to_be_bytes());
        self.v4.push(len);
    }

    /// Appends an IPv6 prefix given as its address (host order) and length.
    pub fn push_v6(&mut self, addr: u128, len: u8) {
        self.v6.extend_from_slice(&addr.to_be_bytes());
        self.v6.push(len);
    }

    /// Appends a prefix.
    pub fn push(&mut self, net: IpNet) {
        match net {
            IpNet::V4(n) => self.push_v4(u32::from(n.network()), n.prefix_len()),
            IpNet::V6(n) => self.push_v6(u128::from(n.network()), n.prefix_len()),
        }
    }

    /// Number of prefixes appended.
    pub fn len(&self) -> usize {
        self.v4.len() / PACKED_V4 + self.v6.len() / PACKED_V6
    }

    /// Whether nothing was appended.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// The wire message (the buffers move into it, no copy).
    pub fn finish(self) -> PackedPrefixes {
        PackedPrefixes {
            v4: Bytes::from(self.v4),
            v6: Bytes::from(self.v6),
        }
    }
}

/// One decoded record of [`PackedPrefixes`]: family (true: IPv6), address in host order
/// with host bits cleared, length.
pub type RawPrefix = (bool, u128, u8);

fn packed_records(
    octets: &[u8],
    size: usize,
) -> impl Iterator<Item = Result<&[u8], ConvertError>> + '_ {
    let whole = octets.len() / size * size;
    let tail = octets.len() - whole;
    octets[..whole]
        .chunks_exact(size)
        .map(Ok)
        .chain((tail > 0).then_some(Err(ConvertError::AddressLength(tail))))
}

/// Every prefix of a [`PackedPrefixes`] (IPv4 first), as family, address and length;
/// invalid records are errors in their place and do not stop the rest.
pub fn iter_packed(
    p: &PackedPrefixes,
) -> impl Iterator<Item = Result<RawPrefix, ConvertError>> + '_ {
    let v4 = packed_records(&p.v4, PACKED_V4).map(|r| {
        let r = r?;
        let len = r[4];
        if len > 32 {
            return Err(ConvertError::PrefixLength {
                len: u32::from(len),
                family: "IPv4",
            });
        }
        let addr = u32::from_be_bytes([r[0], r[1], r[2], r[3]]);
        let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
        Ok((false, u128::from(addr & mask), len))
    });
    let v6 = packed_records(&p.v6, PACKED_V6).map(|r| {
        let r = r?;
        let len = r[16];
        if len > 128 {
            return Err(ConvertError::PrefixLength {
                len: u32::from(len),
                family: "IPv6",
            });
        }
        let mut a = [0u8; 16];
        a.copy_from_slice(&r[..16]);
        let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
        Ok((true, u128::from_be_bytes(a) & mask, len))
    });
    v4.chain(v6)
}

/// Every prefix of a [`PackedPrefixes`] as `ipnet` (host bits cleared).
pub fn iter_packed_nets(
    p: &PackedPrefixes,
) -> impl Iterator<Item = Result<IpNet, ConvertError>> + '_ {
    iter_packed(p).map(|r| {
        let (v6, addr, len) = r?;
        Ok(if v6 {
            IpNet::V6(Ipv6Net::new(Ipv6Addr::from(addr), len).expect("length checked"))
        } else {
            IpNet::V4(Ipv4Net::new(Ipv4Addr::from(addr as u32), len).expect("length checked"))
        })
    })
}

/// Number of records (valid or not) in a [`PackedPrefixes`].
pub fn packed_len(p: &PackedPrefixes) -> usize {
    p.v4.len().div_ceil(PACKED_V4) + p.v6.len().div_ceil(PACKED_V6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_round_trips_and_clears_host_bits() {
        let net: IpNet = "10.1.2.3/16".parse().unwrap();
        let wire = Prefix::from(net);
        assert_eq!(
            IpNet::try_from(&wire).unwrap(),
            "10.1.0.0/16".parse().unwrap()
        );
        let v6: IpNet = "2001:db8::/32".parse().unwrap();
        assert_eq!(IpNet::try_from(&Prefix::from(v6)).unwrap(), v6);
    }

    #[test]
    fn bad_wire_values_are_errors() {
        let bad = Prefix {
            addr: Bytes::from_static(&[1, 2, 3]),
            len: 8,
        };
        assert_eq!(IpNet::try_from(&bad), Err(ConvertError::AddressLength(3)));
        let long = Prefix {
            addr: Bytes::from_static(&[10, 0, 0, 0]),
            len: 33,
        };
        assert!(matches!(
            IpNet::try_from(&long),
            Err(ConvertError::PrefixLength { len: 33, .. })
        ));
    }

    #[test]
    fn packed_prefixes_round_trip_and_clear_host_bits() {
        let nets: Vec<IpNet> = [
            "10.0.0.0/8",
            "0.0.0.0/0",
            "2001:db8::/32",
            "::/0",
            "192.0.2.1/32",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let mut b = PackedBuilder::new();
        for n in &nets {
            b.push(*n);
        }
        b.push_v4(0x0a01_0203, 16);
        assert_eq!(b.len(), 6);
        let wire = b.finish();
        assert_eq!(packed_len(&wire), 6);
        let back: Vec<IpNet> = iter_packed_nets(&wire).map(Result::unwrap).collect();
        let want: Vec<IpNet> = [
            "10.0.0.0/8",
            "0.0.0.0/0",
            "192.0.2.1/32",
            "10.1.0.0/16",
            "2001:db8::/32",
            "::/0",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        assert_eq!(back, want);
    }

    #[test]
    fn bad_packed_records_are_errors_in_place() {
        let wire = PackedPrefixes {
            v4: Bytes::from_static(&[10, 0, 0, 0, 33, 10, 0, 0, 0, 8, 1, 2]),
            v6: Bytes::new(),
        };
        let r: Vec<_> = iter_packed(&wire).collect();
        assert_eq!(r.len(), 3);
        assert!(matches!(
            r[0],
            Err(ConvertError::PrefixLength { len: 33, .. })
        ));
        assert_eq!(r[1], Ok((false, 0x0a00_0000, 8)));
        assert_eq!(r[2], Err(ConvertError::AddressLength(2)));
        assert_eq!(packed_len(&wire), 3);
    }
}
