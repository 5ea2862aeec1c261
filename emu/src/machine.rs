//! [`Machine`]: one unicorn AArch64 vCPU with vpmu as its PMU.
//!
//! How the pieces fit (see the crate docs for the why):
//!
//! - **Counting.** A block hook adds each translation block's length once the block has run
//!   to its end (at the next block's hook); wherever the run is cut (an exception, a stop),
//!   the offset of the PC inside the block says how many of its instructions retired. vpmu
//!   is told lazily: only before a PMU access, an exception level change or a stop.
//! - **PMU registers.** An `MRS`/`MSR` hook hands the instruction word to vpmu. Accesses
//!   that succeed on a register QEMU itself defines are skipped in place (the fast path);
//!   everything else (a register QEMU does not define, an access that must fault) goes back
//!   to QEMU, which raises UNDEFINED for it (unknown register) or traps it (`MDCR_EL3.TPM` is
//!   set, so every PMU access QEMU would do itself traps): the interrupt hook then emulates
//!   it with vpmu and either steps over it or injects the exception into the guest.
//! - **Overflow at the exact instruction.** Before each block, the block hook compares the
//!   instructions retired with the next overflow vpmu predicts. A block that would cross it
//!   is not run; it is run again with unicorn's stop address at the instruction right
//!   after the overflowing one, so the interrupt is taken exactly there.

use unicorn_engine::{Arch, Mode, Prot, Query, RegisterARM64, RegisterARM64CP, Unicorn};
use vpmu::El;

use crate::glue::{Access, GuestPmu};

/// Where guest RAM starts (the `virt` board's RAM base).
pub const RAM_BASE: u64 = 0x4000_0000;
/// Guest RAM size.
pub const RAM_SIZE: u64 = 4 << 20;
/// Where the guest's results buffer is: `X0` on entry.
pub const RESULTS: u64 = RAM_BASE + (2 << 20);
/// The initial `SP_EL1` (top of RAM).
pub const STACK_TOP: u64 = RAM_BASE + RAM_SIZE;
/// `BRK #EXIT_BRK` ends the run (a hypercall to the harness).
pub const EXIT_BRK: u16 = 0xf00d;

/// QEMU's exception numbers, as unicorn's interrupt hook reports them.
const EXCP_UDEF: u32 = 1;
const EXCP_SWI: u32 = 2;
const EXCP_BKPT: u32 = 7;

/// ESR exception classes.
const EC_UNKNOWN: u64 = 0x00;
const EC_SVC64: u64 = 0x15;
const EC_SYS64: u64 = 0x18;
const EC_BRK: u64 = 0x3c;
const ESR_IL: u64 = 1 << 25;

/// PSTATE for an exception taken to EL1h: D, A, I, F masked, M = EL1h.
const PSTATE_EL1H_MASKED: u64 = 0x3c5;
const PSTATE_I: u64 = 1 << 7;

/// What the last instruction of a translation block is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tail {
    Other,
    Branch,
    Eret,
}

/// Direct-mapped cache of block tails: the block hook must not read guest memory for
/// every block.
const TAILS: usize = 4096;

fn classify(insn: u32) -> Tail {
    if insn & 0xffff_fbff == 0xd69f_0bff || insn == 0xd69f_03e0 {
        Tail::Eret // ERET, ERETAA/ERETAB
    } else if insn & 0x7c00_0000 == 0x1400_0000 // B, BL
        || insn & 0xff00_0010 == 0x5400_0000 // B.cond
        || insn & 0x7e00_0000 == 0x3400_0000 // CBZ, CBNZ
        || insn & 0x7e00_0000 == 0x3600_0000 // TBZ, TBNZ
        || insn & 0xfe00_0000 == 0xd600_0000
    // BR, BLR, RET (and their authenticated forms)
    {
        Tail::Branch
    } else {
        Tail::Other
    }
}

