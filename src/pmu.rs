//! The vPMU state machine: the guest-visible register file and one handler per register.

use core::fmt;

use crate::backend::{CountRequest, CounterBackend, CounterId, EmulatedBackend};
use crate::config::{ConfigError, El0Denial, PmuConfig, PmuVersion, EVENTS_STALL_SLOT, EVENT_CHAIN, EVENT_CPU_CYCLES, EVENT_SW_INCR};
use crate::decode::{
    decode_esr, decode_insn, iss_cond, Cond, DecodeError, Decoded, Direction, Gpr, SysregAccess, Xfer, EC_CP15_32, EC_SYS64, ISS_MASK,
};
use crate::field::{EvtypeFilter, Pmcr, Pmuserenr};
use crate::pmc::Pmc;
use crate::reg::{self, CounterReg, EventCounter, PmceidReg, PmuReg, SetClr, TypeReg, CYCLE_COUNTER_BIT};

/// The exception level of the guest when it made an access or when events happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum El {
    /// EL0: applications. `PMUSERENR` decides what they may access.
    El0,
    /// EL1: the guest kernel.
    El1,
}

/// The guest's `PSTATE` when it trapped, as far as vpmu needs it: the exception level, and
/// for an AArch32 guest the condition flags and `IT` state that decide whether a trapped
/// conditional instruction executes.
///
/// A hypervisor builds it from `SPSR_EL2` ([`Pstate::from_spsr`]); an AArch64 guest's
/// `MRS`/`MSR` are never conditional, so [`Pstate::EL0`] and [`Pstate::EL1`] (or
/// `Pstate::from(el)`) do for it.
///
/// # Examples
///
/// ```
/// use vpmu::{El, Pstate};
/// // AArch32 SVC mode (EL1), Z set:
/// let p = Pstate::from_spsr(0x4000_01d3).unwrap();
/// assert_eq!(p.el(), El::El1);
/// assert_eq!(Pstate::from_spsr(0x3c5).map(Pstate::el), Some(El::El1)); // AArch64 EL1h
/// assert_eq!(Pstate::from_spsr(0x3c9), None);                          // EL2h: not a guest's
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Pstate {
    el: El,
    /// `N`, `Z`, `C`, `V` in bits \[31:28\], the rest zero.
    nzcv: u32,
    /// AArch32 `IT[7:0]`, 0 outside an IT block (and always for A32 or AArch64).
    it: u8,
}

impl Pstate {
    /// An AArch64 guest at EL0 (flags clear).
    pub const EL0: Pstate = Pstate { el: El::El0, nzcv: 0, it: 0 };
    /// An AArch64 guest at EL1 (flags clear).
    pub const EL1: Pstate = Pstate { el: El::El1, nzcv: 0, it: 0 };

    /// The guest's state from the `SPSR_EL2` (or `SPSR_EL1`, for an emulator) of the
    /// exception that trapped: AArch64 `EL0t`, `EL1t`, `EL1h`, or an AArch32 mode (`usr` is
    /// EL0; `fiq`, `irq`, `svc`, `abt`, `und`, `sys` are EL1). `None` for EL2, EL3 and
    /// reserved modes, which are not a guest's.
    #[must_use]
    pub const fn from_spsr(spsr: u64) -> Option<Pstate> {
        let m = spsr & 0x1f;
        let el = if m & 0x10 == 0 {
            match m {
                0b0000 => El::El0,
                0b0100 | 0b0101 => El::El1,
                _ => return None,
            }
        } else {
            match m & 0xf {
                0b0000 => El::El0,
                0b0001 | 0b0010 | 0b0011 | 0b0111 | 0b1011 | 0b1111 => El::El1,
                _ => return None,
            }
        };
        let aarch32_thumb = m & 0x10 != 0 && spsr & (1 << 5) != 0;
        let it = if aarch32_thumb { (((spsr >> 8) & 0xfc) | ((spsr >> 25) & 0x3)) as u8 } else { 0 };
        Some(Pstate { el, nzcv: (spsr as u32) & 0xf000_0000, it })
    }

    /// The exception level.
    #[must_use]
    pub const fn el(self) -> El {
        self.el
    }

    /// Whether a trapped AArch32 instruction with syndrome condition `cond` (`None`: the
    /// syndrome's CV was 0) executes: by `cond` when the syndrome has one, else by the `IT`
    /// state (a T32 instruction in an IT block), else unconditionally.
    #[must_use]
    #[inline]
    pub const fn passes(self, cond: Option<Cond>) -> bool {
        match cond {
            Some(c) => c.passes(self.nzcv),
            None if self.it & 0xf != 0 => match Cond::new(self.it >> 4) {
                Some(c) => c.passes(self.nzcv),
                None => true,
            },
            None => true,
        }
    }
}

impl From<El> for Pstate {
    /// An AArch64 guest at `el`.
    fn from(el: El) -> Pstate {
        match el {
            El::El0 => Pstate::EL0,
            El::El1 => Pstate::EL1,
        }
    }
}

/// What a trapped system register access is: a PMU register's, which vpmu emulated, or
/// another register's, for the hypervisor's other handlers. What [`Pmu::handle_esr`] and
/// [`Pmu::handle_insn`] give; an access already decoded to a PMU register
/// ([`Pmu::handle`]) is always [`Outcome`].
///
/// # Examples
///
/// ```
/// use vpmu::{config::PmuConfig, Outcome, Pmu, Pstate, SoftBackend, Trap};
/// let mut pmu = Pmu::new(PmuConfig::default(), SoftBackend::new())?;
/// let mut x = [0u64; 31];
/// // MRS X0, CNTVCT_EL0: not the PMU's
/// assert!(matches!(pmu.handle_esr(0x6232_c001, Pstate::EL1, &mut x), Ok(Trap::NotPmu(_))));
/// // MRS X2, PMCR_EL0
/// assert!(matches!(pmu.handle_esr(0x6230_e459, Pstate::EL1, &mut x), Ok(Trap::Pmu(Outcome::Read(_)))));
/// # Ok::<(), vpmu::config::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[must_use]
pub enum Trap {
    /// A PMU register: emulated, and what must happen now.
    Pmu(Outcome),
    /// Not a PMU register: hand the access to the hypervisor's other handlers. Nothing changed.
    NotPmu(crate::decode::OtherSysreg),
}

impl Trap {
    /// The outcome of a PMU access, `None` for another register.
    #[must_use]
    pub const fn outcome(self) -> Option<Outcome> {
        match self {
            Trap::Pmu(o) => Some(o),
            Trap::NotPmu(_) => None,
        }
    }
}

/// What a PMU register access becomes. The caller acts on it: vpmu never injects anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[must_use]
#[non_exhaustive]
pub enum Outcome {
    /// A read: the value for the guest's register (for a 32-bit AArch32 access, zero-extended
    /// from bits \[31:0\]). [`Pmu::handle`] has already put it in place.
    Read(u64),
    /// A write, done.
    Written,
    /// Inject an UNDEFINED exception (EC 0x00) into the guest.
    Undefined,
    /// Take the access to the guest's EL1 as a System access trap: EC 0x18 (or 0x03/0x04 from
    /// AArch32) with the access's own ISS. Only for EL0 accesses that `PMUSERENR` forbids.
    TrapToEl1,
    /// A trapped AArch32 instruction whose condition fails under the guest's `PSTATE`
    /// (whether such an instruction traps is IMPLEMENTATION DEFINED): nothing was done;
    /// skip the instruction, as if it had executed.
    ConditionFailed,
}

impl Outcome {
    /// The value read, for [`Outcome::Read`].
    #[must_use]
    pub const fn value(&self) -> Option<u64> {
        match *self {
            Outcome::Read(v) => Some(v),
            _ => None,
        }
    }
}

/// Why an access fails before its handler runs (a small copy of the failing [`Outcome`]s).
#[derive(Clone, Copy)]
enum Fault {
    Undefined,
    TrapToEl1,
}

impl From<Fault> for Outcome {
    #[inline]
    fn from(f: Fault) -> Outcome {
        match f {
            Fault::Undefined => Outcome::Undefined,
            Fault::TrapToEl1 => Outcome::TrapToEl1,
        }
    }
}

/// An operation on a register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Op {
    /// Read the register.
    Read,
    /// Write this value to the register.
    Write(u64),
}

/// An access as the handlers see it: the operation, its width and the guest's exception level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Params {
    /// Read, or write a value.
    pub op: Op,
    /// An AArch32 `MRC`/`MCR`: 32 bits; reads return bits \[31:0\], a counter write keeps the
    /// counter's bits \[63:32\].
    pub aarch32: bool,
    /// The guest's exception level.
    pub el: El,
}

impl Params {
    /// A 64-bit read at `el`.
    #[must_use]
    pub const fn read(el: El) -> Self {
        Self { op: Op::Read, aarch32: false, el }
    }

    /// A 64-bit write of `value` at `el`.
    #[must_use]
    pub const fn write(value: u64, el: El) -> Self {
        Self { op: Op::Write(value), aarch32: false, el }
    }

    const fn is_read(&self) -> bool {
        matches!(self.op, Op::Read)
    }
}

