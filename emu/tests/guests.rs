//! Every guest program, run on unicorn with vpmu as its PMU, checked against exact values.

use vpmu_emu::machine::{RAM_BASE, RESULTS};
use vpmu_emu::{guests, Machine, Stats};

/// Runs `image` on a machine with `counters` event counters; returns the first 128 result
/// words and the stats. Fails the test if the guest reached an unexpected vector.
fn run(image: &[u8], counters: u8) -> (Vec<u64>, Stats) {
    let mut m = Machine::new(counters).expect("machine");
    m.set_timeout_us(20_000_000);
    m.load(RAM_BASE, image).expect("load");
    let stats = m.run(RAM_BASE).expect("run");
    let r = m.read_u64s(RESULTS, 128).expect("results");
    assert_ne!(r[127], 0xbad, "unexpected exception: ESR {:#x} ELR {:#x}", r[126], r[125]);
    (r, stats)
}

#[test]
fn perf_stat_counts_the_loop_exactly() {
    let (r, _) = run(guests::PERF_STAT, 6);
    let iter = r[3];
    assert_eq!(iter, 1000);
    assert_eq!(r[1], 1 + 4 * iter, "instructions");
    assert_eq!(r[0], 1 + 4 * iter, "cycles (one per instruction)");
    assert_eq!(r[2], iter, "branches");
}

#[test]
fn two_pmccntr_reads_around_one_instruction_differ_by_two() {
    let (r, _) = run(guests::PMCCNTR_DELTA, 6);
    assert_eq!(r[1] - r[0], 2);
    // PMCR.E was set 4 instructions before the first read: the MSR itself, two NOPs... and
    // the first read sees the instructions before it.
    assert_eq!(r[0], 3);
}

#[test]
fn the_overflow_interrupt_is_taken_right_after_the_overflowing_instruction() {
    let (r, stats) = run(guests::OVERFLOW_IRQ, 6);
    assert_eq!(r[60], 6, "IRQs taken");
    assert_eq!(stats.irqs, 6);
    for c in 0..5 {
        let w = &r[4 * c..4 * c + 4];
        assert_eq!(w[0], w[1], "case {c}: ELR_EL1 {:#x}, expected {:#x}", w[0], w[1]);
        assert_eq!(w[3], 1, "case {c}: PMOVSCLR shows counter 0's overflow");
    }
    assert_eq!(r[2 * 4 + 2], 600 - 499, "case 2: X2 at the interrupt");
    assert_eq!(r[3 * 4 + 2], 600 - 500, "case 3: X2 at the interrupt");
    let w = &r[20..24];
    assert_eq!(w[0], w[1], "case 5 (BR_RETIRED): ELR_EL1 {:#x}, expected {:#x}", w[0], w[1]);
    assert_eq!(w[2], 10 - 3, "case 5: X2 at the interrupt");
    assert_eq!(w[3], 0b10, "case 5: PMOVSCLR shows counter 1's overflow");
}

#[test]
fn sw_incr_counts_writes_and_chain_counts_the_overflow() {
    let (r, _) = run(guests::SW_INCR_CHAIN, 6);
    assert_eq!(r[0], 3, "SW_INCR counter");
    // counter 3 counts instructions: the PMCR write, the MOV, three PMSWINC writes
    assert_eq!(r[1], 5, "INST_RETIRED counter");
    assert_eq!(r[2] & 0xffff_ffff, 0xffff_fff0u64.wrapping_add(33) & 0xffff_ffff, "even counter wrapped");
    assert_eq!(r[3], 6, "CHAIN counter counted the overflow");
    assert_eq!(r[4] & 0b11, 0b01, "PMOVSSET: the even counter overflowed, the odd one did not");
}

/// ESR_EL1 of a trapped A64 system register access (EC 0x18, IL = 1).
fn esr_sys64(op0: u64, op1: u64, crn: u64, crm: u64, op2: u64, rt: u64, read: bool) -> u64 {
    0x18 << 26 | 1 << 25 | op0 << 20 | op2 << 17 | op1 << 14 | crn << 10 | rt << 5 | crm << 1 | u64::from(read)
}

