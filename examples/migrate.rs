#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::arithmetic_side_effects)]
//! Live migration of a vPMU, mid-count, without losing a single event.
//!
//! ```text
//! cargo run --example migrate
//! ```
//!
//! A guest programs its PMU (instructions retired on counter 0, chained into counter 1 for a
//! 64-bit count on a PMUv3p1 PMU, mispredicted branches at EL0 only on counter 2, cycles on
//! `PMCCNTR` divided by 64) and runs a workload that an emulator reports to a `SoftBackend`.
//! Half way through, the VMM snapshots the PMU to bytes, ships them to a "destination host",
//! restores them into a second `Pmu` there, and the guest runs the rest of its workload on it.
//!
//! The same guest runs a second time on one host without migrating. The example prints both
//! sets of totals and checks that they are identical (it exits with status 1 if not).

use vpmu::config::{PmuConfig, PmuIrq, PmuVersion};
use vpmu::reg::{EventCounter, PmuReg};
use vpmu::{El, Pmu, PmuState, SoftBackend};

const INST_RETIRED: u16 = 0x08;
const BR_MIS_PRED: u16 = 0x10;
const CPU_CYCLES: u16 = 0x11;
const CHAIN: u16 = 0x1e;

fn config() -> PmuConfig {
    PmuConfig::builder().counters(4).version(PmuVersion::V3p1).irq(PmuIrq::Ppi(23)).build().expect("a valid configuration")
}

fn ev(n: u8) -> EventCounter {
    EventCounter::new(n).unwrap()
}

/// What the guest kernel does at boot: its MSRs, as the PMU sees them at EL1.
fn guest_programs(pmu: &mut Pmu<SoftBackend>) {
    let mut msr = |reg, value| {
        let _ = pmu.write(reg, value, El::El1);
    };
    msr(PmuReg::Pmevtyper(ev(0)), u64::from(INST_RETIRED));
    msr(PmuReg::Pmevcntr(ev(0)), 0xfe80_0000); // 25 M instructions from its 32-bit overflow
    msr(PmuReg::Pmevtyper(ev(1)), u64::from(CHAIN));
    msr(PmuReg::Pmevtyper(ev(2)), (1 << 31) | u64::from(BR_MIS_PRED)); // P = 1: EL0 only
    msr(PmuReg::Pmcntenset, (1 << 31) | 0b111);
    msr(PmuReg::Pmintenset, 0b001);
    msr(PmuReg::Pmcr, 0b1001); // E, D: PMCCNTR ticks every 64 cycles
}

/// A deterministic workload: `steps` slices alternating between the kernel and user space.
fn guest_runs(pmu: &mut Pmu<SoftBackend>, from: u64, steps: u64) -> u64 {
    let mut interrupts = 0;
    for i in from..from + steps {
        let el = if i % 3 == 0 { El::El1 } else { El::El0 };
        pmu.set_el(el);
        let insns = 1_000 + (i * 7919) % 5_000;
        pmu.count(INST_RETIRED, insns);
        pmu.count(CPU_CYCLES, insns * 3 / 2 + i % 61);
        pmu.count(BR_MIS_PRED, i % 17);
        if pmu.irq_level() {
            // The guest's overflow handler: acknowledge counter 0's overflow.
            interrupts += 1;
            let _ = pmu.write(PmuReg::Pmovsclr, 0b001, El::El1);
        }
    }
    interrupts
}

#[derive(Debug, PartialEq, Eq)]
struct Totals {
    inst_retired_64: u64,
    br_mis_pred_el0: u64,
    pmccntr: u64,
    pmovsset: u64,
    interrupts: u64,
}

fn totals(pmu: &mut Pmu<SoftBackend>, interrupts: u64) -> Totals {
    let mut mrs = |reg| pmu.read(reg, El::El1).value().unwrap();
    let low = mrs(PmuReg::Pmevcntr(ev(0)));
    let high = mrs(PmuReg::Pmevcntr(ev(1)));
    Totals {
        inst_retired_64: (high << 32) | low,
        br_mis_pred_el0: mrs(PmuReg::Pmevcntr(ev(2))),
        pmccntr: mrs(PmuReg::Pmccntr),
        pmovsset: mrs(PmuReg::Pmovsset),
        interrupts,
    }
}

fn print(what: &str, t: &Totals) {
    println!("{what}:");
    println!("  INST_RETIRED (PMEVCNTR1:PMEVCNTR0, chained) {:>12}", t.inst_retired_64);
    println!("  BR_MIS_PRED at EL0 (PMEVCNTR2)              {:>12}", t.br_mis_pred_el0);
    println!("  PMCCNTR (cycles / 64)                       {:>12}", t.pmccntr);
    println!("  PMOVSSET                                    {:>#12x}", t.pmovsset);
    println!("  overflow interrupts taken                   {:>12}", t.interrupts);
}

fn main() {
    const FIRST: u64 = 5_000;
    const SECOND: u64 = 7_000;

    // The reference: one host, no migration.
    let mut stay = Pmu::new(config(), SoftBackend::new()).unwrap();
    stay.lock_config();
    guest_programs(&mut stay);
    let irqs = guest_runs(&mut stay, 0, FIRST) + guest_runs(&mut stay, FIRST, SECOND);
    let reference = totals(&mut stay, irqs);

    // The source host runs the first half, then the VMM snapshots the PMU mid-count; after
    // that, the source host is gone.
    let (bytes, el, irqs_before) = {
        let mut source = Pmu::new(config(), SoftBackend::new()).unwrap();
        source.lock_config();
        guest_programs(&mut source);
        let irqs = guest_runs(&mut source, 0, FIRST);
        let state = source.save();
        let bytes: [u8; PmuState::BYTES] = state.to_bytes();
        println!("snapshot: {} bytes after {FIRST} slices, counter 0 at {:#x}", bytes.len(), state.evcntr[0]);
        // The exception level the emulator reports events at is the host's state, not the PMU's.
        (bytes, source.backend().el(), irqs)
    };

    // The destination host: the same configuration, a fresh backend, the bytes.
    let mut destination = Pmu::new(config(), SoftBackend::new()).unwrap();
    destination.lock_config();
    let state = PmuState::from_bytes(&bytes).expect("the bytes arrive intact");
    destination.restore(&state).expect("the state fits the destination's configuration");
    destination.set_el(el);
    let irqs_after = guest_runs(&mut destination, FIRST, SECOND);
    let migrated = totals(&mut destination, irqs_before + irqs_after);

    print("without migration", &reference);
    print("migrated half way", &migrated);
    if migrated == reference {
        println!("identical: the migration lost and added nothing");
    } else {
        println!("MISMATCH: the migrated guest counted differently");
        std::process::exit(1);
    }
}
