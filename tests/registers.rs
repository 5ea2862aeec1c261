#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::arithmetic_side_effects, missing_docs)]
//! The register semantics of issue 4 ("Semantics that must hold, each with a test"), one test or a
//! small group per rule, through the public API only, as a hypervisor drives a `Pmu`.
//!
//! Every expected value is written out from the Arm ARM (DDI 0487, D13 and the PMU register
//! pages): the field positions, event numbers and filter bits are the architecture's, from
//! `tests/common/arch.rs`, not read from the crate.

mod common;

use std::convert::Infallible;

use vpmu::backend::{CountRequest, CounterBackend, CounterId, SoftBackend};
use vpmu::config::{ConfigError, El0Denial, FilterAction, PmuConfig, PmuIrq, PmuVersion, MAX_FILTER_ACTIONS};
use vpmu::decode::{Direction, SysregAccess, Xfer};
use vpmu::reg::PmuReg;
use vpmu::{El, Op, Outcome, Params, Pmu, Pstate, Trap};

use common::arch::{
    CHAIN, CPU_CYCLES, CYCLE_BIT, F_M, F_NSH, F_NSK, F_NSU, F_P, F_U, INST_RETIRED, PMCR_C, PMCR_D, PMCR_DP, PMCR_E, PMCR_IDCODE_SHIFT,
    PMCR_IMP_SHIFT, PMCR_LC, PMCR_LP, PMCR_N_SHIFT, PMCR_P, PMCR_X, SW_INCR,
};
use common::{cnt, config, gpr, pmu, pmu_with, rd, typ, wr, SoftPmu};

const VERSIONS: [PmuVersion; 4] = [PmuVersion::V3, PmuVersion::V3p1, PmuVersion::V3p4, PmuVersion::V3p5];

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// An AArch32 `MCR`/`MRC` as the handlers see it.
fn a32(op: Op) -> Params {
    Params { op, aarch32: true, el: El::El1 }
}

/// Types counter `n` with `typer`, enables it and sets PMCR.E (keeping the other stored bits).
fn enable(p: &mut SoftPmu, n: u8, typer: u64) {
    wr(p, typ(n), typer);
    wr(p, PmuReg::Pmcntenset, 1 << n);
    let pmcr = rd(p, PmuReg::Pmcr);
    wr(p, PmuReg::Pmcr, pmcr | PMCR_E);
}

fn set_pmcr_bits(p: &mut SoftPmu, bits: u64) {
    let pmcr = rd(p, PmuReg::Pmcr);
    wr(p, PmuReg::Pmcr, pmcr | bits);
}

// ---------------------------------------------------------------------------------------------
// PMCR
// ---------------------------------------------------------------------------------------------

#[test]
fn pmcr_stores_only_the_bits_the_version_allows() {
    for version in VERSIONS {
        for aarch32_el0 in [false, true] {
            let cfg = PmuConfig::builder().version(version).counters(6).aarch32_el0(aarch32_el0).identity(0x41, 0x0b).build().unwrap();
            let mut p = pmu_with(cfg);
            let id = (6 << PMCR_N_SHIFT) | (0x0b << PMCR_IDCODE_SHIFT) | (0x41 << PMCR_IMP_SHIFT);
            let lp = if version >= PmuVersion::V3p5 { PMCR_LP } else { 0 };
            let lc_res1 = if aarch32_el0 { 0 } else { PMCR_LC };

            wr(&mut p, PmuReg::Pmcr, u64::MAX);
            let stored = PMCR_E | PMCR_D | PMCR_X | PMCR_DP | PMCR_LC | lp;
            assert_eq!(rd(&mut p, PmuReg::Pmcr), stored | id, "{version:?} aarch32_el0={aarch32_el0}: all ones");

            wr(&mut p, PmuReg::Pmcr, 0);
            assert_eq!(rd(&mut p, PmuReg::Pmcr), lc_res1 | id, "{version:?} aarch32_el0={aarch32_el0}: zero");

            // Each stored bit on its own, through a 32-bit AArch32 write too.
            for bit in [PMCR_E, PMCR_D, PMCR_X, PMCR_DP] {
                wr(&mut p, PmuReg::Pmcr, bit);
                assert_eq!(rd(&mut p, PmuReg::Pmcr), bit | lc_res1 | id);
                assert_eq!(p.emulate(PmuReg::Pmcr, a32(Op::Write(0))), Outcome::Written);
                assert_eq!(p.emulate(PmuReg::Pmcr, a32(Op::Read)), Outcome::Read(lc_res1 | id));
            }
        }
    }
}

#[test]
fn pmcr_p_and_c_are_actions_that_read_as_zero() {
    let mut p = pmu(PmuVersion::V3p5, 4);
    let big = 0x1234_5678_9abc_def0;
    let set_all = |p: &mut SoftPmu| {
        for n in 0..4 {
            wr(p, cnt(n), big + u64::from(n));
        }
        wr(p, PmuReg::Pmccntr, big);
    };

    // P: every event counter, all 64 bits; not the cycle counter; reads as 0.
    set_all(&mut p);
    wr(&mut p, PmuReg::Pmovsset, 0b1010 | CYCLE_BIT);
    wr(&mut p, PmuReg::Pmcr, PMCR_P);
    for n in 0..4 {
        assert_eq!(rd(&mut p, cnt(n)), 0, "PMEVCNTR{n} after PMCR.P");
    }
    assert_eq!(rd(&mut p, PmuReg::Pmccntr), big, "PMCR.P must not touch PMCCNTR");
    assert_eq!(rd(&mut p, PmuReg::Pmcr) & (PMCR_P | PMCR_C), 0);
    // Resetting counters does not clear their overflow flags.
    assert_eq!(rd(&mut p, PmuReg::Pmovsset), 0b1010 | CYCLE_BIT);

    // C: only the cycle counter.
    set_all(&mut p);
    wr(&mut p, PmuReg::Pmcr, PMCR_C);
    assert_eq!(rd(&mut p, PmuReg::Pmccntr), 0, "PMCCNTR after PMCR.C");
    for n in 0..4 {
        assert_eq!(rd(&mut p, cnt(n)), big + u64::from(n), "PMCR.C must not touch PMEVCNTR{n}");
    }
    assert_eq!(rd(&mut p, PmuReg::Pmcr) & (PMCR_P | PMCR_C), 0);

    // From AArch32, P still clears all 64 bits of every event counter.
    set_all(&mut p);
    assert_eq!(p.emulate(PmuReg::Pmcr, a32(Op::Write(PMCR_P))), Outcome::Written);
    for n in 0..4 {
        assert_eq!(rd(&mut p, cnt(n)), 0, "PMEVCNTR{n} after an AArch32 PMCR.P");
    }
    assert_eq!(rd(&mut p, PmuReg::Pmccntr), big);

    // Both at once, with E: the counters restart from 0 and PMCR reads E only.
    set_all(&mut p);
    wr(&mut p, PmuReg::Pmcr, PMCR_E | PMCR_P | PMCR_C);
    assert_eq!(rd(&mut p, PmuReg::Pmcr), PMCR_E | (4 << PMCR_N_SHIFT));
    for n in 0..4 {
        assert_eq!(rd(&mut p, cnt(n)), 0);
    }
    assert_eq!(rd(&mut p, PmuReg::Pmccntr), 0);
}

#[test]
fn pmcr_p_resets_a_counting_counter_and_it_counts_on_from_zero() {
    let mut p = pmu(PmuVersion::V3p5, 2);
    enable(&mut p, 0, u64::from(INST_RETIRED));
    p.count(INST_RETIRED, 500);
    assert_eq!(rd(&mut p, cnt(0)), 500);
    p.count(INST_RETIRED, 20); // counted, not yet looked at
    set_pmcr_bits(&mut p, PMCR_P);
    assert_eq!(rd(&mut p, cnt(0)), 0);
    p.count(INST_RETIRED, 7);
    assert_eq!(rd(&mut p, cnt(0)), 7);
}

