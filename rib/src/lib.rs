//! oxr-rib
