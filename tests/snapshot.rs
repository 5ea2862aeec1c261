#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::arithmetic_side_effects, missing_docs)]
//! `vpmu::snapshot` through the public API, as a VMM migrating a VM uses it:
//!
//! - proptest: random configurations and guest histories; save → restore → save is the
//!   identity; counting continues exactly across a save/restore done mid-count (against a PMU
//!   that never migrated and against the eager reference model, `tests/common/model.rs`);
//!   `from_bytes(to_bytes(s)) == s`; a one-reg copy moves the whole state; a corrupted state is
//!   refused and changes nothing;
//! - the byte layout against its documented table, every byte-form error, every restore rule
//!   with the error it returns;
//! - KVM one-reg ids and KVM's userspace semantics (SET/CLR pairs and counters assigned raw,
//!   `PMCR.N` adopted before the first run and ignored after).
//!
//! `PROPTEST_CASES` sets the number of cases (default 256).

mod common;
#[path = "common/model.rs"]
mod model;

/// The `restore_bytes` fuzz target's per-input check (alone: `fuzz_check/mod.rs` would bring the
/// model in a second time).
#[allow(dead_code)]
#[path = "common/fuzz_check/restore_bytes.rs"]
mod restore_bytes;

use model::Model;
use proptest::prelude::*;
use restore_bytes::{crc32, repair};
use vpmu::config::{PmuConfig, PmuVersion};
use vpmu::reg::{EventCounter, PmuReg};
use vpmu::snapshot::{one_reg_id, one_reg_reg, Identity, IdentityField, KVM_REG_ARM64, KVM_REG_ARM64_SYSREG, KVM_REG_SIZE_U64};
use vpmu::{El, OneRegError, Op, Outcome, Params, Pmu, PmuState, SnapshotError, SoftBackend};

use common::arch::{
    CHAIN, CPU_CYCLES, CYCLE_BIT, F_NSH, F_NSK, F_P, F_U, INST_RETIRED, PMCR_C, PMCR_D, PMCR_DP, PMCR_E, PMCR_LC, PMCR_LP, PMCR_N_SHIFT,
    PMCR_P, PMCR_X,
};
use common::{cnt, config, ev, pmu, pmu_supporting, pmu_with, rd, typ, wr, DrawnConfig, SoftPmu};

fn id(reg: PmuReg) -> u64 {
    one_reg_id(reg).unwrap()
}

/// Counter 0 on INST_RETIRED from `preset0`, counter 1 typed CHAIN, the cycle counter, all
/// enabled with their interrupts; PMCR.E and D.
fn busy_pmu(c: PmuConfig, preset0: u64) -> SoftPmu {
    let mut p = pmu_with(c);
    wr(&mut p, typ(0), INST_RETIRED.into());
    wr(&mut p, cnt(0), preset0);
    wr(&mut p, typ(1), CHAIN.into());
    wr(&mut p, PmuReg::Pmcntenset, CYCLE_BIT | 0b11);
    wr(&mut p, PmuReg::Pmintenset, CYCLE_BIT | 0b11);
    wr(&mut p, PmuReg::Pmcr, PMCR_E | PMCR_D);
    p
}

/// Every register with state, and the views that derive from it, each with what `read` gives.
/// The interrupt level comes last, as PMSWINC's entry (PMSWINC itself is write-only).
fn view(mut read: impl FnMut(PmuReg) -> Outcome) -> Vec<(PmuReg, Outcome)> {
    let mut regs = vec![
        PmuReg::Pmcr,
        PmuReg::Pmcntenset,
        PmuReg::Pmintenset,
        PmuReg::Pmovsset,
        PmuReg::Pmselr,
        PmuReg::Pmuserenr,
        PmuReg::Pmccntr,
        PmuReg::Pmccfiltr,
        PmuReg::Pmceid0,
        PmuReg::Pmceid1,
        PmuReg::Pmmir,
        PmuReg::Pmxevtyper,
        PmuReg::Pmxevcntr,
    ];
    regs.extend(EventCounter::all().flat_map(|n| [PmuReg::Pmevcntr(n), PmuReg::Pmevtyper(n)]));
    regs.into_iter().map(|r| (r, read(r))).collect()
}

/// The PMU's view, read at EL1 on a clone (so nothing is folded into the PMU under test).
fn guest_view(p: &SoftPmu) -> Vec<(PmuReg, Outcome)> {
    let mut p = p.clone();
    let mut out = view(|r| p.read(r, El::El1));
    out.push((PmuReg::Pmswinc, Outcome::Read(u64::from(p.irq_level()))));
    out
}

/// The model's view, the same way.
fn model_view(m: &Model) -> Vec<(PmuReg, Outcome)> {
    let mut m = m.clone();
    let mut out = view(|r| m.access(r, Op::Read, false, El::El1));
    out.push((PmuReg::Pmswinc, Outcome::Read(u64::from(m.irq_level()))));
    out
}

// =============================================================================================
// Random configurations and guest histories
// =============================================================================================

#[derive(Clone, Debug)]
struct Setup {
    cfg: PmuConfig,
    supported: Option<Vec<u16>>,
}

impl Setup {
    fn pmu(&self) -> SoftPmu {
        pmu_supporting(self.cfg, self.supported.as_deref())
    }
    fn model(&self) -> Model {
        Model::new(&self.cfg, self.supported.as_deref())
    }
}

#[derive(Clone, Copy, Debug)]
enum Step {
    Access { reg: PmuReg, op: Op, aarch32: bool, el: El },
    Count { event: u16, k: u64 },
    SetEl(El),
}

impl Step {
    fn apply(self, p: &mut SoftPmu) -> Option<Outcome> {
        match self {
            Step::Access { reg, op, aarch32, el } => return Some(p.emulate(reg, Params { op, aarch32, el })),
            Step::Count { event, k } => p.count(event, k),
            Step::SetEl(el) => p.set_el(el),
        }
        None
    }
    fn apply_model(self, m: &mut Model) -> Option<Outcome> {
        match self {
            Step::Access { reg, op, aarch32, el } => return Some(m.access(reg, op, aarch32, el)),
            Step::Count { event, k } => m.count(event, k),
            Step::SetEl(el) => m.set_el(el),
        }
        None
    }
}

const EVENTS: [u16; 8] = [0x00, 0x08, 0x11, 0x1e, 0x10, 0x3d, 0x4000, 0x4008];

fn version() -> impl Strategy<Value = PmuVersion> {
    prop_oneof![Just(PmuVersion::V3), Just(PmuVersion::V3p1), Just(PmuVersion::V3p4), Just(PmuVersion::V3p5)]
}

fn setup() -> impl Strategy<Value = Setup> {
    let filter = prop::option::weighted(0.3, prop::collection::vec((any::<bool>(), 0u16..0x40, 0u16..16), 1..4));
    let supported = prop::option::weighted(0.2, prop::collection::vec(prop::sample::select(&EVENTS[..]), 0..6));
    (
        prop_oneof![3 => 0u8..8, 1 => 0u8..=31],
        version(),
        (any::<bool>(), any::<bool>(), any::<bool>()),
        (any::<u8>(), any::<u8>(), 0u32..0x100),
        filter,
        supported,
    )
        .prop_map(|(n, version, (aarch32_el0, el3, el0_undefined), (imp, idcode, pmmir), filter, supported)| {
            let filter = filter.unwrap_or_default();
            let cfg = DrawnConfig { n, version, aarch32_el0, el3, imp, idcode, pmmir, el0_undefined, filter }.build();
            Setup { cfg, supported }
        })
}

fn counter(n: u8) -> BoxedStrategy<EventCounter> {
    prop_oneof![5 => 0..n.max(1), 1 => 0u8..31].prop_map(ev).boxed()
}

fn value() -> BoxedStrategy<u64> {
    prop_oneof![
        0u64..100,
        0xffff_ffc0u64..=0xffff_ffff,
        0xffff_ffff_ffff_ffc0u64..=u64::MAX,
        0x1_ffff_fff0u64..=0x1_ffff_ffff,
        any::<u64>(),
    ]
    .boxed()
}

