//! An eager reference model of a PMUv3 as a guest sees it, written from the architecture rules
//! (issue 4, `/work/shared/REFERENCE.md`, the Arm ARM register pages) and not from `src/pmu.rs`:
//! its value is its independence.
//!
//! It keeps plain registers and does everything the obvious way: every reported event walks
//! every counter and adds to each one that counts it right now, with the carry computed in
//! `u128`. Nothing is lazy, nothing is cached.
//!
//! Shared by `tests/model_vs_pmu.rs`, `tests/snapshot.rs`, the `access_sequence` fuzz target
//! (and its stable replay) and the benches, through `#[path = "..."] mod model;`: it uses only
//! `std`, vpmu's public API and `arch.rs` beside it, which it pastes in itself (no proptest, no
//! arbitrary).
//!
//! Choices where the Arm ARM leaves the implementation free, made the way vpmu documents them:
//! UNKNOWN reset values are 0; `PMXEVCNTR` with `SEL` = 31 and `PMXEV*` with `SEL` in N..=30 are
//! UNDEFINED; a forbidden EL0 access is a trap to EL1 unless the configuration asks for UNDEF;
//! the cycle counter's /64 prescaler restarts when `PMCCNTR` is written or reset; the cycle
//! counter counts CPU_CYCLES, so it counts only when that event is implemented (the host can
//! count it and the VMM's filter allows it), like an event counter typed 0x11.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    missing_docs
)]

use vpmu::config::{El0Denial, FilterAction, PmuConfig, PmuVersion};
use vpmu::reg::PmuReg;
use vpmu::{El, Op, Outcome};

/// The architecture's numbers, from `arch.rs` beside this file, pasted in so that this file
/// stands alone wherever it is included (see `arch.rs`).
mod arch {
    include!("arch.rs");
}

// The model's own short names for them.
use arch::{
    CHAIN, CPU_CYCLES, F_M, F_NSK, F_NSU, F_P, F_U, PMCR_C as C, PMCR_D as D, PMCR_DP as DP, PMCR_E as E, PMCR_LC as LC, PMCR_LP as LP,
    PMCR_P as P, PMCR_X as X, PMUSERENR_CR as CR, PMUSERENR_EN as EN, PMUSERENR_ER as ER, PMUSERENR_SW as SW, SW_INCR,
};

const LOW: u64 = 0xffff_ffff;
const CYCLE: usize = 31;

/// The guest-visible PMU, eagerly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Model {
    // Configuration.
    n: usize,
    version: PmuVersion,
    aarch32_el0: bool,
    el3: bool,
    imp: u8,
    idcode: u8,
    pmmir: u32,
    el0_trap: bool,
    /// The event filter's actions, in order: (allow, first, last).
    filter: Vec<(bool, u16, u16)>,
    /// The events the host can count; `None`: every event.
    supported: Option<Vec<u16>>,

    // Registers.
    /// PMCR's stored bits (E, D, X, DP, LC, LP).
    pmcr: u64,
    pmselr: u64,
    cnten: u32,
    inten: u32,
    ovs: u32,
    userenr: u64,
    /// Counter values by bit: 0..=30 event counters, 31 the cycle counter.
    cnt: [u64; 32],
    /// PMEVTYPER<n> by bit, and PMCCFILTR at 31.
    typ: [u64; 32],
    /// Cycles counted towards the next tick of PMCCNTR while it divides by 64.
    prescale: u64,
    /// Where the guest runs now.
    el: El,
}

impl Model {
    /// A PMU in its reset state, running at EL1. `supported` lists the events the host can
    /// count (`None`: all of them).
    pub fn new(cfg: &PmuConfig, supported: Option<&[u16]>) -> Self {
        let mut m = Model {
            n: usize::from(cfg.counters()),
            version: cfg.version(),
            aarch32_el0: cfg.aarch32_el0(),
            el3: cfg.el3(),
            imp: cfg.imp(),
            idcode: cfg.idcode(),
            pmmir: cfg.pmmir(),
            el0_trap: cfg.el0_denial() == El0Denial::TrapToEl1,
            filter: cfg.filter().actions().map(|(a, r)| (a == FilterAction::Allow, *r.start(), *r.end())).collect(),
            supported: supported.map(<[u16]>::to_vec),
            pmcr: 0,
            pmselr: 0,
            cnten: 0,
            inten: 0,
            ovs: 0,
            userenr: 0,
            cnt: [0; 32],
            typ: [0; 32],
            prescale: 0,
            el: El::El1,
        };
        m.reset();
        m
    }

