//! `access_sequence`: an arbitrary configuration and an arbitrary sequence of steps, run on a
//! `Pmu<Delayed>` and on the eager reference model (`tests/common/model.rs`) side by side.
//!
//! Steps are register accesses through [`Pmu::handle_esr`] — syndromes built from any register
//! with [`SysregAccess::to_esr`], AArch64 `MRS`/`MSR` (the zero register included), AArch32
//! `MRC`/`MCR` and `MRRC`/`MCRR`, at EL0 or EL1, with junk in the guest registers the access
//! does not use — event batches, changes of exception level, resets, and migrations (save, the
//! byte form and back, restore into a new PMU). After every step:
//!
//! - the outcome (the value read, `Written`, `Undefined`, `TrapToEl1`) is the model's;
//! - a read lands in `Rt` (and `Rt2`) as the transfer says, and no other guest register moves;
//! - the interrupt level is the model's;
//! - on a clone of the PMU (reads fold the lazy counts, the PMU under test must not be
//!   disturbed): the SET and CLR views of PMCNTEN, PMINTEN and PMOVS agree with each other and
//!   with the model, and have no bit of a counter that does not exist;
//! - after an event batch, `events_until_overflow` is the model's distance to the next overflow.
//!
//! At the end every register is read on a clone and compared with the model.
//!
//! Every input runs twice: on the `SoftBackend`, and on `Delayed`, a `SoftBackend` whose
//! overflow signal stays pending until the `Pmu` asks (`tests/common/delayed.rs`), as a physical
//! PMU interrupt or a perf signal may. The interrupt level and the bitmaps are read on clones,
//! so the checks do not deliver the signal.
//!
//! AArch32 accesses carry a condition and the guest's flags: one that fails must be
//! `ConditionFailed` and change nothing (the model evaluates the condition itself).
//!
//! The input is read with a small byte reader rather than `arbitrary`, so that this file, like
//! `mod.rs`, needs nothing but `std` and vpmu's public API: `tests/fuzz_corpus.rs` replays the
//! corpus through it on stable Rust under plain `cargo test`. A missing byte reads as zero.

#[path = "../delayed.rs"]
mod delayed;
#[path = "../model.rs"]
mod model;

use delayed::Delayed;
use model::Model;
use vpmu::config::{El0Denial, FilterAction, PmuConfig, PmuVersion};
use vpmu::decode::{Cond, Direction, Gpr, SysregAccess, Xfer};
use vpmu::reg::{EventCounter, PmuReg};
use vpmu::{El, GuestRegs, Op, Outcome, Params, Pmu, PmuState, Pstate, SoftBackend};

/// The most steps one input runs.
pub const MAX_STEPS: usize = 200;

const LOW: u64 = 0xffff_ffff;

/// Reads an input front to back; past its end every byte is zero.
pub struct Bytes<'a> {
    data: &'a [u8],
}

impl<'a> Bytes<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte.
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// The next `n <= 8` bytes, little-endian.
    pub fn le(&mut self, n: usize) -> u64 {
        (0..n).fold(0, |v, i| v | u64::from(self.u8()) << (8 * i))
    }

    /// A value below `n` (`n >= 1`), from one byte.
    pub fn below(&mut self, n: u8) -> u8 {
        self.u8() % n
    }
}

/// A value a guest might write: one byte picks the kind, so the fuzzer reaches overflow edges,
/// single bits and bitmaps without guessing eight bytes.
fn value(b: &mut Bytes) -> u64 {
    match b.below(12) {
        0 => 0,
        1 => u64::from(b.u8()),
        2 => 0xffff_ff00 | u64::from(b.u8()),
        3 => u64::MAX - u64::from(b.u8()),
        4 => 0x1_ffff_ff00 | u64::from(b.u8()),
        5 => 1 << b.below(64),
        6 => u64::from(b.u8() & 0x3f) | if b.u8() & 1 == 1 { 1 << 31 } else { 0 },
        7 => u64::from(b.u8()) << 24 | u64::from(b.u8()), // a filter byte and an event
        8 => u64::from(b.u8()) << 24 | u64::from(b.le(2) as u16),
        9 => b.le(4),
        10 => 0x8000_0000_0000_0000 - u64::from(b.u8()),
        _ => b.le(8),
    }
}

/// An event count for one batch: below 2^40, where the SoftBackend is exact.
fn batch_size(b: &mut Bytes) -> u64 {
    match b.below(6) {
        0 => u64::from(b.below(4)),
        1 => u64::from(b.u8()),
        2 => 60 + u64::from(b.below(10)),
        3 => b.le(4) + u64::from(b.below(32)),
        4 => (1 << 32) - 8 + u64::from(b.below(16)),
        _ => b.le(5) & ((1 << 40) - 1),
    }
}