fn write_value(reg: PmuReg) -> BoxedStrategy<u64> {
    use PmuReg::*;
    match reg {
        Pmcr => prop_oneof![6 => (0u64..0x100).prop_map(|v| v | PMCR_E), 2 => 0u64..0x100, 1 => any::<u64>()].boxed(),
        Pmcntenset | Pmcntenclr | Pmintenset | Pmintenclr | Pmovsset | Pmovsclr | Pmswinc => {
            prop_oneof![4 => (0u64..0x40).prop_map(|v| v | CYCLE_BIT), 2 => 0u64..0x40, 1 => any::<u64>()].boxed()
        }
        Pmevtyper(_) | Pmxevtyper | Pmccfiltr => {
            let event = prop_oneof![3 => prop::sample::select(&EVENTS[..]), 1 => any::<u16>()];
            let filter =
                prop_oneof![3 => Just(0u64), 2 => prop::sample::select(&[0x80u64, 0x40, 0xa0, 0x50, 0x08, 0xfc][..]), 1 => 0u64..0x100];
            prop_oneof![6 => (event, filter).prop_map(|(e, f)| u64::from(e) | f << 24), 1 => any::<u64>()].boxed()
        }
        Pmevcntr(_) | Pmxevcntr | Pmccntr => value(),
        Pmselr => prop_oneof![4 => 0u64..6, 1 => Just(31u64), 1 => any::<u64>()].boxed(),
        Pmuserenr => prop_oneof![4 => 0u64..16, 1 => any::<u64>()].boxed(),
        _ => any::<u64>().boxed(),
    }
}

fn step(setup: &Setup) -> BoxedStrategy<Step> {
    use PmuReg::*;
    let n = setup.cfg.counters();
    let aarch32_el0 = setup.cfg.aarch32_el0();
    let all: Vec<PmuReg> = PmuReg::all().collect();
    let reg = prop_oneof![
        6 => Just(Pmcr),
        5 => Just(Pmcntenset),
        2 => Just(Pmcntenclr),
        8 => counter(n).prop_map(Pmevtyper),
        6 => counter(n).prop_map(Pmevcntr),
        3 => Just(Pmselr),
        2 => Just(Pmxevtyper),
        2 => Just(Pmxevcntr),
        3 => Just(Pmovsset),
        2 => Just(Pmovsclr),
        3 => Just(Pmintenset),
        1 => Just(Pmintenclr),
        3 => Just(Pmswinc),
        2 => Just(Pmuserenr),
        3 => Just(Pmccntr),
        3 => Just(Pmccfiltr),
        2 => prop::sample::select(all),
    ];
    let access = reg
        .prop_flat_map(move |reg| {
            let op = prop_oneof![1 => Just(Op::Read), 3 => write_value(reg).prop_map(Op::Write)];
            let el = prop_oneof![4 => Just(El::El1), 1 => Just(El::El0)];
            (op, prop::bool::weighted(0.2), el).prop_map(move |(op, a32, el)| {
                let aarch32 = !reg.in_aarch64() || (a32 && (el == El::El1 || aarch32_el0));
                let el = if aarch32 && !aarch32_el0 { El::El1 } else { el };
                Step::Access { reg, op, aarch32, el }
            })
        })
        .boxed();
    let event = prop_oneof![4 => Just(INST_RETIRED), 4 => Just(CPU_CYCLES), 1 => Just(CHAIN), 1 => Just(0u16), 2 => prop::sample::select(&EVENTS[..])];
    let k = prop_oneof![3 => 0u64..4, 3 => 1u64..100, 2 => 60u64..70, 2 => 0u64..=0x1_0000_0010, 1 => 0u64..(1 << 40)];
    let count = (event, k).prop_map(|(event, k)| Step::Count { event, k });
    let el = prop_oneof![Just(El::El0), Just(El::El1)].prop_map(Step::SetEl);
    prop_oneof![6 => access, 3 => count, 1 => el].boxed()
}

/// A configuration and two histories: before and after the migration.
fn scenario() -> impl Strategy<Value = (Setup, Vec<Step>, Vec<Step>)> {
    setup().prop_flat_map(|s| {
        let h = prop::collection::vec(step(&s), 0..48);
        (Just(s), h.clone(), h)
    })
}

fn arbitrary_state() -> impl Strategy<Value = PmuState> {
    (
        (any::<u8>(), version(), any::<u8>()),
        prop::array::uniform8(any::<u64>()),
        prop::array::uniform31(any::<u64>()),
        prop::array::uniform31(any::<u64>()),
        (any::<u16>(), any::<u8>(), any::<u8>(), any::<u32>(), any::<u32>(), any::<[u64; 2]>()),
    )
        .prop_map(|((counters, version, prescale), r, evcntr, evtyper, (irq, imp, idcode, pmmir, filter, pmceid))| {
            let mut s = PmuState::new(counters, version);
            [s.pmcr, s.pmselr, s.pmcntenset, s.pmintenset, s.pmovsset, s.pmuserenr, s.pmccntr, s.pmccfiltr] = r;
            (s.evcntr, s.evtyper, s.prescale) = (evcntr, evtyper, prescale);
            s.identity = identity(irq, imp, idcode, pmmir, filter, pmceid);
            s
        })
}

/// Two answers of `events_until_overflow` agree where the SoftBackend promises exactness: below
/// 2^63 they are equal; beyond, each is `None` or far.
fn same_deadline(a: Option<u64>, b: Option<u64>) -> bool {
    let far = |x: Option<u64>| x.map_or(true, |d| d >= 1 << 63);
    a == b || (far(a) && far(b))
}

