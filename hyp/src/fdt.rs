//! The guest's device tree: a copy of QEMU's with the hypervisor's memory reserved
//! (`/memreserve/`) and the initrd in `/chosen`. Plain byte slices, no `unsafe`.

const MAGIC: u32 = 0xd00d_feed;
const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;
const HEADER: usize = 40;

/// Why a DTB could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdtError {
    /// No `0xd00dfeed` magic.
    BadMagic,
    /// An offset or size points outside the blob.
    Truncated,
    /// The rewritten tree does not fit the output buffer.
    TooBig,
}

fn be32(b: &[u8], at: usize) -> Result<u32, FdtError> {
    let s = b.get(at..at + 4).ok_or(FdtError::Truncated)?;
    Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn be64(b: &[u8], at: usize) -> Result<u64, FdtError> {
    Ok((u64::from(be32(b, at)?) << 32) | u64::from(be32(b, at + 4)?))
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The total size a DTB's header announces.
pub fn total_size(b: &[u8]) -> Result<usize, FdtError> {
    if be32(b, 0)? != MAGIC {
        return Err(FdtError::BadMagic);
    }
    Ok(be32(b, 4)? as usize)
}

struct Header {
    off_struct: usize,
    off_strings: usize,
    off_rsv: usize,
    size_strings: usize,
    size_struct: usize,
}

fn header(b: &[u8]) -> Result<Header, FdtError> {
    total_size(b)?;
    Ok(Header {
        off_struct: be32(b, 8)? as usize,
        off_strings: be32(b, 12)? as usize,
        off_rsv: be32(b, 16)? as usize,
        size_strings: be32(b, 32)? as usize,
        size_struct: be32(b, 36)? as usize,
    })
}

fn cstr(b: &[u8], at: usize) -> Result<&[u8], FdtError> {
    let rest = b.get(at..).ok_or(FdtError::Truncated)?;
    let n = rest.iter().position(|&c| c == 0).ok_or(FdtError::Truncated)?;
    Ok(&rest[..n])
}

/// One structure-block token.
enum Token<'a> {
    Begin(&'a [u8]),
    End,
    Prop { name: &'a [u8], value: &'a [u8] },
    Nop,
}

/// Walks the structure block: calls `f(token, bytes of the token)` until `FDT_END`.
fn walk<'a>(b: &'a [u8], mut f: impl FnMut(Token<'a>, &'a [u8]) -> Result<(), FdtError>) -> Result<(), FdtError> {
    let h = header(b)?;
    let end = h.off_struct + h.size_struct;
    let mut at = h.off_struct;
    while at < end {
        let start = at;
        let tok = be32(b, at)?;
        at += 4;
        let t = match tok {
            BEGIN_NODE => {
                let name = cstr(b, at)?;
                at = align4(at + name.len() + 1);
                Token::Begin(name)
            }
            END_NODE => Token::End,
            PROP => {
                let len = be32(b, at)? as usize;
                let nameoff = be32(b, at + 4)? as usize;
                let value = b.get(at + 8..at + 8 + len).ok_or(FdtError::Truncated)?;
                let name = cstr(b, h.off_strings + nameoff)?;
                at = align4(at + 8 + len);
                Token::Prop { name, value }
            }
            NOP => Token::Nop,
            END => return Ok(()),
            _ => return Err(FdtError::Truncated),
        };
        f(t, b.get(start..at).ok_or(FdtError::Truncated)?)?;
    }
    Err(FdtError::Truncated)
}

/// The end of the highest `/memory*` range (two address and two size cells, as on virt).
pub fn memory_end(b: &[u8]) -> Result<u64, FdtError> {
    let mut depth = 0usize;
    let mut in_memory = false;
    let mut top = 0u64;
    walk(b, |t, _| {
        match t {
            Token::Begin(name) => {
                depth += 1;
                in_memory = depth == 2 && name.starts_with(b"memory");
            }
            Token::End => {
                depth = depth.saturating_sub(1);
                in_memory = false;
            }
            Token::Prop { name: b"reg", value } if in_memory => {
                for r in value.chunks_exact(16) {
                    let end = be64(r, 0)?.saturating_add(be64(r, 8)?);
                    top = top.max(end);
                }
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(top)
}

struct Out<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Out<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), FdtError> {
        let end = self.at + bytes.len();
        self.buf.get_mut(self.at..end).ok_or(FdtError::TooBig)?.copy_from_slice(bytes);
        self.at = end;
        Ok(())
    }
    fn u32(&mut self, v: u32) -> Result<(), FdtError> {
        self.put(&v.to_be_bytes())
    }
    fn u64(&mut self, v: u64) -> Result<(), FdtError> {
        self.put(&v.to_be_bytes())
    }
    fn set32(&mut self, at: usize, v: u32) -> Result<(), FdtError> {
        self.buf.get_mut(at..at + 4).ok_or(FdtError::TooBig)?.copy_from_slice(&v.to_be_bytes());
        Ok(())
    }
}

const INITRD_START: &[u8] = b"linux,initrd-start";
const INITRD_END: &[u8] = b"linux,initrd-end";

/// Writes into `out` a copy of the DTB `src` with the `reserve` ranges (address, size) added
/// to the memory reservation block and, given an initrd `(start, end)`, `/chosen`'s
/// `linux,initrd-start`/`-end` set to it. Returns the new DTB's size.
pub fn rewrite(src: &[u8], out: &mut [u8], reserve: &[(u64, u64)], initrd: Option<(u64, u64)>) -> Result<usize, FdtError> {
    let h = header(src)?;
    let mut o = Out { buf: out, at: 0 };
    o.put(src.get(..HEADER).ok_or(FdtError::Truncated)?)?;
    // Memory reservation block: the old entries, then ours, then the (0, 0) terminator.
    let rsv_at = o.at;
    let mut at = h.off_rsv;
    loop {
        let (addr, size) = (be64(src, at)?, be64(src, at + 8)?);
        if addr == 0 && size == 0 {
            break;
        }
        o.u64(addr)?;
        o.u64(size)?;
        at += 16;
    }
    for &(addr, size) in reserve {
        o.u64(addr)?;
        o.u64(size)?;
    }
    o.u64(0)?;
    o.u64(0)?;
    // Structure block, with the initrd properties first in /chosen.
    let struct_at = o.at;
    let strings = src.get(h.off_strings..h.off_strings + h.size_strings).ok_or(FdtError::Truncated)?;
    let name_start = h.size_strings as u32;
    let name_end = name_start + INITRD_START.len() as u32 + 1;
    let mut depth = 0usize;
    let mut in_chosen = false;
    walk(src, |t, bytes| {
        match t {
            Token::Begin(name) => {
                depth += 1;
                o.put(bytes)?;
                in_chosen = depth == 2 && name == b"chosen";
                if let (true, Some((start, end))) = (in_chosen, initrd) {
                    for (nameoff, v) in [(name_start, start), (name_end, end)] {
                        o.u32(PROP)?;
                        o.u32(8)?;
                        o.u32(nameoff)?;
                        o.u64(v)?;
                    }
                }
            }
            Token::End => {
                depth = depth.saturating_sub(1);
                in_chosen = false;
                o.put(bytes)?;
            }
            Token::Prop { name, .. } if in_chosen && initrd.is_some() && (name == INITRD_START || name == INITRD_END) => {}
            _ => o.put(bytes)?,
        }
        Ok(())
    })?;
    o.u32(END)?;
    let struct_size = o.at - struct_at;
    let strings_at = o.at;
    o.put(strings)?;
    if initrd.is_some() {
        o.put(INITRD_START)?;
        o.put(&[0])?;
        o.put(INITRD_END)?;
        o.put(&[0])?;
    }
    let strings_size = o.at - strings_at;
    let total = align4(o.at);
    while o.at < total {
        o.put(&[0])?;
    }
    o.set32(4, total as u32)?;
    o.set32(8, struct_at as u32)?;
    o.set32(12, strings_at as u32)?;
    o.set32(16, rsv_at as u32)?;
    o.set32(32, strings_size as u32)?;
    o.set32(36, struct_size as u32)?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    /// QEMU 7.2's `virt,virtualization=on,gic-version=3 -cpu max -m 1G` DTB (dumpdtb, packed).
    const VIRT: &[u8] = include_bytes!("../tests/virt.dtb");

    fn rsvmap(b: &[u8]) -> Vec<(u64, u64)> {
        let mut at = be32(b, 16).unwrap() as usize;
        let mut v = Vec::new();
        loop {
            let e = (be64(b, at).unwrap(), be64(b, at + 8).unwrap());
            if e == (0, 0) {
                return v;
            }
            v.push(e);
            at += 16;
        }
    }

    /// (node path depth-2 name, property name) -> value, for every property.
    fn props(b: &[u8]) -> Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack: Vec<Vec<u8>> = Vec::new();
        walk(b, |t, _| {
            match t {
                Token::Begin(n) => stack.push(n.to_vec()),
                Token::End => {
                    stack.pop();
                }
                Token::Prop { name, value } => out.push((stack.last().cloned().unwrap_or_default(), name.to_vec(), value.to_vec())),
                Token::Nop => {}
            }
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn memory_end_of_virt_is_1g_above_ram_base() {
        assert_eq!(memory_end(VIRT), Ok(0x8000_0000));
    }

    #[test]
    fn rewrite_adds_reservations_and_initrd_and_keeps_everything_else() {
        let mut out = vec![0u8; 64 * 1024];
        let reserve = [(0x4020_0000, 0x20_0000), (0x7fe0_0000, 0x20_0000)];
        let n = rewrite(VIRT, &mut out, &reserve, Some((0x4800_0000, 0x48b5_1c1b))).unwrap();
        let new = &out[..n];
        assert_eq!(total_size(new), Ok(n));
        assert_eq!(rsvmap(new), reserve.to_vec());
        let (old_p, new_p) = (props(VIRT), props(new));
        // Two properties more, both in /chosen, with the initrd's bounds (big-endian u64).
        assert_eq!(new_p.len(), old_p.len() + 2);
        let get = |name: &[u8]| new_p.iter().find(|(node, p, _)| node == b"chosen" && p == name).map(|(_, _, v)| v.clone());
        assert_eq!(get(b"linux,initrd-start"), Some(0x4800_0000u64.to_be_bytes().to_vec()));
        assert_eq!(get(b"linux,initrd-end"), Some(0x48b5_1c1bu64.to_be_bytes().to_vec()));
        for p in &old_p {
            assert!(new_p.contains(p), "lost {:?}", std::string::String::from_utf8_lossy(&p.1));
        }
        assert_eq!(memory_end(new), Ok(0x8000_0000));
    }

    #[test]
    fn rewrite_replaces_an_existing_initrd_and_is_idempotent_in_size() {
        let mut a = vec![0u8; 64 * 1024];
        let mut b = vec![0u8; 64 * 1024];
        let na = rewrite(VIRT, &mut a, &[], Some((1, 2))).unwrap();
        let nb = rewrite(&a[..na], &mut b, &[], Some((3, 4))).unwrap();
        let p = props(&b[..nb]);
        let starts: Vec<_> = p.iter().filter(|(_, n, _)| n == b"linux,initrd-start").collect();
        assert_eq!(starts.len(), 1);
        assert_eq!(starts[0].2, 3u64.to_be_bytes().to_vec());
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let mut out = vec![0u8; 64 * 1024];
        assert_eq!(rewrite(&[0; 64], &mut out, &[], None), Err(FdtError::BadMagic));
        assert_eq!(rewrite(&VIRT[..100], &mut out, &[], None), Err(FdtError::Truncated));
        let mut small = vec![0u8; 100];
        assert_eq!(rewrite(VIRT, &mut small, &[], None), Err(FdtError::TooBig));
        // Every truncation of a valid tree fails cleanly.
        for len in (0..VIRT.len()).step_by(97) {
            let _ = rewrite(&VIRT[..len], &mut out, &[], Some((1, 2)));
            let _ = memory_end(&VIRT[..len]);
        }
    }
}
