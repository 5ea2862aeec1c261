//! The checks. PMU register writes and reads below all trap to the hypervisor and are
//! emulated by vpmu; the values are the architecture's.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use baremetal::psci;

use crate::arch::{self, mrs, msr, El0};
use crate::check;

pub(crate) const PMU_PPI: u64 = 23;
const TIMER_PPI: u64 = 27;
const SGI: u64 = 1;
const GICR_BASE: usize = 0x080a_0000;
const GICR_STRIDE: usize = 0x2_0000;

const EC_UNKNOWN: u64 = 0x00;
const EC_SYS64: u64 = 0x18;
const IL: u64 = 1 << 25;

/// Per-CPU interrupt records, indexed by CPU: count, last INTID, PMOVSSET and counter 3
/// seen by the PMU handler.
pub(crate) static IRQS: [AtomicU32; 2] = [AtomicU32::new(0), AtomicU32::new(0)];
/// INTIDs below 32 seen, per CPU.
static SEEN: [AtomicU32; 2] = [AtomicU32::new(0), AtomicU32::new(0)];
pub(crate) static LAST_INTID: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
pub(crate) static OVS_SEEN: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
static CNT_SEEN: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
/// CPU 1's progress: 1 = up, 2 = checks done, waiting for the SGI, 3 = SGI seen.
static STAGE: AtomicU32 = AtomicU32::new(0);

/// What a 32-bit overflow leaves in an event counter: 64-bit counters from PMUv3p5 on
/// (`PMCR.LP` only moves the overflow), 32-bit before.
pub(crate) fn wrapped() -> u64 {
    if (mrs!("id_aa64dfr0_el1") >> 8) & 0xf >= 6 {
        1 << 32
    } else {
        0
    }
}

fn cpu() -> usize {
    (mrs!("mpidr_el1") & 1) as usize
}

/// ESR of a trapped AArch64 system register access.
const fn sys_esr(op0: u64, op1: u64, crn: u64, crm: u64, op2: u64, rt: u64, read: bool) -> u64 {
    (EC_SYS64 << 26) | IL | (op0 << 20) | (op2 << 17) | (op1 << 14) | (crn << 10) | (rt << 5) | (crm << 1) | read as u64
}

/// The PMU's interrupt handler (and the timer's, and the SGI's).
pub fn irq() {
    let c = cpu();
    let iar = mrs!("icc_iar1_el1");
    let intid = iar & 0xff_ffff;
    if intid >= 1020 {
        return;
    }
    LAST_INTID[c].store(intid, Ordering::Relaxed);
    if intid < 32 {
        SEEN[c].fetch_or(1 << intid, Ordering::Relaxed);
    }
    match intid {
        PMU_PPI => {
            let ovs = mrs!("pmovsset_el0");
            OVS_SEEN[c].store(ovs, Ordering::Relaxed);
            CNT_SEEN[c].store(mrs!("pmevcntr3_el0"), Ordering::Relaxed);
            msr!("pmovsclr_el0", ovs);
        }
        TIMER_PPI => msr!("cntv_ctl_el0", 0b10), // masked
        SGI => STAGE.store(3, Ordering::Release),
        _ => {}
    }
    IRQS[c].fetch_add(1, Ordering::Release);
    msr!("icc_eoir1_el1", iar);
}

pub(crate) fn gic_cpu_on() {
    msr!("icc_pmr_el1", 0xff);
    msr!("icc_igrpen1_el1", 1);
}

/// Waits until `done()` or `ms` milliseconds of virtual time have passed.
fn wait_until(ms: u64, done: impl Fn() -> bool) -> bool {
    let deadline = mrs!("cntvct_el0") + mrs!("cntfrq_el0") / 1000 * ms;
    while mrs!("cntvct_el0") < deadline {
        if done() {
            return true;
        }
        // YIELD, not a busy spin: under -icount QEMU runs the vCPUs round-robin, each until
        // the next timer deadline; a yield hands the slice to the other vCPU.
        arch::yield_cpu();
    }
    done()
}