fn event(b: &mut Bytes) -> u16 {
    match b.below(8) {
        0 | 1 => 0x08,
        2 | 3 => 0x11,
        4 => 0x1e,
        5 => u16::from(b.below(0x40)),
        6 => 0x4000 | u16::from(b.below(0x40)),
        _ => b.le(2) as u16,
    }
}

/// The configuration and the host's events.
fn setup(b: &mut Bytes) -> Result<(PmuConfig, Option<Vec<u16>>), String> {
    let n = b.below(32);
    let flags = b.u8();
    let version = [PmuVersion::V3, PmuVersion::V3p1, PmuVersion::V3p4, PmuVersion::V3p5][usize::from(flags & 3)];
    let (imp, idcode) = (b.u8(), b.u8());
    let pmmir = if version >= PmuVersion::V3p4 { b.le(3) as u32 } else { 0 };
    let mut builder = PmuConfig::builder()
        .counters(n)
        .version(version)
        .aarch32_el0(flags & 4 != 0)
        .el3(flags & 16 != 0)
        .identity(imp, idcode)
        .pmmir(pmmir)
        .el0_denial(if flags & 32 != 0 { El0Denial::Undefined } else { El0Denial::TrapToEl1 });
    if flags & 64 != 0 {
        for _ in 0..1 + b.below(4) {
            let action = if b.u8() & 1 == 1 { FilterAction::Allow } else { FilterAction::Deny };
            let first = u16::from(b.below(0x48));
            let last = first + u16::from(b.below(12));
            builder = builder.filter(action, first..=last).map_err(|e| format!("filter {first:#x}..={last:#x}: {e}"))?;
        }
    }
    let supported = (flags & 128 != 0).then(|| {
        (0..b.below(10))
            .map(|_| {
                let e = b.u8();
                if e & 0x40 == 0 {
                    u16::from(e & 0x3f)
                } else {
                    0x4000 | u16::from(e & 0x3f)
                }
            })
            .collect()
    });
    let cfg = builder.build().map_err(|e| format!("a valid configuration was refused: {e}"))?;
    Ok((cfg, supported))
}

/// `X0..=X30`, each filled with a recognisable value before every access.
struct Regs([u64; 31]);

impl GuestRegs for Regs {
    fn get(&self, n: u8) -> u64 {
        self.0.as_slice().get(usize::from(n)).copied().unwrap_or(0)
    }
    fn set(&mut self, n: u8, value: u64) {
        if let Some(x) = self.0.as_mut_slice().get_mut(usize::from(n)) {
            *x = value;
        }
    }
}

macro_rules! ensure {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            return Err(format!($($why)+));
        }
    };
}

