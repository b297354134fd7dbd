//! Conversions between wire types and `std::net` / `ipnet`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::Bytes;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::types::{IpAddress, Prefix};

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
}
