#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::arithmetic_side_effects, missing_docs)]
//! The whole `PMUSERENR_EL0` permission matrix: each of the 16 values of (EN, SW, CR, ER) × every
//! PMU register × read and write, at EL0, against an expected outcome written here from the Arm
//! ARM's access pseudocode (DDI 0487, the "Accessing ..." sections of the PMU register pages),
//! independently of `src/pmu.rs`. Then the same with `El0Denial::Undefined` (KVM's behaviour),
//! the EL1 view, and the real trap path (`SysregAccess::to_esr` into `Pmu::handle_esr`).

mod common;

use vpmu::config::{El0Denial, PmuConfig, PmuVersion};
use vpmu::decode::{Direction, SysregAccess, Xfer};
use vpmu::reg::PmuReg;
use vpmu::{El, Op, Outcome, Params, Pstate};

// PMUSERENR_EL0's bits by their field names, as the tables below spell them.
use common::arch::{PMCR_E, PMUSERENR_CR as CR, PMUSERENR_EN as EN, PMUSERENR_ER as ER, PMUSERENR_SW as SW};
use common::{cnt, gpr, pmu_with, typ, SoftPmu};

/// What an access must become.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// `Outcome::Read(_)` or `Outcome::Written`.
    Allowed,
    /// `Outcome::TrapToEl1`.
    Trap,
    /// `Outcome::Undefined`.
    Undefined,
}

/// The instruction does not exist: reads of write-only registers, writes of read-only ones.
/// UNDEFINED at every exception level.
fn no_such_instruction(reg: PmuReg, write: bool) -> bool {
    match reg {
        PmuReg::Pmswinc => !write,
        PmuReg::Pmceid0 | PmuReg::Pmceid1 | PmuReg::Pmceid2 | PmuReg::Pmceid3 | PmuReg::Pmmir => write,
        _ => false,
    }
}

/// The EL0 rules, from the register pages:
///
/// - `PMINTENSET_EL1`, `PMINTENCLR_EL1`, `PMMIR_EL1` are EL1 registers: UNDEFINED at EL0.
/// - `PMUSERENR_EL0`: `MRS` at EL0 is always permitted, `MSR` at EL0 is UNDEFINED.
/// - Every other `_EL0` register is accessible with `EN`; without it:
///   `PMEVCNTR<n>`/`PMXEVCNTR` reads with `ER`; `PMSELR` reads and writes with `ER`;
///   `PMCCNTR` reads with `CR`; `PMSWINC` writes with `SW`. Anything else traps to EL1 (or is
///   UNDEFINED under KVM's `El0Denial::Undefined`).
fn expected_el0(reg: PmuReg, write: bool, userenr: u64, denial: El0Denial) -> Expect {
    if no_such_instruction(reg, write) {
        return Expect::Undefined;
    }
    match reg {
        PmuReg::Pmintenset | PmuReg::Pmintenclr | PmuReg::Pmmir => return Expect::Undefined,
        PmuReg::Pmuserenr => return if write { Expect::Undefined } else { Expect::Allowed },
        _ => {}
    }
    let has = |bit: u64| userenr & bit != 0;
    let allowed = has(EN)
        || match reg {
            PmuReg::Pmevcntr(_) | PmuReg::Pmxevcntr => !write && has(ER),
            PmuReg::Pmselr => has(ER),
            PmuReg::Pmccntr => !write && has(CR),
            PmuReg::Pmswinc => write && has(SW),
            _ => false,
        };
    match (allowed, denial) {
        (true, _) => Expect::Allowed,
        (false, El0Denial::TrapToEl1) => Expect::Trap,
        (false, El0Denial::Undefined) => Expect::Undefined,
    }
}

/// At EL1 every access is permitted, except instructions that do not exist, `PMMIR_EL1`
/// before PMUv3p4 and the AArch32 `PMCEID2`/`PMCEID3` before PMUv3p1. (`N` = 31 here: every
/// counter exists.)
fn expected_el1(reg: PmuReg, write: bool, version: PmuVersion) -> Expect {
    let absent = match reg {
        PmuReg::Pmmir => version < PmuVersion::V3p4,
        PmuReg::Pmceid2 | PmuReg::Pmceid3 => version < PmuVersion::V3p1,
        _ => false,
    };
    if no_such_instruction(reg, write) || absent {
        Expect::Undefined
    } else {
        Expect::Allowed
    }
}

