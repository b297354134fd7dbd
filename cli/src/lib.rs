//! oxrsh
