//! One agent's indexes in a snapshot file: the keyword index with the filter attributes, then
//! the vector index with its staging buffer.
//!
//! The two halves are captured one after the other, each under its own read locks (text, then
//! vectors with staging), so writes wait for one half at a time. An entry written or removed
//! between the two captures can be caught half indexed; the snapshot's stamp is taken before
//! the capture begins, so every such entry is changed after the stamp, and the loader brings it
//! in line with the database ([`AgentIndex::holds_whole`], [`AgentIndex::remove_everywhere`]).

use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use parking_lot::RwLock;
use rustc_hash::FxHashMap;

use super::{AgentIndex, DocInfo, TextIndex};
use crate::clock::Timestamp;
use crate::entry::EntryId;
use crate::index::codec::{ensure, role_code, role_from_code, Decoded, Decoder, Encoder};
use crate::index::keyword::{Bm25Params, KeywordIndex};
use crate::index::vector::{VectorIndex, VectorIndexConfig, VectorStaging};

impl AgentIndex {
    /// Writes this agent's indexes (see the module doc for what the locks guarantee).
    pub(crate) fn encode<W: Write>(&self, enc: &mut Encoder<W>) -> std::io::Result<()> {
        {
            let text = self.text.read();
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
        let vectors = self.vectors.read();
        // Cloned at once (it is short), so that writes wait only for that copy; the vector
        // index stays read-locked, which keeps the linker from moving staged vectors in
        // until both are written.
        let staging = self.staging.read().clone();
        vectors.encode(enc)?;
        staging.encode(enc)
    }

    pub(crate) fn decode(
        dec: &mut Decoder<'_>,
        bm25: Bm25Params,
        config: &VectorIndexConfig,
    ) -> Decoded<AgentIndex> {
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
        let mut doc_map = FxHashMap::default();
        doc_map.reserve(docs.len());
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
            ensure(doc_map.insert(id, info).is_none(), || {
                format!("entry {} has two sets of attributes", id.0)
            })?;
        }
        ensure(
            doc_map.len() == keyword.len() && doc_map.keys().all(|id| keyword.contains(*id)),
            || "the keyword index and the attributes hold different entries".into(),
        )?;
        let vectors = VectorIndex::decode(dec, *config)?;
        let staging = VectorStaging::decode(dec, config)?;
        Ok(AgentIndex {
            text: RwLock::new(TextIndex {
                keyword,
                docs: doc_map,
                sessions,
                session_index,
            }),
            vectors: RwLock::new(vectors),
            staging: RwLock::new(staging),
            link_queued: AtomicBool::new(false),
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
