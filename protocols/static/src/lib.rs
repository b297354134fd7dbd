//! oxr-static