/// The model's distance to the next overflow ([`Model::check_deadline`]).
fn check_deadline(p: &SoftPmu, m: &Model, event: u16) {
    m.check_deadline(event, p.events_until_overflow(event)).unwrap_or_else(|e| panic!("{e}"));
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// save → restore into a fresh PMU → save gives the same state; saving twice changes
    /// nothing; the byte form carries it exactly; restoring into a busy PMU is the same.
    #[test]
    fn save_restore_save_is_the_identity((s, h, other) in scenario()) {
        let mut a = s.pmu();
        for st in &h {
            st.apply(&mut a);
        }
        let view = guest_view(&a);
        let state = a.save();
        prop_assert_eq!(guest_view(&a), view, "saving changed what the guest sees");
        prop_assert_eq!(a.save(), state);
        prop_assert_eq!(PmuState::from_bytes(&state.to_bytes()), Ok(state));

        let mut fresh = s.pmu();
        prop_assert_eq!(fresh.restore(&state), Ok(()));
        prop_assert_eq!(fresh.save(), state);
        prop_assert_eq!(guest_view(&fresh), guest_view(&a));

        let mut busy = s.pmu();
        for st in &other {
            st.apply(&mut busy);
        }
        prop_assert_eq!(busy.restore(&state), Ok(()));
        prop_assert_eq!(busy.save(), state);
    }

    /// A guest counts; the VMM saves mid-count to bytes and restores them into a second PMU
    /// (which has a past of its own); the guest goes on on the destination. Every step gives the
    /// same outcome, interrupt level and overflow deadline as on a PMU that never migrated and
    /// as in the eager model, and the final states agree.
    #[test]
    fn counting_continues_exactly_across_a_migration((s, h1, h2) in scenario(), dst_past in prop::collection::vec(0u64..1000, 0..3)) {
        let mut stay = s.pmu();
        let mut src = s.pmu();
        let mut m = s.model();
        for st in &h1 {
            let o = st.apply(&mut stay);
            prop_assert_eq!(st.apply(&mut src), o);
            prop_assert_eq!(st.apply_model(&mut m), o, "{:?}: model", st);
        }
        let bytes = src.save().to_bytes();
        let mut dst = s.pmu();
        // The destination has counted things of its own before the restore replaces them.
        wr(&mut dst, PmuReg::Pmcntenset, CYCLE_BIT);
        wr(&mut dst, PmuReg::Pmcr, PMCR_E);
        for k in dst_past {
            dst.count(CPU_CYCLES, k);
        }
        prop_assert_eq!(dst.restore(&PmuState::from_bytes(&bytes).unwrap()), Ok(()));
        dst.set_el(src.backend().el());

        for st in &h2 {
            let o = st.apply(&mut stay);
            prop_assert_eq!(st.apply(&mut src), o, "{:?}: source", st);
            prop_assert_eq!(st.apply(&mut dst), o, "{:?}: destination", st);
            prop_assert_eq!(st.apply_model(&mut m), o, "{:?}: model", st);
            prop_assert_eq!(dst.irq_level(), stay.irq_level());
            prop_assert_eq!(dst.irq_level(), m.irq_level());
            for event in [INST_RETIRED, CPU_CYCLES] {
                let (d, st) = (dst.events_until_overflow(event), stay.events_until_overflow(event));
                prop_assert!(same_deadline(d, st), "events_until_overflow({:#x}): {:?} after the migration, {:?} without", event, d, st);
            }
            if let Step::Count { event, .. } = st {
                check_deadline(&dst, &m, *event);
            }
        }
        prop_assert_eq!(guest_view(&dst), model_view(&m));
        prop_assert_eq!(guest_view(&dst), guest_view(&stay));
        let end = stay.save();
        prop_assert_eq!(dst.save(), end);
        prop_assert_eq!(src.save(), end);
    }

    /// The byte form carries any state, valid for a PMU or not, exactly; and re-encoding a
    /// decoded input gives the input back.
    #[test]
    fn from_bytes_to_bytes_is_the_identity(state in arbitrary_state()) {
        let bytes = state.to_bytes();
        prop_assert_eq!(PmuState::from_bytes(&bytes), Ok(state));
        prop_assert_eq!(PmuState::from_bytes(&bytes).unwrap().to_bytes(), bytes);
    }

    /// Any bytes, raw and with the header and checksum repaired: the fuzz target's check.
    #[test]
    fn any_bytes_are_an_answer_never_a_panic(data in prop::collection::vec(any::<u8>(), 0..700)) {
        prop_assert_eq!(restore_bytes::check(&data), Ok(()));
    }

    /// Copying every listed one-reg id from one PMU to a fresh one moves the whole state (all
    /// but the hidden /64 prescaler, which has no id), and each id reads as the guest's MRS.
    #[test]
    fn a_one_reg_copy_moves_the_state((s, h, h2) in scenario()) {
        let mut src = s.pmu();
        for st in &h {
            st.apply(&mut src);
        }
        let mut dst = s.pmu();
        let ids: Vec<u64> = src.one_reg_ids().collect();
        prop_assert_eq!(ids.len(), 11 + 2 * usize::from(s.cfg.counters()));
        for &i in &ids {
            let reg = one_reg_reg(i).unwrap();
            let v = src.get_one_reg(i).unwrap();
            prop_assert_eq!(Outcome::Read(v), src.clone().read(reg, El::El1), "{} by id and by MRS", reg);
            prop_assert_eq!(dst.set_one_reg(i, v), Ok(()));
        }
        let mut want = src.save();
        let prescale = want.prescale;
        want.prescale = 0;
        prop_assert_eq!(dst.save(), want);
        if prescale == 0 {
            // Then nothing was lost: the two count on in step (the EL is the host's to carry).
            dst.set_el(src.backend().el());
            for st in &h2 {
                prop_assert_eq!(st.apply(&mut dst), st.apply(&mut src));
            }
            prop_assert_eq!(dst.save(), src.save());
        }
    }

    /// One field of a saved state made invalid: `validate_state` and `restore` refuse it with
    /// the same error, and the PMU (registers, counters, backend) is exactly as before.
    #[test]
    fn a_refused_restore_changes_nothing((s, h, _) in scenario(), field in 0usize..12, junk in any::<u64>(), idx in 0usize..31) {
        let mut p = s.pmu();
        for st in &h {
            st.apply(&mut p);
        }
        let mut bad = p.save();
        match field {
            0 => bad.counters = bad.counters.wrapping_add(1 + (junk as u8 % 31)),
            1 => bad.pmcr |= 1 << (8 + junk % 56),
            2 => bad.pmselr |= 32 << (junk % 58),
            3 => bad.pmuserenr |= 16 << (junk % 60),
            4 => bad.pmcntenset |= 1 << (32 + junk % 32),
            5 => bad.pmovsset |= 1 << (junk % 64),
            6 => bad.evcntr[idx] |= 1 << (32 + junk % 32),
            7 => bad.evtyper[idx] |= 1 << (junk % 64),
            8 => bad.pmccfiltr |= 1 << (junk % 64),
            9 => bad.prescale = 64 + junk as u8 % 192,
            10 => bad.pmcr &= !PMCR_LC,
            _ => bad.version = [PmuVersion::V3, PmuVersion::V3p1, PmuVersion::V3p4, PmuVersion::V3p5][junk as usize % 4],
        }
        let before = p.save();
        let backend = p.backend().clone();
        let verdict = p.validate_state(&bad);
        let got = p.restore(&bad);
        prop_assert_eq!(got, verdict);
        if got.is_err() {
            prop_assert!(p.backend() == &backend, "a refused restore changed the backend");
            prop_assert_eq!(p.save(), before);
        } else {
            prop_assert_eq!(p.save(), bad);
        }
    }
}

// =============================================================================================
// Save and restore, by hand
// =============================================================================================

#[test]
fn save_folds_live_counters_and_restore_rearms_them() {
    let c = config(PmuVersion::V3p5, 4);
    let mut src = busy_pmu(c, 0xffff_ff00);
    src.count(INST_RETIRED, 0x80);
    src.count(CPU_CYCLES, 64 * 10 + 5);
    let s = src.save();
    assert_eq!(s.evcntr[0], 0xffff_ff80);
    assert_eq!(s.pmccntr, 10, "PMCR.D: one tick per 64 cycles");
    assert_eq!(s.prescale, 5);
    assert_eq!(s.pmcr, PMCR_E | PMCR_D);
    assert_eq!(s.pmcntenset, CYCLE_BIT | 0b11);

    let mut dst = pmu_with(c);
    dst.restore(&s).unwrap();
    // Re-armed: the backend knows where the next overflow is.
    assert_eq!(dst.events_until_overflow(INST_RETIRED), Some(0x80));
    assert_eq!(dst.events_until_overflow(CPU_CYCLES), Some((0x1_0000_0000 - 10) * 64 - 5));
    dst.count(INST_RETIRED, 0x7f);
    assert!(!dst.irq_level());
    dst.count(INST_RETIRED, 1);
    assert!(dst.irq_level(), "the 32-bit overflow of counter 0 (PMCR.LP = 0)");
    assert_eq!(rd(&mut dst, cnt(1)), 1, "CHAIN counted the overflow");
    dst.count(CPU_CYCLES, 59);
    assert_eq!(rd(&mut dst, PmuReg::Pmccntr), 11, "the prescaler carried over: 5 + 59 = 64 cycles is one tick");
}

#[test]
fn restore_releases_what_the_destination_was_counting() {
    let c = config(PmuVersion::V3p5, 4);
    let idle = pmu_with(c).save();
    let mut dst = busy_pmu(c, 0);
    dst.count(INST_RETIRED, 10);
    assert!(dst.events_until_overflow(INST_RETIRED).is_some());
    dst.restore(&idle).unwrap();
    assert_eq!(dst.events_until_overflow(INST_RETIRED), None);
    assert_eq!(dst.events_until_overflow(CPU_CYCLES), None);
    dst.count(INST_RETIRED, 10);
    dst.count(CPU_CYCLES, 1000);
    assert_eq!(dst.save(), idle, "counters of the old state still counted");
}