    /// The whole PMU's reset: PMCR.E = 0, everything UNKNOWN chosen as 0. The EL is the CPU's,
    /// not the PMU's: it stays.
    pub fn reset(&mut self) {
        self.pmselr = 0;
        self.cnten = 0;
        self.inten = 0;
        self.ovs = 0;
        self.userenr = 0;
        self.cnt = [0; 32];
        self.typ = [0; 32];
        self.prescale = 0;
        self.reset_pmcr();
    }

    /// PMCR's reset value: all stored bits 0, except LC, which is RES1 without AArch32 EL0.
    pub fn reset_pmcr(&mut self) {
        self.pmcr = if self.aarch32_el0 { 0 } else { LC };
    }

    pub fn set_el(&mut self, el: El) {
        self.el = el;
    }

    pub fn el(&self) -> El {
        self.el
    }

    pub fn counters(&self) -> u8 {
        self.n as u8
    }

    /// The overflow interrupt: PMCR.E && (PMOVSSET & PMINTENSET) != 0.
    pub fn irq_level(&self) -> bool {
        self.pmcr & E != 0 && self.ovs & self.inten != 0
    }

    // ---- configuration facts ----------------------------------------------------------

    fn v3p5(&self) -> bool {
        self.version >= PmuVersion::V3p5
    }

    /// Counters 0..N and the cycle counter.
    fn valid_bits(&self) -> u32 {
        ((1u64 << self.n) - 1) as u32 | (1 << CYCLE)
    }

    fn pmcr_writable(&self) -> u64 {
        E | D | X | DP | LC | if self.v3p5() { LP } else { 0 }
    }

    fn filter_bits(&self) -> u64 {
        F_P | F_U | if self.el3 { F_NSK | F_NSU | F_M } else { 0 }
    }

    fn event_bits(&self) -> u64 {
        if self.version == PmuVersion::V3 {
            0x3ff
        } else {
            0xffff
        }
    }

    /// The VMM's event filter: the first action sets the default, the last matching one wins,
    /// SW_INCR and CHAIN always pass.
    fn allowed(&self, event: u16) -> bool {
        if event == SW_INCR || event == CHAIN {
            return true;
        }
        let Some(first) = self.filter.first() else { return true };
        match self.filter.iter().rev().find(|(_, lo, hi)| (*lo..=*hi).contains(&event)) {
            Some((allow, _, _)) => *allow,
            None => !first.0,
        }
    }

    fn host_supports(&self, event: u16) -> bool {
        match &self.supported {
            Some(events) => events.contains(&event),
            None => true,
        }
    }

    /// The event is implemented for this guest: what PMCEID says for a common event, and what
    /// decides whether a counter typed with it counts at all.
    fn implemented(&self, event: u16) -> bool {
        if event == SW_INCR || event == CHAIN {
            return true;
        }
        let stall_slot_hidden = (0x3d..=0x3f).contains(&event) && self.pmmir & 0xff == 0;
        self.host_supports(event) && self.allowed(event) && !stall_slot_hidden
    }

    /// PMCEID0 (`word` 0) or PMCEID1 (`word` 1), all 64 bits.
    fn pmceid(&self, word: u16) -> u64 {
        let mut v = 0;
        for b in 0..32u16 {
            let e = word * 32 + b;
            if self.implemented(e) {
                v |= 1 << b;
            }
            if self.version >= PmuVersion::V3p1 && self.implemented(0x4000 + e) {
                v |= 1 << (32 + b);
            }
        }
        v
    }

    // ---- counting ---------------------------------------------------------------------