/// The guest's general-purpose registers, as a trap handler reaches them.
///
/// Register numbers are the AArch64 view (`0..=30`); [`Pmu::handle`] deals with the zero
/// register (31) itself and never passes it here.
pub trait GuestRegs {
    /// `X<n>`.
    fn get(&self, n: u8) -> u64;
    /// Sets `X<n>`.
    fn set(&mut self, n: u8, value: u64);
}

/// `X0..=X30`.
impl GuestRegs for [u64; 31] {
    fn get(&self, n: u8) -> u64 {
        self.as_slice().get(usize::from(n)).copied().unwrap_or(0)
    }
    fn set(&mut self, n: u8, value: u64) {
        if let Some(x) = self.as_mut_slice().get_mut(usize::from(n)) {
            *x = value;
        }
    }
}

const LOW32: u64 = 0xffff_ffff;

/// One vCPU's PMU: its guest-visible registers, its counters and the backend that counts.
///
/// Hand every trapped system register access to [`Pmu::handle`] (or [`Pmu::handle_esr`]);
/// drive the overflow interrupt line from [`Pmu::irq_level`] after each access and each
/// [`Pmu::sync`].
///
/// # Examples
///
/// ```
/// use vpmu::{backend::SoftBackend, config::PmuConfig, El, Outcome, Pmu, Pstate, Trap};
///
/// let mut pmu = Pmu::new(PmuConfig::builder().counters(4).build()?, SoftBackend::new())?;
/// let mut x = [0u64; 31];
/// // MRS X2, PMCR_EL0
/// let out = pmu.handle_esr(0x6230_e459, Pstate::EL1, &mut x);
/// assert_eq!(out, Ok(Trap::Pmu(Outcome::Read(4 << 11)))); // N = 4
/// assert_eq!(x[2], 4 << 11);
/// # Ok::<(), vpmu::config::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Pmu<B: CounterBackend> {
    pub(crate) cfg: PmuConfig,
    /// Kept with `cfg` for the trap path, changed with it only ([`Pmu::set_cfg`]): PMCR's
    /// fields from the configuration, in place (`N`, `IDCODE`, `IMP`: [`pmcr_id`]), and the
    /// bits of the counters that exist ([`valid_mask`]).
    pmcr_id: u64,
    valid: u32,
    /// The stored bits of PMCR: E, D, X, DP, LC, LP as the version allows.
    pub(crate) pmcr: Pmcr,
    pub(crate) pmselr: u8,
    pub(crate) cnten: u32,
    pub(crate) inten: u32,
    pub(crate) ovs: u32,
    pub(crate) userenr: Pmuserenr,
    /// `PMCEID0` and `PMCEID1`, 64 bits each, computed from the configuration and backend.
    pub(crate) ceid: [u64; 2],
    /// Counters by their bit: 0..=30 the event counters, 31 the cycle counter.
    pub(crate) pmc: [Pmc; 32],
    /// Bit `i`: the backend counts for counter `i` (programmed, not stopped).
    pub(crate) live: u32,
    /// Bit `i`: the backend holds something for counter `i` (programmed or stopped, not
    /// released).
    pub(crate) held: u32,
    /// The guest's exception level as last known: from the last trapped access or
    /// [`Pmu::set_el`]. Decides whether a `CHAIN` counter counts an overflow whose exception
    /// level the counters do not tell.
    pub(crate) el: El,
    /// The vCPU is loaded on a physical CPU ([`Pmu::vcpu_load`]).
    pub(crate) loaded: bool,
    pub(crate) config_locked: bool,
    pub(crate) backend: B,
    pub(crate) backend_error: Option<B::Error>,
}

impl<B: CounterBackend> Pmu<B> {
    /// A PMU in its reset state.
    ///
    /// # Errors
    ///
    /// [`ConfigError::TooManyCounters`] if the configuration has more event counters than the
    /// backend can back.
    pub fn new(cfg: PmuConfig, backend: B) -> Result<Self, ConfigError> {
        check_backend(&cfg, &backend)?;
        let mut pmu = Self {
            cfg,
            pmcr_id: pmcr_id(&cfg),
            valid: valid_mask(&cfg),
            pmcr: Pmcr::empty(),
            pmselr: 0,
            cnten: 0,
            inten: 0,
            ovs: 0,
            userenr: Pmuserenr::empty(),
            ceid: [0; 2],
            pmc: [Pmc::RESET; 32],
            live: 0,
            held: 0,
            el: El::El1,
            loaded: false,
            config_locked: false,
            backend,
            backend_error: None,
        };
        pmu.ceid = pmu.compute_ceid();
        pmu.reset();
        Ok(pmu)
    }

    /// The configuration.
    #[must_use]
    pub const fn config(&self) -> &PmuConfig {
        &self.cfg
    }

    /// The backend.
    #[must_use]
    pub const fn backend(&self) -> &B {
        &self.backend
    }

    /// The backend, mutably (to feed it counts, or let it handle host events).
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    /// The most recent error of the backend, if any, taken out. A counter the backend could
    /// not program does not count.
    pub fn take_backend_error(&mut self) -> Option<B::Error> {
        self.backend_error.take()
    }

    /// Changes the configuration before the vCPU first runs. The PMU is reset.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Busy`] after [`Pmu::lock_config`], and [`ConfigError::TooManyCounters`] as for
    /// [`Pmu::new`]. On error nothing changes.
    pub fn reconfigure(&mut self, cfg: PmuConfig) -> Result<(), ConfigError> {
        if self.config_locked {
            return Err(ConfigError::Busy);
        }
        check_backend(&cfg, &self.backend)?;
        self.set_cfg(cfg);
        self.ceid = self.compute_ceid();
        self.reset();
        Ok(())
    }

    /// Replaces the configuration, and what is kept with it. Nothing else.
    pub(crate) fn set_cfg(&mut self, cfg: PmuConfig) {
        self.cfg = cfg;
        self.pmcr_id = pmcr_id(&cfg);
        self.valid = valid_mask(&cfg);
    }

    /// Fixes the configuration: call it when the vCPU first runs (KVM's rule: `N` and the
    /// rest cannot change under a guest that has seen them). Afterwards
    /// [`Pmu::reconfigure`] is refused and a one-reg write of `PMCR.N` is ignored. Counting
    /// does not depend on it.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::{config::{ConfigError, PmuConfig}, Pmu, SoftBackend};
    /// let mut pmu = Pmu::new(PmuConfig::default(), SoftBackend::new())?;
    /// pmu.lock_config();
    /// assert!(pmu.config_locked());
    /// assert_eq!(pmu.reconfigure(PmuConfig::default()), Err(ConfigError::Busy));
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn lock_config(&mut self) {
        self.config_locked = true;
    }

    /// Whether [`Pmu::lock_config`] was called.
    #[must_use]
    pub const fn config_locked(&self) -> bool {
        self.config_locked
    }

    /// The architectural reset of the whole PMU: `PMCR.E` = 0, N kept, counters, bitmaps,
    /// event types, `PMSELR` and `PMUSERENR` zero (where the Arm ARM says UNKNOWN, vpmu
    /// chooses 0); every backend counter is released.
    pub fn reset(&mut self) {
        let held = self.held;
        for_each_bit(held, |i| {
            if let Some(id) = counter_id(i) {
                self.backend.release(id);
            }
        });
        self.live = 0;
        self.held = 0;
        self.pmc = [Pmc::RESET; 32];
        self.pmselr = 0;
        self.cnten = 0;
        self.inten = 0;
        self.ovs = 0;
        self.userenr = Pmuserenr::empty();
        self.reset_pmcr();
    }

    /// Resets `PMCR` to its reset value: `E` = 0, `D`, `X`, `DP`, `LP` 0, `LC` 1 when the
    /// guest has no AArch32 EL0 (it is RES1 then) and 0 otherwise. Counters stop.
    pub fn reset_pmcr(&mut self) {
        self.write_pmcr(Pmcr::empty());
    }

    /// Whether counter `idx` exists: an event counter below `PMCR.N`, or 31, the cycle counter.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::{backend::SoftBackend, config::PmuConfig, Pmu};
    /// let pmu = Pmu::new(PmuConfig::builder().counters(2).build()?, SoftBackend::new())?;
    /// assert!(pmu.pmu_counter_idx_valid(1) && pmu.pmu_counter_idx_valid(31));
    /// assert!(!pmu.pmu_counter_idx_valid(2) && !pmu.pmu_counter_idx_valid(32));
    /// # Ok::<(), vpmu::config::ConfigError>(())
    /// ```
    #[must_use]
    pub const fn pmu_counter_idx_valid(&self, idx: u8) -> bool {
        idx < self.cfg.counters || idx == CYCLE_COUNTER_BIT
    }

    /// The bits of the counters that exist: `0..N` and 31.
    pub(crate) const fn valid_mask(&self) -> u32 {
        self.valid
    }

    /// The overflow interrupt level: `PMCR.E && (PMOVSSET & PMINTENSET) != 0`, after handling
    /// the overflows the backend has pending ([`Pmu::handle_overflows`]).
    ///
    /// # The interrupt rule
    ///
    /// The level can change on a trapped access (`PMCR`, `PMOVSSET`/`PMOVSCLR`,
    /// `PMINTENSET`/`PMINTENCLR`, any counter write or read that folds an overflow,
    /// `PMSWINC`), on [`Pmu::handle_overflows`] and [`Pmu::sync`], on [`Pmu::count`], on
    /// [`Pmu::restore`], [`Pmu::set_one_reg`] and [`Pmu::reset`]. The simple rule that covers
    /// them all: sample `irq_level()` before every guest entry, and drive the PPI or SPI to it.
    /// It costs one backend call ([`CounterBackend::take_overflows`]) and two loads.
    pub fn irq_level(&mut self) -> bool {
        self.handle_overflows();
        self.irq_line()
    }

