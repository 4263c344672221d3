//! The binary form of the in-RAM indexes inside a snapshot file (the files themselves, their
//! stamps and when they are written: `store/snapshot.rs`). Little-endian fixed-width numbers and
//! length-prefixed arrays, written and read in one streaming pass with a CRC-32 of every byte.
//!
//! Decoding checks every length against the bytes left and every cross-reference (slots, term
//! ids, graph links) against what it points into, so a damaged file fails with a reason
//! ([`SnapshotDefect`]) instead of panicking later or answering wrongly; the checksum is
//! compared at the end, before anything decoded is used.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::entry::EntryId;

/// Why a snapshot file could not be read back: what was wrong, in words for a tracing event.
#[derive(Debug)]
pub(crate) struct SnapshotDefect(pub String);

impl std::fmt::Display for SnapshotDefect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<io::Error> for SnapshotDefect {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            SnapshotDefect("the file ends early (truncated)".into())
        } else {
            SnapshotDefect(format!("read failed: {e}"))
        }
    }
}

/// The result of decoding part of a snapshot.
pub(crate) type Decoded<T> = std::result::Result<T, SnapshotDefect>;

/// Fails decoding with `what` unless `ok`.
pub(crate) fn ensure(ok: bool, what: impl FnOnce() -> String) -> Decoded<()> {
    if ok {
        Ok(())
    } else {
        Err(SnapshotDefect(what()))
    }
}

/// Bytes converted per chunk by the array writers and readers.
const CHUNK: usize = 64 * 1024;

/// Writes the snapshot encoding to `W`, keeping a CRC-32 of everything written.
pub(crate) struct Encoder<W: Write> {
    out: W,
    crc: crc32fast::Hasher,
    buf: Vec<u8>,
}

impl<W: Write> Encoder<W> {
    pub fn new(out: W) -> Self {
        Encoder {
            out,
            crc: crc32fast::Hasher::new(),
            buf: Vec::with_capacity(CHUNK + 64),
        }
    }

    pub fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.crc.update(bytes);
        self.out.write_all(bytes)
    }

    pub fn u8(&mut self, v: u8) -> io::Result<()> {
        self.raw(&[v])
    }

    pub fn u32(&mut self, v: u32) -> io::Result<()> {
        self.raw(&v.to_le_bytes())
    }

    pub fn u64(&mut self, v: u64) -> io::Result<()> {
        self.raw(&v.to_le_bytes())
    }

    pub fn len(&mut self, n: usize) -> io::Result<()> {
        self.u64(n as u64)
    }

    pub fn str(&mut self, s: &str) -> io::Result<()> {
        self.len(s.len())?;
        self.raw(s.as_bytes())
    }

    /// `n` items, each turned into `N` bytes by `item`, after their count.
    pub fn array<const N: usize>(
        &mut self,
        n: usize,
        items: impl IntoIterator<Item = [u8; N]>,
    ) -> io::Result<()> {
        self.len(n)?;
        let mut written = 0;
        for bytes in items {
            self.buf.extend_from_slice(&bytes);
            written += 1;
            if self.buf.len() >= CHUNK {
                self.flush_buf()?;
            }
        }
        self.flush_buf()?;
        if written != n {
            return Err(io::Error::other(format!(
                "snapshot encoder: {written} items written where {n} were announced"
            )));
        }
        Ok(())
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        let buf = std::mem::take(&mut self.buf);
        let out = self.raw(&buf);
        self.buf = buf;
        self.buf.clear();
        out
    }

    pub fn u32s(&mut self, v: &[u32]) -> io::Result<()> {
        self.array(v.len(), v.iter().map(|x| x.to_le_bytes()))
    }

    pub fn u64s(&mut self, v: &[u64]) -> io::Result<()> {
        self.array(v.len(), v.iter().map(|x| x.to_le_bytes()))
    }

    pub fn f32s(&mut self, v: &[f32]) -> io::Result<()> {
        self.array(v.len(), v.iter().map(|x| x.to_le_bytes()))
    }

    pub fn bools(&mut self, v: &[bool]) -> io::Result<()> {
        self.array(v.len(), v.iter().map(|&x| [u8::from(x)]))
    }

    pub fn ids(&mut self, v: &[EntryId]) -> io::Result<()> {
        self.array(v.len(), v.iter().map(|x| x.0.to_le_bytes()))
    }

    /// Atomic words, each read once (the caller keeps writers out).
    pub fn atomics(&mut self, v: &[AtomicU32]) -> io::Result<()> {
        self.array(
            v.len(),
            v.iter().map(|x| x.load(Ordering::Acquire).to_le_bytes()),
        )
    }

    /// Writes the checksum of everything so far (not itself checksummed) and returns the sink.
    pub fn finish(mut self) -> io::Result<(W, u32)> {
        let crc = self.crc.clone().finalize();
        self.out.write_all(&crc.to_le_bytes())?;
        Ok((self.out, crc))
    }
}

