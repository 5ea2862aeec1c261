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
use vpmu::backend::perf::{
    current_thread_id, default_mapping, generic_mapping, sig_data_bits, Attribution, PerfBackend, PerfError, PerfEventSpec,
};
use vpmu::backend::{BackendError, CountRequest, CounterBackend, CounterId, ErrorKind, PendingOverflow};
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
        pmu.handle_esr(esr(reg, Direction::Write, 0), Pstate::EL1, &mut x).unwrap().outcome(),
        Some(Outcome::Written),
        "MSR {reg:?}"
    );
}

/// The guest runs `MRS X3, <reg>` at EL1.
fn mrs<B: CounterBackend>(pmu: &mut Pmu<B>, reg: PmuReg) -> u64 {
    let mut x = [0u64; 31];
    let out = pmu.handle_esr(esr(reg, Direction::Read, 3), Pstate::EL1, &mut x).unwrap().outcome();
    assert_eq!(out, Some(Outcome::Read(x[3])), "MRS {reg:?}");
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

    // PMCNTENCLR stops the counter: it keeps its value; the perf event is disabled, not closed.
    let fd = pmu.backend().raw_fd(CounterId::Cycle).unwrap();
    msr(&mut pmu, PmuReg::Pmcntenclr, CYCLE_BIT);
    assert!(!pmu.backend().is_programmed(CounterId::Cycle));
    assert_eq!(pmu.backend().raw_fd(CounterId::Cycle), Some(fd), "stop keeps the descriptor");
    let frozen = mrs(&mut pmu, PmuReg::Pmccntr);
    assert!(frozen >= last);
    burn();
    assert_eq!(mrs(&mut pmu, PmuReg::Pmccntr), frozen, "a disabled counter is frozen");

    // Enabled again, it goes on from there, on the same perf event.
    msr(&mut pmu, PmuReg::Pmcntenset, CYCLE_BIT);
    assert_eq!(pmu.backend().raw_fd(CounterId::Cycle), Some(fd), "re-enabled in place");
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
        ("ESRCH", 3, ErrorKind::WrongContext),
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

    // Programming again opens a new event that counts from zero.
    b.program(c, &req).unwrap();
    assert!(b.is_programmed(c));
    burn();
    assert!(b.read(c) > 0);
    // A request that counts at no level releases the counter.
    b.program(c, &CountRequest::new(req.event, false, false, req.period)).unwrap();
    assert!(!b.is_programmed(c) && !b.has_event(c));
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

/// Opens task-clock for this thread directly, with these exclusions: what the kernel says.
fn open_task_clock_directly(exclude_user: bool, exclude_kernel: bool, exclude_host: bool) -> io::Result<()> {
    let mut b = perf_event::Builder::new(Software::TASK_CLOCK);
    b.exclude_user(exclude_user).exclude_kernel(exclude_kernel).exclude_hv(true).exclude_host(exclude_host).sample_period(1 << 40);
    b.build().map(drop)
}

/// The backend opens, or fails with the kind of, exactly what the kernel says for the same
/// perf attributes.
fn agrees_with_kernel(att: Attribution, req: &CountRequest, direct: io::Result<()>) {
    let mut b = PerfBackend::builder().mapping(cycles_as_task_clock).attribution(att).probe(false).build();
    match (b.program(CounterId::Cycle, req), direct) {
        (Ok(()), Ok(())) => {
            assert!(b.is_programmed(CounterId::Cycle), "{att:?}");
            burn();
            // task-clock counts the thread's run time whatever the privilege filter.
            assert!(b.read(CounterId::Cycle) > 0, "{att:?} {req:?}");
        }
        (Err(e), Err(direct)) => {
            assert_eq!(e.kind(), PerfError::kind_of(&direct), "{att:?}: {e}");
            assert_eq!(e.raw_os_error(), direct.raw_os_error(), "{att:?}");
            assert!(!b.has_event(CounterId::Cycle));
        }
        (mine, direct) => panic!("{att:?} {req:?}: the backend says {mine:?}, the kernel {direct:?}"),
    }
}

#[test]
fn attributions_open_or_fail_typed() {
    require_perf!();
    let el0 = CountRequest::new(0x11, true, false, 1 << 40);
    let el1 = CountRequest::new(el0.event, false, true, el0.period);
    let both = CountRequest::new(el1.event, true, el1.el1, el1.period);
    // Thread: EL0 is user time, EL1 kernel time (which needs privilege or paranoid <= 1).
    agrees_with_kernel(Attribution::Thread, &el0, open_task_clock_directly(false, true, false));
    agrees_with_kernel(Attribution::Thread, &el1, open_task_clock_directly(true, false, false));
    agrees_with_kernel(Attribution::Thread, &both, open_task_clock_directly(false, false, false));
    // UserSpace: user time for either level, never kernel time.
    for req in [el0, el1, both] {
        agrees_with_kernel(Attribution::UserSpace, &req, open_task_clock_directly(false, true, false));
    }
    // Guest: as Thread, plus exclude_host.
    agrees_with_kernel(Attribution::Guest, &el0, open_task_clock_directly(false, true, true));
    agrees_with_kernel(Attribution::Guest, &el1, open_task_clock_directly(true, false, true));
    // Root (or CAP_PERFMON, or paranoid <= 1) may count kernel time; then Thread/EL1 must open.
    let privileged = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("CapEff:")).map(|l| u64::from_str_radix(l[7..].trim(), 16).unwrap_or(0)))
        .is_some_and(|caps| caps & (1 << 38 | 1 << 21) != 0) // CAP_PERFMON, CAP_SYS_ADMIN
        || paranoid().parse::<i32>().is_ok_and(|p| p <= 1);
    if privileged {
        let mut b = PerfBackend::builder().mapping(cycles_as_task_clock).probe(false).build();
        b.program(CounterId::Cycle, &el1).expect("a privileged thread may count kernel time");
    }
}