    /// The level from the registers alone, pending backend overflows not handled.
    const fn irq_line(&self) -> bool {
        self.pmcr.contains(Pmcr::E) && self.ovs & self.inten != 0
    }

    // ------------------------------------------------------------------------------------
    // The host's side: scheduling and overflow signals
    // ------------------------------------------------------------------------------------

    /// The vCPU is being loaded on the current physical CPU: the backend restores what it
    /// saved at [`Pmu::vcpu_put`] and counts from now on. Call it in the hypervisor's vCPU
    /// switch, before entering the guest; a second call while loaded does nothing.
    ///
    /// A new `Pmu` is not loaded. Backends without hardware of their own ([`SoftBackend`](crate::SoftBackend),
    /// perf) ignore loading; for a physical-PMU backend it is where the hardware becomes the
    /// vCPU's.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::{config::PmuConfig, Pmu, SoftBackend};
    /// let mut pmu = Pmu::new(PmuConfig::default(), SoftBackend::new())?;
    /// assert!(!pmu.is_loaded());
    /// pmu.vcpu_load();
    /// assert!(pmu.is_loaded());
    /// pmu.vcpu_put();
    /// assert!(!pmu.is_loaded());
    /// # Ok::<(), vpmu::config::ConfigError>(())
    /// ```
    pub fn vcpu_load(&mut self) {
        if !self.loaded {
            self.backend.load();
            self.loaded = true;
        }
    }

    /// The vCPU leaves its physical CPU: pending overflows are handled, then the backend
    /// saves and stops what counts for it. While the vCPU is put, every `Pmu` call still
    /// works — [`Pmu::save`], [`Pmu::restore`], one-reg access, [`Pmu::reset`], register
    /// reads from the VMM — and the backend applies it to its saved image.
    pub fn vcpu_put(&mut self) {
        if self.loaded {
            self.handle_overflows();
            self.backend.put();
            self.loaded = false;
        }
    }

    /// Whether the vCPU is loaded ([`Pmu::vcpu_load`]).
    #[must_use]
    pub const fn is_loaded(&self) -> bool {
        self.loaded
    }

    /// Handles the overflows the backend reports as pending
    /// ([`CounterBackend::take_overflows`]): for exactly those counters, collects what was
    /// counted, sets the overflow flags, counts `CHAIN`, and re-arms them (an early or spurious
    /// report only re-arms). O(counters reported).
    ///
    /// Call it when the host learns of an overflow — after its physical PMU interrupt handler
    /// or perf signal handler recorded it in a [`PendingOverflow`](crate::backend::PendingOverflow)
    /// — then drive the interrupt from [`Pmu::irq_level`] (which calls this too).
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::{config::PmuConfig, reg::PmuReg, El, Pmu, SoftBackend};
    /// let mut pmu = Pmu::new(PmuConfig::default(), SoftBackend::new())?;
    /// pmu.handle_overflows(); // SoftBackend reports through Pmu::count: nothing pending
    /// assert_eq!(pmu.read(PmuReg::Pmovsset, El::El1).value(), Some(0));
    /// # Ok::<(), vpmu::config::ConfigError>(())
    /// ```
    #[inline]
    pub fn handle_overflows(&mut self) {
        let bits = self.backend.take_overflows() & self.live;
        if bits != 0 {
            self.settle_all(bits);
        }
    }

    /// [`Pmu::settle`] for every counter in `bits`.
    #[inline(never)]
    fn settle_all(&mut self, bits: u32) {
        for_each_bit(bits, |i| self.settle(i));
    }

    // ------------------------------------------------------------------------------------
    // Trap entry points
    // ------------------------------------------------------------------------------------

    /// Emulates a decoded access: reads the value to write from `regs`, or puts the value read
    /// into them (`MRS` into `XZR` discards it, `MSR` from `XZR` writes 0; `MRRC` fills
    /// `Rt` with bits \[31:0\] and `Rt2` with \[63:32\]).
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::{backend::SoftBackend, config::PmuConfig, decode::*, reg::PmuReg, El, Outcome, Pmu, Pstate};
    ///
    /// let mut pmu = Pmu::new(PmuConfig::default(), SoftBackend::new())?;
    /// let mut x = [0u64; 31];
    /// x[1] = 0b101; // PMSELR = 5
    /// let w = SysregAccess { reg: PmuReg::Pmselr, dir: Direction::Write, xfer: Xfer::A64 { rt: Gpr::new(1).unwrap() } };
    /// assert_eq!(pmu.handle(&w, Pstate::EL1, &mut x), Outcome::Written);
    /// let r = SysregAccess { dir: Direction::Read, xfer: Xfer::A64 { rt: Gpr::new(7).unwrap() }, ..w };
    /// assert_eq!(pmu.handle(&r, Pstate::EL1, &mut x), Outcome::Read(5));
    /// assert_eq!(x[7], 5);
    /// # Ok::<(), vpmu::config::ConfigError>(())
    /// ```
    pub fn handle(&mut self, access: &SysregAccess, pstate: Pstate, regs: &mut impl GuestRegs) -> Outcome {
        self.handle_access(*access, pstate, regs)
    }

    /// [`Pmu::handle`] with the access by value, so the trap path keeps it in registers.
    #[inline]
    fn handle_access(&mut self, access: SysregAccess, pstate: Pstate, regs: &mut impl GuestRegs) -> Outcome {
        let read = access.dir == Direction::Read;
        match access.xfer {
            Xfer::A64 { rt } => self.transfer(access.reg, read, rt, false, pstate.el(), regs),
            Xfer::A32 { rt, cond } if pstate.passes(cond) => self.transfer(access.reg, read, rt, true, pstate.el(), regs),
            Xfer::A32Wide { rt, rt2, cond } if pstate.passes(cond) => {
                let get = |r: Gpr| if r.is_zero_reg() { 0 } else { regs.get(r.get()) };
                let op = if read { Op::Read } else { Op::Write((get(rt) & LOW32) | (get(rt2) << 32)) };
                // A 64-bit transfer: the register's 64-bit view.
                let out = self.guest_access(access.reg, Params { op, aarch32: false, el: pstate.el() });
                if let Outcome::Read(v) = out {
                    set_gpr(regs, rt, v & LOW32);
                    set_gpr(regs, rt2, v >> 32);
                }
                out
            }
            Xfer::A32 { .. } | Xfer::A32Wide { .. } => Outcome::ConditionFailed,
        }
    }

    /// An `MRS`/`MSR` (`aarch32` false) or `MRC`/`MCR` (true) of `reg` with `X<rt>`: the value
    /// written comes from `rt` (bits \[31:0\] for AArch32; `XZR` is 0), the value read goes
    /// there.
    #[inline(always)]
    fn transfer(&mut self, reg: PmuReg, read: bool, rt: Gpr, aarch32: bool, el: El, regs: &mut impl GuestRegs) -> Outcome {
        let op = if read {
            Op::Read
        } else {
            let v = if rt.is_zero_reg() { 0 } else { regs.get(rt.get()) };
            Op::Write(if aarch32 { v & LOW32 } else { v })
        };
        let out = self.guest_access(reg, Params { op, aarch32, el });
        if let Outcome::Read(v) = out {
            set_gpr(regs, rt, if aarch32 { v & LOW32 } else { v });
        }
        out
    }

    /// A guest access: notes the guest's exception level, then the handler.
    #[inline(always)]
    fn guest_access(&mut self, reg: PmuReg, p: Params) -> Outcome {
        if p.el != self.el {
            // The guest changed level since we last looked: what the backend has pending
            // happened at the old one (it decides where `CHAIN` counts).
            self.handle_overflows();
            self.el = p.el;
        }
        self.emulate(reg, p)
    }

