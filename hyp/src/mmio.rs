//! Physical memory the hypervisor touches directly (its MMU is off): QEMU virt's GICv3
//! distributor and redistributors, and the boot parameter block. Every raw access is here but
//! the PL011's (`baremetal::uart`).

/// QEMU virt's GICv3 distributor.
pub const GICD_BASE: usize = 0x0800_0000;
/// QEMU virt's first GICv3 redistributor; one 128 KiB frame pair per CPU follows.
pub const GICR_BASE: usize = 0x080a_0000;
/// The stride between redistributors.
pub const GICR_STRIDE: usize = 0x2_0000;

/// Reads a 32-bit device register.
pub fn read32(addr: usize) -> u32 {
    // SAFETY: only called with the addresses of QEMU virt's GIC registers above
    // (device memory, 4-byte aligned), which exist on every virt machine with gic-version=3.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

/// Writes a 32-bit device register.
pub fn write32(addr: usize, v: u32) {
    // SAFETY: as for `read32`: a device register of the GIC, 4-byte aligned.
    unsafe { core::ptr::write_volatile(addr as *mut u32, v) }
}

/// Reads a 64-bit word of guest RAM (the boot parameter block).
pub fn read_ram64(addr: usize) -> u64 {
    // SAFETY: `addr` is the 8-byte aligned boot parameter block in RAM, below the
    // hypervisor's image and above QEMU's DTB slot; the guest has not run yet.
    unsafe { core::ptr::read_volatile(addr as *const u64) }
}

/// The guest RAM `[addr, addr + len)` as bytes, read-only.
///
/// # Safety
///
/// The range must be RAM that nothing writes while the slice lives.
pub unsafe fn ram(addr: usize, len: usize) -> &'static [u8] {
    // SAFETY: the caller's contract.
    unsafe { core::slice::from_raw_parts(addr as *const u8, len) }
}

/// The guest RAM `[addr, addr + len)` as bytes, writable.
///
/// # Safety
///
/// The range must be RAM that nothing else reads or writes while the slice lives.
pub unsafe fn ram_mut(addr: usize, len: usize) -> &'static mut [u8] {
    // SAFETY: the caller's contract.
    unsafe { core::slice::from_raw_parts_mut(addr as *mut u8, len) }
}
