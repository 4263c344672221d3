//! The data model: one memory entry, the input that creates one, and the checks every input passes
//! before it touches a tier.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::index::vector::kernel::dot;

/// A stable identifier of an entry, unique within one store and kept when an entry moves from
/// short-term to long-term memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EntryId(pub u64);

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Who produced an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Assistant,
    System,
    Tool,
    Observation,
}

impl Role {
    /// All roles, in their storage order.
    pub const ALL: [Role; 5] = [
        Role::User,
        Role::Assistant,
        Role::System,
        Role::Tool,
        Role::Observation,
    ];

    /// The role's lowercase name, as stored and displayed.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::System => "system",
            Role::Tool => "tool",
            Role::Observation => "observation",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}"))
    }
}

/// The tier an entry lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// The recent window of a session, in RAM, with a time-to-live.
    ShortTerm,
    /// The durable store on disk.
    LongTerm,
}

/// One memory of one agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemoryEntry {
    pub id: EntryId,
    pub agent_id: Arc<str>,
    pub session_id: Arc<str>,
    pub role: Role,
    pub content: String,
    /// Unit-length embedding of the store's configured dimension, when one was given or computed.
    pub embedding: Option<Arc<[f32]>>,
    /// Explicit importance in [0, 1].
    pub importance: f32,
    pub created_at: Timestamp,
    pub last_accessed_at: Timestamp,
    pub access_count: u32,
    /// Free metadata; `Null` when none was given.
    pub metadata: serde_json::Value,
    pub tier: Tier,
}

/// What a caller hands in to create an entry. The store assigns id, timestamps and tier.
///
/// ```
/// use memory_core::{NewEntry, Role};
///
/// let entry = NewEntry::new("agent-1", "session-1", Role::User, "I moved to Lisbon in May")
///     .with_importance(0.8)
///     .with_metadata(serde_json::json!({"topic": "travel"}));
/// assert_eq!(entry.importance, 0.8);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct NewEntry {
    pub agent_id: Arc<str>,
    pub session_id: Arc<str>,
    pub role: Role,
    pub content: String,
    pub embedding: Option<Vec<f32>>,
    pub importance: f32,
    pub metadata: serde_json::Value,
}

/// Importance given to an entry created without an explicit one.
pub const DEFAULT_IMPORTANCE: f32 = 0.5;

/// Longest agent or session id accepted, in bytes.
pub const MAX_ID_BYTES: usize = 256;

impl NewEntry {
    /// An entry with default importance, no embedding and no metadata.
    pub fn new(
        agent_id: impl Into<Arc<str>>,
        session_id: impl Into<Arc<str>>,
        role: Role,
        content: impl Into<String>,
    ) -> Self {
        NewEntry {
            agent_id: agent_id.into(),
            session_id: session_id.into(),
            role,
            content: content.into(),
            embedding: None,
            importance: DEFAULT_IMPORTANCE,
            metadata: serde_json::Value::Null,
        }
    }

    /// Sets a precomputed embedding (normalized by the store).
    pub fn with_embedding(mut self, embedding: Vec<f32>) -> Self {
        self.embedding = Some(embedding);
        self
    }

    /// Sets the explicit importance, which must lie in [0, 1].
    pub fn with_importance(mut self, importance: f32) -> Self {
        self.importance = importance;
        self
    }

    /// Sets free metadata.
    pub fn with_metadata(mut self, metadata: serde_json::Value) -> Self {
        self.metadata = metadata;
        self
    }

    /// Checks every field against the store's limits. On success the embedding, if any, is
    /// normalized to unit length.
    pub fn validate(&mut self, dimension: usize, max_content_bytes: usize) -> Result<()> {
        validate_id("agent_id", &self.agent_id)?;
        validate_id("session_id", &self.session_id)?;
        if self.content.trim().is_empty() {
            return Err(Error::EmptyContent);
        }
        if self.content.len() > max_content_bytes {
            return Err(Error::ContentTooLarge {
                len: self.content.len(),
                limit: max_content_bytes,
            });
        }
        if !(0.0..=1.0).contains(&self.importance) {
            // NaN fails `contains` too, and lands here.
            return Err(Error::ImportanceOutOfRange(self.importance));
        }
        if let Some(v) = self.embedding.as_mut() {
            check_embedding(v, dimension)?;
            normalize(v)?;
        }
        Ok(())
    }
}

/// Rejects an empty or overlong agent or session id.
pub fn validate_id(field: &'static str, id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::EmptyId { field });
    }
    if id.len() > MAX_ID_BYTES {
        return Err(Error::IdTooLong {
            field,
            len: id.len(),
            limit: MAX_ID_BYTES,
        });
    }
    Ok(())
}