    fn lc(&self) -> bool {
        self.pmcr & LC != 0
    }

    fn event_of(&self, i: usize) -> u16 {
        (self.typ[i] & self.event_bits()) as u16
    }

    /// PMCR.E, the counter's PMCNTENSET bit, and the counter exists.
    fn enabled(&self, i: usize) -> bool {
        self.pmcr & E != 0 && self.cnten & (1 << i) != 0 && (i == CYCLE || i < self.n)
    }

    /// The counter's filter lets it count at `el`: EL1 iff P == NSK, EL0 iff U == NSU.
    fn counts_at(&self, i: usize, el: El) -> bool {
        let t = self.typ[i];
        match el {
            El::El1 => (t & F_P != 0) == (t & F_NSK != 0),
            El::El0 => (t & F_U != 0) == (t & F_NSU != 0),
        }
    }

    /// Adds `k` events to counter `i`: the value wraps at its width, every carry out of the
    /// overflow bit sets PMOVSSET, and an even counter's carries go to a chained odd one when
    /// the odd counter's own filter counts at `el`, the level the events happened at (Arm ARM
    /// `AArch64.PMUCycle`: the CHAIN event counts only when `CountPMUEvents(idx + 1)`).
    fn add(&mut self, i: usize, k: u64, el: El) {
        let old = self.cnt[i];
        let long = if i == CYCLE { self.lc() } else { self.v3p5() && self.pmcr & LP != 0 };
        let carries = if long { (u128::from(old) + u128::from(k)) >> 64 } else { (u128::from(old & LOW) + u128::from(k)) >> 32 };
        let wide = i == CYCLE || self.v3p5();
        self.cnt[i] = if wide { old.wrapping_add(k) } else { old.wrapping_add(k) & LOW };
        if carries > 0 {
            self.ovs |= 1 << i;
            if self.chains_into(i + 1) && self.counts_at(i + 1, el) {
                self.add(i + 1, carries as u64, el);
            }
        }
    }

    /// Counter `odd` counts the overflows of `odd - 1`: an odd event counter that exists, is
    /// enabled and is typed CHAIN, and PMCR.LP is not set. (Counter 30 never chains into the
    /// cycle counter: 31 is not below N.)
    fn chains_into(&self, odd: usize) -> bool {
        odd % 2 == 1 && odd < self.n && self.enabled(odd) && self.event_of(odd) == CHAIN && !(self.v3p5() && self.pmcr & LP != 0)
    }

    /// `k` occurrences of `event` at the current EL. SW_INCR and CHAIN are never reported this
    /// way (PMSWINC and overflows make them).
    pub fn count(&mut self, event: u16, k: u64) {
        if event == SW_INCR || event == CHAIN {
            return;
        }
        let el = self.el;
        for i in 0..self.n {
            if self.enabled(i) && self.counts_at(i, el) && self.event_of(i) == event && self.implemented(event) {
                self.add(i, k, el);
            }
        }
        if event == CPU_CYCLES && self.enabled(CYCLE) && self.counts_at(CYCLE, el) && self.implemented(CPU_CYCLES) {
            let ticks = if self.pmcr & D != 0 && !self.lc() {
                let t = (u128::from(self.prescale) + u128::from(k)) / 64;
                self.prescale = ((u128::from(self.prescale) + u128::from(k)) % 64) as u64;
                t as u64
            } else {
                k
            };
            if ticks > 0 {
                self.add(CYCLE, ticks, el);
            }
        }
    }

    /// Whether `got`, a PMU's `events_until_overflow(event)`, is the model's answer: exactly
    /// while the distance is below 2^62 (`SoftBackend` is exact there), and `None` or at least
    /// 2^62 beyond.
    pub fn check_deadline(&self, event: u16, got: Option<u64>) -> Result<(), String> {
        let want = self.events_until_overflow(event);
        let agrees = match want {
            // Far: `None` (no overflow ahead) or any distance as far.
            Some(d) if d >= 1 << 62 => got.unwrap_or(u64::MAX) >= 1 << 62,
            _ => got == want.map(|d| d as u64),
        };
        if agrees {
            Ok(())
        } else {
            Err(format!("events_until_overflow({event:#x}) = {got:?}, the model {want:?}"))
        }
    }