/// Why a run failed.
#[derive(Debug)]
pub enum Error {
    /// unicorn reported an error (an unmapped access, an invalid instruction it could not
    /// raise, ...).
    Unicorn(unicorn_engine::uc_error),
    /// The guest took an exception the machine does not model (`intno` is QEMU's number).
    Exception {
        /// QEMU's exception number.
        intno: u32,
        /// The PC.
        pc: u64,
    },
    /// The run did not end within its time limit.
    Timeout,
    /// vpmu rejected the configuration.
    Config(vpmu::config::ConfigError),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Unicorn(e) => write!(f, "unicorn: {e:?}"),
            Error::Exception { intno, pc } => write!(f, "unmodelled exception {intno} at {pc:#x}"),
            Error::Timeout => write!(f, "the guest did not finish in time"),
            Error::Config(e) => write!(f, "vpmu configuration: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<unicorn_engine::uc_error> for Error {
    fn from(e: unicorn_engine::uc_error) -> Self {
        Error::Unicorn(e)
    }
}

/// Counts of what the machine did, for tests and the speed table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Instructions retired (at both exception levels).
    pub instructions: u64,
    /// Branches retired.
    pub branches: u64,
    /// PMU accesses emulated in the `MRS`/`MSR` hook.
    pub fast_accesses: u64,
    /// PMU accesses emulated from QEMU's exception (unknown registers, faults).
    pub slow_accesses: u64,
    /// Exceptions injected into the guest (synchronous ones and IRQs).
    pub exceptions: u64,
    /// PMU overflow interrupts taken by the guest.
    pub irqs: u64,
    /// Times `emu_start` was called.
    pub runs: u64,
}

/// The vCPU's state that the hooks share (unicorn's user data). `repr(C)`: the fields the
/// block hook touches come first, on one cache line.
#[repr(C)]
pub(crate) struct State {
    /// Instructions retired before the current block.
    base: u64,
    blk_start: u64,
    /// Instructions in the current block; 0 once a cut has accounted for it.
    blk_len: u64,
    branches: u64,
    /// `deadline`, or 0 while `irq_wait`: the one comparison the block hook makes.
    check: u64,
    /// Absolute instruction and branch counts at which a counter overflows.
    deadline: u64,
    br_deadline: u64,
    /// The last block looked up: (address, size, tail).
    memo: (u64, u32, Tail),
    blk_tail: Tail,
    /// The previous block ended with an ERET: read the new exception level.
    eret_done: bool,
    /// Track the exception level at every ERET and count branches (some counter needs it);
    /// otherwise the block hook only counts instructions and the exception level is read
    /// when an access needs it.
    precise: bool,
    /// The interrupt line is high but PSTATE.I masks it: poll PSTATE at each block.
    irq_wait: bool,
    el: El,
    /// Instructions and branches already reported to vpmu.
    reported: u64,
    br_reported: u64,
    /// Run again up to this address: the overflow falls inside the block that starts here.
    exit_at: Option<u64>,
    done: bool,
    fault: Option<Error>,
    tails: Vec<(u64, u32, Tail)>,
    stats: Stats,
    pmu: GuestPmu,
}

impl State {
    /// Instructions retired before the instruction at `pc`, inside the current block.
    fn retired_at(&self, pc: u64) -> u64 {
        self.base + pc.wrapping_sub(self.blk_start) / 4
    }

    /// Reports everything up to `retired` instructions to vpmu. The deadlines stay valid
    /// (they are absolute) unless this reaches one: callers that may do so, or that change
    /// the PMU's state, call [`State::rearm`].
    fn flush(&mut self, retired: u64) {
        let n = retired - self.reported;
        let b = self.branches - self.br_reported;
        self.pmu.count(n, b);
        self.reported = retired;
        self.br_reported = self.branches;
    }

    fn rearm(&mut self) {
        self.deadline = self.pmu.insns_until_overflow().map_or(u64::MAX, |n| self.reported.saturating_add(n));
        self.br_deadline = self.pmu.branches_until_overflow().map_or(u64::MAX, |n| self.br_reported.saturating_add(n));
        self.update_check();
    }

    fn update_check(&mut self) {
        self.check = if self.irq_wait { 0 } else { self.deadline };
    }

    /// The run was cut at `pc` (an exception, an emulated instruction): the instructions of
    /// the current block before `pc` retired, plus `extra` (the emulated instruction).
    fn cut(&mut self, pc: u64, extra: u64) {
        self.base = self.retired_at(pc) + extra;
        self.blk_start = pc;
        self.blk_len = 0;
    }

