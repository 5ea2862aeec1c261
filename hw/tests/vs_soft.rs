//! The backend under a `Pmu`, on the simulated physical PMU, against the same guest scenario on
//! `SoftBackend`: the guest must see the same values, whatever the physical counters' width,
//! early overflows, vCPU switches, other vCPUs and the hypervisor's own counting.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use std::cell::RefCell;

use proptest::prelude::*;
use vpmu::config::{PmuConfig, PmuVersion};
use vpmu::reg::{EventCounter, PmuReg};
use vpmu::{El, Pmu, SoftBackend};
use vpmu_hw::sim::{SimEl, SimPmu};
use vpmu_hw::{mdcr_el2, HwBackend, PmuRegs};

type Hw<'a> = Pmu<HwBackend<&'a RefCell<SimPmu>>>;

/// The vpmu calls whose names the host contract settles, in one place.
mod host {
    use super::*;
    pub fn load(p: &mut Hw<'_>) {
        p.vcpu_load();
    }
    pub fn put(p: &mut Hw<'_>) {
        p.vcpu_put();
    }
    /// What the hypervisor does on the physical PMU interrupt.
    pub fn overflows(p: &mut Hw<'_>) {
        p.handle_overflows();
    }
}

const INSNS: u16 = 0x08;
const CYCLES: u16 = 0x11;

fn ev(i: u8) -> EventCounter {
    EventCounter::new(i).unwrap()
}

/// One guest (vCPU): its `Pmu` on the physical PMU and its twin on `SoftBackend`.
struct Twin<'a> {
    hw: Hw<'a>,
    soft: Pmu<SoftBackend>,
    n: u8,
}

impl<'a> Twin<'a> {
    fn new(cfg: PmuConfig, cpu: &'a RefCell<SimPmu>) -> Self {
        let hw = Pmu::new(cfg, HwBackend::new(cpu)).unwrap();
        // What QEMU's PMU (and the simulated one) implements: SW_INCR, INST_RETIRED, CPU_CYCLES.
        let soft = Pmu::new(cfg, SoftBackend::with_events(&[0x00, 0x08, 0x11])).unwrap();
        Self { hw, soft, n: cfg.counters() }
    }

    fn write(&mut self, reg: PmuReg, v: u64) {
        let a = self.hw.write(reg, v, El::El1);
        let b = self.soft.write(reg, v, El::El1);
        assert_eq!(a, b, "write {reg:?} = {v:#x}");
    }

    /// The guest ran: `k` events at `el` (its twin counts them; the hardware saw them). With
    /// `irq`, the hypervisor takes the physical PMU interrupt right away; without, it is late
    /// and whatever the `Pmu` does next must find the overflow by itself.
    fn ran(&mut self, cpu: &RefCell<SimPmu>, event: u16, el: El, k: u64, irq: bool) {
        cpu.borrow_mut().count(event, sim_el(el), k);
        self.soft.set_el(el);
        self.soft.count(event, k);
        if irq && cpu.borrow().irq_level() {
            host::overflows(&mut self.hw);
            assert!(!cpu.borrow().irq_level(), "the physical interrupt is still asserted after handle_overflows");
        }
    }

    /// Everything the guest can read, and the interrupt line, equal on both.
    fn check(&mut self, what: &str) {
        let mut regs = vec![
            PmuReg::Pmovsset,
            PmuReg::Pmccntr,
            PmuReg::Pmovsset,
            PmuReg::Pmcntenset,
            PmuReg::Pmintenset,
            PmuReg::Pmcr,
            PmuReg::Pmccfiltr,
        ];
        for i in 0..self.n {
            regs.push(PmuReg::Pmevcntr(ev(i)));
            regs.push(PmuReg::Pmevtyper(ev(i)));
        }
        for reg in regs {
            let a = self.hw.read(reg, El::El1);
            let b = self.soft.read(reg, El::El1);
            assert_eq!(a, b, "{what}: {reg:?} differs (hw, soft)");
        }
        assert_eq!(self.hw.irq_level(), self.soft.irq_level(), "{what}: irq level");
    }
}