// ---------------------------------------------------------------------------------------------
// (e) The vCPU's thread, not the caller's
// ---------------------------------------------------------------------------------------------

/// This thread's own run time over `f`, in task-clock nanoseconds, measured by perf directly.
fn own_task_clock(f: impl FnOnce()) -> u64 {
    let mut c = perf_event::Builder::new(Software::TASK_CLOCK).build().unwrap();
    c.enable().unwrap();
    f();
    c.disable().unwrap();
    c.read().unwrap()
}

/// Busy work for at least `ms` of this thread's run time.
fn burn_ms(ms: u64) {
    let mut c = perf_event::Builder::new(Software::TASK_CLOCK).build().unwrap();
    c.enable().unwrap();
    while c.read().unwrap() < ms * 1_000_000 {
        burn();
    }
}

/// A guest state with the cycle counter counting user time (task-clock) under `PMCR.E`, saved
/// on a PMU the guest sees as the destination (the same host events: the same `PMCEID`).
fn counting_state() -> vpmu::PmuState {
    let host = PerfBackend::builder().mapping(cycles_as_task_clock).build();
    let mut src = Pmu::new(PmuConfig::builder().counters(1).build().unwrap(), host).unwrap();
    let el1 = vpmu::El::El1;
    assert_eq!(src.write(PmuReg::Pmccfiltr, F_P, el1), vpmu::Outcome::Written);
    assert_eq!(src.write(PmuReg::Pmcntenset, CYCLE_BIT, el1), vpmu::Outcome::Written);
    assert_eq!(src.write(PmuReg::Pmcr, PMCR_E, el1), vpmu::Outcome::Written);
    src.save()
}

enum ToVcpu {
    Burn(u64),
    Pmu(Box<Pmu<PerfBackend>>),
}