    fn set_el(&mut self, el: El) {
        if el != self.el {
            let now = self.base;
            self.flush(now);
            self.el = el;
            self.pmu.set_el(el);
            self.rearm();
        }
    }
}

fn el_of(pstate: u64) -> El {
    if (pstate >> 2) & 3 == 0 {
        El::El0
    } else {
        El::El1
    }
}

/// unicorn's register id of `X<n>` (n < 31).
fn xreg(n: u8) -> i32 {
    match n {
        29 => RegisterARM64::X29 as i32,
        30 => RegisterARM64::X30 as i32,
        n => RegisterARM64::X0 as i32 + i32::from(n),
    }
}

fn rt_of(reg: RegisterARM64) -> u32 {
    match reg {
        RegisterARM64::X29 => 29,
        RegisterARM64::X30 => 30,
        RegisterARM64::XZR => 31,
        r => (r as i32 - RegisterARM64::X0 as i32).clamp(0, 31) as u32,
    }
}

fn cp(op0: u32, op1: u32, crn: u32, crm: u32, op2: u32) -> RegisterARM64CP {
    RegisterARM64CP::new().op0(op0).op1(op1).crn(crn).crm(crm).op2(op2)
}

type Uc<'a> = Unicorn<'a, State>;

/// One AArch64 vCPU (unicorn's Cortex-A72) with RAM at [`RAM_BASE`] and vpmu as its PMU.
///
/// Guest programs start at EL1h with interrupts masked, `X0` = [`RESULTS`], `SP` =
/// [`STACK_TOP`]; they install their own `VBAR_EL1` and end with `BRK #0xf00d`
/// ([`EXIT_BRK`]).
///
/// There is no GIC: the PMU's one interrupt (a level-sensitive PPI) is wired straight to the
/// CPU's IRQ input. The guest's IRQ handler acknowledges it the way Linux's does, by
/// clearing the overflow flags (`PMOVSCLR_EL0`), which lowers the line.
pub struct Machine {
    uc: Uc<'static>,
    /// Per `emu_start` call, microseconds (0: none).
    timeout_us: u64,
    /// The `MRS`/`MSR` hooks' state, alive as long as the engine (dropped after `uc`).
    _sys_hooks: [Box<crate::syshook::SysHook>; 2],
}

impl Machine {
    /// A machine whose PMU has `counters` event counters.
    ///
    /// # Errors
    ///
    /// If unicorn cannot be set up or vpmu rejects the configuration.
    pub fn new(counters: u8) -> Result<Self, Error> {
        let pmu = GuestPmu::new(counters).map_err(Error::Config)?;
        let state = State {
            pmu,
            el: El::El1,
            base: 0,
            blk_start: 0,
            blk_len: 0,
            blk_tail: Tail::Other,
            branches: 0,
            reported: 0,
            br_reported: 0,
            check: u64::MAX,
            deadline: u64::MAX,
            br_deadline: u64::MAX,
            exit_at: None,
            irq_wait: false,
            eret_done: false,
            precise: false,
            memo: (u64::MAX, 0, Tail::Other),
            done: false,
            fault: None,
            tails: vec![(u64::MAX, 0, Tail::Other); TAILS],
            stats: Stats::default(),
        };
        let mut uc = Unicorn::new_with_data(Arch::ARM64, Mode::ARM, state)?;
        uc.mem_map(RAM_BASE, RAM_SIZE, Prot::ALL)?;
        // Every ERET to EL1 is illegal while SCR_EL3.RW = 0 (unicorn's reset value).
        let mut scr = cp(3, 6, 1, 1, 0);
        uc.reg_read_arm64_coproc(&mut scr)?;
        uc.reg_write_arm64_coproc(&scr.val(scr.val | 1 << 10))?;
        // MDCR_EL3.TPM: every PMU access that QEMU would perform itself traps instead, so
        // an access the hook hands back to QEMU always ends in the interrupt hook.
        let mut mdcr = cp(3, 6, 1, 3, 1);
        uc.reg_read_arm64_coproc(&mut mdcr)?;
        uc.reg_write_arm64_coproc(&mdcr.val(mdcr.val | 1 << 6))?;
        uc.reg_write(RegisterARM64::SP, STACK_TOP)?;
        uc.add_block_hook(1, 0, block_hook)?;
        let sys_hooks = [crate::syshook::add(&mut uc, true)?, crate::syshook::add(&mut uc, false)?];
        uc.add_intr_hook(intr_hook)?;
        Ok(Self { uc, timeout_us: 0, _sys_hooks: sys_hooks })
    }

