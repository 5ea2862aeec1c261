//! `perf stat` inside a simulated guest: the README's first command.
//!
//! ```text
//! cargo run --example perf_stat
//! ```
//!
//! A simulated guest kernel drives its PMU the way Linux's Arm PMUv3 driver does for
//! `perf stat -e cycles,instructions,branches,branch-misses,cache-references,cache-misses,instructions:u`.
//! Every register access it makes is an `MRS`/`MSR` that traps: the example builds the
//! ESR_EL2 syndrome the hardware would report and hands it to [`Pmu::handle_esr`], exactly as
//! a hypervisor's trap handler would.
//!
//! A toy workload (deterministic: a fixed-seed generator decides branches and cache misses)
//! reports what it "executes" to the [`SoftBackend`] in batches with [`Pmu::count`], at EL0
//! for the application and at EL1 for its system calls ([`Pmu::set_el`]). The
//! `instructions` counter is armed with a sampling period, as `perf record -c` would arm it,
//! so it overflows on the way: the workload stops on the exact instruction
//! ([`Pmu::events_until_overflow`]), the overflow interrupt line goes high
//! ([`Pmu::irq_level`]), and the guest's interrupt handler reads and clears `PMOVSCLR_EL0`,
//! accounts the period and re-arms the counter. At the end the guest stops counting, reads
//! every counter back through trapped `MRS`, and prints perf's table.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use vpmu::config::{PmuConfig, PmuIrq, PmuVersion, EVENT_CPU_CYCLES, EVENT_INST_RETIRED};
use vpmu::decode::{Direction, Gpr, SysregAccess, Xfer};
use vpmu::field::{EvtypeFilter, Pmcr};
use vpmu::reg::{EventCounter, PmuReg, CYCLE_COUNTER_BIT};
use vpmu::{El, Outcome, Pmu, Pstate, SoftBackend, Trap};

// Common event numbers (Arm ARM, "Common event numbers").
const L1D_CACHE_REFILL: u16 = 0x03;
const L1D_CACHE: u16 = 0x04;
const BR_MIS_PRED: u16 = 0x10;
const BR_RETIRED: u16 = 0x21;

/// The guest's event counters (`PMCR.N`).
const COUNTERS: u8 = 6;
/// The sampling period of the `instructions` counter.
const SAMPLE_PERIOD: u64 = 1_000_000;
/// Event counters are 32 bits wide here (PMUv3p4: no `PMCR.LP`).
const COUNTER_MASK: u64 = 0xffff_ffff;
/// What a counting (not sampling) event is preset to: half the counter's range, as perf does,
/// so that it can never wrap twice between two reads.
const COUNTING_PRESET: u64 = 1 << 31;

/// One `perf stat -e` event.
struct PerfEvent {
    /// The name `perf stat` prints.
    name: &'static str,
    /// The PMUv3 event number.
    event: u16,
    /// `:u`: count only at EL0 (`PMEVTYPER.P` set: do not count at EL1).
    user_only: bool,
    /// Sampling period, if the event samples.
    period: Option<u64>,
}

/// `-e cycles,instructions,branches,branch-misses,cache-references,cache-misses,instructions:u`.
/// `cycles` goes to the cycle counter, the rest to event counters 0..=5 in order.
const EVENTS: [PerfEvent; 7] = [
    PerfEvent { name: "cycles", event: EVENT_CPU_CYCLES, user_only: false, period: None },
    PerfEvent { name: "instructions", event: EVENT_INST_RETIRED, user_only: false, period: Some(SAMPLE_PERIOD) },
    PerfEvent { name: "branches", event: BR_RETIRED, user_only: false, period: None },
    PerfEvent { name: "branch-misses", event: BR_MIS_PRED, user_only: false, period: None },
    PerfEvent { name: "cache-references", event: L1D_CACHE, user_only: false, period: None },
    PerfEvent { name: "cache-misses", event: L1D_CACHE_REFILL, user_only: false, period: None },
    PerfEvent { name: "instructions:u", event: EVENT_INST_RETIRED, user_only: true, period: None },
];

/// The hardware counter index (`PMCNTENSET` bit) of `EVENTS[i]`.
fn hw_index(i: usize) -> u8 {
    if i == 0 {
        CYCLE_COUNTER_BIT
    } else {
        (i - 1) as u8
    }
}

