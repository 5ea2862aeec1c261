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
//!    [`SysregAccess`], and back.
//! 4. [`Pmu`] — one vCPU's PMU: the guest-visible register file and one handler per register
//!    ([`Pmu::access_pmcr`], [`Pmu::access_pmu_evcntr`], ...), reached through the one entry
//!    point for traps, [`Pmu::handle_esr`] (or [`Pmu::handle`] for an access decoded already).
//! 5. [`backend`] — the [`CounterBackend`] trait by which the host counts, and
//!    [`SoftBackend`], a deterministic one for emulators and tests.
//! 6. [`config`] — how a VMM describes the vPMU, validated once.
//! 7. [`snapshot`] — the whole guest-visible state as plain data ([`PmuState`]) for
//!    migration: save, validated restore, a versioned checksummed byte form, and KVM one-reg
//!    ids.
//!
//! ## A trap, end to end
//!
//! ```
//! use vpmu::{backend::SoftBackend, config::PmuConfig, El, Outcome, Pmu, Pstate, Trap};
//!
//! let mut pmu = Pmu::new(PmuConfig::builder().counters(6).build()?, SoftBackend::new())?;
//! let mut x = [0u64; 31]; // the vCPU's X0..X30
//! x[1] = 1;               // PMCR.E
//!
//! // The guest executed `MSR PMCR_EL0, X1`; it trapped to EL2 with this syndrome.
//! let esr = 0x6230_e438;
//! match pmu.handle_esr(esr, Pstate::EL1, &mut x) {
//!     Ok(Trap::Pmu(Outcome::Read(_) | Outcome::Written)) => { /* advance the guest's PC */ }
//!     Ok(Trap::Pmu(Outcome::Undefined)) => { /* inject an UNDEFINED exception */ }
//!     Ok(Trap::Pmu(Outcome::TrapToEl1)) => { /* take the trap to the guest's EL1 */ }
//!     Ok(Trap::Pmu(Outcome::ConditionFailed)) => { /* an AArch32 condition failed: skip it */ }
//!     Ok(Trap::Pmu(_)) => { /* Outcome is non_exhaustive */ }
//!     Ok(Trap::NotPmu(_)) => { /* hand the trap to the other sysreg handlers */ }
//!     Err(_) => { /* not a system register trap at all */ }
//! }
//! assert_eq!(pmu.read(vpmu::reg::PmuReg::Pmcr, El::El1).value(), Some(6 << 11 | 1));
//! let _level = pmu.irq_level(); // drive the PMU interrupt from this
//! # Ok::<(), vpmu::config::ConfigError>(())
//! ```
//!
//! ## The VMM's side: configure, filter, interrupt, migrate
//!
//! ```
//! use vpmu::config::{FilterAction, PmuConfig, PmuIrq, PmuVersion};
//! use vpmu::{reg::PmuReg, El, Pmu, PmuState, SoftBackend};
//!
//! // Once, when the VM is created: 4 counters, PMUv3p5, PPI 23 on every vCPU, and the guest may
//! // count everything but branch mispredictions (0x10).
//! let irq = PmuIrq::Ppi(23);
//! PmuIrq::validate_vm(&[irq; 2])?;
//! let cfg = PmuConfig::builder()
//!     .counters(4)
//!     .version(PmuVersion::V3p5)
//!     .irq(irq)
//!     .filter(FilterAction::Deny, 0x10..=0x10)?
//!     .build()?;
//! let mut pmu = Pmu::new(cfg, SoftBackend::new())?;
//! pmu.lock_config(); // the vCPU runs: the configuration is fixed from now on
//!
//! // The guest counts cycles; the host reports them.
//! let _ = pmu.write(PmuReg::Pmcntenset, 1 << 31, El::El1);
//! let _ = pmu.write(PmuReg::Pmcr, 1, El::El1);
//! pmu.count(0x11, 1_000);
//!
//! // Migration: save mid-count, ship the bytes, restore on the destination, count on.
//! let bytes = pmu.save().to_bytes();
//! let mut there = Pmu::new(cfg, SoftBackend::new())?;
//! there.restore(&PmuState::from_bytes(&bytes)?)?;
//! there.count(0x11, 24);
//! assert_eq!(there.read(PmuReg::Pmccntr, El::El1).value(), Some(1_024));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
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
pub mod snapshot;

pub use backend::{CounterBackend, EmulatedBackend, PendingOverflow, SoftBackend};
pub use config::{PmuConfig, PmuVersion};
pub use decode::SysregAccess;
pub use pmu::{El, GuestRegs, Op, Outcome, Params, Pmu, Pstate, Trap};
pub use snapshot::{Identity, OneRegError, PmuState, SnapshotError};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
