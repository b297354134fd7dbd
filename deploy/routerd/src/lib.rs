//! oxr-routerd