/// The guest kernel's view of the machine: a vCPU whose PMU accesses trap to the hypervisor,
/// which hands them to vpmu.
struct Guest {
    pmu: Pmu<SoftBackend>,
    /// The vCPU's X0..X30.
    x: [u64; 31],
    traps: u32,
    reads: u32,
    writes: u32,
    /// perf's per-event state: the counter value at the last update and the running count.
    prev: [u64; 7],
    count: [u64; 7],
    interrupts: u32,
    /// What the workload really did, per event, tallied beside the PMU to check it.
    truth: [u64; 7],
}

impl Guest {
    /// Traps one `MRS`/`MSR` through its ESR_EL2 syndrome, as the hardware reports it.
    fn trap(&mut self, reg: PmuReg, dir: Direction) -> Outcome {
        // The driver's compiled code happens to use X8 as the transfer register.
        let access = SysregAccess { reg, dir, xfer: Xfer::A64 { rt: Gpr::new(8).unwrap() } };
        let esr = access.to_esr().expect("every AArch64 PMU register has an encoding");
        self.traps += 1;
        match dir {
            Direction::Read => self.reads += 1,
            Direction::Write => self.writes += 1,
        }
        let trap = self.pmu.handle_esr(esr, Pstate::EL1, &mut self.x).expect("a trapped MRS/MSR decodes");
        let Trap::Pmu(out) = trap else { panic!("{access}: {trap:?}") };
        assert!(!matches!(out, Outcome::Undefined | Outcome::TrapToEl1), "{access}: {out:?}");
        out
    }

    /// `MRS X8, <reg>`.
    fn mrs(&mut self, reg: PmuReg) -> u64 {
        let _ = self.trap(reg, Direction::Read);
        self.x[8]
    }

    /// `MSR <reg>, X8`.
    fn msr(&mut self, reg: PmuReg, value: u64) {
        self.x[8] = value;
        assert_eq!(self.trap(reg, Direction::Write), Outcome::Written);
    }

    fn counter_reg(hw: u8) -> PmuReg {
        match EventCounter::new(hw) {
            Some(n) => PmuReg::Pmevcntr(n),
            None => PmuReg::Pmccntr,
        }
    }

    /// The width mask of a counter, as the driver sees it: the cycle counter is 64 bits
    /// (`PMCR.LC`), event counters 32.
    fn mask(hw: u8) -> u64 {
        if hw == CYCLE_COUNTER_BIT {
            u64::MAX
        } else {
            COUNTER_MASK
        }
    }

    /// What the driver presets counter `i` to: the distance to overflow is the period.
    fn preset(i: usize) -> u64 {
        let hw = hw_index(i);
        match EVENTS[i].period {
            Some(p) => p.wrapping_neg() & Self::mask(hw),
            None if hw == CYCLE_COUNTER_BIT => 0,
            None => COUNTING_PRESET,
        }
    }

    fn set_period(&mut self, i: usize) {
        let v = Self::preset(i);
        self.msr(Self::counter_reg(hw_index(i)), v);
        self.prev[i] = v;
    }

    /// Reads counter `i` and adds what it counted since the last update to the event's count.
    fn update(&mut self, i: usize) {
        let hw = hw_index(i);
        let now = self.mrs(Self::counter_reg(hw));
        self.count[i] += now.wrapping_sub(self.prev[i]) & Self::mask(hw);
        self.prev[i] = now;
    }

    /// Probe: `PMCR.N` and `PMCEID0/1` say which events this PMU has.
    fn probe(&mut self) {
        let pmcr = Pmcr::from_bits_retain(self.mrs(PmuReg::Pmcr));
        assert_eq!(pmcr.n(), COUNTERS);
        let ceid = [self.mrs(PmuReg::Pmceid0), self.mrs(PmuReg::Pmceid1)];
        for e in &EVENTS {
            let supported = ceid[usize::from(e.event >> 5)] >> (e.event & 31) & 1 == 1;
            assert!(supported, "{} ({:#x}) not in PMCEID", e.name, e.event);
        }
    }

