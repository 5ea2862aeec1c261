//! PSCI calls to the firmware (QEMU answers SMCs itself on virt with virtualization=on).

/// `CPU_ON`, SMC64.
pub const CPU_ON_64: u32 = 0xc400_0003;
/// `CPU_ON`, SMC32.
pub const CPU_ON_32: u32 = 0x8400_0003;
/// `SYSTEM_OFF`.
pub const SYSTEM_OFF: u32 = 0x8400_0008;
/// `SYSTEM_RESET`.
pub const SYSTEM_RESET: u32 = 0x8400_0009;
/// `INVALID_PARAMETERS`.
pub const INVALID_PARAMETERS: u64 = -2i64 as u64;

/// An SMC with x0–x7 as given; returns x0–x3.
pub fn smc(a: [u64; 8]) -> [u64; 4] {
    let (mut r0, mut r1, mut r2, mut r3) = (a[0], a[1], a[2], a[3]);
    // SAFETY: an SMC to the PSCI firmware (QEMU's built-in PSCI on virt); it does not
    // touch our memory, and the SMCCC lets it clobber only the registers named here.
    unsafe {
        core::arch::asm!(
            "smc #0",
            inout("x0") r0, inout("x1") r1, inout("x2") r2, inout("x3") r3,
            inout("x4") a[4] => _, inout("x5") a[5] => _, inout("x6") a[6] => _, inout("x7") a[7] => _,
            out("x8") _, out("x9") _, out("x10") _, out("x11") _, out("x12") _, out("x13") _,
            out("x14") _, out("x15") _, out("x16") _, out("x17") _,
            options(nostack)
        );
    }
    [r0, r1, r2, r3]
}

/// Powers the machine off (used after a fatal error).
pub fn system_off() -> ! {
    smc([u64::from(SYSTEM_OFF), 0, 0, 0, 0, 0, 0, 0]);
    loop {
        core::hint::spin_loop();
    }
}
