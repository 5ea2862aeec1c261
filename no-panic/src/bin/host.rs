//! The host contract: a backend that answers anything (opaque counts, opaque pending-overflow
//! bits, any number of counters) behind the trap path, `handle_overflows`, `irq_level`,
//! `vcpu_load`/`vcpu_put`, `sync`, save and restore.
#![no_std]
#![no_main]

use core::convert::Infallible;
use core::hint::black_box;
use vpmu::backend::{CountRequest, CounterBackend, CounterId};
use vpmu::config::PmuConfig;
use vpmu::{Pmu, Pstate};
use vpmu_no_panic::{check, opaque};

/// Every answer is opaque: the optimiser must assume the worst a real host could report.
struct Anything;

impl CounterBackend for Anything {
    type Error = Infallible;
    fn max_event_counters(&self) -> u8 {
        opaque()
    }
    fn supports(&self, _: u16) -> bool {
        opaque()
    }
    fn program(&mut self, _: CounterId, req: &CountRequest) -> Result<(), Infallible> {
        black_box(req);
        Ok(())
    }
    fn read(&mut self, _: CounterId) -> u64 {
        opaque()
    }
    fn release(&mut self, _: CounterId) {}
    fn take_overflows(&mut self) -> u32 {
        opaque()
    }
}

check!(vpmu_panic_reachable_from_host_contract, {
    let cfg = PmuConfig::builder().counters(opaque()).build();
    if let Ok(cfg) = cfg {
        if let Ok(mut pmu) = Pmu::new(cfg, Anything) {
            let mut x = [0u64; 31];
            pmu.vcpu_load();
            let _ = black_box(pmu.handle_esr(opaque(), Pstate::from_spsr(opaque()).unwrap_or(Pstate::EL0), &mut x));
            pmu.handle_overflows();
            let _ = black_box(pmu.irq_level());
            pmu.vcpu_put();
            pmu.sync();
            let state = pmu.save();
            let _ = black_box(pmu.restore(&black_box(state)));
            black_box(&pmu);
        }
    }
});
