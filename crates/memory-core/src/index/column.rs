//! Arrays whose loaded part can stay in a memory-mapped snapshot file.
//!
//! A [`Column`] is a read-only prefix viewed in place in a mapped file (the `base`, kept alive by
//! an `Arc` of the map) followed by an owned, growable tail. Opening a big store then maps its
//! vector arena instead of reading it: nothing is copied, and the kernel brings pages in as
//! searches touch them (and shares them with the page cache). New rows go to the tail; the rare
//! operations that rewrite rows in place (removing a range) first copy the base into the tail.
//!
//! Only the snapshot loader makes a mapped column ([`Column::mapped`]), after checking the
//! alignment and the length; on a big-endian machine it copies instead (files are
//! little-endian). A mapped file is never written after its rename (a new snapshot gets new
//! file names), so the view stays valid for as long as the column holds the map.

use std::sync::Arc;

use memmap2::Mmap;

use crate::index::growth::reserve_bounded;

/// Plain little-endian numbers a column may view in a file: any bit pattern is a value.
///
/// # Safety
/// Implementors must be plain data without padding whose every bit pattern is valid, with the
/// same in-memory layout as their little-endian encoding on little-endian machines.
pub(crate) unsafe trait Plain: Copy + Send + Sync + 'static {
    fn from_le(bytes: &[u8]) -> Self;
    fn put_le(self, out: &mut Vec<u8>);

    /// The little-endian encoding of `xs` without a copy: their bytes in memory on a
    /// little-endian machine, `None` on another.
    fn le_bytes(xs: &[Self]) -> Option<&[u8]> {
        if cfg!(target_endian = "little") {
            // SAFETY: by the trait's contract, `Self` is plain data without padding, laid out as
            // its little-endian encoding on this (little-endian) machine; the bytes borrow `xs`.
            Some(unsafe {
                std::slice::from_raw_parts(xs.as_ptr().cast::<u8>(), std::mem::size_of_val(xs))
            })
        } else {
            None
        }
    }
}