    /// How many more occurrences of `event` at the current EL make a counter overflow: the
    /// smallest distance to a carry among the counters that count `event` now.
    pub fn events_until_overflow(&self, event: u16) -> Option<u128> {
        if event == SW_INCR || event == CHAIN {
            return None;
        }
        let to_carry = |i: usize, long: bool| {
            if long {
                (1u128 << 64) - u128::from(self.cnt[i])
            } else {
                (1u128 << 32) - u128::from(self.cnt[i] & LOW)
            }
        };
        let mut best: Option<u128> = None;
        for i in 0..self.n {
            if self.enabled(i) && self.counts_at(i, self.el) && self.event_of(i) == event && self.implemented(event) {
                let d = to_carry(i, self.v3p5() && self.pmcr & LP != 0);
                best = Some(best.map_or(d, |b| b.min(d)));
            }
        }
        if event == CPU_CYCLES && self.enabled(CYCLE) && self.counts_at(CYCLE, self.el) && self.implemented(CPU_CYCLES) {
            let ticks = to_carry(CYCLE, self.lc());
            let d = if self.pmcr & D != 0 && !self.lc() { ticks * 64 - u128::from(self.prescale) } else { ticks };
            best = Some(best.map_or(d, |b| b.min(d)));
        }
        best
    }

    /// A PMSWINC write from `el`.
    fn swinc(&mut self, v: u64, el: El) {
        for i in 0..self.n {
            if v & (1 << i) != 0 && self.enabled(i) && self.event_of(i) == SW_INCR && self.counts_at(i, el) {
                self.add(i, 1, el);
            }
        }
    }

    // ---- register accesses ------------------------------------------------------------

