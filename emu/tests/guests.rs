//! Every guest program, run on unicorn with vpmu as its PMU, checked against exact values.

use vpmu_emu::machine::{RAM_BASE, RESULTS};
use vpmu_emu::{guests, Machine, Stats};

/// Runs `image` on a machine with `counters` event counters; returns the first 64 result
/// words and the stats. Fails the test if the guest reached an unexpected vector.
fn run(image: &[u8], counters: u8) -> (Vec<u64>, Stats) {
    let mut m = Machine::new(counters).expect("machine");
    m.set_timeout_us(20_000_000);
    m.load(RAM_BASE, image).expect("load");
    let stats = m.run(RAM_BASE).expect("run");
    let r = m.read_u64s(RESULTS, 64).expect("results");
    assert_ne!(r[63], 0xbad, "unexpected exception: ESR {:#x} ELR {:#x}", r[62], r[61]);
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
