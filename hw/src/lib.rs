//! # vpmu-hw — the physical PMUv3 as a vpmu backend, from EL2
//!
//! (crate docs: see below)
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(test)]
extern crate std;

mod backend;
pub mod regs;
pub mod sim;
#[cfg(any(target_arch = "aarch64", doc))]
mod sysreg;

pub use backend::{HwBackend, HwError};
pub use regs::{mdcr_el2, PmuRegs};
#[cfg(any(target_arch = "aarch64", doc))]
pub use sysreg::SysRegs;

/// Temporary stand-in for the contract's `vpmu::backend::PendingOverflow`.
#[derive(Debug, Default)]
pub struct PendingOverflow(core::sync::atomic::AtomicU32);

impl PendingOverflow {
    /// Empty.
    pub const fn new() -> Self {
        Self(core::sync::atomic::AtomicU32::new(0))
    }
    /// Records bits.
    pub fn raise(&self, bits: u32) {
        self.0.fetch_or(bits, core::sync::atomic::Ordering::Release);
    }
    /// Looks.
    pub fn peek(&self) -> u32 {
        self.0.load(core::sync::atomic::Ordering::Acquire)
    }
    /// Takes the bits.
    pub fn take(&self) -> u32 {
        self.0.swap(0, core::sync::atomic::Ordering::Acquire)
    }
}