    /// Decodes an ESR_EL2 syndrome and emulates the access: the one call a hypervisor makes
    /// for every trapped system register access. [`Trap::NotPmu`] means: not ours, fall
    /// through.
    ///
    /// `pstate` is the guest's state at the trap, from `SPSR_EL2` ([`Pstate::from_spsr`]):
    /// its exception level, and for an AArch32 guest the flags that decide whether a trapped
    /// conditional `MRC`/`MCR`/`MRRC`/`MCRR` executes at all ([`Outcome::ConditionFailed`]
    /// when it does not).
    ///
    /// # Cost
    ///
    /// The common accesses of an EL1 guest (reading `PMCR`, a counter, the enables or the
    /// overflow flags; writing `PMSELR`, `PMSWINC`, `PMINTEN*`, or a `PMCR`/`PMCNTEN*` value
    /// that changes nothing) are done inline, in the caller, without a call: one table load
    /// finds the register, then its few loads and stores (55 to 93 x86-64 instructions with
    /// [`SoftBackend`](crate::SoftBackend), the README has the figures). An EL1 write that
    /// reprograms the backend calls its handler directly; everything else (EL0, a change of
    /// exception level, the rare registers) takes one out-of-line call to the general path.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::{config::PmuConfig, Outcome, Pmu, Pstate, SoftBackend, Trap};
    /// let mut pmu = Pmu::new(PmuConfig::default(), SoftBackend::new())?;
    /// let mut x = [0u64; 31];
    /// // MRS X2, PMCR_EL0 as ESR_EL2 reports it: EC 0x18, IL, op0 3, op1 3, CRn 9, CRm 12, read.
    /// let esr = 0x18 << 26 | 1 << 25 | 3 << 20 | 3 << 14 | 9 << 10 | 2 << 5 | 12 << 1 | 1;
    /// assert_eq!(pmu.handle_esr(esr, Pstate::EL1, &mut x), Ok(Trap::Pmu(Outcome::Read(6 << 11))));
    /// assert_eq!(x[2], 6 << 11); // N = 6
    /// // An instruction abort (EC 0x20) is not a system register access.
    /// assert!(pmu.handle_esr(0x20 << 26 | 1 << 25, Pstate::EL1, &mut x).is_err());
    /// # Ok::<(), vpmu::config::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`DecodeError`] if the syndrome is not a system register access (see
    /// [`decode_esr`]). Nothing changes then.
    #[inline]
    pub fn handle_esr(&mut self, esr: u64, pstate: Pstate, regs: &mut impl GuestRegs) -> Result<Trap, DecodeError> {
        // The common case in one load: an MRS/MSR or MRC/MCR of a PMU register. `esr >> 20` is
        // EC, IL and op0 with the RES0 upper word and ISS[24:22] (for MRC/MCR, `esr >> 25`); the
        // register's fields index a table built from the register table at compile time.
        let iss = (esr & ISS_MASK) as u32;
        let (reg, aarch32) = if esr >> 20 == (u64::from(EC_SYS64) << 1 | 1) << 5 | 3 {
            (reg::a64_fast(iss), false)
        } else if esr >> 25 == u64::from(EC_CP15_32) << 1 | 1 {
            (reg::cp15_fast(iss), true)
        } else {
            (None, false)
        };
        let Some(reg) = reg else { return self.handle_esr_decoded(esr, pstate, regs) };
        if pstate.el() == El::El1 && self.el == El::El1 && (!aarch32 || pstate.passes(iss_cond(iss.into()))) {
            if let Some(out) = self.quick(reg, iss, aarch32, regs) {
                return Ok(Trap::Pmu(out));
            }
        }
        Ok(Trap::Pmu(self.transfer_iss(reg, iss, aarch32, pstate, regs)))
    }

    /// The trap path's common case, inline and without a call: what an EL1 guest that
    /// stayed at EL1 does most, an access that needs nothing from the backend but a counter's
    /// read. `None`, with nothing changed, sends the access the general way.
    #[inline(always)]
    fn quick(&mut self, reg: PmuReg, iss: u32, aarch32: bool, regs: &mut impl GuestRegs) -> Option<Outcome> {
        let rt = Gpr::new_truncate((iss >> 5) as u8);
        if iss & 1 == 1 {
            let v = self.quick_read(reg)?;
            let v = if aarch32 { v & LOW32 } else { v };
            set_gpr(regs, rt, v);
            Some(Outcome::Read(v))
        } else {
            let v = if rt.is_zero_reg() { 0 } else { regs.get(rt.get()) };
            self.quick_write(reg, if aarch32 { v & LOW32 } else { v }, aarch32)
        }
    }

    /// The general way for an `MRS`/`MSR` or `MRC`/`MCR` (`aarch32`) of `reg` that
    /// [`Pmu::quick`] left: the AArch32 condition, then the handlers. Out of line, so the
    /// inline part stays small.
    #[inline(never)]
    fn transfer_iss(&mut self, reg: PmuReg, iss: u32, aarch32: bool, pstate: Pstate, regs: &mut impl GuestRegs) -> Outcome {
        if aarch32 && !pstate.passes(iss_cond(iss.into())) {
            return Outcome::ConditionFailed;
        }
        self.transfer(reg, iss & 1 == 1, Gpr::new_truncate((iss >> 5) as u8), aarch32, pstate.el(), regs)
    }

    /// Every other syndrome: the decoder's way, out of line.
    #[cold]
    #[inline(never)]
    fn handle_esr_decoded(&mut self, esr: u64, pstate: Pstate, regs: &mut impl GuestRegs) -> Result<Trap, DecodeError> {
        Ok(match decode_esr(esr)? {
            Decoded::Pmu(a) => Trap::Pmu(self.handle_access(a, pstate, regs)),
            Decoded::NotPmu(o) => Trap::NotPmu(o),
        })
    }

    /// The trap path's shortcut for the commonest reads by an EL1 guest that stayed at EL1:
    /// the value, or `None` (nothing changed) when the read must take the general way (a
    /// fault, an index through `PMSELR`, a `CHAIN` counter, a side effect).
    #[inline(always)]
    fn quick_read(&mut self, reg: PmuReg) -> Option<u64> {
        let n = self.cfg.counters;
        Some(match reg {
            PmuReg::Pmcr => self.pmcr_value(),
            PmuReg::Pmselr => self.pmselr.into(),
            PmuReg::Pmcntenset | PmuReg::Pmcntenclr => self.cnten.into(),
            PmuReg::Pmintenset | PmuReg::Pmintenclr => self.inten.into(),
            PmuReg::Pmuserenr => self.userenr.bits(),
            PmuReg::Pmovsset | PmuReg::Pmovsclr => {
                // An overflow the backend has reached but not yet signalled is the guest's already.
                self.handle_overflows();
                self.ovs.into()
            }
            PmuReg::Pmceid0 => self.ceid[0],
            PmuReg::Pmceid1 => self.ceid[1],
            PmuReg::Pmccfiltr => self.quick_type(TypeReg::Pmccfiltr)?,
            PmuReg::Pmevtyper(c) => self.quick_type(TypeReg::Pmevtyper(c))?,
            PmuReg::Pmxevtyper => self.quick_type(TypeReg::Pmxevtyper)?,
            PmuReg::Pmccntr => self.quick_counter(CYCLE_COUNTER_BIT)?,
            PmuReg::Pmevcntr(c) if c.get() < n => self.quick_counter(c.get())?,
            PmuReg::Pmxevcntr if self.pmselr < n => self.quick_counter(self.pmselr)?,
            _ => return None,
        })
    }

    /// A read of an event type for [`Pmu::quick_read`]: `None` for a counter that does not
    /// exist.
    #[inline(always)]
    fn quick_type(&self, reg: TypeReg) -> Option<u64> {
        Some(self.pmc(self.type_counter(reg)?.index()).evtyper.into())
    }

    /// A read of counter `i` (below 32) for [`Pmu::quick_read`]: `None` for an odd counter
    /// counting `CHAIN`, whose even partner must be folded first.
    #[inline(always)]
    fn quick_counter(&mut self, i: u8) -> Option<u64> {
        let i = usize::from(i & 31);
        if i % 2 == 1 && self.event_of(i) == EVENT_CHAIN {
            return None;
        }
        self.fold(i);
        Some(self.pmc(i).value)
    }

    /// The trap path's writes by an EL1 guest that stayed at EL1: the common ones in place,
    /// the rest by a direct call of their handler. `None` (nothing changed) for a register
    /// that is not writable: the general way answers.
    #[inline(always)]
    fn quick_write(&mut self, reg: PmuReg, v: u64, aarch32: bool) -> Option<Outcome> {
        let p = Params { op: Op::Write(v), aarch32, el: El::El1 };
        match reg {
            // The kernel's PMCR write that changes nothing (its start, with E already set).
            PmuReg::Pmcr
                if !Pmcr::from_bits_truncate(v).intersects(Pmcr::P | Pmcr::C)
                    && self.stored_pmcr(Pmcr::from_bits_truncate(v)) == self.pmcr => {}
            PmuReg::Pmcr => self.write_pmcr(Pmcr::from_bits_truncate(v)),
            PmuReg::Pmselr => return Some(self.access_pmselr(p)),
            PmuReg::Pmcntenset if self.cnten_change(SetClr::Set, v) == 0 => {}
            PmuReg::Pmcntenclr if self.cnten_change(SetClr::Clr, v) == 0 => {}
            PmuReg::Pmcntenset => return Some(self.access_pmcnten(SetClr::Set, p)),
            PmuReg::Pmcntenclr => return Some(self.access_pmcnten(SetClr::Clr, p)),
            PmuReg::Pmintenset => return Some(self.access_pminten(SetClr::Set, p)),
            PmuReg::Pmintenclr => return Some(self.access_pminten(SetClr::Clr, p)),
            PmuReg::Pmovsset => return Some(self.access_pmovs(SetClr::Set, p)),
            PmuReg::Pmovsclr => return Some(self.access_pmovs(SetClr::Clr, p)),
            PmuReg::Pmuserenr => return Some(self.access_pmuserenr(p)),
            PmuReg::Pmswinc => return Some(self.access_pmswinc(p)),
            PmuReg::Pmccntr => return Some(self.access_pmu_evcntr(CounterReg::Pmccntr, p)),
            PmuReg::Pmevcntr(n) => return Some(self.access_pmu_evcntr(CounterReg::Pmevcntr(n), p)),
            PmuReg::Pmxevcntr => return Some(self.access_pmu_evcntr(CounterReg::Pmxevcntr, p)),
            PmuReg::Pmccfiltr => return Some(self.access_pmu_evtyper(TypeReg::Pmccfiltr, p)),
            PmuReg::Pmevtyper(n) => return Some(self.access_pmu_evtyper(TypeReg::Pmevtyper(n), p)),
            PmuReg::Pmxevtyper => return Some(self.access_pmu_evtyper(TypeReg::Pmxevtyper, p)),
            _ => return None,
        }
        Some(Outcome::Written)
    }

