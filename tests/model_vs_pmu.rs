#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::arithmetic_side_effects, missing_docs)]
//! The lazy `Pmu<Delayed>` against the eager reference model (`tests/common/model.rs`), as a
//! `proptest-state-machine` test: random configurations, then random sequences of register
//! accesses (any register, EL0 and EL1, AArch64 and AArch32 widths), event batches, changes of
//! exception level, resets and migrations (save, byte form, restore into a new PMU). After
//! every step both must give the same outcome for the access and the same interrupt level,
//! every register must read the same (read on clones, so the checks do not fold anything into
//! the PMU under test), the SET/CLR views must agree, the bits of counters that do not exist
//! must stay zero, and `events_until_overflow` must say exactly when the next overflow comes.
//!
//! Half the cases run on [`Delayed`](common::delayed::Delayed), a `SoftBackend` whose overflow
//! signal stays pending until the `Pmu` asks for it, as a physical PMU interrupt or a perf signal
//! may: every read must be exact all the same. The interrupt level is sampled on a clone, so the
//! check itself does not deliver the signal.
//!
//! `PROPTEST_CASES` sets the number of cases (default 512, each of 1 to 63 steps).

mod common;
#[path = "common/delayed.rs"]
mod delayed;
#[path = "common/model.rs"]
mod model;

use delayed::Delayed;

use model::Model;
use proptest::prelude::*;
use proptest::test_runner::Config;
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};
use vpmu::config::{PmuConfig, PmuVersion};
use vpmu::decode::{Direction, Gpr, SysregAccess, Xfer};
use vpmu::reg::{EventCounter, PmuReg};
use vpmu::{El, Op, Outcome, Params, Pmu, PmuState, Pstate, SoftBackend};

use common::arch::{CYCLE_BIT, PMCR_E};
use common::{config, ev, pmu_with, DrawnConfig};

/// One configuration: the VMM's description and the events the host can count.
#[derive(Clone)]
struct Setup {
    cfg: PmuConfig,
    supported: Option<Vec<u16>>,
    /// The backend's overflow signal comes late.
    delay: bool,
}

/// Short: the configuration's fields and filter actions, not the filter's empty slots.
impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.cfg;
        f.debug_struct("Setup")
            .field("counters", &c.counters())
            .field("version", &c.version())
            .field("aarch32_el0", &c.aarch32_el0())
            .field("el3", &c.el3())
            .field("imp_idcode", &(c.imp(), c.idcode()))
            .field("pmmir", &c.pmmir())
            .field("el0_denial", &c.el0_denial())
            .field("filter", &c.filter().actions().collect::<Vec<_>>())
            .field("supported", &self.supported)
            .field("delay", &self.delay)
            .finish()
    }
}

impl Setup {
    fn pmu(&self) -> Pmu<Delayed> {
        let backend = self.supported.as_deref().map_or_else(SoftBackend::new, SoftBackend::with_events);
        Pmu::new(self.cfg, Delayed::new(backend, self.delay)).unwrap()
    }

    fn model(&self) -> Model {
        Model::new(&self.cfg, self.supported.as_deref())
    }
}

#[derive(Clone, Debug)]
enum Step {
    Access {
        reg: PmuReg,
        op: Op,
        aarch32: bool,
        el: El,
        /// As a trap: an `MRS`/`MSR` or `MRC`/`MCR` syndrome through [`Pmu::handle_esr`],
        /// from a guest at `el` (the guest moved there first). Otherwise [`Pmu::emulate`].
        trap: bool,
    },
    Count {
        event: u16,
        k: u64,
    },
    SetEl(El),
    Reset,
    ResetPmcr,
    /// Save, through the byte form, restore into a new PMU: the guest sees nothing.
    Migrate,
    /// The host calls `sync` though nothing overflowed (a spurious backend signal).
    Sync,
}

#[derive(Clone)]
struct RefState {
    setup: Setup,
    model: Model,
    /// The model's outcome of the last access.
    last: Option<Outcome>,
}

/// The configuration only: the model's registers follow from it and the steps, which
/// proptest prints anyway.
impl std::fmt::Debug for RefState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefState").field("setup", &self.setup).finish_non_exhaustive()
    }
}

// ---- strategies -------------------------------------------------------------------------

const INTERESTING_EVENTS: [u16; 8] = [0x00, 0x08, 0x11, 0x1e, 0x3d, 0x3f, 0x4000, 0x4008];

