//! OPEN message (RFC 4271 section 4.2) with the Capabilities parameter (RFC 5492).

use std::net::Ipv4Addr;

use super::capability::{Capability, GracefulRestart};
use super::error::{DecodeError, EncodeError};
use super::{AfiSafi, Reader, AS_TRANS};

/// Optional parameter type of Capabilities (RFC 5492).
const PARAM_CAPABILITIES: u8 = 2;

/// OPEN message.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///  +-+-+-+-+-+-+-+-+
///  |    Version    |
///  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///  |     My Autonomous System      |
///  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///  |           Hold Time           |
///  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///  |                         BGP Identifier                        |
///  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///  | Opt Parm Len  |
///  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///  |                                                               |
///  |             Optional Parameters (variable)                    |
///  |                                                               |
///  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// Each optional parameter is (type, length, value); only type 2, Capabilities,
/// is defined. Capabilities from all such parameters are collected in order; on
/// encoding they go in one parameter (as BIRD does), split when over 255 octets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    /// Protocol version (4).
    pub version: u8,
    /// The 2-octet "My Autonomous System" field (AS_TRANS for large ASes).
    pub my_as: u16,
    /// Proposed hold time in seconds.
    pub hold_time: u16,
    /// BGP Identifier.
    pub bgp_id: Ipv4Addr,
    /// Capabilities, in the order received.
    pub capabilities: Vec<Capability>,
}

impl Open {
    /// An OPEN for `asn` (filling My AS with AS_TRANS and adding the 4-octet AS
    /// capability as RFC 6793 requires).
    pub fn new(
        asn: u32,
        hold_time: u16,
        bgp_id: Ipv4Addr,
        mut capabilities: Vec<Capability>,
    ) -> Self {
        if !capabilities
            .iter()
            .any(|c| matches!(c, Capability::FourOctetAs(_)))
        {
            capabilities.push(Capability::FourOctetAs(asn));
        }
        Open {
            version: 4,
            my_as: u16::try_from(asn).unwrap_or(AS_TRANS as u16),
            hold_time,
            bgp_id,
            capabilities,
        }
    }

    /// The speaker's AS: the 4-octet capability's value when present, else My AS.
    pub fn asn(&self) -> u32 {
        self.four_octet_as().unwrap_or(u32::from(self.my_as))
    }

    /// The 4-octet AS capability value, if announced.
    pub fn four_octet_as(&self) -> Option<u32> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::FourOctetAs(a) => Some(*a),
            _ => None,
        })
    }

    /// Families announced with Multiprotocol capabilities.
    pub fn families(&self) -> Vec<AfiSafi> {
        self.capabilities
            .iter()
            .filter_map(|c| match c {
                Capability::Multiprotocol(f) => Some(*f),
                _ => None,
            })
            .collect()
    }

    /// Whether Route Refresh was announced.
    pub fn route_refresh(&self) -> bool {
        self.capabilities.contains(&Capability::RouteRefresh)
    }

    /// The Graceful Restart capability, if announced.
    pub fn graceful_restart(&self) -> Option<&GracefulRestart> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::GracefulRestart(g) => Some(g),
            _ => None,
        })
    }

    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.push(self.version);
        out.extend_from_slice(&self.my_as.to_be_bytes());
        out.extend_from_slice(&self.hold_time.to_be_bytes());
        out.extend_from_slice(&self.bgp_id.octets());
        let len_pos = out.len();
        out.push(0);
        let mut caps = Vec::new();
        let mut params: Vec<u8> = Vec::new();
        for c in &self.capabilities {
            let mut one = Vec::new();
            c.encode(&mut one);
            if one.len() > 255 {
                return Err(EncodeError::FieldTooLong("capability"));
            }
            if caps.len() + one.len() > 255 {
                push_param(&mut params, &caps);
                caps.clear();
            }
            caps.extend_from_slice(&one);
        }
        if !caps.is_empty() {
            push_param(&mut params, &caps);
        }
        out[len_pos] = u8::try_from(params.len())
            .map_err(|_| EncodeError::FieldTooLong("optional parameters"))?;
        out.extend_from_slice(&params);
        Ok(())
    }

    pub(crate) fn decode_body(body: &[u8]) -> Result<Open, DecodeError> {
        let mut r = Reader::new(body);
        let short = DecodeError::MalformedOpen("truncated");
        let version = r.u8().ok_or(short.clone())?;
        if version != 4 {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let my_as = r.u16().ok_or(short.clone())?;
        let hold_time = r.u16().ok_or(short.clone())?;
        let bgp_id = r.ipv4().ok_or(short.clone())?;
        let opt_len = r.u8().ok_or(short.clone())?;
        if r.remaining() != usize::from(opt_len) {
            return Err(DecodeError::MalformedOpen("optional parameter length"));
        }
        let mut capabilities = Vec::new();
        while !r.is_empty() {
            let ptype = r.u8().ok_or(short.clone())?;
            let plen = r.u8().ok_or(short.clone())?;
            let pval = r.take(usize::from(plen)).ok_or(short.clone())?;
            if ptype != PARAM_CAPABILITIES {
                return Err(DecodeError::UnsupportedOptionalParameter(ptype));
            }
            let mut c = Reader::new(pval);
            while !c.is_empty() {
                let code = c.u8().ok_or(short.clone())?;
                let len = c.u8().ok_or(DecodeError::MalformedCapability(code))?;
                let val = c
                    .take(usize::from(len))
                    .ok_or(DecodeError::MalformedCapability(code))?;
                capabilities.push(Capability::decode(code, val)?);
            }
        }
        Ok(Open {
            version,
            my_as,
            hold_time,
            bgp_id,
            capabilities,
        })
    }
}

fn push_param(params: &mut Vec<u8>, caps: &[u8]) {
    params.push(PARAM_CAPABILITIES);
    params.push(caps.len() as u8);
    params.extend_from_slice(caps);
}
