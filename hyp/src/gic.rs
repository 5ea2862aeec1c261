//! GICv3 with every physical interrupt taken at EL2 (`HCR_EL2.IMO`/`FMO`) and delivered to
//! the guest through the list registers: hardware-mapped (the guest's EOI deactivates the
//! physical interrupt) for SPIs and PPIs, purely virtual for SGIs and for the vPMU's PPI.

use crate::mmio::{read32, write32, GICD_BASE, GICR_BASE, GICR_STRIDE};
use crate::sysreg::{isb, mrs, msr, read_lr, write_lr};

/// The PMU's PPI on QEMU virt (the DT's PMU interrupt): physical and virtual.
pub const PMU_PPI: u32 = 23;
/// The GIC's maintenance interrupt (the list registers have drained).
pub const MAINT_PPI: u32 = 25;
/// The first special INTID: 1020..=1023 are not interrupts.
pub const SPURIOUS: u32 = 1020;
/// The priority virtual interrupts are given (Linux's default priority).
const VPRIO: u64 = 0xa0;

const LR_STATE_SHIFT: u32 = 62;
const LR_PENDING: u64 = 1 << LR_STATE_SHIFT;
const LR_ACTIVE: u64 = 2 << LR_STATE_SHIFT;
const LR_HW: u64 = 1 << 61;
const LR_GROUP1: u64 = 1 << 60;
const LR_PRIO_SHIFT: u32 = 48;
const LR_PINTID_SHIFT: u32 = 32;

/// Number of list registers.
pub fn lr_count() -> usize {
    (mrs!("ich_vtr_el2") & 0x1f) as usize + 1
}

/// Per-CPU set-up of the physical CPU interface and the virtual interface.
pub fn init_cpu(cpu: usize) {
    msr!("icc_sre_el2", mrs!("icc_sre_el2") | 0xf);
    isb();
    msr!("icc_pmr_el1", 0xff);
    msr!("icc_ctlr_el1", mrs!("icc_ctlr_el1") | 0b10); // EOImode: EOIR drops priority only
    msr!("icc_igrpen1_el1", 1);
    msr!("ich_vmcr_el2", 0);
    msr!("ich_hcr_el2", 1);
    for n in 0..lr_count() {
        write_lr(n, 0);
    }
    isb();
    // The physical PMU's PPI must reach EL2 even before the guest's own GIC driver runs
    // (our bare-metal guests never touch the distributor). Linux later reprograms all this.
    let gicr = GICR_BASE + cpu * GICR_STRIDE;
    let waker = gicr + 0x14;
    write32(waker, read32(waker) & !(1 << 1));
    while read32(waker) & (1 << 2) != 0 {
        core::hint::spin_loop();
    }
    let sgi = gicr + 0x1_0000;
    write32(sgi + 0x80, read32(sgi + 0x80) | (1 << PMU_PPI)); // IGROUPR0: group 1
    let prio = sgi + 0x400 + (PMU_PPI as usize & !3);
    let shift = (PMU_PPI % 4) * 8;
    write32(prio, (read32(prio) & !(0xff << shift)) | (0xa0 << shift));
    write32(sgi + 0x100, 1 << PMU_PPI); // ISENABLER0
    if cpu == 0 {
        // GICD_CTLR: affinity routing, group 1 enabled (QEMU's virt GIC has DS = 1).
        write32(GICD_BASE, read32(GICD_BASE) | (1 << 4) | (1 << 1));
    }
}

/// Asks for the maintenance interrupt when the list registers drain (`ICH_HCR_EL2.UIE`: at
/// most one valid entry left), or stops asking. The guest's GIC driver disables the PPIs it
/// does not use, so the PPI is enabled again here, on this CPU's redistributor, each time.
pub fn underflow_irq(cpu: usize, on: bool) {
    if on {
        let sgi = GICR_BASE + cpu * GICR_STRIDE + 0x1_0000;
        write32(sgi + 0x80, read32(sgi + 0x80) | (1 << MAINT_PPI));
        write32(sgi + 0x100, 1 << MAINT_PPI);
    }
    msr!("ich_hcr_el2", 1 | (u64::from(on) << 1));
}

/// Acknowledges the highest-priority pending physical interrupt: its `ICC_IAR1_EL1` value
/// (≥ [`SPURIOUS`] if none), after dropping its priority.
pub fn ack() -> u32 {
    let iar = mrs!("icc_iar1_el1") as u32;
    if iar & 0xff_ffff < SPURIOUS {
        msr!("icc_eoir1_el1", u64::from(iar));
    }
    iar & 0xff_ffff
}

/// Deactivates a physical interrupt the hypervisor consumed itself.
pub fn deactivate(intid: u32) {
    msr!("icc_dir_el1", u64::from(intid));
}

/// Replays a guest's `ICC_SGI1R_EL1` (or `ICC_ASGI1R_EL1`/`ICC_SGI0R_EL1`) write.
pub fn send_sgi(op2: u32, value: u64) {
    match op2 {
        5 => msr!("icc_sgi1r_el1", value),
        6 => msr!("icc_asgi1r_el1", value),
        _ => msr!("icc_sgi0r_el1", value),
    }
    isb();
}

fn free_lr() -> Option<usize> {
    let free = mrs!("ich_elrsr_el2");
    (0..lr_count()).find(|&n| free & (1 << n) != 0)
}

fn find_lr(vintid: u32) -> Option<usize> {
    let free = mrs!("ich_elrsr_el2");
    (0..lr_count()).find(|&n| free & (1 << n) == 0 && read_lr(n) as u32 == vintid)
}

/// Makes `vintid` pending in the guest. `hw`: the physical interrupt of the same number is
/// active and the guest's deactivation deactivates it. False if no list register was free.
pub fn inject(vintid: u32, hw: bool) -> bool {
    if !hw {
        if let Some(n) = find_lr(vintid) {
            write_lr(n, read_lr(n) | LR_PENDING);
            return true;
        }
    }
    let Some(n) = free_lr() else { return false };
    let mut lr = LR_PENDING | LR_GROUP1 | (VPRIO << LR_PRIO_SHIFT) | u64::from(vintid);
    if hw {
        lr |= LR_HW | (u64::from(vintid) << LR_PINTID_SHIFT);
    }
    write_lr(n, lr);
    true
}

/// Drives the level of a purely virtual, level-sensitive interrupt: pending while `level` is
/// high; withdrawn (its pending state cleared) when it falls. Returns true when it was made
/// pending by this call.
pub fn set_level(vintid: u32, level: bool) -> bool {
    match (find_lr(vintid), level) {
        (Some(n), true) => {
            let lr = read_lr(n);
            if lr & LR_PENDING == 0 && lr & LR_ACTIVE == 0 {
                write_lr(n, lr | LR_PENDING);
                return true;
            }
            // Active (being handled): the guest's EOI ends it; a still-high level is
            // re-asserted at the next evaluation.
            false
        }
        (Some(n), false) => {
            write_lr(n, read_lr(n) & !LR_PENDING);
            false
        }
        (None, true) => inject(vintid, false),
        (None, false) => false,
    }
}