fn outcome_kind(o: Outcome, write: bool) -> Option<Expect> {
    match (o, write) {
        (Outcome::Read(_), false) | (Outcome::Written, true) => Some(Expect::Allowed),
        (Outcome::TrapToEl1, _) => Some(Expect::Trap),
        (Outcome::Undefined, _) => Some(Expect::Undefined),
        _ => None, // a Read for a write, NotPmu, ...: always wrong
    }
}

fn pmu(version: PmuVersion, denial: El0Denial, userenr: u64) -> SoftPmu {
    let cfg = PmuConfig::builder().counters(31).version(version).el0_denial(denial).build().unwrap();
    let mut p = pmu_with(cfg);
    assert_eq!(p.write(PmuReg::Pmuserenr, userenr, El::El1), Outcome::Written);
    p
}

fn name(u: u64) -> String {
    format!("PMUSERENR={u:#x} (EN={} SW={} CR={} ER={})", u & EN != 0, u & SW != 0, u & CR != 0, u & ER != 0)
}

/// Registers as `Params` reach them: the AArch32-only `PMCEID2`/`PMCEID3` only with `aarch32`.
fn regs(aarch32: bool) -> impl Iterator<Item = PmuReg> {
    PmuReg::all().filter(move |r| aarch32 || r.in_aarch64())
}

fn check_matrix(denial: El0Denial) {
    let mut seen = [0usize; 3];
    for aarch32 in [false, true] {
        for userenr in 0..16u64 {
            for reg in regs(aarch32) {
                for write in [false, true] {
                    let mut p = pmu(PmuVersion::V3p5, denial, userenr);
                    let op = if write { Op::Write(0) } else { Op::Read };
                    let got = p.emulate(reg, Params { op, aarch32, el: El::El0 });
                    let want = expected_el0(reg, write, userenr, denial);
                    let dir = if write { "write" } else { "read" };
                    assert_eq!(
                        outcome_kind(got, write),
                        Some(want),
                        "{denial:?} aarch32={aarch32} {}: {dir} {reg} gave {got:?}",
                        name(userenr)
                    );
                    seen[want as usize] += 1;
                }
            }
        }
    }
    // The matrix exercised each kind of answer the configuration can give.
    assert!(seen[Expect::Allowed as usize] > 0 && seen[Expect::Undefined as usize] > 0);
    assert_eq!(seen[Expect::Trap as usize] > 0, denial == El0Denial::TrapToEl1);
}

#[test]
fn el0_matrix_traps_to_el1_by_default() {
    check_matrix(El0Denial::TrapToEl1);
}

#[test]
fn el0_matrix_with_kvm_compatible_undefined() {
    check_matrix(El0Denial::Undefined);
}

#[test]
fn the_default_denial_is_a_trap_to_el1() {
    let mut p = pmu_with(PmuConfig::builder().build().unwrap());
    assert_eq!(p.read(PmuReg::Pmcr, El::El0), Outcome::TrapToEl1);
}

/// Spot checks of the expected table itself, from the register pages, so that a mistake in
/// `expected_el0` cannot hide behind the same mistake in the crate.
#[test]
fn the_expected_table_says_what_the_register_pages_say() {
    let t = El0Denial::TrapToEl1;
    let c5 = cnt(5);
    let t5 = typ(5);
    use Expect::*;
    let cases = [
        (c5, false, ER, Allowed),
        (c5, true, ER, Trap),
        (c5, true, EN, Allowed),
        (t5, false, ER, Trap),
        (PmuReg::Pmxevcntr, false, ER, Allowed),
        (PmuReg::Pmxevtyper, false, ER, Trap),
        (PmuReg::Pmselr, true, ER, Allowed),
        (PmuReg::Pmselr, true, CR | SW, Trap),
        (PmuReg::Pmccntr, false, CR, Allowed),
        (PmuReg::Pmccntr, true, CR, Trap),
        (PmuReg::Pmccntr, false, ER, Trap),
        (PmuReg::Pmccfiltr, false, CR, Trap),
        (PmuReg::Pmswinc, true, SW, Allowed),
        (PmuReg::Pmswinc, false, EN | SW, Undefined),
        (PmuReg::Pmcr, false, ER | CR | SW, Trap),
        (PmuReg::Pmcr, true, EN, Allowed),
        (PmuReg::Pmceid0, false, EN, Allowed),
        (PmuReg::Pmceid1, true, EN, Undefined),
        (PmuReg::Pmuserenr, false, 0, Allowed),
        (PmuReg::Pmuserenr, true, EN, Undefined),
        (PmuReg::Pmintenset, false, EN, Undefined),
        (PmuReg::Pmintenclr, true, 0xf, Undefined),
        (PmuReg::Pmmir, false, 0xf, Undefined),
        (PmuReg::Pmovsset, true, EN, Allowed),
        (PmuReg::Pmovsclr, false, ER, Trap),
    ];
    for (reg, write, u, want) in cases {
        assert_eq!(expected_el0(reg, write, u, t), want, "{reg} write={write} {}", name(u));
    }
    // With PMUSERENR = 0 the only thing EL0 may do is read PMUSERENR.
    let allowed: Vec<_> = regs(true).flat_map(|r| [(r, false), (r, true)]).filter(|&(r, w)| expected_el0(r, w, 0, t) == Allowed).collect();
    assert_eq!(allowed, [(PmuReg::Pmuserenr, false)]);
}

