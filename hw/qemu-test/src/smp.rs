//! A second physical CPU, to move a vCPU between CPUs: put on one, loaded on the other.

use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use crate::vm::Vcpu;

/// The vCPU CPU 1 must run, and for how many iterations; `done` counts completed jobs.
static JOB: AtomicPtr<Vcpu> = AtomicPtr::new(core::ptr::null_mut());
static ITERATIONS: AtomicU64 = AtomicU64::new(0);
static DONE: AtomicU64 = AtomicU64::new(0);
/// MDCR_EL2 value for CPU 1 (every EL2 register is per CPU); nonzero once CPU 1 is up.
static MDCR: AtomicU64 = AtomicU64::new(0);
static UP: AtomicU64 = AtomicU64::new(0);
static STOP: AtomicU64 = AtomicU64::new(0);

/// Starts CPU 1 with `mdcr` as its MDCR_EL2; false if PSCI refused or it did not come up.
pub fn start(mdcr: u64) -> bool {
    MDCR.store(mdcr, Ordering::SeqCst);
    if crate::rt::cpu_on(1) != 0 {
        return false;
    }
    (0..10_000_000).any(|_| UP.load(Ordering::SeqCst) != 0)
}

/// Hands `v` to CPU 1, which loads it, runs `n` guest iterations and puts it. Returns a ticket
/// for [`wait`].
pub fn submit(v: &mut Vcpu, n: u64) -> u64 {
    let ticket = DONE.load(Ordering::SeqCst) + 1;
    ITERATIONS.store(n, Ordering::SeqCst);
    JOB.store(v, Ordering::SeqCst);
    ticket
}

/// Waits until CPU 1 finished job `ticket`.
pub fn wait(ticket: u64) -> bool {
    (0..100_000_000).any(|_| DONE.load(Ordering::SeqCst) >= ticket)
}

/// Turns CPU 1 off (PSCI `CPU_OFF` on itself) and waits until PSCI says it is off. Under
/// `-icount`, QEMU's PMU counts instructions of the global icount across the CPU's EL changes:
/// another CPU spinning while this one is at EL1 would show in this one's counts.
pub fn stop() -> bool {
    STOP.store(1, Ordering::SeqCst);
    (0..10_000_000).any(|_| crate::rt::affinity_info(1) == 1)
}

#[no_mangle]
extern "C" fn secondary_main() -> ! {
    crate::rt::write_mdcr_el2(MDCR.load(Ordering::SeqCst));
    vpmu_hw::quiesce(&mut vpmu_hw::SysRegs::new());
    UP.store(1, Ordering::SeqCst);
    loop {
        if STOP.load(Ordering::SeqCst) != 0 {
            crate::rt::cpu_off();
        }
        let v = JOB.swap(core::ptr::null_mut(), Ordering::SeqCst);
        if v.is_null() {
            continue;
        }
        // SAFETY: `submit` stored a live `&mut Vcpu` whose owner on CPU 0 does not touch it
        // until `wait` returns.
        let v = unsafe { &mut *v };
        v.load();
        v.run(ITERATIONS.load(Ordering::SeqCst));
        v.put();
        DONE.fetch_add(1, Ordering::SeqCst);
    }
}
