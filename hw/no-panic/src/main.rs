//! Link-time proof that no panic is reachable from `HwBackend`'s entry points on the real
//! registers, alone and under a `Pmu`: the panic handler calls a symbol that exists nowhere, so
//! a reachable panic fails the link with `undefined symbol: vpmu_hw_panic_reachable`.
#![no_std]
#![no_main]

use core::hint::black_box;
use vpmu::backend::{CountRequest, CounterBackend, CounterId};
use vpmu::config::PmuConfig;
use vpmu::{Pmu, Pstate};
use vpmu_hw::{HwBackend, SysRegs};

fn opaque<T: Copy + Default>() -> T {
    black_box(T::default())
}

fn req() -> CountRequest {
    CountRequest::new(opaque(), opaque(), opaque(), opaque())
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    extern "Rust" {
        fn vpmu_hw_panic_reachable() -> !;
    }
    // SAFETY: never executed. If this handler is reachable at all, the link fails, because
    // `vpmu_hw_panic_reachable` is defined nowhere; that failure is the point of the check.
    unsafe { vpmu_hw_panic_reachable() }
}

#[no_mangle]
pub extern "C" fn _start() -> ! {
    // The backend alone, every entry point with any input.
    let mut b = HwBackend::new(SysRegs::new());
    let _ = black_box(b.max_event_counters());
    let _ = black_box(b.supports(opaque()));
    if let Some(id) = CounterId::from_bit(opaque()) {
        b.load();
        let _ = black_box(b.program(id, &req()));
        let _ = black_box(b.read(id));
        let _ = black_box(b.set_period(id, &req()));
        let _ = black_box(b.take_overflows());
        let _ = black_box(b.ack_irq());
        b.put();
        let _ = black_box(b.read(id));
        let _ = black_box(b.program(id, &req()));
        b.release(id);
    }
    black_box(&mut b);
    drop(b);
    vpmu_hw::quiesce(&mut SysRegs::new());

    // Under a Pmu: the trap path reaching the backend, loaded and put.
    if let Ok(cfg) = PmuConfig::builder().counters(opaque()).build() {
        if let Ok(mut pmu) = Pmu::new(cfg, HwBackend::new(SysRegs::new())) {
            let mut x = [0u64; 31];
            pmu.vcpu_load();
            let pstate = Pstate::from_spsr(opaque()).unwrap_or(Pstate::EL1);
            let _ = black_box(pmu.handle_esr(opaque(), pstate, &mut x));
            pmu.handle_overflows();
            pmu.sync();
            let _ = black_box(pmu.irq_level());
            pmu.vcpu_put();
            let _ = black_box(pmu.handle_esr(opaque(), pstate, &mut x));
            let _ = black_box(pmu.irq_level());
            pmu.vcpu_load();
            pmu.reset();
            black_box(&pmu);
        }
    }
    #[allow(clippy::empty_loop)]
    loop {}
}
