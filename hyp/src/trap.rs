//! Exceptions taken to EL2 from the guest: trapped system register accesses (the PMU, the
//! guest's SGIs), SMCs (PSCI), HVCs, and physical interrupts.

use core::sync::atomic::{AtomicU64, Ordering};

use baremetal::psci;

use crate::boot::MAX_CPUS;
use crate::gic;
use crate::percpu::{self, bump};
use crate::sysreg::{mrs, msr};
use crate::vm::{self, Access};

/// The guest's registers as the vectors save them.
#[repr(C)]
pub struct Frame {
    /// X0–X30.
    pub x: [u64; 31],
    /// `ELR_EL2`: where the guest resumes.
    pub elr: u64,
    /// `SPSR_EL2`: the guest's PSTATE.
    pub spsr: u64,
    _pad: u64,
}

const EC_SHIFT: u32 = 26;
const EC_UNKNOWN: u64 = 0x00;
const EC_HVC64: u64 = 0x16;
const EC_SMC64: u64 = 0x17;
const EC_SYS64: u64 = 0x18;
const EC_CP15_32: u64 = 0x03;
const EC_CP15_64: u64 = 0x04;
const IL: u64 = 1 << 25;

/// The entry points and contexts the guest asked `CPU_ON` for, by CPU.
pub static SECONDARY: [(AtomicU64, AtomicU64); MAX_CPUS] = {
    #[allow(clippy::declare_interior_mutable_const)]
    const E: (AtomicU64, AtomicU64) = (AtomicU64::new(0), AtomicU64::new(0));
    [E; MAX_CPUS]
};

/// A synchronous exception from the guest.
#[no_mangle]
extern "C" fn lower_sync(f: &mut Frame, _kind: u64) {
    let esr = mrs!("esr_el2");
    #[cfg(feature = "null-trap")]
    if (esr >> EC_SHIFT) & 0x3f == EC_SYS64 && (esr >> 10) & 0xf == 9 {
        f.elr = f.elr.wrapping_add(4);
        return;
    }
    match (esr >> EC_SHIFT) & 0x3f {
        EC_SYS64 | EC_CP15_32 | EC_CP15_64 => sysreg(f, esr),
        EC_SMC64 => {
            smc(f);
            f.elr = f.elr.wrapping_add(4);
        }
        // No hypervisor calls: SMCCC "not supported". ELR_EL2 already points past the HVC.
        EC_HVC64 => f.x[0] = u64::MAX,
        ec => {
            crate::hprintln!("unexpected exception EC {ec:#x} ESR {esr:#x} at {:#x}: UNDEFINED", f.elr);
            inject(f, IL | (EC_UNKNOWN << EC_SHIFT));
        }
    }
}

fn sysreg(f: &mut Frame, esr: u64) {
    let pc = percpu::this();
    let stats = percpu::stats(pc.cpu);
    let Some(pmu) = pc.pmu.as_mut() else { return inject(f, IL) };
    match vm::handle_sysreg(pmu, esr, f.spsr, f) {
        Access::Done(slot) => {
            bump(&stats.regs[slot]);
            f.elr = f.elr.wrapping_add(if esr & IL != 0 { 4 } else { 2 });
        }
        Access::Undefined(slot) => {
            bump(&stats.regs[slot]);
            bump(&stats.undef);
            inject(f, IL);
        }
        Access::TrapToEl1(slot) => {
            bump(&stats.regs[slot]);
            bump(&stats.el1_traps);
            // The same syndrome: EC 0x18 with the access's ISS.
            inject(f, esr & 0xffff_ffff);
        }
        Access::NotPmu => {
            let (op0, op2, op1, crn, rt, crm, read) =
                ((esr >> 20) & 3, (esr >> 17) & 7, (esr >> 14) & 7, (esr >> 10) & 0xf, (esr >> 5) & 0x1f, (esr >> 1) & 0xf, esr & 1);
            // ICC_SGI1R_EL1 / ICC_ASGI1R_EL1 / ICC_SGI0R_EL1 writes (trapped because of IMO/FMO).
            let a64 = (esr >> EC_SHIFT) & 0x3f == EC_SYS64;
            if a64 && op0 == 3 && op1 == 0 && crn == 12 && crm == 11 && (5..=7).contains(&op2) && read == 0 {
                let v = if rt == 31 { 0 } else { f.x[rt as usize] };
                gic::send_sgi(op2 as u32, v);
                bump(&stats.sgis);
                f.elr = f.elr.wrapping_add(4);
            } else {
                crate::hprintln!("unhandled system register access ESR {esr:#x} at {:#x}: UNDEFINED", f.elr);
                bump(&stats.undef);
                inject(f, IL);
            }
        }
    }
    flush(pc);
    update_virq(pc);
}

/// Raises or withdraws the vCPU's PMU interrupt from `irq_level()`.
fn update_virq(pc: &mut percpu::PerCpu) {
    let Some(pmu) = pc.pmu.as_mut() else { return };
    let level = vm::irq_level(pmu);
    // Low and already low: no list register to look at (the common case of a trap).
    if (level || pc.virq) && gic::set_level(gic::PMU_PPI, level) {
        bump(&percpu::stats(pc.cpu).pmu_irqs_injected);
    }
    pc.virq = level;
}