/// Rejects an embedding of the wrong dimension or with a non-finite value.
pub fn check_embedding(v: &[f32], dimension: usize) -> Result<()> {
    if v.len() != dimension {
        return Err(Error::DimensionMismatch {
            expected: dimension,
            actual: v.len(),
        });
    }
    // The sum of squares is finite whenever every value is (a vectorized pass, where a scan
    // for the first non-finite value is not); only when it is not is the vector searched.
    if !dot(v, v).is_finite() {
        if let Some((index, &value)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            return Err(Error::NonFiniteEmbedding { index, value });
        }
    }
    Ok(())
}

/// Scales `v` to unit length so that cosine similarity is a dot product.
pub fn normalize(v: &mut [f32]) -> Result<()> {
    let squares = dot(v, v);
    let norm = if squares.is_normal() {
        squares.sqrt()
    } else {
        // Squares that overflow or underflow f32 (values near its limits): measure in f64.
        v.iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            .sqrt() as f32
    };
    if norm == 0.0 || !norm.is_finite() {
        return Err(Error::ZeroEmbedding);
    }
    let inv = 1.0 / norm;
    v.iter_mut().for_each(|x| *x *= inv);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> NewEntry {
        NewEntry::new("a", "s", Role::User, "hello")
    }

    #[test]
    fn validation_rejects_each_bad_field_with_its_own_error() {
        let mut e = NewEntry::new("", "s", Role::User, "x");
        assert!(matches!(
            e.validate(3, 100),
            Err(Error::EmptyId { field: "agent_id" })
        ));
        let mut e = NewEntry::new("a", "", Role::User, "x");
        assert!(matches!(
            e.validate(3, 100),
            Err(Error::EmptyId {
                field: "session_id"
            })
        ));
        let mut e = NewEntry::new("a", "s", Role::User, "  \n");
        assert!(matches!(e.validate(3, 100), Err(Error::EmptyContent)));
        let mut e = NewEntry::new("a", "s", Role::User, "x".repeat(101));
        assert!(matches!(
            e.validate(3, 100),
            Err(Error::ContentTooLarge {
                len: 101,
                limit: 100
            })
        ));
        let mut e = entry().with_importance(1.5);
        assert!(matches!(
            e.validate(3, 100),
            Err(Error::ImportanceOutOfRange(_))
        ));
        let mut e = entry().with_importance(f32::NAN);
        assert!(matches!(
            e.validate(3, 100),
            Err(Error::ImportanceOutOfRange(_))
        ));
        let mut e = entry().with_embedding(vec![1.0, 2.0]);
        assert!(matches!(
            e.validate(3, 100),
            Err(Error::DimensionMismatch {
                expected: 3,
                actual: 2
            })
        ));
        let mut e = entry().with_embedding(vec![1.0, f32::NAN, 0.0]);
        assert!(matches!(
            e.validate(3, 100),
            Err(Error::NonFiniteEmbedding { index: 1, .. })
        ));
        let mut e = entry().with_embedding(vec![0.0; 3]);
        assert!(matches!(e.validate(3, 100), Err(Error::ZeroEmbedding)));
        let mut e = NewEntry::new("a".repeat(MAX_ID_BYTES + 1), "s", Role::User, "x");
        assert!(matches!(e.validate(3, 100), Err(Error::IdTooLong { .. })));
    }

    #[test]
    fn vectors_near_the_limits_of_f32_are_normalized_not_rejected() {
        let mut huge = vec![3.0e30f32, 4.0e30, 0.0];
        normalize(&mut huge).unwrap();
        assert!(
            (huge[0] - 0.6).abs() < 1e-6 && (huge[1] - 0.8).abs() < 1e-6,
            "{huge:?}"
        );
        let mut tiny = vec![3.0e-30f32, 4.0e-30, 0.0];
        normalize(&mut tiny).unwrap();
        assert!(
            (tiny[0] - 0.6).abs() < 1e-6 && (tiny[1] - 0.8).abs() < 1e-6,
            "{tiny:?}"
        );
        assert!(check_embedding(&[3.0e30, 4.0e30, 0.0], 3).is_ok());
        assert!(matches!(
            check_embedding(&[1.0, 2.0, f32::NEG_INFINITY], 3),
            Err(Error::NonFiniteEmbedding { index: 2, .. })
        ));
        assert!(matches!(
            normalize(&mut [0.0, -0.0, 0.0]),
            Err(Error::ZeroEmbedding)
        ));
    }

    #[test]
    fn validation_normalizes_the_embedding() {
        let mut e = entry().with_embedding(vec![3.0, 4.0, 0.0]);
        e.validate(3, 100).unwrap();
        assert_eq!(e.embedding.unwrap(), vec![0.6, 0.8, 0.0]);
    }

    #[test]
    fn roles_round_trip_through_their_names() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!("robot".parse::<Role>().is_err());
    }
}
