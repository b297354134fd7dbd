//! oxr-fea
