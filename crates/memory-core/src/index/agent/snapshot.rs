//! One agent's indexes in a snapshot file: the keyword index with the filter attributes, then
//! the vector index with its staging buffer.
//!
//! The two halves are captured one after the other, each under its own locks (text, then
//! vectors with staging), so writes wait for one half at a time; searches do not wait (the
//! halves are read as a [`CaptureLock::capture`], which keeps waiting writers off the lock
//! searches read). An entry written or removed
//! between the two captures can be caught half indexed; the snapshot's stamp is taken before
//! the capture begins, so every such entry is changed after the stamp, and the loader brings it
//! in line with the database ([`AgentIndex::holds_whole`], [`AgentIndex::remove_everywhere`]).

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;

use parking_lot::RwLock;
use rustc_hash::FxHashMap;

use super::{AgentIndex, DocInfo, TextIndex};
use crate::clock::Timestamp;
use crate::entry::EntryId;
use crate::index::capture::CaptureLock;
use crate::index::codec::{
    ensure, role_code, role_from_code, Decoded, Decoder, Encoder, SnapshotDefect,
};
use crate::index::idmap::map_by_id;
use crate::index::keyword::{Bm25Params, KeywordIndex};
use crate::index::vector::{VectorIndex, VectorIndexConfig, VectorStaging};

/// Text-part bytes from which the two parts of an agent file are decoded on two threads (below
/// it, a thread costs more than it saves).
const PARALLEL_DECODE_BYTES: usize = 4 << 20;

impl AgentIndex {
    /// Writes this agent's indexes (see the module doc for what the locks guarantee).
    pub(crate) fn encode<W: Write>(&self, enc: &mut Encoder<W>) -> std::io::Result<()> {
        {
            let text = self.text.capture();
            text.keyword.encode(enc)?;
            let mut docs: Vec<(&EntryId, &DocInfo)> = text.docs.iter().collect();
            docs.sort_unstable_by_key(|d| d.0);
            enc.array(
                docs.len(),
                docs.iter().map(|(id, d)| {
                    let mut b = [0u8; 21];
                    b[..8].copy_from_slice(&id.0.to_le_bytes());
                    b[8..16].copy_from_slice(&d.created_at.0.to_le_bytes());
                    b[16..20].copy_from_slice(&d.session.to_le_bytes());
                    b[20] = role_code(d.role);
                    b
                }),
            )?;
            enc.len(text.sessions.len())?;
            for s in &text.sessions {
                enc.str(s)?;
            }
        }
        let vectors = self.vectors.capture();
        // Cloned at once (it is short), so that writes wait only for that copy; the vector
        // index stays read-locked, which keeps the linker from moving staged vectors in
        // until both are written.
        let staging = self.staging.read().clone();
        let vector_part = enc.position();
        vectors.encode(enc)?;
        staging.encode(enc)?;
        enc.mark_split(vector_part)
    }

    /// Reads what [`AgentIndex::encode`] wrote: the text part on this thread and, when it is big
    /// enough to be worth a thread, the vector part on another at the same time.
    pub(crate) fn decode(
        dec: &mut Decoder<'_>,
        bm25: Bm25Params,
        config: &VectorIndexConfig,
    ) -> Decoded<AgentIndex> {
        let mut vector_part = dec.split_marked()?;
        let mut decode_vectors = move || -> Decoded<(VectorIndex, VectorStaging)> {
            let vectors = VectorIndex::decode(&mut vector_part, *config)?;
            let staging = VectorStaging::decode(&mut vector_part, config)?;
            vector_part.done()?;
            Ok((vectors, staging))
        };
        let (text, vectors) = if dec.remaining() >= PARALLEL_DECODE_BYTES {
            std::thread::scope(|s| {
                let vectors = s.spawn(decode_vectors);
                let text = Self::decode_text(dec, bm25);
                let vectors = vectors
                    .join()
                    .unwrap_or_else(|_| Err(SnapshotDefect("the vector decoder panicked".into())));
                (text, vectors)
            })
        } else {
            (Self::decode_text(dec, bm25), decode_vectors())
        };
        let (vectors, staging) = vectors?;
        Ok(AgentIndex {
            text: CaptureLock::new(text?),
            vectors: CaptureLock::new(vectors),
            staging: RwLock::new(staging),
            link_queued: AtomicBool::new(false),
            writers_linking: AtomicUsize::new(0),
        })
    }

