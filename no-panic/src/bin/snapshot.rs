//! Migration: `Pmu::save`/`validate_state`/`restore`, the byte form (`PmuState::to_bytes`,
//! `from_bytes` over any input), and the KVM one-reg entry points over any id and value.
#![no_std]
#![no_main]

use core::hint::black_box;
use vpmu::config::{PmuConfig, PmuVersion};
use vpmu::snapshot::{one_reg_id, one_reg_reg};
use vpmu::{Pmu, PmuState, SoftBackend};
use vpmu_no_panic::{check, opaque};

check!(vpmu_panic_reachable_from_snapshot, {
    let version = match opaque::<u8>() {
        0 => PmuVersion::V3,
        1 => PmuVersion::V3p1,
        2 => PmuVersion::V3p4,
        _ => PmuVersion::V3p5,
    };
    let cfg = PmuConfig::builder().counters(opaque()).version(version).aarch32_el0(opaque()).el3(opaque()).build();
    if let Ok(cfg) = cfg {
        if let Ok(mut pmu) = Pmu::new(cfg, SoftBackend::new()) {
            pmu.count(opaque(), opaque());
            let state = pmu.save();
            let bytes = black_box(state.to_bytes());
            let input: [u8; 600] = opaque_bytes();
            let len: usize = opaque();
            let data = input.get(..len).unwrap_or(&bytes);
            if let Ok(s) = PmuState::from_bytes(black_box(data)) {
                let _ = black_box(pmu.validate_state(&s));
                let _ = black_box(pmu.restore(&s));
            }
            let _ = black_box(pmu.restore(&black_box(state)));
            let id: u64 = opaque();
            let _ = black_box(pmu.get_one_reg(id));
            let _ = black_box(pmu.set_one_reg(id, opaque()));
            for id in pmu.one_reg_ids() {
                black_box(id);
            }
            let _ = black_box(one_reg_reg(opaque()));
            black_box(&pmu);
        }
    }
    if let Ok(reg) = black_box("PMEVTYPER30_EL0").parse() {
        let _ = black_box(one_reg_id(reg));
    }
});

fn opaque_bytes() -> [u8; 600] {
    black_box([0u8; 600])
}
