#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::arithmetic_side_effects, missing_docs)]
#![cfg(all(feature = "perf", target_os = "linux"))]
//! `vpmu::backend::perf::PerfBackend` against the running kernel, through the public API.
//!
//! The tests must pass on a host without a hardware PMU (where only software events such as
//! `task-clock` open) and on real hardware, so the hardware-event test asks the kernel directly
//! whether the event opens and checks that the backend agrees. When perf is closed altogether
//! (`perf_event_paranoid` 3, a seccomp filter) every test prints why and returns.
//!
//! All tests take one lock: they open perf events on their own threads, and the release test
//! checks that a descriptor number no longer names a perf event.

mod common;

use std::hint::black_box;
use std::io;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

use perf_event::events::{Hardware, Software};
use vpmu::backend::perf::{default_mapping, generic_mapping, Attribution, PerfBackend, PerfError, PerfEventSpec};
use vpmu::backend::{BackendError, CountRequest, CounterBackend, CounterId, ErrorKind};
use vpmu::config::PmuConfig;
use vpmu::decode::{Direction, SysregAccess, Xfer};
use vpmu::reg::PmuReg;
use vpmu::{Outcome, Pmu, Pstate};

use common::arch::{CYCLE_BIT, F_P, PMCR_E, PMCR_LC};
use common::{cnt, ev, gpr, typ};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

static LOCK: Mutex<()> = Mutex::new(());

fn lock() -> MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

fn paranoid() -> String {
    std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid").map_or_else(|e| format!("unreadable ({e})"), |s| s.trim().to_owned())
}

/// `None` when perf works here (task-clock opens for this thread); else why the test skips.
fn perf_closed() -> Option<String> {
    match perf_event::Builder::new(Software::TASK_CLOCK).build() {
        Ok(_) => None,
        Err(e) => Some(format!("perf_event_open(task-clock) fails: {e}; perf_event_paranoid = {}", paranoid())),
    }
}

