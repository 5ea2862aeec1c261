//! Every call this crate makes into vpmu, in one small module: when vpmu's API moves, only
//! this file changes. It uses the emulator side of the host contract: a [`SoftBackend`]
//! (an `EmulatedBackend`) fed through `Pmu::count`/`set_el`/`events_until_overflow`,
//! `Pmu::handle` with a [`Pstate`], `irq_level` before every guest entry.

use vpmu::config::{ConfigError, PmuConfig};
use vpmu::decode::{decode_insn, Decoded, Direction, Xfer};
use vpmu::reg::{EventCounter, PmuReg};
use vpmu::{El, GuestRegs, Outcome, Pmu, Pstate, SoftBackend, SysregAccess};

/// `INST_RETIRED`: counted exactly (block hook plus the offset inside the block).
pub const INST_RETIRED: u16 = 0x08;
/// `CPU_CYCLES`: the cycle model is one cycle per retired instruction (IPC 1.00, like QEMU's
/// `-icount shift=0`).
pub const CPU_CYCLES: u16 = 0x11;
/// `BR_RETIRED`: branches architecturally executed, taken or not (every translation block
/// that ends with a branch instruction and ran to its end counts one).
pub const BR_RETIRED: u16 = 0x21;
/// The events the emulator counts, and so the only ones `PMCEID0/1` advertise (with
/// `SW_INCR` 0x00 and `CHAIN` 0x1E, which vpmu counts itself).
pub const EVENTS: [u16; 3] = [INST_RETIRED, CPU_CYCLES, BR_RETIRED];

/// What the machine must do for one PMU register access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Done: a read put `value` into `X<rt>` (`rt` 31, the zero register: nothing to write).
    Read { rt: u8, value: u64 },
    /// Done: a write.
    Written,
    /// Inject an UNDEFINED exception (EC 0x00).
    Undefined,
    /// Take the access to EL1 as a trapped system register access (EC 0x18).
    Trap,
    /// Not a PMU register.
    NotPmu,
}

/// A decoded access to a PMU register.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PmuAccess(SysregAccess);

impl PmuAccess {
    /// Whether unicorn's Cortex-A72 model (QEMU 5.0) defines the register itself. Only for
    /// those may the `MRS`/`MSR` hook skip the access and let the translation block go on;
    /// an access to a register QEMU does not know is translated as UNDEFINED and must be
    /// emulated from the exception instead.
    pub(crate) fn qemu_defines(&self) -> bool {
        match self.0.reg {
            PmuReg::Pmevcntr(n) | PmuReg::Pmevtyper(n) => n.get() < 4,
            PmuReg::Pmmir | PmuReg::Pmceid2 | PmuReg::Pmceid3 => false,
            _ => true,
        }
    }

    /// Whether it is a write (`MSR`).
    pub(crate) fn is_write(&self) -> bool {
        self.0.dir == Direction::Write
    }
}

/// The one register an `MRS`/`MSR` moves: its value goes in, a read's result comes out.
struct Rt {
    value: u64,
    written: Option<u64>,
}

impl GuestRegs for Rt {
    fn get(&self, _n: u8) -> u64 {
        self.value
    }
    fn set(&mut self, _n: u8, value: u64) {
        self.written = Some(value);
    }
}

/// The guest's PMU: a [`Pmu`] on a [`SoftBackend`] that the emulator feeds with exact counts.
#[derive(Debug)]
pub struct GuestPmu {
    pmu: Pmu<SoftBackend>,
}

impl GuestPmu {
    /// A PMUv3 with `counters` event counters (0..=31) counting [`EVENTS`].
    ///
    /// # Errors
    ///
    /// [`ConfigError`] if vpmu rejects the configuration (too many counters).
    pub fn new(counters: u8) -> Result<Self, ConfigError> {
        let cfg = PmuConfig::builder().counters(counters).build()?;
        let mut pmu = Pmu::new(cfg, SoftBackend::with_events(&EVENTS))?;
        pmu.lock_config(); // the vCPU runs: the configuration is fixed from now on
        pmu.vcpu_load(); // the vCPU runs on this thread from now on
        Ok(Self { pmu })
    }