    /// Decodes an A64 `MRS`/`MSR` instruction word and emulates it (for emulators).
    ///
    /// # Errors
    ///
    /// [`DecodeError::NotSysregMove`] if the word is not an `MRS`/`MSR`. Nothing changes then.
    pub fn handle_insn(&mut self, insn: u32, el: El, regs: &mut impl GuestRegs) -> Result<Trap, DecodeError> {
        Ok(match decode_insn(insn)? {
            Decoded::Pmu(a) => Trap::Pmu(self.handle_access(a, Pstate::from(el), regs)),
            Decoded::NotPmu(o) => Trap::NotPmu(o),
        })
    }

    /// The guest's 64-bit `MRS` of `reg` at `el`, without general-purpose registers: every
    /// guest rule applies (`PMUSERENR` at EL0, UNDEFINED encodings). For the VMM's view,
    /// without guest rules, use [`Pmu::get_reg`].
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::{config::PmuConfig, reg::PmuReg, El, Outcome, Pmu, SoftBackend};
    /// let mut pmu = Pmu::new(PmuConfig::default(), SoftBackend::new())?;
    /// assert_eq!(pmu.read(PmuReg::Pmcr, El::El0), Outcome::TrapToEl1); // PMUSERENR is 0
    /// assert_eq!(pmu.get_reg(PmuReg::Pmcr), Ok(6 << 11));
    /// # Ok::<(), vpmu::config::ConfigError>(())
    /// ```
    pub fn read(&mut self, reg: PmuReg, el: El) -> Outcome {
        self.emulate(reg, Params::read(el))
    }

    /// The guest's 64-bit `MSR` of `value` to `reg` at `el`, without general-purpose
    /// registers: every guest rule and action applies (`PMCR.P`, `PMSWINC`). For the VMM's
    /// raw write, use [`Pmu::set_reg`].
    pub fn write(&mut self, reg: PmuReg, value: u64, el: El) -> Outcome {
        self.emulate(reg, Params::write(value, el))
    }

    /// A guest access to `reg` as the handler API sees it ([`Params`]: read or write, 32- or
    /// 64-bit, the exception level): the dispatch to the per-register handlers
    /// ([`Pmu::access_pmcr`], ...), for a host that decoded the access itself.
    #[inline(always)]
    pub fn emulate(&mut self, reg: PmuReg, p: Params) -> Outcome {
        match reg {
            PmuReg::Pmcr => self.access_pmcr(p),
            PmuReg::Pmselr => self.access_pmselr(p),
            PmuReg::Pmceid0 => self.access_pmceid(PmceidReg::Pmceid0, p),
            PmuReg::Pmceid1 => self.access_pmceid(PmceidReg::Pmceid1, p),
            PmuReg::Pmceid2 => self.access_pmceid(PmceidReg::Pmceid2, p),
            PmuReg::Pmceid3 => self.access_pmceid(PmceidReg::Pmceid3, p),
            PmuReg::Pmccntr => self.access_pmu_evcntr(CounterReg::Pmccntr, p),
            PmuReg::Pmevcntr(n) => self.access_pmu_evcntr(CounterReg::Pmevcntr(n), p),
            PmuReg::Pmxevcntr => self.access_pmu_evcntr(CounterReg::Pmxevcntr, p),
            PmuReg::Pmccfiltr => self.access_pmu_evtyper(TypeReg::Pmccfiltr, p),
            PmuReg::Pmevtyper(n) => self.access_pmu_evtyper(TypeReg::Pmevtyper(n), p),
            PmuReg::Pmxevtyper => self.access_pmu_evtyper(TypeReg::Pmxevtyper, p),
            PmuReg::Pmcntenset => self.access_pmcnten(SetClr::Set, p),
            PmuReg::Pmcntenclr => self.access_pmcnten(SetClr::Clr, p),
            PmuReg::Pmintenset => self.access_pminten(SetClr::Set, p),
            PmuReg::Pmintenclr => self.access_pminten(SetClr::Clr, p),
            PmuReg::Pmovsset => self.access_pmovs(SetClr::Set, p),
            PmuReg::Pmovsclr => self.access_pmovs(SetClr::Clr, p),
            PmuReg::Pmswinc => self.access_pmswinc(p),
            PmuReg::Pmuserenr => self.access_pmuserenr(p),
            PmuReg::Pmmir => self.access_pmmir(p),
        }
    }

    /// The checks every access goes through before its handler: the register's direction,
    /// its existence in this PMU version, and EL0's rights (`PMUSERENR`).
    #[inline(always)]
    fn check(&self, reg: PmuReg, p: &Params) -> Result<(), Fault> {
        // Every caller names its register: the table lookup folds to a constant.
        let acc = reg.access();
        let read = p.is_read();
        if (read && !acc.readable) || (!read && !acc.writable) {
            return Err(Fault::Undefined);
        }
        if p.el == El::El0 && !self.el0_may(reg, read) {
            if !acc.el0 || reg == PmuReg::Pmuserenr {
                return Err(Fault::Undefined);
            }
            return Err(match self.cfg.el0_denial {
                El0Denial::TrapToEl1 => Fault::TrapToEl1,
                El0Denial::Undefined => Fault::Undefined,
            });
        }
        Ok(())
    }

    /// Whether EL0 may make this access under the current `PMUSERENR`.
    fn el0_may(&self, reg: PmuReg, read: bool) -> bool {
        let u = self.userenr;
        match reg {
            PmuReg::Pmintenset | PmuReg::Pmintenclr | PmuReg::Pmmir => false,
            PmuReg::Pmuserenr => read,
            _ if u.contains(Pmuserenr::EN) => true,
            PmuReg::Pmevcntr(_) | PmuReg::Pmxevcntr => read && u.contains(Pmuserenr::ER),
            PmuReg::Pmselr => u.contains(Pmuserenr::ER),
            PmuReg::Pmccntr => read && u.contains(Pmuserenr::CR),
            PmuReg::Pmswinc => u.contains(Pmuserenr::SW),
            _ => false,
        }
    }

    // ------------------------------------------------------------------------------------
    // Per-register handlers
    // ------------------------------------------------------------------------------------

    /// `PMCR_EL0`: stores E, D, X, DP, LC (RES1 without AArch32 EL0) and LP (PMUv3p5); `P`
    /// zeroes every event counter (all 64 bits), `C` the cycle counter; both read as 0. `N`,
    /// `IDCODE` and `IMP` come from the configuration; writes to them are ignored.
    #[inline]
    pub fn access_pmcr(&mut self, p: Params) -> Outcome {
        if let Err(f) = self.check(PmuReg::Pmcr, &p) {
            return f.into();
        }
        match p.op {
            Op::Read => Outcome::Read(self.pmcr_value()),
            Op::Write(v) => {
                self.write_pmcr(Pmcr::from_bits_truncate(v));
                Outcome::Written
            }
        }
    }

    /// A guest write of `PMCR`: stores what may be stored, performs `P` and `C`, and brings the
    /// backend in line with the counters whose counting or overflow point changed.
    fn write_pmcr(&mut self, v: Pmcr) {
        let reset = v & (Pmcr::P | Pmcr::C);
        let old = self.pmcr;
        let new = self.stored_pmcr(v);
        let events = self.valid_mask() & !(1 << CYCLE_COUNTER_BIT);
        let cycle = 1 << CYCLE_COUNTER_BIT;
        let mut affected = 0u32;
        if (old ^ new).intersects(Pmcr::E | Pmcr::LP) || reset.contains(Pmcr::P) {
            affected |= events;
        }
        if (old ^ new).intersects(Pmcr::E | Pmcr::LC | Pmcr::D) || reset.contains(Pmcr::C) {
            affected |= cycle;
        }
        for_each_bit(affected, |i| self.fold(i));
        self.pmcr = new;
        if reset.contains(Pmcr::P) {
            for_each_bit(events, |i| self.update(i, |c| c.value = 0));
        }
        if reset.contains(Pmcr::C) {
            self.update(CYCLE_COUNTER_BIT.into(), |c| {
                c.value = 0;
                c.prescale = 0;
            });
        }
        for_each_bit(affected, |i| self.rearm(i));
    }

    /// `PMSELR_EL0`: only `SEL`, bits \[4:0\]. Any value may be written, even one that selects
    /// no counter: the `PMXEV*` accesses through it are what fail.
    #[inline]
    pub fn access_pmselr(&mut self, p: Params) -> Outcome {
        if let Err(f) = self.check(PmuReg::Pmselr, &p) {
            return f.into();
        }
        match p.op {
            Op::Read => Outcome::Read(self.pmselr.into()),
            Op::Write(v) => {
                self.pmselr = (v & 0x1f) as u8;
                Outcome::Written
            }
        }
    }