    /// Limits each `emu_start` call to `us` microseconds of host time (0: no limit); a run
    /// that hits it fails with [`Error::Timeout`].
    pub fn set_timeout_us(&mut self, us: u64) {
        self.timeout_us = us;
    }

    /// Copies `image` into guest memory at `addr`.
    ///
    /// # Errors
    ///
    /// If `addr..addr + image.len()` is not RAM.
    pub fn load(&mut self, addr: u64, image: &[u8]) -> Result<(), Error> {
        Ok(self.uc.mem_write(addr, image)?)
    }

    /// Reads `n` little-endian 64-bit words at `addr`.
    ///
    /// # Errors
    ///
    /// If the range is not RAM.
    pub fn read_u64s(&self, addr: u64, n: usize) -> Result<Vec<u64>, Error> {
        let mut buf = vec![0u8; n * 8];
        self.uc.mem_read(addr, &mut buf)?;
        Ok(buf.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect())
    }

    /// Runs the guest from `entry` until it executes `BRK #0xf00d`.
    ///
    /// # Errors
    ///
    /// [`Error`] on an unmodelled exception, a unicorn error or a timeout.
    pub fn run(&mut self, entry: u64) -> Result<Stats, Error> {
        self.uc.reg_write(RegisterARM64::X0, RESULTS)?;
        self.uc.set_pc(entry)?;
        {
            let s = self.uc.get_data_mut();
            s.done = false;
            s.rearm();
        }
        loop {
            {
                let s = self.uc.get_data_mut();
                let now = s.base;
                s.flush(now);
                s.rearm();
            }
            self.maybe_take_irq()?;
            let until = self.uc.get_data_mut().exit_at.take();
            if until.is_some() {
                // The stop address is compiled into the translated code: retranslate.
                self.uc.ctl_flush_tb()?;
            }
            let pc = self.uc.pc_read()?;
            self.uc.get_data_mut().stats.runs += 1;
            self.uc.emu_start(pc, until.unwrap_or(0), self.timeout_us, 0)?;
            let pc = self.uc.pc_read()?;
            settle(&mut self.uc, pc)?;
            if until.is_some() {
                self.uc.ctl_flush_tb()?;
            }
            if self.timeout_us != 0 && self.uc.query(Query::TIMEOUT)? != 0 {
                return Err(Error::Timeout);
            }
            let s = self.uc.get_data_mut();
            if let Some(e) = s.fault.take() {
                return Err(e);
            }
            if s.done {
                let now = s.base;
                s.flush(now);
                let stats = Stats { instructions: s.base, branches: s.branches, ..s.stats };
                return Ok(stats);
            }
        }
    }

    /// Takes the PMU interrupt if the line is high and PSTATE.I allows it.
    fn maybe_take_irq(&mut self) -> Result<(), Error> {
        let level = self.uc.get_data_mut().pmu.irq_level();
        let masked = self.uc.reg_read(RegisterARM64::PSTATE)? & PSTATE_I != 0;
        let s = self.uc.get_data_mut();
        s.irq_wait = level && masked;
        s.update_check();
        if level && !masked {
            let pc = self.uc.pc_read()?;
            enter_el1(&mut self.uc, 0x80, None, pc)?;
            self.uc.get_data_mut().stats.irqs += 1;
        }
        Ok(())
    }

    /// What the machine did so far.
    pub fn stats(&self) -> Stats {
        let s = self.uc.get_data();
        Stats { instructions: s.base, branches: s.branches, ..s.stats }
    }

    /// The guest's PMU.
    pub fn pmu(&self) -> &GuestPmu {
        &self.uc.get_data().pmu
    }
}

