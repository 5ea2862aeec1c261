#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::arithmetic_side_effects)]
//! `vpmu::decode` through the public API, as a hypervisor or an emulator uses it:
//!
//! - exhaustive round trips over every register × direction × transfer register, for the three
//!   syndrome classes (EC 0x18, 0x03, 0x04) and for A64 instruction words;
//! - the encodings checked against the Arm ARM (DDI 0487), from tables and ISS layouts written
//!   out here by hand rather than read from the crate;
//! - every `DecodeError`, and `NotPmu` answers for the registers next door to the PMU's;
//! - proptest properties over all of `u64` and `u32`, with the same per-input checks the fuzz
//!   targets run (`tests/common/fuzz_check/`).

mod common;
#[allow(dead_code)]
#[path = "common/fuzz_check/mod.rs"]
mod fuzz_check;

use std::iter;

use proptest::prelude::*;
use vpmu::decode::{
    decode_esr, decode_insn, Cond, DecodeError, Decoded, Direction, EncodeError, Gpr, OtherSysreg, SysregAccess, SysregId, Xfer,
    EC_CP15_32, EC_CP15_64, EC_SYS64,
};
use vpmu::reg::{A64Id, Cp15Id, Cp15WideId, EventCounter, PmuReg};

use common::gpr;

// ---------------------------------------------------------------------------------------------
// Helpers and the architecture, written out by hand
// ---------------------------------------------------------------------------------------------

const DIRS: [Direction; 2] = [Direction::Read, Direction::Write];

/// CV = 0, then CV = 1 with each of the 16 condition codes.
fn conds() -> impl Iterator<Item = Option<Cond>> {
    iter::once(None).chain((0..16).map(|c| Some(Cond::new(c).unwrap())))
}

