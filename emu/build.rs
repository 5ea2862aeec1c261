//! Assembles the guest programs `guests/*.S` into flat binaries in `OUT_DIR`.
//!
//! Needs the GNU assembler for AArch64 and objcopy (Debian: `binutils-aarch64-linux-gnu`);
//! `AARCH64_AS` and `AARCH64_OBJCOPY` override the tool names. Each program is one `.text`
//! section that uses only PC-relative references, so no linker is needed: the object's
//! `.text` is the image, loaded at the start of guest RAM. (The `.S` files use no C
//! preprocessor: `as` assembles them directly, with `.include "common.inc"`.)

use std::path::{Path, PathBuf};
use std::process::Command;

fn run(cmd: &mut Command) {
    let shown = format!("{cmd:?}");
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("{shown} failed: {s}"),
        Err(e) => panic!(
            "{shown}: {e}; install the AArch64 assembler (Debian: apt-get install binutils-aarch64-linux-gnu) \
             or point AARCH64_AS / AARCH64_OBJCOPY at one"
        ),
    }
}

/// Whether an ELF64 little-endian object has a REL or RELA section.
fn has_relocations(elf: &[u8]) -> bool {
    let u16_at = |o: usize| usize::from(u16::from_le_bytes([elf[o], elf[o + 1]]));
    let u32_at = |o: usize| u32::from_le_bytes([elf[o], elf[o + 1], elf[o + 2], elf[o + 3]]);
    let shoff = u64::from_le_bytes(elf[0x28..0x30].try_into().expect("8 bytes")) as usize;
    let (shentsize, shnum) = (u16_at(0x3a), u16_at(0x3c));
    (0..shnum).any(|i| matches!(u32_at(shoff + i * shentsize + 4), 4 | 9))
}

fn main() {
    let as_ = std::env::var("AARCH64_AS").unwrap_or_else(|_| "aarch64-linux-gnu-as".into());
    let objcopy = std::env::var("AARCH64_OBJCOPY").unwrap_or_else(|_| "aarch64-linux-gnu-objcopy".into());
    println!("cargo:rerun-if-env-changed=AARCH64_AS");
    println!("cargo:rerun-if-env-changed=AARCH64_OBJCOPY");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let dir = Path::new("guests");
    println!("cargo:rerun-if-changed=guests");
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .expect("emu/guests")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "S"))
        .collect();
    names.sort();
    for src in names {
        println!("cargo:rerun-if-changed={}", src.display());
        let stem = src.file_stem().expect("stem").to_string_lossy().into_owned();
        let obj = out.join(format!("{stem}.o"));
        let bin = out.join(format!("{stem}.bin"));
        run(Command::new(&as_).args(["-march=armv8.4-a", "-I"]).arg(dir).arg("-o").arg(&obj).arg(&src));
        // A relocation would be left unresolved in the flat image: refuse it.
        let elf = std::fs::read(&obj).expect("object file");
        assert!(!has_relocations(&elf), "{}: has relocations; use only PC-relative references (adr, b)", src.display());
        run(Command::new(&objcopy).args(["-O", "binary", "-j", ".text"]).arg(&obj).arg(&bin));
    }
}