/// Reads what [`Encoder`] wrote, checking lengths against the bytes left and, at the end, the
/// checksum.
pub(crate) struct Decoder<R: Read> {
    inp: R,
    crc: crc32fast::Hasher,
    /// Bytes of the file not read yet (the trailer included): no length may claim more.
    left: u64,
    buf: Vec<u8>,
}

impl<R: Read> Decoder<R> {
    /// A decoder of `size` bytes from `inp`.
    pub fn new(inp: R, size: u64) -> Self {
        Decoder {
            inp,
            crc: crc32fast::Hasher::new(),
            left: size,
            buf: Vec::new(),
        }
    }

    pub fn raw(&mut self, out: &mut [u8]) -> Decoded<()> {
        ensure(out.len() as u64 <= self.left, || {
            "the file ends early (truncated)".into()
        })?;
        self.inp.read_exact(out)?;
        self.crc.update(out);
        self.left -= out.len() as u64;
        Ok(())
    }

    pub fn u8(&mut self) -> Decoded<u8> {
        let mut b = [0u8; 1];
        self.raw(&mut b)?;
        Ok(b[0])
    }

    pub fn u32(&mut self) -> Decoded<u32> {
        let mut b = [0u8; 4];
        self.raw(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    pub fn u64(&mut self) -> Decoded<u64> {
        let mut b = [0u8; 8];
        self.raw(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// A count of items of `width` bytes each, checked against the bytes left.
    pub fn len(&mut self, width: usize) -> Decoded<usize> {
        let n = self.u64()?;
        let fits = n
            .checked_mul(width.max(1) as u64)
            .is_some_and(|bytes| bytes <= self.left);
        ensure(fits, || {
            format!("a length of {n} items runs past the end of the file")
        })?;
        usize::try_from(n).map_err(|_| SnapshotDefect(format!("length {n} does not fit")))
    }

    pub fn str(&mut self) -> Decoded<String> {
        let n = self.len(1)?;
        let mut b = vec![0u8; n];
        self.raw(&mut b)?;
        String::from_utf8(b).map_err(|_| SnapshotDefect("a name is not UTF-8".into()))
    }

    /// An array written by [`Encoder::array`], each item decoded from its `N` bytes by `item`.
    pub fn array<const N: usize, T>(&mut self, item: impl Fn([u8; N]) -> T) -> Decoded<Vec<T>> {
        let n = self.len(N)?;
        let mut out = Vec::with_capacity(n);
        let mut left = n;
        let per_chunk = (CHUNK / N).max(1);
        let mut buf = std::mem::take(&mut self.buf);
        while left > 0 {
            let take = left.min(per_chunk);
            buf.resize(take * N, 0);
            self.raw(&mut buf)?;
            out.extend(buf.chunks_exact(N).map(|c| {
                let mut a = [0u8; N];
                a.copy_from_slice(c);
                item(a)
            }));
            left -= take;
        }
        self.buf = buf;
        Ok(out)
    }

    pub fn u32s(&mut self) -> Decoded<Vec<u32>> {
        self.array(u32::from_le_bytes)
    }

    pub fn u64s(&mut self) -> Decoded<Vec<u64>> {
        self.array(u64::from_le_bytes)
    }

    pub fn f32s(&mut self) -> Decoded<Vec<f32>> {
        self.array(f32::from_le_bytes)
    }

    pub fn bools(&mut self) -> Decoded<Vec<bool>> {
        let v = self.array(|[b]: [u8; 1]| b)?;
        ensure(v.iter().all(|&b| b <= 1), || {
            "a flag is neither 0 nor 1".into()
        })?;
        Ok(v.into_iter().map(|b| b == 1).collect())
    }

    pub fn ids(&mut self) -> Decoded<Vec<EntryId>> {
        self.array(|b| EntryId(u64::from_le_bytes(b)))
    }

    pub fn atomics(&mut self) -> Decoded<Vec<AtomicU32>> {
        self.array(|b| AtomicU32::new(u32::from_le_bytes(b)))
    }

    /// Reads the trailer and compares it with the checksum of everything read; the file must end
    /// there.
    pub fn finish(mut self) -> Decoded<u32> {
        ensure(self.left == 4, || {
            format!(
                "{} bytes left before the checksum, expected none",
                self.left.saturating_sub(4)
            )
        })?;
        let mut b = [0u8; 4];
        self.inp.read_exact(&mut b)?;
        let stored = u32::from_le_bytes(b);
        let computed = self.crc.clone().finalize();
        ensure(stored == computed, || {
            format!("checksum mismatch (stored {stored:08x}, computed {computed:08x})")
        })?;
        Ok(stored)
    }
}

/// Role codes in snapshot files: the position in [`Role::ALL`](crate::entry::Role::ALL).
pub(crate) fn role_code(r: crate::entry::Role) -> u8 {
    crate::entry::Role::ALL
        .iter()
        .position(|x| *x == r)
        .unwrap_or(0) as u8
}

pub(crate) fn role_from_code(c: u8) -> Decoded<crate::entry::Role> {
    crate::entry::Role::ALL
        .get(usize::from(c))
        .copied()
        .ok_or_else(|| SnapshotDefect(format!("unknown role code {c}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_round_trip_and_a_flipped_bit_fails_the_checksum() {
        let mut enc = Encoder::new(Vec::new());
        enc.u32s(&(0..100_000).collect::<Vec<u32>>()).unwrap();
        enc.str("agent ü").unwrap();
        enc.f32s(&[1.5, -0.25]).unwrap();
        let (mut bytes, _) = enc.finish().unwrap();
        let size = bytes.len() as u64;
        let mut dec = Decoder::new(&bytes[..], size);
        assert_eq!(dec.u32s().unwrap(), (0..100_000).collect::<Vec<u32>>());
        assert_eq!(dec.str().unwrap(), "agent ü");
        assert_eq!(dec.f32s().unwrap(), [1.5, -0.25]);
        dec.finish().unwrap();

        bytes[1000] ^= 0x10;
        let mut dec = Decoder::new(&bytes[..], size);
        dec.u32s().unwrap();
        dec.str().unwrap();
        dec.f32s().unwrap();
        let err = dec.finish().unwrap_err();
        assert!(err.0.contains("checksum"), "{err}");
    }

    #[test]
    fn a_length_past_the_end_is_a_defect_not_an_allocation() {
        let mut enc = Encoder::new(Vec::new());
        enc.u64(u64::MAX / 2).unwrap();
        let (bytes, _) = enc.finish().unwrap();
        let mut dec = Decoder::new(&bytes[..], bytes.len() as u64);
        let err = dec.u32s().unwrap_err();
        assert!(err.0.contains("past the end"), "{err}");
        let mut dec = Decoder::new(&bytes[..3], 3);
        assert!(dec.u64().unwrap_err().0.contains("truncated"));
    }
}