#[test]
fn restore_keeps_the_configuration_and_the_lifecycle() {
    let c = PmuConfig::builder().counters(3).identity(0x41, 0x22).build().unwrap();
    let s = busy_pmu(c, 7).save();
    let mut dst = pmu_with(c);
    dst.lock_config();
    dst.restore(&s).unwrap();
    assert!(dst.config_locked());
    assert_eq!(*dst.config(), c);
    assert_eq!(rd(&mut dst, PmuReg::Pmcr), PMCR_E | PMCR_D | (3 << PMCR_N_SHIFT) | (0x22 << 16) | (0x41 << 24));
}

#[test]
fn each_restore_rule_has_its_error_and_changes_nothing() {
    use SnapshotError::*;
    let strict = PmuConfig::builder().counters(4).version(PmuVersion::V3p4).aarch32_el0(false).build().unwrap();
    let mut base_pmu = busy_pmu(strict, 0xffff_fff0);
    base_pmu.count(INST_RETIRED, 3);
    let base = base_pmu.save();
    assert_eq!(base.pmcr & PMCR_LC, PMCR_LC, "LC is RES1 without AArch32 EL0");

    type Change = Box<dyn Fn(&mut PmuState)>;
    let cases: Vec<(&str, Change, SnapshotError)> = vec![
        ("N", Box::new(|s| s.counters = 5), CounterMismatch { state: 5, config: 4 }),
        ("N = 32", Box::new(|s| s.counters = 32), CounterMismatch { state: 32, config: 4 }),
        ("version", Box::new(|s| s.version = PmuVersion::V3p5), VersionMismatch { state: PmuVersion::V3p5, config: PmuVersion::V3p4 }),
        ("PMCR.P is not stored", Box::new(|s| s.pmcr |= PMCR_P), ReservedBits { reg: PmuReg::Pmcr, bits: PMCR_P }),
        ("PMCR.C is not stored", Box::new(|s| s.pmcr |= PMCR_C), ReservedBits { reg: PmuReg::Pmcr, bits: PMCR_C }),
        ("PMCR.LP before v3p5", Box::new(|s| s.pmcr |= PMCR_LP), ReservedBits { reg: PmuReg::Pmcr, bits: PMCR_LP }),
        ("PMCR.N is configuration", Box::new(|s| s.pmcr |= 4 << PMCR_N_SHIFT), ReservedBits { reg: PmuReg::Pmcr, bits: 4 << PMCR_N_SHIFT }),
        ("PMCR.IMP", Box::new(|s| s.pmcr |= 0x41 << 24), ReservedBits { reg: PmuReg::Pmcr, bits: 0x41 << 24 }),
        ("PMCR.LC is RES1", Box::new(|s| s.pmcr &= !PMCR_LC), LcClear),
        ("PMSELR", Box::new(|s| s.pmselr = 32), ReservedBits { reg: PmuReg::Pmselr, bits: 32 }),
        ("PMSELR high", Box::new(|s| s.pmselr = 1 << 63 | 3), ReservedBits { reg: PmuReg::Pmselr, bits: 1 << 63 }),
        ("PMUSERENR", Box::new(|s| s.pmuserenr = 0x10 | 1), ReservedBits { reg: PmuReg::Pmuserenr, bits: 0x10 }),
        ("PMCNTENSET[32]", Box::new(|s| s.pmcntenset |= 1 << 32), ReservedBits { reg: PmuReg::Pmcntenset, bits: 1 << 32 }),
        ("PMCNTENSET counter 4", Box::new(|s| s.pmcntenset |= 1 << 4), NoSuchCounters { reg: PmuReg::Pmcntenset, bits: 1 << 4 }),
        ("PMINTENSET counter 30", Box::new(|s| s.pmintenset |= 1 << 30), NoSuchCounters { reg: PmuReg::Pmintenset, bits: 1 << 30 }),
        ("PMOVSSET counters 5, 6", Box::new(|s| s.pmovsset |= 0b110_0000), NoSuchCounters { reg: PmuReg::Pmovsset, bits: 0b110_0000 }),
        ("PMEVCNTR4", Box::new(|s| s.evcntr[4] = 9), MissingCounterState { reg: cnt(4), value: 9 }),
        ("PMEVTYPER30", Box::new(|s| s.evtyper[30] = 0x08), MissingCounterState { reg: typ(30), value: 0x08 }),
        ("32-bit counter", Box::new(|s| s.evcntr[2] = 1 << 32), ValueTooWide { reg: cnt(2), value: 1 << 32 }),
        ("PMEVTYPER NSH without EL2", Box::new(|s| s.evtyper[1] |= F_NSH), ReservedBits { reg: typ(1), bits: F_NSH }),
        ("PMEVTYPER NSK without EL3", Box::new(|s| s.evtyper[3] |= F_NSK), ReservedBits { reg: typ(3), bits: F_NSK }),
        ("PMEVTYPER[63:32]", Box::new(|s| s.evtyper[0] |= 1 << 40), ReservedBits { reg: typ(0), bits: 1 << 40 }),
        ("PMCCFILTR event number", Box::new(|s| s.pmccfiltr = F_P | 0x11), ReservedBits { reg: PmuReg::Pmccfiltr, bits: 0x11 }),
        ("prescaler", Box::new(|s| s.prescale = 64), PrescaleOutOfRange { prescale: 64 }),
    ];
    for (what, change, want) in cases {
        let mut bad = base;
        change(&mut bad);
        let mut p = base_pmu.clone();
        let backend = p.backend().clone();
        assert_eq!(p.validate_state(&bad), Err(want), "{what}");
        assert_eq!(p.restore(&bad), Err(want), "{what}");
        assert!(p.backend() == &backend, "{what}: the backend changed");
        assert_eq!(p.save(), base, "{what}: the PMU changed");
        assert!(!want.to_string().is_empty());
    }

    // The same bits are fine where the configuration has them.
    let lax = PmuConfig::builder().counters(4).version(PmuVersion::V3p5).el3(true).build().unwrap();
    let mut s = pmu_with(lax).save();
    s.pmcr = PMCR_E | PMCR_D | PMCR_X | PMCR_DP | PMCR_LP; // LC clear: AArch32 EL0 exists
    s.evcntr[2] = u64::MAX; // 64-bit from v3p5
    s.evtyper[1] = F_NSK | F_P | F_U | 0xffff; // NSH is RES0: no guest EL2
    s.pmccfiltr = F_NSK | F_P;
    s.pmselr = 31;
    s.pmuserenr = 0xf;
    s.pmovsset = CYCLE_BIT | 0xf;
    s.prescale = 63;
    let mut p = pmu_with(lax);
    assert_eq!(p.restore(&s), Ok(()));
    assert_eq!(p.save(), s);
    // v3 event numbers are 10 bits.
    let mut p3 = pmu(PmuVersion::V3, 2);
    let mut s3 = p3.save();
    s3.evtyper[0] = 0x400;
    assert_eq!(p3.restore(&s3), Err(ReservedBits { reg: typ(0), bits: 0x400 }));
    s3.evtyper[0] = 0x3ff;
    assert_eq!(p3.restore(&s3), Ok(()));
    // With 31 counters, every bitmap bit is a counter.
    let mut p31 = pmu(PmuVersion::V3p5, 31);
    let mut s31 = p31.save();
    s31.pmcntenset = u64::from(u32::MAX);
    assert_eq!(p31.restore(&s31), Ok(()));
}