fn sim_el(el: El) -> SimEl {
    match el {
        El::El0 => SimEl::El0,
        El::El1 => SimEl::El1,
    }
}

fn cfg(n: u8, v: PmuVersion) -> PmuConfig {
    PmuConfig::builder().counters(n).version(v).build().unwrap()
}

/// The hypervisor's MDCR_EL2 on the simulated CPU: guest partition of 6, EL2 never counted.
fn cpu(mut pmu: SimPmu) -> RefCell<SimPmu> {
    pmu.write_mdcr_el2(mdcr_el2::for_guest(6));
    RefCell::new(pmu)
}

#[test]
fn a_32_bit_counter_wraps_and_overflows_like_soft_on_both_physical_widths() {
    for phys in [SimPmu::cortex_a57(), SimPmu::max()] {
        let cpu = cpu(phys);
        let mut g = Twin::new(cfg(4, PmuVersion::V3), &cpu);
        host::load(&mut g.hw);
        g.write(PmuReg::Pmevtyper(ev(0)), INSNS.into());
        g.write(PmuReg::Pmevcntr(ev(0)), 0xffff_ff00);
        g.write(PmuReg::Pmintenset, 1);
        g.write(PmuReg::Pmcntenset, 1);
        g.write(PmuReg::Pmcr, 1);
        g.ran(&cpu, INSNS, El::El1, 0xff, true);
        g.check("one short of the wrap");
        assert!(!g.hw.irq_level());
        g.ran(&cpu, INSNS, El::El0, 1, true);
        g.check("at the wrap");
        assert!(g.hw.irq_level());
        assert_eq!(g.hw.read(PmuReg::Pmevcntr(ev(0)), El::El1).value(), Some(0));
    }
}

#[test]
fn a_64_bit_guest_counter_on_32_bit_hardware_overflows_early_and_invisibly() {
    let cpu = cpu(SimPmu::cortex_a57());
    let mut g = Twin::new(cfg(2, PmuVersion::V3p5), &cpu);
    host::load(&mut g.hw);
    g.write(PmuReg::Pmevtyper(ev(1)), CYCLES.into());
    g.write(PmuReg::Pmevcntr(ev(1)), 5);
    g.write(PmuReg::Pmintenset, 0b10);
    g.write(PmuReg::Pmcntenset, 0b10);
    g.write(PmuReg::Pmcr, 1 | 1 << 7); // E, LP: overflow at 2^64
                                       // Physically 32 bits: the counter wraps four times, each an early overflow the Pmu folds.
    for _ in 0..8 {
        g.ran(&cpu, CYCLES, El::El1, 0x8000_0001, true);
        g.check("after an early overflow");
    }
    assert!(!g.hw.irq_level());
    assert_eq!(g.hw.read(PmuReg::Pmevcntr(ev(1)), El::El1).value(), Some(5 + 8 * 0x8000_0001));
    // Near the real 64-bit overflow.
    g.write(PmuReg::Pmevcntr(ev(1)), u64::MAX - 9);
    g.ran(&cpu, CYCLES, El::El1, 9, true);
    g.check("one short of 2^64");
    g.ran(&cpu, CYCLES, El::El1, 1, true);
    g.check("at 2^64");
    assert!(g.hw.irq_level());
}

#[test]
fn chain_across_the_wrap_and_the_cycle_counter_with_its_divider() {
    let cpu = cpu(SimPmu::cortex_a57());
    let mut g = Twin::new(cfg(4, PmuVersion::V3), &cpu);
    host::load(&mut g.hw);
    g.write(PmuReg::Pmevtyper(ev(2)), INSNS.into());
    g.write(PmuReg::Pmevtyper(ev(3)), 0x1e);
    g.write(PmuReg::Pmevcntr(ev(2)), 0xffff_fff0);
    g.write(PmuReg::Pmccntr, 0xffff_fffe);
    g.write(PmuReg::Pmcntenset, 0b1100 | 1 << 31);
    g.write(PmuReg::Pmcr, 1 | 1 << 3); // E, D (LC is RES1 here: D has no effect)
    g.ran(&cpu, INSNS, El::El1, 0x40, true);
    g.ran(&cpu, CYCLES, El::El1, 0x1_0000, true);
    g.check("chained");
    assert_eq!(g.hw.read(PmuReg::Pmevcntr(ev(3)), El::El1).value(), Some(1));
}

