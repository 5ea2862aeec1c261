// The PMUv3 architecture's numbers, written out by hand from the Arm ARM (DDI 0487: chapter
// D13, "The Performance Monitors Extension", the register pages of `PMCR_EL0`,
// `PMEVTYPER<n>_EL0`, `PMCCFILTR_EL0`, `PMUSERENR_EL0` and `PMCNTENSET_EL0`, and the common
// event numbers of the PMU event list).
//
// Deliberately not taken from `vpmu::field` or `vpmu::config`: the tests check the crate against
// the architecture, and a test that read its expected values from the crate could not see the
// crate get them wrong.
//
// Two ways in: the integration tests have it as `common::arch` (`pub mod arch;` in `mod.rs`);
// the reference model `model.rs` pastes it into a module of its own with `include!`, so that
// the model stands alone where the benches and the fuzz crate include it, and so that a test
// crate that has both (directly, or through `fuzz_check/`) does not load this file
// as a module twice. Hence plain `pub const`s only: no inner attributes (`//!`, `#![...]`), no
// `use`, no `mod`.

// ---- PMCR_EL0 ---------------------------------------------------------------------------------

/// `PMCR_EL0.E`, bit 0: enables every counter that its `PMCNTENSET` bit enables.
pub const PMCR_E: u64 = 1 << 0;
/// `PMCR_EL0.P`, bit 1: writing 1 resets every event counter (reads as 0).
pub const PMCR_P: u64 = 1 << 1;
/// `PMCR_EL0.C`, bit 2: writing 1 resets the cycle counter (reads as 0).
pub const PMCR_C: u64 = 1 << 2;
/// `PMCR_EL0.D`, bit 3: the cycle counter counts every 64th cycle (with `LC` = 0).
pub const PMCR_D: u64 = 1 << 3;
/// `PMCR_EL0.X`, bit 4: export of events.
pub const PMCR_X: u64 = 1 << 4;
/// `PMCR_EL0.DP`, bit 5: the cycle counter stops where event counting is prohibited.
pub const PMCR_DP: u64 = 1 << 5;
/// `PMCR_EL0.LC`, bit 6: the cycle counter overflows at bit 63 (RES1 without AArch32 EL0).
pub const PMCR_LC: u64 = 1 << 6;
/// `PMCR_EL0.LP`, bit 7 (PMUv3p5): the event counters overflow at bit 63.
pub const PMCR_LP: u64 = 1 << 7;
/// `PMCR_EL0.N`, bits \[15:11\]: the number of event counters.
pub const PMCR_N_SHIFT: u32 = 11;
/// `PMCR_EL0.IDCODE`, bits \[23:16\].
pub const PMCR_IDCODE_SHIFT: u32 = 16;
/// `PMCR_EL0.IMP`, bits \[31:24\].
pub const PMCR_IMP_SHIFT: u32 = 24;

// ---- PMEVTYPER<n>_EL0 / PMCCFILTR_EL0 filter bits ---------------------------------------------

/// `P`, bit 31: do not count at EL1 (with `NSK`, in Non-secure state: count iff `P` == `NSK`).
pub const F_P: u64 = 1 << 31;
/// `U`, bit 30: do not count at EL0 (with `NSU`: count iff `U` == `NSU`).
pub const F_U: u64 = 1 << 30;
/// `NSK`, bit 29 (with EL3).
pub const F_NSK: u64 = 1 << 29;
/// `NSU`, bit 28 (with EL3).
pub const F_NSU: u64 = 1 << 28;
/// `NSH`, bit 27 (with EL2): count at EL2.
pub const F_NSH: u64 = 1 << 27;
/// `M`, bit 26 (with EL3): count at EL3.
pub const F_M: u64 = 1 << 26;

// ---- PMUSERENR_EL0 ----------------------------------------------------------------------------

/// `PMUSERENR_EL0.EN`, bit 0: EL0 may access every `_EL0` PMU register.
pub const PMUSERENR_EN: u64 = 1 << 0;
/// `PMUSERENR_EL0.SW`, bit 1: EL0 may write `PMSWINC_EL0`.
pub const PMUSERENR_SW: u64 = 1 << 1;
/// `PMUSERENR_EL0.CR`, bit 2: EL0 may read `PMCCNTR_EL0`.
pub const PMUSERENR_CR: u64 = 1 << 2;
/// `PMUSERENR_EL0.ER`, bit 3: EL0 may read the event counters and read and write `PMSELR_EL0`.
pub const PMUSERENR_ER: u64 = 1 << 3;

// ---- PMCNTENSET/CLR, PMINTENSET/CLR, PMOVSSET/CLR ---------------------------------------------

/// Bit 31 (`C`) of the counter bitmaps: the cycle counter; bits \[30:0\] are the event counters.
pub const CYCLE_BIT: u64 = 1 << 31;

// ---- Common events ----------------------------------------------------------------------------
// Event numbers are 16 bits wide (`PMEVTYPER<n>_EL0.evtCount`, \[15:0\] from PMUv3p1), as
// vpmu's API takes them; a `PMEVTYPER` value takes one with `u64::from`.

/// `SW_INCR`: counts `PMSWINC_EL0` writes; never filtered.
pub const SW_INCR: u16 = 0x00;
/// `INST_RETIRED`: instructions architecturally executed.
pub const INST_RETIRED: u16 = 0x08;
/// `BR_MIS_PRED`: branches mispredicted or not predicted.
pub const BR_MIS_PRED: u16 = 0x10;
/// `CPU_CYCLES`: cycles; what the cycle counter counts.
pub const CPU_CYCLES: u16 = 0x11;
/// `CHAIN`: an odd counter typed with it counts the overflows of the even counter below it.
pub const CHAIN: u16 = 0x1e;
