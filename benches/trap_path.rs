//! The trap path, decode + handle: what a hypervisor pays for one trapped PMU register
//! access, from the ESR_EL2 syndrome to the value in the guest's register.
//!
//! Every access goes through `Pmu::handle_esr` with the syndrome the hardware would report
//! (built with `SysregAccess::to_esr`), on a `Pmu<SoftBackend>` with six event counters and
//! the cycle counter enabled and counting (`PMCR.E` = 1), so reads of a counter fold the
//! backend's count as they would in a running guest. `decode_esr` alone is measured beside
//! it for comparison.
//!
//! Run: `cargo bench --bench trap_path`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::arithmetic_side_effects, missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use vpmu::config::{PmuConfig, EVENT_CPU_CYCLES, EVENT_INST_RETIRED, EVENT_SW_INCR};
use vpmu::decode::{decode_esr, Cond, Direction, Gpr, SysregAccess, Xfer};
use vpmu::reg::{EventCounter, PmuReg};
use vpmu::{El, Outcome, Pmu, Pstate, SoftBackend, Trap};

const COUNTERS: u8 = 6;
/// `PMCR.E`.
const PMCR_E: u64 = 1;
/// The counter `PMEVCNTR<n>` and `PMXEVCNTR` (through `PMSELR`) read.
const READ_COUNTER: u8 = 3;
/// The counter typed `SW_INCR` that `PMSWINC` increments.
const SWINC_COUNTER: u8 = 5;

fn ctr(n: u8) -> EventCounter {
    EventCounter::new(n).unwrap()
}

/// The ESR_EL2 of `MRS X<rt>, <reg>` / `MSR <reg>, X<rt>`.
fn esr64(reg: PmuReg, dir: Direction, rt: u8) -> u64 {
    SysregAccess { reg, dir, xfer: Xfer::A64 { rt: Gpr::new(rt).unwrap() } }.to_esr().unwrap()
}

/// The ESR_EL2 of an unconditional AArch32 `MRC`/`MCR p15, 0, R<rt>, ...`.
fn esr32(reg: PmuReg, dir: Direction, rt: u8) -> u64 {
    SysregAccess { reg, dir, xfer: Xfer::A32 { rt: Gpr::new(rt).unwrap(), cond: Some(Cond::AL) } }.to_esr().unwrap()
}

/// A guest that has programmed its PMU the way `perf stat` leaves it: six counters on
/// hardware events (counter 5 on `SW_INCR`), the cycle counter, all enabled, `PMCR.E` = 1,
/// `PMSELR.SEL` on counter 3; and some events already counted.
fn running_pmu() -> Pmu<SoftBackend> {
    let cfg = PmuConfig::builder().counters(COUNTERS).build().unwrap();
    let mut pmu = Pmu::new(cfg, SoftBackend::new()).unwrap();
    let events = [EVENT_CPU_CYCLES, EVENT_INST_RETIRED, 0x10, 0x12, 0x03, EVENT_SW_INCR];
    for (n, &e) in events.iter().enumerate() {
        assert_eq!(pmu.write(PmuReg::Pmevtyper(ctr(n as u8)), e.into(), El::El1), Outcome::Written);
    }
    assert_eq!(pmu.write(PmuReg::Pmcntenset, 0x8000_003f, El::El1), Outcome::Written);
    assert_eq!(pmu.write(PmuReg::Pmselr, READ_COUNTER.into(), El::El1), Outcome::Written);
    assert_eq!(pmu.write(PmuReg::Pmcr, PMCR_E, El::El1), Outcome::Written);
    for (e, k) in [(EVENT_CPU_CYCLES, 3000), (EVENT_INST_RETIRED, 2000), (0x10, 30), (0x12, 400), (0x03, 70)] {
        pmu.count(e, k);
    }
    assert!(!pmu.irq_level());
    pmu
}