/// After `emu_start` returns at `pc`: account for the current block.
fn settle(uc: &mut Uc<'_>, pc: u64) -> Result<(), Error> {
    let s = uc.get_data_mut();
    let end = s.blk_start + 4 * s.blk_len;
    let completed = !(s.blk_start..end).contains(&pc);
    let executed = if completed { s.blk_len } else { (pc - s.blk_start) / 4 };
    let eret = completed && s.blk_len != 0 && s.blk_tail == Tail::Eret;
    if completed && s.blk_len != 0 && s.blk_tail != Tail::Other {
        s.branches += 1;
    }
    s.base += executed;
    s.blk_start = pc;
    s.blk_len = 0;
    if eret {
        let el = el_of(uc.reg_read(RegisterARM64::PSTATE)?);
        uc.get_data_mut().set_el(el);
    }
    Ok(())
}

#[inline(always)]
fn block_hook(uc: &mut Uc<'_>, addr: u64, size: u32) {
    // The hot path: a handful of loads and stores on one cache line of `State`.
    let s = uc.get_data_mut();
    if s.precise {
        return block_hook_precise(uc, addr, size);
    }
    // The previous block ran to its end (a cut has zeroed its length if it did not).
    s.base += s.blk_len;
    s.blk_start = addr;
    s.blk_len = u64::from(size / 4);
    if s.base + s.blk_len > s.check {
        block_hook_slow(uc, addr);
    }
}

/// The block hook while a counter needs branches or the exception level: also classifies
/// each block's last instruction.
#[inline(never)]
fn block_hook_precise(uc: &mut Uc<'_>, addr: u64, size: u32) {
    let s = uc.get_data_mut();
    s.base += s.blk_len;
    s.branches += u64::from(s.blk_tail != Tail::Other) & u64::from(s.blk_len != 0);
    s.eret_done |= s.blk_tail == Tail::Eret && s.blk_len != 0;
    let tail = if addr == s.memo.0 && size == s.memo.1 { s.memo.2 } else { tail_of(uc, addr, size) };
    let s = uc.get_data_mut();
    s.blk_start = addr;
    s.blk_len = u64::from(size / 4);
    s.blk_tail = tail;
    if s.eret_done || s.base + s.blk_len > s.check || s.branches >= s.br_deadline {
        block_hook_slow(uc, addr);
    }
}

/// The tail of the block at `addr`, from the direct-mapped cache or guest memory.
#[cold]
#[inline(never)]
fn tail_of(uc: &mut Uc<'_>, addr: u64, size: u32) -> Tail {
    let slot = (addr >> 2) as usize % TAILS;
    let tail = match uc.get_data().tails[slot] {
        (a, sz, t) if a == addr && sz == size => t,
        _ => {
            let mut w = [0u8; 4];
            let t = if size >= 4 && uc.mem_read(addr + u64::from(size) - 4, &mut w).is_ok() {
                classify(u32::from_le_bytes(w))
            } else {
                Tail::Other
            };
            uc.get_data_mut().tails[slot] = (addr, size, t);
            t
        }
    };
    uc.get_data_mut().memo = (addr, size, tail);
    tail
}

/// An exception level change, a masked interrupt, or an overflow ahead.
#[cold]
#[inline(never)]
fn block_hook_slow(uc: &mut Uc<'_>, addr: u64) {
    let s = uc.get_data_mut();
    let irq_wait = s.irq_wait;
    if s.eret_done || irq_wait {
        s.eret_done = false;
        let Ok(pstate) = uc.reg_read(RegisterARM64::PSTATE) else { return };
        uc.get_data_mut().set_el(el_of(pstate));
        if irq_wait && pstate & PSTATE_I == 0 {
            let _ = uc.emu_stop();
            return;
        }
    }
    let s = uc.get_data_mut();
    if s.base >= s.deadline || s.branches >= s.br_deadline {
        // A counter overflowed with the previous block's last instruction: stop before this
        // block, so the interrupt is taken right here.
        let _ = uc.emu_stop();
    } else if s.base + s.blk_len > s.deadline {
        // The overflow falls inside this block: run it again, stopping right after the
        // overflowing instruction.
        s.exit_at = Some(addr + 4 * (s.deadline - s.base));
        let _ = uc.emu_stop();
    }
}

