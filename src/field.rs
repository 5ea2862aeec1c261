//! Register field layouts: `PMCR`, `PMUSERENR`, and the filter bits of `PMEVTYPER<n>` and
//! `PMCCFILTR`, as `bitflags` 2 types, with the masks each PMU version allows.
//!
//! A value of these types is a plain copy of a register: reading a field has no side effect.
//!
//! # Examples
//!
//! ```
//! use vpmu::field::{Pmcr, Pmuserenr};
//!
//! let pmcr = Pmcr::from_bits_retain(0x4104_3001);
//! assert!(pmcr.contains(Pmcr::E));
//! assert_eq!(pmcr.n(), 6);
//! assert_eq!(pmcr.idcode(), 0x04);
//! assert_eq!(pmcr.imp(), 0x41);
//! assert!(Pmuserenr::all().contains(Pmuserenr::ER));
//! ```

use bitflags::bitflags;
use static_assertions::const_assert_eq;

bitflags! {
    /// `PMCR_EL0`: Performance Monitors Control Register.
    ///
    /// The named flags are the single-bit fields; `N`, `IDCODE` and `IMP` are read with
    /// [`Pmcr::n`], [`Pmcr::idcode`] and [`Pmcr::imp`].
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
    pub struct Pmcr: u64 {
        /// Enable: the global enable of all counters.
        const E = 1 << 0;
        /// Event counter reset: write-only action, zeroes every event counter; reads as 0.
        const P = 1 << 1;
        /// Cycle counter reset: write-only action, zeroes `PMCCNTR`; reads as 0.
        const C = 1 << 2;
        /// Clock divider: with `LC` = 0, `PMCCNTR` counts every 64th cycle.
        const D = 1 << 3;
        /// Export enable (events to an external monitor): stored, no effect in a VM.
        const X = 1 << 4;
        /// Disable the cycle counter where event counting is prohibited: stored, no effect on
        /// a guest, which never runs where counting is prohibited.
        const DP = 1 << 5;
        /// Long cycle counter: `PMCCNTR` overflows at 64 bits instead of 32. RES1 (reads 1)
        /// when the guest has no AArch32 EL0.
        const LC = 1 << 6;
        /// Long event counters (PMUv3p5): event counters overflow at 64 bits.
        const LP = 1 << 7;
    }
}

impl Pmcr {
    /// Shift of `N`, the number of event counters, bits \[15:11\].
    pub const N_SHIFT: u32 = 11;
    /// Shift of `IDCODE`, bits \[23:16\].
    pub const IDCODE_SHIFT: u32 = 16;
    /// Shift of `IMP`, the implementer code, bits \[31:24\].
    pub const IMP_SHIFT: u32 = 24;

    /// `PMCR.N`, bits \[15:11\].
    #[must_use]
    pub const fn n(self) -> u8 {
        ((self.bits() >> Self::N_SHIFT) & 0x1f) as u8
    }

    /// `PMCR.IDCODE`, bits \[23:16\].
    #[must_use]
    pub const fn idcode(self) -> u8 {
        (self.bits() >> Self::IDCODE_SHIFT) as u8
    }

    /// `PMCR.IMP`, bits \[31:24\].
    #[must_use]
    pub const fn imp(self) -> u8 {
        (self.bits() >> Self::IMP_SHIFT) as u8
    }
}

bitflags! {
    /// `PMUSERENR_EL0`: what EL0 may access.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
    pub struct Pmuserenr: u64 {
        /// EL0 may access every `_EL0` PMU register (but not write `PMUSERENR`).
        const EN = 1 << 0;
        /// EL0 may write `PMSWINC`.
        const SW = 1 << 1;
        /// EL0 may read `PMCCNTR`.
        const CR = 1 << 2;
        /// EL0 may read the event counters (`PMEVCNTR<n>`, `PMXEVCNTR`) and read and write `PMSELR`.
        const ER = 1 << 3;
    }
}

bitflags! {
    /// The filter bits of `PMEVTYPER<n>_EL0` and `PMCCFILTR_EL0`, bits \[31:24\].
    ///
    /// The guest runs in Non-secure state at EL0 or EL1: a counter counts at EL1 iff
    /// `P == NSK`, at EL0 iff `U == NSU` (NSK and NSU read 0 when EL3 is not advertised).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
    pub struct EvtypeFilter: u64 {
        /// Do not count at EL1.
        const P = 1 << 31;
        /// Do not count at EL0.
        const U = 1 << 30;
        /// Non-secure EL1 counts iff `NSK == P` (EL3 only).
        const NSK = 1 << 29;
        /// Non-secure EL0 counts iff `NSU == U` (EL3 only).
        const NSU = 1 << 28;
        /// Count at EL2 when set (EL2 only; the guest never runs at EL2 in vpmu).
        const NSH = 1 << 27;
        /// Count at EL3 when `M == P` (EL3 only).
        const M = 1 << 26;
    }
}

/// The event number field of `PMEVTYPER<n>`: bits \[9:0\] before PMUv3p1.
pub const EVTCOUNT_MASK_10: u64 = 0x3ff;
/// The event number field of `PMEVTYPER<n>`: bits \[15:0\] from PMUv3p1.
pub const EVTCOUNT_MASK_16: u64 = 0xffff;

const_assert_eq!(Pmcr::all().bits(), 0xff);
const_assert_eq!(Pmuserenr::all().bits(), 0xf);
const_assert_eq!(EvtypeFilter::all().bits(), 0xfc00_0000);
const_assert_eq!(EvtypeFilter::all().bits() & EVTCOUNT_MASK_16, 0);
