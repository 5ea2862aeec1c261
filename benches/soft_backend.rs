//! `SoftBackend` batch reporting: the cost of `Pmu::count(event, k)` when 1, 6 or 31 counters
//! count that event, lazy (`Pmu<SoftBackend>`: counters sharing an event and a filter share one
//! running total) against the eager reference model of `tests/common/model.rs` (every batch
//! walks every counter and adds to each one that counts it), side by side in one criterion
//! group.
//!
//! Both sides get the same guest programming: `PMCR.N` = the number of counters, every one of
//! them typed `INST_RETIRED` and enabled, the cycle counter off, `PMCR.E` = 1, and `PMCR.LP`
//! = 1 (PMUv3p5: 64-bit event counters). With `LP` = 1 no counter can overflow during the
//! measurement (2^64 events), so neither side ever takes its overflow path and both do only the
//! steady-state work of a batch. Before measuring, both are fed the same batches and every
//! counter is checked to read the same.
//!
//! Run: `cargo bench --bench soft_backend`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::arithmetic_side_effects, missing_docs)]

#[path = "../tests/common/model.rs"]
mod model;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use model::Model;
use vpmu::config::{PmuConfig, PmuVersion, EVENT_INST_RETIRED};
use vpmu::field::Pmcr;
use vpmu::reg::{EventCounter, PmuReg};
use vpmu::{El, Op, Outcome, Pmu, SoftBackend};

/// Events per batch: a translated block's instructions.
const K: u64 = 16;

/// The accesses that program `n` counters on `INST_RETIRED` and start them, 64-bit overflow.
fn programming(n: u8) -> Vec<(PmuReg, u64)> {
    let mut w: Vec<(PmuReg, u64)> =
        (0..n).map(|i| (PmuReg::Pmevtyper(EventCounter::new(i).unwrap()), u64::from(EVENT_INST_RETIRED))).collect();
    w.push((PmuReg::Pmcntenset, (1u64 << n) - 1));
    w.push((PmuReg::Pmcr, (Pmcr::E | Pmcr::LP).bits()));
    w
}

fn config(n: u8) -> PmuConfig {
    PmuConfig::builder().counters(n).version(PmuVersion::V3p5).build().unwrap()
}

fn lazy(n: u8) -> Pmu<SoftBackend> {
    let mut pmu = Pmu::new(config(n), SoftBackend::new()).unwrap();
    for (reg, v) in programming(n) {
        assert_eq!(pmu.write(reg, v, El::El1), Outcome::Written);
    }
    pmu
}

fn eager(n: u8) -> Model {
    let mut m = Model::new(&config(n), None);
    for (reg, v) in programming(n) {
        assert_eq!(m.access(reg, Op::Write(v), false, El::El1), Outcome::Written);
    }
    m
}

/// Both sides count the same batches to the same values, with no overflow.
fn check_same(n: u8) {
    let (mut p, mut m) = (lazy(n), eager(n));
    for _ in 0..1000 {
        p.count(EVENT_INST_RETIRED, K);
        m.count(EVENT_INST_RETIRED, K);
    }
    for i in 0..n {
        let reg = PmuReg::Pmevcntr(EventCounter::new(i).unwrap());
        let (a, b) = (p.read(reg, El::El1), m.access(reg, Op::Read, false, El::El1));
        assert_eq!(a, b, "counter {i} of {n}");
        assert_eq!(a, Outcome::Read(1000 * K));
    }
    assert_eq!(p.read(PmuReg::Pmovsset, El::El1), Outcome::Read(0));
    assert_eq!(m.access(PmuReg::Pmovsset, Op::Read, false, El::El1), Outcome::Read(0));
}

fn batch_reporting(c: &mut Criterion) {
    let mut g = c.benchmark_group("soft_backend_count");
    for n in [1u8, 6, 31] {
        check_same(n);
        let mut p = lazy(n);
        g.bench_with_input(BenchmarkId::new("lazy", n), &n, |b, _| b.iter(|| p.count(black_box(EVENT_INST_RETIRED), black_box(K))));
        let mut m = eager(n);
        g.bench_with_input(BenchmarkId::new("eager", n), &n, |b, _| b.iter(|| m.count(black_box(EVENT_INST_RETIRED), black_box(K))));
        // Still no overflow on either side after the measurement.
        assert_eq!(p.read(PmuReg::Pmovsset, El::El1), Outcome::Read(0));
        assert_eq!(m.access(PmuReg::Pmovsset, Op::Read, false, El::El1), Outcome::Read(0));
    }
    g.finish();
}

criterion_group!(benches, batch_reporting);
criterion_main!(benches);