#[test]
fn pmcr_n_imp_idcode_are_read_only_from_the_configuration() {
    for n in 0..=31u8 {
        let cfg = PmuConfig::builder().counters(n).identity(0xc0, 0x5a).build().unwrap();
        let mut p = pmu_with(cfg);
        let id = (u64::from(n) << PMCR_N_SHIFT) | (0x5a << PMCR_IDCODE_SHIFT) | (0xc0 << PMCR_IMP_SHIFT);
        assert_eq!(rd(&mut p, PmuReg::Pmcr), id, "N={n}: reset value");
        // Try to change N, IDCODE and IMP (and the RES0 bits around them).
        let other = (u64::from(!n & 0x1f) << PMCR_N_SHIFT) | (0xa5 << PMCR_IDCODE_SHIFT) | (0x3f << PMCR_IMP_SHIFT) | (0x7 << 8);
        wr(&mut p, PmuReg::Pmcr, other | 0xffff_ffff_0000_0000);
        assert_eq!(rd(&mut p, PmuReg::Pmcr), id, "N={n}: after a write");
    }
}

#[test]
fn pmcr_lc_reads_one_without_aarch32_el0() {
    let no_a32 = PmuConfig::builder().aarch32_el0(false).build().unwrap();
    let mut p = pmu_with(no_a32);
    assert_ne!(rd(&mut p, PmuReg::Pmcr) & PMCR_LC, 0, "reset value");
    wr(&mut p, PmuReg::Pmcr, 0);
    assert_ne!(rd(&mut p, PmuReg::Pmcr) & PMCR_LC, 0, "after writing 0");
    p.reset_pmcr();
    assert_ne!(rd(&mut p, PmuReg::Pmcr) & PMCR_LC, 0, "after reset_pmcr");

    let mut p = pmu_with(PmuConfig::builder().aarch32_el0(true).build().unwrap());
    wr(&mut p, PmuReg::Pmcr, PMCR_LC);
    assert_ne!(rd(&mut p, PmuReg::Pmcr) & PMCR_LC, 0);
    wr(&mut p, PmuReg::Pmcr, 0);
    assert_eq!(rd(&mut p, PmuReg::Pmcr) & PMCR_LC, 0, "LC is an ordinary RW bit with AArch32 EL0");
}

#[test]
fn pmcr_lp_is_res0_before_v3p5() {
    for version in [PmuVersion::V3, PmuVersion::V3p1, PmuVersion::V3p4] {
        let mut p = pmu(version, 2);
        wr(&mut p, PmuReg::Pmcr, PMCR_LP);
        assert_eq!(rd(&mut p, PmuReg::Pmcr) & PMCR_LP, 0, "{version:?}");

        // Ignored, not just hidden: a written LP does not stop CHAIN (which LP = 1 would).
        wr(&mut p, PmuReg::Pmcr, PMCR_LP | PMCR_E);
        wr(&mut p, typ(0), u64::from(SW_INCR));
        wr(&mut p, typ(1), u64::from(CHAIN));
        wr(&mut p, PmuReg::Pmcntenset, 0b11);
        wr(&mut p, cnt(0), 0xffff_ffff);
        wr(&mut p, PmuReg::Pmswinc, 0b01);
        assert_eq!(rd(&mut p, cnt(0)), 0, "{version:?}: 32-bit counter wraps");
        assert_eq!(rd(&mut p, cnt(1)), 1, "{version:?}: CHAIN counts despite the written LP");
    }
    let mut p = pmu(PmuVersion::V3p5, 2);
    wr(&mut p, PmuReg::Pmcr, PMCR_LP);
    assert_ne!(rd(&mut p, PmuReg::Pmcr) & PMCR_LP, 0, "V3p5 stores LP");
}

// ---------------------------------------------------------------------------------------------
// PMSELR and the PMXEV* registers
// ---------------------------------------------------------------------------------------------

#[test]
fn pmselr_keeps_only_sel() {
    let mut p = pmu(PmuVersion::V3p5, 6);
    wr(&mut p, PmuReg::Pmselr, 0xffff_ffff_ffff_ffe3);
    assert_eq!(rd(&mut p, PmuReg::Pmselr), 3);
    wr(&mut p, PmuReg::Pmselr, 0x25);
    assert_eq!(rd(&mut p, PmuReg::Pmselr), 5);
    for sel in 0..32 {
        wr(&mut p, PmuReg::Pmselr, sel | 0x20);
        assert_eq!(rd(&mut p, PmuReg::Pmselr), sel);
    }
}

#[test]
fn pmxevtyper_with_sel_31_is_pmccfiltr() {
    let mut p = pmu(PmuVersion::V3p5, 6);
    wr(&mut p, PmuReg::Pmselr, 31);
    wr(&mut p, PmuReg::Pmxevtyper, F_U);
    assert_eq!(rd(&mut p, PmuReg::Pmccfiltr), F_U);
    wr(&mut p, PmuReg::Pmccfiltr, F_P);
    assert_eq!(rd(&mut p, PmuReg::Pmxevtyper), F_P);
    // No event number in PMCCFILTR, even through PMXEVTYPER.
    wr(&mut p, PmuReg::Pmxevtyper, F_P | 0x08);
    assert_eq!(rd(&mut p, PmuReg::Pmccfiltr), F_P);
    // Event counter 0's type is untouched.
    assert_eq!(rd(&mut p, typ(0)), 0);
}

#[test]
fn pmxevcntr_with_sel_31_is_undefined() {
    let mut p = pmu(PmuVersion::V3p5, 6);
    wr(&mut p, PmuReg::Pmccntr, 1234);
    wr(&mut p, PmuReg::Pmselr, 31);
    assert_eq!(p.read(PmuReg::Pmxevcntr, El::El1), Outcome::Undefined);
    assert_eq!(p.write(PmuReg::Pmxevcntr, 99, El::El1), Outcome::Undefined);
    assert_eq!(p.emulate(PmuReg::Pmxevcntr, a32(Op::Read)), Outcome::Undefined);
    assert_eq!(rd(&mut p, PmuReg::Pmccntr), 1234, "the UNDEFINED write changed PMCCNTR");
}

#[test]
fn pmxev_with_sel_in_n_to_30_is_undefined_but_writing_sel_is_fine() {
    let n = 4;
    let mut p = pmu(PmuVersion::V3p5, n);
    for sel in n..=30 {
        wr(&mut p, PmuReg::Pmselr, u64::from(sel));
        assert_eq!(rd(&mut p, PmuReg::Pmselr), u64::from(sel));
        for reg in [PmuReg::Pmxevcntr, PmuReg::Pmxevtyper] {
            assert_eq!(p.read(reg, El::El1), Outcome::Undefined, "{reg} with SEL={sel}");
            assert_eq!(p.write(reg, 1, El::El1), Outcome::Undefined, "{reg} with SEL={sel}");
        }
    }
    // SEL < N reaches the counter.
    for sel in 0..n {
        wr(&mut p, PmuReg::Pmselr, u64::from(sel));
        wr(&mut p, PmuReg::Pmxevcntr, 100 + u64::from(sel));
        wr(&mut p, PmuReg::Pmxevtyper, 0x08 + u64::from(sel));
        assert_eq!(rd(&mut p, cnt(sel)), 100 + u64::from(sel));
        assert_eq!(rd(&mut p, typ(sel)), 0x08 + u64::from(sel));
    }
}

// ---------------------------------------------------------------------------------------------
// Counters
// ---------------------------------------------------------------------------------------------

#[test]
fn event_counters_at_or_beyond_n_are_undefined_direct_and_indirect() {
    for n in [0u8, 1, 3, 6, 30, 31] {
        let mut p = pmu(PmuVersion::V3p5, n);
        for i in 0..31u8 {
            let exists = i < n;
            for reg in [cnt(i), typ(i)] {
                let r = p.read(reg, El::El1);
                let w = p.write(reg, 0x08, El::El1);
                if exists {
                    assert!(matches!(r, Outcome::Read(_)), "N={n}: {reg} read gave {r:?}");
                    assert_eq!(w, Outcome::Written, "N={n}: {reg} write");
                } else {
                    assert_eq!(r, Outcome::Undefined, "N={n}: {reg} read");
                    assert_eq!(w, Outcome::Undefined, "N={n}: {reg} write");
                }
            }
            wr(&mut p, PmuReg::Pmselr, u64::from(i));
            for reg in [PmuReg::Pmxevcntr, PmuReg::Pmxevtyper] {
                let r = p.read(reg, El::El1);
                let w = p.write(reg, 0x08, El::El1);
                if exists {
                    assert!(matches!(r, Outcome::Read(_)), "N={n} SEL={i}: {reg} read gave {r:?}");
                    assert_eq!(w, Outcome::Written);
                } else {
                    assert_eq!((r, w), (Outcome::Undefined, Outcome::Undefined), "N={n} SEL={i}: {reg}");
                }
            }
        }
        // The cycle counter exists whatever N is.
        wr(&mut p, PmuReg::Pmccntr, 5);
        assert_eq!(rd(&mut p, PmuReg::Pmccntr), 5);
    }
}