    /// `PMCEID0`/`PMCEID1` (and the AArch32 `PMCEID2`/`PMCEID3`, their upper halves):
    /// read-only, writes UNDEFINED. The events the backend supports and the filter allows, plus
    /// `SW_INCR` and `CHAIN`; `STALL_SLOT*` hidden while `PMMIR.SLOTS` is 0; the upper halves
    /// (events 0x4000..) only from PMUv3p1; the AArch32 `PMCEID2`/`PMCEID3` do not exist
    /// before PMUv3p1 (UNDEFINED).
    #[inline]
    pub fn access_pmceid(&mut self, reg: PmceidReg, p: Params) -> Outcome {
        let checked = match reg {
            PmceidReg::Pmceid0 => self.check(PmuReg::Pmceid0, &p),
            PmceidReg::Pmceid1 => self.check(PmuReg::Pmceid1, &p),
            PmceidReg::Pmceid2 | PmceidReg::Pmceid3 if self.cfg.version < PmuVersion::V3p1 => Err(Fault::Undefined),
            PmceidReg::Pmceid2 => self.check(PmuReg::Pmceid2, &p),
            PmceidReg::Pmceid3 => self.check(PmuReg::Pmceid3, &p),
        };
        if let Err(f) = checked {
            return f.into();
        }
        let [c0, c1] = self.ceid;
        let v = match reg {
            PmceidReg::Pmceid0 => c0,
            PmceidReg::Pmceid1 => c1,
            PmceidReg::Pmceid2 => c0 >> 32,
            PmceidReg::Pmceid3 => c1 >> 32,
        };
        Outcome::Read(if p.aarch32 { v & LOW32 } else { v })
    }

    pub(crate) fn compute_ceid(&self) -> [u64; 2] {
        let mut ceid = [0u64; 2];
        for (half, base) in [(0u32, 0u16), (32, 0x4000)] {
            if half == 32 && self.cfg.version < PmuVersion::V3p1 {
                break;
            }
            for bit in 0..64u16 {
                let event = base | bit;
                let visible = event == EVENT_SW_INCR || event == EVENT_CHAIN || self.countable(event);
                if visible {
                    let (reg, b) = (usize::from(bit >> 5), u32::from(bit & 31) | half);
                    if let Some(c) = ceid.get_mut(reg) {
                        *c |= 1 << b;
                    }
                }
            }
        }
        ceid
    }

    /// `PMEVCNTR<n>_EL0`, `PMCCNTR_EL0` and `PMXEVCNTR_EL0`. Event counters are 32 bits before
    /// PMUv3p5 (upper bits read 0, writes to them ignored), 64 from it; the cycle counter is
    /// 64 bits. An AArch32 write keeps bits \[63:32\] and stores \[31:0\]. UNDEFINED: counters
    /// `n >= N`, and `PMXEVCNTR` with `PMSELR.SEL` = 31 (vpmu's choice, which FEAT_FGT
    /// requires: KVM aliases `PMCCNTR`, QEMU reads zero) or `SEL` in `N..=30`. That rule
    /// applies to *permitted* accesses: an EL0 access `PMUSERENR` forbids is
    /// [`Outcome::TrapToEl1`] whatever the index.
    #[inline]
    pub fn access_pmu_evcntr(&mut self, reg: CounterReg, p: Params) -> Outcome {
        let (checked, id) = match reg {
            CounterReg::Pmccntr => (self.check(PmuReg::Pmccntr, &p), Some(CounterId::Cycle)),
            CounterReg::Pmevcntr(n) => (self.check(PmuReg::Pmevcntr(n), &p), self.event_counter(n.get())),
            CounterReg::Pmxevcntr => (self.check(PmuReg::Pmxevcntr, &p), self.event_counter(self.pmselr)),
        };
        if let Err(f) = checked {
            return f.into();
        }
        let Some(id) = id else { return Outcome::Undefined };
        let i = id.index();
        if i % 2 == 1 && self.event_of(i) == EVENT_CHAIN {
            // The even counter below may have carried into this one without a signal yet.
            self.fold(i.wrapping_sub(1));
        }
        self.fold(i);
        let old = self.pmc(i).value;
        match p.op {
            Op::Read => Outcome::Read(if p.aarch32 { old & LOW32 } else { old }),
            Op::Write(v) => {
                self.set_counter(id, if p.aarch32 { (old & !LOW32) | (v & LOW32) } else { v });
                Outcome::Written
            }
        }
    }

    /// The counter whose type `reg` holds, if it exists.
    #[inline(always)]
    fn type_counter(&self, reg: TypeReg) -> Option<CounterId> {
        match reg {
            TypeReg::Pmccfiltr => Some(CounterId::Cycle),
            TypeReg::Pmevtyper(n) => self.event_counter(n.get()),
            TypeReg::Pmxevtyper if self.pmselr == CYCLE_COUNTER_BIT => Some(CounterId::Cycle),
            TypeReg::Pmxevtyper => self.event_counter(self.pmselr),
        }
    }

    fn event_counter(&self, n: u8) -> Option<CounterId> {
        if n < self.cfg.counters {
            EventCounter::new(n).map(CounterId::Event)
        } else {
            None
        }
    }

    /// `PMEVTYPER<n>_EL0`, `PMCCFILTR_EL0` and `PMXEVTYPER_EL0` (which reaches `PMCCFILTR`
    /// when `PMSELR.SEL` = 31). Writable: the event number (10 bits before PMUv3p1, 16 from
    /// it; none for `PMCCFILTR`), `P` and `U`, `NSK`, `NSU` and `M` with EL3 (`NSH` is RES0: no guest EL2 is modelled).
    /// UNDEFINED for counters `n >= N`, direct or through `SEL`.
    #[inline]
    pub fn access_pmu_evtyper(&mut self, reg: TypeReg, p: Params) -> Outcome {
        let checked = match reg {
            TypeReg::Pmccfiltr => self.check(PmuReg::Pmccfiltr, &p),
            TypeReg::Pmevtyper(n) => self.check(PmuReg::Pmevtyper(n), &p),
            TypeReg::Pmxevtyper => self.check(PmuReg::Pmxevtyper, &p),
        };
        if let Err(f) = checked {
            return f.into();
        }
        let Some(id) = self.type_counter(reg) else { return Outcome::Undefined };
        let i = id.index();
        match p.op {
            Op::Read => Outcome::Read(self.pmc(i).evtyper.into()),
            Op::Write(v) => {
                self.set_evtyper(id, v);
                Outcome::Written
            }
        }
    }

    /// Sets a counter's value (the bits it has), after collecting what was counted before,
    /// and re-arms it with the new distance to overflow. No overflow side effect.
    pub(crate) fn set_counter(&mut self, id: CounterId, v: u64) {
        let i = id.index();
        let mask = self.value_mask(i);
        self.fold(i);
        self.update(i, |c| {
            c.value = v & mask;
            c.prescale = 0;
        });
        self.rearm(i);
    }

    /// Sets a counter's event type (the bits this PMU implements) and reprograms it. The odd
    /// counter above an even one needs nothing: `CHAIN` is counted here, not by the backend.
    pub(crate) fn set_evtyper(&mut self, id: CounterId, v: u64) {
        let i = id.index();
        let mask = self.evtyper_mask(id);
        self.fold(i);
        self.update(i, |c| c.evtyper = (v & mask) as u32);
        self.program(i);
    }

    pub(crate) fn evtyper_mask(&self, id: CounterId) -> u64 {
        // NSH stays RES0: vpmu models no guest EL2 (nothing the guest runs is counted at EL2).
        let mut f = EvtypeFilter::P | EvtypeFilter::U;
        if self.cfg.el3 {
            f |= EvtypeFilter::NSK | EvtypeFilter::NSU | EvtypeFilter::M;
        }
        match id {
            CounterId::Cycle => f.bits(),
            CounterId::Event(_) => f.bits() | u64::from(self.cfg.version.event_mask()),
        }
    }

    /// `PMCNTENSET_EL0` / `PMCNTENCLR_EL0`: both read the enables; a write sets or clears the
    /// bits written as 1. Bits of counters that do not exist read 0 and ignore writes.
    #[inline]
    pub fn access_pmcnten(&mut self, reg: SetClr, p: Params) -> Outcome {
        let checked = match reg {
            SetClr::Set => self.check(PmuReg::Pmcntenset, &p),
            SetClr::Clr => self.check(PmuReg::Pmcntenclr, &p),
        };
        if let Err(f) = checked {
            return f.into();
        }
        match p.op {
            Op::Read => Outcome::Read(self.cnten.into()),
            Op::Write(v) => {
                let changed = self.cnten_change(reg, v);
                for_each_bit(changed, |i| self.fold(i));
                self.cnten ^= changed;
                for_each_bit(changed, |i| self.rearm(i));
                Outcome::Written
            }
        }
    }

    /// The enable bits a `PMCNTENSET`/`PMCNTENCLR` write of `v` flips.
    #[inline(always)]
    fn cnten_change(&self, reg: SetClr, v: u64) -> u32 {
        let bits = (v as u32) & self.valid_mask();
        match reg {
            SetClr::Set => bits & !self.cnten,
            SetClr::Clr => bits & self.cnten,
        }
    }

