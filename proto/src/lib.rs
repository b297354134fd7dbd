//! oxr's contracts between processes, generated from `proto/*.proto`, plus conversions
//! between the wire types and `std::net` / `ipnet` types and the Unix-socket plumbing every
//! process uses to serve and reach gRPC.

pub mod convert;
pub mod transport;

/// Types shared by every contract (addresses, prefixes, next hops).
pub mod types {
    tonic::include_proto!("oxr.types");
}
/// The generic per-process service: describe/show/metrics.
pub mod process {
    tonic::include_proto!("oxr.process");
}
/// Protocols -> RIB.
pub mod rib {
    tonic::include_proto!("oxr.rib");
}
/// RIB -> FEA.
pub mod fea {
    tonic::include_proto!("oxr.fea");
}
/// FEA -> fast-path plugin.
pub mod dataplane {
    tonic::include_proto!("oxr.dataplane");
}
/// oxrsh/processes -> oxr-routerd.
pub mod routerd {
    tonic::include_proto!("oxr.routerd");
}
/// oxr-static's show messages.
pub mod static_routes {
    tonic::include_proto!("oxr.static_routes");
}

pub use convert::ConvertError;
