//! The trap path: `Pmu::handle_esr`/`handle_insn`/`emulate` for every register, `irq_level`,
//! `sync`, `reset`, and the `SoftBackend` reporting calls.
#![no_std]
#![no_main]

use core::hint::black_box;
use vpmu::config::PmuConfig;
use vpmu::{El, Params, Pmu, Pstate, SoftBackend};
use vpmu_no_panic::{check, opaque};

fn el() -> El {
    if opaque::<bool>() {
        El::El0
    } else {
        El::El1
    }
}

check!(vpmu_panic_reachable_from_pmu_trap_path, {
    let cfg = PmuConfig::builder().counters(opaque()).build();
    if let Ok(cfg) = cfg {
        if let Ok(mut pmu) = Pmu::new(cfg, SoftBackend::new()) {
            let mut x = [0u64; 31];
            let _ = black_box(pmu.handle_esr(opaque(), Pstate::from_spsr(opaque()).unwrap_or(Pstate::EL1), &mut x));
            let _ = black_box(pmu.handle_insn(opaque(), el(), &mut x));
            if let Ok(reg) = black_box("PMXEVCNTR_EL0").parse() {
                let _ = black_box(pmu.emulate(reg, Params { op: vpmu::Op::Write(opaque()), aarch32: opaque(), el: el() }));
            }
            pmu.count(opaque(), opaque());
            pmu.set_el(el());
            let _ = black_box(pmu.events_until_overflow(opaque()));
            pmu.sync();
            let _ = black_box(pmu.irq_level());
            pmu.reset();
            let _ = black_box(pmu.pmu_counter_idx_valid(opaque()));
            black_box(&pmu);
        }
    }
});