    /// `PMINTENSET_EL1` / `PMINTENCLR_EL1`: the overflow interrupt enables, set/clear
    /// semantics. UNDEFINED at EL0.
    #[inline]
    pub fn access_pminten(&mut self, reg: SetClr, p: Params) -> Outcome {
        let checked = match reg {
            SetClr::Set => self.check(PmuReg::Pmintenset, &p),
            SetClr::Clr => self.check(PmuReg::Pmintenclr, &p),
        };
        if let Err(f) = checked {
            return f.into();
        }
        let mask = self.valid_mask();
        set_clr(&mut self.inten, reg, mask, p.op)
    }

    /// `PMOVSSET_EL0` / `PMOVSCLR_EL0`: the overflow flags, set/clear semantics. Setting a
    /// flag can raise the interrupt, clearing one lower it.
    #[inline]
    pub fn access_pmovs(&mut self, reg: SetClr, p: Params) -> Outcome {
        let checked = match reg {
            SetClr::Set => self.check(PmuReg::Pmovsset, &p),
            SetClr::Clr => self.check(PmuReg::Pmovsclr, &p),
        };
        if let Err(f) = checked {
            return f.into();
        }
        // An overflow the backend has reached but not yet signalled is the guest's already.
        self.handle_overflows();
        let mask = self.valid_mask();
        set_clr(&mut self.ovs, reg, mask, p.op)
    }

    /// `PMSWINC_EL0`: write-only. Increments each event counter whose bit is written as 1,
    /// that exists, is typed `SW_INCR`, is enabled in `PMCNTENSET` with `PMCR.E` = 1, and
    /// whose filter counts at the exception level of the write. Bit 31 is ignored.
    #[inline]
    pub fn access_pmswinc(&mut self, p: Params) -> Outcome {
        if let Err(f) = self.check(PmuReg::Pmswinc, &p) {
            return f.into();
        }
        let Op::Write(v) = p.op else { return Outcome::Undefined };
        self.swinc(v, p.el);
        Outcome::Written
    }

    /// What a permitted `PMSWINC` write of `v` at `el` does.
    #[inline(always)]
    fn swinc(&mut self, v: u64, el: El) {
        if !self.pmcr.contains(Pmcr::E) {
            return;
        }
        let bits = (v as u32) & self.cnten & self.valid_mask() & !(1 << CYCLE_COUNTER_BIT);
        for_each_bit(bits, |i| {
            if self.event_of(i) == EVENT_SW_INCR && self.counts_at(i, el) {
                let carries = self.add(i, 1);
                if carries != 0 {
                    self.overflowed(i, carries, el);
                }
            }
        });
    }

    /// `PMUSERENR_EL0`: `EN`, `SW`, `CR`, `ER`. Readable at EL0, writable only at EL1.
    #[inline]
    pub fn access_pmuserenr(&mut self, p: Params) -> Outcome {
        if let Err(f) = self.check(PmuReg::Pmuserenr, &p) {
            return f.into();
        }
        match p.op {
            Op::Read => Outcome::Read(self.userenr.bits()),
            Op::Write(v) => {
                self.userenr = Pmuserenr::from_bits_truncate(v);
                Outcome::Written
            }
        }
    }

    /// `PMMIR_EL1`: read-only, from the configuration; UNDEFINED before PMUv3p4 and at EL0.
    #[inline]
    pub fn access_pmmir(&mut self, p: Params) -> Outcome {
        if self.cfg.version < PmuVersion::V3p4 {
            return Outcome::Undefined;
        }
        if let Err(f) = self.check(PmuReg::Pmmir, &p) {
            return f.into();
        }
        Outcome::Read(self.cfg.pmmir.into())
    }

    // ------------------------------------------------------------------------------------
    // Counting
    // ------------------------------------------------------------------------------------

    /// Collects what the backend counted for every programmed counter, sets the overflow
    /// flags, counts `CHAIN`, and re-arms the counters that overflowed. Call it when the
    /// backend signals that a counter reached its period (a perf overflow, a physical PMU
    /// interrupt); then update the interrupt line from [`Pmu::irq_level`]. O(N).
    pub fn sync(&mut self) {
        let pending = self.backend.take_overflows() & self.live;
        for i in 0..32 {
            if pending & bit(i) != 0 {
                self.settle(i);
            } else {
                self.fold(i);
            }
        }
    }

    pub(crate) fn pmc(&self, i: usize) -> Pmc {
        self.pmc.get(i).copied().unwrap_or(Pmc::RESET)
    }

    pub(crate) fn update(&mut self, i: usize, f: impl FnOnce(&mut Pmc)) {
        if let Some(c) = self.pmc.get_mut(i) {
            f(c);
        }
    }

    pub(crate) fn pmcr_value(&self) -> u64 {
        self.pmcr.bits() | self.pmcr_id
    }

    /// The PMCR bits that are stored, from a written value.
    pub(crate) fn stored_pmcr(&self, v: Pmcr) -> Pmcr {
        let mut keep = Pmcr::E | Pmcr::D | Pmcr::X | Pmcr::DP | Pmcr::LC;
        if self.cfg.version >= PmuVersion::V3p5 {
            keep |= Pmcr::LP;
        }
        let mut new = v & keep;
        if !self.cfg.aarch32_el0 {
            new |= Pmcr::LC;
        }
        new
    }

    pub(crate) fn event_of(&self, i: usize) -> u16 {
        if i == usize::from(CYCLE_COUNTER_BIT) {
            EVENT_CPU_CYCLES
        } else {
            // Bits [15:0] are the event: a stored type holds only the bits `evtyper_mask`
            // allows (every write and restore masks or checks), so no version mask here.
            self.pmc(i).evtyper as u16
        }
    }

    /// The architecture's filter rule: count at EL1 iff `P == NSK`, at EL0 iff `U == NSU`.
    pub(crate) fn counts_at(&self, i: usize, el: El) -> bool {
        let f = EvtypeFilter::from_bits_truncate(self.pmc(i).evtyper.into());
        match el {
            El::El1 => f.contains(EvtypeFilter::P) == f.contains(EvtypeFilter::NSK),
            El::El0 => f.contains(EvtypeFilter::U) == f.contains(EvtypeFilter::NSU),
        }
    }

    fn enabled(&self, i: usize) -> bool {
        self.pmcr.contains(Pmcr::E) && self.cnten & bit(i) != 0
    }

    /// Bits of the counter's value that exist.
    pub(crate) fn value_mask(&self, i: usize) -> u64 {
        if i == usize::from(CYCLE_COUNTER_BIT) || self.cfg.version >= PmuVersion::V3p5 {
            u64::MAX
        } else {
            LOW32
        }
    }

    /// The width at whose carry the counter overflows: 32 or 64.
    fn overflow_bits(&self, i: usize) -> u32 {
        let long = if i == usize::from(CYCLE_COUNTER_BIT) { self.pmcr.contains(Pmcr::LC) } else { self.pmcr.contains(Pmcr::LP) };
        if long {
            64
        } else {
            32
        }
    }

    /// Whether the cycle counter ticks once per 64 cycles.
    fn divided(&self, i: usize) -> bool {
        i == usize::from(CYCLE_COUNTER_BIT) && self.pmcr.contains(Pmcr::D) && !self.pmcr.contains(Pmcr::LC)
    }

    /// Whether the backend may count `event` for the guest: it supports it, the filter allows
    /// it, and it is implemented (`STALL_SLOT*` are not while `PMMIR.SLOTS` is 0). `PMCEID`
    /// advertises exactly these, plus `SW_INCR` and `CHAIN`.
    fn countable(&self, event: u16) -> bool {
        self.backend.supports(event) && self.cfg.event_allowed(event) && !(self.cfg.pmmir & 0xff == 0 && EVENTS_STALL_SLOT.contains(&event))
    }

    /// What the backend should count for counter `i` now, if anything.
    fn request(&self, i: usize) -> Option<CountRequest> {
        let valid = u8::try_from(i).is_ok_and(|b| self.pmu_counter_idx_valid(b));
        if !valid || !self.enabled(i) {
            return None;
        }
        let event = self.event_of(i);
        if event == EVENT_SW_INCR || event == EVENT_CHAIN || !self.countable(event) {
            return None;
        }
        let (el0, el1) = (self.counts_at(i, El::El0), self.counts_at(i, El::El1));
        if !el0 && !el1 {
            return None;
        }
        let c = self.pmc(i);
        let bits = self.overflow_bits(i);
        let low = if bits == 64 { u128::from(c.value) } else { u128::from(c.value & LOW32) };
        let ticks = (1u128 << bits).wrapping_sub(low);
        let events = if self.divided(i) { ticks.saturating_mul(64).saturating_sub(c.prescale.into()) } else { ticks };
        let period = u64::try_from(events).unwrap_or(u64::MAX);
        Some(CountRequest { event, el0, el1, period })
    }

    /// Brings the backend in line with counter `i` after a change of what it counts (its event
    /// type, or a restored state): programs it afresh, or stops it.
    pub(crate) fn program(&mut self, i: usize) {
        self.arm(i, false);
    }

    /// Brings the backend in line with counter `i` after a change that leaves its event and
    /// filter alone (its value, its enable, `PMCR`, an overflow): a counting counter gets only
    /// a new period ([`CounterBackend::set_period`]); one that stops counting is stopped, one
    /// that starts is programmed.
    pub(crate) fn rearm(&mut self, i: usize) {
        self.arm(i, true);
    }