/// Bug 2 of issue 9: a VMM restores the vCPU's PMU on its main thread, then the vCPU thread
/// runs the guest. The events count the vCPU thread (named with `thread(tid)`), not the main
/// thread that programmed them; then the `Pmu` moves to the vCPU thread and counts on.
#[test]
fn restore_on_the_main_thread_counts_the_vcpu_thread() {
    require_perf!();
    use std::sync::mpsc;
    let (tid_tx, tid_rx) = mpsc::channel();
    let (cmd_tx, cmd_rx) = mpsc::channel::<ToVcpu>();
    let (done_tx, done_rx) = mpsc::channel::<u64>();
    let vcpu = std::thread::spawn(move || {
        tid_tx.send(current_thread_id()).unwrap();
        while let Ok(cmd) = cmd_rx.recv() {
            match cmd {
                ToVcpu::Burn(ms) => done_tx.send(own_task_clock(|| burn_ms(ms))).unwrap(),
                ToVcpu::Pmu(mut pmu) => {
                    // The guest, on the vCPU thread now, works and reads its counter.
                    let before = mrs(&mut pmu, PmuReg::Pmccntr);
                    let worked = own_task_clock(|| burn_ms(20));
                    let after = mrs(&mut pmu, PmuReg::Pmccntr);
                    assert!(after - before >= worked, "counts the work on its own thread: {} < {worked}", after - before);
                    done_tx.send(after - before).unwrap();
                }
            }
        }
    });
    let tid = tid_rx.recv().unwrap();
    assert_ne!(tid, current_thread_id());

    let backend = PerfBackend::builder().mapping(cycles_as_task_clock).thread(tid).build();
    assert_eq!(backend.thread(), tid);
    let mut pmu = Pmu::new(PmuConfig::builder().counters(1).build().unwrap(), backend).unwrap();
    pmu.restore(&counting_state()).unwrap();
    assert!(pmu.take_backend_error().is_none());
    assert!(pmu.backend().is_programmed(CounterId::Cycle));

    // The main thread works; the vCPU thread waits: (almost) nothing is counted.
    let main_work = own_task_clock(|| burn_ms(60));
    let idle = mrs(&mut pmu, PmuReg::Pmccntr);
    assert!(idle < main_work / 4, "the main thread's {main_work} ns are not counted: PMCCNTR = {idle}");

    // The vCPU thread works: its run time is counted, read from the main thread.
    cmd_tx.send(ToVcpu::Burn(30)).unwrap();
    let vcpu_work = done_rx.recv().unwrap();
    let counted = mrs(&mut pmu, PmuReg::Pmccntr) - idle;
    assert!(counted >= vcpu_work, "the vCPU thread's {vcpu_work} ns are counted: {counted}");
    assert!(counted < vcpu_work + 20_000_000, "and not much more: {counted} for {vcpu_work}");

    // The restored Pmu moves to the vCPU thread and goes on counting there.
    cmd_tx.send(ToVcpu::Pmu(Box::new(pmu))).unwrap();
    let there = done_rx.recv().unwrap();
    assert!(there > 0);
    drop(cmd_tx);
    vcpu.join().unwrap();
}

/// The backend built on the vCPU thread (the default thread) and handed to the main thread
/// still counts the vCPU thread; a thread that has exited is a typed `WrongContext`.
#[test]
fn default_thread_is_the_building_thread_and_a_dead_thread_is_wrong_context() {
    require_perf!();
    use std::sync::mpsc;
    let (backend_tx, backend_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel::<u64>();
    let vcpu = std::thread::spawn(move || {
        let b = PerfBackend::builder().mapping(cycles_as_task_clock).build();
        let tid = current_thread_id();
        backend_tx.send(b).unwrap();
        go_rx.recv().unwrap();
        done_tx.send(own_task_clock(|| burn_ms(30))).unwrap();
        tid
    });
    let mut b = backend_rx.recv().unwrap();
    let req = CountRequest::new(0x11, true, false, 1 << 40);
    b.program(CounterId::Cycle, &req).unwrap();
    let main_work = own_task_clock(|| burn_ms(40));
    let idle = b.read(CounterId::Cycle);
    assert!(idle < main_work / 4, "main thread's {main_work} ns not counted: {idle}");
    go_tx.send(()).unwrap();
    let vcpu_work = done_rx.recv().unwrap();
    let tid = vcpu.join().unwrap();
    assert_eq!(b.thread(), tid);
    assert!(b.read(CounterId::Cycle) >= vcpu_work);

    // The thread has exited: no event can count it.
    let mut dead = PerfBackend::builder().mapping(cycles_as_task_clock).thread(tid).probe(false).build();
    let e = dead.program(CounterId::Cycle, &req).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WrongContext, "{e}");
}