    /// The driver's reset: every counter disabled, interrupts off, flags clear, counters
    /// zeroed (`P`, `C`) and the cycle counter long (`LC`).
    fn reset(&mut self) {
        self.msr(PmuReg::Pmcntenclr, u32::MAX.into());
        self.msr(PmuReg::Pmintenclr, u32::MAX.into());
        self.msr(PmuReg::Pmovsclr, u32::MAX.into());
        self.msr(PmuReg::Pmuserenr, 0);
        self.msr(PmuReg::Pmcr, (Pmcr::P | Pmcr::C | Pmcr::LC).bits());
    }

    /// `perf_event_open` of each event, then `PMCR.E`: the type and filter, the period, the
    /// interrupt enable, the counter enable.
    fn program(&mut self) {
        for (i, e) in EVENTS.iter().enumerate() {
            let hw = hw_index(i);
            let bit = 1u64 << hw;
            let filter = if e.user_only { EvtypeFilter::P.bits() } else { 0 };
            self.msr(PmuReg::Pmcntenclr, bit);
            match EventCounter::new(hw) {
                Some(n) => self.msr(PmuReg::Pmevtyper(n), filter | u64::from(e.event)),
                None => {
                    // Older drivers select, then write PMXEVTYPER: SEL = 31 reaches PMCCFILTR.
                    self.msr(PmuReg::Pmselr, CYCLE_COUNTER_BIT.into());
                    self.msr(PmuReg::Pmxevtyper, filter);
                }
            }
            self.set_period(i);
            self.msr(PmuReg::Pmintenset, bit);
            self.msr(PmuReg::Pmcntenset, bit);
        }
        self.start();
    }

    fn start(&mut self) {
        let pmcr = self.mrs(PmuReg::Pmcr);
        self.msr(PmuReg::Pmcr, pmcr | Pmcr::E.bits());
    }

    fn stop(&mut self) {
        let pmcr = self.mrs(PmuReg::Pmcr);
        self.msr(PmuReg::Pmcr, pmcr & !Pmcr::E.bits());
    }

    /// The PMU overflow interrupt handler: read and clear the flags with the PMU stopped, and
    /// for each counter that overflowed, account its period and arm it again.
    fn handle_irq(&mut self) {
        self.interrupts += 1;
        let ovs = self.mrs(PmuReg::Pmovsclr);
        self.msr(PmuReg::Pmovsclr, ovs);
        assert!(!self.pmu.irq_level(), "clearing PMOVS lowers the line");
        self.stop();
        for i in 0..EVENTS.len() {
            if ovs >> hw_index(i) & 1 == 1 {
                self.update(i);
                self.set_period(i);
            }
        }
        self.start();
    }

    /// `perf stat`'s end: stop counting and read every counter.
    fn finish(&mut self) {
        self.stop();
        for i in 0..EVENTS.len() {
            self.update(i);
        }
    }
}

/// A small deterministic generator (xorshift32) for the workload's branches and misses.
struct Rng(u32);

impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }

    /// True with probability `per_mille / 1000`.
    fn chance(&mut self, per_mille: u32) -> bool {
        self.next() % 1000 < per_mille
    }
}

/// One basic block: `insns` instructions ending in a branch, with its loads and their misses.
struct Block {
    insns: u64,
    branch_miss: bool,
    loads: u64,
    load_misses: u64,
}

impl Block {
    fn random(rng: &mut Rng, base: u64) -> Self {
        let insns = base + u64::from(rng.next() % 8);
        let loads = insns / 3;
        let load_misses = (0..loads).filter(|_| rng.chance(40)).count() as u64;
        Block { insns, branch_miss: rng.chance(25), loads, load_misses }
    }

    /// Cycles on a toy two-wide core: half a cycle per instruction, 14 per branch mispredict,
    /// 30 per L1 miss.
    fn cycles(&self) -> u64 {
        self.insns.div_ceil(2) + 14 * u64::from(self.branch_miss) + 30 * self.load_misses
    }
}

/// The workload: an application's hot loop at EL0, with a system call every 400 blocks.
const BLOCKS: u32 = 250_000;
const SYSCALL_EVERY: u32 = 400;