/// `MRS`/`MSR` of a system register: returns true when the access has been emulated (QEMU
/// skips it).
pub(crate) fn sys_hook(uc: &mut Uc<'_>, reg: RegisterARM64, c: &RegisterARM64CP, read: bool) -> bool {
    // Only PMU registers (op0 = 3, CRn = 9 or 14) are ours.
    if c.op0 != 3 || (c.crn != 9 && c.crn != 14) {
        return false;
    }
    let insn = if read { 0xd530_0000 } else { 0xd510_0000 }
        | ((c.op0 & 1) << 19)
        | (c.op1 << 16)
        | (c.crn << 12)
        | (c.crm << 8)
        | (c.op2 << 5)
        | rt_of(reg);
    let Some(access) = GuestPmu::decode(insn) else { return false };
    if !access.qemu_defines() {
        // QEMU translated it as UNDEFINED: the interrupt hook emulates it.
        return false;
    }
    let Ok(pc) = uc.pc_read() else { return false };
    let el = current_el(uc);
    let s = uc.get_data_mut();
    // No deadline falls before this instruction (the block hook saw to it): counting up
    // to here overflows nothing.
    let now = s.retired_at(pc);
    s.flush(now);
    match s.pmu.access(access, el, c.val) {
        Access::Read { rt, value } => {
            s.stats.fast_accesses += 1;
            if rt < 31 {
                let _ = uc.reg_write(xreg(rt), value);
            }
        }
        Access::Written => s.stats.fast_accesses += 1,
        // Let QEMU perform it: MDCR_EL3.TPM makes it trap, and the interrupt hook injects
        // the exception with the PC on this instruction.
        Access::Undefined | Access::Trap | Access::NotPmu => return false,
    }
    if access.is_write() {
        after_access(uc);
    }
    true
}

/// After an emulated access: new deadlines, whether counting must be precise; stop if the
/// interrupt must be taken now.
fn after_access(uc: &mut Uc<'_>) {
    let s = uc.get_data_mut();
    let precise = s.pmu.needs_el_and_branches();
    if precise && !s.precise {
        // From here on the block hook tracks ERETs: start from the true level.
        let el = current_el(uc);
        uc.get_data_mut().set_el(el);
    }
    let s = uc.get_data_mut();
    if precise != s.precise {
        // The current block ends with this MSR (or restarts after it): no branch, no ERET.
        s.blk_tail = Tail::Other;
        s.eret_done = false;
    }
    s.precise = precise;
    s.rearm();
    if s.pmu.irq_level() {
        let masked = uc.reg_read(RegisterARM64::PSTATE).map_or(true, |p| p & PSTATE_I != 0);
        if masked {
            let s = uc.get_data_mut();
            s.irq_wait = true;
            s.update_check();
        } else {
            let _ = uc.emu_stop();
        }
    }
}

/// The guest's exception level: tracked when counting is precise, else read from PSTATE
/// (and reported to vpmu, which then counts at the right level from here).
fn current_el(uc: &mut Uc<'_>) -> El {
    if uc.get_data().precise {
        return uc.get_data().el;
    }
    let el = uc.reg_read(RegisterARM64::PSTATE).map_or(El::El1, el_of);
    uc.get_data_mut().set_el(el);
    el
}

fn read_insn(uc: &Uc<'_>, addr: u64) -> Option<u32> {
    let mut w = [0u8; 4];
    uc.mem_read(addr, &mut w).ok()?;
    Some(u32::from_le_bytes(w))
}

fn intr_hook(uc: &mut Uc<'_>, intno: u32) {
    if let Err(e) = exception(uc, intno) {
        uc.get_data_mut().fault = Some(e);
        let _ = uc.emu_stop();
    }
}