/// Takes a synchronous exception to the guest's EL1 with syndrome `esr`, as the hardware
/// would: `ESR_EL1`, `ELR_EL1` (the instruction), `SPSR_EL1`, then EL1h with DAIF masked at
/// the vector for the exception's origin.
fn inject(f: &mut Frame, esr: u64) {
    let from_el0 = (f.spsr >> 2) & 3 == 0;
    let offset = if f.spsr & (1 << 4) != 0 {
        0x600 // from AArch32 (EL0)
    } else if from_el0 {
        0x400
    } else if f.spsr & 1 == 1 {
        0x200
    } else {
        0
    };
    msr!("esr_el1", esr);
    msr!("elr_el1", f.elr);
    msr!("spsr_el1", f.spsr);
    let mut spsr = crate::boot::GUEST_SPSR;
    // PSTATE.PAN is set on exception entry when FEAT_PAN exists and SCTLR_EL1.SPAN is 0.
    if (mrs!("id_aa64mmfr1_el1") >> 20) & 0xf != 0 && mrs!("sctlr_el1") & (1 << 23) == 0 {
        spsr |= 1 << 22;
    }
    f.elr = mrs!("vbar_el1").wrapping_add(offset);
    f.spsr = spsr;
}

fn smc(f: &mut Frame) {
    let fid = f.x[0] as u32;
    match fid {
        psci::CPU_ON_64 | psci::CPU_ON_32 => {
            let target = f.x[1];
            let cpu = (target & 0xff) as usize;
            let Some(slot) = SECONDARY.get(cpu) else {
                f.x[0] = psci::INVALID_PARAMETERS;
                return;
            };
            slot.0.store(f.x[2], Ordering::Relaxed);
            slot.1.store(f.x[3], Ordering::Release);
            // The secondary starts in the hypervisor, which sets up its EL2 and then enters
            // the guest at the requested address.
            let r = psci::smc([u64::from(fid), target, crate::boot::secondary_entry(), cpu as u64, 0, 0, 0, 0]);
            f.x[0] = r[0];
        }
        psci::SYSTEM_OFF | psci::SYSTEM_RESET => {
            crate::hprintln!("guest called PSCI {}", if fid == psci::SYSTEM_OFF { "SYSTEM_OFF" } else { "SYSTEM_RESET" });
            percpu::print_stats();
            forward(f);
        }
        _ => forward(f),
    }
}

fn forward(f: &mut Frame) {
    let r = psci::smc([f.x[0], f.x[1], f.x[2], f.x[3], f.x[4], f.x[5], f.x[6], f.x[7]]);
    f.x[..4].copy_from_slice(&r);
}

/// A physical IRQ (or FIQ) taken from the guest.
#[no_mangle]
extern "C" fn lower_irq(_f: &mut Frame, _kind: u64) {
    let pc = percpu::this();
    let stats = percpu::stats(pc.cpu);
    loop {
        let intid = gic::ack();
        if intid >= gic::SPURIOUS {
            break;
        }
        if intid == gic::PMU_PPI {
            // Never the guest's: its PMU interrupt is vpmu's irq_level().
            bump(&stats.pmu_irqs_physical);
            if let Some(pmu) = pc.pmu.as_mut() {
                vm::physical_pmu_interrupt(pmu);
            }
            gic::deactivate(intid);
        } else if intid == gic::MAINT_PPI {
            // The list registers drained: refill them now, which ends the (level) condition,
            // before the interrupt is deactivated.
            flush(pc);
            gic::deactivate(intid);
        } else {
            if intid < 16 {
                // SGIs cannot be hardware-mapped: deliver a virtual one, deactivate ours.
                gic::deactivate(intid);
            }
            deliver(pc, intid);
        }
    }
    flush(pc);
    update_virq(pc);
}

/// Delivers a physical interrupt to the guest: in a list register (hardware-mapped for
/// INTID ≥ 16), or queued until one is free (the physical interrupt stays active meanwhile).
fn deliver(pc: &mut percpu::PerCpu, intid: u32) {
    let stats = percpu::stats(pc.cpu);
    if pc.queued == 0 && gic::inject(intid, intid >= 16) {
        bump(&stats.forwarded);
    } else if intid < 128 {
        pc.queued |= 1 << intid;
        bump(&stats.queued);
        gic::underflow_irq(pc.cpu, true);
    } else {
        bump(&stats.lr_full);
        gic::deactivate(intid);
    }
}

/// Moves queued interrupts into free list registers, lowest INTID first.
fn flush(pc: &mut percpu::PerCpu) {
    if pc.queued == 0 {
        return;
    }
    let stats = percpu::stats(pc.cpu);
    while pc.queued != 0 {
        let intid = pc.queued.trailing_zeros();
        if !gic::inject(intid, intid >= 16) {
            return;
        }
        pc.queued &= !(1 << intid);
        bump(&stats.forwarded);
    }
    gic::underflow_irq(pc.cpu, false);
}

/// An exception taken from EL2 itself: a hypervisor bug.
#[no_mangle]
extern "C" fn el2_unexpected(f: &mut Frame, kind: u64) {
    crate::hprintln!("FATAL: EL2 exception, vector {kind}, ESR {:#x}, ELR {:#x}, FAR {:#x}", mrs!("esr_el2"), f.elr, mrs!("far_el2"));
    psci::system_off();
}
