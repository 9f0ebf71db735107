//! TEMPORARY shim.