pub(crate) fn wait_irqs(c: usize, n: u32) -> bool {
    wait_until(500, || IRQS[c].load(Ordering::Acquire) >= n)
}

/// The overflow interrupt: counter 3 counts SW_INCR from 0xffff_ffff, one PMSWINC wraps it.
fn overflow_irq(name: &str) {
    let c = cpu();
    gic_cpu_on();
    msr!("pmcr_el0", 1 | (1 << 1)); // E, P (reset event counters)
    msr!("pmevtyper3_el0", 0x00); // SW_INCR
    msr!("pmevcntr3_el0", 0xffff_ffff);
    msr!("pmovsclr_el0", u64::from(u32::MAX));
    msr!("pmintenset_el1", 1 << 3);
    msr!("pmcntenset_el0", 1 << 3);
    IRQS[c].store(0, Ordering::Relaxed);
    arch::irq_on();
    msr!("pmswinc_el0", 1 << 3);
    let got = wait_irqs(c, 1);
    // No second interrupt once PMOVSCLR cleared the flag.
    wait_until(1, || false);
    arch::irq_off();
    let (n, id, ovs, cnt) = (
        IRQS[c].load(Ordering::Relaxed),
        LAST_INTID[c].load(Ordering::Relaxed),
        OVS_SEEN[c].load(Ordering::Relaxed),
        CNT_SEEN[c].load(Ordering::Relaxed),
    );
    let after = mrs!("pmovsset_el0");
    check(
        name,
        got && n == 1 && id == PMU_PPI && ovs == 1 << 3 && cnt == wrapped() && after == 0,
        format_args!("interrupts {n}, INTID {id}, PMOVSSET {ovs:#x} in the handler, counter {cnt:#x}, PMOVSSET after {after:#x}"),
    );
    msr!("pmintenclr_el1", u64::from(u32::MAX));
    msr!("pmcntenclr_el0", u64::from(u32::MAX));
}

/// The hardware-mapped path: the virtual timer's PPI, forwarded by the hypervisor.
fn timer_irq(name: &str) {
    let c = cpu();
    gic_cpu_on();
    let sgi_base = GICR_BASE + c * GICR_STRIDE + 0x1_0000;
    arch::mmio_write(sgi_base + 0x80, u32::MAX); // IGROUPR0: all group 1
    arch::mmio_write(sgi_base + 0x100, (1 << TIMER_PPI) | (1 << SGI)); // ISENABLER0
    IRQS[c].store(0, Ordering::Relaxed);
    LAST_INTID[c].store(0, Ordering::Relaxed);
    msr!("cntv_tval_el0", 100);
    msr!("cntv_ctl_el0", 1);
    arch::irq_on();
    let got = wait_irqs(c, 1);
    arch::irq_off();
    let id = LAST_INTID[c].load(Ordering::Relaxed);
    check(name, got && id == TIMER_PPI, format_args!("INTID {id}"));
    msr!("cntv_ctl_el0", 0);
}

/// More interrupts at once than list registers: six SGIs to itself while IRQs are masked.
/// The hypervisor fills its 4 list registers, queues the rest and refills from the
/// maintenance interrupt as the guest handles them: all six arrive, once each.
fn lr_queue() {
    let sgi_base = GICR_BASE + 0x1_0000;
    arch::mmio_write(sgi_base + 0x80, u32::MAX); // IGROUPR0: all group 1
    arch::mmio_write(sgi_base + 0x100, 0xfc); // ISENABLER0: SGIs 2..=7
    gic_cpu_on();
    IRQS[0].store(0, Ordering::Relaxed);
    SEEN[0].store(0, Ordering::Relaxed);
    for sgi in 2..=7u64 {
        msr!("icc_sgi1r_el1", (sgi << 24) | 1); // to CPU 0 (Aff0 = 0): itself
    }
    arch::irq_on();
    let got = wait_irqs(0, 6);
    wait_until(1, || false);
    arch::irq_off();
    let (n, seen) = (IRQS[0].load(Ordering::Relaxed), SEEN[0].load(Ordering::Relaxed));
    check("lr-queue", got && n == 6 && seen == 0xfc, format_args!("interrupts {n}, SGIs seen {seen:#x}"));
}