/// One register access: the syndrome, and what the model expects.
fn access(b: &mut Bytes, pmu: &mut Pmu<Delayed>, model: &mut Model, aarch32_el0: bool) -> Result<(), String> {
    let all: Vec<PmuReg> = PmuReg::all().collect();
    let pick = usize::from(b.u8());
    // Counter registers by index mostly below N: the fuzzer meets existing counters more often.
    let n = model.counters().max(1);
    let reg = match all[pick % all.len()] {
        PmuReg::Pmevcntr(_) if pick & 0x80 != 0 => PmuReg::Pmevcntr(EventCounter::new(b.below(n).min(30)).unwrap()),
        PmuReg::Pmevtyper(_) if pick & 0x80 != 0 => PmuReg::Pmevtyper(EventCounter::new(b.below(n).min(30)).unwrap()),
        r => r,
    };
    let flags = b.u8();
    let dir = if flags & 1 == 1 { Direction::Read } else { Direction::Write };
    let mut el = if flags & 2 == 2 { El::El0 } else { El::El1 };
    let kind = (flags >> 2) & 3;
    let rt = b.u8();
    let cond = match (flags >> 4) & 3 {
        0 => None,
        1 => Some(Cond::AL),
        _ => Cond::new(b.below(16)),
    };
    // AArch32 registers are R0..R14 (the syndrome gives their AArch64 view, 0..=30; 15, the
    // PC, is not a transfer register for these registers). MRRC/MCRR need two distinct ones.
    let a32_rt = Gpr::new(rt % 15).unwrap();
    let xfer = if !reg.in_aarch64() || kind == 1 || (kind == 2 && reg != PmuReg::Pmccntr) {
        Xfer::A32 { rt: a32_rt, cond }
    } else if kind == 2 {
        Xfer::A32Wide { rt: a32_rt, rt2: Gpr::new((rt % 15 + 1 + b.below(14)) % 15).unwrap(), cond }
    } else {
        Xfer::A64 { rt: Gpr::new_truncate(rt) }
    };
    let aarch32 = !matches!(xfer, Xfer::A64 { .. });
    if aarch32 && !aarch32_el0 {
        el = El::El1; // no AArch32 at EL0 on this guest
    }
    let a = SysregAccess { reg, dir, xfer };
    let esr = a.to_esr().map_err(|e| format!("{a:?} has no syndrome: {e}"))?;
    // The guest's flags, for a conditional AArch32 instruction; its SPSR (usr or svc mode).
    let nzcv = if aarch32 && cond.is_some_and(|c| c != Cond::AL) { b.u8() & 0xf } else { 0 };
    let pstate = if aarch32 {
        let mode = if el == El::El0 { 0x10 } else { 0x13 };
        Pstate::from_spsr(u64::from(nzcv) << 28 | mode).ok_or("an AArch32 SPSR was refused")?
    } else {
        Pstate::from(el)
    };
    // A trap from another level than the one events are reported at: the guest moved there.
    if el != model.el() {
        pmu.set_el(el);
        model.set_el(el);
    }

    // The guest's registers: junk everywhere, the value to write in Rt (and Rt2).
    let junk = 0x5a5a_0000_0000_0000 | u64::from(flags) << 8;
    let mut regs = Regs(core::array::from_fn(|i| junk | i as u64));
    let v = value(b);
    let written = match xfer {
        Xfer::A64 { rt } => {
            regs.set(rt.get(), v);
            if rt.is_zero_reg() {
                0
            } else {
                v
            }
        }
        Xfer::A32 { rt, .. } => {
            // Bits [63:32] of the X register are not part of an AArch32 R register.
            regs.set(rt.get(), (v & LOW) | (junk & !LOW));
            v & LOW
        }
        Xfer::A32Wide { rt, rt2, .. } => {
            regs.set(rt.get(), (v & LOW) | (junk & !LOW));
            regs.set(rt2.get(), (v >> 32) | (junk & !LOW));
            v
        }
    };
    let before = regs.0;
    let op = if dir == Direction::Read { Op::Read } else { Op::Write(written) };
    let fails = aarch32 && cond.is_some_and(|c| !model::condition_holds(c.get(), nzcv));
    let want = if fails { Outcome::ConditionFailed } else { model.access(reg, op, xfer.is_32bit(), el) };
    let got = pmu.handle_esr(esr, pstate, &mut regs).map_err(|e| format!("{a} (ESR {esr:#x}) did not decode: {e}"))?;
    let got = got.outcome().ok_or_else(|| format!("{a} (ESR {esr:#x}) is not a PMU register to handle_esr"))?;
    ensure!(got == want, "{a} at {el:?} (ESR {esr:#x}, {op:?}): the PMU gives {got:?}, the model {want:?}");

    // The guest registers: a read lands where the transfer says, nothing else moves.
    let mut expect = before;
    if let Outcome::Read(v) = got {
        match xfer {
            Xfer::A64 { rt } if rt.is_zero_reg() => {}
            Xfer::A64 { rt } => expect[usize::from(rt.get())] = v,
            Xfer::A32 { rt, .. } => {
                ensure!(v <= LOW, "{a}: a 32-bit read gave {v:#x}");
                expect[usize::from(rt.get())] = v;
            }
            Xfer::A32Wide { rt, rt2, .. } => {
                expect[usize::from(rt.get())] = v & LOW;
                expect[usize::from(rt2.get())] = v >> 32;
            }
        }
    }
    ensure!(regs.0 == expect, "{a} at {el:?} gave {got:?}: the guest registers are {:x?}, expected {expect:x?}", regs.0);
    Ok(())
}

/// PMCNTEN, PMINTEN and PMOVS read through both views on a clone: the same value, the model's,
/// and no bit of a counter that does not exist.
fn check_bitmaps(pmu: &Pmu<Delayed>, model: &Model) -> Result<(), String> {
    let mut pmu = pmu.clone();
    let mut model = model.clone();
    let absent = !(((1u64 << model.counters()) - 1) | 1 << 31);
    for (set, clr) in
        [(PmuReg::Pmcntenset, PmuReg::Pmcntenclr), (PmuReg::Pmintenset, PmuReg::Pmintenclr), (PmuReg::Pmovsset, PmuReg::Pmovsclr)]
    {
        let (s, c) = (pmu.read(set, El::El1), pmu.read(clr, El::El1));
        ensure!(s == c, "{set} reads {s:?} but {clr} reads {c:?}");
        let want = model.access(set, Op::Read, false, El::El1);
        ensure!(s == want, "{set} reads {s:?}, the model {want:?}");
        ensure!(s.value().unwrap_or(0) & absent == 0, "{set} = {s:?} has bits of counters that do not exist (N = {})", model.counters());
    }
    Ok(())
}

