//! [`SysRegs`]: the real PMU registers through `MRS`/`MSR`, the crate's only `unsafe`.
#![allow(unsafe_code)]

use core::arch::asm;

use crate::regs::PmuRegs;

/// The physical PMU of the CPU this code runs on, through `MRS`/`MSR`.
///
/// A zero-sized handle: every access goes to the registers of the CPU executing it, so a
/// backend must only touch them while its vCPU is loaded on that CPU (which
/// [`HwBackend`](crate::HwBackend) does: between `load` and `put` only).
///
/// Use it at EL2. At a lower exception level, the accesses to `MDCR_EL2` are UNDEFINED and the
/// PMU registers may trap: an exception, not memory unsafety. The accesses touch no memory and
/// no general-purpose or FP/SIMD register beyond the one transferred.
///
/// # Examples
///
/// ```no_run
/// # #[cfg(target_arch = "aarch64")] {
/// use vpmu_hw::{HwBackend, SysRegs};
/// let backend = HwBackend::new(SysRegs::new()); // at EL2, after MDCR_EL2 is set
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SysRegs {
    _private: (),
}

impl SysRegs {
    /// A handle to the executing CPU's PMU registers.
    #[must_use]
    pub const fn new() -> Self {
        Self { _private: () }
    }
}

/// `MRS` of the named register.
macro_rules! mrs {
    ($reg:expr) => {{
        let v: u64;
        // SAFETY: reading a PMU or ID system register at EL2 has no effect on memory or on any
        // register but the output one; `nomem`/`nostack` say exactly that.
        unsafe { asm!(concat!("mrs {}, ", $reg), out(reg) v, options(nomem, nostack, preserves_flags)) };
        v
    }};
}

/// `MSR` of the named register.
macro_rules! msr {
    ($reg:expr, $v:expr) => {{
        let v: u64 = $v;
        // SAFETY: writing a PMU system register changes only the PMU's counting state, never
        // memory, the stack or the flags. The backend writes only counters it owns.
        unsafe { asm!(concat!("msr ", $reg, ", {}"), in(reg) v, options(nomem, nostack, preserves_flags)) };
    }};
}

/// `match n { 0 => mrs!("<prefix>0_el0"), ..., 30 => ... }` for the indexed registers.
macro_rules! read_indexed {
    ($n:expr, $prefix:literal) => {
        read_indexed!(@arms $n, $prefix; 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30)
    };
    (@arms $n:expr, $prefix:literal; $($i:literal)*) => {
        match $n {
            $($i => mrs!(concat!($prefix, stringify!($i), "_el0")),)*
            _ => 0,
        }
    };
}

/// `match n { 0 => msr!("<prefix>0_el0", v), ... }`; other `n` do nothing.
macro_rules! write_indexed {
    ($n:expr, $prefix:literal, $v:expr) => {
        write_indexed!(@arms $n, $prefix, $v; 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30)
    };
    (@arms $n:expr, $prefix:literal, $v:expr; $($i:literal)*) => {
        match $n {
            $($i => msr!(concat!($prefix, stringify!($i), "_el0"), $v),)*
            _ => {}
        }
    };
}

impl PmuRegs for SysRegs {
    fn read_pmcr(&self) -> u64 {
        mrs!("pmcr_el0")
    }
    fn write_pmcr(&mut self, v: u64) {
        msr!("pmcr_el0", v);
    }
    fn read_pmevcntr(&self, n: u8) -> u64 {
        read_indexed!(n, "pmevcntr")
    }
    fn write_pmevcntr(&mut self, n: u8, v: u64) {
        write_indexed!(n, "pmevcntr", v)
    }
    fn read_pmevtyper(&self, n: u8) -> u64 {
        read_indexed!(n, "pmevtyper")
    }
    fn write_pmevtyper(&mut self, n: u8, v: u64) {
        write_indexed!(n, "pmevtyper", v)
    }
    fn read_pmccntr(&self) -> u64 {
        mrs!("pmccntr_el0")
    }
    fn write_pmccntr(&mut self, v: u64) {
        msr!("pmccntr_el0", v);
    }
    fn read_pmccfiltr(&self) -> u64 {
        mrs!("pmccfiltr_el0")
    }
    fn write_pmccfiltr(&mut self, v: u64) {
        msr!("pmccfiltr_el0", v);
    }
    fn read_pmcntenset(&self) -> u32 {
        mrs!("pmcntenset_el0") as u32
    }
    fn write_pmcntenset(&mut self, bits: u32) {
        msr!("pmcntenset_el0", bits.into());
    }
    fn write_pmcntenclr(&mut self, bits: u32) {
        msr!("pmcntenclr_el0", bits.into());
    }
    fn read_pmovsset(&self) -> u32 {
        mrs!("pmovsset_el0") as u32
    }
    fn write_pmovsset(&mut self, bits: u32) {
        msr!("pmovsset_el0", bits.into());
    }
    fn write_pmovsclr(&mut self, bits: u32) {
        msr!("pmovsclr_el0", bits.into());
    }
    fn read_pmintenset(&self) -> u32 {
        mrs!("pmintenset_el1") as u32
    }
    fn write_pmintenset(&mut self, bits: u32) {
        msr!("pmintenset_el1", bits.into());
    }
    fn write_pmintenclr(&mut self, bits: u32) {
        msr!("pmintenclr_el1", bits.into());
    }
    fn read_pmceid(&self) -> [u64; 2] {
        [mrs!("pmceid0_el0"), mrs!("pmceid1_el0")]
    }
    fn read_id_aa64dfr0(&self) -> u64 {
        mrs!("id_aa64dfr0_el1")
    }
    fn read_mdcr_el2(&self) -> u64 {
        mrs!("mdcr_el2")
    }
}
