//! The binary form of the in-RAM indexes inside a snapshot file (the files themselves, their
//! stamps and when they are written: `store/snapshot.rs`). Little-endian fixed-width numbers and
//! length-prefixed arrays, written and read in one streaming pass with a CRC-32 of every byte.
//!
//! Decoding checks every length against the bytes left and every cross-reference (slots, term
//! ids, graph links) against what it points into, so a damaged file fails with a reason
//! ([`SnapshotDefect`]) instead of panicking later or answering wrongly; the checksum is
//! compared at the end, before anything decoded is used.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use memmap2::Mmap;

use crate::entry::EntryId;
use crate::index::column::{Column, Plain};

/// Where arrays written by [`Encoder::column`] begin: a multiple of this many bytes from the
/// start of the file (a cache line; any element type's alignment divides it).
const COLUMN_ALIGN: usize = 64;

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
    /// Bytes written so far.
    pos: u64,
}

impl<W: Write> Encoder<W> {
    pub fn new(out: W) -> Self {
        Encoder {
            out,
            crc: crc32fast::Hasher::new(),
            buf: Vec::with_capacity(CHUNK + 64),
            pos: 0,
        }
    }

    pub fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.crc.update(bytes);
        self.pos += bytes.len() as u64;
        self.out.write_all(bytes)
    }

    /// Bytes written so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Writes where the part that began at `at` (a [`Encoder::position`]) begins, so that a
    /// reader can split it off ([`Decoder::split_marked`]); the last thing written before
    /// [`Encoder::finish`].
    pub fn mark_split(&mut self, at: u64) -> io::Result<()> {
        self.u64(at)
    }

    /// Zero bytes up to the next multiple of `to` from the start of the file.
    fn align(&mut self, to: usize) -> io::Result<()> {
        let pad = self.pos.next_multiple_of(to as u64) - self.pos;
        self.raw(&[0u8; COLUMN_ALIGN][..pad as usize])
    }

    /// A column's elements after their count, aligned so that a loader can view them in place in
    /// the mapped file ([`Decoder::column`]).
    pub fn column<T: Plain>(&mut self, c: &Column<T>) -> io::Result<()> {
        let (base, tail) = c.parts();
        match (T::le_bytes(base), T::le_bytes(tail)) {
            // The elements' bytes as they are (a vector arena: tens of megabytes at 100K).
            (Some(base), Some(tail)) => {
                self.len(c.len())?;
                self.align(COLUMN_ALIGN)?;
                self.raw(base)?;
                self.raw(tail)
            }
            _ => self.column_of(c.len(), base.iter().chain(tail).copied()),
        }
    }

    /// `n` elements written as [`Encoder::column`] writes a column's.
    pub fn column_of<T: Plain>(
        &mut self,
        n: usize,
        xs: impl IntoIterator<Item = T>,
    ) -> io::Result<()> {
        self.len(n)?;
        self.align(COLUMN_ALIGN)?;
        let mut written = 0;
        for x in xs {
            written += 1;
            x.put_le(&mut self.buf);
            if self.buf.len() >= CHUNK {
                self.flush_buf()?;
            }
        }
        self.flush_buf()?;
        if written != n {
            return Err(io::Error::other(format!(
                "snapshot encoder: {written} elements written where {n} were announced"
            )));
        }
        Ok(())
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
        match u32::le_bytes(v) {
            Some(bytes) => {
                self.len(v.len())?;
                self.raw(bytes)
            }
            None => self.array(v.len(), v.iter().map(|x| x.to_le_bytes())),
        }
    }

    pub fn u64s(&mut self, v: &[u64]) -> io::Result<()> {
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
        // As `array` writes them, through a fixed buffer (a graph's links: megabytes).
        const WORDS: usize = 1_024;
        self.len(v.len())?;
        let mut chunk = [0u8; 4 * WORDS];
        for words in v.chunks(WORDS) {
            for (out, w) in chunk.chunks_exact_mut(4).zip(words) {
                out.copy_from_slice(&w.load(Ordering::Acquire).to_le_bytes());
            }
            self.raw(&chunk[..4 * words.len()])?;
        }
        Ok(())
    }

    /// The sink, as written so far.
    #[cfg(test)]
    pub fn sink(&self) -> &W {
        &self.out
    }

    /// Writes the checksum of everything so far (not itself checksummed) and returns the sink.
    pub fn finish(mut self) -> io::Result<(W, u32)> {
        let crc = self.crc.clone().finalize();
        self.out.write_all(&crc.to_le_bytes())?;
        Ok((self.out, crc))
    }
}