// ---------------------------------------------------------------------------------------------
// (f) Re-arming in place: stop, set_period and program with the same event keep the event
// ---------------------------------------------------------------------------------------------

static OPENS: AtomicU32 = AtomicU32::new(0);

fn count_open(_: CounterId, _: std::os::fd::RawFd) {
    OPENS.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn stop_set_period_and_same_event_reuse_the_descriptor() {
    require_perf!();
    OPENS.store(0, Ordering::SeqCst);
    let mut b = PerfBackend::builder().mapping(cycles_as_task_clock).on_open(count_open).build();
    let c = CounterId::Event(ev(2));
    let req = CountRequest::new(0x11, true, false, 1 << 40);
    b.program(c, &req).unwrap();
    assert_eq!(OPENS.load(Ordering::SeqCst), 1);
    let fd = b.raw_fd(c).unwrap();

    // stop: disabled, kept; what was counted before the stop is read once, then nothing.
    burn();
    b.stop(c);
    assert!(!b.is_programmed(c) && b.has_event(c));
    assert!(b.read(c) > 0, "counted before the stop");
    burn();
    assert_eq!(b.read(c), 0, "nothing after the stop");

    // program, same event and filter: the same event, counting from zero.
    b.program(c, &req.with_period(1 << 30)).unwrap();
    assert!(b.is_programmed(c));
    assert_eq!((b.raw_fd(c), OPENS.load(Ordering::SeqCst)), (Some(fd), 1));
    let fresh = own_task_clock(burn);
    let counted = b.read(c);
    assert!(counted > 0 && counted < fresh * 3, "from zero: {counted} after {fresh} ns of work");

    // set_period: the count goes on, the event stays.
    burn();
    b.set_period(c, &req.with_period(1 << 35)).unwrap();
    burn();
    assert!(b.read(c) > 0);
    assert_eq!((b.raw_fd(c), OPENS.load(Ordering::SeqCst)), (Some(fd), 1));

    // program while counting, same event: still the same event.
    b.program(c, &req).unwrap();
    assert_eq!(OPENS.load(Ordering::SeqCst), 1);

    // Another filter, or another event: a new event.
    b.program(c, &CountRequest::new(req.event, true, true, req.period)).unwrap();
    assert_eq!(OPENS.load(Ordering::SeqCst), 2);
    b.program(c, &CountRequest::new(0x11, req.el0, req.el1, req.period)).unwrap();
    assert_eq!(OPENS.load(Ordering::SeqCst), 3);
}

/// Through the guest's registers: the interrupt handler's `PMCR.E` off / rewrite / on, and a
/// counter write while counting, open nothing after the first enable.
#[test]
fn guest_interrupt_sequence_opens_nothing() {
    require_perf!();
    OPENS.store(0, Ordering::SeqCst);
    let backend = PerfBackend::builder().mapping(cycles_as_task_clock).on_open(count_open).build();
    let mut pmu = Pmu::new(PmuConfig::builder().counters(2).build().unwrap(), backend).unwrap();
    for n in 0..2 {
        msr(&mut pmu, typ(n), F_P | 0x11);
    }
    msr(&mut pmu, PmuReg::Pmccfiltr, F_P);
    msr(&mut pmu, PmuReg::Pmcntenset, CYCLE_BIT | 0b11);
    msr(&mut pmu, PmuReg::Pmcr, PMCR_E);
    assert_eq!(OPENS.load(Ordering::SeqCst), 3);
    for _ in 0..5 {
        let ovs = mrs(&mut pmu, PmuReg::Pmovsclr);
        msr(&mut pmu, PmuReg::Pmovsclr, ovs);
        msr(&mut pmu, PmuReg::Pmcr, 0);
        for n in 0..2 {
            let _ = mrs(&mut pmu, cnt(n));
            msr(&mut pmu, cnt(n), 0x8000_0000);
        }
        msr(&mut pmu, PmuReg::Pmccntr, 0x8000_0000);
        msr(&mut pmu, PmuReg::Pmcr, PMCR_E);
        burn();
        // A counter written while it counts gets a new period in place.
        msr(&mut pmu, cnt(0), 0x4000_0000);
    }
    assert!(pmu.take_backend_error().is_none());
    assert_eq!(OPENS.load(Ordering::SeqCst), 3, "re-armed, never reopened");
    assert!(mrs(&mut pmu, PmuReg::Pmccntr) > 0x8000_0000);
    assert!(mrs(&mut pmu, cnt(0)) > 0x4000_0000);
}

/// One probe for the VM: a backend built with it opens nothing at build time and offers what
/// the probe found.
#[test]
fn a_shared_probe_is_used_not_repeated() {
    require_perf!();
    let probe = PerfBackend::builder().mapping(cycles_as_task_clock).run_probe();
    assert_eq!(probe.opened(0x11), Some(true));
    assert_eq!(probe.opened(0x08), Some(false));
    let first = PerfBackend::builder().mapping(cycles_as_task_clock).build();
    assert_eq!(first.probe_result(), probe, "build probes the same way");

    // A mapping whose 0x11 cannot open: given the probe, the builder does not open it to
    // find out, and offers it as the probe says.
    let broken = |e: u16| (e == 0x11).then_some(PerfEventSpec::new(0xffff_0000, 0));
    assert!(!PerfBackend::builder().mapping(broken).build().supports(0x11), "probing finds it broken");
    let given = PerfBackend::builder().mapping(broken).probed(probe).build();
    assert!(given.supports(0x11), "the given probe is trusted: nothing was opened");
    assert_eq!(given.probe_result(), probe);
    // An event the mapping does not map stays unsupported whatever the probe says.
    let none = PerfBackend::builder().mapping(|_| None).probed(probe).build();
    assert!(!none.supports(0x11));

    // The shared probe builds PMCEID like a probe of its own.
    let mut pmu = Pmu::new(
        PmuConfig::builder().counters(1).build().unwrap(),
        PerfBackend::builder().mapping(cycles_as_task_clock).probed(probe).build(),
    )
    .unwrap();
    assert_eq!(mrs(&mut pmu, PmuReg::Pmceid0) & (1 << 0x11 | 1 << 0x08), 1 << 0x11);
}

// ---------------------------------------------------------------------------------------------
// (g) A real overflow signal: SIGTRAP from perf, to the guest's PMOVSSET and interrupt
// ---------------------------------------------------------------------------------------------

/// The vCPU's pending overflows, as the host's signal handler finds them.
static SIGNALLED: std::sync::OnceLock<std::sync::Arc<PendingOverflow>> = std::sync::OnceLock::new();
static SIGTRAPS: AtomicU32 = AtomicU32::new(0);
static LAST_SIG_DATA: AtomicU32 = AtomicU32::new(u32::MAX);

/// The host's `SIGTRAP` handler: the only `unsafe` in the tests (a signal handler needs it).
#[allow(unsafe_code)]
mod sigtrap {
    use super::*;

    /// `siginfo_t.si_perf_data`: after `si_signo`, `si_errno`, `si_code` (and padding to 8), the
    /// fault union's `si_addr`, then the perf data (`unsigned long`), on every 64-bit Linux that
    /// has no `si_trapno` (x86_64, aarch64, riscv64).
    const SI_PERF_DATA_OFFSET: usize = 24;

    pub extern "C" fn on_sigtrap(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
        // SAFETY: the kernel passes a valid siginfo_t for a SA_SIGINFO handler; for si_code =
        // TRAP_PERF its fault union holds si_perf_data at SI_PERF_DATA_OFFSET (aligned to 8).
        // Reading it and doing atomic operations is async-signal-safe.
        let data = unsafe {
            if (*info).si_code != libc::TRAP_PERF {
                return;
            }
            info.cast::<u8>().add(SI_PERF_DATA_OFFSET).cast::<u64>().read()
        };
        SIGTRAPS.fetch_add(1, Ordering::SeqCst);
        LAST_SIG_DATA.store(data as u32, Ordering::SeqCst);
        if let Some(p) = SIGNALLED.get() {
            p.raise(sig_data_bits(data));
        }
    }

    pub fn install_sigtrap_handler() {
        // SAFETY: a zeroed sigaction is a valid starting value; the handler only does
        // async-signal-safe work (a read of its siginfo and atomics); sigaction gets valid
        // pointers to live locals.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) = on_sigtrap;
            sa.sa_sigaction = handler as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            assert_eq!(libc::sigaction(libc::SIGTRAP, &sa, std::ptr::null_mut()), 0);
        }
    }
}
use sigtrap::install_sigtrap_handler;

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "riscv64"))]
#[test]
fn a_real_sigtrap_reaches_pmovsset_and_the_interrupt() {
    require_perf!();
    install_sigtrap_handler();
    let pending = SIGNALLED.get_or_init(|| std::sync::Arc::new(PendingOverflow::new()));
    let _ = pending.take();
    SIGTRAPS.store(0, Ordering::SeqCst);

    let backend = PerfBackend::builder().mapping(cycles_as_task_clock).sigtrap(true).pending(std::sync::Arc::clone(pending)).build();
    assert!(backend.sigtrap() && std::sync::Arc::ptr_eq(backend.pending(), pending));
    let mut pmu = Pmu::new(PmuConfig::builder().counters(1).build().unwrap(), backend).unwrap();
    // The cycle counter 2 ms of run time before its 32-bit overflow (PMCR.LC = 0), interrupt on.
    msr(&mut pmu, PmuReg::Pmccfiltr, F_P);
    msr(&mut pmu, PmuReg::Pmccntr, 0x1_0000_0000 - 2_000_000);
    msr(&mut pmu, PmuReg::Pmintenset, CYCLE_BIT);
    msr(&mut pmu, PmuReg::Pmcntenset, CYCLE_BIT);
    msr(&mut pmu, PmuReg::Pmcr, PMCR_E);
    if let Some(e) = pmu.take_backend_error() {
        // Linux before 5.13 has no sigtrap: it rejects the attribute.
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
        eprintln!("SKIPPED: sigtrap refused by this kernel: {e}");
        return;
    }
    assert!(!pmu.irq_level());
    assert_eq!(SIGTRAPS.load(Ordering::SeqCst), 0);

    // The guest runs (the vCPU thread works) without touching its PMU, until the signal.
    for _ in 0..200 {
        if SIGTRAPS.load(Ordering::SeqCst) > 0 {
            break;
        }
        burn();
    }
    assert!(SIGTRAPS.load(Ordering::SeqCst) > 0, "perf sent SIGTRAP after 2 ms of run time");
    assert_eq!(LAST_SIG_DATA.load(Ordering::SeqCst), 31, "si_perf_data names PMCCNTR");
    assert_eq!(pending.peek() & CYCLE_BIT as u32, CYCLE_BIT as u32, "the handler raised the cycle counter");

    // The host, back from the signal, samples the interrupt before the next guest entry.
    assert!(pmu.irq_level(), "the overflow reaches the interrupt line");
    assert_eq!(mrs(&mut pmu, PmuReg::Pmovsset), CYCLE_BIT, "and PMOVSSET.C");
    assert!(mrs(&mut pmu, PmuReg::Pmccntr) >= 0x1_0000_0000, "PMCCNTR counted past bit 31 (it is 64 bits wide)");
    assert_eq!(pending.peek(), 0);
    assert!(pmu.backend().is_programmed(CounterId::Cycle), "re-armed for the next 2^32 ns");
    assert!(pmu.take_backend_error().is_none());

    // Cleared by the guest, the line drops; the re-armed period is 2^32 ns away: no new signal.
    msr(&mut pmu, PmuReg::Pmovsclr, CYCLE_BIT);
    let signals = SIGTRAPS.load(Ordering::SeqCst);
    burn();
    assert!(!pmu.irq_level());
    assert!(SIGTRAPS.load(Ordering::SeqCst) <= signals + 1, "no stream of signals after the re-arm");
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
