//! Capabilities advertised in OPEN (RFC 5492).

use super::error::DecodeError;
use super::{Afi, AfiSafi, Reader, Safi};

/// Capability codes.
pub mod code {
    /// Multiprotocol Extensions (RFC 4760).
    pub const MULTIPROTOCOL: u8 = 1;
    /// Route Refresh (RFC 2918).
    pub const ROUTE_REFRESH: u8 = 2;
    /// Graceful Restart (RFC 4724).
    pub const GRACEFUL_RESTART: u8 = 64;
    /// 4-octet AS number (RFC 6793).
    pub const FOUR_OCTET_AS: u8 = 65;
}

/// One family in a Graceful Restart capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GracefulRestartFamily {
    /// The family.
    pub afi_safi: AfiSafi,
    /// Per-family flags; bit 0x80 is "forwarding state preserved".
    pub flags: u8,
}

/// A Graceful Restart capability (RFC 4724 section 3).
///
/// ```text
///  +--------------------------------------------------+
///  | Restart Flags (4 bits)                           |
///  +--------------------------------------------------+
///  | Restart Time in seconds (12 bits)                |
///  +--------------------------------------------------+
///  | Address Family Identifier (16 bits)              |
///  +--------------------------------------------------+
///  | Subsequent Address Family Identifier (8 bits)    |
///  +--------------------------------------------------+
///  | Flags for Address Family (8 bits)                |
///  +--------------------------------------------------+
///  | ...                                              |
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GracefulRestart {
    /// The 4 restart flag bits (0x8 = Restart State, 0x4 = Notification, RFC 8538).
    pub flags: u8,
    /// Restart time in seconds (12 bits).
    pub restart_time: u16,
    /// Families whose state is preserved.
    pub families: Vec<GracefulRestartFamily>,
}

impl GracefulRestart {
    /// The Restart State (R) bit: the sender has restarted.
    pub fn restarting(&self) -> bool {
        self.flags & 0x8 != 0
    }
}

/// A capability (RFC 5492 section 4: code, length, value).
///
/// ```text
///  +------------------------------+
///  | Capability Code (1 octet)    |
///  +------------------------------+
///  | Capability Length (1 octet)  |
///  +------------------------------+
///  | Capability Value (variable)  |
///  ~                              ~
///  +------------------------------+
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Capability {
    /// Multiprotocol Extensions for one family (RFC 4760 section 8).
    Multiprotocol(AfiSafi),
    /// Route Refresh (RFC 2918).
    RouteRefresh,
    /// 4-octet AS number, carrying the speaker's AS (RFC 6793).
    FourOctetAs(u32),
    /// Graceful Restart (RFC 4724).
    GracefulRestart(GracefulRestart),
    /// Any other capability, kept raw.
    Unknown {
        /// Capability code.
        code: u8,
        /// Value octets.
        value: Vec<u8>,
    },
}

impl Capability {
    /// Appends code, length and value.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0, 0]);
        let c = match self {
            Capability::Multiprotocol(f) => {
                out.extend_from_slice(&f.afi.0.to_be_bytes());
                out.push(0);
                out.push(f.safi.0);
                code::MULTIPROTOCOL
            }
            Capability::RouteRefresh => code::ROUTE_REFRESH,
            Capability::FourOctetAs(asn) => {
                out.extend_from_slice(&asn.to_be_bytes());
                code::FOUR_OCTET_AS
            }
            Capability::GracefulRestart(gr) => {
                let v = (u16::from(gr.flags & 0xf) << 12) | (gr.restart_time & 0x0fff);
                out.extend_from_slice(&v.to_be_bytes());
                for f in &gr.families {
                    out.extend_from_slice(&f.afi_safi.afi.0.to_be_bytes());
                    out.push(f.afi_safi.safi.0);
                    out.push(f.flags);
                }
                code::GRACEFUL_RESTART
            }
            Capability::Unknown { code, value } => {
                out.extend_from_slice(value);
                *code
            }
        };
        out[start] = c;
        // Callers bound value sizes (at most 63 GR families); saturate defensively.
        out[start + 1] = u8::try_from(out.len() - start - 2).unwrap_or(u8::MAX);
    }

    /// Decodes one capability value given its code.
    pub fn decode(code: u8, value: &[u8]) -> Result<Capability, DecodeError> {
        let mut r = Reader::new(value);
        let bad = DecodeError::MalformedCapability(code);
        Ok(match code {
            code::MULTIPROTOCOL => {
                if value.len() != 4 {
                    return Err(bad);
                }
                let afi = r.u16().ok_or(bad.clone())?;
                let _reserved = r.u8();
                let safi = r.u8().ok_or(bad)?;
                Capability::Multiprotocol(AfiSafi {
                    afi: Afi(afi),
                    safi: Safi(safi),
                })
            }
            code::ROUTE_REFRESH => {
                if !value.is_empty() {
                    return Err(bad);
                }
                Capability::RouteRefresh
            }
            code::FOUR_OCTET_AS => {
                if value.len() != 4 {
                    return Err(bad);
                }
                Capability::FourOctetAs(r.u32().ok_or(bad)?)
            }
            code::GRACEFUL_RESTART => {
                if value.len() < 2 || !(value.len() - 2).is_multiple_of(4) {
                    return Err(bad);
                }
                let v = r.u16().ok_or(bad.clone())?;
                let mut families = Vec::new();
                while !r.is_empty() {
                    let afi = r.u16().ok_or(bad.clone())?;
                    let safi = r.u8().ok_or(bad.clone())?;
                    let flags = r.u8().ok_or(bad.clone())?;
                    families.push(GracefulRestartFamily {
                        afi_safi: AfiSafi {
                            afi: Afi(afi),
                            safi: Safi(safi),
                        },
                        flags,
                    });
                }
                Capability::GracefulRestart(GracefulRestart {
                    flags: (v >> 12) as u8,
                    restart_time: v & 0x0fff,
                    families,
                })
            }
            _ => Capability::Unknown {
                code,
                value: value.to_vec(),
            },
        })
    }
}
