//! A driver for counting the instructions of the trap path with callgrind.
//!
//! Runs `N` trapped accesses (default 1,000,000) through [`Pmu::handle_esr`], a mix of the
//! common ones: `MRS PMCR_EL0`, `MRS PMEVCNTR3_EL0`, `MRS PMXEVCNTR_EL0` (SEL = 3) and
//! `MSR PMSWINC_EL0`, in turn, on a `Pmu<SoftBackend>` whose counters are enabled and counting.
//!
//! ```text
//! cargo build --release --example trap_cost
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg0.out target/release/examples/trap_cost 0
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg1.out target/release/examples/trap_cost 1000000
//! callgrind_annotate /tmp/cg1.out | head -30
//! ```
//!
//! Instructions per access = (total Ir with 1,000,000 − total Ir with 0) / 1,000,000: the
//! difference removes the setup and process start. Pass an access's name as the second
//! argument (`pmcr`, `evcntr`, `xevcntr`, `swinc`, `a32evcntr`, `cntenset`) to run only that
//! access, or `empty` to run the same loop with the trap call left out: subtract its count
//! to get the instructions of the trap path alone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use std::hint::black_box;

use vpmu::config::{PmuConfig, EVENT_CPU_CYCLES, EVENT_INST_RETIRED, EVENT_SW_INCR};
use vpmu::decode::{Direction, Gpr, SysregAccess, Xfer};
use vpmu::reg::{EventCounter, PmuReg};
use vpmu::{El, Outcome, Pmu, Pstate, SoftBackend};

fn esr(reg: PmuReg, dir: Direction, rt: u8) -> u64 {
    SysregAccess { reg, dir, xfer: Xfer::A64 { rt: Gpr::new(rt).unwrap() } }.to_esr().unwrap()
}

/// `MRC p15, 0, R<rt>, ...` (unconditional).
fn esr32(reg: PmuReg, rt: u8) -> u64 {
    SysregAccess { reg, dir: Direction::Read, xfer: Xfer::A32 { rt: Gpr::new(rt).unwrap(), cond: None } }.to_esr().unwrap()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().map_or(1_000_000, |a| a.parse().expect("an access count"));
    let only = args.next();

    let cfg = PmuConfig::builder().counters(6).build().unwrap();
    let mut pmu = Pmu::new(cfg, SoftBackend::new()).unwrap();
    let c = |n| EventCounter::new(n).unwrap();
    for (i, e) in [EVENT_CPU_CYCLES, EVENT_INST_RETIRED, 0x10, 0x12, 0x03, EVENT_SW_INCR].into_iter().enumerate() {
        assert_eq!(pmu.write(PmuReg::Pmevtyper(c(i as u8)), e.into(), El::El1), Outcome::Written);
    }
    assert_eq!(pmu.write(PmuReg::Pmcntenset, 0x8000_003f, El::El1), Outcome::Written);
    assert_eq!(pmu.write(PmuReg::Pmselr, 3, El::El1), Outcome::Written);
    assert_eq!(pmu.write(PmuReg::Pmcr, 1, El::El1), Outcome::Written);
    pmu.count(0x12, 400);

    let all = [
        ("pmcr", esr(PmuReg::Pmcr, Direction::Read, 2)),
        ("evcntr", esr(PmuReg::Pmevcntr(c(3)), Direction::Read, 2)),
        ("xevcntr", esr(PmuReg::Pmxevcntr, Direction::Read, 2)),
        ("swinc", esr(PmuReg::Pmswinc, Direction::Write, 4)),
        ("a32evcntr", esr32(PmuReg::Pmevcntr(c(3)), 2)),
        ("cntenset", esr(PmuReg::Pmcntenset, Direction::Write, 5)),
        // Beyond the six: the general way.
        ("pmcrw", esr(PmuReg::Pmcr, Direction::Write, 6)),
        ("ovsclr", esr(PmuReg::Pmovsclr, Direction::Read, 2)),
        ("evcntrw", esr(PmuReg::Pmevcntr(c(3)), Direction::Write, 7)),
    ];
    let empty = only.as_deref() == Some("empty");
    let mix: Vec<u64> = all
        .iter()
        .filter(|(name, _)| empty || only.as_deref().map_or(true, |o| o == *name))
        .map(|&(_, e)| e)
        .take(if empty { 1 } else { 6 })
        .collect();
    assert!(!mix.is_empty(), "unknown access {only:?}: pmcr, evcntr, xevcntr, swinc, a32evcntr, cntenset or empty");

    let mut x = [0u64; 31];
    x[4] = 1 << 5; // PMSWINC: counter 5, typed SW_INCR
    x[5] = 0x8000_003f; // PMCNTENSET: what is set already (no change)
    x[6] = 1; // PMCR: E, as it is (no change)
    x[7] = 400; // PMEVCNTR3: its value (re-armed all the same)
    let mut sum = 0u64;
    let mut j = 0;
    for _ in 0..n {
        let esr = mix[j];
        j = if j + 1 == mix.len() { 0 } else { j + 1 };
        if empty {
            black_box((black_box(esr), &mut x));
        } else {
            let out = pmu.handle_esr(black_box(esr), Pstate::EL1, &mut x);
            black_box(&out);
        }
        sum = sum.wrapping_add(x[2]);
    }
    println!("{n} accesses, checksum {sum:#x}");
}
