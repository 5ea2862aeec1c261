#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::arithmetic_side_effects)]
//! A trap decoder demo: what a hypervisor learns from an ESR_EL2 syndrome, and an emulator
//! from an A64 instruction word, before it hands a PMU access to `Pmu::handle`.
//!
//! ```text
//! cargo run --example decode
//! ```
//!
//! Each input prints as one sentence: a PMU access (who reads or writes what), a system
//! register that is not the PMU's (the hypervisor falls through to its other handlers), or
//! why the value is not a system register access at all.

use vpmu::decode::{decode_esr, decode_insn, DecodeError, Decoded, Direction, Gpr, OtherSysreg, SysregAccess, SysregId, Xfer};

/// Real syndromes, as ESR_EL2 reports them.
const SYNDROMES: &[(u64, &str)] = &[
    (0x623a_f871, "MRS X3, PMEVCNTR5_EL0"),
    (0x6230_e438, "MSR PMCR_EL0, X1"),
    (0x6232_245c, "MSR PMINTENSET_EL1, X2"),
    (0x623e_fbff, "MRS XZR, PMCCFILTR_EL0"),
    (0x623e_f81e, "MSR PMCCFILTR_EL0, X0"),
    (0x6230_00a1, "MRS X5, MIDR_EL1"),
    (0x6212_dc1c, "DC CIVAC, X0"),
    (0x0fe0_2459, "MRC p15, 0, R2, c9, c12, 0 (PMCR)"),
    (0x0e0a_3811, "MRC p15, 0, R0, c14, c8, 5 (PMEVCNTR5), CV = 0"),
    (0x0f0e_383e, "MCREQ p15, 0, R1, c14, c15, 7 (PMCCFILTR)"),
    (0x13e0_0c53, "MRRC p15, 0, R2, R3, c9 (PMCCNTR)"),
    (0x1200_1492, "MCRR p15, 0, R4, R5, c9 (PMCCNTR)"),
    (0x0fe0_0401, "MRC p15, 0, R0, c1, c0, 0 (SCTLR)"),
    (0x1200_0405, "MRRC p15, 0, R0, R1, c2 (TTBR0)"),
    (0x5a00_0000, "HVC #0"),
    (0x6030_e419, "MRS X0, PMCR_EL0 with IL = 0"),
    (0x6270_e419, "EC 0x18 with ISS[22] set"),
    (0x0000_0001_6230_e419, "ESR[63:32] not zero"),
];

/// Real A64 instruction words, as an emulator fetches them.
const WORDS: &[(u32, &str)] = &[
    (0xd53b_9c00, "MRS X0, PMCR_EL0"),
    (0xd51b_9c00, "MSR PMCR_EL0, X0"),
    (0xd53b_e8a3, "MRS X3, PMEVCNTR5_EL0"),
    (0xd518_9e20, "MSR PMINTENSET_EL1, X0"),
    (0xd53b_9d00, "MRS X0, PMCCNTR_EL0"),
    (0xd538_0005, "MRS X5, MIDR_EL1"),
    (0xd503_201f, "NOP"),
];

fn main() {
    println!("ESR_EL2 syndromes:");
    for &(esr, what) in SYNDROMES {
        println!("  {esr:#018x}  {what:<48} {}", describe(decode_esr(esr), "bad syndrome"));
    }
    println!();
    println!("A64 instruction words:");
    for &(word, what) in WORDS {
        println!("  {word:#010x}  {what:<24} {}", describe(decode_insn(word), "not an MRS/MSR"));
    }
}

/// One sentence for one decoding.
fn describe(d: Result<Decoded, DecodeError>, bad: &str) -> String {
    match d {
        Ok(Decoded::Pmu(a)) => pmu_access(&a),
        Ok(Decoded::NotPmu(o)) => format!("not a PMU register: {} — fall through", encoding(&o)),
        Err(e) => format!("{bad}: {e}"),
    }
}

/// "the guest read PMEVCNTR5_EL0 into X3", "AArch32: the guest read PMCCNTR (64-bit) into R2:R3".
fn pmu_access(a: &SysregAccess) -> String {
    let read = a.dir == Direction::Read;
    match a.xfer {
        Xfer::A64 { rt } => {
            let reg = a.reg.to_string();
            match (read, rt.is_zero_reg()) {
                (true, false) => format!("the guest read {reg} into {}", x(rt)),
                (true, true) => format!("the guest read {reg} into XZR (the value is discarded)"),
                (false, false) => format!("the guest wrote {} to {reg}", x(rt)),
                (false, true) => format!("the guest wrote 0 (XZR) to {reg}"),
            }
        }
        Xfer::A32 { rt, cond } => {
            let reg = a.reg.aarch32_name().to_string();
            let when = cond.map_or(String::new(), |c| format!(" (condition {})", COND_NAMES[usize::from(c.get())]));
            if read {
                format!("AArch32: the guest read {reg} into R{}{when}", rt.get())
            } else {
                format!("AArch32: the guest wrote R{} to {reg}{when}", rt.get())
            }
        }
        Xfer::A32Wide { rt, rt2, .. } => {
            let reg = a.reg.aarch32_name().to_string();
            if read {
                format!("AArch32: the guest read {reg} (64-bit) into R{}:R{}", rt.get(), rt2.get())
            } else {
                format!("AArch32: the guest wrote R{}:R{} to {reg} (64-bit)", rt.get(), rt2.get())
            }
        }
    }
}

/// The condition codes, by their four-bit encoding (0b1111 behaves as AL).
const COND_NAMES: [&str; 16] = ["EQ", "NE", "CS", "CC", "MI", "PL", "VS", "VC", "HI", "LS", "GE", "LT", "GT", "LE", "AL", "AL"];

fn x(rt: Gpr) -> String {
    format!("X{}", rt.get())
}

/// `S3_0_C0_C0_0`, `p15, 0, c1, c0, 0`, `p15, 0, c2` (MRRC/MCRR).
fn encoding(o: &OtherSysreg) -> String {
    match o.id {
        SysregId::A64(id) => id.to_string(),
        SysregId::Cp15(id) => id.to_string(),
        SysregId::Cp15Wide(id) => format!("{id} (64-bit)"),
    }
}
