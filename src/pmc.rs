//! One counter's guest-visible state.

/// One counter: an event counter `PMEVCNTR<n>` with its `PMEVTYPER<n>`, or the cycle counter
/// `PMCCNTR` with `PMCCFILTR`.
///
/// The value is lazy: `value` is what the guest saw at the last look, and the backend holds
/// what was counted since. Overflow is the carry out of bit 31 or 63, computed with wide
/// arithmetic when counts are added, never guessed from a top-bit edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub(crate) struct Pmc {
    /// The counter's value at the last fold.
    pub(crate) value: u64,
    /// `PMEVTYPER<n>` or `PMCCFILTR`, with only the bits this PMU implements.
    pub(crate) evtyper: u32,
    /// Cycle counter with `PMCR.D`: cycles counted towards the next tick, `0..64`.
    pub(crate) prescale: u8,
}

impl Pmc {
    /// The reset state vpmu chooses for what the Arm ARM leaves UNKNOWN: all zero, not counting.
    pub(crate) const RESET: Pmc = Pmc { value: 0, evtyper: 0, prescale: 0 };
}