    /// What an access does: `aarch32` is a 32-bit `MRC`/`MCR` (an `MRRC`/`MCRR` of PMCCNTR is a
    /// 64-bit access, `aarch32 = false`). Reads give the value as the guest sees it
    /// (bits \[31:0\] for a 32-bit access).
    pub fn access(&mut self, reg: PmuReg, op: Op, aarch32: bool, el: El) -> Outcome {
        use PmuReg::*;
        let read = op == Op::Read;

        // 1. Registers this PMU does not have, and instructions that do not exist.
        let exists = match reg {
            Pmmir => self.version >= PmuVersion::V3p4,
            Pmceid2 | Pmceid3 => self.version >= PmuVersion::V3p1,
            _ => true,
        };
        let direction_ok = match reg {
            Pmswinc => !read,
            Pmceid0 | Pmceid1 | Pmceid2 | Pmceid3 | Pmmir => read,
            _ => true,
        };
        if !exists || !direction_ok {
            return Outcome::Undefined;
        }

        // 2. EL0's rights.
        if el == El::El0 {
            let has = |bit: u64| self.userenr & bit != 0;
            let allowed = match reg {
                Pmintenset | Pmintenclr | Pmmir => return Outcome::Undefined,
                Pmuserenr if read => true,
                Pmuserenr => return Outcome::Undefined,
                Pmswinc => has(EN) || has(SW),
                Pmccntr => has(EN) || (read && has(CR)),
                Pmevcntr(_) | Pmxevcntr => has(EN) || (read && has(ER)),
                Pmselr => has(EN) || has(ER),
                _ => has(EN),
            };
            if !allowed {
                return if self.el0_trap { Outcome::TrapToEl1 } else { Outcome::Undefined };
            }
        }

        // 3. The register. A 32-bit write carries 32 bits.
        let w = match op {
            Op::Write(v) if aarch32 => v & LOW,
            Op::Write(v) => v,
            Op::Read => 0,
        };
        let sel = self.pmselr as usize;
        let value = match reg {
            Pmcr => {
                if !read {
                    self.pmcr = (w & self.pmcr_writable()) | if self.aarch32_el0 { 0 } else { LC };
                    if w & P != 0 {
                        for i in 0..self.n {
                            self.cnt[i] = 0;
                        }
                    }
                    if w & C != 0 {
                        self.cnt[CYCLE] = 0;
                        self.prescale = 0;
                    }
                }
                self.pmcr | (self.n as u64) << 11 | u64::from(self.idcode) << 16 | u64::from(self.imp) << 24
            }
            Pmselr => {
                if !read {
                    self.pmselr = w & 0x1f;
                }
                self.pmselr
            }
            Pmceid0 => self.pmceid(0),
            Pmceid1 => self.pmceid(1),
            Pmceid2 => self.pmceid(0) >> 32,
            Pmceid3 => self.pmceid(1) >> 32,
            Pmmir => u64::from(self.pmmir),
            Pmuserenr => {
                if !read {
                    self.userenr = w & 0xf;
                }
                self.userenr
            }
            Pmswinc => {
                self.swinc(w, el);
                0
            }
            Pmcntenset | Pmcntenclr | Pmintenset | Pmintenclr | Pmovsset | Pmovsclr => {
                let bits = (w & u64::from(self.valid_bits())) as u32;
                let r = match reg {
                    Pmcntenset | Pmcntenclr => &mut self.cnten,
                    Pmintenset | Pmintenclr => &mut self.inten,
                    _ => &mut self.ovs,
                };
                if !read {
                    match reg {
                        Pmcntenset | Pmintenset | Pmovsset => *r |= bits,
                        _ => *r &= !bits,
                    }
                }
                u64::from(*r)
            }
            Pmccntr => {
                if !read {
                    self.cnt[CYCLE] = if aarch32 { (self.cnt[CYCLE] & !LOW) | w } else { w };
                    self.prescale = 0;
                }
                self.cnt[CYCLE]
            }
            Pmccfiltr => self.typer(CYCLE, read, w),
            Pmxevtyper if sel == CYCLE => self.typer(CYCLE, read, w),
            Pmevtyper(_) | Pmxevtyper => {
                let i = if let Pmevtyper(n) = reg { usize::from(n.get()) } else { sel };
                if i >= self.n {
                    return Outcome::Undefined;
                }
                self.typer(i, read, w)
            }
            Pmevcntr(_) | Pmxevcntr => {
                let i = if let Pmevcntr(n) = reg { usize::from(n.get()) } else { sel };
                if i >= self.n {
                    return Outcome::Undefined; // PMXEVCNTR with SEL = 31 included
                }
                if !read {
                    let v = if aarch32 { (self.cnt[i] & !LOW) | w } else { w };
                    self.cnt[i] = if self.v3p5() { v } else { v & LOW };
                }
                self.cnt[i]
            }
            // A register of a later architecture version than the model knows.
            _ => return Outcome::Undefined,
        };
        if read {
            Outcome::Read(if aarch32 { value & LOW } else { value })
        } else {
            Outcome::Written
        }
    }

    /// PMEVTYPER<i> (or PMCCFILTR for 31): the event number only for an event counter, the
    /// filter bits this configuration has.
    fn typer(&mut self, i: usize, read: bool, w: u64) -> u64 {
        if !read {
            let mask = if i == CYCLE { self.filter_bits() } else { self.filter_bits() | self.event_bits() };
            self.typ[i] = w & mask;
        }
        self.typ[i]
    }
}

/// Whether an AArch32 condition passes with flags `nzcv` (N, Z, C, V in bits 3..0): the Arm
/// ARM's `ConditionHolds`, written out here rather than taken from vpmu.
#[allow(dead_code)]
pub fn condition_holds(cond: u8, nzcv: u8) -> bool {
    let (n, z, c, v) = (nzcv & 8 != 0, nzcv & 4 != 0, nzcv & 2 != 0, nzcv & 1 != 0);
    let base = match cond >> 1 {
        0 => z,
        1 => c,
        2 => n,
        3 => v,
        4 => c && !z,
        5 => n == v,
        6 => n == v && !z,
        _ => true,
    };
    if cond & 1 == 1 && cond != 0b1111 {
        !base
    } else {
        base
    }
}