fn run_block(g: &mut Guest, b: &Block) {
    let at_el0 = g.pmu.backend().el() == El::El0;
    let truth = [b.cycles(), b.insns, 1, u64::from(b.branch_miss), b.loads, b.load_misses, if at_el0 { b.insns } else { 0 }];
    for (t, d) in g.truth.iter_mut().zip(truth) {
        *t += d;
    }
    let pmu = &mut g.pmu;
    pmu.count(EVENT_CPU_CYCLES, b.cycles());
    pmu.count(BR_RETIRED, 1);
    pmu.count(BR_MIS_PRED, u64::from(b.branch_miss));
    pmu.count(L1D_CACHE, b.loads);
    pmu.count(L1D_CACHE_REFILL, b.load_misses);
    // Instructions last, split where a counter overflows: the interrupt is taken right after
    // the instruction that overflowed it, and the rest of the block runs after the handler.
    let mut left = b.insns;
    while left > 0 {
        let step = match g.pmu.events_until_overflow(EVENT_INST_RETIRED) {
            Some(n) if n <= left => n,
            _ => left,
        };
        g.pmu.count(EVENT_INST_RETIRED, step);
        left -= step;
        if g.pmu.irq_level() {
            let el = g.pmu.backend().el();
            g.pmu.set_el(El::El1);
            g.handle_irq();
            g.pmu.set_el(el);
        }
    }
}

fn workload(g: &mut Guest) {
    let mut rng = Rng(0x2545_f491);
    g.pmu.set_el(El::El0);
    for i in 1..=BLOCKS {
        let b = Block::random(&mut rng, 6);
        run_block(g, &b);
        if i % SYSCALL_EVERY == 0 {
            g.pmu.set_el(El::El1);
            for _ in 0..40 {
                let b = Block::random(&mut rng, 10);
                run_block(g, &b);
            }
            g.pmu.set_el(El::El0);
        }
    }
    g.pmu.set_el(El::El1);
}

/// `1234567` as `1,234,567`.
fn grouped(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn main() {
    let cfg = PmuConfig::builder().counters(COUNTERS).version(PmuVersion::V3p4).irq(PmuIrq::Ppi(23)).build().unwrap();
    let mut g = Guest {
        pmu: Pmu::new(cfg, SoftBackend::new()).unwrap(),
        x: [0; 31],
        traps: 0,
        reads: 0,
        writes: 0,
        prev: [0; 7],
        count: [0; 7],
        interrupts: 0,
        truth: [0; 7],
    };
    g.pmu.lock_config();

    g.probe();
    g.reset();
    g.program();
    workload(&mut g);
    g.finish();

    let c = |name: &str| EVENTS.iter().position(|e| e.name == name).map(|i| g.count[i]).unwrap();
    let (cycles, insns) = (c("cycles"), c("instructions"));
    let note = |name: &str| -> String {
        match name {
            "instructions" => format!("#  {:6.2}  insn per cycle", insns as f64 / cycles as f64),
            "branch-misses" => format!("#  {:6.2}% of all branches", 100.0 * c("branch-misses") as f64 / c("branches") as f64),
            "cache-misses" => format!("#  {:6.2}% of all cache refs", 100.0 * c("cache-misses") as f64 / c("cache-references") as f64),
            _ => String::new(),
        }
    };

    println!();
    println!(" Performance counter stats for 'toy-workload' (simulated guest, vpmu {}):", env!("CARGO_PKG_VERSION"));
    println!();
    for (i, e) in EVENTS.iter().enumerate() {
        let line = format!("{:>18}      {:<20} {}", grouped(g.count[i]), e.name, note(e.name));
        println!("{}", line.trim_end());
    }
    println!();
    println!("{:>18.6} seconds time elapsed (simulated, at 2 GHz)", cycles as f64 / 2e9);
    println!();
    println!(
        " vpmu: {} trapped PMU accesses handled ({} MRS, {} MSR), {} overflow interrupt(s) on PPI 23",
        g.traps, g.reads, g.writes, g.interrupts
    );

    // What the guest read back is exactly what the workload did.
    assert_eq!(g.count, g.truth);
    assert_eq!(u64::from(g.interrupts), insns / SAMPLE_PERIOD);
    assert!(c("instructions:u") < insns);
}
