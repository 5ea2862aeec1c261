//! # vpmu-hw — the physical PMUv3 as a vpmu backend, from EL2
//!
//! A bare-metal hypervisor has no Linux perf: it backs its guests' PMU counters with the
//! physical PMU it owns at EL2. [`HwBackend`] is that [`CounterBackend`](vpmu::CounterBackend)
//! for [`vpmu`]: vpmu emulates every guest PMU register access (trap and emulate), and the
//! backend counts on the real counters, switches them between vCPUs and reports their
//! overflows.
//!
//! `#![no_std]`, no allocation, no panic on any entry point (checked at link time), and
//! `unsafe` only in one small module of `MRS`/`MSR` accessors.
//!
//! ## Layers
//!
//! - [`PmuRegs`]: the physical PMU registers as EL2 reads and writes them. Everything else is
//!   generic over it.
//! - [`SysRegs`]: the real registers through `MRS`/`MSR` (aarch64 only).
//! - [`sim::SimPmu`]: a simulated PMUv3 (counter widths, overflow flags, enables, filters, the
//!   `HPMN` partition), to run and test the same logic on any host.
//! - [`HwBackend`]: the backend. See its docs for the counting rules.
//!
//! ## How guest counters map to physical ones
//!
//! Guest event counter `i` is physical event counter `i`, inside the guest partition
//! `0..MDCR_EL2.HPMN`; the guest cycle counter is `PMCCNTR_EL0`. A guest may have up to
//! `min(PMCR_EL0.N, HPMN)` event counters ([`max_event_counters`](vpmu::CounterBackend::max_event_counters)); counters
//! `HPMN..N` stay the hypervisor's own (enabled by `MDCR_EL2.HPME`, untouched by the backend).
//! A period becomes a preset of `2^w - period` (`w` = 64 on PMUv3p5 with `PMCR.LP` and for
//! the cycle counter with `PMCR.LC`, else 32); a 64-bit guest counter on 32-bit hardware
//! overflows early and the `Pmu` folds it invisibly. `PMCEID0/1` come from the physical PMU.
//!
//! ## Wiring it into a hypervisor
//!
//! **Per physical CPU, once, before any guest runs** (every EL2 register is per CPU):
//!
//! - `MDCR_EL2` = [`mdcr_el2::for_guest`]`(hpmn)` = `TPM | TPMCR | HPMD | HCCD | HPMN`:
//!   - `TPM`, `TPMCR`: every guest PMU register access traps to EL2 (EC 0x18, or 0x03/0x04
//!     from AArch32), where vpmu emulates it. The guest never touches a physical PMU register.
//!   - `HPMN` = `PMCR_EL0.N` to give guests every counter, or fewer to keep `HPMN..N` for the
//!     hypervisor. Set it before creating backends: [`HwBackend::new`] reads it.
//!   - `HPMD`, `HCCD`: EL2 is never counted by the guest's counters. The backend already
//!     clears `PMEVTYPER.NSH`/`PMCCFILTR.NSH`, so this is belt and braces; it matters because
//!     Linux sets `NSH` whenever it does not exclude the hypervisor, and a guest whose counters
//!     were passed through would then count the hypervisor's trap handling (measured on QEMU:
//!     225 instructions for one `perf stat`).
//! - `PMUSERENR_EL0` = `EN` (1): the backend never writes it. A guest EL0 access is checked
//!   against the physical `PMUSERENR_EL0` before `MDCR_EL2.TPM`; with `EN` every one reaches
//!   EL2, where vpmu applies the guest's own `PMUSERENR` (QEMU 7.2 lets an EL0 access that only
//!   `CR`, `ER` or `SW` allow skip the `TPM` trap: set `EN` alone).
//! - [`quiesce`]`(&mut SysRegs::new())` after `MDCR_EL2`: stops whatever firmware left
//!   running in the guest partition.
//! - `HCR_EL2.IMO` = 1 (with `RW`): physical IRQs, the PMU's among them, are taken at EL2. The
//!   physical PMU interrupt is a PPI (INTID 23 on QEMU's `virt`; the DT's `arm,armv8-pmuv3`
//!   node says which): enable it in the GIC redistributor of every CPU, and never forward it
//!   to a guest — the guest gets vpmu's *virtual* PMU interrupt instead.
//! - Build the hypervisor for `aarch64-unknown-none-softfloat`: EL2 code must not touch the
//!   guest's FP/SIMD registers.
//!
//! **Per vCPU**: `Pmu::new(config, HwBackend::new(SysRegs::new()))`, with at most
//! `max_event_counters()` counters. A new `Pmu` is not loaded.
//!
//! **On a context switch** (the backend's counters live in the physical PMU only while the vCPU
//! is loaded):
//!
//! - `pmu.vcpu_put()` when the vCPU leaves the physical CPU (descheduled, halted in `WFI`,
//!   migrated), *before* another vCPU is loaded on that CPU: it handles pending overflows,
//!   saves the counters, disables them and lowers their physical interrupt.
//! - `pmu.vcpu_load()` before the first `ERET` into the vCPU on a physical CPU. A vCPU moving to
//!   another CPU is put on the old one and loaded on the new one.
//! - While put, the VMM's calls (snapshot save/restore, one-reg, reset) work on the saved
//!   image; the hardware sees the result at the next load.
//!
//! **On a trapped PMU access**: `pmu.handle_esr(esr, pstate, &mut x)` with `pstate` from
//! `Pstate::from_spsr(spsr_el2)`, then skip the instruction (`ELR_EL2 += 4`) for `Read`,
//! `Written` and `ConditionFailed` (see vpmu's docs for the other outcomes).
//!
//! **On the physical PMU interrupt** (at EL2): acknowledge it at the GIC (`ICC_IAR1_EL1`), call
//! `pmu.handle_overflows()` on the vCPU loaded on this CPU — it takes and clears the physical
//! overflow flags, which lowers the level-sensitive PPI — then end it (`ICC_EOIR1_EL1`, and
//! `ICC_DIR_EL1` with `EOImode` = 1). An interrupt context that cannot reach the `Pmu` may call
//! [`HwBackend::ack_irq`] instead and leave the rest for later.
//!
//! **Before every guest entry**: drive the vCPU's virtual PMU interrupt from `pmu.irq_level()`
//! (with GICv3: a list register with the vINTID pending, `HW` = 0; withdraw it when low).
//!
//! ## Example
//!
//! A vCPU and the four places a hypervisor calls in. Generic over [`PmuRegs`], it runs here on
//! the simulated PMU; on aarch64 the hypervisor passes [`SysRegs::new()`](SysRegs::new).
//!
//! ```
//! use vpmu::{config::PmuConfig, CounterBackend, Outcome, Pmu, Pstate, Trap};
//! use vpmu_hw::{mdcr_el2, HwBackend, PmuRegs};
//!
//! struct Vcpu<R: PmuRegs> {
//!     x: [u64; 31],
//!     elr: u64,
//!     pmu: Pmu<HwBackend<R>>,
//!     virq: bool, // the virtual PMU interrupt (a list register in a real GICv3 hypervisor)
//! }
//!
//! impl<R: PmuRegs> Vcpu<R> {
//!     fn new(regs: R) -> Self {
//!         let backend = HwBackend::new(regs); // after MDCR_EL2 is set on this CPU
//!         let cfg = PmuConfig::builder().counters(backend.max_event_counters()).build().unwrap();
//!         Vcpu { x: [0; 31], elr: 0, pmu: Pmu::new(cfg, backend).unwrap(), virq: false }
//!     }
//!     /// The scheduler: `prev` leaves this CPU, `next` runs on it.
//!     fn switch(prev: &mut Self, next: &mut Self) {
//!         prev.pmu.vcpu_put();
//!         next.pmu.vcpu_load();
//!     }
//!     /// A trapped MRS/MSR (EC 0x18).
//!     fn on_sysreg_trap(&mut self, esr: u64, spsr: u64) {
//!         let Some(pstate) = Pstate::from_spsr(spsr) else { return }; // not from a guest
//!         match self.pmu.handle_esr(esr, pstate, &mut self.x) {
//!             Ok(Trap::Pmu(Outcome::Read(_) | Outcome::Written | Outcome::ConditionFailed)) => self.elr += 4,
//!             Ok(Trap::NotPmu(_)) => { /* the hypervisor's other system registers */ }
//!             _ => { /* inject UNDEFINED / the EL1 trap, or skip a failed condition */ }
//!         }
//!     }
//!     /// The physical PMU interrupt, taken at EL2, for the vCPU loaded here.
//!     fn on_pmu_irq(&mut self) {
//!         self.pmu.handle_overflows();
//!     }
//!     /// Just before ERET into the guest.
//!     fn before_entry(&mut self) {
//!         self.virq = self.pmu.irq_level();
//!     }
//! }
//!
//! // A CPU (simulated here) with MDCR_EL2 as the hypervisor sets it, and two vCPUs on it.
//! use core::cell::RefCell;
//! use vpmu_hw::sim::{SimEl, SimPmu};
//! let mut cpu = SimPmu::cortex_a57();
//! cpu.write_mdcr_el2(mdcr_el2::for_guest(6));
//! let cpu = RefCell::new(cpu);
//! let (mut a, mut b) = (Vcpu::new(&cpu), Vcpu::new(&cpu));
//! a.pmu.vcpu_load();
//!
//! /// ESR_EL2 of a trapped `MSR <op0 = 3, op1, CRn = 9, CRm, op2>, X1`.
//! fn msr_x1(op1: u64, crm: u64, op2: u64) -> u64 {
//!     0x18 << 26 | 1 << 25 | 3 << 20 | op2 << 17 | op1 << 14 | 9 << 10 | 1 << 5 | crm << 1
//! }
//! let el1h = 0x3c5; // SPSR_EL2 of a guest at EL1
//! // Guest A writes PMCCNTR_EL0 = 2^64 - 100, PMINTENSET_EL1 and PMCNTENSET_EL0 = bit 31,
//! // PMCR_EL0 = E (with LC, RES1 here).
//! a.x[1] = 100u64.wrapping_neg();
//! a.on_sysreg_trap(msr_x1(3, 13, 0), el1h);
//! a.x[1] = 1 << 31;
//! a.on_sysreg_trap(msr_x1(0, 14, 1), el1h);
//! a.on_sysreg_trap(msr_x1(3, 12, 1), el1h);
//! a.x[1] = 1;
//! a.on_sysreg_trap(msr_x1(3, 12, 0), el1h);
//! a.before_entry();
//! cpu.borrow_mut().count(0x11, SimEl::El1, 60);  // A runs 60 cycles
//! Vcpu::switch(&mut a, &mut b);
//! cpu.borrow_mut().count(0x11, SimEl::El1, 500); // B runs: A's counter does not move
//! Vcpu::switch(&mut b, &mut a);
//! cpu.borrow_mut().count(0x11, SimEl::El1, 40);  // A again: its counter reaches 2^64
//! assert!(cpu.borrow().irq_level());             // the physical PMU interrupt
//! a.on_pmu_irq();
//! a.before_entry();
//! assert!(a.virq && !cpu.borrow().irq_level());
//! ```
//!
//! ## Measured on QEMU
//!
//! `hw/qemu-test` runs at EL2 under `qemu-system-aarch64 -M virt,virtualization=on,gic-version=3
//! -icount shift=0` (QEMU 7.2) on `-cpu max` (PMUv3p5, 64-bit counters) and `-cpu cortex-a57`
//! (PMUv3, 32 bits), a `Pmu` on this backend driven by guest-side register writes:
//!
//! - exactly `2n + 1` `INST_RETIRED` for an `n`-iteration `SUBS`/`B.NE` loop at EL1 ended by
//!   `HVC` (the `ERET` entering it is not counted), and `CPU_CYCLES` equal to it; 20,000 EL2
//!   instructions around the guest add nothing, even without `HPMD`/`HCCD`;
//! - the overflow flag on exactly the programmed instruction, not one before; a `CHAIN` pair
//!   carrying across the 32-bit wrap; two vCPUs alternating on one CPU without leaking a count;
//!   a released counter stopped; a hypervisor counter above `HPMN` left alone;
//! - the physical PMU interrupt taken at EL2 in the middle of a guest run, on the very cycle
//!   the cycle counter wraps, and handled by `Pmu::handle_overflows`;
//! - a vCPU put on CPU 0, loaded and run on CPU 1 while another vCPU runs on CPU 0, then back:
//!   both exact (`-smp 2`);
//! - cost at EL2: `vcpu_load` about 250 instructions and `vcpu_put` about 195 with 5 event counters and the
//!   cycle counter live (`opt-level = 2`).
//!
//! QEMU 7.2 itself raises the PMU interrupt on time for `CPU_CYCLES` but not for
//! `INST_RETIRED`: that overflow sets its flag only when something makes QEMU recompute the
//! PMU (a PMU register access, the cycle counter's timer). A hypervisor on QEMU sees it at the
//! next exit that samples `irq_level()` (a timer interrupt, a trapped access); real hardware
//! interrupts on time.
//!
//! With `-smp 2 -icount`, QEMU 7.2 derives `INST_RETIRED` and `CPU_CYCLES` from the global
//! instruction count: when the other CPU ran (it was spinning at EL2) in the middle of this
//! CPU's guest run, about 10^8 of its instructions showed in this CPU's counters. Exact counts
//! on QEMU need the other CPUs idle (off, or in `WFI`) while a measured guest runs.
//!
//! ## Limits
//!
//! - All CPUs a vCPU runs on must have the same PMU (`N`, width, `PMCEID`): build the backend
//!   on one of them. big.LITTLE systems with different PMUs need a backend per cluster and no
//!   migration across clusters.
//! - Events the guest asks for that `PMCEID` does not list are not counted (vpmu hides them
//!   from the guest's `PMCEID` too); IMPLEMENTATION DEFINED events (0x40..) are not offered.
//! - Between two handled overflows, a 32-bit physical counter must not wrap twice: handle the
//!   physical PMU interrupt (it fires on every wrap).
//!
//! ## Minimum supported Rust version
//!
//! Rust 1.81, as vpmu.
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(test)]
extern crate std;

mod backend;
pub mod regs;
pub mod sim;
#[cfg(any(target_arch = "aarch64", doc))]
#[cfg_attr(docsrs, doc(cfg(target_arch = "aarch64")))]
mod sysreg;

pub use backend::{quiesce, HwBackend, HwError};
pub use regs::{mdcr_el2, PmuRegs};
#[cfg(any(target_arch = "aarch64", doc))]
pub use sysreg::SysRegs;

/// The lock-free overflow record an interrupt handler writes (vpmu's own type).
pub use vpmu::backend::PendingOverflow;