#[test]
fn put_and_load_in_the_middle_of_counting_lose_and_leak_nothing() {
    let cpu = cpu(SimPmu::cortex_a57());
    let mut a = Twin::new(cfg(3, PmuVersion::V3), &cpu);
    let mut b = Twin::new(cfg(3, PmuVersion::V3), &cpu);
    for (g, start) in [(&mut a, 0xffff_f000u64), (&mut b, 7)] {
        g.write(PmuReg::Pmevtyper(ev(0)), INSNS.into());
        g.write(PmuReg::Pmevtyper(ev(1)), CYCLES.into());
        g.write(PmuReg::Pmevcntr(ev(0)), start);
        g.write(PmuReg::Pmintenset, 0b11);
        g.write(PmuReg::Pmcntenset, 0b11 | 1 << 31);
        g.write(PmuReg::Pmcr, 1);
    }
    for round in 0..6u64 {
        host::load(&mut a.hw);
        a.ran(&cpu, INSNS, El::El1, 0x300 + round, true);
        a.ran(&cpu, CYCLES, El::El0, 0x100, true);
        host::put(&mut a.hw);
        // The hypervisor runs (never counted), then B.
        cpu.borrow_mut().count(INSNS, SimEl::El2, 1000);
        host::load(&mut b.hw);
        b.ran(&cpu, INSNS, El::El0, 0x2000, true);
        b.ran(&cpu, CYCLES, El::El1, 3, true);
        // The VMM reads A while it is put: from the image.
        a.check("A while put");
        host::put(&mut b.hw);
        b.check("B while put");
    }
    assert_eq!(a.hw.read(PmuReg::Pmovsset, El::El1).value(), Some(1));
    assert!(a.hw.irq_level());
}

#[test]
fn calls_while_put_work_on_the_image_and_reach_the_hardware_at_load() {
    let cpu = cpu(SimPmu::max());
    let mut g = Twin::new(cfg(2, PmuVersion::V3), &cpu);
    // Configured entirely while put (as a VMM restoring a snapshot would).
    g.write(PmuReg::Pmevtyper(ev(0)), INSNS.into());
    g.write(PmuReg::Pmevcntr(ev(0)), 0xffff_fffe);
    g.write(PmuReg::Pmintenset, 1);
    g.write(PmuReg::Pmcntenset, 1);
    g.write(PmuReg::Pmcr, 1);
    assert_eq!(cpu.borrow().read_pmcntenset(), 0, "a put vCPU must not touch the counters");
    cpu.borrow_mut().count(INSNS, SimEl::El1, 50); // someone else runs
    g.check("configured while put");
    host::load(&mut g.hw);
    assert_eq!(cpu.borrow().read_pmcntenset(), 1);
    g.ran(&cpu, INSNS, El::El1, 2, true);
    g.check("overflowed after load");
    assert!(g.hw.irq_level());
    host::put(&mut g.hw);
    g.write(PmuReg::Pmcntenclr, 1); // released while put
    host::load(&mut g.hw);
    assert_eq!(cpu.borrow().read_pmcntenset(), 0);
    g.ran(&cpu, INSNS, El::El1, 2, true);
    g.check("released while put");
}