    /// The vpmu instance (for inspection).
    pub fn pmu(&self) -> &Pmu<SoftBackend> {
        &self.pmu
    }

    /// Decodes an `MRS`/`MSR` word; `None` if it is not a PMU register.
    pub(crate) fn decode(insn: u32) -> Option<PmuAccess> {
        match decode_insn(insn) {
            Ok(Decoded::Pmu(a)) => Some(PmuAccess(a)),
            _ => None,
        }
    }

    /// Emulates `access` at `el`; `xt` is the value of its `Xt`.
    pub(crate) fn access(&mut self, access: PmuAccess, el: El, xt: u64) -> Access {
        let a = access.0;
        let mut rt = Rt { value: xt, written: None };
        let pstate = match el {
            El::El0 => Pstate::EL0,
            El::El1 => Pstate::EL1,
        };
        match self.pmu.handle(&a, pstate, &mut rt) {
            Outcome::Read(v) => {
                let n = match (a.dir, a.xfer) {
                    (Direction::Read, Xfer::A64 { rt }) => rt.get(),
                    _ => 31,
                };
                Access::Read { rt: n, value: rt.written.unwrap_or(v) }
            }
            // A64 accesses have no condition; an AArch32 one that failed it is skipped.
            Outcome::Written | Outcome::ConditionFailed => Access::Written,
            Outcome::Undefined => Access::Undefined,
            Outcome::TrapToEl1 => Access::Trap,
            // A kind of outcome this machine does not know: the safe answer is UNDEFINED.
            _ => Access::Undefined,
        }
    }

    /// Whether counting needs the exception level at every instruction and the branches: a
    /// counter counts `BR_RETIRED`, or counts at EL0 and EL1 differently (`PMEVTYPER<n>` or
    /// `PMCCFILTR` P/U against NSK/NSU). Otherwise the emulator may skip both (cheaper).
    pub(crate) fn needs_el_and_branches(&mut self) -> bool {
        let differs = |v: u64| ((v >> 31) & 1 == (v >> 29) & 1) != ((v >> 30) & 1 == (v >> 28) & 1);
        let n = (self.pmu.read(PmuReg::Pmcr, El::El1).value().unwrap_or(0) >> 11) & 31;
        let evtypers = (0..n as u8).filter_map(EventCounter::new).any(|c| {
            let v = self.pmu.read(PmuReg::Pmevtyper(c), El::El1).value().unwrap_or(0);
            v & 0xffff == u64::from(BR_RETIRED) || differs(v)
        });
        evtypers || differs(self.pmu.read(PmuReg::Pmccfiltr, El::El1).value().unwrap_or(0))
    }

    /// Reports `insns` retired instructions (and as many cycles) and `branches` retired
    /// branches at the current exception level.
    pub(crate) fn count(&mut self, insns: u64, branches: u64) {
        if insns != 0 {
            self.pmu.count(INST_RETIRED, insns);
            self.pmu.count(CPU_CYCLES, insns);
        }
        if branches != 0 {
            self.pmu.count(BR_RETIRED, branches);
        }
    }

    /// The guest now runs at `el`.
    pub(crate) fn set_el(&mut self, el: El) {
        self.pmu.set_el(el);
    }

    /// Instructions until a counter overflows (instructions and cycles are one event stream
    /// under the cycle model), or `None`.
    pub(crate) fn insns_until_overflow(&self) -> Option<u64> {
        match (self.pmu.events_until_overflow(INST_RETIRED), self.pmu.events_until_overflow(CPU_CYCLES)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Branches until a counter overflows, or `None`.
    pub(crate) fn branches_until_overflow(&self) -> Option<u64> {
        self.pmu.events_until_overflow(BR_RETIRED)
    }

    /// The level of the PMU's overflow interrupt line.
    pub(crate) fn irq_level(&mut self) -> bool {
        self.pmu.irq_level()
    }
}