    /// The keyword index and the attributes.
    fn decode_text(dec: &mut Decoder<'_>, bm25: Bm25Params) -> Decoded<TextIndex> {
        let keyword = KeywordIndex::decode(dec, bm25)?;
        let docs: Vec<(EntryId, i64, u32, u8)> = dec.array(|b: [u8; 21]| {
            let word = |r: std::ops::Range<usize>| {
                let mut a = [0u8; 8];
                a[..r.len()].copy_from_slice(&b[r]);
                a
            };
            (
                EntryId(u64::from_le_bytes(word(0..8))),
                i64::from_le_bytes(word(8..16)),
                u32::from_le_bytes([b[16], b[17], b[18], b[19]]),
                b[20],
            )
        })?;
        let n_sessions = dec.len(8)?;
        let mut sessions: Vec<Arc<str>> = Vec::with_capacity(n_sessions);
        let mut session_index = FxHashMap::default();
        for i in 0..n_sessions {
            let s: Arc<str> = Arc::from(dec.str()?);
            ensure(session_index.insert(s.clone(), i as u32).is_none(), || {
                "a session is named twice".into()
            })?;
            sessions.push(s);
        }
        let mut infos = Vec::with_capacity(docs.len());
        for (id, created_at, session, role) in docs {
            ensure((session as usize) < sessions.len(), || {
                format!(
                    "entry {} names session {session}, which does not exist",
                    id.0
                )
            })?;
            let info = DocInfo {
                created_at: Timestamp(created_at),
                session,
                role: role_from_code(role)?,
            };
            infos.push((id, info));
        }
        let doc_map = map_by_id(infos)
            .map_err(|id| SnapshotDefect(format!("entry {} has two sets of attributes", id.0)))?;
        ensure(
            doc_map.len() == keyword.len() && doc_map.keys().all(|id| keyword.contains(*id)),
            || "the keyword index and the attributes hold different entries".into(),
        )?;
        Ok(TextIndex {
            keyword,
            docs: doc_map,
            sessions,
            session_index,
            uncommitted: 0,
        })
    }

    /// Whether `id` is indexed whole: its text and attributes, and its vector if it has one.
    pub(crate) fn holds_whole(&self, id: EntryId, has_vector: bool) -> bool {
        if !self.text.read().docs.contains_key(&id) {
            return false;
        }
        let vector_held = self.vectors.read().contains(id);
        let held = vector_held || self.staging.read().contains(id);
        held == has_vector
    }

