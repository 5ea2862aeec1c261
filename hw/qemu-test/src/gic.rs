//! Just enough GICv3 (QEMU virt, `gic-version=3`, one CPU) to take the physical PMU interrupt,
//! PPI INTID 23, at EL2 while a guest runs (`HCR_EL2.IMO`).

use core::arch::asm;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

use crate::vm::Vcpu;

const GICD: usize = 0x0800_0000;
/// CPU 0's redistributor: RD_base, then SGI_base 64 KiB above.
const GICR: usize = 0x080a_0000;
const SGI_BASE: usize = GICR + 0x1_0000;
/// The PMU's PPI on QEMU's virt machine.
pub const PMU_INTID: u32 = 23;

fn rd(a: usize) -> u32 {
    // SAFETY: a GICv3 register of QEMU virt; MMIO with the MMU off (Device memory).
    unsafe { (a as *const u32).read_volatile() }
}
fn wr(a: usize, v: u32) {
    // SAFETY: as above.
    unsafe { (a as *mut u32).write_volatile(v) }
}

/// Distributor (affinity routing, group 1), this CPU's redistributor awake with PPI 23 in
/// group 1 and enabled, the system register CPU interface at EL2, and `HCR_EL2.IMO`.
pub fn init() -> bool {
    wr(GICD, rd(GICD) | 1 << 4 | 1 << 1 | 1);
    while rd(GICD) & 1 << 31 != 0 {}
    wr(GICR + 0x14, rd(GICR + 0x14) & !(1 << 1));
    let mut spins = 0u32;
    while rd(GICR + 0x14) & 1 << 2 != 0 {
        spins += 1;
        if spins > 1_000_000 {
            return false;
        }
    }
    wr(SGI_BASE + 0x80, rd(SGI_BASE + 0x80) | 1 << PMU_INTID);
    wr(SGI_BASE + 0x100, 1 << PMU_INTID);
    // SAFETY: the GICv3 CPU interface and HCR_EL2 at EL2: interrupt routing only.
    unsafe {
        asm!(
            "mrs {t}, icc_sre_el2",
            "orr {t}, {t}, #0xf",
            "msr icc_sre_el2, {t}",
            "isb",
            "mov {t}, #0xff",
            "msr icc_pmr_el1, {t}",
            "msr icc_ctlr_el1, xzr",
            "mov {t}, #1",
            "msr icc_igrpen1_el1, {t}",
            "mrs {t}, hcr_el2",
            "orr {t}, {t}, #(1 << 4)",
            "msr hcr_el2, {t}",
            "isb",
            t = out(reg) _,
            options(nomem, nostack),
        );
    }
    true
}

/// The vCPU the next guest run belongs to, for the interrupt handler.
static CURRENT: AtomicPtr<Vcpu> = AtomicPtr::new(core::ptr::null_mut());
/// PMU interrupts taken.
pub static PMU_IRQS: AtomicU32 = AtomicU32::new(0);
/// Other interrupts taken.
pub static OTHER_IRQS: AtomicU32 = AtomicU32::new(0);
/// Physical `PMCCNTR_EL0` at the last PMU interrupt's entry: cycles since its wrap.
pub static LATENCY: AtomicU64 = AtomicU64::new(0);

/// Runs `f` with `v` as the vCPU the PMU interrupt handler serves.
pub fn with_current(v: &mut Vcpu, f: impl FnOnce(&mut Vcpu)) {
    CURRENT.store(v, Ordering::SeqCst);
    f(v);
    CURRENT.store(core::ptr::null_mut(), Ordering::SeqCst);
}

#[no_mangle]
extern "C" fn el2_irq() {
    let intid: u64;
    // SAFETY: acknowledging the highest priority pending interrupt at EL2.
    unsafe { asm!("mrs {}, icc_iar1_el1", out(reg) intid, options(nomem, nostack)) };
    if intid >= 1020 {
        return;
    }
    if intid == u64::from(PMU_INTID) {
        PMU_IRQS.fetch_add(1, Ordering::SeqCst);
        use vpmu_hw::PmuRegs;
        LATENCY.store(vpmu_hw::SysRegs::new().read_pmccntr(), Ordering::SeqCst);
        let v = CURRENT.load(Ordering::SeqCst);
        if !v.is_null() {
            // SAFETY: `with_current` set it from a live `&mut Vcpu` whose owner is suspended
            // in the guest run this interrupt preempted; nothing else uses it meanwhile.
            unsafe { (*v).handle_overflows() };
        }
    } else {
        OTHER_IRQS.fetch_add(1, Ordering::SeqCst);
    }
    // SAFETY: end of interrupt (EOImode 0: priority drop and deactivation).
    unsafe { asm!("msr icc_eoir1_el1, {}", in(reg) intid, options(nomem, nostack)) };
}