/// Reads what [`Encoder`] wrote from the bytes of a whole file (checksum trailer included),
/// checking every length against the bytes left. The checksum is checked by [`Decoder::finish`],
/// or by the caller with [`verify_checksum`] (the snapshot loader does that on a second thread
/// while this one decodes); either way before anything decoded is used.
pub(crate) struct Decoder<'a> {
    bytes: &'a [u8],
    /// Where [`Decoder::check_later`] sends checks, when a verifier thread takes them.
    deferred: Option<std::sync::mpsc::Sender<Check>>,
    /// The mapping `bytes` lies in, when it is one: arrays read with [`Decoder::column`] are then
    /// viewed in it instead of copied.
    map: Option<&'a Arc<Mmap>>,
    pos: usize,
    /// Where the checksum trailer begins: no read may pass it.
    end: usize,
}

impl<'a> Decoder<'a> {
    /// A decoder of the file whose bytes are `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Decoder {
            bytes,
            deferred: None,
            map: None,
            pos: 0,
            end: bytes.len().saturating_sub(4),
        }
    }

    /// A decoder of a mapped file, whose aligned arrays [`Decoder::column`] views in place.
    pub fn mapped(map: &'a Arc<Mmap>) -> Self {
        Decoder {
            map: Some(map),
            ..Decoder::new(&map[..])
        }
    }

    /// Sends the checks of [`Decoder::check_later`] to `to` instead of running them at once.
    pub fn defer_checks_to(&mut self, to: std::sync::mpsc::Sender<Check>) {
        self.deferred = Some(to);
    }

    /// Whether checks given to [`Decoder::check_later`] run elsewhere.
    pub fn defers_checks(&self) -> bool {
        self.deferred.is_some()
    }

    /// Runs `check` now, or hands it to the verifier thread (which runs it, like the checksum,
    /// before anything decoded is used). For long scans of data viewed in a mapped file.
    pub fn check_later(&mut self, check: Check) -> Decoded<()> {
        match &self.deferred {
            Some(to) => match to.send(check) {
                Ok(()) => Ok(()),
                Err(std::sync::mpsc::SendError(check)) => check(),
            },
            None => check(),
        }
    }

    /// Splits off the part of the file that [`Encoder::mark_split`] marked: returns a decoder of
    /// it, and this one ends where it begins, so the two parts can be decoded at once on two
    /// threads.
    pub fn split_marked(&mut self) -> Decoded<Decoder<'a>> {
        ensure(self.end - self.pos >= 8, || {
            "the file ends early (truncated)".into()
        })?;
        let footer = self.end - 8;
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.bytes[footer..self.end]);
        let at = u64::from_le_bytes(b);
        ensure(at >= self.pos as u64 && at <= footer as u64, || {
            format!("a part said to begin at byte {at} lies outside the file")
        })?;
        let tail = Decoder {
            bytes: self.bytes,
            deferred: self.deferred.clone(),
            map: self.map,
            pos: at as usize,
            end: footer,
        };
        self.end = at as usize;
        Ok(tail)
    }

    fn take(&mut self, n: usize) -> Decoded<&'a [u8]> {
        ensure(n <= self.end - self.pos, || {
            "the file ends early (truncated)".into()
        })?;
        let b = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(b)
    }

    pub fn raw(&mut self, out: &mut [u8]) -> Decoded<()> {
        out.copy_from_slice(self.take(out.len())?);
        Ok(())
    }

    pub fn u8(&mut self) -> Decoded<u8> {
        Ok(self.take(1)?[0])
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
            .is_some_and(|bytes| bytes <= (self.end - self.pos) as u64);
        ensure(fits, || {
            format!("a length of {n} items runs past the end of the file")
        })?;
        usize::try_from(n).map_err(|_| SnapshotDefect(format!("length {n} does not fit")))
    }

    pub fn str(&mut self) -> Decoded<String> {
        let n = self.len(1)?;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| SnapshotDefect("a name is not UTF-8".into()))
    }

    /// Skips the zero bytes [`Encoder::align`] wrote.
    fn align(&mut self, to: usize) -> Decoded<()> {
        let pad = self.pos.next_multiple_of(to) - self.pos;
        let b = self.take(pad)?;
        ensure(b.iter().all(|&x| x == 0), || "bad alignment padding".into())
    }

    /// An array written by [`Encoder::array`], each item decoded from its `N` bytes by `item`.
    pub fn array<const N: usize, T>(&mut self, item: impl Fn([u8; N]) -> T) -> Decoded<Vec<T>> {
        let n = self.len(N)?;
        let b = self.take(n * N)?;
        Ok(b.chunks_exact(N)
            .map(|c| {
                let mut a = [0u8; N];
                a.copy_from_slice(c);
                item(a)
            })
            .collect())
    }

    /// An array written by [`Encoder::column`]: viewed in place in a mapped file, else copied.
    pub fn column<T: Plain>(&mut self) -> Decoded<Column<T>> {
        let size = std::mem::size_of::<T>();
        let n = self.len(size)?;
        self.align(COLUMN_ALIGN)?;
        let offset = self.pos;
        let b = self.take(n * size)?;
        match self.map {
            Some(map) => Column::mapped(map, offset, n)
                .ok_or_else(|| SnapshotDefect("an array lies outside the file".into())),
            None => Ok(Column::from(
                b.chunks_exact(size).map(T::from_le).collect::<Vec<T>>(),
            )),
        }
    }

    pub fn u32s(&mut self) -> Decoded<Vec<u32>> {
        self.array(u32::from_le_bytes)
    }

    pub fn u64s(&mut self) -> Decoded<Vec<u64>> {
        self.array(u64::from_le_bytes)
    }

    pub fn bools(&mut self) -> Decoded<Vec<bool>> {
        let n = self.len(1)?;
        let b = self.take(n)?;
        ensure(b.iter().all(|&b| b <= 1), || {
            "a flag is neither 0 nor 1".into()
        })?;
        Ok(b.iter().map(|&b| b == 1).collect())
    }

    pub fn ids(&mut self) -> Decoded<Vec<EntryId>> {
        self.array(|b| EntryId(u64::from_le_bytes(b)))
    }

    pub fn atomics(&mut self) -> Decoded<Vec<AtomicU32>> {
        self.array(|b| AtomicU32::new(u32::from_le_bytes(b)))
    }

    /// Bytes left to read before the trailer (or the part split off).
    pub fn remaining(&self) -> usize {
        self.end - self.pos
    }

    /// Checks that everything before the trailer was read.
    pub fn done(&self) -> Decoded<()> {
        ensure(self.bytes.len() >= 4, || {
            "the file ends early (truncated)".into()
        })?;
        ensure(self.pos == self.end, || {
            format!(
                "{} bytes left before the checksum, expected none",
                self.end - self.pos
            )
        })
    }

    /// [`Decoder::done`], then the checksum of the whole file; returns the checksum.
    pub fn finish(self) -> Decoded<u32> {
        self.done()?;
        verify_checksum(self.bytes)
    }
}