fn version() -> impl Strategy<Value = PmuVersion> {
    prop_oneof![Just(PmuVersion::V3), Just(PmuVersion::V3p1), Just(PmuVersion::V3p4), Just(PmuVersion::V3p5)]
}

fn setup() -> impl Strategy<Value = Setup> {
    let filter = prop::option::weighted(0.25, prop::collection::vec((any::<bool>(), 0u16..0x44, 0u16..12), 1..4));
    let supported =
        prop::option::weighted(0.25, prop::collection::vec(prop_oneof![prop::sample::select(&INTERESTING_EVENTS[..]), 0u16..0x40], 0..10));
    (
        (0u8..=31, version(), any::<bool>(), any::<bool>()),
        (any::<u8>(), any::<u8>(), prop_oneof![Just(0u32), 1u32..0x100, 0u32..0x100_0000], any::<bool>()),
        filter,
        supported,
        any::<bool>(),
    )
        .prop_map(|((n, version, aarch32_el0, el3), (imp, idcode, pmmir, el0_undefined), filter, supported, delay)| {
            let filter = filter.unwrap_or_default();
            let cfg = DrawnConfig { n, version, aarch32_el0, el3, imp, idcode, pmmir, el0_undefined, filter }.build();
            Setup { cfg, supported, delay }
        })
}

fn counter_index(n: u8) -> BoxedStrategy<EventCounter> {
    let mostly_existing = 0..n.max(1);
    prop_oneof![4 => mostly_existing, 1 => 0u8..31].prop_map(ev).boxed()
}

fn register(n: u8) -> BoxedStrategy<PmuReg> {
    use PmuReg::*;
    let all: Vec<PmuReg> = PmuReg::all().collect();
    prop_oneof![
        8 => Just(Pmcr),
        5 => Just(Pmcntenset),
        3 => Just(Pmcntenclr),
        8 => counter_index(n).prop_map(Pmevtyper),
        8 => counter_index(n).prop_map(Pmevcntr),
        4 => Just(Pmselr),
        4 => Just(Pmxevtyper),
        4 => Just(Pmxevcntr),
        3 => Just(Pmovsset),
        3 => Just(Pmovsclr),
        3 => Just(Pmintenset),
        2 => Just(Pmintenclr),
        5 => Just(Pmswinc),
        4 => Just(Pmuserenr),
        4 => Just(Pmccntr),
        3 => Just(Pmccfiltr),
        4 => prop::sample::select(all),
    ]
    .boxed()
}

fn counter_value() -> BoxedStrategy<u64> {
    prop_oneof![
        Just(0u64),
        0u64..100,
        0xffff_ffc0u64..=0xffff_ffff,
        0xffff_ffff_ffff_ffc0u64..=u64::MAX,
        0x1_ffff_fff0u64..=0x1_ffff_ffff,
        0x7fff_ffff_ffff_fff0u64..=0x8000_0000_0000_0010,
        0x3fff_ffff_ffff_fff0u64..=0x4000_0000_0000_0010,
        any::<u64>(),
    ]
    .boxed()
}

/// Counter bits: mostly among the first few counters and the cycle counter.
fn bitmap() -> BoxedStrategy<u64> {
    prop_oneof![
        4 => (0u64..0x40, any::<bool>()).prop_map(|(low, cycle)| low | if cycle { CYCLE_BIT } else { 0 }),
        1 => any::<u32>().prop_map(u64::from),
        1 => any::<u64>(),
    ]
    .boxed()
}

fn evtyper() -> BoxedStrategy<u64> {
    let event = prop_oneof![3 => prop::sample::select(&INTERESTING_EVENTS[..]), 1 => 0u16..0x40, 1 => any::<u16>()];
    let filter = prop_oneof![
        3 => Just(0u8),
        2 => prop::sample::select(&[0x80u8, 0x40, 0xa0, 0x50, 0x20, 0x10, 0x08, 0x04, 0xf0][..]),
        1 => any::<u8>(),
    ];
    prop_oneof![6 => (event, filter).prop_map(|(e, f)| u64::from(e) | u64::from(f) << 24), 1 => any::<u64>()].boxed()
}

fn pmcr_value() -> BoxedStrategy<u64> {
    // E set most of the time; P, C, D, LC, LP now and then.
    prop_oneof![6 => (0u64..0x100).prop_map(|v| v | 1), 2 => 0u64..0x100, 1 => any::<u64>()].boxed()
}