    /// Removes every trace of `id`: text, attributes, staged and indexed vectors.
    pub(crate) fn remove_everywhere(&self, id: EntryId) {
        {
            let mut text = self.text.write();
            text.keyword.remove(id);
            text.docs.remove(&id);
        }
        let mut vectors = self.vectors.write();
        let mut staging = self.staging.write();
        staging.remove(id);
        vectors.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Role;
    use crate::query::DocFilter;
    use std::sync::mpsc;
    use std::time::Duration;

    /// An agent's index with text, attributes and vectors (some still staged).
    fn agent(n: u64) -> AgentIndex {
        let config = VectorIndexConfig::new(8);
        let ix = AgentIndex::new(Bm25Params::default(), &config).unwrap();
        for i in 0..n {
            let v: Vec<f32> = (0..8).map(|d| ((i * 17 + d * 5) as f32).sin()).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            let v: Vec<f32> = v.iter().map(|x| x / norm).collect();
            let text = format!("note {} about topic{} and topic{}", i, i % 13, i % 7);
            let session = format!("s{}", i % 3);
            ix.add_stored(
                EntryId(i),
                (&session, Role::User, Timestamp(i as i64)),
                &text,
                Some(&v),
            )
            .unwrap();
        }
        ix
    }

    fn answers(ix: &AgentIndex) -> Vec<Vec<(EntryId, f32)>> {
        let q: Vec<f32> = (0..8).map(|d| (d as f32).cos()).collect();
        let norm = q.iter().map(|x| x * x).sum::<f32>().sqrt();
        let q: Vec<f32> = q.iter().map(|x| x / norm).collect();
        let all = DocFilter::default();
        vec![
            ix.keyword("topic3 topic5", 10, &all),
            ix.vector(&q, 10, true, &all).unwrap(),
        ]
    }

    #[test]
    fn an_agent_file_decodes_alike_on_one_thread_or_two() {
        for (n, parallel) in [(300, false), (40_000, true)] {
            let ix = agent(n);
            let mut enc = Encoder::new(Vec::new());
            ix.encode(&mut enc).unwrap();
            let (bytes, _) = enc.finish().unwrap();
            let mut dec = Decoder::new(&bytes);
            let mut probe = Decoder::new(&bytes);
            probe.split_marked().unwrap();
            assert_eq!(
                probe.remaining() >= PARALLEL_DECODE_BYTES,
                parallel,
                "n = {n}"
            );
            let back =
                AgentIndex::decode(&mut dec, Bm25Params::default(), &VectorIndexConfig::new(8))
                    .unwrap();
            dec.finish().unwrap();
            assert_eq!(answers(&back), answers(&ix), "n = {n}");
            // The link codes left out of the file are the linker's first work, and then the
            // answers are the same again.
            assert!(back.vectors.read().link_codes_missing(), "n = {n}");
            assert!(back.has_link_work(), "n = {n}");
            while back.link_step() {}
            assert!(!back.vectors.read().link_codes_missing(), "n = {n}");
            assert_eq!(answers(&back), answers(&ix), "n = {n}");
        }
    }

    /// A sink that counts the encoder's writes and can hold it at one of them until told to go
    /// on (the copy then holds its locks).
    struct PausingSink {
        calls: usize,
        pause_at: Option<(usize, mpsc::Sender<()>, mpsc::Receiver<()>)>,
    }

    impl Write for PausingSink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if let Some((at, paused, resume)) = &self.pause_at {
                if *at == self.calls {
                    paused.send(()).unwrap();
                    resume.recv().unwrap();
                }
            }
            self.calls += 1;
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn searches_do_not_wait_behind_a_write_queued_for_a_snapshot_copy() {
        // How long the writer gets to reach its lock and park there, and how long a search may
        // take before it counts as stuck: liveness bounds, not timings (a slow machine can only
        // make the test weaker, never flaky).
        const PARK: Duration = Duration::from_millis(100);
        const STUCK: Duration = Duration::from_secs(20);
        let ix = &agent(2_000);
        let mut counting = Encoder::new(PausingSink {
            calls: 0,
            pause_at: None,
        });
        ix.encode(&mut counting).unwrap();
        let calls = counting.sink().calls;
        // The first write is the keyword index's, the last the staging buffer's.
        for (pause_at, half, removed) in [(0, "text", 7), (calls - 1, "vector", 8)] {
            std::thread::scope(|s| {
                let (paused_tx, paused) = mpsc::channel();
                let (resume, resume_rx) = mpsc::channel();
                let copier = s.spawn(move || {
                    let mut enc = Encoder::new(PausingSink {
                        calls: 0,
                        pause_at: Some((pause_at, paused_tx, resume_rx)),
                    });
                    ix.encode(&mut enc)
                });
                paused.recv().unwrap();
                // A removal writes the text index, then the vector index.
                let (queued_tx, queued) = mpsc::channel();
                let writer = s.spawn(move || {
                    queued_tx.send(()).unwrap();
                    ix.remove(EntryId(removed));
                });
                queued.recv().unwrap();
                std::thread::sleep(PARK);
                let (done, answered) = mpsc::channel();
                s.spawn(move || done.send(answers(ix)).unwrap());
                let got = answered.recv_timeout(STUCK);
                resume.send(()).unwrap();
                assert!(
                    got.is_ok(),
                    "a search waited for the copy of the {half} half"
                );
                copier.join().unwrap().unwrap();
                writer.join().unwrap();
            });
            assert!(!ix.contains(EntryId(removed)));
        }
    }

    #[test]
    fn a_split_mark_outside_the_file_is_a_defect() {
        let ix = agent(10);
        let mut enc = Encoder::new(Vec::new());
        ix.encode(&mut enc).unwrap();
        let (mut bytes, _) = enc.finish().unwrap();
        let at = bytes.len() - 12;
        bytes[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        let mut dec = Decoder::new(&bytes);
        let err = AgentIndex::decode(&mut dec, Bm25Params::default(), &VectorIndexConfig::new(8))
            .err()
            .unwrap();
        assert!(err.0.contains("outside the file"), "{err}");
    }
}