#[test]
fn el0_accesses_follow_pmuserenr_and_trap_with_the_right_syndrome() {
    let (r, _) = run(guests::EL0_ACCESS, 6);
    let pmccntr = esr_sys64(3, 3, 9, 13, 0, 1, true);
    let pmevcntr0 = esr_sys64(3, 3, 14, 8, 0, 2, true);
    let pmswinc = esr_sys64(3, 3, 9, 12, 4, 3, false);
    let pmcr = esr_sys64(3, 3, 9, 12, 0, 4, true);
    let pmxevcntr = esr_sys64(3, 3, 9, 13, 2, 5, true);
    let undef = 1 << 25; // EC 0x00: PMINTENSET_EL1 does not exist at EL0
    let cases: [(u64, &[u64]); 6] = [
        (0, &[pmccntr, pmevcntr0, pmswinc, pmcr, pmxevcntr, undef]),
        (1, &[undef]),                                      // EN
        (2, &[pmccntr, pmevcntr0, pmcr, pmxevcntr, undef]), // SW
        (4, &[pmevcntr0, pmswinc, pmcr, pmxevcntr, undef]), // CR
        (8, &[pmccntr, pmswinc, pmcr, undef]),              // ER
        (15, &[undef]),
    ];
    for (s, (userenr, traps)) in cases.iter().enumerate() {
        let w = &r[16 * s..16 * s + 16];
        assert_eq!(w[8], traps.len() as u64, "PMUSERENR {userenr:#x}: trap count");
        assert_eq!(&w[..traps.len()], *traps, "PMUSERENR {userenr:#x}: syndromes");
        assert_eq!(w[9], *userenr, "PMUSERENR as EL0 reads it");
        let ccntr_allowed = userenr & 0b101 != 0;
        if ccntr_allowed {
            assert!(w[10] > 0 && w[10] != 0x77, "PMCCNTR read at EL0 under {userenr:#x}: {:#x}", w[10]);
        } else {
            assert_eq!(w[10], 0x77, "a trapped MRS leaves Xt alone");
            assert_eq!(w[11], w[12], "ELR_EL1 of the trap is the MRS itself");
        }
    }
}

fn undef_results(counters: u8) -> Vec<u64> {
    run(guests::UNDEF, counters).0
}

#[test]
fn event_counters_beyond_n_are_undefined() {
    let undef = 1 << 25;
    // N = 2: counters 0 and 1 only.
    let r = undef_results(2);
    let expect = [false, true, true, true, true, true, true, false]; // trapped?
    for (i, &t) in expect.iter().enumerate() {
        let w = &r[4 * i..4 * i + 4];
        if t {
            assert_eq!(w[0], undef, "probe {i}: ESR");
            assert_eq!(w[1], w[3], "probe {i}: ELR is the access");
            assert_eq!(w[2], 0x77, "probe {i}: Xt untouched");
        } else {
            assert_eq!(w[0], 0, "probe {i} must not trap");
        }
    }
    assert_eq!(r[2], 0x1234, "PMEVCNTR1 read back");
    // N = 6: all but PMEVCNTR30 exist, including PMEVCNTR5, which QEMU does not define.
    let r = undef_results(6);
    for i in [0, 1, 2, 3, 4, 5, 7] {
        assert_eq!(r[4 * i], 0, "probe {i} must not trap with N = 6");
    }
    assert_eq!(r[4 * 6], undef, "PMEVCNTR30 is UNDEFINED");
    assert_eq!(r[4 + 2], 0, "PMEVCNTR3 reads 0");
    assert_eq!(r[3 * 4 + 2], 0x11, "PMEVTYPER2 reads back");
    assert_eq!(r[5 * 4 + 2], 0x1234, "PMEVCNTR5 reads back");
}

#[test]
fn el_filters_split_counts_exactly_across_eret_and_svc() {
    let (r, _) = run(guests::EL_FILTER, 6);
    assert_eq!(r[0], 12, "instructions at EL0");
    assert_eq!(r[1], 3, "instructions at EL1");
    assert_eq!(r[2], 5, "branches at EL0");
    assert_eq!(r[3], 15, "cycles at both");
}