#[test]
fn restore_errors_say_what_is_wrong() {
    use SnapshotError::*;
    let cases = [
        (CounterMismatch { state: 5, config: 4 }, &["5", "4", "counters"][..]),
        (VersionMismatch { state: PmuVersion::V3p5, config: PmuVersion::V3 }, &["V3p5", "V3"]),
        (ReservedBits { reg: typ(3), bits: 0x400 }, &["PMEVTYPER3_EL0", "0x400"]),
        (NoSuchCounters { reg: PmuReg::Pmovsset, bits: 0x20 }, &["PMOVSSET_EL0", "0x20"]),
        (MissingCounterState { reg: cnt(7), value: 3 }, &["PMEVCNTR7_EL0", "does not exist"]),
        (ValueTooWide { reg: cnt(2), value: 1 << 32 }, &["PMEVCNTR2_EL0", "32"]),
        (LcClear, &["LC", "AArch32"]),
        (PrescaleOutOfRange { prescale: 70 }, &["70", "64"]),
        (Truncated { len: 3, need: 14 }, &["3", "14"]),
        (BadMagic { found: *b"VPMUSNAQ" }, &["magic"]),
        (FutureVersion { found: 3, newest: 2 }, &["3", "newer"]),
        (OldFormat { found: 1, oldest: 2 }, &["1", "older", "identity"]),
        (IdentityMismatch { field: IdentityField::Pmceid0, state: 0x3, config: 0x1 }, &["PMCEID0_EL0", "0x3", "0x1"]),
        (IdentityMismatch { field: IdentityField::Irq, state: 23, config: 0 }, &["interrupt", "0x17"]),
        (BadFormatVersion { found: 0 }, &["0"]),
        (BadLength { declared: 99, expected: 609 }, &["99", "609"]),
        (TrailingBytes { extra: 7 }, &["7"]),
        (Checksum { stored: 0x1234, computed: 0x5678 }, &["0x00001234", "0x00005678", "corrupt"]),
        (UnknownPmuVersion { pmuver: 9 }, &["9"]),
    ];
    for (e, words) in cases {
        let text = e.to_string();
        for w in words {
            assert!(text.contains(w), "{e:?} displays as {text:?}, which does not say {w:?}");
        }
    }
    for (e, words) in [
        (OneRegError::UnknownId { id: 0x6030_0000_0013_c000 }, &["0x603000000013c000"][..]),
        (OneRegError::NoState { reg: PmuReg::Pmswinc }, &["PMSWINC_EL0"]),
        (OneRegError::NoSuchCounter { reg: cnt(9), counters: 4 }, &["PMEVCNTR9_EL0", "4"]),
    ] {
        let text = e.to_string();
        for w in words {
            assert!(text.contains(w), "{e:?} displays as {text:?}, which does not say {w:?}");
        }
    }
}

// =============================================================================================
// The byte form
// =============================================================================================

/// An identity from its fields (`Identity` is `non_exhaustive`: built field by field).
fn identity(irq: u16, imp: u8, idcode: u8, pmmir: u32, filter: u32, pmceid: [u64; 2]) -> Identity {
    let mut id = Identity::default();
    (id.irq, id.imp, id.idcode, id.pmmir, id.filter, id.pmceid) = (irq, imp, idcode, pmmir, filter, pmceid);
    id
}