    fn arm(&mut self, i: usize, same_event: bool) {
        let Some(id) = counter_id(i) else { return };
        let b = bit(i);
        match self.request(i) {
            Some(req) => {
                let r = if same_event && self.live & b != 0 { self.backend.set_period(id, &req) } else { self.backend.program(id, &req) };
                self.held |= b;
                match r {
                    Ok(()) => self.live |= b,
                    Err(e) => {
                        self.live &= !b;
                        self.backend_error = Some(e);
                    }
                }
            }
            None if self.live & b != 0 => {
                self.backend.stop(id);
                self.live &= !b;
            }
            None => {}
        }
    }

    /// Adds what the backend counted for counter `i` since the last look; re-arms it if it
    /// overflowed (its period is spent).
    #[inline]
    pub(crate) fn fold(&mut self, i: usize) {
        let carries = self.collect(i);
        if carries != 0 {
            self.fold_overflowed(i, carries);
        }
    }

    /// The first half of [`Pmu::fold`]: adds what the backend counted for counter `i` since
    /// the last look, and returns the carries ([`Pmu::add`]). Non-zero: finish with
    /// [`Pmu::fold_overflowed`].
    #[inline(always)]
    fn collect(&mut self, i: usize) -> u64 {
        let Some(id) = counter_id(i) else { return 0 };
        if (self.live >> (i & 31)) & 1 == 0 {
            return 0;
        }
        let d = self.backend.read(id);
        if d == 0 {
            return 0;
        }
        self.add(i, d)
    }

    /// The second half of [`Pmu::fold`], when the counter overflowed: the flag, `CHAIN`, and
    /// the next period.
    #[cold]
    #[inline(never)]
    fn fold_overflowed(&mut self, i: usize, carries: u64) {
        self.overflowed(i, carries, self.overflow_el(i));
        self.rearm(i);
    }

    /// A counter the backend reported as having reached its period: collect, and re-arm
    /// whether or not the architecture saw an overflow (an early report from narrow hardware
    /// needs the remaining distance).
    fn settle(&mut self, i: usize) {
        let Some(id) = counter_id(i) else { return };
        let d = self.backend.read(id);
        let carries = self.add(i, d);
        if carries != 0 {
            self.overflowed(i, carries, self.overflow_el(i));
        }
        self.rearm(i);
    }

    /// The exception level at which counter `i`'s events happened, for `CHAIN`: the one
    /// level its filter counts at, or, when it counts at both, the guest's level as last known.
    fn overflow_el(&self, i: usize) -> El {
        match (self.counts_at(i, El::El0), self.counts_at(i, El::El1)) {
            (true, false) => El::El0,
            (false, true) => El::El1,
            _ => self.el,
        }
    }

    /// Adds `d` events to counter `i`: the cycle counter's divider, the value's width. Returns
    /// the carries out of bit 31 or 63 (the overflow width): non-zero means it overflowed, and
    /// the caller goes on with [`Pmu::overflowed`]. Inline and branch-light: the trap path
    /// folds a counter on every read.
    #[inline(always)]
    fn add(&mut self, i: usize, d: u64) -> u64 {
        let divided = self.divided(i);
        let wide = self.overflow_bits(i) == 64;
        let mask = self.value_mask(i);
        let Some(c) = self.pmc.get_mut(i) else { return 0 };
        let d = if divided {
            let total = u64::from(c.prescale).saturating_add(d);
            c.prescale = (total % 64) as u8;
            total / 64
        } else {
            d
        };
        let (sum, carry) = (if wide { c.value } else { c.value & LOW32 }).overflowing_add(d);
        c.value = c.value.wrapping_add(d) & mask;
        if wide {
            carry.into()
        } else {
            (sum >> 32) | (u64::from(carry) << 32)
        }
    }

    /// Counter `i` overflowed (`carries` times, from [`Pmu::add`]) at `el`: its overflow flag,
    /// and `CHAIN` into the odd counter above when its own filter counts at `el` (Arm ARM
    /// `AArch64.PMUCycle`: `CountPMUEvents(idx + 1)`).
    #[cold]
    #[inline(never)]
    fn overflowed(&mut self, i: usize, carries: u64, el: El) {
        self.ovs |= bit(i);
        let odd = i.wrapping_add(1);
        if i % 2 == 0 && i < 30 && self.chains(odd) && self.counts_at(odd, el) {
            let c = self.add(odd, carries);
            if c != 0 {
                self.overflowed(odd, c, el);
            }
        }
    }

    /// Whether odd counter `i` counts `CHAIN` from the even counter below it now.
    fn chains(&self, i: usize) -> bool {
        u8::try_from(i).is_ok_and(|b| b < self.cfg.counters)
            && self.enabled(i)
            && self.event_of(i) == EVENT_CHAIN
            && !self.pmcr.contains(Pmcr::LP)
    }
}

/// The emulator's side: for any backend fed with exact counts ([`EmulatedBackend`], such as
/// [`SoftBackend`](crate::SoftBackend)).
impl<B: EmulatedBackend> Pmu<B> {
    /// Reports `k` occurrences of `event` at the current exception level, and handles any
    /// overflow they cause (overflow flags, `CHAIN`, the interrupt level).
    ///
    /// Report cycles as `CPU_CYCLES` (0x11): they drive `PMCCNTR` and any event counter
    /// counting 0x11. With [`SoftBackend`](crate::SoftBackend), O(1) in the number of counters
    /// counting `event`.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::{config::PmuConfig, reg::PmuReg, El, Pmu, SoftBackend};
    /// let mut pmu = Pmu::new(PmuConfig::default(), SoftBackend::new())?;
    /// let _ = pmu.write(PmuReg::Pmcntenset, 1 << 31, El::El1);
    /// let _ = pmu.write(PmuReg::Pmcr, 1, El::El1);
    /// pmu.count(0x11, 42);
    /// assert_eq!(pmu.read(PmuReg::Pmccntr, El::El1).value(), Some(42));
    /// # Ok::<(), vpmu::config::ConfigError>(())
    /// ```
    #[inline]
    pub fn count(&mut self, event: u16, k: u64) {
        if self.backend.record(event, k) {
            self.sync();
        }
    }

    /// Reports that the guest now runs at `el` (exception entry, `ERET`), so exception-level
    /// filters count exactly.
    pub fn set_el(&mut self, el: El) {
        if el != self.el {
            // Overflows not yet handled happened at the old level.
            self.handle_overflows();
            self.el = el;
        }
        self.backend.set_el(el);
    }

    /// How many more occurrences of `event` at the current exception level make a counter
    /// reach its period (an overflow); `None` if none can. An emulator runs at most this many
    /// before it reports them, so the overflow interrupt is taken after exactly the right
    /// instruction.
    #[must_use]
    pub fn events_until_overflow(&self, event: u16) -> Option<u64> {
        self.backend.events_until_overflow(event)
    }
}

/// Puts a value read into `X<r>`; a read into `XZR` is discarded.
#[inline(always)]
fn set_gpr(regs: &mut impl GuestRegs, r: Gpr, v: u64) {
    if !r.is_zero_reg() {
        regs.set(r.get(), v);
    }
}

/// Set/clear semantics shared by the three bitmap pairs.
fn set_clr(reg: &mut u32, which: SetClr, mask: u32, op: Op) -> Outcome {
    match op {
        Op::Read => Outcome::Read((*reg & mask).into()),
        Op::Write(v) => {
            let bits = (v as u32) & mask;
            match which {
                SetClr::Set => *reg |= bits,
                SetClr::Clr => *reg &= !bits,
            }
            Outcome::Written
        }
    }
}

/// The fields of `PMCR` that come from the configuration (`N`, `IDCODE`, `IMP`), in place.
fn pmcr_id(c: &PmuConfig) -> u64 {
    (u64::from(c.counters) << Pmcr::N_SHIFT) | (u64::from(c.idcode) << Pmcr::IDCODE_SHIFT) | (u64::from(c.imp) << Pmcr::IMP_SHIFT)
}

/// The bits of the counters that exist: `0..N` and 31.
const fn valid_mask(c: &PmuConfig) -> u32 {
    let events = match 1u32.checked_shl(c.counters as u32) {
        Some(b) => b.wrapping_sub(1),
        None => u32::MAX,
    };
    events | (1 << CYCLE_COUNTER_BIT)
}

fn check_backend<B: CounterBackend>(cfg: &PmuConfig, backend: &B) -> Result<(), ConfigError> {
    let max = backend.max_event_counters();
    if cfg.counters > max {
        return Err(ConfigError::TooManyCounters { requested: cfg.counters, max });
    }
    Ok(())
}

fn counter_id(i: usize) -> Option<CounterId> {
    CounterId::from_bit(u8::try_from(i).ok()?)
}

/// The bit of counter `i` in the 32-bit counter bitmaps; 0 for an index that has none.
pub(crate) fn bit(i: usize) -> u32 {
    u32::try_from(i).ok().and_then(|s| 1u32.checked_shl(s)).unwrap_or(0)
}

/// Calls `f` with the index of every set bit of `bits`, lowest first.
pub(crate) fn for_each_bit(mut bits: u32, mut f: impl FnMut(usize)) {
    while bits != 0 {
        f(bits.trailing_zeros() as usize);
        bits &= bits.wrapping_sub(1);
    }
}

impl fmt::Display for El {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            El::El0 => "EL0",
            El::El1 => "EL1",
        })
    }
}
