#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::arithmetic_side_effects, missing_docs)]
//! `vpmu::config` through the public API: the event filter's semantics as a guest sees them
//! (KVM's `KVM_ARM_VCPU_PMU_V3_FILTER`: the first action decides the default, later actions
//! override earlier ones, `SW_INCR` and `CHAIN` are never filtered, the cycle counter is
//! filtered as `CPU_CYCLES`, a denied event never counts and is hidden from `PMCEID`), the
//! event-space rule, the defaults, every error's message, and validation of deserialized
//! configurations. The builder's other rules, `Pmu::new`'s backend limit and the `Busy`
//! lifecycle are in `tests/registers.rs`.

mod common;

use vpmu::config::{ConfigError, El0Denial, FilterAction, PmuConfig, PmuIrq, PmuVersion, MAX_FILTER_ACTIONS};
use vpmu::reg::PmuReg;
use vpmu::{El, Pmu, SoftBackend};

use common::arch::{BR_MIS_PRED, CHAIN, CPU_CYCLES, CYCLE_BIT, INST_RETIRED, PMCR_D, PMCR_E, PMCR_LP, SW_INCR};
use common::{ev, pmu_with, rd, wr};

fn filtered(actions: &[(FilterAction, u16, u16)]) -> PmuConfig {
    let mut b = PmuConfig::builder().counters(6);
    for &(a, first, last) in actions {
        b = b.filter(a, first..=last).unwrap();
    }
    b.build().unwrap()
}

/// Counters 0..n count `events[i]`, the cycle counter runs; then `k` of each event and of
/// cycles are reported. Returns the counter values and PMCCNTR.
fn count_each(cfg: PmuConfig, events: &[u16], k: u64) -> (Vec<u64>, u64) {
    let mut p = pmu_with(cfg);
    for (i, &e) in events.iter().enumerate() {
        wr(&mut p, PmuReg::Pmevtyper(ev(i as u8)), e.into());
    }
    wr(&mut p, PmuReg::Pmcntenset, CYCLE_BIT | ((1 << events.len()) - 1));
    wr(&mut p, PmuReg::Pmcr, PMCR_E);
    for &e in events {
        if e != CPU_CYCLES {
            p.count(e, k);
        }
    }
    p.count(CPU_CYCLES, k);
    let values = (0..events.len()).map(|i| rd(&mut p, PmuReg::Pmevcntr(ev(i as u8)))).collect();
    (values, rd(&mut p, PmuReg::Pmccntr))
}

#[test]
fn no_filter_allows_everything() {
    let cfg = PmuConfig::default();
    assert!((0..=u16::MAX).all(|e| cfg.event_allowed(e)));
    assert_eq!(count_each(cfg, &[INST_RETIRED, BR_MIS_PRED, CPU_CYCLES], 10), (vec![10, 10, 10], 10));
}

#[test]
fn allow_first_denies_everything_else() {
    let cfg = filtered(&[(FilterAction::Allow, INST_RETIRED, INST_RETIRED)]);
    assert!(cfg.event_allowed(INST_RETIRED));
    assert!(!cfg.event_allowed(BR_MIS_PRED));
    assert!(!cfg.event_allowed(0x4000));
    // CPU_CYCLES is not allowed: the cycle counter stops too.
    assert_eq!(count_each(cfg, &[INST_RETIRED, BR_MIS_PRED, CPU_CYCLES], 10), (vec![10, 0, 0], 0));
}

#[test]
fn deny_first_allows_everything_else() {
    let cfg = filtered(&[(FilterAction::Deny, BR_MIS_PRED, BR_MIS_PRED)]);
    assert!(!cfg.event_allowed(BR_MIS_PRED));
    assert!(cfg.event_allowed(INST_RETIRED) && cfg.event_allowed(0x4000) && cfg.event_allowed(u16::MAX));
    assert_eq!(count_each(cfg, &[INST_RETIRED, BR_MIS_PRED, CPU_CYCLES], 10), (vec![10, 0, 10], 10));
}

#[test]
fn a_later_action_overrides_an_earlier_one_where_they_overlap() {
    // Deny 0x00..=0x3f, allow 0x08..=0x10 back, deny 0x10 again.
    let cfg = filtered(&[(FilterAction::Deny, 0x00, 0x3f), (FilterAction::Allow, 0x08, 0x10), (FilterAction::Deny, 0x10, 0x10)]);
    let allowed: Vec<u16> = (0..0x40).filter(|&e| cfg.event_allowed(e)).collect();
    assert_eq!(allowed, vec![SW_INCR, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, CHAIN]);
    assert!(cfg.event_allowed(0x40), "beyond every range: the default of a deny-first filter");
    // Allow first, then a deny inside it.
    let cfg = filtered(&[(FilterAction::Allow, 0x00, 0x3f), (FilterAction::Deny, 0x11, 0x11)]);
    assert!(!cfg.event_allowed(CPU_CYCLES) && cfg.event_allowed(0x12) && !cfg.event_allowed(0x40));
    assert_eq!(cfg.filter().actions().count(), 2);
    assert_eq!(cfg.filter().actions().nth(1), Some((FilterAction::Deny, 0x11..=0x11)));
}