fn reg(name: &str) -> PmuReg {
    name.parse().unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn a64(reg: PmuReg, dir: Direction, rt: u8) -> SysregAccess {
    SysregAccess { reg, dir, xfer: Xfer::A64 { rt: gpr(rt) } }
}

fn a32(reg: PmuReg, dir: Direction, rt: u8, cond: Option<Cond>) -> SysregAccess {
    SysregAccess { reg, dir, xfer: Xfer::A32 { rt: gpr(rt), cond } }
}

fn a32_wide(reg: PmuReg, dir: Direction, rt: u8, rt2: u8, cond: Option<Cond>) -> SysregAccess {
    SysregAccess { reg, dir, xfer: Xfer::A32Wide { rt: gpr(rt), rt2: gpr(rt2), cond } }
}

fn read_bit(dir: Direction) -> u64 {
    u64::from(dir == Direction::Read)
}

const IL: u64 = 1 << 25;

/// ESR_EL2 for EC 0x18 (trapped MSR/MRS), from the ISS layout: \[21:20\] Op0, \[19:17\] Op2,
/// \[16:14\] Op1, \[13:10\] CRn, \[9:5\] Rt, \[4:1\] CRm, \[0\] Direction (1 = read).
fn esr_sys64(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8, rt: u8, dir: Direction) -> u64 {
    let f = |v: u8, shift: u32| u64::from(v) << shift;
    (0x18 << 26) | IL | f(op0, 20) | f(op2, 17) | f(op1, 14) | f(crn, 10) | f(rt, 5) | f(crm, 1) | read_bit(dir)
}

/// ESR_EL2.ISS CV and COND, bits \[24\] and \[23:20\], of EC 0x03 and 0x04.
fn cv_cond(cond: Option<Cond>) -> u64 {
    cond.map_or(0, |c| (1 << 24) | (u64::from(c.get()) << 20))
}

/// ESR_EL2 for EC 0x03 (trapped MCR/MRC, coproc 15): \[24\] CV, \[23:20\] COND, \[19:17\] Opc2,
/// \[16:14\] Opc1, \[13:10\] CRn, \[9:5\] Rt, \[4:1\] CRm, \[0\] Direction.
fn esr_cp15(opc1: u8, crn: u8, crm: u8, opc2: u8, rt: u8, cond: Option<Cond>, dir: Direction) -> u64 {
    let f = |v: u8, shift: u32| u64::from(v) << shift;
    (0x03 << 26) | IL | cv_cond(cond) | f(opc2, 17) | f(opc1, 14) | f(crn, 10) | f(rt, 5) | f(crm, 1) | read_bit(dir)
}

/// ESR_EL2 for EC 0x04 (trapped MCRR/MRRC, coproc 15): \[24\] CV, \[23:20\] COND,
/// \[19:16\] Opc1, \[15\] RES0, \[14:10\] Rt2, \[9:5\] Rt, \[4:1\] CRm, \[0\] Direction.
fn esr_cp15_wide(opc1: u8, crm: u8, rt: u8, rt2: u8, cond: Option<Cond>, dir: Direction) -> u64 {
    let f = |v: u8, shift: u32| u64::from(v) << shift;
    (0x04 << 26) | IL | cv_cond(cond) | f(opc1, 16) | f(rt2, 10) | f(rt, 5) | f(crm, 1) | read_bit(dir)
}

/// The A64 `MRS`/`MSR` (register) word: `1101 0101 00 L 1 o0 op1 CRn CRm op2 Rt`, where
/// bits \[20:19\] are op0 (`1:o0`) and L = 1 is `MRS`.
fn insn_sysreg(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8, rt: u8, dir: Direction) -> u32 {
    let f = |v: u8, shift: u32| u32::from(v) << shift;
    0xd500_0000 | ((read_bit(dir) as u32) << 21) | f(op0, 19) | f(op1, 16) | f(crn, 12) | f(crm, 8) | f(op2, 5) | f(rt, 0)
}

/// The AArch64 PMU registers as the Arm ARM lists them: name, op0, op1, CRn, CRm, op2.
const ARM_A64: [(&str, u8, u8, u8, u8, u8); 17] = [
    ("PMCR_EL0", 3, 3, 9, 12, 0),
    ("PMCNTENSET_EL0", 3, 3, 9, 12, 1),
    ("PMCNTENCLR_EL0", 3, 3, 9, 12, 2),
    ("PMOVSCLR_EL0", 3, 3, 9, 12, 3),
    ("PMSWINC_EL0", 3, 3, 9, 12, 4),
    ("PMSELR_EL0", 3, 3, 9, 12, 5),
    ("PMCEID0_EL0", 3, 3, 9, 12, 6),
    ("PMCEID1_EL0", 3, 3, 9, 12, 7),
    ("PMCCNTR_EL0", 3, 3, 9, 13, 0),
    ("PMXEVTYPER_EL0", 3, 3, 9, 13, 1),
    ("PMXEVCNTR_EL0", 3, 3, 9, 13, 2),
    ("PMUSERENR_EL0", 3, 3, 9, 14, 0),
    ("PMINTENSET_EL1", 3, 0, 9, 14, 1),
    ("PMINTENCLR_EL1", 3, 0, 9, 14, 2),
    ("PMOVSSET_EL0", 3, 3, 9, 14, 3),
    ("PMMIR_EL1", 3, 0, 9, 14, 6),
    ("PMCCFILTR_EL0", 3, 3, 14, 15, 7),
];

/// The AArch32 PMU registers (coproc 15): name, opc1, CRn, CRm, opc2.
const ARM_A32: [(&str, u8, u8, u8, u8); 19] = [
    ("PMCR", 0, 9, 12, 0),
    ("PMCNTENSET", 0, 9, 12, 1),
    ("PMCNTENCLR", 0, 9, 12, 2),
    ("PMOVSR", 0, 9, 12, 3),
    ("PMSWINC", 0, 9, 12, 4),
    ("PMSELR", 0, 9, 12, 5),
    ("PMCEID0", 0, 9, 12, 6),
    ("PMCEID1", 0, 9, 12, 7),
    ("PMCCNTR", 0, 9, 13, 0),
    ("PMXEVTYPER", 0, 9, 13, 1),
    ("PMXEVCNTR", 0, 9, 13, 2),
    ("PMUSERENR", 0, 9, 14, 0),
    ("PMINTENSET", 0, 9, 14, 1),
    ("PMINTENCLR", 0, 9, 14, 2),
    ("PMOVSSET", 0, 9, 14, 3),
    ("PMCEID2", 0, 9, 14, 4),
    ("PMCEID3", 0, 9, 14, 5),
    ("PMMIR", 0, 9, 14, 6),
    ("PMCCFILTR", 0, 14, 15, 7),
];

/// Every AArch64 PMU register with its encoding: the fixed ones, then
/// `PMEVCNTR<n>_EL0` = 3, 3, 14, `0b10:n[4:3]`, `n[2:0]` and
/// `PMEVTYPER<n>_EL0` = 3, 3, 14, `0b11:n[4:3]`, `n[2:0]`.
fn arm_a64() -> Vec<(String, [u8; 5])> {
    let mut v: Vec<_> = ARM_A64.iter().map(|&(n, a, b, c, d, e)| (n.to_owned(), [a, b, c, d, e])).collect();
    for n in 0..31u8 {
        v.push((format!("PMEVCNTR{n}_EL0"), [3, 3, 14, 0b1000 | (n >> 3), n & 7]));
        v.push((format!("PMEVTYPER{n}_EL0"), [3, 3, 14, 0b1100 | (n >> 3), n & 7]));
    }
    v
}

/// Every AArch32 PMU register with its encoding: `PMEVCNTR<n>` = 0, c14, `c(8 + n[4:3])`,
/// `n[2:0]` and `PMEVTYPER<n>` = 0, c14, `c(12 + n[4:3])`, `n[2:0]`.
fn arm_a32() -> Vec<(String, [u8; 4])> {
    let mut v: Vec<_> = ARM_A32.iter().map(|&(n, a, b, c, d)| (n.to_owned(), [a, b, c, d])).collect();
    for n in 0..31u8 {
        v.push((format!("PMEVCNTR{n}"), [0, 14, 8 + (n >> 3), n & 7]));
        v.push((format!("PMEVTYPER{n}"), [0, 14, 12 + (n >> 3), n & 7]));
    }
    v
}

// ---------------------------------------------------------------------------------------------
// Exhaustive round trips
// ---------------------------------------------------------------------------------------------

#[test]
fn register_table_has_every_register_once() {
    let all: Vec<PmuReg> = PmuReg::all().collect();
    assert_eq!(all.len(), 18 + 31 + 31 + 1);
    for (i, r) in all.iter().enumerate() {
        assert!(!all[..i].contains(r), "{r} listed twice");
    }
    // The hand-written tables name every register, AArch32 including PMCEID2/PMCEID3.
    let a32: Vec<PmuReg> = arm_a32().iter().map(|(n, _)| reg(n)).collect();
    assert_eq!(a32.len(), all.len());
    assert!(all.iter().all(|r| a32.contains(r)));
    let a64: Vec<PmuReg> = arm_a64().iter().map(|(n, _)| reg(n)).collect();
    assert_eq!(a64.len(), all.len() - 2);
    assert!(all.iter().all(|r| a64.contains(r) != matches!(r, PmuReg::Pmceid2 | PmuReg::Pmceid3)));
}

#[test]
fn esr_a64_round_trip_every_register_direction_and_rt() {
    let mut ok = 0;
    for reg in PmuReg::all() {
        for dir in DIRS {
            for rt in 0..32 {
                let a = a64(reg, dir, rt);
                if !reg.in_aarch64() {
                    assert_eq!(a.to_esr(), Err(EncodeError::NoEncoding), "{a:?}");
                    continue;
                }
                let id = reg.a64_id().unwrap();
                let esr = a.to_esr().unwrap();
                assert_eq!(esr, esr_sys64(id.op0(), id.op1(), id.crn(), id.crm(), id.op2(), rt, dir), "{a}");
                assert_eq!(decode_esr(esr), Ok(Decoded::Pmu(a)), "{a}: {esr:#x}");
                assert_eq!(Decoded::Pmu(a).to_esr(), Ok(esr));
                ok += 1;
            }
        }
    }
    assert_eq!(ok, 79 * 2 * 32);
}

#[test]
fn insn_round_trip_every_register_direction_and_rt() {
    let mut ok = 0;
    for reg in PmuReg::all() {
        for dir in DIRS {
            for rt in 0..32 {
                let a = a64(reg, dir, rt);
                let Some(id) = reg.a64_id() else {
                    assert_eq!(a.to_insn(), Err(EncodeError::NoEncoding), "{a:?}");
                    continue;
                };
                let word = a.to_insn().unwrap();
                assert_eq!(word, insn_sysreg(id.op0(), id.op1(), id.crn(), id.crm(), id.op2(), rt, dir), "{a}");
                assert_eq!(decode_insn(word), Ok(Decoded::Pmu(a)), "{a}: {word:#010x}");
                assert_eq!(Decoded::Pmu(a).to_insn(), Ok(word));
                // The instruction and its trap syndrome name the same access.
                assert_eq!(decode_esr(a.to_esr().unwrap()), decode_insn(word));
                ok += 1;
            }
        }
    }
    assert_eq!(ok, 79 * 2 * 32);
}

#[test]
fn esr_a32_round_trip_every_register_direction_rt_and_cond() {
    let mut ok = 0;
    for reg in PmuReg::all() {
        let id = reg.cp15_id();
        for dir in DIRS {
            for rt in 0..32 {
                for cond in conds() {
                    let a = a32(reg, dir, rt, cond);
                    let esr = a.to_esr().unwrap();
                    assert_eq!(esr, esr_cp15(id.opc1(), id.crn(), id.crm(), id.opc2(), rt, cond, dir), "{a}");
                    assert_eq!(decode_esr(esr), Ok(Decoded::Pmu(a)), "{a}: {esr:#x}");
                    assert_eq!(a.to_insn(), Err(EncodeError::NotA64), "{a}");
                    assert!(a.xfer.is_32bit());
                    ok += 1;
                }
            }
        }
    }
    assert_eq!(ok, 81 * 2 * 32 * 17);
}

#[test]
fn esr_a32_wide_round_trip_pmccntr_every_rt_rt2_and_cond() {
    let mut ok = 0;
    for dir in DIRS {
        for rt in 0..32 {
            for rt2 in 0..32 {
                for cond in conds() {
                    let a = a32_wide(PmuReg::Pmccntr, dir, rt, rt2, cond);
                    let esr = a.to_esr().unwrap();
                    // MRRC/MCRR p15, 0, <Rt>, <Rt2>, c9
                    assert_eq!(esr, esr_cp15_wide(0, 9, rt, rt2, cond, dir), "{a}");
                    assert_eq!(decode_esr(esr), Ok(Decoded::Pmu(a)), "{a}: {esr:#x}");
                    assert!(!a.xfer.is_32bit());
                    assert_eq!(a.xfer.rt(), gpr(rt));
                    ok += 1;
                }
            }
        }
    }
    assert_eq!(ok, 2 * 32 * 32 * 17);
}

#[test]
fn only_pmccntr_has_a_wide_encoding() {
    for reg in PmuReg::all().filter(|&r| r != PmuReg::Pmccntr) {
        for dir in DIRS {
            for (rt, rt2) in [(0, 1), (2, 3), (31, 31)] {
                for cond in [None, Some(Cond::AL)] {
                    let a = a32_wide(reg, dir, rt, rt2, cond);
                    assert_eq!(a.to_esr(), Err(EncodeError::NoEncoding), "{a:?}");
                    assert_eq!(a.sysreg_id(), Err(EncodeError::NoEncoding), "{a:?}");
                    assert!(a.to_insn().is_err(), "{a:?}");
                }
            }
        }
    }
    assert_eq!(PmuReg::Pmccntr.cp15_wide_id(), Cp15WideId::new(0, 9));
}

/// `SysregAccess::to_insn` is `NotA64` for any AArch32 transfer, even a wide transfer of a
/// register that has no wide encoding.
#[test]
fn to_insn_of_any_aarch32_transfer_is_not_a64() {
    let a = a32_wide(PmuReg::Pmcr, Direction::Read, 0, 1, None);
    assert_eq!(a.to_insn(), Err(EncodeError::NotA64));
}

// ---------------------------------------------------------------------------------------------
// Encodings against the Arm ARM
// ---------------------------------------------------------------------------------------------

#[test]
fn a64_encodings_are_the_arm_arms() {
    for (name, [op0, op1, crn, crm, op2]) in arm_a64() {
        let r = reg(&name);
        assert_eq!(r.to_string(), name);
        assert_eq!(r.a64_id(), A64Id::new(op0, op1, crn, crm, op2), "{name}");
        assert_eq!(PmuReg::from_a64(A64Id::new(op0, op1, crn, crm, op2).unwrap()), Some(r), "{name}");
        for dir in DIRS {
            for rt in [0, 7, 30, 31] {
                let want = Ok(Decoded::Pmu(a64(r, dir, rt)));
                assert_eq!(decode_esr(esr_sys64(op0, op1, crn, crm, op2, rt, dir)), want, "{name} {dir:?} {rt}");
                assert_eq!(decode_insn(insn_sysreg(op0, op1, crn, crm, op2, rt, dir)), want, "{name} {dir:?} {rt}");
            }
        }
    }
}

#[test]
fn a32_encodings_are_the_arm_arms() {
    for (name, [opc1, crn, crm, opc2]) in arm_a32() {
        let r = reg(&name);
        assert_eq!(r.aarch32_name().to_string(), name);
        assert_eq!(Some(r.cp15_id()), Cp15Id::new(opc1, crn, crm, opc2), "{name}");
        for dir in DIRS {
            for rt in [0, 1, 14, 15] {
                for cond in [None, Some(Cond::AL), Cond::new(0b0001)] {
                    let want = Ok(Decoded::Pmu(a32(r, dir, rt, cond)));
                    assert_eq!(decode_esr(esr_cp15(opc1, crn, crm, opc2, rt, cond, dir)), want, "{name} {dir:?} R{rt} {cond:?}");
                }
            }
        }
    }
    // PMCEID2 and PMCEID3 are AArch32 only (the upper halves of PMCEID0_EL0/PMCEID1_EL0).
    for name in ["PMCEID2", "PMCEID3"] {
        assert_eq!(reg(name).a64_id(), None);
        assert!(!reg(name).in_aarch64());
    }
}

/// Syndromes and instruction words worked out by hand, bit by bit, from the ISS layouts.
#[test]
fn hand_written_syndromes_and_words() {
    let pmevcntr5 = PmuReg::Pmevcntr(EventCounter::new(5).unwrap());
    let pmevtyper30 = PmuReg::Pmevtyper(EventCounter::new(30).unwrap());
    let al = Some(Cond::AL);
    let eq = Cond::new(0b0000);
    #[rustfmt::skip]
    let cases: [(u64, SysregAccess); 14] = [
        // EC 0x18: 0x62 = EC 0x18 << 2 | IL
        (0x623a_f871, a64(pmevcntr5, Direction::Read, 3)),              // MRS X3, PMEVCNTR5_EL0
        (0x6230_e419, a64(PmuReg::Pmcr, Direction::Read, 0)),           // MRS X0, PMCR_EL0
        (0x6230_e438, a64(PmuReg::Pmcr, Direction::Write, 1)),          // MSR PMCR_EL0, X1
        (0x6232_245c, a64(PmuReg::Pmintenset, Direction::Write, 2)),    // MSR PMINTENSET_EL1, X2
        (0x623c_253d, a64(PmuReg::Pmmir, Direction::Read, 9)),          // MRS X9, PMMIR_EL1
        (0x623e_fbff, a64(PmuReg::Pmccfiltr, Direction::Read, 31)),     // MRS XZR, PMCCFILTR_EL0
        (0x623c_f81e, a64(pmevtyper30, Direction::Write, 0)),           // MSR PMEVTYPER30_EL0, X0
        // EC 0x03: 0x0e = EC 0x03 << 2 | IL, 0x0f.. adds CV
        (0x0fe0_2459, a32(PmuReg::Pmcr, Direction::Read, 2, al)),       // MRC p15, 0, R2, c9, c12, 0
        (0x0e08_24bd, a32(PmuReg::Pmceid2, Direction::Read, 5, None)),  // MRC p15, 0, R5, c9, c14, 4
        (0x0fea_241d, a32(PmuReg::Pmceid3, Direction::Read, 0, al)),    // MRC p15, 0, R0, c9, c14, 5
        (0x0f0e_383f, a32(PmuReg::Pmccfiltr, Direction::Read, 1, eq)),  // MRCEQ p15, 0, R1, c14, c15, 7
        (0x0e0a_3811, a32(pmevcntr5, Direction::Read, 0, None)),        // MRC p15, 0, R0, c14, c8, 5
        // EC 0x04: 0x12 = EC 0x04 << 2 | IL
        (0x13e0_0c53, a32_wide(PmuReg::Pmccntr, Direction::Read, 2, 3, al)),    // MRRC p15, 0, R2, R3, c9
        (0x1200_1492, a32_wide(PmuReg::Pmccntr, Direction::Write, 4, 5, None)), // MCRR p15, 0, R4, R5, c9
    ];
    for (esr, a) in cases {
        assert_eq!(decode_esr(esr), Ok(Decoded::Pmu(a)), "{esr:#x}");
        assert_eq!(a.to_esr(), Ok(esr), "{a}");
    }

    #[rustfmt::skip]
    let words: [(u32, SysregAccess); 6] = [
        (0xd53b_9c00, a64(PmuReg::Pmcr, Direction::Read, 0)),        // MRS X0, PMCR_EL0
        (0xd51b_9c00, a64(PmuReg::Pmcr, Direction::Write, 0)),       // MSR PMCR_EL0, X0
        (0xd53b_9d00, a64(PmuReg::Pmccntr, Direction::Read, 0)),     // MRS X0, PMCCNTR_EL0
        (0xd53b_e8a3, a64(pmevcntr5, Direction::Read, 3)),           // MRS X3, PMEVCNTR5_EL0
        (0xd518_9e20, a64(PmuReg::Pmintenset, Direction::Write, 0)), // MSR PMINTENSET_EL1, X0
        (0xd51b_efff, a64(PmuReg::Pmccfiltr, Direction::Write, 31)), // MSR PMCCFILTR_EL0, XZR
    ];
    for (word, a) in words {
        assert_eq!(decode_insn(word), Ok(Decoded::Pmu(a)), "{word:#010x}");
        assert_eq!(a.to_insn(), Ok(word), "{a}");
    }
}

#[test]
fn ec_constants_are_the_arm_arms() {
    assert_eq!((EC_SYS64, EC_CP15_32, EC_CP15_64), (0x18, 0x03, 0x04));
    assert_eq!(Cond::AL.get(), 0b1110);
    assert_eq!(Gpr::ZR.get(), 31);
    assert!(Gpr::ZR.is_zero_reg());
    assert_eq!(Gpr::new(32), None);
    assert_eq!(Gpr::new_truncate(33), gpr(1));
    assert_eq!(Cond::new(16), None);
}

/// The COND field is only meaningful with CV = 1: with CV = 0 it is ignored, and re-encodes
/// as zero.
#[test]
fn cond_bits_without_cv_are_ignored() {
    let with = esr_cp15(0, 9, 12, 0, 2, Some(Cond::AL), Direction::Read);
    let without = with & !(1 << 24);
    let Ok(Decoded::Pmu(a)) = decode_esr(without) else { panic!("{without:#x}") };
    assert_eq!(a.xfer, Xfer::A32 { rt: gpr(2), cond: None });
    assert_eq!(a.to_esr(), Ok(without & !(0xf << 20)));
    let wide = esr_cp15_wide(0, 9, 2, 3, Some(Cond::AL), Direction::Read) & !(1 << 24);
    assert_eq!(decode_esr(wide), Ok(Decoded::Pmu(a32_wide(PmuReg::Pmccntr, Direction::Read, 2, 3, None))));
}

// ---------------------------------------------------------------------------------------------
// Display
// ---------------------------------------------------------------------------------------------

#[test]
fn access_displays_as_the_instruction() {
    let pmevcntr5 = PmuReg::Pmevcntr(EventCounter::new(5).unwrap());
    let cases = [
        (a64(pmevcntr5, Direction::Read, 3), "MRS X3, PMEVCNTR5_EL0"),
        (a64(PmuReg::Pmcr, Direction::Write, 31), "MSR PMCR_EL0, XZR"),
        (a64(PmuReg::Pmintenset, Direction::Read, 30), "MRS X30, PMINTENSET_EL1"),
        (a32(PmuReg::Pmcr, Direction::Write, 1, None), "MCR p15, 0, R1, c9, c12, 0 (PMCR)"),
        (a32(PmuReg::Pmovsclr, Direction::Read, 0, Some(Cond::AL)), "MRC p15, 0, R0, c9, c12, 3 (PMOVSR)"),
        (a32_wide(PmuReg::Pmccntr, Direction::Read, 2, 3, None), "MRRC p15, 0, R2, R3, c9 (PMCCNTR)"),
        (a32_wide(PmuReg::Pmccntr, Direction::Write, 4, 5, None), "MCRR p15, 0, R4, R5, c9 (PMCCNTR)"),
    ];
    for (a, want) in cases {
        assert_eq!(a.to_string(), want);
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

#[test]
fn wrong_exception_class() {
    for (esr, ec) in [
        (0x5600_0000, 0x15), // SVC from AArch64
        (0x5a00_0000, 0x16), // HVC from AArch64
        (0x9200_0000, 0x24), // data abort from a lower EL
        (0x0000_0000, 0x00), // unknown reason
        (0x1600_0000, 0x05), // MCR/MRC to coproc 14
        (0x1a00_0000, 0x06), // LDC/STC to coproc 14
        (0x3200_0000, 0x0c), // MRRC to coproc 14
        (0x6600_0000, 0x19), // SVE
        (0xffff_ffff, 0x3f),
        (0xffff_ffff_ffff_ffff, 0x3f), // the EC is checked first
    ] {
        let e = decode_esr(esr).unwrap_err();
        assert_eq!(e, DecodeError::WrongEc { ec }, "{esr:#x}");
        let text = e.to_string();
        assert!(text.contains(&format!("{ec:#04x}")) && text.contains("exception class"), "{text}");
    }
}

#[test]
fn sixteen_bit_instruction_length() {
    for esr in [0x6030_e419u64, 0x0de0_2459, 0x11e0_0c53] {
        assert_eq!(decode_esr(esr), Err(DecodeError::Il16), "{esr:#x}");
        // ... the same syndrome with IL set decodes
        assert!(decode_esr(esr | IL).is_ok());
    }
    assert!(DecodeError::Il16.to_string().contains("IL"));
}

#[test]
fn reserved_bits() {
    let cases: [(u64, u64); 8] = [
        (0x0000_0001_6230_e419, 0x0000_0001_0000_0000), // ESR[63:32]
        (0xffff_ffff_0fe0_2459, 0xffff_ffff_0000_0000),
        (0x8000_0000_13e0_0c53, 0x8000_0000_0000_0000),
        (0x6230_e419 | 1 << 22, 1 << 22), // EC 0x18: ISS[24:22] are RES0
        (0x6230_e419 | 1 << 23, 1 << 23),
        (0x6230_e419 | 1 << 24, 1 << 24),
        (0x6230_e419 | 7 << 22, 7 << 22),
        (0x13e0_0c53 | 1 << 15, 1 << 15), // EC 0x04: ISS[15] is RES0
    ];
    for (esr, bits) in cases {
        let e = decode_esr(esr).unwrap_err();
        assert_eq!(e, DecodeError::ReservedBits { bits }, "{esr:#x}");
        assert!(e.to_string().contains(&format!("{bits:#x}")), "{e}");
    }
    // EC 0x03 has no RES0 ISS bit: every ISS decodes.
    assert!(decode_esr((0x03 << 26) | IL | (IL - 1)).is_ok());
}

#[test]
fn not_a_system_register_move() {
    for word in [
        0xd503_201fu32, // NOP
        0xd503_42df,    // MSR DAIFSet, #2 (MSR immediate, op0 = 0)
        0xd50b_7e20,    // DC CIVAC, X0 (SYS, op0 = 1)
        0xd52b_7e20,    // SYSL X0, #3, C7, C14, #1 (op0 = 1)
        0xd400_0002,    // HVC #0
        0xd65f_03c0,    // RET
        0x0000_0000,
        0xffff_ffff,
    ] {
        let e = decode_insn(word).unwrap_err();
        assert_eq!(e, DecodeError::NotSysregMove { insn: word });
        assert!(e.to_string().contains(&format!("{word:#010x}")), "{e}");
    }
}

/// The op0 < 2 forms (MSR immediate, SYS, SYSL) trap with EC 0x18 too: they decode as
/// `NotPmu`, re-encode to the same syndrome, and have no MRS/MSR word.
#[test]
fn trapped_sys_instructions_are_not_pmu() {
    // DC CIVAC, X0 trapped: op0 1, op1 3, CRn 7, CRm 14, op2 1, Rt 0, write
    let esr = esr_sys64(1, 3, 7, 14, 1, 0, Direction::Write);
    assert_eq!(esr, 0x6212_dc1c);
    let o = OtherSysreg { id: SysregId::A64(A64Id::new(1, 3, 7, 14, 1).unwrap()), dir: Direction::Write, xfer: Xfer::A64 { rt: gpr(0) } };
    assert_eq!(decode_esr(esr), Ok(Decoded::NotPmu(o)));
    assert_eq!(o.to_esr(), Ok(esr));
    assert_eq!(o.to_insn(), Err(EncodeError::NoEncoding));
    assert_eq!(Decoded::NotPmu(o).to_insn(), Err(EncodeError::NoEncoding));
}

#[test]
fn encode_errors_display() {
    let a = EncodeError::NoEncoding.to_string();
    let b = EncodeError::NotA64.to_string();
    assert!(!a.is_empty() && !b.is_empty() && a != b);
    assert!(b.contains("AArch64"));
}

// ---------------------------------------------------------------------------------------------
// Not PMU registers
// ---------------------------------------------------------------------------------------------

#[test]
fn midr_el1_is_not_pmu() {
    // MRS X5, MIDR_EL1: 3, 0, c0, c0, 0
    let id = A64Id::new(3, 0, 0, 0, 0).unwrap();
    let o = OtherSysreg { id: SysregId::A64(id), dir: Direction::Read, xfer: Xfer::A64 { rt: gpr(5) } };
    assert_eq!(decode_esr(0x6230_00a1), Ok(Decoded::NotPmu(o)));
    assert_eq!(decode_insn(0xd538_0005), Ok(Decoded::NotPmu(o)));
    assert_eq!(o.to_esr(), Ok(0x6230_00a1));
    assert_eq!(o.to_insn(), Ok(0xd538_0005));
    assert_eq!(id.to_string(), "S3_0_C0_C0_0");
}

#[test]
fn pmscr_el1_is_not_pmu() {
    // MSR PMSCR_EL1, X2 (the Statistical Profiling Extension, at CRn 9 but CRm 9)
    let id = A64Id::new(3, 0, 9, 9, 0).unwrap();
    let o = OtherSysreg { id: SysregId::A64(id), dir: Direction::Write, xfer: Xfer::A64 { rt: gpr(2) } };
    assert_eq!(decode_esr(0x6230_2452), Ok(Decoded::NotPmu(o)));
    assert_eq!(o.to_esr(), Ok(0x6230_2452));
}

/// Encodings next door to PMU registers (one field off) are not PMU registers.
#[test]
fn a64_neighbours_are_not_pmu() {
    let neighbours = [
        [3, 3, 14, 11, 7], // where PMEVCNTR31_EL0 would be
        [3, 3, 9, 14, 4],  // PMCEID2's CRm/op2, which AArch64 does not have
        [3, 3, 9, 14, 5],  // PMCEID3's
        [3, 3, 9, 14, 1],  // PMINTENSET with op1 = 3
        [3, 3, 9, 14, 6],  // PMMIR with op1 = 3
        [3, 0, 9, 12, 0],  // PMCR with op1 = 0
        [2, 3, 9, 12, 0],  // PMCR with op0 = 2
        [3, 0, 14, 8, 0],  // PMEVCNTR0 with op1 = 0
        [3, 3, 14, 0, 0],  // CNTFRQ_EL0
        [3, 3, 14, 0, 2],  // CNTVCT_EL0
        [3, 3, 9, 9, 0],   // CRm 9
    ];
    for [op0, op1, crn, crm, op2] in neighbours {
        let id = A64Id::new(op0, op1, crn, crm, op2).unwrap();
        assert_eq!(PmuReg::from_a64(id), None, "{id}");
        for dir in DIRS {
            let o = OtherSysreg { id: SysregId::A64(id), dir, xfer: Xfer::A64 { rt: gpr(7) } };
            let esr = esr_sys64(op0, op1, crn, crm, op2, 7, dir);
            assert_eq!(decode_esr(esr), Ok(Decoded::NotPmu(o)), "{id}");
            assert_eq!(o.to_esr(), Ok(esr));
            let word = insn_sysreg(op0, op1, crn, crm, op2, 7, dir);
            assert_eq!(decode_insn(word), Ok(Decoded::NotPmu(o)), "{id}");
            assert_eq!(o.to_insn(), Ok(word));
        }
    }
}

#[test]
fn cp15_neighbours_are_not_pmu() {
    let neighbours = [
        [0, 1, 0, 0],   // SCTLR
        [1, 9, 12, 0],  // PMCR with opc1 = 1
        [0, 9, 14, 7],  // after PMMIR
        [0, 9, 15, 0],  // implementation defined
        [0, 14, 11, 7], // where PMEVCNTR31 would be
        [0, 14, 0, 0],  // CNTFRQ
        [0, 10, 12, 0], // CRn 10
    ];
    for [opc1, crn, crm, opc2] in neighbours {
        let id = Cp15Id::new(opc1, crn, crm, opc2).unwrap();
        assert_eq!(PmuReg::from_cp15(id), None, "{id}");
        for dir in DIRS {
            for cond in conds() {
                let o = OtherSysreg { id: SysregId::Cp15(id), dir, xfer: Xfer::A32 { rt: gpr(3), cond } };
                let esr = esr_cp15(opc1, crn, crm, opc2, 3, cond, dir);
                assert_eq!(decode_esr(esr), Ok(Decoded::NotPmu(o)), "{id}");
                assert_eq!(o.to_esr(), Ok(esr));
                assert_eq!(o.to_insn(), Err(EncodeError::NotA64));
            }
        }
    }
    // MRC p15, 0, R0, c1, c0, 0 (SCTLR), unconditional, by hand
    let o = OtherSysreg {
        id: SysregId::Cp15(Cp15Id::new(0, 1, 0, 0).unwrap()),
        dir: Direction::Read,
        xfer: Xfer::A32 { rt: gpr(0), cond: Some(Cond::AL) },
    };
    assert_eq!(decode_esr(0x0fe0_0401), Ok(Decoded::NotPmu(o)));
    assert_eq!(Cp15Id::new(0, 1, 0, 0).unwrap().to_string(), "p15, 0, c1, c0, 0");
}

#[test]
fn cp15_wide_neighbours_are_not_pmu() {
    for [opc1, crm] in [[0, 2], [1, 14], [1, 9], [0, 14], [0, 10]] {
        // TTBR0, CNTVCT, PMCCNTR's CRm with opc1 = 1, ...
        let id = Cp15WideId::new(opc1, crm).unwrap();
        assert_eq!(PmuReg::from_cp15_wide(id), None, "{id}");
        for dir in DIRS {
            for cond in [None, Some(Cond::AL)] {
                let o = OtherSysreg { id: SysregId::Cp15Wide(id), dir, xfer: Xfer::A32Wide { rt: gpr(0), rt2: gpr(1), cond } };
                let esr = esr_cp15_wide(opc1, crm, 0, 1, cond, dir);
                assert_eq!(decode_esr(esr), Ok(Decoded::NotPmu(o)), "{id}");
                assert_eq!(o.to_esr(), Ok(esr));
            }
        }
    }
}

/// An `OtherSysreg` whose transfer kind does not match its encoding kind has no syndrome.
#[test]
fn mismatched_kinds_do_not_encode() {
    let id = SysregId::A64(A64Id::new(3, 0, 0, 0, 0).unwrap());
    let o = OtherSysreg { id, dir: Direction::Read, xfer: Xfer::A32 { rt: gpr(0), cond: None } };
    assert_eq!(o.to_esr(), Err(EncodeError::NoEncoding));
    let o = OtherSysreg { id: SysregId::Cp15(Cp15Id::new(0, 1, 0, 0).unwrap()), dir: Direction::Read, xfer: Xfer::A64 { rt: gpr(0) } };
    assert_eq!(o.to_esr(), Err(EncodeError::NoEncoding));
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

fn any_gpr() -> impl Strategy<Value = Gpr> {
    (0u8..32).prop_map(gpr)
}

fn any_cond() -> impl Strategy<Value = Option<Cond>> {
    prop::option::of((0u8..16).prop_map(|c| Cond::new(c).unwrap()))
}

fn any_dir() -> impl Strategy<Value = Direction> {
    prop_oneof![Just(Direction::Read), Just(Direction::Write)]
}

fn any_xfer() -> impl Strategy<Value = Xfer> {
    prop_oneof![
        any_gpr().prop_map(|rt| Xfer::A64 { rt }),
        (any_gpr(), any_cond()).prop_map(|(rt, cond)| Xfer::A32 { rt, cond }),
        (any_gpr(), any_gpr(), any_cond()).prop_map(|(rt, rt2, cond)| Xfer::A32Wide { rt, rt2, cond }),
    ]
}

/// Any access, including ones no register has an encoding for (PMCEID2 from AArch64, PMCR
/// through MRRC).
fn any_access() -> impl Strategy<Value = SysregAccess> {
    (prop::sample::select(PmuReg::all().collect::<Vec<_>>()), any_dir(), any_xfer()).prop_map(|(reg, dir, xfer)| SysregAccess {
        reg,
        dir,
        xfer,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    /// Any 64-bit value: `Ok` round-trips, an error is justified (see `common/fuzz_check/mod.rs`).
    #[test]
    fn decode_esr_is_total_and_round_trips(esr in any::<u64>()) {
        prop_assert_eq!(fuzz_check::check_esr(esr), Ok(()));
    }

    /// The three trap classes with any ISS and IL set, so most inputs decode.
    #[test]
    fn decode_esr_of_sysreg_traps(ec in prop::sample::select(vec![0x18u64, 0x03, 0x04]), iss in 0u64..(1 << 25)) {
        let esr = (ec << 26) | IL | iss;
        prop_assert_eq!(fuzz_check::check_esr(esr), Ok(()));
        let ok = decode_esr(esr).is_ok();
        let res0 = match ec { 0x18 => iss & (7 << 22), 0x04 => iss & (1 << 15), _ => 0 };
        prop_assert_eq!(ok, res0 == 0, "{:#x}", esr);
    }

    /// Any 32-bit word.
    #[test]
    fn decode_insn_is_total_and_round_trips(word in any::<u32>()) {
        prop_assert_eq!(fuzz_check::check_insn(word), Ok(()));
    }

    /// Any MRS/MSR (register) word decodes and re-encodes to itself.
    #[test]
    fn every_mrs_msr_word_decodes(word in any::<u32>().prop_map(|w| (w & !0xffd0_0000) | 0xd510_0000)) {
        let d = decode_insn(word);
        prop_assert!(d.is_ok(), "{:#010x}: {:?}", word, d);
        prop_assert_eq!(d.unwrap().to_insn(), Ok(word));
    }

    /// Any access, valid or not: Display never panics, and when it encodes, the encoding
    /// decodes back to it.
    #[test]
    fn any_access_displays_and_round_trips(a in any_access()) {
        let text = a.to_string();
        prop_assert!(!text.is_empty());
        let debug = format!("{a:?}");
        prop_assert!(!debug.is_empty());
        match a.to_esr() {
            Ok(esr) => prop_assert_eq!(decode_esr(esr), Ok(Decoded::Pmu(a))),
            Err(e) => {
                prop_assert_eq!(e, EncodeError::NoEncoding);
                prop_assert!(a.sysreg_id().is_err());
            }
        }
        match a.to_insn() {
            Ok(word) => prop_assert_eq!(decode_insn(word), Ok(Decoded::Pmu(a))),
            Err(_) => {
                let a64_encodable = matches!(a.xfer, Xfer::A64 { .. }) && a.reg.in_aarch64();
                prop_assert!(!a64_encodable);
            }
        }
    }
}