#[test]
fn the_vmm_saves_restores_resets_and_sets_one_regs_while_the_vcpu_is_put() {
    use vpmu::snapshot::one_reg_id;
    let cpu = cpu(SimPmu::cortex_a57());
    let mut a = Twin::new(cfg(4, PmuVersion::V3), &cpu);
    host::load(&mut a.hw);
    a.write(PmuReg::Pmevtyper(ev(0)), INSNS.into());
    a.write(PmuReg::Pmevtyper(ev(1)), 0x1e);
    a.write(PmuReg::Pmevcntr(ev(0)), 0xffff_fff0);
    a.write(PmuReg::Pmintenset, 0b11);
    a.write(PmuReg::Pmcntenset, 0b11 | 1 << 31);
    a.write(PmuReg::Pmcr, 1);
    a.ran(&cpu, INSNS, El::El1, 0x100, true);
    a.ran(&cpu, CYCLES, El::El1, 0x123, false);
    host::put(&mut a.hw);
    // Migration: save A while put, restore into B (put, same CPU), both go on counting.
    let state = a.hw.save();
    assert_eq!(state, a.soft.save(), "the snapshot of a put vCPU");
    let mut b = Twin::new(cfg(4, PmuVersion::V3), &cpu);
    b.hw.restore(&state).unwrap();
    b.soft.restore(&state).unwrap();
    b.check("restored while put");
    host::load(&mut b.hw);
    b.ran(&cpu, INSNS, El::El0, 0xffff_ff00, true);
    b.check("restored, then counted");
    host::put(&mut b.hw);
    // One-reg writes while put reach the hardware at the next load.
    let c0 = one_reg_id(PmuReg::Pmevcntr(ev(0))).unwrap();
    for p in [&mut a.hw as &mut dyn OneReg, &mut a.soft] {
        p.set(c0, 0xffff_fffe);
    }
    host::load(&mut a.hw);
    a.ran(&cpu, INSNS, El::El1, 3, true);
    a.check("one-reg while put");
    assert!(a.hw.irq_level());
    // Reset while put: nothing of A may count any more.
    host::put(&mut a.hw);
    a.hw.reset();
    a.soft.reset();
    host::load(&mut a.hw);
    assert_eq!(cpu.borrow().read_pmcntenset(), 0);
    a.ran(&cpu, INSNS, El::El1, 100, true);
    a.check("reset while put");
}

/// `set_one_reg` on either backend.
trait OneReg {
    fn set(&mut self, id: u64, v: u64);
}
impl<B: vpmu::CounterBackend> OneReg for Pmu<B> {
    fn set(&mut self, id: u64, v: u64) {
        self.set_one_reg(id, v).unwrap();
    }
}

#[test]
fn pmceid_comes_from_the_physical_pmu() {
    let cpu = cpu(SimPmu::new(6, 1, [1 << 8 | 1 << 17 | 1 << 3, 1 << 4]));
    let mut pmu = Pmu::new(cfg(2, PmuVersion::V3), HwBackend::new(&cpu)).unwrap();
    let c0 = pmu.read(PmuReg::Pmceid0, El::El1).value().unwrap();
    let c1 = pmu.read(PmuReg::Pmceid1, El::El1).value().unwrap();
    assert_eq!(c0 & 0xffff_ffff, 1 | 1 << 3 | 1 << 8 | 1 << 17 | 1 << 30); // + SW_INCR, CHAIN
    assert_eq!(c1 & 0xffff_ffff, 1 << 4);
}

#[test]
fn guest_counters_beyond_hpmn_are_refused() {
    let mut sim = SimPmu::max();
    sim.write_mdcr_el2(mdcr_el2::for_guest(4));
    let cpu = RefCell::new(sim);
    assert!(Pmu::new(cfg(4, PmuVersion::V3), HwBackend::new(&cpu)).is_ok());
    assert!(Pmu::new(cfg(5, PmuVersion::V3), HwBackend::new(&cpu)).is_err());
}

// --------------------------------------------------------------------------------------------
// Random schedules

#[derive(Clone, Debug)]
enum Step {
    Write(PmuReg, u64),
    /// The guest runs; `irq`: the physical interrupt is handled at once (else late).
    Run {
        event: u16,
        el0: bool,
        k: u64,
        irq: bool,
    },
    /// The hypervisor's own work at EL2.
    Hyp(u64),
    /// Switch to the other vCPU.
    Switch,
}

fn reg(n: u8) -> impl Strategy<Value = PmuReg> {
    let c = 0..n;
    prop_oneof![
        c.clone().prop_map(|i| PmuReg::Pmevtyper(ev(i))),
        c.prop_map(|i| PmuReg::Pmevcntr(ev(i))),
        Just(PmuReg::Pmccntr),
        Just(PmuReg::Pmccfiltr),
        Just(PmuReg::Pmcntenset),
        Just(PmuReg::Pmcntenclr),
        Just(PmuReg::Pmintenset),
        Just(PmuReg::Pmovsclr),
        Just(PmuReg::Pmcr),
        Just(PmuReg::Pmswinc),
    ]
}

