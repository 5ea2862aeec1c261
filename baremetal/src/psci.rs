//! PSCI calls through `SMC`: QEMU's built-in firmware answers them at EL2 (virt with
//! `virtualization=on`, no EL3); at EL1 under vpmu-hyp the hypervisor traps and answers them.

/// `CPU_OFF`.
pub const CPU_OFF: u32 = 0x8400_0002;
/// `CPU_ON`, SMC32.
pub const CPU_ON_32: u32 = 0x8400_0003;
/// `CPU_ON`, SMC64.
pub const CPU_ON_64: u32 = 0xc400_0003;
/// `AFFINITY_INFO`, SMC64.
pub const AFFINITY_INFO_64: u32 = 0xc400_0004;
/// `SYSTEM_OFF`.
pub const SYSTEM_OFF: u32 = 0x8400_0008;
/// `SYSTEM_RESET`.
pub const SYSTEM_RESET: u32 = 0x8400_0009;
/// `INVALID_PARAMETERS`.
pub const INVALID_PARAMETERS: u64 = -2i64 as u64;

/// An SMC with x0–x7 as given; returns x0–x3.
pub fn smc(a: [u64; 8]) -> [u64; 4] {
    let (mut r0, mut r1, mut r2, mut r3) = (a[0], a[1], a[2], a[3]);
    // SAFETY: an SMC to the PSCI firmware (QEMU's, or the hypervisor's emulation of it); it
    // does not touch our memory, and the SMCCC lets it clobber only the registers named here.
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

/// A PSCI call with up to three arguments; returns x0 (a PSCI return code or value).
pub fn call(fid: u32, a1: u64, a2: u64, a3: u64) -> u64 {
    smc([u64::from(fid), a1, a2, a3, 0, 0, 0, 0])[0]
}

/// `CPU_ON` of the CPU with MPIDR affinity `target` at `entry`, with `context` in its x0;
/// PSCI's return code (0: success).
pub fn cpu_on(target: u64, entry: u64, context: u64) -> i64 {
    call(CPU_ON_64, target, entry, context) as i64
}

/// `AFFINITY_INFO` of the CPU with MPIDR affinity `target` (0: on, 1: off, 2: on pending).
pub fn affinity_info(target: u64) -> i64 {
    call(AFFINITY_INFO_64, target, 0, 0) as i64
}

/// `CPU_OFF` of the calling CPU; parks it if that fails.
pub fn cpu_off() -> ! {
    call(CPU_OFF, 0, 0, 0);
    park()
}

/// `SYSTEM_OFF`; parks the CPU if that fails.
pub fn system_off() -> ! {
    call(SYSTEM_OFF, 0, 0, 0);
    park()
}

/// Idles forever (`WFI` in a loop).
pub fn park() -> ! {
    loop {
        // SAFETY: waits for an interrupt; no effect on memory or registers.
        unsafe { core::arch::asm!("wfi", options(nomem, nostack, preserves_flags)) };
    }
}