#[test]
fn sw_incr_is_never_filtered() {
    for cfg in [filtered(&[(FilterAction::Deny, 0x00, 0x3f)]), filtered(&[(FilterAction::Allow, 0x08, 0x08)])] {
        assert!(cfg.event_allowed(SW_INCR));
        let mut p = pmu_with(cfg);
        wr(&mut p, PmuReg::Pmevtyper(ev(0)), SW_INCR.into());
        wr(&mut p, PmuReg::Pmcntenset, 1);
        wr(&mut p, PmuReg::Pmcr, PMCR_E);
        wr(&mut p, PmuReg::Pmswinc, 1);
        wr(&mut p, PmuReg::Pmswinc, 1);
        assert_eq!(rd(&mut p, PmuReg::Pmevcntr(ev(0))), 2);
        assert_eq!(rd(&mut p, PmuReg::Pmceid0) & 1, 1, "PMCEID0[0]: SW_INCR is advertised");
    }
}

#[test]
fn chain_is_never_filtered() {
    for cfg in [filtered(&[(FilterAction::Deny, CHAIN, CHAIN)]), filtered(&[(FilterAction::Allow, INST_RETIRED, INST_RETIRED)])] {
        assert!(cfg.event_allowed(CHAIN));
        let mut p = pmu_with(cfg);
        wr(&mut p, PmuReg::Pmevtyper(ev(0)), INST_RETIRED.into());
        wr(&mut p, PmuReg::Pmevcntr(ev(0)), 0xffff_fffe);
        wr(&mut p, PmuReg::Pmevtyper(ev(1)), CHAIN.into());
        wr(&mut p, PmuReg::Pmcntenset, 0b11);
        wr(&mut p, PmuReg::Pmcr, PMCR_E);
        p.count(INST_RETIRED, 3);
        assert_eq!(rd(&mut p, PmuReg::Pmevcntr(ev(1))), 1, "the odd counter counted the overflow");
        assert_eq!(rd(&mut p, PmuReg::Pmceid0) >> 30 & 1, 1, "PMCEID0[30]: CHAIN is advertised");
    }
}

#[test]
fn the_cycle_counter_is_filtered_as_cpu_cycles() {
    // Denying 0x11 stops PMCCNTR and any event counter counting 0x11.
    let cfg = filtered(&[(FilterAction::Deny, CPU_CYCLES, CPU_CYCLES)]);
    assert_eq!(count_each(cfg, &[CPU_CYCLES, INST_RETIRED], 100), (vec![0, 100], 0));
    // Denying a neighbour does not.
    let cfg = filtered(&[(FilterAction::Deny, 0x10, 0x10), (FilterAction::Deny, 0x12, 0x12)]);
    assert_eq!(count_each(cfg, &[CPU_CYCLES], 100), (vec![100], 100));
    // Whatever PMCCFILTR says, and with PMCR.D: nothing reaches the backend.
    let cfg = filtered(&[(FilterAction::Deny, CPU_CYCLES, CPU_CYCLES)]);
    let mut p = pmu_with(cfg);
    wr(&mut p, PmuReg::Pmccfiltr, 0);
    wr(&mut p, PmuReg::Pmcntenset, CYCLE_BIT);
    wr(&mut p, PmuReg::Pmcr, PMCR_E | PMCR_D);
    assert_eq!(p.events_until_overflow(CPU_CYCLES), None);
    p.count(CPU_CYCLES, 1 << 20);
    assert_eq!(rd(&mut p, PmuReg::Pmccntr), 0);
}