macro_rules! require_perf {
    () => {
        let _guard = lock();
        if let Some(why) = perf_closed() {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
}

/// CPU_CYCLES counted as task-clock: nanoseconds of this thread's run time.
fn cycles_as_task_clock(event: u16) -> Option<PerfEventSpec> {
    (event == 0x11).then_some(PerfEventSpec::TASK_CLOCK)
}

/// A fixed amount of work (not a fixed time).
fn burn() {
    let mut x = 0u64;
    for i in 0..3_000_000u64 {
        x = black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
    }
    black_box(x);
}

fn esr(reg: PmuReg, dir: Direction, rt: u8) -> u64 {
    SysregAccess { reg, dir, xfer: Xfer::A64 { rt: gpr(rt) } }.to_esr().unwrap()
}

/// The guest runs `MSR <reg>, X0` at EL1 with X0 = `value`; the trap goes to `handle_esr`.
fn msr<B: CounterBackend>(pmu: &mut Pmu<B>, reg: PmuReg, value: u64) {
    let mut x = [0u64; 31];
    x[0] = value;
    assert_eq!(
        pmu.handle_esr(esr(reg, Direction::Write, 0), Pstate::EL1, &mut x).unwrap().outcome().unwrap(),
        Outcome::Written,
        "MSR {reg:?}"
    );
}

/// The guest runs `MRS X3, <reg>` at EL1.
fn mrs<B: CounterBackend>(pmu: &mut Pmu<B>, reg: PmuReg) -> u64 {
    let mut x = [0u64; 31];
    let out = pmu.handle_esr(esr(reg, Direction::Read, 3), Pstate::EL1, &mut x).unwrap().outcome().unwrap();
    assert_eq!(out, Outcome::Read(x[3]), "MRS {reg:?}");
    x[3]
}

fn fd_target(fd: i32) -> Option<String> {
    std::fs::read_link(format!("/proc/self/fd/{fd}")).ok().map(|p| p.to_string_lossy().into_owned())
}

// ---------------------------------------------------------------------------------------------
// (a) The cycle counter as task-clock, through the guest's registers
// ---------------------------------------------------------------------------------------------

#[test]
fn cycle_counter_counts_task_clock_through_traps() {
    require_perf!();
    let backend = PerfBackend::with_mapping(cycles_as_task_clock);
    assert!(backend.supports(0x11), "task-clock opens, so CPU_CYCLES is supported");
    let mut pmu = Pmu::new(PmuConfig::builder().counters(2).build().unwrap(), backend).unwrap();

    // PMCEID0 advertises CPU_CYCLES (bit 17) and not INST_RETIRED (bit 8, unmapped).
    let ceid0 = mrs(&mut pmu, PmuReg::Pmceid0);
    assert_eq!(ceid0 & (1 << 0x11), 1 << 0x11);
    assert_eq!(ceid0 & (1 << 0x08), 0);

    msr(&mut pmu, PmuReg::Pmccfiltr, F_P); // count at EL0: user time only
    msr(&mut pmu, PmuReg::Pmcntenset, CYCLE_BIT);
    assert!(!pmu.backend().is_programmed(CounterId::Cycle), "PMCR.E = 0: nothing counts yet");
    msr(&mut pmu, PmuReg::Pmcr, PMCR_E);
    assert!(pmu.take_backend_error().is_none());
    assert!(pmu.backend().is_programmed(CounterId::Cycle));

    let start = mrs(&mut pmu, PmuReg::Pmccntr);
    burn();
    let mut last = mrs(&mut pmu, PmuReg::Pmccntr);
    assert!(last > start, "PMCCNTR grew over work: {start} -> {last}");
    for _ in 0..20 {
        burn();
        let now = mrs(&mut pmu, PmuReg::Pmccntr);
        assert!(now >= last, "PMCCNTR is monotonic: {last} -> {now}");
        last = now;
    }

    // PMCNTENCLR stops the counter: it keeps its value and the perf event is gone.
    msr(&mut pmu, PmuReg::Pmcntenclr, CYCLE_BIT);
    assert!(!pmu.backend().is_programmed(CounterId::Cycle));
    let frozen = mrs(&mut pmu, PmuReg::Pmccntr);
    assert!(frozen >= last);
    burn();
    assert_eq!(mrs(&mut pmu, PmuReg::Pmccntr), frozen, "a disabled counter is frozen");

    // Enabled again, it goes on from there.
    msr(&mut pmu, PmuReg::Pmcntenset, CYCLE_BIT);
    burn();
    let resumed = mrs(&mut pmu, PmuReg::Pmccntr);
    assert!(resumed > frozen);

    // PMCR.E = 0 freezes it too.
    msr(&mut pmu, PmuReg::Pmcr, 0);
    let frozen = mrs(&mut pmu, PmuReg::Pmccntr);
    burn();
    assert_eq!(mrs(&mut pmu, PmuReg::Pmccntr), frozen, "PMCR.E = 0 freezes every counter");
    assert!(!pmu.backend().is_programmed(CounterId::Cycle));
    assert!(pmu.take_backend_error().is_none());
}

#[test]
fn event_counter_and_cycle_counter_count_side_by_side() {
    require_perf!();
    let mut pmu = Pmu::new(PmuConfig::builder().counters(2).build().unwrap(), PerfBackend::with_mapping(cycles_as_task_clock)).unwrap();
    let c0 = ev(0);
    msr(&mut pmu, PmuReg::Pmevtyper(c0), F_P | 0x11); // CPU_CYCLES at EL0
    msr(&mut pmu, PmuReg::Pmccfiltr, F_P);
    msr(&mut pmu, PmuReg::Pmcntenset, CYCLE_BIT | 1);
    msr(&mut pmu, PmuReg::Pmcr, PMCR_E);
    assert!(pmu.take_backend_error().is_none());
    burn();
    let (ev, cyc) = (mrs(&mut pmu, PmuReg::Pmevcntr(c0)), mrs(&mut pmu, PmuReg::Pmccntr));
    assert!(ev > 0 && cyc > 0, "both count: PMEVCNTR0 = {ev}, PMCCNTR = {cyc}");
    // Counter 1 is enabled but typed 0x08, which the mapping does not map: it never counts.
    msr(&mut pmu, typ(1), 0x08);
    msr(&mut pmu, PmuReg::Pmcntenset, 0b10);
    burn();
    assert_eq!(mrs(&mut pmu, cnt(1)), 0);
    assert!(pmu.take_backend_error().is_none(), "an unsupported event is not an error: it is not advertised");
}

/// Works until PMCCNTR counts past bit 31; fails if a handful of work loops do not get there.
fn burn_until_past_bit_31<B: CounterBackend>(pmu: &mut Pmu<B>) {
    for _ in 0..10 {
        if mrs(pmu, PmuReg::Pmccntr) >= 0x1_0000_0000 {
            return;
        }
        burn();
    }
    panic!("PMCCNTR did not count 4096 ns of task-clock over 10 work loops: {:#x}", mrs(pmu, PmuReg::Pmccntr));
}

/// The overflow path with a real backend: a counter set just below its 32-bit wrap overflows
/// once the event counts past it; the next fold (a guest read) sets the flag and re-arms it.
#[test]
fn overflow_is_detected_and_the_counter_rearmed() {
    require_perf!();
    let mut pmu = Pmu::new(PmuConfig::builder().counters(0).build().unwrap(), PerfBackend::with_mapping(cycles_as_task_clock)).unwrap();
    msr(&mut pmu, PmuReg::Pmccfiltr, F_P);
    msr(&mut pmu, PmuReg::Pmccntr, 0xffff_f000); // 4096 ns before the carry out of bit 31 (PMCR.LC = 0)
    msr(&mut pmu, PmuReg::Pmintenset, CYCLE_BIT);
    msr(&mut pmu, PmuReg::Pmcntenset, CYCLE_BIT);
    msr(&mut pmu, PmuReg::Pmcr, PMCR_E);
    assert!(!pmu.irq_level());
    // One pass of work is far more than 4096 ns of run time; a few passes make sure of it
    // even on a coarse task clock.
    burn_until_past_bit_31(&mut pmu);
    pmu.sync();
    assert_eq!(mrs(&mut pmu, PmuReg::Pmovsset) & CYCLE_BIT, CYCLE_BIT, "PMOVSSET.C is set");
    assert!(pmu.irq_level(), "PMCR.E and PMINTENSET.C: the interrupt is raised");
    assert!(pmu.backend().is_programmed(CounterId::Cycle), "re-armed with the next period");
    assert!(pmu.take_backend_error().is_none());

    // With PMCR.LC the cycle counter overflows at 64 bits only: the same distance to bit 32
    // gives no flag.
    msr(&mut pmu, PmuReg::Pmovsclr, CYCLE_BIT);
    msr(&mut pmu, PmuReg::Pmcr, PMCR_E | PMCR_LC);
    msr(&mut pmu, PmuReg::Pmccntr, 0xffff_f000);
    burn_until_past_bit_31(&mut pmu);
    assert_eq!(mrs(&mut pmu, PmuReg::Pmovsset), 0);
    assert!(!pmu.irq_level());
}

// ---------------------------------------------------------------------------------------------
// (b) A hardware event through the default mapping: counts, or a typed error, as the kernel says
// ---------------------------------------------------------------------------------------------

/// Opens the hardware instructions event for this thread, user time only, bypassing vpmu.
fn open_hw_instructions_directly() -> io::Result<()> {
    #[cfg(target_arch = "aarch64")]
    let b = perf_event::Builder::new(perf_event::events::Raw::new(0x08)); // INST_RETIRED
    #[cfg(not(target_arch = "aarch64"))]
    let b = perf_event::Builder::new(Hardware::INSTRUCTIONS);
    b.build().map(drop)
}

#[test]
fn hardware_inst_retired_counts_or_fails_typed_as_the_kernel_says() {
    require_perf!();
    let direct = open_hw_instructions_directly();
    eprintln!("hardware instructions via perf_event_open directly: {direct:?} (perf_event_paranoid = {})", paranoid());
    assert!(default_mapping(0x08).is_some(), "INST_RETIRED is in the default mapping on every host");

    // Probing (the default): PMCEID0.INST_RETIRED (bit 8) says whether it opens.
    let mut probed = Pmu::new(PmuConfig::builder().counters(1).build().unwrap(), PerfBackend::new()).unwrap();
    assert_eq!(probed.backend().supports(0x08), direct.is_ok());
    assert_eq!(mrs(&mut probed, PmuReg::Pmceid0) & (1 << 8) != 0, direct.is_ok());
    assert_eq!(probed.backend().check(0x08).is_ok(), direct.is_ok());

    // Not probing: the guest programs it anyway, and gets counts or a typed error.
    let backend = PerfBackend::builder().probe(false).build();
    assert!(backend.supports(0x08));
    let mut pmu = Pmu::new(PmuConfig::builder().counters(1).build().unwrap(), backend).unwrap();
    let c0 = ev(0);
    msr(&mut pmu, PmuReg::Pmevtyper(c0), F_P | 0x08); // INST_RETIRED at EL0
    msr(&mut pmu, PmuReg::Pmcntenset, 1);
    msr(&mut pmu, PmuReg::Pmcr, PMCR_E);
    let error = pmu.take_backend_error();
    burn();
    let count = mrs(&mut pmu, PmuReg::Pmevcntr(c0));
    match (&direct, error) {
        (Ok(()), None) => {
            eprintln!("INST_RETIRED counted {count} instructions");
            assert!(count > 0, "real instructions after work");
            assert!(pmu.backend().is_programmed(CounterId::Event(c0)));
        }
        (Err(direct), Some(e)) => {
            eprintln!("INST_RETIRED refused, as the kernel said: {e}");
            assert_eq!(e.kind(), PerfError::kind_of(direct));
            assert!(matches!(e.kind(), ErrorKind::Unsupported | ErrorKind::Denied | ErrorKind::Exhausted), "{e:?}");
            assert_eq!(e.event(), 0x08);
            assert_eq!(e.spec(), default_mapping(0x08));
            assert_eq!(e.raw_os_error(), direct.raw_os_error());
            assert_eq!(count, 0, "a counter the backend could not program does not count");
            assert!(!pmu.backend().is_programmed(CounterId::Event(c0)));
        }
        (direct, error) => panic!("the backend and the kernel disagree: direct {direct:?}, backend {error:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// (c) errno -> ErrorKind
// ---------------------------------------------------------------------------------------------

#[test]
fn errno_maps_to_error_kind() {
    // Linux errno values (asm-generic/errno-base.h and errno.h; EOPNOTSUPP as on x86/arm).
    let cases: &[(&str, i32, ErrorKind)] = &[
        ("EPERM", 1, ErrorKind::Denied),
        ("EACCES", 13, ErrorKind::Denied),
        ("EMFILE", 24, ErrorKind::Exhausted),
        ("ENFILE", 23, ErrorKind::Exhausted),
        ("ENOSPC", 28, ErrorKind::Exhausted),
        ("EBUSY", 16, ErrorKind::Exhausted),
        ("ENOMEM", 12, ErrorKind::Exhausted),
        ("ENOENT", 2, ErrorKind::Unsupported),
        ("ENODEV", 19, ErrorKind::Unsupported),
        ("EINVAL", 22, ErrorKind::Unsupported),
        ("E2BIG", 7, ErrorKind::Unsupported),
        ("ENOSYS", 38, ErrorKind::Unsupported),
        ("EFAULT", 14, ErrorKind::Other),
        ("ESRCH", 3, ErrorKind::Other),
        ("EINTR", 4, ErrorKind::Other),
    ];
    #[cfg(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64", target_arch = "arm", target_arch = "riscv64"))]
    let cases = [cases, &[("EOPNOTSUPP", 95, ErrorKind::Unsupported)]].concat();
    for &(name, errno, kind) in cases.iter() {
        let e = PerfError::new(0x11, Some(PerfEventSpec::CPU_CYCLES), io::Error::from_raw_os_error(errno));
        assert_eq!(e.kind(), kind, "{name} ({errno})");
        assert_eq!(PerfError::kind_of(&io::Error::from_raw_os_error(errno)), kind, "{name}");
        assert_eq!(e.raw_os_error(), Some(errno));
        let shown = e.to_string();
        assert!(shown.contains("0x0011") && shown.contains("perf type 0"), "{shown}");
    }
    // perf-event2 turns E2BIG into a custom error of kind Unsupported, without an errno.
    let custom = io::Error::new(io::ErrorKind::Unsupported, "perf_event_attr too large for this kernel");
    assert_eq!(PerfError::kind_of(&custom), ErrorKind::Unsupported);
    assert_eq!(PerfError::kind_of(&io::Error::from(io::ErrorKind::PermissionDenied)), ErrorKind::Denied);
    assert_eq!(PerfError::kind_of(&io::Error::other("?")), ErrorKind::Other);
    // No mapping at all.
    let e = PerfError::unmapped(0x4004);
    assert_eq!((e.kind(), e.event(), e.spec(), e.raw_os_error()), (ErrorKind::Unsupported, 0x4004, None, None));
    assert!(e.to_string().contains("0x4004"));
    assert!(std::error::Error::source(&e).is_none());
    let e = PerfError::new(0x08, None, io::Error::from_raw_os_error(13));
    assert!(std::error::Error::source(&e).is_some());
}

#[test]
fn real_open_failures_are_typed() {
    require_perf!();
    // No PMU has this type: the kernel answers ENOENT.
    let mut b = PerfBackend::builder().mapping(|e| (e == 0x11).then_some(PerfEventSpec::new(0xffff_0000, 0))).probe(false).build();
    let req = CountRequest::new(0x11, true, false, 1 << 32);
    let e = b.program(CounterId::Cycle, &req).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert!(!b.is_programmed(CounterId::Cycle));
    assert_eq!(b.read(CounterId::Cycle), 0);
    // An event the mapping does not map.
    let e = b.program(CounterId::Cycle, &CountRequest::new(0x08, req.el0, req.el1, req.period)).unwrap_err();
    assert_eq!((e.kind(), e.spec(), e.raw_os_error()), (ErrorKind::Unsupported, None, None));
    // A software event number the kernel does not have: EINVAL or ENOENT, both Unsupported.
    let b = PerfBackend::builder().mapping(|_| Some(PerfEventSpec::software(0xffff))).probe(false).build();
    assert_eq!(b.check(0x11).unwrap_err().kind(), ErrorKind::Unsupported);
}

// ---------------------------------------------------------------------------------------------
// (d) Release stops counting
// ---------------------------------------------------------------------------------------------

static OPENED_FD: AtomicI32 = AtomicI32::new(-1);
static OPENED_COUNTER: AtomicU32 = AtomicU32::new(u32::MAX);

fn remember_fd(counter: CounterId, fd: std::os::fd::RawFd) {
    OPENED_FD.store(fd, Ordering::SeqCst);
    OPENED_COUNTER.store(counter.index() as u32, Ordering::SeqCst);
}

#[test]
fn release_closes_the_event_and_stops_counting() {
    require_perf!();
    let mut b = PerfBackend::builder().mapping(cycles_as_task_clock).on_open(remember_fd).build();
    let req = CountRequest::new(0x11, true, false, 1 << 40);
    let c = CounterId::Event(ev(3));
    b.program(c, &req).unwrap();
    let fd = b.raw_fd(c).expect("a programmed counter has a descriptor");
    assert_eq!(OPENED_FD.load(Ordering::SeqCst), fd, "the open hook saw the descriptor");
    assert_eq!(OPENED_COUNTER.load(Ordering::SeqCst), 3);
    assert_eq!(fd_target(fd).as_deref(), Some("anon_inode:[perf_event]"));

    burn();
    let first = b.read(c);
    assert!(first > 0, "counts since program: {first}");
    burn();
    assert!(b.read(c) > 0, "counts since the last read");
    assert_eq!(b.read(CounterId::Cycle), 0, "another counter was never programmed");

    b.release(c);
    assert!(!b.is_programmed(c));
    assert_eq!(b.raw_fd(c), None);
    assert_ne!(fd_target(fd).as_deref(), Some("anon_inode:[perf_event]"), "the descriptor is closed");
    burn();
    assert_eq!(b.read(c), 0, "a released counter reads 0");
    b.release(c); // releasing again does nothing

    // Programming again starts from zero: the first read is only the new run time, less
    // than everything since the first program.
    b.program(c, &req).unwrap();
    burn();
    let again = b.read(c);
    assert!(again > 0);
    // Reprogramming replaces the event (one descriptor per counter).
    let fd1 = b.raw_fd(c).unwrap();
    b.program(c, &req.with_period(5)).unwrap();
    let fd2 = b.raw_fd(c).unwrap();
    assert_eq!(fd_target(fd2).as_deref(), Some("anon_inode:[perf_event]"));
    let _ = fd1; // the kernel may reuse the number; what matters is one event per counter
                 // A request that counts at no level opens nothing.
    b.program(c, &CountRequest::new(req.event, false, false, req.period)).unwrap();
    assert!(!b.is_programmed(c));
}

#[test]
fn pmu_reset_releases_every_event() {
    require_perf!();
    let mut pmu = Pmu::new(PmuConfig::builder().counters(2).build().unwrap(), PerfBackend::with_mapping(cycles_as_task_clock)).unwrap();
    let c0 = ev(0);
    msr(&mut pmu, PmuReg::Pmevtyper(c0), F_P | 0x11);
    msr(&mut pmu, PmuReg::Pmccfiltr, F_P);
    msr(&mut pmu, PmuReg::Pmcntenset, CYCLE_BIT | 1);
    msr(&mut pmu, PmuReg::Pmcr, PMCR_E);
    assert!(pmu.backend().is_programmed(CounterId::Cycle) && pmu.backend().is_programmed(CounterId::Event(c0)));
    pmu.reset();
    assert!(!pmu.backend().is_programmed(CounterId::Cycle) && !pmu.backend().is_programmed(CounterId::Event(c0)));
    burn();
    assert_eq!(mrs(&mut pmu, PmuReg::Pmccntr), 0);
}

// ---------------------------------------------------------------------------------------------
// Attribution, signals, mapping tables
// ---------------------------------------------------------------------------------------------

#[test]
fn attributions_open_or_fail_typed() {
    require_perf!();
    let el0 = CountRequest::new(0x11, true, false, 1 << 40);
    let el1 = CountRequest::new(el0.event, false, true, el0.period);
    // User time only: opens wherever task-clock does, under any attribution but Guest (whose
    // exclude_host a software event may or may not accept).
    for att in [Attribution::Thread, Attribution::UserSpace] {
        let mut b = PerfBackend::builder().mapping(cycles_as_task_clock).attribution(att).build();
        assert!(b.supports(0x11), "{att:?}");
        b.program(CounterId::Cycle, &el0).unwrap();
        burn();
        assert!(b.read(CounterId::Cycle) > 0, "{att:?}");
    }
    // UserSpace counts EL1 as user time too: no privilege needed.
    let mut b = PerfBackend::builder().mapping(cycles_as_task_clock).attribution(Attribution::UserSpace).build();
    b.program(CounterId::Cycle, &el1).unwrap();
    // Thread counts EL1 as kernel time: allowed with privilege or perf_event_paranoid <= 1.
    let mut b = PerfBackend::builder().mapping(cycles_as_task_clock).build();
    match b.program(CounterId::Cycle, &el1) {
        Ok(()) => eprintln!("kernel time may be counted here (perf_event_paranoid = {})", paranoid()),
        Err(e) => {
            eprintln!("kernel time refused: {e} (perf_event_paranoid = {})", paranoid());
            assert_eq!(e.kind(), ErrorKind::Denied, "{e}");
        }
    }
    let mut g = PerfBackend::builder().mapping(cycles_as_task_clock).attribution(Attribution::Guest).probe(false).build();
    match g.program(CounterId::Cycle, &el0) {
        Ok(()) => eprintln!("Guest attribution: task-clock with exclude_host opens"),
        Err(e) => eprintln!("Guest attribution: task-clock with exclude_host refused: {e} ({:?})", e.kind()),
    }
}

#[test]
fn sigtrap_events_open() {
    require_perf!();
    // The period is 2^63 - 1 ns: this event never overflows, so no SIGTRAP is ever sent.
    let mut b = PerfBackend::builder().mapping(cycles_as_task_clock).sigtrap(true).build();
    assert!(b.sigtrap());
    let req = CountRequest::new(0x11, true, false, u64::MAX);
    match b.program(CounterId::Cycle, &req) {
        Ok(()) => {
            burn();
            assert!(b.read(CounterId::Cycle) > 0);
        }
        // Linux before 5.13 has no sigtrap: it rejects the attribute.
        Err(e) => {
            eprintln!("sigtrap refused by this kernel: {e}");
            assert_eq!(e.kind(), ErrorKind::Unsupported);
        }
    }
}

#[test]
fn mapping_tables() {
    // The perf ABI numbers vpmu writes down match perf-event2's.
    assert_eq!(PerfEventSpec::CPU_CYCLES.config, u64::from(Hardware::CPU_CYCLES));
    assert_eq!(PerfEventSpec::INSTRUCTIONS.config, u64::from(Hardware::INSTRUCTIONS));
    assert_eq!(PerfEventSpec::BRANCH_INSTRUCTIONS.config, u64::from(Hardware::BRANCH_INSTRUCTIONS));
    assert_eq!(PerfEventSpec::BRANCH_MISSES.config, u64::from(Hardware::BRANCH_MISSES));
    assert_eq!(PerfEventSpec::TASK_CLOCK.config, u64::from(Software::TASK_CLOCK));
    assert_eq!(PerfEventSpec::CPU_CLOCK.config, u64::from(Software::CPU_CLOCK));
    assert_eq!(PerfEventSpec::PAGE_FAULTS.config, u64::from(Software::PAGE_FAULTS));

    // The generic table: only the four events whose meaning perf's generic events share.
    let mapped: Vec<u16> = (0..=u16::MAX).filter(|&e| generic_mapping(e).is_some()).collect();
    assert_eq!(mapped, [0x08, 0x11, 0x21, 0x22]);
    // SW_INCR and CHAIN never reach a backend, on any host.
    assert_eq!(default_mapping(0x00), None);
    assert_eq!(default_mapping(0x1e), None);

    // PerfBackend can move to the vCPU thread that will use it.
    fn assert_send<T: Send>() {}
    assert_send::<PerfBackend>();
    assert_send::<PerfError>();
}

#[test]
fn max_event_counters_is_configurable() {
    let b = PerfBackend::builder().probe(false).build();
    assert_eq!(b.max_event_counters(), 31);
    let b = PerfBackend::builder().max_event_counters(2).probe(false).build();
    assert_eq!(b.max_event_counters(), 2);
    let err = Pmu::new(PmuConfig::builder().counters(3).build().unwrap(), b).unwrap_err();
    assert_eq!(err, vpmu::config::ConfigError::TooManyCounters { requested: 3, max: 2 });
}
