//! vpmu-hyp: the smallest EL2 hypervisor that gives its guest vpmu's PMU.
//!
//! It boots at EL2 on QEMU's `virt` machine (`virtualization=on`, GICv3), passes everything
//! through to one EL1 guest (no stage 2: the guest owns RAM except what `/memreserve/` keeps
//! for the hypervisor) except the PMU: `MDCR_EL2.TPM`/`TPMCR` trap every PMU register access
//! to [`vm::handle_sysreg`], and the guest's PMU interrupt is a virtual one driven from
//! `Pmu::irq_level()` through the GICv3 list registers. One vCPU per physical CPU; PSCI
//! `CPU_ON` is redirected so every secondary sets up EL2 first.
//!
//! Boot parameters, optional, written by QEMU before reset with
//! `-device loader,addr=ADDR,data=VALUE,data-len=8` (see `run-linux.sh`):
//! - `0x40100000`: the guest image's address (default [`DEFAULT_IMAGE`]);
//! - `0x40100008`, `0x40100010`: the initrd's start and end (put in `/chosen`).

#![no_std]
#![no_main]

mod boot;
mod gic;
mod mmio;
mod percpu;
mod sysreg;
mod trap;
mod uart;
mod vm;

use core::sync::atomic::{AtomicBool, Ordering};

use baremetal::psci;
use vpmu_hyp::fdt;

use sysreg::{isb, mrs, msr};

/// Where the guest image is loaded unless the boot parameters say otherwise.
pub const DEFAULT_IMAGE: u64 = 0x4040_0000;
/// The boot parameter block.
const PARAMS: usize = 0x4010_0000;
/// The hypervisor's reserved memory (see `link.ld`).
const HYP_BASE: u64 = 0x4020_0000;
const HYP_SIZE: u64 = 0x20_0000;
/// QEMU's DTB.
const QEMU_DTB: usize = 0x4000_0000;
/// The room the guest's DTB gets at the top of RAM (reserved too).
const DTB_SLOT: u64 = 0x20_0000;

/// The VM-wide PMU configuration, set by CPU 0 before any secondary starts.
static mut VM_CONFIG: Option<vm::PmuConfig> = None;
static VM_CONFIG_SET: AtomicBool = AtomicBool::new(false);

fn vm_config() -> Option<vm::PmuConfig> {
    if !VM_CONFIG_SET.load(Ordering::Acquire) {
        return None;
    }
    // SAFETY: written once by CPU 0 before VM_CONFIG_SET was released; read-only after.
    unsafe { *core::ptr::addr_of!(VM_CONFIG) }
}

fn set_vm_config(cfg: vm::PmuConfig) {
    // SAFETY: CPU 0 writes it before the guest runs, so before any secondary exists.
    unsafe { *core::ptr::addr_of_mut!(VM_CONFIG) = Some(cfg) };
    VM_CONFIG_SET.store(true, Ordering::Release);
}

/// Every CPU's EL2 set-up: traps, timers, FP/SVE/SME access, identity registers, the GIC.
fn el2_setup(cpu: usize) {
    msr!("vbar_el2", boot::vectors());
    // RW: EL1 is AArch64. API/APK: no pointer-authentication traps. TSC: trap SMC (PSCI).
    // IMO/FMO: physical interrupts to EL2, virtual ones to the guest.
    msr!("hcr_el2", (1 << 31) | (1 << 41) | (1 << 40) | (1 << 19) | (1 << 4) | (1 << 3));
    // TPM | TPMCR trap every PMU access; HPMN = N gives the guest every counter; HPMD and
    // HCCD keep EL2 out of every count.
    msr!("mdcr_el2", vm::mdcr_el2());
    // EL0 PMU accesses must pass the EL1 check to reach EL2 (then vpmu applies the guest's
    // PMUSERENR). EN only: QEMU 7.2 lets an EL0 access that CR, ER or SW allow skip the
    // MDCR_EL2.TPM trap.
    msr!("pmuserenr_el0", 1);
    msr!("cnthctl_el2", 0b11);
    msr!("cntvoff_el2", 0);
    let pfr0 = mrs!("id_aa64pfr0_el1");
    let pfr1 = mrs!("id_aa64pfr1_el1");
    let sve = (pfr0 >> 32) & 0xf != 0;
    let sme = (pfr1 >> 24) & 0xf != 0;
    // CPTR_EL2: RES1 bits only, no FP/SVE/SME traps (bit 12, TSM, is RES1 without SME).
    msr!("cptr_el2", 0x22ff | if sme { 0 } else { 1 << 12 });
    isb();
    if sve {
        msr!("s3_4_c1_c2_0", 0xf); // ZCR_EL2.LEN
    }
    if sme {
        msr!("s3_4_c1_c2_6", (1 << 31) | 0xf); // SMCR_EL2: FA64, LEN
    }
    msr!("vpidr_el2", mrs!("midr_el1"));
    msr!("vmpidr_el2", mrs!("mpidr_el1"));
    msr!("sctlr_el1", 0x30d0_0800); // RES1 bits, MMU off
    gic::init_cpu(cpu);
    isb();
}

