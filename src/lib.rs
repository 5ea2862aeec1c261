//! # vpmu — the Armv8-A PMUv3 for virtual machines
//!
//! vpmu emulates the Performance Monitors Extension (PMUv3, up to PMUv3p5) for a guest, the
//! way Linux KVM's guest PMU support does it — trap and emulate — as a `#![no_std]`,
//! allocation-free, panic-free library that any hypervisor or emulator can embed.
//!
//! ## Layers
//!
//! The modules follow the path of one trapped access:
//!
//! 1. [`reg`] — which register: the one table of every PMU register's AArch64 and AArch32
//!    encodings, names and access kinds.
//! 2. [`field`] — register field layouts (`PMCR`, `PMUSERENR`, event type filters).
//! 3. [`decode`] — an ESR_EL2 syndrome or an A64 instruction word to a
//!    [`SysregAccess`](decode::SysregAccess), and back.
//!
//! ## What vpmu never does
//!
//! - panic on anything a guest or a VMM can send: every input is `Ok` or a typed error;
//! - allocate, or use `unsafe` (`#![forbid(unsafe_code)]`);
//! - inject an exception or drive an interrupt line: it says what must happen, the caller
//!   does it.
//!
//! ## Minimum supported Rust version
//!
//! Rust 1.81 (for `core::error::Error`). Raising it is a minor-version change, said in the
//! changelog.
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod backend;
pub mod config;
pub mod decode;
pub mod field;
mod pmc;
mod pmu;
pub mod reg;

pub use backend::{CounterBackend, SoftBackend};
pub use config::{PmuConfig, PmuVersion};
pub use decode::SysregAccess;
pub use pmu::{El, GuestRegs, Op, Outcome, Params, Pmu};
