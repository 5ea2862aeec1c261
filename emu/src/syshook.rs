//! The `MRS`/`MSR` hook, registered through unicorn's C API.
//!
//! unicorn-engine 2.1.5's Rust binding declares its proxy for this hook as returning `bool`,
//! but the C side (`uc_cb_insn_sys_t`) reads a `uint32_t`: only the low byte of the return
//! register is defined, so with some code generation (our debug builds) a `false` arrives
//! as non-zero and QEMU skips the access — every `MSR` to a non-PMU register (`VBAR_EL1`,
//! `ELR_EL1`, ...) is then silently dropped. This module registers the hook itself, with a
//! callback that returns a full `u32`.
#![allow(unsafe_code)]

use core::ffi::c_void;

use unicorn_engine::{uc_engine, uc_error, uc_hook, uc_hook_add, Arm64Insn, HookType, RegisterARM64, RegisterARM64CP, Unicorn};

use crate::machine::State;

/// What the C callback reaches: a handle on the machine's unicorn (an `Rc` clone, so the
/// engine outlives every registered hook) and which instruction it hooks.
pub(crate) struct SysHook {
    uc: Unicorn<'static, State>,
    read: bool,
}

extern "C" fn callback(_uc: *mut uc_engine, reg: RegisterARM64, cp: *const RegisterARM64CP, user: *mut c_void) -> u32 {
    // SAFETY: `user` is the `SysHook` registered in `add`, boxed and kept alive by the
    // `Machine` as long as its unicorn engine runs; unicorn calls hooks on the thread that
    // runs `emu_start`, one at a time, so this is the only reference to it.
    let hook = unsafe { &mut *user.cast::<SysHook>() };
    // SAFETY: unicorn passes a valid register descriptor for the duration of the call.
    let Some(cp) = (unsafe { cp.as_ref() }) else { return 0 };
    u32::from(crate::machine::sys_hook(&mut hook.uc, reg, cp, hook.read))
}

/// Hooks `MRS` (`read`) or `MSR` on every address; the returned box must outlive `uc`'s use.
pub(crate) fn add(uc: &mut Unicorn<'static, State>, read: bool) -> Result<Box<SysHook>, uc_error> {
    let mut hook = Box::new(SysHook { uc: uc.clone(), read });
    let insn = if read { Arm64Insn::UC_ARM64_INS_MRS } else { Arm64Insn::UC_ARM64_INS_MSR };
    let mut id: uc_hook = 0;
    let user: *mut SysHook = &mut *hook;
    // SAFETY: the handle is live; `callback` has the signature of `uc_cb_insn_sys_t`; `user`
    // points to a heap `SysHook` the caller keeps alive while the engine can run; the
    // variadic argument is the instruction type, as `uc_hook_add` expects for
    // UC_HOOK_INSN.
    let err = unsafe {
        uc_hook_add(uc.get_handle(), &mut id, HookType::INSN.0 as i32, callback as *mut c_void, user.cast::<c_void>(), 1, 0, insn)
    };
    if err == uc_error::OK {
        Ok(hook)
    } else {
        Err(err)
    }
}
