//! `MRS`/`MSR` of the hypervisor's system registers: the only inline assembly outside
//! `boot.rs`, `mmio.rs` and the `baremetal` crate (PSCI, the PL011). Register names are the assembler's.

/// Reads a system register.
macro_rules! mrs {
    ($reg:literal) => {{
        let v: u64;
        // SAFETY: reading a system register at EL2 has no side effect on memory; each name
        // used exists on the CPUs this hypervisor supports (optional ones are checked in
        // ID registers by the caller first).
        unsafe { core::arch::asm!(concat!("mrs {}, ", $reg), out(reg) v, options(nomem, nostack, preserves_flags)) };
        v
    }};
}

/// Writes a system register, then nothing else (the caller adds an `isb` where needed).
macro_rules! msr {
    ($reg:literal, $v:expr) => {{
        let v: u64 = $v;
        // SAFETY: the hypervisor owns every register it writes with this macro (EL2 control
        // registers, the physical GIC CPU interface, the guest's EL1 exception registers when
        // it injects an exception); none of them changes the memory Rust sees.
        unsafe { core::arch::asm!(concat!("msr ", $reg, ", {}"), in(reg) v, options(nomem, nostack, preserves_flags)) };
    }};
}

/// Instruction synchronization barrier.
pub fn isb() {
    // SAFETY: a barrier has no effect on memory or registers.
    unsafe { core::arch::asm!("isb", options(nomem, nostack, preserves_flags)) };
}

pub(crate) use mrs;
pub(crate) use msr;

/// Reads `ICH_LR<n>_EL2` (0 for n > 15).
pub fn read_lr(n: usize) -> u64 {
    match n {
        0 => mrs!("ich_lr0_el2"),
        1 => mrs!("ich_lr1_el2"),
        2 => mrs!("ich_lr2_el2"),
        3 => mrs!("ich_lr3_el2"),
        4 => mrs!("ich_lr4_el2"),
        5 => mrs!("ich_lr5_el2"),
        6 => mrs!("ich_lr6_el2"),
        7 => mrs!("ich_lr7_el2"),
        8 => mrs!("ich_lr8_el2"),
        9 => mrs!("ich_lr9_el2"),
        10 => mrs!("ich_lr10_el2"),
        11 => mrs!("ich_lr11_el2"),
        12 => mrs!("ich_lr12_el2"),
        13 => mrs!("ich_lr13_el2"),
        14 => mrs!("ich_lr14_el2"),
        15 => mrs!("ich_lr15_el2"),
        _ => 0,
    }
}

/// Writes `ICH_LR<n>_EL2` (nothing for n > 15).
pub fn write_lr(n: usize, v: u64) {
    match n {
        0 => msr!("ich_lr0_el2", v),
        1 => msr!("ich_lr1_el2", v),
        2 => msr!("ich_lr2_el2", v),
        3 => msr!("ich_lr3_el2", v),
        4 => msr!("ich_lr4_el2", v),
        5 => msr!("ich_lr5_el2", v),
        6 => msr!("ich_lr6_el2", v),
        7 => msr!("ich_lr7_el2", v),
        8 => msr!("ich_lr8_el2", v),
        9 => msr!("ich_lr9_el2", v),
        10 => msr!("ich_lr10_el2", v),
        11 => msr!("ich_lr11_el2", v),
        12 => msr!("ich_lr12_el2", v),
        13 => msr!("ich_lr13_el2", v),
        14 => msr!("ich_lr14_el2", v),
        15 => msr!("ich_lr15_el2", v),
        _ => {}
    }
}