/// The Rust entry of every CPU: `primary` on CPU 0 (from `_start`), else a secondary started
/// through the redirected `CPU_ON`.
#[no_mangle]
extern "C" fn hyp_main(primary: u64, cpu: u64) -> ! {
    let cpu = cpu as usize;
    percpu::init(cpu);
    el2_setup(cpu);
    if primary == 1 {
        hprintln!("vpmu-hyp: EL2 on CPU 0, {} PMU counters, {} list registers", vm::physical_counters(), gic::lr_count());
        let Some(cfg) = vm::vm_config() else { fatal("no vPMU configuration") };
        set_vm_config(cfg);
    }
    let Some(cfg) = vm_config() else { fatal("no vPMU configuration") };
    percpu::this().pmu = vm::new_pmu(cfg);
    if percpu::this().pmu.is_none() {
        fatal("cannot create the vCPU's PMU");
    }
    if primary == 1 {
        let (entry, dtb) = prepare_boot();
        hprintln!("entering the guest at {entry:#x}, DTB at {dtb:#x}");
        boot::run_guest(cpu, entry, dtb)
    }
    let Some(slot) = trap::SECONDARY.get(cpu) else { fatal("bad CPU") };
    let ctx = slot.1.load(Ordering::Acquire);
    let entry = slot.0.load(Ordering::Relaxed);
    boot::run_guest(cpu, entry, ctx)
}

/// Reads the boot parameters and writes the guest's DTB; returns (entry, DTB address).
fn prepare_boot() -> (u64, u64) {
    let image = match mmio::read_ram64(PARAMS) {
        0 => DEFAULT_IMAGE,
        a => a,
    };
    let (istart, iend) = (mmio::read_ram64(PARAMS + 8), mmio::read_ram64(PARAMS + 16));
    let initrd = (iend > istart).then_some((istart, iend));
    // SAFETY: QEMU's DTB is in RAM at 0x40000000; the header gives its size; nothing writes it.
    let head = unsafe { mmio::ram(QEMU_DTB, 64) };
    let Ok(size) = fdt::total_size(head) else { fatal("no DTB at 0x40000000") };
    // SAFETY: as above, now with the size the header announces.
    let src = unsafe { mmio::ram(QEMU_DTB, size) };
    let Ok(ram_end) = fdt::memory_end(src) else { fatal("DTB: no /memory") };
    // The guest's DTB at the top of RAM: above any image, inside a reserved slot.
    let dtb = (ram_end - DTB_SLOT) & !(DTB_SLOT - 1);
    // SAFETY: the slot is RAM the guest has not run on yet and does not overlap QEMU's DTB.
    let out = unsafe { mmio::ram_mut(dtb as usize, DTB_SLOT as usize) };
    let reserve = [(HYP_BASE, HYP_SIZE), (dtb, DTB_SLOT)];
    match fdt::rewrite(src, out, &reserve, initrd) {
        Ok(n) => hprintln!("DTB: {size} bytes -> {n} bytes, initrd {initrd:x?}"),
        Err(e) => fatal_fmt(format_args!("DTB rewrite failed: {e:?}")),
    }
    (image, dtb)
}

fn fatal(msg: &str) -> ! {
    fatal_fmt(format_args!("{msg}"))
}

fn fatal_fmt(args: core::fmt::Arguments) -> ! {
    hprintln!("FATAL: {args}");
    psci::system_off()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    hprintln!("FATAL: panic: {info}");
    psci::system_off()
}
