//! The guest programs, assembled from `emu/guests/*.S` by `build.rs`.

macro_rules! guest {
    ($(#[$m:meta])* $name:ident, $file:literal) => {
        $(#[$m])*
        pub const $name: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/", $file, ".bin"));
    };
}

guest!(
    /// `perf stat` in a guest: cycles, instructions and branches of a 1000-iteration loop.
    PERF_STAT,
    "perf_stat"
);
guest!(
    /// Two reads of `PMCCNTR_EL0` around one instruction.
    PMCCNTR_DELTA,
    "pmccntr_delta"
);
guest!(
    /// The overflow interrupt at the exact instruction, five ways (in a block, on the
    /// enabling instruction, at a taken branch, inside a loop, held while masked).
    OVERFLOW_IRQ,
    "overflow_irq"
);
guest!(
    /// `SW_INCR`, and a `CHAIN`ed pair across an overflow.
    SW_INCR_CHAIN,
    "sw_incr_chain"
);
guest!(
    /// EL0 accesses under every `PMUSERENR_EL0` setting: allowed reads and EC 0x18 traps.
    EL0_ACCESS,
    "el0_access"
);
guest!(
    /// `PMEVCNTR<n>`/`PMEVTYPER<n>` accesses, UNDEFINED for n >= N.
    UNDEF,
    "undef"
);
guest!(
    /// Exception level filters across `ERET` and `SVC`.
    EL_FILTER,
    "el_filter"
);
guest!(
    /// The speed table's guest: a counting loop and a PMU access loop, with a parameter
    /// block at offset 8 (see [`bench_image`]).
    BENCH,
    "bench"
);

/// `MRS X3, PMCCNTR_EL0`, the access loop's instruction in [`BENCH`].
pub const MRS_PMCCNTR_X3: u32 = 0xd53b_9d03;
/// `NOP`.
pub const NOP: u32 = 0xd503_201f;
/// `BRK #0xf00d`: the end of a guest run.
pub const BRK_EXIT: u32 = 0xd43e_01a0;

/// The parameters of the [`BENCH`] guest.
#[derive(Clone, Copy, Debug)]
pub struct BenchParams {
    /// Iterations of the counting loop (10 instructions each).
    pub iters_counting: u64,
    /// Iterations of the access loop (3 instructions each).
    pub iters_access: u64,
    /// End with PSCI `SYSTEM_OFF` (under QEMU) instead of `BRK`.
    pub psci: bool,
    /// Enable `PMCCNTR` and two event counters (`INST_RETIRED`, `CPU_CYCLES`) first.
    pub counters: bool,
    /// Also count `BR_RETIRED` on a third counter (makes the emulator track branches and
    /// exception returns at every block).
    pub branches: bool,
    /// The access loop reads `PMCCNTR_EL0` (else: a `NOP`).
    pub access: bool,
}

/// The [`BENCH`] image with `p` patched in.
#[must_use]
pub fn bench_image(p: &BenchParams) -> Vec<u8> {
    let mut img = BENCH.to_vec();
    let words = [p.iters_counting, p.iters_access, u64::from(p.psci), u64::from(p.counters) | u64::from(p.branches) << 1];
    for (i, w) in words.iter().enumerate() {
        img[8 + 8 * i..16 + 8 * i].copy_from_slice(&w.to_le_bytes());
    }
    if !p.access {
        if let Some(at) = find_word(&img, MRS_PMCCNTR_X3) {
            img[at..at + 4].copy_from_slice(&NOP.to_le_bytes());
        }
    }
    img
}

/// The byte offset of the first 32-bit word `w` in `img`.
#[must_use]
pub fn find_word(img: &[u8], w: u32) -> Option<usize> {
    img.chunks_exact(4).position(|c| c == w.to_le_bytes()).map(|i| i * 4)
}