fn trap_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("trap_path");

    let pmcr_read = esr64(PmuReg::Pmcr, Direction::Read, 2);
    let pmcr_write = esr64(PmuReg::Pmcr, Direction::Write, 1);
    let evcntr_read = esr64(PmuReg::Pmevcntr(ctr(READ_COUNTER)), Direction::Read, 2);
    let xevcntr_read = esr64(PmuReg::Pmxevcntr, Direction::Read, 2);
    let pmselr_write = esr64(PmuReg::Pmselr, Direction::Write, 3);
    let pmswinc_write = esr64(PmuReg::Pmswinc, Direction::Write, 4);
    let evcntr_mrc = esr32(PmuReg::Pmevcntr(ctr(READ_COUNTER)), Direction::Read, 2);

    g.bench_function("decode_esr only (MRS PMCR_EL0)", |b| b.iter(|| decode_esr(black_box(pmcr_read))));
    g.bench_function("decode_esr only (MRS PMEVCNTR3_EL0)", |b| b.iter(|| decode_esr(black_box(evcntr_read))));

    let mut pmu = running_pmu();
    let mut x = [0u64; 31];

    g.bench_function("MRS PMCR_EL0", |b| b.iter(|| pmu.handle_esr(black_box(pmcr_read), Pstate::EL1, black_box(&mut x))));
    assert_eq!(x[2] & 0xffff, (u64::from(COUNTERS) << 11) | PMCR_E);

    // The common case: the kernel writes back the value PMCR already holds.
    x[1] = PMCR_E;
    g.bench_function("MSR PMCR_EL0 (same value)", |b| b.iter(|| pmu.handle_esr(black_box(pmcr_write), Pstate::EL1, black_box(&mut x))));

    // Every write flips E: folds and releases all seven counters, or programs them again.
    // Half the iterations disable, half enable; the figure is their mean.
    g.bench_function("MSR PMCR_EL0 (toggles E)", |b| {
        b.iter(|| {
            x[1] ^= PMCR_E;
            pmu.handle_esr(black_box(pmcr_write), Pstate::EL1, black_box(&mut x))
        })
    });
    // Leave the counters running again.
    x[1] = PMCR_E;
    assert_eq!(pmu.handle_esr(pmcr_write, Pstate::EL1, &mut x), Ok(Trap::Pmu(Outcome::Written)));

    g.bench_function("MRS PMEVCNTR3_EL0", |b| b.iter(|| pmu.handle_esr(black_box(evcntr_read), Pstate::EL1, black_box(&mut x))));
    assert_eq!(x[2], 400);

    g.bench_function("MRS PMXEVCNTR_EL0 (SEL = 3)", |b| b.iter(|| pmu.handle_esr(black_box(xevcntr_read), Pstate::EL1, black_box(&mut x))));
    assert_eq!(x[2], 400);

    // What a guest kernel without direct access does: select, then read (two traps).
    x[3] = READ_COUNTER.into();
    g.bench_function("MSR PMSELR_EL0 + MRS PMXEVCNTR_EL0 (2 traps)", |b| {
        b.iter(|| {
            let w = pmu.handle_esr(black_box(pmselr_write), Pstate::EL1, black_box(&mut x));
            let r = pmu.handle_esr(black_box(xevcntr_read), Pstate::EL1, black_box(&mut x));
            (w, r)
        })
    });
    assert_eq!(x[2], 400);

    // Increments counter 5 (typed SW_INCR, enabled, counting at EL1) on every write.
    x[4] = 1 << SWINC_COUNTER;
    g.bench_function("MSR PMSWINC_EL0", |b| b.iter(|| pmu.handle_esr(black_box(pmswinc_write), Pstate::EL1, black_box(&mut x))));
    assert_ne!(pmu.read(PmuReg::Pmevcntr(ctr(SWINC_COUNTER)), El::El1).value(), Some(0));

    // The kernel's enable of a counter that already counts: nothing to re-arm.
    let cntenset_write = esr64(PmuReg::Pmcntenset, Direction::Write, 5);
    x[5] = 1 << READ_COUNTER;
    g.bench_function("MSR PMCNTENSET_EL0 (no change)", |b| {
        b.iter(|| pmu.handle_esr(black_box(cntenset_write), Pstate::EL1, black_box(&mut x)))
    });

    g.bench_function("MRC PMEVCNTR3 (AArch32)", |b| b.iter(|| pmu.handle_esr(black_box(evcntr_mrc), Pstate::EL1, black_box(&mut x))));
    assert_eq!(x[2], 400);

    g.finish();
}

criterion_group!(benches, trap_path);
criterion_main!(benches);