#[test]
fn el1_may_access_everything_but_missing_instructions_and_registers() {
    for version in [PmuVersion::V3, PmuVersion::V3p1, PmuVersion::V3p4, PmuVersion::V3p5] {
        for userenr in [0, 0xf] {
            for aarch32 in [false, true] {
                for reg in regs(aarch32) {
                    for write in [false, true] {
                        let mut p = pmu(version, El0Denial::TrapToEl1, userenr);
                        let op = if write { Op::Write(0) } else { Op::Read };
                        let got = p.emulate(reg, Params { op, aarch32, el: El::El1 });
                        let dir = if write { "write" } else { "read" };
                        assert_eq!(
                            outcome_kind(got, write),
                            Some(expected_el1(reg, write, version)),
                            "{version:?} aarch32={aarch32} {}: {dir} {reg} at EL1 gave {got:?}",
                            name(userenr)
                        );
                    }
                }
            }
        }
    }
}

/// Allowed EL0 writes take effect; denied ones change nothing.
#[test]
fn el0_writes_take_effect_only_when_allowed() {
    let c0 = cnt(0);
    // (register, value, PMUSERENR that allows the write, one that does not)
    let cases = [
        (PmuReg::Pmselr, 7, ER, CR | SW),
        (PmuReg::Pmcr, PMCR_E, EN, ER | CR | SW),
        (PmuReg::Pmcntenset, 0b101, EN, ER | CR | SW),
        (PmuReg::Pmovsset, 0b11, EN, ER | CR | SW),
        (c0, 1234, EN, ER | CR | SW),
        (PmuReg::Pmccntr, 99, EN, ER | CR | SW),
        (PmuReg::Pmccfiltr, 1 << 31, EN, ER | CR | SW),
    ];
    for (reg, value, yes, no) in cases {
        for denial in [El0Denial::TrapToEl1, El0Denial::Undefined] {
            let mut p = pmu(PmuVersion::V3p5, denial, yes);
            assert_eq!(p.write(reg, value, El::El0), Outcome::Written, "{reg} {}", name(yes));
            assert_eq!(p.read(reg, El::El1).value().map(|v| v & value), Some(value), "{reg} after an allowed write");

            let mut p = pmu(PmuVersion::V3p5, denial, no);
            let before = p.read(reg, El::El1);
            assert_ne!(p.write(reg, value, El::El0), Outcome::Written, "{reg} {}", name(no));
            assert_eq!(p.read(reg, El::El1), before, "{reg} changed by a denied write");
        }
    }
    // PMSWINC with SW only, and not without it.
    for (userenr, counted) in [(SW, 1), (EN, 1), (ER | CR, 0)] {
        let mut p = pmu(PmuVersion::V3p5, El0Denial::TrapToEl1, userenr);
        assert_eq!(p.write(PmuReg::Pmcntenset, 1, El::El1), Outcome::Written); // counter 0: SW_INCR
        assert_eq!(p.write(PmuReg::Pmcr, PMCR_E, El::El1), Outcome::Written);
        let _ = p.write(PmuReg::Pmswinc, 1, El::El0);
        assert_eq!(p.read(c0, El::El1), Outcome::Read(counted), "{}", name(userenr));
    }
    // An EL0 PMUSERENR write never changes it.
    let mut p = pmu(PmuVersion::V3p5, El0Denial::TrapToEl1, 0xf);
    assert_eq!(p.write(PmuReg::Pmuserenr, 0, El::El0), Outcome::Undefined);
    assert_eq!(p.read(PmuReg::Pmuserenr, El::El0), Outcome::Read(0xf));
}