fn value(reg: PmuReg) -> BoxedStrategy<u64> {
    match reg {
        PmuReg::Pmevtyper(_) => (prop_oneof![Just(0x08u64), Just(0x11), Just(0x1e), Just(0x00), Just(0x13)], any::<bool>(), any::<bool>())
            .prop_map(|(e, p, u)| e | u64::from(p) << 31 | u64::from(u) << 30)
            .boxed(),
        PmuReg::Pmccfiltr => (any::<bool>(), any::<bool>()).prop_map(|(p, u)| u64::from(p) << 31 | u64::from(u) << 30).boxed(),
        PmuReg::Pmevcntr(_) | PmuReg::Pmccntr => prop_oneof![
            any::<u64>(),
            (0..0x1000u64).prop_map(|d| 0xffff_ffffu64.wrapping_sub(d)),
            (0..0x1000u64).prop_map(|d| u64::MAX - d)
        ]
        .boxed(),
        PmuReg::Pmcr => prop_oneof![3 => Just(1u64), 1 => 0..0x100u64].boxed(),
        _ => any::<u32>().prop_map(u64::from).boxed(),
    }
}

fn step(n: u8) -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => reg(n).prop_flat_map(|r| value(r).prop_map(move |v| Step::Write(r, v))),
        3 => (prop_oneof![Just(INSNS), Just(CYCLES)], any::<bool>(), prop_oneof![1..0x100u64, 1..0x8000_0000u64])
            .prop_map(|(event, el0, k)| Step::Run { event, el0, k, irq: true }),
        // A late interrupt: fewer events, so that nothing wraps twice unseen (the documented
        // limit for 32-bit hardware).
        2 => (prop_oneof![Just(INSNS), Just(CYCLES)], any::<bool>(), 1..0x100_0000u64)
            .prop_map(|(event, el0, k)| Step::Run { event, el0, k, irq: false }),
        1 => (1..0x1_0000u64).prop_map(Step::Hyp),
        1 => Just(Step::Switch),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Two vCPUs time-share one simulated physical CPU under random guest writes, guest
    /// execution (with the physical interrupt handled at once or late), hypervisor work and
    /// switches; whenever the guest or the VMM looks, each vCPU matches its `SoftBackend` twin,
    /// loaded or put.
    #[test]
    fn random_schedules_match_soft(
        narrow in any::<bool>(),
        v3p5 in any::<bool>(),
        n in 1u8..=6,
        steps in proptest::collection::vec((step(6), proptest::bool::weighted(0.3)), 1..80),
    ) {
        let phys = if narrow { SimPmu::cortex_a57() } else { SimPmu::max() };
        let cpu = cpu(phys);
        let version = if v3p5 { PmuVersion::V3p5 } else { PmuVersion::V3 };
        let mut g = [Twin::new(cfg(n, version), &cpu), Twin::new(cfg(n, version), &cpu)];
        let mut cur = 0usize;
        host::load(&mut g[0].hw);
        for (s, check) in steps {
            match s {
                Step::Write(PmuReg::Pmevtyper(i) | PmuReg::Pmevcntr(i), _) if i.get() >= n => {}
                Step::Write(r, v) => g[cur].write(r, v),
                Step::Run { event, el0, k, irq } => {
                    let el = if el0 { El::El0 } else { El::El1 };
                    g[cur].ran(&cpu, event, el, k, irq);
                }
                Step::Hyp(k) => {
                    cpu.borrow_mut().count(INSNS, SimEl::El2, k);
                    cpu.borrow_mut().count(CYCLES, SimEl::El2, k);
                }
                Step::Switch => {
                    host::put(&mut g[cur].hw);
                    cur ^= 1;
                    host::load(&mut g[cur].hw);
                }
            }
            // The guest (or the VMM) looks now and then; in between, overflows may be pending.
            if check {
                g[0].check("vCPU 0");
                g[1].check("vCPU 1");
            }
        }
        g[0].check("vCPU 0 at the end");
        g[1].check("vCPU 1 at the end");
    }
}