fn distinct_state() -> PmuState {
    let mut s = PmuState::new(5, PmuVersion::V3p4);
    s.pmcr = 0x0101_0101_0101_0141;
    s.pmselr = 0x0202_0202_0202_0202;
    s.pmcntenset = 0x0303_0303_0303_0303;
    s.pmintenset = 0x0404_0404_0404_0404;
    s.pmovsset = 0x0505_0505_0505_0505;
    s.pmuserenr = 0x0606_0606_0606_0606;
    s.evcntr = std::array::from_fn(|i| 0x1000 + i as u64);
    s.evtyper = std::array::from_fn(|i| 0x2000_0000_0000_0000 + i as u64);
    s.pmccntr = 0x0708_0708_0708_0708;
    s.pmccfiltr = 0x0909_0909_0909_0909;
    s.prescale = 42;
    s.identity = identity(0x0a0b, 0x0c, 0x0d, 0x0e0f_1011, 0x1213_1415, [0x1617_1819_1a1b_1c1d, 0x1e1f_2021_2223_2425]);
    s
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

#[test]
fn byte_layout_is_the_documented_table() {
    let s = distinct_state();
    let b = s.to_bytes();
    assert_eq!(PmuState::BYTES, 609);
    assert_eq!(PmuState::FORMAT_VERSION, 2);
    assert_eq!(&b[0..8], b"VPMUSNAP");
    assert_eq!(b[8..10], [2, 0]);
    assert_eq!(b[10..14], 609u32.to_le_bytes());
    assert_eq!(b[14], 5);
    assert_eq!(b[15], 5, "PMUv3p4 is ID_AA64DFR0_EL1.PMUVer 0b0101");
    assert_eq!(b[16], 42);
    for (at, want) in [
        (17, s.pmcr),
        (25, s.pmselr),
        (33, s.pmcntenset),
        (41, s.pmintenset),
        (49, s.pmovsset),
        (57, s.pmuserenr),
        (65, s.pmccntr),
        (73, s.pmccfiltr),
    ] {
        assert_eq!(le64(&b, at), want, "offset {at}");
    }
    for n in 0..31 {
        assert_eq!(le64(&b, 81 + 8 * n), s.evcntr[n], "PMEVCNTR{n}");
        assert_eq!(le64(&b, 329 + 8 * n), s.evtyper[n], "PMEVTYPER{n}");
    }
    let id = &s.identity;
    assert_eq!(b[577..579], id.irq.to_le_bytes());
    assert_eq!((b[579], b[580]), (id.imp, id.idcode));
    assert_eq!(b[581..585], id.pmmir.to_le_bytes());
    assert_eq!(b[585..589], id.filter.to_le_bytes());
    assert_eq!(le64(&b, 589), id.pmceid[0]);
    assert_eq!(le64(&b, 597), id.pmceid[1]);
    assert_eq!(b[605..609], crc32(&b[..605]).to_le_bytes());
    for (v, pmuver) in [(PmuVersion::V3, 1), (PmuVersion::V3p1, 4), (PmuVersion::V3p4, 5), (PmuVersion::V3p5, 6)] {
        let mut sv = s;
        sv.version = v;
        assert_eq!(sv.to_bytes()[15], pmuver, "{v:?}");
    }
}

#[test]
fn the_test_crc32_is_the_standard_one() {
    // CRC-32/ISO-HDLC check value.
    assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
}

/// `b` with its checksum made right again.
fn resum(mut b: Vec<u8>) -> Vec<u8> {
    let n = b.len();
    let crc = crc32(&b[..n - 4]);
    b[n - 4..].copy_from_slice(&crc.to_le_bytes());
    b
}

#[test]
fn every_byte_form_error() {
    use SnapshotError::*;
    let s = distinct_state();
    let good = s.to_bytes().to_vec();
    let n = good.len();
    let from = PmuState::from_bytes;

    assert_eq!(from(&good), Ok(s));
    // Truncated: no header, a header only, one byte short.
    assert_eq!(from(&[]), Err(Truncated { len: 0, need: 14 }));
    assert_eq!(from(&good[..13]), Err(Truncated { len: 13, need: 14 }));
    assert_eq!(from(&good[..14]), Err(Truncated { len: 14, need: 609 }));
    assert_eq!(from(&good[..n - 1]), Err(Truncated { len: 608, need: 609 }));
    // Trailing garbage.
    let mut long = good.clone();
    long.extend_from_slice(&[0; 3]);
    assert_eq!(from(&long), Err(TrailingBytes { extra: 3 }));
    // Wrong magic (checked before anything else in the header).
    let mut b = good.clone();
    b[0] = b'X';
    assert_eq!(from(&b), Err(BadMagic { found: *b"XPMUSNAP" }));
    assert_eq!(from(&b[..14]), Err(BadMagic { found: *b"XPMUSNAP" }));
    // A future format version: refused whatever follows, even at another length.
    let mut b = good.clone();
    b[8] = 3;
    assert_eq!(from(&b), Err(FutureVersion { found: 3, newest: 2 }));
    let mut b = good[..20].to_vec();
    b[8..10].copy_from_slice(&0x1234u16.to_le_bytes());
    assert_eq!(from(&b), Err(FutureVersion { found: 0x1234, newest: 2 }));
    // Format 1 (no identity): refused, however well-formed, at its own length too.
    let mut b = good[..581].to_vec();
    b[8] = 1;
    b[10..14].copy_from_slice(&581u32.to_le_bytes());
    assert_eq!(from(&resum(b)), Err(OldFormat { found: 1, oldest: 2 }));
    let mut b = good.clone();
    b[8] = 0;
    assert_eq!(from(&b), Err(BadFormatVersion { found: 0 }));
    // A wrong declared length.
    let mut b = good.clone();
    b[10..14].copy_from_slice(&580u32.to_le_bytes());
    assert_eq!(from(&b), Err(BadLength { declared: 580, expected: 609 }));
    // Corruption anywhere: in the body, in the header's length... and in the checksum itself.
    for at in [14, 15, 16, 17, 100, 328, 329, 576, 577, 590, 604] {
        let mut b = good.clone();
        b[at] ^= 0x10;
        assert!(matches!(from(&b), Err(Checksum { .. })), "byte {at} flipped: {:?}", from(&b));
    }
    let mut b = good.clone();
    b[606] ^= 1;
    let stored = u32::from_le_bytes(b[605..].try_into().unwrap());
    assert_eq!(from(&b), Err(Checksum { stored, computed: crc32(&good[..605]) }));
    // A PMU version byte that is not a PMUVer vpmu knows, with a right checksum.
    for pmuver in [0u8, 2, 3, 7, 8, 0xf, 0xff] {
        let mut b = good.clone();
        b[15] = pmuver;
        assert_eq!(from(&resum(b)), Err(UnknownPmuVersion { pmuver }));
    }
    // Anything else with a right checksum decodes (restore judges it).
    let mut b = good.clone();
    b[14] = 200;
    assert_eq!(from(&resum(b)).map(|s| s.counters), Ok(200));
    // The fuzz target's repair gives a decodable form.
    let fixed = repair(b"hello");
    assert_eq!(fixed.len(), 609);
    assert_eq!(from(&fixed).map(|s| (s.counters, s.version)), Ok((0, PmuVersion::V3)));
}

/// Issue 9, bug 4: a state restores only into a PMU the guest sees the same way. It used to
/// restore into one with another interrupt, `PMCR.IMP`/`IDCODE`, `PMMIR`, filter or `PMCEID`.
#[test]
fn a_state_restores_only_into_a_pmu_with_the_same_identity() {
    use vpmu::config::{FilterAction, PmuIrq};
    use IdentityField::*;
    let base = PmuConfig::builder()
        .counters(4)
        .irq(PmuIrq::Ppi(23))
        .identity(0x41, 2)
        .pmmir(0x10)
        .filter(FilterAction::Deny, 0x10..=0x10)
        .unwrap();
    let cfg = base.build().unwrap();
    let mut src = Pmu::new(cfg, SoftBackend::new()).unwrap();
    let _ = src.write(PmuReg::Pmcntenset, 1 << 31, El::El1);
    let state = src.save();
    assert_eq!(Pmu::new(cfg, SoftBackend::new()).unwrap().restore(&state), Ok(()));
    let other = |b: vpmu::config::PmuConfigBuilder, backend: SoftBackend| Pmu::new(b.build().unwrap(), backend).unwrap().restore(&state);
    let field = |r: Result<(), SnapshotError>| match r {
        Err(SnapshotError::IdentityMismatch { field, .. }) => Some(field),
        _ => None,
    };
    assert_eq!(field(other(base.irq(PmuIrq::Ppi(22)), SoftBackend::new())), Some(Irq));
    assert_eq!(field(other(base.identity(0x42, 2), SoftBackend::new())), Some(Imp));
    assert_eq!(field(other(base.identity(0x41, 3), SoftBackend::new())), Some(Idcode));
    assert_eq!(field(other(base.pmmir(0x11), SoftBackend::new())), Some(Pmmir));
    let refiltered = base.filter(FilterAction::Deny, 0x4000..=0x4000).unwrap();
    assert_eq!(field(other(refiltered, SoftBackend::new())), Some(Filter));
    // A host that cannot count CPU_CYCLES (0x11, PMCEID0 bit 17) shows the guest another PMCEID0: SW_INCR, INST_RETIRED, CHAIN.
    let fewer = SoftBackend::with_events(&[0x08]);
    assert_eq!(
        other(base, fewer),
        Err(SnapshotError::IdentityMismatch { field: Pmceid0, state: state.identity.pmceid[0], config: 0x4000_0101 })
    );
    // The refusal names the field, through the byte form too.
    let back = PmuState::from_bytes(&state.to_bytes()).unwrap();
    let e = Pmu::new(base.irq(PmuIrq::Ppi(22)).build().unwrap(), SoftBackend::new()).unwrap().restore(&back).unwrap_err();
    assert!(e.to_string().contains("interrupt"), "{e}");
}

// =============================================================================================
// KVM one-reg
// =============================================================================================

#[test]
fn one_reg_ids_are_kvm_sysreg_ids_in_ascending_order() {
    assert_eq!(KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM64_SYSREG, 0x6030_0000_0013_0000);
    // ARM64_SYS_REG(op0, op1, CRn, CRm, op2), the encodings from the Arm ARM.
    let sys = |op0: u64, op1: u64, crn: u64, crm: u64, op2: u64| 0x6030_0000_0013_0000 | op0 << 14 | op1 << 11 | crn << 7 | crm << 3 | op2;
    let want = [
        (PmuReg::Pmintenset, sys(3, 0, 9, 14, 1)),
        (PmuReg::Pmintenclr, sys(3, 0, 9, 14, 2)),
        (PmuReg::Pmcr, sys(3, 3, 9, 12, 0)),
        (PmuReg::Pmcntenset, sys(3, 3, 9, 12, 1)),
        (PmuReg::Pmcntenclr, sys(3, 3, 9, 12, 2)),
        (PmuReg::Pmovsclr, sys(3, 3, 9, 12, 3)),
        (PmuReg::Pmselr, sys(3, 3, 9, 12, 5)),
        (PmuReg::Pmccntr, sys(3, 3, 9, 13, 0)),
        (PmuReg::Pmuserenr, sys(3, 3, 9, 14, 0)),
        (PmuReg::Pmovsset, sys(3, 3, 9, 14, 3)),
        (cnt(0), sys(3, 3, 14, 8, 0)),
        (cnt(1), sys(3, 3, 14, 8, 1)),
        (cnt(2), sys(3, 3, 14, 8, 2)),
        (typ(0), sys(3, 3, 14, 12, 0)),
        (typ(1), sys(3, 3, 14, 12, 1)),
        (typ(2), sys(3, 3, 14, 12, 2)),
        (PmuReg::Pmccfiltr, sys(3, 3, 14, 15, 7)),
    ];
    let p = pmu(PmuVersion::V3p5, 3);
    let regs: Vec<PmuReg> = p.one_reg_regs().collect();
    let ids: Vec<u64> = p.one_reg_ids().collect();
    assert_eq!(regs, want.iter().map(|w| w.0).collect::<Vec<_>>());
    assert_eq!(ids, want.iter().map(|w| w.1).collect::<Vec<_>>());
    for (reg, i) in want {
        assert_eq!(one_reg_id(reg), Some(i), "{reg}");
        assert_eq!(one_reg_reg(i), Ok(reg), "{reg}");
    }
    assert_eq!(one_reg_id(cnt(30)), Some(sys(3, 3, 14, 11, 6)));
    assert_eq!(one_reg_id(typ(30)), Some(sys(3, 3, 14, 15, 6)));
    assert_eq!(one_reg_id(PmuReg::Pmceid2), None, "AArch32 only");
    for n in [0, 1, 6, 31] {
        let ids: Vec<u64> = pmu(PmuVersion::V3p5, n).one_reg_ids().collect();
        assert_eq!(ids.len(), 11 + 2 * usize::from(n));
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "N = {n}: not ascending");
    }
}

