//! vpmu as the PMU of a CPU emulator: real AArch64 guest code on unicorn-engine, exact
//! instruction and cycle counts, the overflow interrupt at the exact instruction.
//!
//! This crate is a harness, an example and a benchmark, never published: unicorn is
//! GPL-2.0 and must never become a dependency of `vpmu`.
//!
//! - [`Machine`]: the integration a unicorn user copies.
//! - [`glue`]: every call into vpmu, in one place.
//! - [`guests`]: the guest programs, assembled from `emu/guests/*.S` by `build.rs`.

pub mod glue;
pub mod guests;
pub mod machine;

pub use machine::{Error, Machine, Stats};