/// Allowed EL0 reads return the register's value (the same one EL1 sees).
#[test]
fn el0_reads_return_the_register() {
    let c3 = cnt(3);
    for userenr in 0..16u64 {
        let mut p = pmu(PmuVersion::V3p5, El0Denial::TrapToEl1, userenr);
        assert_eq!(p.write(c3, 0x1_2345_6789, El::El1), Outcome::Written);
        assert_eq!(p.write(PmuReg::Pmccntr, 0xabcd, El::El1), Outcome::Written);
        assert_eq!(p.write(PmuReg::Pmselr, 3, El::El1), Outcome::Written);
        assert_eq!(p.read(PmuReg::Pmuserenr, El::El0), Outcome::Read(userenr));
        for (reg, value) in [(c3, 0x1_2345_6789), (PmuReg::Pmxevcntr, 0x1_2345_6789), (PmuReg::Pmccntr, 0xabcd), (PmuReg::Pmselr, 3)] {
            let want = match expected_el0(reg, false, userenr, El0Denial::TrapToEl1) {
                Expect::Allowed => Outcome::Read(value),
                Expect::Trap => Outcome::TrapToEl1,
                Expect::Undefined => Outcome::Undefined,
            };
            assert_eq!(p.read(reg, El::El0), want, "{reg} {}", name(userenr));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The real trap path: syndrome -> decode -> dispatch
// ---------------------------------------------------------------------------------------------

/// Every transfer kind a register has: `MRS`/`MSR` (not for `PMCEID2`/`PMCEID3`), `MRC`/`MCR`,
/// and `MRRC`/`MCRR` for `PMCCNTR`.
fn xfers(reg: PmuReg) -> Vec<Xfer> {
    let mut v = vec![Xfer::A32 { rt: gpr(3), cond: None }];
    if reg.in_aarch64() {
        v.push(Xfer::A64 { rt: gpr(3) });
    }
    if reg == PmuReg::Pmccntr {
        v.push(Xfer::A32Wide { rt: gpr(3), rt2: gpr(4), cond: None });
    }
    v
}

#[test]
fn the_trap_path_gives_the_same_answers_for_every_register() {
    for denial in [El0Denial::TrapToEl1, El0Denial::Undefined] {
        for userenr in 0..16u64 {
            for reg in PmuReg::all() {
                for xfer in xfers(reg) {
                    for dir in [Direction::Read, Direction::Write] {
                        let write = dir == Direction::Write;
                        let access = SysregAccess { reg, dir, xfer };
                        let esr = access.to_esr().unwrap();
                        let what = format!("{denial:?} {}: {access} (ESR {esr:#x})", name(userenr));

                        let mut p = pmu(PmuVersion::V3p5, denial, userenr);
                        // What EL1 reads, as the value an allowed EL0 read must deliver.
                        let mut el1 = [0u64; 31];
                        let el1_read = SysregAccess { dir: Direction::Read, ..access };
                        let el1_out = p.handle_esr(el1_read.to_esr().unwrap(), Pstate::EL1, &mut el1).unwrap().outcome().unwrap();

                        let mut x = [0x5a5a_5a5a_5a5a_5a5a_u64; 31];
                        if write {
                            x[3] = 0;
                            x[4] = 0;
                        }
                        let got = p.handle_esr(esr, Pstate::EL0, &mut x).unwrap().outcome().unwrap();
                        let want = expected_el0(reg, write, userenr, denial);
                        assert_eq!(outcome_kind(got, write), Some(want), "{what}: gave {got:?}");

                        match (want, write) {
                            (Expect::Allowed, false) => {
                                assert_eq!(got, el1_out, "{what}: EL0 and EL1 read different values");
                                assert_eq!(x[3], el1[3], "{what}: Rt");
                                if matches!(xfer, Xfer::A32Wide { .. }) {
                                    assert_eq!(x[4], el1[4], "{what}: Rt2");
                                }
                            }
                            _ => assert_eq!(x[3], if write { 0 } else { 0x5a5a_5a5a_5a5a_5a5a }, "{what}: Rt changed"),
                        }
                    }
                }
            }
        }
    }
}