#[test]
fn event_counters_are_32_bit_before_v3p5() {
    for version in [PmuVersion::V3, PmuVersion::V3p1, PmuVersion::V3p4] {
        let mut p = pmu(version, 2);
        wr(&mut p, cnt(0), 0xdead_beef_1234_5678);
        assert_eq!(rd(&mut p, cnt(0)), 0x1234_5678, "{version:?}: upper bits read 0, writes ignored");
        wr(&mut p, PmuReg::Pmselr, 1);
        wr(&mut p, PmuReg::Pmxevcntr, 0xffff_ffff_ffff_fffe);
        assert_eq!(rd(&mut p, PmuReg::Pmxevcntr), 0xffff_fffe);
        assert_eq!(rd(&mut p, cnt(1)), 0xffff_fffe);

        // Counting wraps at 32 bits and sets the overflow flag.
        enable(&mut p, 0, u64::from(INST_RETIRED));
        wr(&mut p, cnt(0), 0xffff_fff0);
        p.count(INST_RETIRED, 0x20);
        assert_eq!(rd(&mut p, cnt(0)), 0x10, "{version:?}");
        assert_eq!(rd(&mut p, PmuReg::Pmovsset), 1, "{version:?}");
    }
}

#[test]
fn event_counters_are_64_bit_from_v3p5() {
    let mut p = pmu(PmuVersion::V3p5, 2);
    wr(&mut p, cnt(0), 0xdead_beef_1234_5678);
    assert_eq!(rd(&mut p, cnt(0)), 0xdead_beef_1234_5678);
    wr(&mut p, PmuReg::Pmselr, 1);
    wr(&mut p, PmuReg::Pmxevcntr, 0xffff_ffff_ffff_fffe);
    assert_eq!(rd(&mut p, cnt(1)), 0xffff_ffff_ffff_fffe);
}

#[test]
fn lp0_overflows_at_the_32_bit_wrap_and_the_counter_keeps_carrying() {
    let mut p = pmu(PmuVersion::V3p5, 1);
    enable(&mut p, 0, u64::from(INST_RETIRED));
    wr(&mut p, cnt(0), 0x1_ffff_fff0);
    assert_eq!(p.events_until_overflow(INST_RETIRED), Some(16));
    p.count(INST_RETIRED, 15);
    assert_eq!(rd(&mut p, cnt(0)), 0x1_ffff_ffff);
    assert_eq!(rd(&mut p, PmuReg::Pmovsset), 0);
    p.count(INST_RETIRED, 1);
    assert_eq!(rd(&mut p, cnt(0)), 0x2_0000_0000, "carries into bit 32");
    assert_eq!(rd(&mut p, PmuReg::Pmovsset), 1, "overflow at the 32-bit wrap");

    // The next overflow is 2^32 events later, not 2^64.
    wr(&mut p, PmuReg::Pmovsclr, 1);
    assert_eq!(p.events_until_overflow(INST_RETIRED), Some(1 << 32));
    p.count(INST_RETIRED, (1 << 32) - 1);
    assert_eq!(rd(&mut p, PmuReg::Pmovsset), 0);
    p.count(INST_RETIRED, 1);
    assert_eq!(rd(&mut p, cnt(0)), 0x3_0000_0000);
    assert_eq!(rd(&mut p, PmuReg::Pmovsset), 1);

    // Same through PMSWINC on a SW_INCR counter.
    let mut p = pmu(PmuVersion::V3p5, 1);
    enable(&mut p, 0, u64::from(SW_INCR));
    wr(&mut p, cnt(0), 0xffff_ffff);
    wr(&mut p, PmuReg::Pmswinc, 1);
    assert_eq!(rd(&mut p, cnt(0)), 0x1_0000_0000);
    assert_eq!(rd(&mut p, PmuReg::Pmovsset), 1);
}

#[test]
fn lp1_overflows_at_the_64_bit_wrap() {
    let mut p = pmu(PmuVersion::V3p5, 1);
    wr(&mut p, PmuReg::Pmcr, PMCR_LP);
    enable(&mut p, 0, u64::from(INST_RETIRED));
    wr(&mut p, cnt(0), 0xffff_fff0);
    p.count(INST_RETIRED, 0x20);
    assert_eq!(rd(&mut p, cnt(0)), 0x1_0000_0010);
    assert_eq!(rd(&mut p, PmuReg::Pmovsset), 0, "no overflow at the 32-bit wrap with LP = 1");

    wr(&mut p, cnt(0), u64::MAX - 0xf);
    assert_eq!(p.events_until_overflow(INST_RETIRED), Some(16));
    p.count(INST_RETIRED, 0x20);
    assert_eq!(rd(&mut p, cnt(0)), 0x10);
    assert_eq!(rd(&mut p, PmuReg::Pmovsset), 1);
}

#[test]
fn cycle_counter_is_64_bit_and_lc_moves_its_overflow_point() {
    for version in VERSIONS {
        let mut p = pmu(version, 0);
        wr(&mut p, PmuReg::Pmccntr, 0xdead_beef_1234_5678);
        assert_eq!(rd(&mut p, PmuReg::Pmccntr), 0xdead_beef_1234_5678, "{version:?}");

        // LC = 0: overflow at the 32-bit wrap, the counter keeps carrying.
        wr(&mut p, PmuReg::Pmcntenset, CYCLE_BIT);
        wr(&mut p, PmuReg::Pmcr, PMCR_E);
        wr(&mut p, PmuReg::Pmccntr, 0xffff_fff0);
        p.count(CPU_CYCLES, 0x20);
        assert_eq!(rd(&mut p, PmuReg::Pmccntr), 0x1_0000_0010, "{version:?}");
        assert_eq!(rd(&mut p, PmuReg::Pmovsset), CYCLE_BIT, "{version:?}: LC = 0");

        // LC = 1: only at the 64-bit wrap.
        wr(&mut p, PmuReg::Pmovsclr, CYCLE_BIT);
        wr(&mut p, PmuReg::Pmcr, PMCR_E | PMCR_LC);
        wr(&mut p, PmuReg::Pmccntr, 0xffff_fff0);
        p.count(CPU_CYCLES, 0x20);
        assert_eq!(rd(&mut p, PmuReg::Pmccntr), 0x1_0000_0010);
        assert_eq!(rd(&mut p, PmuReg::Pmovsset), 0, "{version:?}: LC = 1, 32-bit wrap");
        wr(&mut p, PmuReg::Pmccntr, u64::MAX - 0xf);
        p.count(CPU_CYCLES, 0x20);
        assert_eq!(rd(&mut p, PmuReg::Pmccntr), 0x10);
        assert_eq!(rd(&mut p, PmuReg::Pmovsset), CYCLE_BIT, "{version:?}: LC = 1, 64-bit wrap");
    }
}

#[test]
fn pmcr_d_divides_the_cycle_counter_by_64_only_with_lc_0() {
    let mut p = pmu(PmuVersion::V3p5, 0);
    wr(&mut p, PmuReg::Pmcntenset, CYCLE_BIT);
    wr(&mut p, PmuReg::Pmcr, PMCR_E | PMCR_D);
    p.count(CPU_CYCLES, 63);
    assert_eq!(rd(&mut p, PmuReg::Pmccntr), 0);
    p.count(CPU_CYCLES, 1);
    assert_eq!(rd(&mut p, PmuReg::Pmccntr), 1);
    p.count(CPU_CYCLES, 640);
    assert_eq!(rd(&mut p, PmuReg::Pmccntr), 11);

    // The overflow comes on the 64th cycle of the last tick.
    wr(&mut p, PmuReg::Pmcr, PMCR_E | PMCR_D | PMCR_C);
    wr(&mut p, PmuReg::Pmccntr, 0xffff_ffff);
    assert_eq!(p.events_until_overflow(CPU_CYCLES), Some(64));
    p.count(CPU_CYCLES, 63);
    assert_eq!(rd(&mut p, PmuReg::Pmovsset), 0);
    p.count(CPU_CYCLES, 1);
    assert_eq!(rd(&mut p, PmuReg::Pmccntr), 0x1_0000_0000);
    assert_eq!(rd(&mut p, PmuReg::Pmovsset), CYCLE_BIT);

    // D is ignored with LC = 1.
    wr(&mut p, PmuReg::Pmcr, PMCR_E | PMCR_D | PMCR_LC | PMCR_C);
    p.count(CPU_CYCLES, 64);
    assert_eq!(rd(&mut p, PmuReg::Pmccntr), 64);
    // And without D every cycle counts.
    wr(&mut p, PmuReg::Pmcr, PMCR_E | PMCR_C);
    p.count(CPU_CYCLES, 5);
    assert_eq!(rd(&mut p, PmuReg::Pmccntr), 5);
}