pub fn cpu0() {
    if cfg!(feature = "measure-only") {
        return measure();
    }
    let pmcr = mrs!("pmcr_el0");
    let n = (pmcr >> 11) & 0x1f;
    check("pmcr-n", n == 6, format_args!("PMCR_EL0 {pmcr:#x}, N {n}"));

    // UNDEFINED for PMEVCNTR<n>_EL0, n >= N.
    arch::take_exception();
    let (v, at) = arch::pmevcntr6();
    let (esr, elr, k) = arch::take_exception();
    check(
        "undef-pmevcntr-n",
        k == 1 && esr == IL | (EC_UNKNOWN << 26) && elr == at && v == 0x5a5a,
        format_args!("exceptions {k}, ESR_EL1 {esr:#x}, ELR_EL1 {elr:#x} (MRS at {at:#x})"),
    );

    // SW_INCR.
    msr!("pmcr_el0", 1 | (1 << 1));
    msr!("pmevtyper0_el0", 0x00);
    msr!("pmevcntr0_el0", 0);
    msr!("pmcntenset_el0", 1);
    for _ in 0..3 {
        msr!("pmswinc_el0", 1);
    }
    msr!("pmswinc_el0", 1 << 4); // counter 4 is disabled: nothing
    let c0 = mrs!("pmevcntr0_el0");
    let c4 = mrs!("pmevcntr4_el0");
    check("sw-incr", c0 == 3 && c4 == 0, format_args!("PMEVCNTR0 {c0}, PMEVCNTR4 {c4}"));

    // PMSELR + PMXEVTYPER/PMXEVCNTR alias PMEVTYPER2/PMEVCNTR2.
    msr!("pmselr_el0", 2);
    msr!("pmxevtyper_el0", 0x11);
    msr!("pmxevcntr_el0", 0x1234);
    let (t2, c2) = (mrs!("pmevtyper2_el0"), mrs!("pmevcntr2_el0"));
    msr!("pmevcntr2_el0", 7);
    let x = mrs!("pmxevcntr_el0");
    let sel = mrs!("pmselr_el0");
    check(
        "pmselr-pmxevcntr",
        t2 == 0x11 && c2 == 0x1234 && x == 7 && sel == 2,
        format_args!("PMEVTYPER2 {t2:#x}, PMEVCNTR2 {c2:#x}, PMXEVCNTR {x}, PMSELR {sel}"),
    );

    // A CHAINed pair: counter 0 (SW_INCR) wraps at 32 bits, counter 1 (CHAIN) takes the carry.
    msr!("pmcr_el0", 1 | (1 << 1)); // LP = 0: 32-bit event counters
    msr!("pmovsclr_el0", u64::from(u32::MAX));
    msr!("pmevtyper0_el0", 0x00);
    msr!("pmevtyper1_el0", 0x1e);
    msr!("pmevcntr0_el0", 0xffff_fffe);
    msr!("pmevcntr1_el0", 5);
    msr!("pmcntenset_el0", 0b11);
    msr!("pmswinc_el0", 1);
    let (a0, a1) = (mrs!("pmevcntr0_el0"), mrs!("pmevcntr1_el0"));
    msr!("pmswinc_el0", 1);
    let (b0, b1) = (mrs!("pmevcntr0_el0"), mrs!("pmevcntr1_el0"));
    let ovs = mrs!("pmovsset_el0");
    check(
        "chain",
        a0 == 0xffff_ffff && a1 == 5 && b0 == wrapped() && b1 == 6 && ovs & 1 == 1 && ovs & 2 == 0,
        format_args!("after 1: {a1}:{a0:#x}, after 2: {b1}:{b0:#x}, PMOVSSET {ovs:#x}"),
    );
    msr!("pmcntenclr_el0", u64::from(u32::MAX));
    msr!("pmovsclr_el0", u64::from(u32::MAX));

    el0_checks();
    overflow_irq("overflow-irq");
    timer_irq("timer-irq");
    lr_queue();
    exact_checks();
    measure();
    smp();
}