fn write_value(reg: PmuReg) -> BoxedStrategy<u64> {
    use PmuReg::*;
    match reg {
        Pmcr => pmcr_value(),
        Pmcntenset | Pmcntenclr | Pmintenset | Pmintenclr | Pmovsset | Pmovsclr | Pmswinc => bitmap(),
        Pmevtyper(_) | Pmxevtyper | Pmccfiltr => evtyper(),
        Pmevcntr(_) | Pmxevcntr | Pmccntr => counter_value(),
        Pmselr => prop_oneof![4 => 0u64..6, 2 => Just(31u64), 2 => 0u64..32, 1 => any::<u64>()].boxed(),
        Pmuserenr => prop_oneof![4 => 0u64..16, 1 => any::<u64>()].boxed(),
        _ => any::<u64>().boxed(),
    }
}

fn access(reg: PmuReg, aarch32_el0: bool) -> BoxedStrategy<Step> {
    use PmuReg::*;
    // Mostly the directions the register has; sometimes the one it has not (UNDEFINED).
    let read_weight = match reg {
        Pmswinc => 1,
        Pmceid0 | Pmceid1 | Pmceid2 | Pmceid3 | Pmmir => 9,
        _ => 4,
    };
    let op = prop_oneof![read_weight => Just(Op::Read), 10 - read_weight => write_value(reg).prop_map(Op::Write)];
    let only_aarch32 = !reg.in_aarch64();
    let el = prop_oneof![7 => Just(El::El1), 3 => Just(El::El0)];
    (op, prop::bool::weighted(0.25), el, any::<bool>())
        .prop_map(move |(op, a32, el, trap)| {
            // AArch32 at EL0 only exists when the guest has it.
            let aarch32 = only_aarch32 || (a32 && (el == El::El1 || aarch32_el0));
            let el = if aarch32 && !aarch32_el0 { El::El1 } else { el };
            Step::Access { reg, op, aarch32, el, trap }
        })
        .boxed()
}

fn batch() -> BoxedStrategy<Step> {
    let event = prop_oneof![
        3 => Just(0x08u16),
        3 => Just(0x11u16),
        1 => Just(0x1eu16),
        1 => Just(0x00u16),
        2 => 0u16..0x40,
        1 => 0x4000u16..0x4040,
    ];
    // Below 2^40 per batch: the SoftBackend is exact below 2^63 events between overflows.
    let k = prop_oneof![4 => 0u64..4, 3 => 1u64..100, 2 => 60u64..70, 2 => 0u64..=0x1_0000_0010, 1 => 0u64..(1 << 40)];
    (event, k).prop_map(|(event, k)| Step::Count { event, k }).boxed()
}

struct Reference;

impl ReferenceStateMachine for Reference {
    type State = RefState;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<RefState> {
        setup().prop_map(|setup| RefState { model: setup.model(), setup, last: None }).boxed()
    }

    fn transitions(state: &RefState) -> BoxedStrategy<Step> {
        let aarch32_el0 = state.setup.cfg.aarch32_el0();
        let el = prop_oneof![Just(El::El0), Just(El::El1)];
        prop_oneof![
            60 => register(state.model.counters()).prop_flat_map(move |reg| access(reg, aarch32_el0)),
            25 => batch(),
            8 => el.prop_map(Step::SetEl),
            1 => Just(Step::Reset),
            1 => Just(Step::ResetPmcr),
            2 => Just(Step::Migrate),
            1 => Just(Step::Sync),
        ]
        .boxed()
    }

    fn apply(mut state: RefState, step: &Step) -> RefState {
        state.last = None;
        match *step {
            Step::Access { reg, op, aarch32, el, trap } => {
                if trap {
                    state.model.set_el(el);
                }
                state.last = Some(state.model.access(reg, op, aarch32, el));
            }
            Step::Count { event, k } => state.model.count(event, k),
            Step::SetEl(el) => state.model.set_el(el),
            Step::Reset => state.model.reset(),
            Step::ResetPmcr => state.model.reset_pmcr(),
            Step::Migrate | Step::Sync => {}
        }
        state
    }
}

struct PmuUnderTest;

impl StateMachineTest for PmuUnderTest {
    type SystemUnderTest = Pmu<Delayed>;
    type Reference = Reference;

    fn init_test(state: &RefState) -> Pmu<Delayed> {
        state.setup.pmu()
    }