#[test]
fn aarch32_counter_writes_keep_the_upper_half() {
    let mut p = pmu(PmuVersion::V3p5, 2);
    for reg in [cnt(0), PmuReg::Pmxevcntr, PmuReg::Pmccntr] {
        wr(&mut p, PmuReg::Pmselr, 1);
        wr(&mut p, reg, 0xaaaa_bbbb_cccc_dddd);
        assert_eq!(p.emulate(reg, a32(Op::Write(0x1111_2222_3333_4444))), Outcome::Written);
        assert_eq!(rd(&mut p, reg), 0xaaaa_bbbb_3333_4444, "{reg}: Params::aarch32");
        assert_eq!(p.emulate(reg, a32(Op::Read)), Outcome::Read(0x3333_4444), "{reg}: MRC reads bits [31:0]");

        // The same through a trapped MCR: R4 holds the value (junk in X4[63:32]).
        wr(&mut p, reg, 0x5555_6666_7777_8888);
        let mut x = [0u64; 31];
        x[4] = 0xffff_ffff_0123_4567;
        let mcr = SysregAccess { reg, dir: Direction::Write, xfer: Xfer::A32 { rt: gpr(4), cond: None } };
        assert_eq!(p.handle(&mcr, Pstate::EL1, &mut x), Outcome::Written);
        assert_eq!(rd(&mut p, reg), 0x5555_6666_0123_4567, "{reg}: MCR");
        let mrc = SysregAccess { dir: Direction::Read, xfer: Xfer::A32 { rt: gpr(7), cond: None }, ..mcr };
        x[7] = u64::MAX;
        assert_eq!(p.handle(&mrc, Pstate::EL1, &mut x), Outcome::Read(0x0123_4567));
        assert_eq!(x[7], 0x0123_4567, "{reg}: MRC zero-extends into X7");
    }
}

#[test]
fn aarch32_mrrc_and_mcrr_move_all_64_bits_of_pmccntr() {
    let mut p = pmu(PmuVersion::V3p5, 1);
    let mut x = [0u64; 31];
    x[2] = 0xffff_ffff_3333_4444; // Rt: bits [31:0]
    x[3] = 0xeeee_eeee_1111_2222; // Rt2: bits [63:32]
    let mcrr = SysregAccess { reg: PmuReg::Pmccntr, dir: Direction::Write, xfer: Xfer::A32Wide { rt: gpr(2), rt2: gpr(3), cond: None } };
    assert_eq!(p.handle_esr(mcrr.to_esr().unwrap(), Pstate::EL1, &mut x), Ok(Trap::Pmu(Outcome::Written)));
    assert_eq!(rd(&mut p, PmuReg::Pmccntr), 0x1111_2222_3333_4444);

    wr(&mut p, PmuReg::Pmccntr, 0x89ab_cdef_0123_4567);
    let mrrc = SysregAccess { dir: Direction::Read, xfer: Xfer::A32Wide { rt: gpr(5), rt2: gpr(6), cond: None }, ..mcrr };
    assert_eq!(p.handle_esr(mrrc.to_esr().unwrap(), Pstate::EL1, &mut x), Ok(Trap::Pmu(Outcome::Read(0x89ab_cdef_0123_4567))));
    assert_eq!((x[5], x[6]), (0x0123_4567, 0x89ab_cdef));
}

// ---------------------------------------------------------------------------------------------
// PMEVTYPER / PMCCFILTR
// ---------------------------------------------------------------------------------------------

#[test]
fn evtyper_writable_masks_per_version_and_exception_levels() {
    for version in VERSIONS {
        for el2 in [false, true] {
            for el3 in [false, true] {
                let cfg = PmuConfig::builder().version(version).counters(2).el2(el2).el3(el3).build().unwrap();
                let mut p = pmu_with(cfg);
                let event = if version == PmuVersion::V3 { 0x3ff } else { 0xffff };
                let mut filter = F_P | F_U;
                if el2 {
                    filter |= F_NSH;
                }
                if el3 {
                    filter |= F_NSK | F_NSU | F_M;
                }
                let what = format!("{version:?} el2={el2} el3={el3}");
                wr(&mut p, typ(0), u64::MAX);
                assert_eq!(rd(&mut p, typ(0)), filter | event, "PMEVTYPER0, {what}");
                wr(&mut p, PmuReg::Pmselr, 1);
                wr(&mut p, PmuReg::Pmxevtyper, u64::MAX);
                assert_eq!(rd(&mut p, typ(1)), filter | event, "PMXEVTYPER, {what}");
                wr(&mut p, PmuReg::Pmccfiltr, u64::MAX);
                assert_eq!(rd(&mut p, PmuReg::Pmccfiltr), filter, "PMCCFILTR, {what}");
                // Each bit is independently writable.
                wr(&mut p, typ(0), 0);
                assert_eq!(rd(&mut p, typ(0)), 0);
                for bit in [F_P, F_U, F_NSK, F_NSU, F_NSH, F_M, 1 << 25, 1 << 16, 1 << 15, 1 << 10, 1 << 9] {
                    wr(&mut p, typ(0), bit);
                    assert_eq!(rd(&mut p, typ(0)), bit & (filter | event), "bit {bit:#x}, {what}");
                }
            }
        }
    }
}

#[test]
fn filters_count_at_el1_iff_p_eq_nsk_and_at_el0_iff_u_eq_nsu() {
    for el3 in [false, true] {
        for bits in 0..16u64 {
            let pick = |i: u32, f: u64| if (bits >> i) & 1 != 0 { f } else { 0 };
            let filter = pick(0, F_P) | pick(1, F_U) | pick(2, F_NSK) | pick(3, F_NSU);
            let cfg = PmuConfig::builder().counters(1).el3(el3).build().unwrap();
            let mut p = pmu_with(cfg);
            wr(&mut p, PmuReg::Pmccfiltr, filter);
            wr(&mut p, PmuReg::Pmcntenset, CYCLE_BIT);
            enable(&mut p, 0, filter | u64::from(INST_RETIRED));

            p.set_el(El::El0);
            p.count(INST_RETIRED, 10);
            p.count(CPU_CYCLES, 30);
            p.set_el(El::El1);
            p.count(INST_RETIRED, 100);
            p.count(CPU_CYCLES, 300);

            // Without EL3, NSK and NSU are RES0: they read 0 and the rule compares against 0.
            let (nsk, nsu) = if el3 { (filter & F_NSK != 0, filter & F_NSU != 0) } else { (false, false) };
            let at_el1 = (filter & F_P != 0) == nsk;
            let at_el0 = (filter & F_U != 0) == nsu;
            let what = format!("el3={el3} P={} U={} NSK={} NSU={}", bits & 1, bits >> 1 & 1, bits >> 2 & 1, bits >> 3 & 1);
            assert_eq!(rd(&mut p, cnt(0)), u64::from(at_el0) * 10 + u64::from(at_el1) * 100, "PMEVCNTR0, {what}");
            assert_eq!(rd(&mut p, PmuReg::Pmccntr), u64::from(at_el0) * 30 + u64::from(at_el1) * 300, "PMCCNTR, {what}");
        }
    }
}

#[test]
fn changing_the_filter_mid_count_keeps_what_was_counted() {
    let mut p = pmu(PmuVersion::V3p5, 1);
    enable(&mut p, 0, u64::from(INST_RETIRED));
    p.count(INST_RETIRED, 40);
    wr(&mut p, typ(0), F_P | u64::from(INST_RETIRED)); // stop counting at EL1
    p.count(INST_RETIRED, 1000);
    p.set_el(El::El0);
    p.count(INST_RETIRED, 2);
    assert_eq!(rd(&mut p, cnt(0)), 42);
}

