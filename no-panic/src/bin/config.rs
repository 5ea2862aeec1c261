//! The VMM's side: the configuration builder and its validation, `reconfigure`, IRQ checks.
#![no_std]
#![no_main]

use core::hint::black_box;
use vpmu::config::{FilterAction, PmuConfig, PmuIrq, PmuVersion};
use vpmu::{Pmu, SoftBackend};
use vpmu_no_panic::{check, opaque};

check!(vpmu_panic_reachable_from_config, {
    let version = match opaque::<u8>() {
        0 => PmuVersion::V3,
        1 => PmuVersion::V3p1,
        2 => PmuVersion::V3p4,
        _ => PmuVersion::V3p5,
    };
    let irq = if opaque() { PmuIrq::Ppi(opaque()) } else { PmuIrq::Spi(opaque()) };
    let b = PmuConfig::builder()
        .counters(opaque())
        .version(version)
        .aarch32_el0(opaque())
        .el3(opaque())
        .identity(opaque(), opaque())
        .pmmir(opaque())
        .irq(irq);
    let action = if opaque() { FilterAction::Allow } else { FilterAction::Deny };
    let b = b.filter(action, opaque::<u16>()..=opaque::<u16>());
    if let Ok(b) = b {
        if let Ok(cfg) = b.build() {
            let _ = black_box(cfg.event_allowed(opaque()));
            if let Ok(mut pmu) = Pmu::new(cfg, SoftBackend::new()) {
                let _ = black_box(pmu.reconfigure(cfg));
                black_box(&pmu);
            }
        }
    }
    let irqs = [irq, PmuIrq::Spi(opaque()), PmuIrq::Ppi(opaque())];
    let _ = black_box(PmuIrq::validate_vm(black_box(&irqs)));
});