/// The figure: instructions per trapped PMU access (trap entry, vpmu, return), from virtual
/// time. Meaningful under `-icount shift=0` only, where one instruction is one nanosecond and
/// `CNTVCT_EL0` (62.5 MHz) ticks every 16 instructions.
fn measure() {
    const N: u64 = 20_000;
    let freq = mrs!("cntfrq_el0");
    let ns_per_tick = 1_000_000_000 / freq.max(1);
    let base = arch::time(arch::Timed::Nop, N);
    for (name, t) in [("MRS PMCCNTR_EL0", arch::Timed::MrsPmccntr), ("MSR PMCR_EL0", arch::Timed::MsrPmcr(mrs!("pmcr_el0")))] {
        let ticks = arch::time(t, N);
        // Per iteration the trapped access replaces the NOP (QEMU's icount counts an
        // instruction that traps as executed): the difference is what EL2 executed.
        let milli = (ticks.saturating_sub(base) * ns_per_tick * 1000) / N;
        crate::gprintln!("measure {name}: {}.{:03} instructions at EL2 per trapped access (icount)", milli / 1000, milli % 1000);
    }
}

/// EL0 accesses under each PMUSERENR_EL0 setting.
fn el0_checks() {
    let ccnt_r = sys_esr(3, 3, 9, 13, 0, 0, true);
    let evcnt0_r = sys_esr(3, 3, 14, 8, 0, 0, true);
    let evcnt0_w = sys_esr(3, 3, 14, 8, 0, 1, false);
    let swinc_w = sys_esr(3, 3, 9, 12, 4, 1, false);
    let pmcr_r = sys_esr(3, 3, 9, 12, 0, 0, true);
    msr!("pmcr_el0", 1 | (1 << 1));
    msr!("pmevtyper0_el0", 0x00);
    msr!("pmcntenset_el0", 1);
    // (name, PMUSERENR, probe, expected trap ESR or 0 for allowed)
    let cases: [(&str, u64, El0, u64); 11] = [
        ("el0-denied-pmccntr", 0, El0::ReadPmccntr, ccnt_r),
        ("el0-denied-pmevcntr", 0, El0::ReadPmevcntr0, evcnt0_r),
        ("el0-denied-pmswinc", 0, El0::WritePmswinc, swinc_w),
        ("el0-en-pmcr", 1, El0::ReadPmcr, 0),
        ("el0-en-pmevcntr-write", 1, El0::WritePmevcntr0, 0),
        ("el0-sw-pmswinc", 1 << 1, El0::WritePmswinc, 0),
        ("el0-sw-pmccntr", 1 << 1, El0::ReadPmccntr, ccnt_r),
        ("el0-cr-pmccntr", 1 << 2, El0::ReadPmccntr, 0),
        ("el0-cr-pmevcntr", 1 << 2, El0::ReadPmevcntr0, evcnt0_r),
        ("el0-er-pmevcntr", 1 << 3, El0::ReadPmevcntr0, 0),
        ("el0-er-pmevcntr-write", 1 << 3, El0::WritePmevcntr0, evcnt0_w),
    ];
    for (name, userenr, probe, want) in cases {
        msr!("pmuserenr_el0", userenr);
        msr!("pmevcntr0_el0", 42);
        arch::take_exception();
        let (x0, at) = arch::el0(probe);
        let (esr, elr, k) = arch::take_exception();
        let c0 = mrs!("pmevcntr0_el0");
        let ok = if want == 0 {
            // Allowed: no exception, and the access took effect.
            k == 0
                && match probe {
                    El0::ReadPmcr => (x0 >> 11) & 0x1f == 6,
                    El0::ReadPmevcntr0 => x0 == 42,
                    El0::WritePmevcntr0 => c0 == 77,
                    El0::WritePmswinc => c0 == 43,
                    El0::ReadPmccntr => x0 != 0x5a5a,
                }
        } else {
            k == 1 && esr == want && elr == at && c0 == 42
        };
        check(
            name,
            ok,
            format_args!(
                "PMUSERENR {userenr:#x}: exceptions {k}, ESR_EL1 {esr:#x} (want {want:#x}), ELR_EL1 {elr:#x}, x0 {x0:#x}, PMEVCNTR0 {c0}"
            ),
        );
        let _ = pmcr_r;
    }
    msr!("pmuserenr_el0", 0);
    msr!("pmcntenclr_el0", u64::from(u32::MAX));
}