fn exception(uc: &mut Uc<'_>, intno: u32) -> Result<(), Error> {
    let pc = uc.pc_read()?;
    match intno {
        EXCP_UDEF => {
            let insn = read_insn(uc, pc).ok_or(Error::Exception { intno, pc })?;
            let rt = (insn & 31) as u8;
            let is_msr = insn & 0xfff0_0000 == 0xd510_0000;
            let xt = if is_msr && rt < 31 { uc.reg_read(xreg(rt))? } else { 0 };
            let el = current_el(uc);
            let s = uc.get_data_mut();
            let now = s.retired_at(pc);
            s.flush(now);
            s.rearm();
            let access = match GuestPmu::decode(insn) {
                Some(a) => s.pmu.access(a, el, xt),
                None => Access::NotPmu,
            };
            match access {
                Access::Read { .. } | Access::Written => {
                    s.stats.slow_accesses += 1;
                    s.cut(pc, 1);
                    if let Access::Read { rt, value } = access {
                        if rt < 31 {
                            uc.reg_write(xreg(rt), value)?;
                        }
                    }
                    uc.set_pc(pc + 4)?;
                    after_access(uc);
                }
                Access::Trap => {
                    s.stats.slow_accesses += 1;
                    s.cut(pc, 0);
                    let iss = u64::from(
                        ((insn >> 19) & 3) << 20 // Op0
                            | ((insn >> 5) & 7) << 17 // Op2
                            | ((insn >> 16) & 7) << 14 // Op1
                            | ((insn >> 12) & 15) << 10 // CRn
                            | (insn & 31) << 5 // Rt
                            | ((insn >> 8) & 15) << 1 // CRm
                            | ((insn >> 21) & 1), // Direction: 1 = read
                    );
                    enter_el1(uc, 0, Some(EC_SYS64 << 26 | ESR_IL | iss), pc)?;
                }
                Access::Undefined | Access::NotPmu => {
                    if access == Access::Undefined {
                        s.stats.slow_accesses += 1;
                    }
                    s.cut(pc, 0);
                    enter_el1(uc, 0, Some(EC_UNKNOWN << 26 | ESR_IL), pc)?;
                }
            }
        }
        EXCP_SWI => {
            // The PC is already past the SVC, which retired.
            let insn = read_insn(uc, pc - 4).ok_or(Error::Exception { intno, pc })?;
            uc.get_data_mut().cut(pc, 0);
            enter_el1(uc, 0, Some(EC_SVC64 << 26 | ESR_IL | u64::from((insn >> 5) & 0xffff)), pc)?;
        }
        EXCP_BKPT => {
            let insn = read_insn(uc, pc).ok_or(Error::Exception { intno, pc })?;
            let imm = (insn >> 5) & 0xffff;
            uc.get_data_mut().cut(pc, 0);
            if imm == u32::from(EXIT_BRK) {
                uc.get_data_mut().done = true;
                uc.emu_stop()?;
            } else {
                enter_el1(uc, 0, Some(EC_BRK << 26 | ESR_IL | u64::from(imm)), pc)?;
            }
        }
        _ => return Err(Error::Exception { intno, pc }),
    }
    Ok(())
}

/// Takes an exception to EL1h: `offset` 0 (synchronous) or 0x80 (IRQ) within the vector
/// group of the current state; `esr` for a synchronous one; `elr` the return address.
fn enter_el1(uc: &mut Uc<'_>, offset: u64, esr: Option<u64>, elr: u64) -> Result<(), Error> {
    let pstate = uc.reg_read(RegisterARM64::PSTATE)?;
    let from_el0 = (pstate >> 2) & 3 == 0;
    let on_sp_el0 = pstate & 1 == 0;
    let group = if from_el0 {
        0x400
    } else if on_sp_el0 {
        0x000
    } else {
        0x200
    };
    {
        let s = uc.get_data_mut();
        let now = s.base;
        s.flush(now);
        s.rearm();
        s.stats.exceptions += 1;
    }
    if on_sp_el0 {
        // Bank the stack pointers: SP_EL0 keeps the interrupted SP, SP becomes SP_EL1.
        let sp = uc.reg_read(RegisterARM64::SP)?;
        uc.reg_write(RegisterARM64::SP_EL0, sp)?;
        let sp1 = uc.reg_read(RegisterARM64::SP_EL1)?;
        uc.reg_write(RegisterARM64::SP, sp1)?;
    }
    uc.reg_write(RegisterARM64::ELR_EL1, elr)?;
    if let Some(esr) = esr {
        uc.reg_write(RegisterARM64::ESR_EL1, esr)?;
    }
    uc.reg_write(RegisterARM64::PSTATE, PSTATE_EL1H_MASKED)?;
    // SPSR_EL1 has no register id; its coprocessor write also rebuilds QEMU's cached EL.
    uc.reg_write_arm64_coproc(&cp(3, 0, 4, 0, 0).val(pstate))?;
    let vbar = uc.reg_read(RegisterARM64::VBAR_EL1)?;
    uc.set_pc(vbar + group + offset)?;
    uc.get_data_mut().set_el(El::El1);
    Ok(())
}