/// A check of decoded data that may run on another thread ([`Decoder::check_later`]).
pub(crate) type Check = Box<dyn FnOnce() -> Decoded<()> + Send>;

/// Compares the trailer of a whole file's `bytes` with the checksum of everything before it.
pub(crate) fn verify_checksum(bytes: &[u8]) -> Decoded<u32> {
    let (body, stored) = split_trailer(bytes)?;
    compare(stored, crc32fast::hash(body))
}

fn split_trailer(bytes: &[u8]) -> Decoded<(&[u8], u32)> {
    ensure(bytes.len() >= 4, || {
        "the file ends early (truncated)".into()
    })?;
    let (body, trailer) = bytes.split_at(bytes.len() - 4);
    let stored = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    Ok((body, stored))
}

fn compare(stored: u32, computed: u32) -> Decoded<u32> {
    ensure(stored == computed, || {
        format!("checksum mismatch (stored {stored:08x}, computed {computed:08x})")
    })?;
    Ok(stored)
}

/// Bytes per piece of a [`Verifier`]'s checksum.
const VERIFY_CHUNK: usize = 32 << 20;

/// The verification of one mapped file, shared between threads: the checksum in pieces (combined
/// in order at the end) and the checks a [`Decoder`] deferred. A verifier thread starts at once;
/// the loader joins in when it has decoded the file, so both cores finish the scans.
pub(crate) struct Verifier<'a> {
    body: &'a [u8],
    stored: u32,
    /// Bytes per piece of the checksum.
    piece: usize,
    next_piece: std::sync::atomic::AtomicUsize,
    pieces: parking_lot::Mutex<Vec<(usize, crc32fast::Hasher)>>,
    checks: parking_lot::Mutex<std::sync::mpsc::Receiver<Check>>,
    /// Set when a check failed or decoding did: the others stop early.
    stop: std::sync::atomic::AtomicBool,
}