#[test]
fn one_reg_errors() {
    let mut p = busy_pmu(config(PmuVersion::V3p5, 4), 5);
    let before = p.save();
    let pmcr = id(PmuReg::Pmcr);
    for bad in [
        0,
        pmcr & !KVM_REG_SIZE_U64 | 0x0020_0000_0000_0000, // KVM_REG_SIZE_U32
        pmcr & !KVM_REG_ARM64,                            // another architecture
        pmcr & !KVM_REG_ARM64_SYSREG | 0x0010 << 16,      // KVM_REG_ARM_CORE
        pmcr | 1 << 16 << 8,                              // bits above the class
        0x6030_0000_0013_c000,                            // MIDR_EL1
        0x6030_0000_0013_dce8 + 0x1000,                   // op1 = 5
        0x6030_0000_0013_9ce0,                            // op0 = 2
    ] {
        assert_eq!(p.get_one_reg(bad), Err(OneRegError::UnknownId { id: bad }), "{bad:#x}");
        assert_eq!(p.set_one_reg(bad, 1), Err(OneRegError::UnknownId { id: bad }), "{bad:#x}");
        assert_eq!(one_reg_reg(bad), Err(OneRegError::UnknownId { id: bad }), "{bad:#x}");
    }
    for reg in [PmuReg::Pmswinc, PmuReg::Pmceid0, PmuReg::Pmceid1, PmuReg::Pmxevtyper, PmuReg::Pmxevcntr, PmuReg::Pmmir] {
        assert_eq!(p.get_one_reg(id(reg)), Err(OneRegError::NoState { reg }), "{reg}");
        assert_eq!(p.set_one_reg(id(reg), 0), Err(OneRegError::NoState { reg }), "{reg}");
    }
    for reg in [cnt(4), typ(4), cnt(30), typ(30)] {
        assert_eq!(p.get_one_reg(id(reg)), Err(OneRegError::NoSuchCounter { reg, counters: 4 }), "{reg}");
        assert_eq!(p.set_one_reg(id(reg), 0), Err(OneRegError::NoSuchCounter { reg, counters: 4 }), "{reg}");
    }
    assert_eq!(p.save(), before, "a refused one-reg access changed the PMU");
}

#[test]
fn one_reg_set_clr_pairs_are_assigned_raw_masked_to_the_counters() {
    let mut p = pmu(PmuVersion::V3p5, 4);
    for (set, clr) in
        [(PmuReg::Pmcntenset, PmuReg::Pmcntenclr), (PmuReg::Pmintenset, PmuReg::Pmintenclr), (PmuReg::Pmovsset, PmuReg::Pmovsclr)]
    {
        p.set_one_reg(id(set), 0b1010).unwrap();
        assert_eq!(rd(&mut p, set), 0b1010, "{set}");
        // Writing CLR from userspace assigns, it does not clear.
        p.set_one_reg(id(clr), 0b0101).unwrap();
        assert_eq!(rd(&mut p, set), 0b0101, "{clr}");
        assert_eq!(p.get_one_reg(id(set)), Ok(0b0101));
        assert_eq!(p.get_one_reg(id(clr)), Ok(0b0101));
        // Counters 4..=30 do not exist; bits 32..=63 are RES0.
        p.set_one_reg(id(set), u64::MAX).unwrap();
        assert_eq!(p.get_one_reg(id(clr)), Ok(CYCLE_BIT | 0xf), "{set}");
        p.set_one_reg(id(set), 0).unwrap();
        assert_eq!(rd(&mut p, clr), 0);
    }
    // PMOVSSET from userspace: only the line follows (PMCR.E and PMINTENSET), nothing counts.
    // (PMCR from userspace carries N: 0 here would make this a PMU without event counters.)
    p.set_one_reg(id(PmuReg::Pmcr), 4 << PMCR_N_SHIFT | PMCR_E).unwrap();
    p.set_one_reg(id(PmuReg::Pmintenset), 0b10).unwrap();
    p.set_one_reg(id(PmuReg::Pmovsset), 0b01).unwrap();
    assert!(!p.irq_level());
    p.set_one_reg(id(PmuReg::Pmovsset), 0b11).unwrap();
    assert!(p.irq_level());
    // PMCNTENSET from userspace starts and stops counting, like the guest's.
    p.set_one_reg(id(typ(0)), INST_RETIRED.into()).unwrap();
    p.set_one_reg(id(PmuReg::Pmcntenclr), 1).unwrap();
    p.count(INST_RETIRED, 5);
    p.set_one_reg(id(PmuReg::Pmcntenset), 0).unwrap();
    p.count(INST_RETIRED, 7);
    assert_eq!(p.get_one_reg(id(cnt(0))), Ok(5));
}

#[test]
fn one_reg_counters_are_set_raw_without_overflow_side_effects() {
    let mut p = busy_pmu(config(PmuVersion::V3p1, 4), 0);
    // A 32-bit counter (before v3p5) keeps the low 32 bits; nothing overflows, nothing chains.
    p.set_one_reg(id(cnt(0)), 0x1_ffff_ffff).unwrap();
    assert_eq!(p.get_one_reg(id(cnt(0))), Ok(0xffff_ffff));
    p.set_one_reg(id(PmuReg::Pmccntr), u64::MAX).unwrap();
    assert_eq!(p.get_one_reg(id(PmuReg::Pmccntr)), Ok(u64::MAX), "PMCCNTR is 64 bits");
    assert_eq!(rd(&mut p, PmuReg::Pmovsset), 0);
    assert_eq!(rd(&mut p, cnt(1)), 0);
    assert!(!p.irq_level());
    // And it counts on from there.
    assert_eq!(p.events_until_overflow(INST_RETIRED), Some(1));
    p.count(INST_RETIRED, 1);
    assert_eq!(rd(&mut p, PmuReg::Pmovsset), 1);
    assert_eq!(rd(&mut p, cnt(1)), 1);
    // A live counter reads up to date through get_one_reg.
    p.count(INST_RETIRED, 9);
    assert_eq!(p.get_one_reg(id(cnt(0))), Ok(9));
    // 64-bit event counters from v3p5.
    let mut p5 = pmu(PmuVersion::V3p5, 1);
    p5.set_one_reg(id(cnt(0)), 0x1_ffff_ffff).unwrap();
    assert_eq!(p5.get_one_reg(id(cnt(0))), Ok(0x1_ffff_ffff));
}

#[test]
fn one_reg_types_pmselr_pmuserenr_are_masked_as_a_guest_write() {
    let mut p = pmu(PmuVersion::V3, 2);
    p.set_one_reg(id(typ(0)), u64::MAX).unwrap();
    assert_eq!(p.get_one_reg(id(typ(0))), Ok(F_P | F_U | 0x3ff), "no EL2, no EL3, 10-bit events");
    p.set_one_reg(id(PmuReg::Pmccfiltr), u64::MAX).unwrap();
    assert_eq!(p.get_one_reg(id(PmuReg::Pmccfiltr)), Ok(F_P | F_U));
    p.set_one_reg(id(PmuReg::Pmselr), 0xff).unwrap();
    assert_eq!(p.get_one_reg(id(PmuReg::Pmselr)), Ok(0x1f));
    p.set_one_reg(id(PmuReg::Pmuserenr), 0xff).unwrap();
    assert_eq!(p.get_one_reg(id(PmuReg::Pmuserenr)), Ok(0xf));
    // Reading each id gives what the guest's MRS gives.
    for i in p.one_reg_ids().collect::<Vec<_>>() {
        let reg = one_reg_reg(i).unwrap();
        assert_eq!(Outcome::Read(p.get_one_reg(i).unwrap()), p.read(reg, El::El1), "{reg}");
    }
}