#[test]
fn a_denied_event_never_counts_whatever_the_guest_programs() {
    for event in (0..0x40u16).chain([0x4000, 0x4020, 0x0200]) {
        if event == SW_INCR || event == CHAIN {
            continue;
        }
        let cfg = filtered(&[(FilterAction::Deny, event, event)]);
        let mut p = pmu_with(cfg);
        // Every EL filter the guest can choose, on several counters, through both paths.
        for (i, f) in [0u64, 1 << 31, 1 << 30, 0xc << 28].into_iter().enumerate() {
            wr(&mut p, PmuReg::Pmevtyper(ev(i as u8)), f | u64::from(event));
        }
        wr(&mut p, PmuReg::Pmselr, 4);
        wr(&mut p, PmuReg::Pmxevtyper, event.into());
        wr(&mut p, PmuReg::Pmcntenset, 0x1f);
        wr(&mut p, PmuReg::Pmcr, PMCR_E | PMCR_LP);
        for el in [El::El1, El::El0] {
            p.set_el(el);
            assert_eq!(p.events_until_overflow(event), None, "{event:#x}");
            p.count(event, 1000);
        }
        for i in 0..5 {
            assert_eq!(rd(&mut p, PmuReg::Pmevcntr(ev(i))), 0, "event {event:#x} counted on counter {i}");
        }
    }
}

#[test]
fn pmceid_shows_only_what_the_filter_allows() {
    let cfg = PmuConfig::builder()
        .counters(2)
        .version(PmuVersion::V3p1)
        .filter(FilterAction::Allow, INST_RETIRED..=INST_RETIRED)
        .unwrap()
        .filter(FilterAction::Allow, 0x21..=0x22)
        .unwrap()
        .filter(FilterAction::Allow, 0x4001..=0x4001)
        .unwrap()
        .filter(FilterAction::Allow, 0x4030..=0x4030)
        .unwrap()
        .build()
        .unwrap();
    let mut p = pmu_with(cfg);
    // PMCEID0: bit n is event n (0x00..=0x1f), bit 32 + n event 0x4000 + n.
    assert_eq!(rd(&mut p, PmuReg::Pmceid0), 1 << SW_INCR | 1 << INST_RETIRED | 1 << CHAIN | 1 << 33);
    // PMCEID1: bit n is event 0x20 + n, bit 32 + n event 0x4020 + n.
    assert_eq!(rd(&mut p, PmuReg::Pmceid1), 0b110 | 1 << (32 + 0x10));
    // PMUv3 has no upper halves, whatever the filter.
    let cfg = PmuConfig::builder().counters(2).version(PmuVersion::V3).build().unwrap();
    let mut p = pmu_with(cfg);
    assert_eq!(rd(&mut p, PmuReg::Pmceid0) >> 32, 0);
    // The filter and the backend intersect.
    let cfg = filtered(&[(FilterAction::Deny, INST_RETIRED, INST_RETIRED)]);
    let mut p = Pmu::new(cfg, SoftBackend::with_events(&[INST_RETIRED, CPU_CYCLES])).unwrap();
    assert_eq!(rd(&mut p, PmuReg::Pmceid0), 1 << SW_INCR | 1 << CPU_CYCLES | 1 << CHAIN);
}

#[test]
fn filter_ranges_must_fit_the_version_event_space() {
    let deny =
        |v: PmuVersion, first: u16, last: u16| PmuConfig::builder().version(v).filter(FilterAction::Deny, first..=last).unwrap().build();
    // PMUv3: 10-bit event numbers (PMEVTYPER.evtCount[9:0]).
    assert!(deny(PmuVersion::V3, 0, 0x3ff).is_ok());
    assert_eq!(deny(PmuVersion::V3, 0x3ff, 0x400), Err(ConfigError::FilterOutOfRange { first: 0x3ff, last: 0x400, max: 0x3ff }));
    assert_eq!(deny(PmuVersion::V3, 0x4000, 0x4000), Err(ConfigError::FilterOutOfRange { first: 0x4000, last: 0x4000, max: 0x3ff }));
    // From PMUv3p1: 16 bits, every u16.
    for v in [PmuVersion::V3p1, PmuVersion::V3p4, PmuVersion::V3p5] {
        assert!(deny(v, 0, u16::MAX).is_ok(), "{v:?}");
    }
    // The rule is checked at build time, whatever the order of the calls.
    let b = PmuConfig::builder().filter(FilterAction::Allow, 0x4000..=0x4001).unwrap();
    assert!(b.build().is_ok());
    assert!(matches!(b.version(PmuVersion::V3).build(), Err(ConfigError::FilterOutOfRange { .. })));
    // MAX_FILTER_ACTIONS actions fit.
    let mut b = PmuConfig::builder();
    for i in 0..MAX_FILTER_ACTIONS as u16 {
        b = b.filter(FilterAction::Deny, i..=i).unwrap();
    }
    assert!(b.build().is_ok());
}