// ---------------------------------------------------------------------------------------------
// PMCNTEN / PMINTEN / PMOVS
// ---------------------------------------------------------------------------------------------

#[test]
fn set_clr_pairs_share_one_value_and_mask_unimplemented_counters() {
    let pairs = [(PmuReg::Pmcntenset, PmuReg::Pmcntenclr), (PmuReg::Pmintenset, PmuReg::Pmintenclr), (PmuReg::Pmovsset, PmuReg::Pmovsclr)];
    for n in [0u8, 1, 6, 30, 31] {
        let implemented = ((1u64 << n) - 1) | CYCLE_BIT;
        for (set, clr) in pairs {
            let mut p = pmu(PmuVersion::V3p5, n);
            let both = |p: &mut SoftPmu| {
                let (a, b) = (rd(p, set), rd(p, clr));
                assert_eq!(a, b, "N={n}: {set} and {clr} differ");
                a
            };
            assert_eq!(both(&mut p), 0);
            wr(&mut p, set, 0b101 | CYCLE_BIT);
            assert_eq!(both(&mut p), (0b101 | CYCLE_BIT) & implemented, "N={n}: {set} 0b101|C");
            wr(&mut p, set, 0b010);
            assert_eq!(both(&mut p), (0b111 | CYCLE_BIT) & implemented);
            wr(&mut p, clr, 0b001 | CYCLE_BIT);
            assert_eq!(both(&mut p), 0b110 & implemented, "N={n}: {clr}");
            wr(&mut p, set, 0);
            wr(&mut p, clr, 0);
            assert_eq!(both(&mut p), 0b110 & implemented, "writing 0 changes nothing");
            wr(&mut p, set, u64::MAX);
            assert_eq!(both(&mut p), implemented, "N={n}: bits of unimplemented counters read 0");
            wr(&mut p, clr, 0xffff_ffff_0000_0000);
            assert_eq!(both(&mut p), implemented, "N={n}: bits [63:32] are RES0");
            wr(&mut p, clr, u64::MAX);
            assert_eq!(both(&mut p), 0);
            // AArch32 views.
            assert_eq!(p.emulate(set, a32(Op::Write(0xffff_ffff))), Outcome::Written);
            assert_eq!(p.emulate(clr, a32(Op::Read)), Outcome::Read(implemented));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// PMSWINC
// ---------------------------------------------------------------------------------------------

#[test]
fn pmswinc_is_write_only() {
    let mut p = pmu(PmuVersion::V3p5, 2);
    assert_eq!(p.read(PmuReg::Pmswinc, El::El1), Outcome::Undefined);
    assert_eq!(p.emulate(PmuReg::Pmswinc, a32(Op::Read)), Outcome::Undefined);
    wr(&mut p, PmuReg::Pmuserenr, 0xf);
    assert_eq!(p.read(PmuReg::Pmswinc, El::El0), Outcome::Undefined);
    assert_eq!(p.write(PmuReg::Pmswinc, 0, El::El0), Outcome::Written);
}

#[test]
fn pmswinc_increments_only_enabled_sw_incr_counters_the_filter_allows() {
    let mut p = pmu(PmuVersion::V3p5, 6);
    wr(&mut p, PmuReg::Pmuserenr, 0b0010); // SW: EL0 may write PMSWINC
    wr(&mut p, typ(0), u64::from(SW_INCR)); // counts at both ELs
    wr(&mut p, typ(1), u64::from(INST_RETIRED)); // another event
    wr(&mut p, typ(2), u64::from(SW_INCR)); // will not be enabled
    wr(&mut p, typ(3), u64::from(SW_INCR) | F_P); // not at EL1
    wr(&mut p, typ(4), u64::from(SW_INCR) | F_U); // not at EL0
    wr(&mut p, typ(5), u64::from(SW_INCR) | F_P | F_U); // nowhere
    wr(&mut p, PmuReg::Pmcntenset, 0b11_1011 | CYCLE_BIT);
    wr(&mut p, PmuReg::Pmccntr, 77);

    // PMCR.E = 0: nothing counts.
    wr(&mut p, PmuReg::Pmswinc, u64::MAX);
    for n in 0..6 {
        assert_eq!(rd(&mut p, cnt(n)), 0, "PMCR.E = 0: PMEVCNTR{n}");
    }

    wr(&mut p, PmuReg::Pmcr, PMCR_E);
    wr(&mut p, PmuReg::Pmswinc, u64::MAX); // at EL1, bit 31 and bits >= N included
    assert_eq!([0, 1, 2, 3, 4, 5].map(|n| rd(&mut p, cnt(n))), [1, 0, 0, 0, 1, 0], "PMSWINC at EL1");
    assert_eq!(p.write(PmuReg::Pmswinc, u64::MAX, El::El0), Outcome::Written);
    assert_eq!([0, 1, 2, 3, 4, 5].map(|n| rd(&mut p, cnt(n))), [2, 0, 0, 1, 1, 0], "PMSWINC at EL0");
    // Only the bits written as 1.
    wr(&mut p, PmuReg::Pmswinc, 0b1_0000);
    assert_eq!([0, 1, 2, 3, 4, 5].map(|n| rd(&mut p, cnt(n))), [2, 0, 0, 1, 2, 0]);
    // The cycle counter's bit is ignored.
    assert_eq!(rd(&mut p, PmuReg::Pmccntr), 77);
    assert_eq!(rd(&mut p, PmuReg::Pmovsset), 0);
}

#[test]
fn pmswinc_wrap_sets_pmovsset() {
    // (version, LP, preset, expected value, overflow)
    let cases = [
        (PmuVersion::V3, 0, 0xffff_ffff, 0, true),
        (PmuVersion::V3p4, 0, 0xffff_fffe, 0xffff_ffff, false),
        (PmuVersion::V3p5, 0, 0xffff_ffff, 0x1_0000_0000, true),
        (PmuVersion::V3p5, PMCR_LP, 0xffff_ffff, 0x1_0000_0000, false),
        (PmuVersion::V3p5, PMCR_LP, u64::MAX, 0, true),
    ];
    for (version, lp, preset, value, overflow) in cases {
        let mut p = pmu(version, 1);
        wr(&mut p, PmuReg::Pmcr, lp);
        enable(&mut p, 0, u64::from(SW_INCR));
        wr(&mut p, cnt(0), preset);
        wr(&mut p, PmuReg::Pmswinc, 1);
        assert_eq!(rd(&mut p, cnt(0)), value, "{version:?} LP={lp} preset {preset:#x}");
        assert_eq!(rd(&mut p, PmuReg::Pmovsset), u64::from(overflow), "{version:?} LP={lp} preset {preset:#x}");
    }
}

// ---------------------------------------------------------------------------------------------
// CHAIN
// ---------------------------------------------------------------------------------------------

/// Counter 0 `SW_INCR` at `preset0`, counter 1 `CHAIN` at `preset1`, both enabled (counter 1 only
/// if `odd_enabled`), then one PMSWINC of counter 0.
fn chain_pair(version: PmuVersion, lp: u64, preset0: u64, preset1: u64, odd_enabled: bool) -> SoftPmu {
    let mut p = pmu(version, 2);
    wr(&mut p, PmuReg::Pmcr, PMCR_E | lp);
    wr(&mut p, typ(0), u64::from(SW_INCR));
    wr(&mut p, typ(1), u64::from(CHAIN));
    wr(&mut p, PmuReg::Pmcntenset, if odd_enabled { 0b11 } else { 0b01 });
    wr(&mut p, cnt(0), preset0);
    wr(&mut p, cnt(1), preset1);
    wr(&mut p, PmuReg::Pmswinc, 1);
    p
}

#[test]
fn chain_counts_overflows_of_the_even_counter() {
    for version in VERSIONS {
        let mut p = chain_pair(version, 0, 0xffff_ffff, 5, true);
        let wrapped = if version >= PmuVersion::V3p5 { 0x1_0000_0000 } else { 0 };
        assert_eq!(rd(&mut p, cnt(0)), wrapped, "{version:?}");
        assert_eq!(rd(&mut p, cnt(1)), 6, "{version:?}: CHAIN");
        assert_eq!(rd(&mut p, PmuReg::Pmovsset), 0b01, "{version:?}: the even counter's flag is set too");

        // No overflow of the even counter, no CHAIN.
        let mut p = chain_pair(version, 0, 0xffff_fffd, 5, true);
        assert_eq!(rd(&mut p, cnt(1)), 5);
        assert_eq!(rd(&mut p, PmuReg::Pmovsset), 0);

        // The odd counter's own wrap sets its flag.
        let mut p = chain_pair(version, 0, 0xffff_ffff, 0xffff_ffff, true);
        let odd_wrapped = if version >= PmuVersion::V3p5 { 0x1_0000_0000 } else { 0 };
        assert_eq!(rd(&mut p, cnt(1)), odd_wrapped, "{version:?}");
        assert_eq!(rd(&mut p, PmuReg::Pmovsset), 0b11, "{version:?}");
    }
}

#[test]
fn no_chain_with_lp_1() {
    let mut p = chain_pair(PmuVersion::V3p5, PMCR_LP, u64::MAX, 5, true);
    assert_eq!(rd(&mut p, cnt(0)), 0);
    assert_eq!(rd(&mut p, PmuReg::Pmovsset), 0b01);
    assert_eq!(rd(&mut p, cnt(1)), 5, "CHAIN must not count with LP = 1");
    // With LP = 1 the 32-bit wrap is no overflow at all.
    let mut p = chain_pair(PmuVersion::V3p5, PMCR_LP, 0xffff_ffff, 5, true);
    assert_eq!(rd(&mut p, cnt(1)), 5);
    assert_eq!(rd(&mut p, PmuReg::Pmovsset), 0);
}

#[test]
fn no_chain_into_a_disabled_odd_counter() {
    let mut p = chain_pair(PmuVersion::V3p5, 0, 0xffff_ffff, 5, false);
    assert_eq!(rd(&mut p, PmuReg::Pmovsset), 0b01);
    assert_eq!(rd(&mut p, cnt(1)), 5);
}

#[test]
fn counter_30_never_chains_into_the_cycle_counter() {
    let mut p = pmu(PmuVersion::V3p5, 31);
    wr(&mut p, PmuReg::Pmcr, PMCR_E);
    wr(&mut p, typ(30), u64::from(SW_INCR));
    wr(&mut p, typ(29), u64::from(CHAIN)); // odd, but below 30: not its pair
    wr(&mut p, PmuReg::Pmccfiltr, F_P | F_U); // the cycle counter counts nothing itself
    wr(&mut p, PmuReg::Pmcntenset, (1 << 30) | (1 << 29) | CYCLE_BIT);
    wr(&mut p, cnt(30), 0xffff_ffff);
    wr(&mut p, cnt(29), 3);
    wr(&mut p, PmuReg::Pmccntr, 7);
    wr(&mut p, PmuReg::Pmswinc, 1 << 30);
    assert_eq!(rd(&mut p, cnt(30)), 0x1_0000_0000);
    assert_eq!(rd(&mut p, PmuReg::Pmovsset), 1 << 30);
    assert_eq!(rd(&mut p, PmuReg::Pmccntr), 7, "counter 30 chained into PMCCNTR");
    assert_eq!(rd(&mut p, cnt(29)), 3, "counter 30 chained into counter 29");
}

#[test]
fn an_odd_counter_overflow_does_not_chain_upwards() {
    let mut p = pmu(PmuVersion::V3p5, 4);
    wr(&mut p, PmuReg::Pmcr, PMCR_E);
    wr(&mut p, typ(1), u64::from(SW_INCR));
    wr(&mut p, typ(2), u64::from(CHAIN));
    wr(&mut p, typ(3), u64::from(CHAIN));
    wr(&mut p, PmuReg::Pmcntenset, 0b1110);
    wr(&mut p, cnt(1), 0xffff_ffff);
    wr(&mut p, PmuReg::Pmswinc, 0b10);
    assert_eq!(rd(&mut p, PmuReg::Pmovsset), 0b10);
    assert_eq!((rd(&mut p, cnt(2)), rd(&mut p, cnt(3))), (0, 0));
}

// ---------------------------------------------------------------------------------------------
// Overflow and the interrupt line
// ---------------------------------------------------------------------------------------------

#[test]
fn overflow_sets_pmovsset_even_with_the_interrupt_masked() {
    let mut p = pmu(PmuVersion::V3p5, 1);
    enable(&mut p, 0, u64::from(INST_RETIRED));
    wr(&mut p, cnt(0), 0xffff_ffff);
    p.count(INST_RETIRED, 1);
    assert_eq!(rd(&mut p, PmuReg::Pmovsset), 1);
    assert!(!p.irq_level(), "PMINTENSET is 0");
    // Unmasking it afterwards raises the line: the flag was kept.
    wr(&mut p, PmuReg::Pmintenset, 1);
    assert!(p.irq_level());
}

#[test]
fn the_line_is_exactly_e_and_ovs_and_inten() {
    for bit in [0u64, 3, 31] {
        for combo in 0..16u32 {
            let (e, ovs, inten, cnten) = (combo & 1 != 0, combo & 2 != 0, combo & 4 != 0, combo & 8 != 0);
            let mut p = pmu(PmuVersion::V3p5, 4);
            let mask = 1u64 << bit;
            // Other bits set where they must not matter: an overflow flag without its
            // interrupt enable (counter 1), an interrupt enable without its flag (counter 2).
            wr(&mut p, PmuReg::Pmovsset, if ovs { mask } else { 0 } | 0b010);
            wr(&mut p, PmuReg::Pmintenset, if inten { mask } else { 0 } | 0b100);
            if cnten {
                wr(&mut p, PmuReg::Pmcntenset, mask);
            }
            wr(&mut p, PmuReg::Pmcr, if e { PMCR_E } else { 0 });
            let what = format!("bit {bit}: E={e} OVS={ovs} INTEN={inten} CNTEN={cnten}");
            assert_eq!(p.irq_level(), e && ovs && inten, "{what}");
        }
    }
}

#[test]
fn writes_raise_and_lower_the_line() {
    let mut p = pmu(PmuVersion::V3p5, 2);
    wr(&mut p, PmuReg::Pmcr, PMCR_E);
    wr(&mut p, PmuReg::Pmintenset, 0b10);
    assert!(!p.irq_level());
    wr(&mut p, PmuReg::Pmovsset, 0b10);
    assert!(p.irq_level(), "a PMOVSSET write raises the line");
    wr(&mut p, PmuReg::Pmovsclr, 0b10);
    assert!(!p.irq_level(), "PMOVSCLR lowers it");

    wr(&mut p, PmuReg::Pmovsset, 0b10);
    assert!(p.irq_level());
    wr(&mut p, PmuReg::Pmintenclr, 0b10);
    assert!(!p.irq_level(), "PMINTENCLR lowers it");
    wr(&mut p, PmuReg::Pmintenset, 0b10);
    assert!(p.irq_level());

    wr(&mut p, PmuReg::Pmcr, 0);
    assert!(!p.irq_level(), "PMCR.E = 0 lowers it");
    wr(&mut p, PmuReg::Pmcr, PMCR_E);
    assert!(p.irq_level(), "PMCR.E = 1 raises it again");

    // Clearing an unrelated flag leaves it up.
    wr(&mut p, PmuReg::Pmovsset, 0b01);
    wr(&mut p, PmuReg::Pmovsclr, 0b01);
    assert!(p.irq_level());
}

// ---------------------------------------------------------------------------------------------
// PMMIR
// ---------------------------------------------------------------------------------------------

#[test]
fn pmmir_exists_from_v3p4_and_is_read_only() {
    for version in [PmuVersion::V3, PmuVersion::V3p1] {
        let mut p = pmu(version, 1);
        assert_eq!(p.read(PmuReg::Pmmir, El::El1), Outcome::Undefined, "{version:?}");
        assert_eq!(p.write(PmuReg::Pmmir, 0, El::El1), Outcome::Undefined, "{version:?}");
        assert_eq!(p.emulate(PmuReg::Pmmir, a32(Op::Read)), Outcome::Undefined, "{version:?}");
    }
    for version in [PmuVersion::V3p4, PmuVersion::V3p5] {
        let cfg = PmuConfig::builder().version(version).pmmir(0x0012_3404).build().unwrap();
        let mut p = pmu_with(cfg);
        assert_eq!(rd(&mut p, PmuReg::Pmmir), 0x0012_3404, "{version:?}");
        assert_eq!(p.write(PmuReg::Pmmir, 0, El::El1), Outcome::Undefined, "{version:?}");
        assert_eq!(rd(&mut p, PmuReg::Pmmir), 0x0012_3404);
        assert_eq!(p.emulate(PmuReg::Pmmir, a32(Op::Read)), Outcome::Read(0x0012_3404));
    }
}

// ---------------------------------------------------------------------------------------------
// PMCEID
// ---------------------------------------------------------------------------------------------

#[test]
fn pmceid_is_read_only_and_writes_are_undefined() {
    let mut p = pmu(PmuVersion::V3p5, 1);
    wr(&mut p, PmuReg::Pmuserenr, 0xf);
    for reg in [PmuReg::Pmceid0, PmuReg::Pmceid1, PmuReg::Pmceid2, PmuReg::Pmceid3] {
        let before = p.emulate(reg, a32(Op::Read));
        for v in [0, u64::MAX] {
            assert_eq!(p.write(reg, v, El::El1), Outcome::Undefined, "{reg}");
            assert_eq!(p.write(reg, v, El::El0), Outcome::Undefined, "{reg} at EL0");
            assert_eq!(p.emulate(reg, a32(Op::Write(v))), Outcome::Undefined, "{reg} MCR");
        }
        assert_eq!(p.emulate(reg, a32(Op::Read)), before, "{reg} changed");
    }
}

#[test]
fn pmceid_advertises_the_backend_events_plus_sw_incr_and_chain() {
    let events = [INST_RETIRED, CPU_CYCLES, 0x23, 0x3d, 0x3e, 0x3f, 0x4004, 0x4021];
    let low0 = 1 | (1 << 8) | (1 << 17) | (1 << 30); // SW_INCR, INST_RETIRED, CPU_CYCLES, CHAIN
    let high0 = 1 << 4; // 0x4004
    let low1 = 1 << 3; // 0x23; 0x3d..=0x3f hidden while PMMIR.SLOTS = 0
    let high1 = 1 << 1; // 0x4021
    let slots = 0b111 << 29; // 0x3d, 0x3e, 0x3f

    for version in VERSIONS {
        let upper = version >= PmuVersion::V3p1;
        let p = |cfg: PmuConfig| Pmu::new(cfg, SoftBackend::with_events(&events)).unwrap();
        let mut pm = p(config(version, 1));
        let (h0, h1) = if upper { (high0, high1) } else { (0, 0) };
        assert_eq!(rd(&mut pm, PmuReg::Pmceid0), low0 | (h0 << 32), "{version:?} PMCEID0");
        assert_eq!(rd(&mut pm, PmuReg::Pmceid1), low1 | (h1 << 32), "{version:?} PMCEID1");
        // The AArch32 views: PMCEID0/1 are the low halves, PMCEID2/3 the high halves; PMCEID2
        // and PMCEID3 exist only from PMUv3p1 (UNDEFINED before).
        assert_eq!(pm.emulate(PmuReg::Pmceid0, a32(Op::Read)), Outcome::Read(low0));
        assert_eq!(pm.emulate(PmuReg::Pmceid1, a32(Op::Read)), Outcome::Read(low1));
        let (c2, c3) = if upper { (Outcome::Read(h0), Outcome::Read(h1)) } else { (Outcome::Undefined, Outcome::Undefined) };
        assert_eq!(pm.emulate(PmuReg::Pmceid2, a32(Op::Read)), c2, "{version:?} PMCEID2");
        assert_eq!(pm.emulate(PmuReg::Pmceid3, a32(Op::Read)), c3, "{version:?} PMCEID3");

        if version >= PmuVersion::V3p4 {
            let cfg = PmuConfig::builder().version(version).counters(1).pmmir(4).build().unwrap();
            let mut pm = p(cfg);
            assert_eq!(rd(&mut pm, PmuReg::Pmceid1), low1 | slots | (h1 << 32), "{version:?}: PMMIR.SLOTS = 4 shows STALL_SLOT*");
            // SLOTS is PMMIR[7:0]: other fields do not reveal them.
            let cfg = PmuConfig::builder().version(version).counters(1).pmmir(0x00ff_ff00).build().unwrap();
            assert_eq!(rd(&mut p(cfg), PmuReg::Pmceid1), low1 | (h1 << 32));
        }
    }

    // A backend that counts nothing: only SW_INCR and CHAIN.
    let mut pm = Pmu::new(config(PmuVersion::V3p5, 1), SoftBackend::with_events(&[])).unwrap();
    assert_eq!(rd(&mut pm, PmuReg::Pmceid0), 1 | (1 << 30));
    assert_eq!(rd(&mut pm, PmuReg::Pmceid1), 0);

    // The event filter hides denied events, never SW_INCR or CHAIN.
    let cfg = PmuConfig::builder().counters(1).filter(FilterAction::Deny, 0x00..=0x1f).unwrap().build().unwrap();
    let mut pm = Pmu::new(cfg, SoftBackend::with_events(&events)).unwrap();
    assert_eq!(rd(&mut pm, PmuReg::Pmceid0), 1 | (1 << 30) | (high0 << 32));
    assert_eq!(rd(&mut pm, PmuReg::Pmceid1), low1 | (high1 << 32));
}

// ---------------------------------------------------------------------------------------------
// Reset
// ---------------------------------------------------------------------------------------------

#[test]
fn reset_gives_the_architectural_reset_state_and_releases_the_backend() {
    for aarch32_el0 in [false, true] {
        let cfg = PmuConfig::builder().counters(4).aarch32_el0(aarch32_el0).identity(0x41, 0x0b).build().unwrap();
        let mut p = pmu_with(cfg);
        // Everything non-zero, counter 0 and the cycle counter live in the backend.
        wr(&mut p, PmuReg::Pmcr, PMCR_E | PMCR_D | PMCR_X | PMCR_DP | PMCR_LP);
        for n in 0..4 {
            wr(&mut p, typ(n), u64::from(INST_RETIRED) | F_U);
            wr(&mut p, cnt(n), 1000 + u64::from(n));
        }
        wr(&mut p, PmuReg::Pmccfiltr, F_U);
        wr(&mut p, PmuReg::Pmccntr, 5000);
        wr(&mut p, PmuReg::Pmcntenset, u64::MAX);
        wr(&mut p, PmuReg::Pmintenset, u64::MAX);
        wr(&mut p, PmuReg::Pmovsset, u64::MAX);
        wr(&mut p, PmuReg::Pmselr, 2);
        wr(&mut p, PmuReg::Pmuserenr, 0xf);
        p.count(INST_RETIRED, 10);
        assert!(p.irq_level());
        assert!(p.events_until_overflow(INST_RETIRED).is_some());

        p.reset();

        let id = (4 << PMCR_N_SHIFT) | (0x0b << PMCR_IDCODE_SHIFT) | (0x41 << PMCR_IMP_SHIFT);
        let lc = if aarch32_el0 { 0 } else { PMCR_LC };
        assert_eq!(rd(&mut p, PmuReg::Pmcr), id | lc, "PMCR: E = 0, N kept");
        for n in 0..4 {
            assert_eq!(rd(&mut p, cnt(n)), 0, "PMEVCNTR{n}");
            assert_eq!(rd(&mut p, typ(n)), 0, "PMEVTYPER{n}");
        }
        for reg in [
            PmuReg::Pmccntr,
            PmuReg::Pmccfiltr,
            PmuReg::Pmcntenset,
            PmuReg::Pmintenset,
            PmuReg::Pmovsset,
            PmuReg::Pmselr,
            PmuReg::Pmuserenr,
        ] {
            assert_eq!(rd(&mut p, reg), 0, "{reg} after reset");
        }
        assert!(!p.irq_level());
        assert_eq!(p.events_until_overflow(INST_RETIRED), None, "a backend counter is still programmed");
        assert_eq!(p.events_until_overflow(CPU_CYCLES), None, "the cycle counter is still programmed");

        // Nothing counts any more: the old programming is gone from the backend.
        p.count(INST_RETIRED, 100);
        p.count(CPU_CYCLES, 100);
        wr(&mut p, PmuReg::Pmcr, PMCR_E);
        wr(&mut p, PmuReg::Pmcntenset, 0b1); // counter 0 is SW_INCR now
        p.count(INST_RETIRED, 100);
        assert_eq!(rd(&mut p, cnt(0)), 0);
        assert_eq!(rd(&mut p, PmuReg::Pmccntr), 0);
        // And it counts again once programmed.
        wr(&mut p, typ(0), u64::from(INST_RETIRED));
        p.count(INST_RETIRED, 3);
        assert_eq!(rd(&mut p, cnt(0)), 3);
    }
}

#[test]
fn reset_pmcr_stops_the_counters_and_keeps_their_values() {
    let mut p = pmu(PmuVersion::V3p5, 2);
    wr(&mut p, PmuReg::Pmcr, PMCR_E | PMCR_LP | PMCR_D | PMCR_X);
    enable(&mut p, 0, u64::from(INST_RETIRED));
    wr(&mut p, PmuReg::Pmcntenset, CYCLE_BIT);
    wr(&mut p, PmuReg::Pmovsset, 0b10);
    wr(&mut p, PmuReg::Pmintenset, 0b10);
    assert!(p.irq_level());
    p.count(INST_RETIRED, 25); // counted while enabled: kept
    p.reset_pmcr();
    assert_eq!(rd(&mut p, PmuReg::Pmcr), 2 << PMCR_N_SHIFT);
    assert!(!p.irq_level(), "PMCR.E = 0");
    p.count(INST_RETIRED, 1000);
    p.count(CPU_CYCLES, 1000);
    assert_eq!(rd(&mut p, cnt(0)), 25, "counted after reset_pmcr");
    assert_eq!(rd(&mut p, PmuReg::Pmccntr), 0);
    assert_eq!(p.events_until_overflow(INST_RETIRED), None);
    // The rest of the register file is untouched.
    assert_eq!(rd(&mut p, PmuReg::Pmcntenset), 0b1 | CYCLE_BIT);
    assert_eq!(rd(&mut p, PmuReg::Pmovsset), 0b10);
    assert_eq!(rd(&mut p, typ(0)), u64::from(INST_RETIRED));
}

// ---------------------------------------------------------------------------------------------
// Configuration errors
// ---------------------------------------------------------------------------------------------

#[test]
fn builder_rejects_each_bad_input_with_its_error() {
    let b = PmuConfig::builder;
    assert_eq!(b().counters(32).build(), Err(ConfigError::TooManyCounters { requested: 32, max: 31 }));
    assert_eq!(b().counters(255).build(), Err(ConfigError::TooManyCounters { requested: 255, max: 31 }));
    assert!(b().counters(31).build().is_ok());
    assert!(b().counters(0).build().is_ok());

    for version in [PmuVersion::V3, PmuVersion::V3p1] {
        assert_eq!(b().version(version).pmmir(1).build(), Err(ConfigError::PmmirWithoutV3p4));
        assert!(b().version(version).pmmir(0).build().is_ok());
    }
    assert_eq!(b().version(PmuVersion::V3p4).pmmir(0x0100_0000).build(), Err(ConfigError::PmmirReserved { bits: 0x0100_0000 }));
    assert_eq!(b().pmmir(0xf0ff_ffff).build(), Err(ConfigError::PmmirReserved { bits: 0xf000_0000 }));
    assert!(b().version(PmuVersion::V3p4).pmmir(0x00ff_ffff).build().is_ok());

    for irq in [PmuIrq::Ppi(15), PmuIrq::Ppi(32), PmuIrq::Spi(31), PmuIrq::Spi(1020), PmuIrq::Spi(u16::MAX)] {
        assert_eq!(b().irq(irq).build(), Err(ConfigError::BadIrq(irq)), "{irq:?}");
    }
    for irq in [PmuIrq::Ppi(16), PmuIrq::Ppi(23), PmuIrq::Ppi(31), PmuIrq::Spi(32), PmuIrq::Spi(1019)] {
        assert!(b().irq(irq).build().is_ok(), "{irq:?}");
    }
    assert_eq!(PmuIrq::validate_vm(&[PmuIrq::Ppi(23), PmuIrq::Ppi(22)]), Err(ConfigError::IrqMismatch { first: 0, second: 1 }));
    assert_eq!(
        PmuIrq::validate_vm(&[PmuIrq::Spi(40), PmuIrq::Spi(41), PmuIrq::Spi(40)]),
        Err(ConfigError::IrqMismatch { first: 0, second: 2 })
    );
    assert_eq!(PmuIrq::validate_vm(&[PmuIrq::Ppi(23), PmuIrq::Spi(40)]), Err(ConfigError::IrqMismatch { first: 0, second: 1 }));
    assert_eq!(PmuIrq::validate_vm(&[PmuIrq::Ppi(23), PmuIrq::Ppi(7)]), Err(ConfigError::BadIrq(PmuIrq::Ppi(7))));

    #[allow(clippy::reversed_empty_ranges)] // on purpose
    let empty = 5..=4;
    assert_eq!(b().filter(FilterAction::Allow, empty).err(), Some(ConfigError::EmptyFilterRange { first: 5, last: 4 }));
    let mut full = b();
    for i in 0..MAX_FILTER_ACTIONS {
        full = full.filter(FilterAction::Allow, (i as u16)..=(i as u16)).unwrap();
    }
    assert_eq!(full.filter(FilterAction::Deny, 0..=0).err(), Some(ConfigError::TooManyFilterActions));
    assert!(full.build().is_ok());
}

/// A backend with room for only a few counters.
struct Small(u8);

impl CounterBackend for Small {
    type Error = Infallible;
    fn max_event_counters(&self) -> u8 {
        self.0
    }
    fn supports(&self, _: u16) -> bool {
        true
    }
    fn program(&mut self, _: CounterId, _: &CountRequest) -> Result<(), Infallible> {
        Ok(())
    }
    fn read(&mut self, _: CounterId) -> u64 {
        0
    }
    fn release(&mut self, _: CounterId) {}
}

#[test]
fn pmu_new_refuses_more_counters_than_the_backend_has() {
    let cfg = |n| PmuConfig::builder().counters(n).build().unwrap();
    assert_eq!(Pmu::new(cfg(5), Small(4)).err(), Some(ConfigError::TooManyCounters { requested: 5, max: 4 }));
    assert_eq!(Pmu::new(cfg(1), Small(0)).err(), Some(ConfigError::TooManyCounters { requested: 1, max: 0 }));
    assert!(Pmu::new(cfg(4), Small(4)).is_ok());
    assert!(Pmu::new(cfg(0), Small(0)).is_ok());
    assert!(Pmu::new(cfg(31), SoftBackend::new()).is_ok());

    // reconfigure checks the backend too, and changes nothing on error.
    let mut p = Pmu::new(cfg(2), Small(4)).unwrap();
    assert_eq!(p.reconfigure(cfg(6)), Err(ConfigError::TooManyCounters { requested: 6, max: 4 }));
    assert_eq!(p.config().counters(), 2);
    assert_eq!(p.read(PmuReg::Pmcr, El::El1), Outcome::Read(2 << PMCR_N_SHIFT));
}

#[test]
fn reconfigure_after_start_is_busy_and_changes_nothing() {
    let mut p = pmu(PmuVersion::V3p5, 6);
    let three = PmuConfig::builder().counters(3).version(PmuVersion::V3p1).el0_denial(El0Denial::Undefined).build().unwrap();
    assert_eq!(p.reconfigure(three), Ok(()));
    assert_eq!(*p.config(), three);
    assert_eq!(rd(&mut p, PmuReg::Pmcr), 3 << PMCR_N_SHIFT);
    assert_eq!(p.read(cnt(3), El::El1), Outcome::Undefined, "N = 3 now");

    wr(&mut p, cnt(0), 42);
    wr(&mut p, PmuReg::Pmcr, PMCR_E);
    assert!(!p.config_locked());
    p.lock_config();
    assert!(p.config_locked());
    let five = PmuConfig::builder().counters(5).build().unwrap();
    assert_eq!(p.reconfigure(five), Err(ConfigError::Busy));
    assert_eq!(*p.config(), three, "the configuration changed");
    assert_eq!(rd(&mut p, PmuReg::Pmcr), PMCR_E | (3 << PMCR_N_SHIFT), "the PMU was reset or reconfigured");
    assert_eq!(rd(&mut p, cnt(0)), 42);
    assert_eq!(p.read(cnt(3), El::El1), Outcome::Undefined);
}