impl<'a> Verifier<'a> {
    /// A verifier of the whole file `bytes` and of the checks sent to `checks`' sender.
    pub fn new(bytes: &'a [u8], checks: std::sync::mpsc::Receiver<Check>) -> Decoded<Self> {
        let (body, stored) = split_trailer(bytes)?;
        Ok(Verifier {
            body,
            stored,
            piece: VERIFY_CHUNK,
            next_piece: Default::default(),
            pieces: Default::default(),
            checks: parking_lot::Mutex::new(checks),
            stop: Default::default(),
        })
    }

    /// Takes pieces of the checksum, then deferred checks, until none are left (the checks end
    /// when every sender is dropped: when the decoder is done).
    pub fn work(&self) -> Decoded<()> {
        let out = self.run();
        if out.is_err() {
            self.abandon();
        }
        out
    }

    fn run(&self) -> Decoded<()> {
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let i = self.next_piece.fetch_add(1, Ordering::Relaxed);
            let Some(piece) = self.body.chunks(self.piece).nth(i) else {
                break;
            };
            let mut h = crc32fast::Hasher::new();
            h.update(piece);
            self.pieces.lock().push((i, h));
        }
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let check = self.checks.lock().recv();
            match check {
                Ok(check) => check()?,
                Err(_) => return Ok(()),
            }
        }
    }

    /// Makes the workers stop early (decoding failed: the file will not be used).
    pub fn abandon(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// The checksum of the pieces, compared with the trailer; after every worker returned `Ok`.
    pub fn finish(self) -> Decoded<u32> {
        let mut pieces = self.pieces.into_inner();
        let want = self.body.len().div_ceil(self.piece);
        ensure(pieces.len() == want, || {
            "the verification was abandoned".into()
        })?;
        pieces.sort_unstable_by_key(|p| p.0);
        let mut crc = crc32fast::Hasher::new();
        for (_, piece) in &pieces {
            crc.combine(piece);
        }
        compare(self.stored, crc.finalize())
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
        enc.column(&Column::from(vec![1.5f32, -0.25])).unwrap();
        let (mut bytes, _) = enc.finish().unwrap();
        let mut dec = Decoder::new(&bytes);
        assert_eq!(dec.u32s().unwrap(), (0..100_000).collect::<Vec<u32>>());
        assert_eq!(dec.str().unwrap(), "agent ü");
        let c = dec.column::<f32>().unwrap();
        assert_eq!((c.len(), c.get(0), c.get(1)), (2, 1.5, -0.25));
        dec.finish().unwrap();

        bytes[1000] ^= 0x10;
        let mut dec = Decoder::new(&bytes);
        dec.u32s().unwrap();
        dec.str().unwrap();
        dec.column::<f32>().unwrap();
        let err = dec.finish().unwrap_err();
        assert!(err.0.contains("checksum"), "{err}");
    }

    #[test]
    fn columns_of_a_mapped_file_are_viewed_in_place_and_read_alike() {
        let mut enc = Encoder::new(Vec::new());
        enc.str("x").unwrap(); // so that the column needs padding
        let xs: Vec<f32> = (0..1000).map(|i| i as f32 / 7.0).collect();
        enc.column(&Column::from(xs.clone())).unwrap();
        enc.column(&Column::from(vec![-3i8, 4, 127])).unwrap();
        let (bytes, _) = enc.finish().unwrap();
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&bytes).unwrap();
        // SAFETY: a private temporary file nobody else writes.
        let map = Arc::new(unsafe { Mmap::map(&f) }.unwrap());
        for mapped in [true, false] {
            let mut dec = if mapped {
                Decoder::mapped(&map)
            } else {
                Decoder::new(&bytes)
            };
            assert_eq!(dec.str().unwrap(), "x");
            let c = dec.column::<f32>().unwrap();
            assert_eq!(c.mapped_len(), if mapped { 1000 } else { 0 });
            assert_eq!(c.row(9, 100), &xs[900..]);
            let c = dec.column::<i8>().unwrap();
            assert_eq!(c.row(0, 3), &[-3, 4, 127]);
            dec.finish().unwrap();
        }
    }

    #[test]
    fn bulk_writes_match_the_element_by_element_encoding() {
        // A column with a mapped base and a heap tail, as a reopened store's arena.
        let xs: Vec<u16> = (0..5_000u16).map(|i| i.wrapping_mul(7_919)).collect();
        let mut enc = Encoder::new(Vec::new());
        enc.column(&Column::from(xs.clone())).unwrap();
        let (bytes, _) = enc.finish().unwrap();
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&bytes).unwrap();
        // SAFETY: a private temporary file nobody else writes.
        let map = Arc::new(unsafe { Mmap::map(&f) }.unwrap());
        let mut column = Decoder::mapped(&map).column::<u16>().unwrap();
        assert_eq!(column.mapped_len(), xs.len());
        for x in [1u16, 65_535, 42] {
            column.push(x);
        }
        let words: Vec<u32> = (0..3_000u32)
            .map(|i| i.wrapping_mul(2_654_435_761))
            .collect();
        let atomics: Vec<AtomicU32> = words.iter().map(|&w| AtomicU32::new(w)).collect();

        let mut fast = Encoder::new(Vec::new());
        fast.str("x").unwrap(); // so that the column needs padding
        fast.column(&column).unwrap();
        fast.u32s(&words).unwrap();
        fast.atomics(&atomics).unwrap();
        let mut slow = Encoder::new(Vec::new());
        slow.str("x").unwrap();
        let (base, tail) = column.parts();
        slow.column_of(column.len(), base.iter().chain(tail).copied())
            .unwrap();
        for _ in 0..2 {
            slow.array(words.len(), words.iter().map(|w| w.to_le_bytes()))
                .unwrap();
        }
        assert_eq!(fast.finish().unwrap(), slow.finish().unwrap());
    }

    /// A verification by two threads over many pieces, with deferred checks sent while they work.
    fn verify(bytes: &[u8], checks: Vec<Check>) -> Decoded<u32> {
        let (to, queue) = std::sync::mpsc::channel::<Check>();
        let mut v = Verifier::new(bytes, queue)?;
        v.piece = 1000;
        let (mine, theirs) = std::thread::scope(|s| {
            let helper = s.spawn(|| v.work());
            for check in checks {
                to.send(check).unwrap();
            }
            drop(to);
            (v.work(), helper.join().unwrap())
        });
        mine?;
        theirs?;
        v.finish()
    }

    #[test]
    fn a_shared_verification_combines_its_pieces_and_fails_on_a_flipped_bit_or_a_check() {
        let mut enc = Encoder::new(Vec::new());
        enc.u32s(&(0..10_000).collect::<Vec<u32>>()).unwrap();
        let (mut bytes, crc) = enc.finish().unwrap();
        let ok = || -> Vec<Check> { (0..5).map(|_| Box::new(|| Ok(())) as Check).collect() };
        assert_eq!(verify(&bytes, ok()).unwrap(), crc);
        assert_eq!(verify_checksum(&bytes).unwrap(), crc);

        let mut checks = ok();
        checks.push(Box::new(|| Err(SnapshotDefect("a number is wrong".into()))));
        let err = verify(&bytes, checks).unwrap_err();
        assert!(err.0.contains("a number is wrong"), "{err}");

        bytes[25_000] ^= 1;
        let err = verify(&bytes, ok()).unwrap_err();
        assert!(err.0.contains("checksum mismatch"), "{err}");
        assert!(verify(&bytes[..3], ok())
            .unwrap_err()
            .0
            .contains("truncated"));
    }

    #[test]
    fn a_length_past_the_end_is_a_defect_not_an_allocation() {
        let mut enc = Encoder::new(Vec::new());
        enc.u64(u64::MAX / 2).unwrap();
        let (bytes, _) = enc.finish().unwrap();
        let mut dec = Decoder::new(&bytes);
        let err = dec.u32s().unwrap_err();
        assert!(err.0.contains("past the end"), "{err}");
        let mut dec = Decoder::new(&bytes[..3]);
        assert!(dec.u64().unwrap_err().0.contains("truncated"));
    }
}