    fn apply(mut pmu: Pmu<Delayed>, state: &RefState, step: Step) -> Pmu<Delayed> {
        match step {
            Step::Access { reg, op, aarch32, el, trap: false } => {
                let out = pmu.emulate(reg, Params { op, aarch32, el });
                assert_eq!(Some(out), state.last, "{step:?}: the PMU (left) and the model (right) disagree");
            }
            Step::Access { reg, op, aarch32, el, trap: true } => {
                // A trap from a new level moves the PMU there itself (the overflows pending
                // happened at the old one); the backend, which counts by level, learns it from
                // the emulator, after the access here so that the trap does the move.
                let out = trap(&mut pmu, reg, op, aarch32, el);
                pmu.set_el(el);
                assert_eq!(Some(out), state.last, "{step:?}: the PMU (left) and the model (right) disagree");
            }
            Step::Count { event, k } => pmu.count(event, k),
            Step::SetEl(el) => pmu.set_el(el),
            Step::Reset => pmu.reset(),
            Step::ResetPmcr => pmu.reset_pmcr(),
            Step::Migrate => {
                let saved = pmu.save();
                let state_back = PmuState::from_bytes(&saved.to_bytes()).unwrap();
                assert_eq!(state_back, saved);
                let mut new = state.setup.pmu();
                new.set_el(state.model.el());
                assert_eq!(new.restore(&state_back), Ok(()), "restoring {saved:?}");
                pmu = new;
            }
            Step::Sync => pmu.sync(),
        }
        // On a clone: sampling the level handles pending overflows, which would end the delay.
        assert_eq!(pmu.clone().irq_level(), state.model.irq_level(), "{step:?}: interrupt level, PMU (left) and model (right)");
        if let Step::Count { event, .. } = step {
            check_deadline(&pmu, &state.model, event);
        }
        pmu
    }

    fn check_invariants(pmu: &Pmu<Delayed>, state: &RefState) {
        check_registers(pmu, &state.model);
        for event in [0x08, 0x11] {
            check_deadline(pmu, &state.model, event);
        }
    }
}

/// The access as a trapped `MRS`/`MSR` (`MRC`/`MCR`, `aarch32`) with `X7`, through
/// [`Pmu::handle_esr`]: the value read must land in `X7`, nothing else may move, and a 32-bit
/// write must ignore bits \[63:32\] of the register.
fn trap(pmu: &mut Pmu<Delayed>, reg: PmuReg, op: Op, aarch32: bool, el: El) -> Outcome {
    const JUNK: u64 = 0xa5a5_0000_0000_0000;
    let rt = Gpr::new(7).unwrap();
    let xfer = if aarch32 { Xfer::A32 { rt, cond: None } } else { Xfer::A64 { rt } };
    let dir = if op == Op::Read { Direction::Read } else { Direction::Write };
    let esr = SysregAccess { reg, dir, xfer }.to_esr().unwrap();
    let pstate = if aarch32 { Pstate::from_spsr(if el == El::El0 { 0x10 } else { 0x13 }).unwrap() } else { Pstate::from(el) };
    let mut x: [u64; 31] = core::array::from_fn(|i| JUNK | i as u64);
    if let Op::Write(v) = op {
        x[7] = if aarch32 { JUNK | (v & 0xffff_ffff) } else { v };
    }
    let mut want = x;
    let out = pmu.handle_esr(esr, pstate, &mut x).unwrap().outcome().unwrap();
    if let Outcome::Read(v) = out {
        want[7] = v;
        assert!(!aarch32 || v >> 32 == 0, "{reg}: a 32-bit read gave {v:#x}");
    }
    assert_eq!(x, want, "{reg} {op:?}: the guest registers");
    out
}

/// Every register reads the same at EL1 in the PMU and the model (both cloned), the SET and CLR
/// views agree, and the bits of counters that do not exist are zero.
fn check_registers(pmu: &Pmu<Delayed>, model: &Model) {
    use PmuReg::*;
    let mut pmu = pmu.clone();
    let mut model = model.clone();
    let n = model.counters();
    let mut read = |reg: PmuReg| {
        let got = pmu.emulate(reg, Params::read(El::El1));
        let want = model.access(reg, Op::Read, false, El::El1);
        assert_eq!(got, want, "reading {reg} at EL1: the PMU (left) and the model (right) disagree");
        got.value()
    };
    let absent = !(((1u64 << n) - 1) | CYCLE_BIT);
    for (set, clr) in [(Pmcntenset, Pmcntenclr), (Pmintenset, Pmintenclr), (Pmovsset, Pmovsclr)] {
        let (s, c) = (read(set), read(clr));
        assert_eq!(s, c, "{set} and {clr} disagree");
        assert_eq!(s.unwrap_or(0) & absent, 0, "{set} has bits of counters that do not exist (N = {n})");
    }
    for reg in [Pmcr, Pmselr, Pmuserenr, Pmccntr, Pmccfiltr, Pmceid0, Pmceid1, Pmmir, Pmxevtyper, Pmxevcntr] {
        read(reg);
    }
    for c in EventCounter::all() {
        read(Pmevcntr(c));
        read(Pmevtyper(c));
    }
}