#[test]
fn the_defaults_are_the_documented_ones() {
    let c = PmuConfig::default();
    assert_eq!(PmuConfig::builder().build(), Ok(c));
    assert_eq!(c.counters(), 6);
    assert_eq!(c.version(), PmuVersion::V3p5);
    assert!(c.aarch32_el0() && !c.el3());
    assert_eq!((c.imp(), c.idcode(), c.pmmir()), (0, 0, 0));
    assert_eq!(c.irq(), None);
    assert_eq!(c.el0_denial(), El0Denial::TrapToEl1);
    assert_eq!(c.filter().actions().count(), 0);
    assert_eq!(c.to_builder().build(), Ok(c));
}

#[test]
fn every_config_error_says_what_is_wrong_and_what_is_allowed() {
    let cases = [
        (ConfigError::TooManyCounters { requested: 40, max: 31 }, &["40", "31"][..]),
        (ConfigError::PmmirWithoutV3p4, &["PMMIR", "PMUv3p4"]),
        (ConfigError::PmmirReserved { bits: 0x0100_0000 }, &["0x1000000", "[23:0]"]),
        (ConfigError::BadIrq(PmuIrq::Ppi(12)), &["PPI 12", "16..=31"]),
        (ConfigError::BadIrq(PmuIrq::Spi(1020)), &["SPI 1020", "32..=1019"]),
        (ConfigError::IrqMismatch { first: 0, second: 3 }, &["0", "3", "PPI", "SPI"]),
        (ConfigError::TooManyFilterActions, &["16"]),
        (ConfigError::EmptyFilterRange { first: 5, last: 4 }, &["0x5..=0x4", "empty"]),
        (ConfigError::Busy, &["already run"]),
        (ConfigError::FilterOutOfRange { first: 0x3f0, last: 0x400, max: 0x3ff }, &["0x3f0..=0x400", "0x3ff"]),
    ];
    for (e, words) in cases {
        let text = e.to_string();
        for w in words {
            assert!(text.contains(w), "{e:?} displays as {text:?}, which does not say {w:?}");
        }
    }
}

#[test]
fn validate_vm_accepts_the_empty_and_single_vcpu_cases() {
    assert_eq!(PmuIrq::validate_vm(&[]), Ok(()));
    assert_eq!(PmuIrq::validate_vm(&[PmuIrq::Spi(100)]), Ok(()));
    assert_eq!(PmuIrq::validate_vm(&[PmuIrq::Spi(1020)]), Err(ConfigError::BadIrq(PmuIrq::Spi(1020))));
    // An out-of-range interrupt is BadIrq even where it also breaks the sharing rule.
    assert_eq!(PmuIrq::validate_vm(&[PmuIrq::Ppi(20), PmuIrq::Ppi(40)]), Err(ConfigError::BadIrq(PmuIrq::Ppi(40))));
}

#[cfg(feature = "serde")]
mod serde_validation {
    use super::*;

    fn json(c: &PmuConfig) -> serde_json::Value {
        serde_json::to_value(c).unwrap()
    }

    fn load(v: serde_json::Value) -> Result<PmuConfig, String> {
        serde_json::from_value::<PmuConfig>(v).map_err(|e| e.to_string())
    }

    #[test]
    fn a_valid_configuration_round_trips() {
        let c = PmuConfig::builder()
            .counters(5)
            .version(PmuVersion::V3p4)
            .pmmir(4)
            .irq(PmuIrq::Spi(40))
            .filter(FilterAction::Deny, 0x10..=0x20)
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(load(json(&c)), Ok(c));
    }

    /// Deserializing goes through `build`: each rule refuses, with its message.
    #[test]
    fn an_invalid_configuration_is_refused() {
        let base = json(&PmuConfig::builder().filter(FilterAction::Deny, 1..=2).unwrap().build().unwrap());
        type Change = fn(&mut serde_json::Value);
        let cases: [(&str, Change); 6] = [
            ("at most 31", |v| v["counters"] = 32.into()),
            ("PMUv3p4", |v| {
                v["version"] = "V3".into();
                v["pmmir"] = 1.into();
            }),
            ("[23:0]", |v| v["pmmir"] = 0x0100_0000.into()),
            ("PPIs are 16..=31", |v| v["irq"] = serde_json::json!({ "Ppi": 3 })),
            ("more than 16", |v| v["filter"]["len"] = 17.into()),
            ("is empty", |v| v["filter"]["ranges"][0]["last"] = 0.into()),
        ];
        for (why, change) in cases {
            let mut v = base.clone();
            change(&mut v);
            let err = load(v).expect_err(why);
            assert!(err.contains(why), "{why}: {err}");
        }
        let mut v = base.clone();
        v["version"] = "V3".into();
        v["filter"]["ranges"][0]["last"] = 0x400.into();
        assert!(load(v).unwrap_err().contains("largest event number"));
    }
}