// SAFETY: four bytes, no padding, every bit pattern a value (NaNs included).
unsafe impl Plain for f32 {
    #[inline]
    fn from_le(b: &[u8]) -> Self {
        f32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    #[inline]
    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

// SAFETY: two bytes, no padding, every bit pattern a value (half-precision numbers are kept
// as their bit patterns).
unsafe impl Plain for u16 {
    #[inline]
    fn from_le(b: &[u8]) -> Self {
        u16::from_le_bytes([b[0], b[1]])
    }

    #[inline]
    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

// SAFETY: four bytes, no padding, every bit pattern a value.
unsafe impl Plain for u32 {
    #[inline]
    fn from_le(b: &[u8]) -> Self {
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    #[inline]
    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

// SAFETY: one byte, every bit pattern a value.
unsafe impl Plain for i8 {
    #[inline]
    fn from_le(b: &[u8]) -> Self {
        b[0] as i8
    }

    #[inline]
    fn put_le(self, out: &mut Vec<u8>) {
        out.push(self as u8);
    }
}

/// A prefix viewed in a mapped file.
struct Base<T> {
    /// Keeps the mapping alive; `None` for an empty base.
    map: Option<Arc<Mmap>>,
    ptr: *const T,
    len: usize,
}

// SAFETY: the base is an immutable view into a read-only mapping that the `Arc` keeps alive;
// `T` is plain data, so sending the view is like sending a `&[T]`.
unsafe impl<T: Plain> Send for Base<T> {}
// SAFETY: as for `Send`: nothing writes through the view, so sharing it is sharing a `&[T]`.
unsafe impl<T: Plain> Sync for Base<T> {}

impl<T: Plain> Base<T> {
    fn empty() -> Self {
        Base {
            map: None,
            ptr: std::ptr::NonNull::<T>::dangling().as_ptr(),
            len: 0,
        }
    }

    #[inline]
    fn slice(&self) -> &[T] {
        // SAFETY: `ptr` is aligned and `len` elements lie inside the mapping held by `map` (checked
        // by `Column::mapped`), or `len` is 0 and `ptr` dangling-but-aligned.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl<T: Plain> Clone for Base<T> {
    fn clone(&self) -> Self {
        Base {
            map: self.map.clone(),
            ptr: self.ptr,
            len: self.len,
        }
    }
}

/// A mapped prefix and an owned tail, read as one array.
#[derive(Clone)]
pub(crate) struct Column<T: Plain> {
    base: Base<T>,
    tail: Vec<T>,
}

impl<T: Plain> std::fmt::Debug for Column<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Column")
            .field("mapped", &self.base.len)
            .field("owned", &self.tail.len())
            .finish()
    }
}

impl<T: Plain> Default for Column<T> {
    fn default() -> Self {
        Column {
            base: Base::empty(),
            tail: Vec::new(),
        }
    }
}

impl<T: Plain> From<Vec<T>> for Column<T> {
    fn from(tail: Vec<T>) -> Self {
        Column {
            base: Base::empty(),
            tail,
        }
    }
}

impl<T: Plain> Column<T> {
    /// A column of the `len` elements at byte `offset` of `map`, viewed in place when the
    /// machine is little-endian and the offset aligned for `T`, else copied. `None` when the
    /// range does not lie inside the map.
    pub fn mapped(map: &Arc<Mmap>, offset: usize, len: usize) -> Option<Self> {
        let size = std::mem::size_of::<T>();
        let bytes = map.get(offset..offset.checked_add(len.checked_mul(size)?)?)?;
        let ptr = bytes.as_ptr();
        if cfg!(target_endian = "little") && ptr.align_offset(std::mem::align_of::<T>()) == 0 {
            return Some(Column {
                base: Base {
                    map: Some(map.clone()),
                    ptr: ptr.cast::<T>(),
                    len,
                },
                tail: Vec::new(),
            });
        }
        Some(Column::from(
            bytes.chunks_exact(size).map(T::from_le).collect::<Vec<T>>(),
        ))
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.base.len + self.tail.len()
    }

    /// Elements viewed in the mapped file (not on the heap).
    #[cfg(test)]
    pub fn mapped_len(&self) -> usize {
        self.base.len
    }

    /// Row `i` of `width` elements. Rows never straddle the base and the tail: the base always
    /// holds whole rows (the loader checks its length against the row count).
    #[inline]
    pub fn row(&self, i: usize, width: usize) -> &[T] {
        let start = i * width;
        if start < self.base.len {
            &self.base.slice()[start..start + width]
        } else {
            let s = start - self.base.len;
            &self.tail[s..s + width]
        }
    }

    #[inline]
    pub fn get(&self, i: usize) -> T {
        if i < self.base.len {
            self.base.slice()[i]
        } else {
            self.tail[i - self.base.len]
        }
    }

    /// The whole array as one slice, for a column the loader made and nothing was pushed to
    /// since (all of it mapped, or all of it copied).
    pub fn as_loaded(&self) -> &[T] {
        debug_assert!(self.base.len == 0 || self.tail.is_empty());
        if self.base.len == 0 {
            &self.tail
        } else {
            self.base.slice()
        }
    }

    /// The two parts, base first.
    pub fn parts(&self) -> (&[T], &[T]) {
        (self.base.slice(), &self.tail)
    }

    pub fn push(&mut self, x: T) {
        self.tail.push(x);
    }

    /// Appends `xs`, growing the tail by the bounded rule of [`reserve_bounded`].
    pub fn extend_bounded(&mut self, xs: &[T]) {
        reserve_bounded(&mut self.tail, xs.len());
        self.tail.extend_from_slice(xs);
    }

    /// Makes room for `additional` more elements by the bounded rule.
    pub fn reserve_bounded(&mut self, additional: usize) {
        reserve_bounded(&mut self.tail, additional);
    }

    /// The owned tail, to append to in place (quantizing straight into it).
    pub fn tail_mut(&mut self) -> &mut Vec<T> {
        &mut self.tail
    }

    /// Removes the elements in `range`, moving the later ones down (the base is copied into the
    /// tail first, once).
    pub fn drain(&mut self, range: std::ops::Range<usize>) {
        self.own();
        self.tail.drain(range);
    }

    pub fn clear(&mut self) {
        self.base = Base::empty();
        self.tail.clear();
    }

    /// Copies the base into the tail and lets go of the mapping.
    fn own(&mut self) {
        if self.base.len > 0 {
            let mut all = Vec::with_capacity(self.len());
            all.extend_from_slice(self.base.slice());
            all.append(&mut self.tail);
            self.tail = all;
            self.base = Base::empty();
        }
    }

    /// Heap bytes held (the tail's capacity; the base is in the page cache).
    pub fn heap_bytes(&self) -> usize {
        self.tail.capacity() * std::mem::size_of::<T>()
    }

    pub fn shrink_to_fit(&mut self) {
        self.tail.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn map_of(bytes: &[u8]) -> Arc<Mmap> {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        // SAFETY: a private temporary file nobody else writes.
        Arc::new(unsafe { Mmap::map(&f) }.unwrap())
    }

    #[test]
    fn a_mapped_column_reads_like_the_array_it_was_written_from_and_grows_past_it() {
        let xs: Vec<f32> = (0..64).map(|i| i as f32 * 0.5).collect();
        let bytes: Vec<u8> = [0u8; 8]
            .into_iter()
            .chain(xs.iter().flat_map(|x| x.to_le_bytes()))
            .collect();
        let map = map_of(&bytes);
        let mut c = Column::<f32>::mapped(&map, 8, 64).unwrap();
        assert_eq!(c.len(), 64);
        assert_eq!(c.row(3, 4), &xs[12..16]);
        c.extend_bounded(&[100.0, 101.0, 102.0, 103.0]);
        assert_eq!(c.row(16, 4), &[100.0, 101.0, 102.0, 103.0]);
        assert_eq!(c.get(63), 31.5);
        assert_eq!(c.get(64), 100.0);
        c.drain(0..4);
        assert_eq!(c.mapped_len(), 0);
        assert_eq!(c.len(), 64);
        assert_eq!(c.row(0, 4), &xs[4..8]);
        assert_eq!(c.row(15, 4), &[100.0, 101.0, 102.0, 103.0]);
    }

    #[test]
    fn a_range_past_the_map_is_refused_and_a_misaligned_one_is_copied() {
        let bytes: Vec<u8> = (0..64u8).collect();
        let map = map_of(&bytes);
        assert!(Column::<f32>::mapped(&map, 8, 15).is_none());
        assert!(Column::<f32>::mapped(&map, usize::MAX - 2, 1).is_none());
        let c = Column::<f32>::mapped(&map, 1, 4).unwrap();
        assert_eq!(c.mapped_len(), 0);
        assert_eq!(c.get(0), f32::from_le_bytes([1, 2, 3, 4]));
    }
}