/// Checks that need a backend that counts (vpmu-hw): enabled with the `exact` feature.
fn exact_checks() {
    #[cfg(feature = "exact")]
    crate::exact::run();
}

fn smp() {
    // CPU 1, if the machine has one.
    let r = psci::call(psci::CPU_ON_64, 1, arch::secondary_entry(), 1);
    if r != 0 {
        crate::gprintln!("1 CPU (CPU_ON returned {:#x})", r);
        return;
    }
    let up = wait_until(3000, || STAGE.load(Ordering::Acquire) >= 2);
    check("cpu1-up", up, format_args!("stage {}", STAGE.load(Ordering::Relaxed)));
    // CPU 1 wrote its PMEVCNTR0 and PMSELR: CPU 0's are its own.
    msr!("pmselr_el0", 4);
    msr!("pmevcntr0_el0", 0x0c0);
    STAGE.store(4, Ordering::Release);
    // An SGI to CPU 1 (ICC_SGI1R_EL1: INTID 1, target list bit 1, Aff1..3 = 0).
    msr!("icc_sgi1r_el1", (SGI << 24) | 0b10);
    let seen = wait_until(3000, || STAGE.load(Ordering::Acquire) == 5);
    check("sgi-to-cpu1", seen, format_args!("stage {}", STAGE.load(Ordering::Relaxed)));
    let (sel, c0) = (mrs!("pmselr_el0"), mrs!("pmevcntr0_el0"));
    check("cpu0-pmu-private", sel == 4 && c0 == 0x0c0, format_args!("CPU 0 PMSELR {sel}, PMEVCNTR0 {c0:#x}"));
}

pub fn cpu1(_ctx: u64) {
    STAGE.store(1, Ordering::Release);
    let pmcr = mrs!("pmcr_el0");
    check("cpu1-pmcr-reset", pmcr & 1 == 0, format_args!("CPU 1 PMCR_EL0 {pmcr:#x} while CPU 0's has E set"));
    overflow_irq("cpu1-overflow-irq");
    timer_irq("cpu1-timer-irq");
    msr!("pmselr_el0", 3);
    msr!("pmevcntr0_el0", 0xc1);
    STAGE.store(2, Ordering::Release);
    while STAGE.load(Ordering::Acquire) < 4 {
        arch::yield_cpu();
    }
    // Wait for CPU 0's SGI.
    gic_cpu_on();
    IRQS[1].store(0, Ordering::Relaxed);
    LAST_INTID[1].store(0, Ordering::Relaxed);
    arch::irq_on();
    let got = wait_irqs(1, 1);
    arch::irq_off();
    let id = LAST_INTID[1].load(Ordering::Relaxed);
    let (sel, c0) = (mrs!("pmselr_el0"), mrs!("pmevcntr0_el0"));
    check("cpu1-sgi", got && id == SGI, format_args!("INTID {id}"));
    check("cpu1-pmu-private", sel == 3 && c0 == 0xc1, format_args!("CPU 1 PMSELR {sel}, PMEVCNTR0 {c0:#x}"));
    STAGE.store(5, Ordering::Release);
}