/// Every register read at EL1 on clones of both.
fn check_registers(pmu: &Pmu<Delayed>, model: &Model) -> Result<(), String> {
    let mut pmu = pmu.clone();
    let mut model = model.clone();
    for reg in PmuReg::all() {
        // PMCEID2/PMCEID3 exist only in AArch32.
        let aarch32 = !reg.in_aarch64();
        let got = pmu.emulate(reg, Params { op: Op::Read, aarch32, el: El::El1 });
        let want = model.access(reg, Op::Read, aarch32, El::El1);
        ensure!(got == want, "reading {reg} at EL1 at the end: the PMU gives {got:?}, the model {want:?}");
    }
    Ok(())
}

/// `events_until_overflow` is exact for counters the SoftBackend tracks exactly: those less than
/// 2^62 events from their overflow (an input reports far fewer than 2^62 events in all).
fn check_deadline(pmu: &Pmu<Delayed>, model: &Model, event: u16) -> Result<(), String> {
    // A host with a late signal asks once it is handled (on a clone, which handles it).
    let mut pmu = pmu.clone();
    pmu.handle_overflows();
    model.check_deadline(event, pmu.events_until_overflow(event))
}

/// Migration: the state saved, through its byte form, restored into a new PMU on a new backend
/// (which the host tells the current EL). Guest-visible nothing changes: the model does not move.
fn migrate(pmu: &mut Pmu<Delayed>, cfg: &PmuConfig, supported: Option<&[u16]>, el: El, delay: bool) -> Result<Pmu<Delayed>, String> {
    let state = pmu.save();
    let bytes = state.to_bytes();
    let back = PmuState::from_bytes(&bytes).map_err(|e| format!("the saved state's bytes do not read back: {e}"))?;
    ensure!(back == state, "the saved state's bytes read back as {back:?}, not {state:?}");
    let backend = supported.map_or_else(SoftBackend::new, SoftBackend::with_events);
    let mut new = Pmu::new(*cfg, Delayed::new(backend, delay)).map_err(|e| format!("Pmu::new refused {cfg:?}: {e}"))?;
    new.set_el(el);
    new.restore(&back).map_err(|e| format!("restoring the saved state {state:?} failed: {e}"))?;
    Ok(new)
}

/// Runs one input.
///
/// # Errors
///
/// A sentence naming the step and what disagreed.
pub fn check(data: &[u8]) -> Result<(), String> {
    run(data, false).map_err(|why| format!("SoftBackend: {why}"))?;
    run(data, true).map_err(|why| format!("with a late overflow signal: {why}"))
}

fn run(data: &[u8], delay: bool) -> Result<(), String> {
    let mut b = Bytes::new(data);
    let (cfg, supported) = setup(&mut b)?;
    let backend = supported.as_deref().map_or_else(SoftBackend::new, SoftBackend::with_events);
    let mut pmu = Pmu::new(cfg, Delayed::new(backend, delay)).map_err(|e| format!("Pmu::new refused {cfg:?}: {e}"))?;
    let mut model = Model::new(&cfg, supported.as_deref());
    let mut step = 0;
    while !b.is_empty() && step < MAX_STEPS {
        step += 1;
        let at = |why: String| format!("step {step}: {why}");
        match b.below(17) {
            0..=9 => access(&mut b, &mut pmu, &mut model, cfg.aarch32_el0()).map_err(at)?,
            10..=12 => {
                let (e, k) = (event(&mut b), batch_size(&mut b));
                pmu.count(e, k);
                model.count(e, k);
                check_deadline(&pmu, &model, e).map_err(at)?;
            }
            13 => {
                let el = if b.u8() & 1 == 1 { El::El0 } else { El::El1 };
                pmu.set_el(el);
                model.set_el(el);
            }
            14 => {
                pmu.reset();
                model.reset();
            }
            15 => {
                pmu.reset_pmcr();
                model.reset_pmcr();
            }
            _ => pmu = migrate(&mut pmu, &cfg, supported.as_deref(), model.el(), delay).map_err(at)?,
        }
        // On a clone: sampling the level handles pending overflows, which would end the delay.
        let level = pmu.clone().irq_level();
        ensure!(level == model.irq_level(), "step {step}: the PMU's interrupt level is {level}, the model's {}", model.irq_level());
        check_bitmaps(&pmu, &model).map_err(|why| format!("step {step}: {why}"))?;
    }
    check_registers(&pmu, &model)
}
