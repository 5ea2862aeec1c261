//! Every decoder and encoder, and the names of registers and errors.
#![no_std]
#![no_main]

use core::fmt::Write;
use core::hint::black_box;
use vpmu::decode::{decode_esr, decode_insn};
use vpmu::reg::{A64Id, Cp15Id, PmuReg};
use vpmu_no_panic::{check, opaque};

struct Sink;
impl Write for Sink {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        black_box(s);
        Ok(())
    }
}

check!(vpmu_panic_reachable_from_decoders, {
    let d = decode_esr(opaque());
    if let Ok(d) = d {
        let _ = black_box(d.to_esr());
        let _ = black_box(d.to_insn());
        if let vpmu::decode::Decoded::Pmu(a) = d {
            let _ = write!(Sink, "{a}");
        }
    }
    if let Err(e) = d {
        let _ = write!(Sink, "{e}");
    }
    let _ = black_box(decode_insn(opaque()));
    let _ = black_box(PmuReg::from_a64(A64Id::from_packed(opaque())));
    if let Some(id) = Cp15Id::new(opaque(), opaque(), opaque(), opaque()) {
        let _ = black_box(PmuReg::from_cp15(id));
    }
    let name: &str = black_box("PMEVCNTR30_EL0");
    if let Ok(r) = name.parse::<PmuReg>() {
        let _ = write!(Sink, "{r} {}", r.aarch32_name());
    }
});