/// `events_until_overflow(event)` is the model's distance to the first overflow among the
/// counters counting `event` now.
///
/// The SoftBackend is exact for counters whose overflow was fewer than 2^63 events away when
/// they were programmed. These tests report fewer than 2^46 events per case, so a counter the
/// model puts 2^62 or more events from its overflow may be one the backend does not track: then
/// any answer of at least 2^62, or none, is right.
fn check_deadline(pmu: &Pmu<Delayed>, model: &Model, event: u16) {
    // A host with a late signal asks once the signal is handled (on a clone: the PMU under
    // test keeps its pending overflows).
    let mut pmu = pmu.clone();
    pmu.handle_overflows();
    model.check_deadline(event, pmu.events_until_overflow(event)).unwrap_or_else(|e| panic!("{e}"));
}

/// 512 cases unless `PROPTEST_CASES` says otherwise: about 5 s in a debug build.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512)
}

prop_state_machine! {
    #![proptest_config(Config {
        cases: cases(),
        // No regression files in the shared tree: a failure prints its minimal case, which
        // becomes a plain regression test below.
        failure_persistence: None,
        .. Config::default()
    })]

    #[test]
    fn pmu_agrees_with_the_eager_model(sequential 1..64 => PmuUnderTest);
}

// ---- regressions: cases the state machine found, as plain tests -------------------------

/// AArch32 `PMCEID2`/`PMCEID3` exist only from PMUv3p1 (Arm ARM, their register pages); before
/// that their encodings are UNDEFINED. (The PMU read them as 0.)
#[test]
fn pmceid2_and_pmceid3_are_undefined_before_v3p1() {
    for version in [PmuVersion::V3, PmuVersion::V3p1, PmuVersion::V3p4, PmuVersion::V3p5] {
        let cfg = config(version, 22);
        let mut pmu = pmu_with(cfg);
        let mut model = Model::new(&cfg, None);
        for reg in [PmuReg::Pmceid2, PmuReg::Pmceid3] {
            let p = Params { op: Op::Read, aarch32: true, el: El::El1 };
            let got = pmu.emulate(reg, p);
            assert_eq!(got == Outcome::Undefined, version == PmuVersion::V3, "{reg} on {version:?}: {got:?}");
            assert_eq!(got, model.access(reg, Op::Read, true, El::El1));
        }
    }
}

/// `STALL_SLOT*` (0x3D..=0x3F) are not implemented while `PMMIR.SLOTS` is 0 (PMCEID hides them),
/// so a counter typed with one counts nothing; with slots it counts. (The PMU counted them.)
#[test]
fn stall_slot_events_count_only_with_pmmir_slots() {
    for slots in [0u32, 4] {
        let cfg = PmuConfig::builder().counters(24).version(PmuVersion::V3p5).pmmir(slots).build().unwrap();
        let mut pmu = pmu_with(cfg);
        let c15 = ev(15);
        for (reg, value) in [(PmuReg::Pmcntenset, 1 << 15), (PmuReg::Pmcr, PMCR_E), (PmuReg::Pmevtyper(c15), 0x3f)] {
            assert_eq!(pmu.write(reg, value, El::El1), Outcome::Written);
        }
        pmu.count(0x3f, 2);
        let counted = if slots == 0 { 0 } else { 2 };
        assert_eq!(pmu.read(PmuReg::Pmevcntr(c15), El::El1), Outcome::Read(counted), "PMMIR.SLOTS = {slots}");
        assert_eq!(pmu.events_until_overflow(0x3f), (slots != 0).then_some((1 << 32) - 2));
        let advertised = pmu.read(PmuReg::Pmceid1, El::El1).value().unwrap() & (1 << 31) != 0;
        assert_eq!(advertised, slots != 0, "PMCEID1 bit 31 is STALL_SLOT (0x3F)");
    }
}