#[test]
fn one_reg_pmcr_stores_the_storable_bits_and_performs_no_action() {
    let c = PmuConfig::builder().counters(2).version(PmuVersion::V3p4).identity(0x41, 0x03).build().unwrap();
    let mut p = busy_pmu(c, 77);
    p.count(CPU_CYCLES, 64 * 3);
    let n = 2 << PMCR_N_SHIFT;
    // P and C are not actions from userspace: the counters keep their values. IMP and IDCODE
    // cannot be changed, LP does not exist before v3p5.
    p.set_one_reg(id(PmuReg::Pmcr), 0xff | n | 0xffff_0000).unwrap();
    assert_eq!(rd(&mut p, cnt(0)), 77);
    assert_eq!(rd(&mut p, PmuReg::Pmccntr), 3);
    assert_eq!(p.get_one_reg(id(PmuReg::Pmcr)), Ok(PMCR_E | PMCR_D | PMCR_X | PMCR_DP | PMCR_LC | n | 0x4103 << 16));
    // E from userspace starts and stops counting.
    p.set_one_reg(id(PmuReg::Pmcr), n).unwrap();
    p.count(INST_RETIRED, 10);
    assert_eq!(rd(&mut p, cnt(0)), 77);
    p.set_one_reg(id(PmuReg::Pmcr), n | PMCR_E).unwrap();
    p.count(INST_RETIRED, 10);
    assert_eq!(rd(&mut p, cnt(0)), 87);
    // LC is RES1 without AArch32 EL0.
    let mut q = pmu_with(PmuConfig::builder().counters(1).aarch32_el0(false).build().unwrap());
    q.set_one_reg(id(PmuReg::Pmcr), 1 << PMCR_N_SHIFT).unwrap();
    assert_eq!(q.get_one_reg(id(PmuReg::Pmcr)), Ok(PMCR_LC | 1 << PMCR_N_SHIFT));
}

/// Linux KVM's `set_pmcr` (arch/arm64/kvm/sys_regs.c): a userspace PMCR.N is taken as the
/// number of counters until the VM first runs, if the host can back it; otherwise it is
/// ignored and the write succeeds.
#[test]
fn one_reg_pmcr_n_is_adopted_before_the_first_run_and_ignored_after() {
    let mut p = busy_pmu(config(PmuVersion::V3p5, 6), 5);
    wr(&mut p, typ(5), INST_RETIRED.into());
    wr(&mut p, cnt(5), 1234);
    wr(&mut p, PmuReg::Pmcntenset, 0x3f);
    wr(&mut p, PmuReg::Pmovsset, 0x30);
    p.count(INST_RETIRED, 10);
    // Shrink to 4 before the first run: counters 4 and 5 are gone, 0..=3 untouched.
    p.set_one_reg(id(PmuReg::Pmcr), 4 << PMCR_N_SHIFT | PMCR_E).unwrap();
    assert_eq!(p.config().counters(), 4);
    assert_eq!(rd(&mut p, PmuReg::Pmcr), 4 << PMCR_N_SHIFT | PMCR_E);
    assert_eq!(rd(&mut p, cnt(0)), 15);
    assert_eq!(rd(&mut p, PmuReg::Pmcntenset), CYCLE_BIT | 0xf);
    assert_eq!(rd(&mut p, PmuReg::Pmovsset), 0);
    assert_eq!(p.read(cnt(5), El::El1), Outcome::Undefined);
    assert_eq!(p.get_one_reg(id(cnt(5))), Err(OneRegError::NoSuchCounter { reg: cnt(5), counters: 4 }));
    // Grow back: the new counters start from zero.
    p.set_one_reg(id(PmuReg::Pmcr), 6 << PMCR_N_SHIFT | PMCR_E).unwrap();
    assert_eq!(p.config().counters(), 6);
    assert_eq!(rd(&mut p, cnt(5)), 0);
    assert_eq!(rd(&mut p, typ(5)), 0);
    let s = p.save();
    assert_eq!(pmu(PmuVersion::V3p5, 6).restore(&s), Ok(()), "a consistent state");
    // Beyond what the backend can back: ignored, and the write still succeeds.
    #[derive(Debug)]
    struct Four(SoftBackend);
    impl vpmu::CounterBackend for Four {
        type Error = std::convert::Infallible;
        fn max_event_counters(&self) -> u8 {
            4
        }
        fn supports(&self, e: u16) -> bool {
            self.0.supports(e)
        }
        fn program(&mut self, c: vpmu::backend::CounterId, r: &vpmu::backend::CountRequest) -> Result<(), Self::Error> {
            self.0.program(c, r)
        }
        fn read(&mut self, c: vpmu::backend::CounterId) -> u64 {
            self.0.read(c)
        }
        fn release(&mut self, c: vpmu::backend::CounterId) {
            self.0.release(c)
        }
    }
    let mut small = Pmu::new(config(PmuVersion::V3p5, 2), Four(SoftBackend::new())).unwrap();
    assert_eq!(small.set_one_reg(id(PmuReg::Pmcr), 5 << PMCR_N_SHIFT | PMCR_E), Ok(()));
    assert_eq!(small.config().counters(), 2);
    assert_eq!(small.get_one_reg(id(PmuReg::Pmcr)), Ok(2 << PMCR_N_SHIFT | PMCR_E), "E is still stored");
    assert_eq!(small.set_one_reg(id(PmuReg::Pmcr), 4 << PMCR_N_SHIFT), Ok(()));
    assert_eq!(small.config().counters(), 4);
    // After the first run: ignored, the other bits still stored.
    p.lock_config();
    p.set_one_reg(id(PmuReg::Pmcr), 2 << PMCR_N_SHIFT | PMCR_X).unwrap();
    assert_eq!(p.config().counters(), 6);
    assert_eq!(rd(&mut p, PmuReg::Pmcr), 6 << PMCR_N_SHIFT | PMCR_X);
    assert_eq!(rd(&mut p, cnt(0)), 15);
}

// =============================================================================================
// serde, fuzz seeds, the fuzz check
// =============================================================================================

#[cfg(feature = "serde")]
#[test]
fn serde_round_trip() {
    let mut p = busy_pmu(config(PmuVersion::V3p5, 3), 0xffff_fff0);
    p.count(INST_RETIRED, 100);
    p.count(CPU_CYCLES, 1000);
    let s = p.save();
    let json = serde_json::to_string(&s).unwrap();
    let back: PmuState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s);
    let mut q = pmu(PmuVersion::V3p5, 3);
    q.restore(&back).unwrap();
    assert_eq!(q.save(), s);
    let c = *p.config();
    let json = serde_json::to_string(&c).unwrap();
    assert_eq!(serde_json::from_str::<PmuConfig>(&json).unwrap(), c);
}

/// The fuzz check catches a byte-form error the bytes do not justify (it can fail).
#[test]
fn the_restore_bytes_check_can_fail() {
    let good = distinct_state().to_bytes();
    assert_eq!(restore_bytes::check(&good), Ok(()));
    // A valid input, and an error claimed for it.
    assert!(restore_bytes::check_byte_error(&good, SnapshotError::TrailingBytes { extra: 1 }).is_err());
    assert!(restore_bytes::check_byte_error(&good, SnapshotError::Checksum { stored: 1, computed: 2 }).is_err());
    assert!(restore_bytes::check_byte_error(&good[..3], SnapshotError::Truncated { len: 3, need: 14 }).is_ok());
}

/// Writes the seed corpus of the `restore_bytes` fuzz target: valid snapshots of busy PMUs of
/// several configurations. `cargo test --test snapshot -- --ignored write_restore_bytes_seeds`.
#[test]
#[ignore = "writes fuzz/corpus/restore_bytes; run by hand"]
fn write_restore_bytes_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/restore_bytes");
    std::fs::create_dir_all(&dir).unwrap();
    let configs = [
        config(PmuVersion::V3p5, 6),
        config(PmuVersion::V3, 2),
        config(PmuVersion::V3p5, 31),
        PmuConfig::builder().counters(4).version(PmuVersion::V3p4).aarch32_el0(false).el3(true).build().unwrap(),
        config(PmuVersion::V3p1, 0),
    ];
    for c in configs {
        let mut p = pmu_with(c);
        if c.counters() >= 2 {
            p = busy_pmu(c, 0xffff_ff00);
        }
        p.count(INST_RETIRED, 0x1000);
        p.count(CPU_CYCLES, 12_345);
        let b = p.save().to_bytes();
        // (Named by the checksum of the contents: a CRC over data and its own CRC is a constant.)
        std::fs::write(dir.join(format!("seed-{:08x}", crc32(&b[..PmuState::BYTES - 4]))), b).unwrap();
    }
}
