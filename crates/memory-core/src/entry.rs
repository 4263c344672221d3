//! The data model: one memory entry, the input that creates one, and the checks every input passes
//! before it touches a tier.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

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
    /// Importance in [0, 1]: the caller's, or estimated from the content
    /// ([`ImportanceScorer::estimate`](crate::ImportanceScorer::estimate)). Long-term entries
    /// always have one; a short-term entry whose caller gave none has `None` until consolidation
    /// estimates it (which keeps appends cheap). See [`MemoryEntry::importance`].
    pub importance: Option<f32>,
    pub created_at: Timestamp,
    pub last_accessed_at: Timestamp,
    pub access_count: u32,
    /// Free metadata; `Null` when none was given.
    pub metadata: serde_json::Value,
    pub tier: Tier,
}

impl MemoryEntry {
    /// The entry's importance: the one it carries, else (also when the one it carries is NaN
    /// or infinite, which only an entry built by hand can) the estimate from its content.
    pub fn importance(&self) -> f32 {
        self.importance
            .filter(|i| i.is_finite())
            .unwrap_or_else(|| crate::information::importance_estimate(&self.content))
    }
}

/// What a caller hands in to create an entry. The store assigns the id and the tier, and the
/// times unless the entry brings its own ([`with_created_at`](NewEntry::with_created_at), for
/// imported history).
///
/// ```
/// use memory_core::{NewEntry, Role, Timestamp};
///
/// let entry = NewEntry::new("agent-1", "session-1", Role::User, "I moved to Lisbon in May")
///     .with_importance(0.8)
///     .with_created_at(Timestamp(1_683_504_000_000_000))
///     .with_metadata(serde_json::json!({"topic": "travel"}));
/// assert_eq!(entry.importance, Some(0.8));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct NewEntry {
    pub agent_id: Arc<str>,
    pub session_id: Arc<str>,
    pub role: Role,
    pub content: String,
    pub embedding: Option<Vec<f32>>,
    /// Explicit importance in [0, 1]; without one the store estimates it from the content (see
    /// [`ImportanceScorer::estimate`](crate::ImportanceScorer::estimate)).
    pub importance: Option<f32>,
    /// When the entry was said or written; `None` is now (the store's clock). At most
    /// [`MAX_CLOCK_SKEW`] after the store's clock at the write.
    pub created_at: Option<Timestamp>,
    pub metadata: serde_json::Value,
}

/// Longest agent or session id accepted, in bytes.
pub const MAX_ID_BYTES: usize = 256;

/// How far after the store's clock an entry's own `created_at` may lie: the clocks of the
/// machines that record history disagree (by seconds, or by hours when a time zone is applied
/// twice), and a day covers that. A later one is refused with `Error::CreatedAtInFuture`: its
/// recency would stay 1 until the clock caught up, ranking it above everything else for as long.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(24 * 3600);

impl NewEntry {
    /// An entry created now, with its importance estimated from its content, no embedding and
    /// no metadata.
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
            importance: None,
            created_at: None,
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
        self.importance = Some(importance);
        self
    }

    /// Sets when the entry was created (for history imported with its own times). Its recency
    /// counts from then; time-to-live of short-term windows still counts from the append. Any
    /// past time is accepted; a time more than [`MAX_CLOCK_SKEW`] (one day) after the store's
    /// clock is refused at the write (`append`, `insert`, `insert_batch`, which then writes
    /// none of its entries) with `Error::CreatedAtInFuture`.
    pub fn with_created_at(mut self, at: Timestamp) -> Self {
        self.created_at = Some(at);
        self
    }

    /// Sets free metadata.
    pub fn with_metadata(mut self, metadata: serde_json::Value) -> Self {
        self.metadata = metadata;
        self
    }

    /// Refuses a `created_at` more than [`MAX_CLOCK_SKEW`] after `now`, the store's clock.
    pub(crate) fn check_created_at(&self, now: Timestamp) -> Result<()> {
        match self.created_at {
            Some(created_at) if created_at > now.plus(MAX_CLOCK_SKEW) => {
                Err(Error::CreatedAtInFuture { created_at, now })
            }
            _ => Ok(()),
        }
    }

    /// Checks every field against the store's limits. On success it gives the factor that
    /// scales the embedding, if any, to unit length when it is stored ([`unit_embedding`]): the
    /// scaling rides along with the copy the stored entry needs anyway, instead of a pass of
    /// its own (1 when there is nothing left to scale).
    pub(crate) fn validate(&mut self, limits: &EntryLimits) -> Result<f32> {
        validate_id("agent_id", &self.agent_id)?;
        validate_id("session_id", &self.session_id)?;
        if self.content.trim().is_empty() {
            return Err(Error::EmptyContent);
        }
        if self.content.len() > limits.max_content_bytes {
            return Err(Error::ContentTooLarge {
                len: self.content.len(),
                limit: limits.max_content_bytes,
            });
        }
        if let Some(importance) = self.importance {
            if !(0.0..=1.0).contains(&importance) {
                // NaN fails `contains` too, and lands here.
                return Err(Error::ImportanceOutOfRange(importance));
            }
        }
        if let Err(e) = check_metadata(&self.metadata, limits) {
            // A value nested deeper than the stack would overflow it when dropped: take it apart
            // here, iteratively, rather than hand it back to be dropped by the caller.
            if matches!(e, Error::MetadataTooDeep { .. }) {
                dismantle(std::mem::take(&mut self.metadata));
            }
            return Err(e);
        }
        match self.embedding.as_mut() {
            Some(v) => {
                let squares = checked_squares(v, limits.dimension)?;
                unit_scale(v, squares)
            }
            None => Ok(1.0),
        }
    }
}

/// The limits a new entry is checked against (from [`MemoryConfig`](crate::MemoryConfig)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EntryLimits {
    pub dimension: usize,
    pub max_content_bytes: usize,
    pub max_metadata_bytes: usize,
    pub max_metadata_depth: usize,
}

/// Rejects metadata nested deeper than the limit or longer than the limit as JSON text. Depth is
/// measured without recursion (a value built in code can be nested deeper than any stack), and
/// before the size, whose measurement serializes recursively.
pub(crate) fn check_metadata(metadata: &serde_json::Value, limits: &EntryLimits) -> Result<()> {
    let depth = json_depth(metadata, limits.max_metadata_depth);
    if depth > limits.max_metadata_depth {
        return Err(Error::MetadataTooDeep {
            limit: limits.max_metadata_depth,
        });
    }
    if metadata.is_null() {
        return Ok(());
    }
    let mut counter = ByteCounter {
        len: 0,
        limit: limits.max_metadata_bytes,
    };
    // The writer stops the serialization once past the limit.
    if serde_json::to_writer(&mut counter, metadata).is_err() || counter.len > counter.limit {
        return Err(Error::MetadataTooLarge {
            len: counter.len,
            limit: limits.max_metadata_bytes,
        });
    }
    Ok(())
}

/// Nesting depth of `v` (a scalar is 0, `[1]` is 1), counted up to `cap + 1` at most.
pub(crate) fn json_depth(v: &serde_json::Value, cap: usize) -> usize {
    use serde_json::Value;
    let mut deepest = 0;
    let mut stack: Vec<(&Value, usize)> = vec![(v, 0)];
    while let Some((v, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        if deepest > cap {
            break;
        }
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|x| (x, depth + 1))),
            Value::Object(fields) => stack.extend(fields.values().map(|x| (x, depth + 1))),
            _ => {}
        }
    }
    deepest
}

/// Drops a JSON value of any depth without recursion.
pub(crate) fn dismantle(v: serde_json::Value) {
    use serde_json::Value;
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Object(fields) => stack.extend(fields.into_iter().map(|(_, x)| x)),
            _ => {}
        }
    }
}

/// Counts bytes written, failing once past `limit`.
struct ByteCounter {
    len: usize,
    limit: usize,
}

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.len += buf.len();
        if self.len > self.limit {
            return Err(std::io::Error::other("metadata over the size limit"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
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
    checked_squares(v, dimension).map(|_| ())
}

/// [`check_embedding`], giving the vector's sum of squares (finite) for [`unit_scale`].
fn checked_squares(v: &[f32], dimension: usize) -> Result<f32> {
    if v.len() != dimension {
        return Err(Error::DimensionMismatch {
            expected: dimension,
            actual: v.len(),
        });
    }
    // The sum of squares is finite whenever every value is (a vectorized pass, where a scan
    // for the first non-finite value is not); only when it is not is the vector searched.
    let squares = dot(v, v);
    if !squares.is_finite() {
        if let Some((index, &value)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            return Err(Error::NonFiniteEmbedding { index, value });
        }
    }
    Ok(squares)
}

/// Scales `v` to unit length so that cosine similarity is a dot product, and checks the result:
/// on success every value is finite and the squared norm is within 1e-3 of 1, so that the vector
/// can always be indexed and compared.
///
/// Any finite vector with a non-zero value normalizes, from subnormal to near-`f32::MAX`
/// magnitudes: when the sum of squares leaves f32's normal range, norm and scale are computed in
/// f64 (where the squares of all f32 values are normal), never as an f32 reciprocal of a
/// subnormal norm, which is infinite.
pub fn normalize(v: &mut [f32]) -> Result<()> {
    let scale = unit_scale(v, dot(v, v))?;
    if scale != 1.0 {
        v.iter_mut().for_each(|x| *x *= scale);
    }
    Ok(())
}

/// Longest vector whose f32 normalization needs no second look (see [`unit_scale`]).
const UNCHECKED_MAX_LEN: usize = 4096;

/// The factor that scales `v` to unit length, given `squares`, its sum of squares as [`dot`]
/// computes it; 1 when `v` has been normalized in place instead.
///
/// When that sum is a normal f32, `1 / sqrt(squares)` is finite and every scaled value is at
/// most 1 in magnitude. The squared norm of the result is then 1 within the rounding of the
/// sums, at most about `len * 2^-24` whatever their order (2.4e-4 at 4,096 values), so up to
/// [`UNCHECKED_MAX_LEN`] values the factor is given unchecked, for the caller to apply where it
/// copies the vector anyway ([`unit_embedding`]). Longer vectors, and sums outside f32's normal
/// range (done in f64), are scaled here and checked.
fn unit_scale(v: &mut [f32], squares: f32) -> Result<f32> {
    if squares.is_normal() {
        let inv = 1.0 / squares.sqrt();
        if v.len() <= UNCHECKED_MAX_LEN {
            return Ok(inv);
        }
        v.iter_mut().for_each(|x| *x *= inv);
    } else {
        let norm = v
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            .sqrt();
        if norm == 0.0 || !norm.is_finite() {
            return Err(Error::ZeroEmbedding);
        }
        let inv = 1.0 / norm;
        v.iter_mut().for_each(|x| *x = (f64::from(*x) * inv) as f32);
    }
    let unit = dot(v, v);
    if !((1.0 - UNIT_TOLERANCE)..=(1.0 + UNIT_TOLERANCE)).contains(&unit) {
        return Err(Error::EmbeddingNotNormalizable { squared_norm: unit });
    }
    Ok(1.0)
}

/// A checked embedding as a stored entry holds it: scaled by the factor
/// [`NewEntry::validate`] gave, in the one pass that copies it.
pub(crate) fn unit_embedding(v: Vec<f32>, scale: f32) -> Arc<[f32]> {
    if scale == 1.0 {
        Arc::from(v)
    } else {
        v.iter().map(|x| x * scale).collect()
    }
}

/// How far from 1 the squared norm of a normalized vector may be.
const UNIT_TOLERANCE: f32 = 1e-3;

/// A long-term entry of agent `a`, session `s`, for the crate's unit tests.
#[cfg(test)]
impl MemoryEntry {
    pub(crate) fn for_test(id: u64, content: &str, embedding: Option<Vec<f32>>) -> MemoryEntry {
        MemoryEntry {
            id: EntryId(id),
            agent_id: "a".into(),
            session_id: "s".into(),
            role: Role::User,
            content: content.into(),
            embedding: embedding.map(std::sync::Arc::from),
            importance: Some(0.5),
            created_at: crate::clock::Timestamp(1),
            last_accessed_at: crate::clock::Timestamp(1),
            access_count: 0,
            metadata: serde_json::Value::Null,
            tier: Tier::LongTerm,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> EntryLimits {
        EntryLimits {
            dimension: 3,
            max_content_bytes: 100,
            max_metadata_bytes: 64,
            max_metadata_depth: 4,
        }
    }

    #[test]
    fn metadata_over_the_depth_or_size_limit_is_rejected_even_when_nested_beyond_any_stack() {
        let nest = |depth: usize| {
            let mut v = serde_json::json!(1);
            for _ in 0..depth {
                v = serde_json::Value::Array(vec![v]);
            }
            v
        };
        let mut ok = entry().with_metadata(nest(4));
        ok.validate(&limits()).unwrap();
        let mut deep = entry().with_metadata(nest(5));
        assert!(matches!(
            deep.validate(&limits()),
            Err(Error::MetadataTooDeep { limit: 4 })
        ));
        // Far deeper than serde_json (128) or the stack would allow: rejected, and taken apart
        // by `validate` so that dropping the entry afterwards does not overflow the stack.
        let mut abyss = entry().with_metadata(nest(1_000_000));
        assert!(matches!(
            abyss.validate(&limits()),
            Err(Error::MetadataTooDeep { .. })
        ));
        drop(abyss);
        let mut big = entry().with_metadata(serde_json::json!({ "k": "x".repeat(100) }));
        assert!(matches!(
            big.validate(&limits()),
            Err(Error::MetadataTooLarge { limit: 64, .. })
        ));
    }

    fn entry() -> NewEntry {
        NewEntry::new("a", "s", Role::User, "hello")
    }

    #[test]
    fn validation_rejects_each_bad_field_with_its_own_error() {
        let mut e = NewEntry::new("", "s", Role::User, "x");
        assert!(matches!(
            e.validate(&limits()),
            Err(Error::EmptyId { field: "agent_id" })
        ));
        let mut e = NewEntry::new("a", "", Role::User, "x");
        assert!(matches!(
            e.validate(&limits()),
            Err(Error::EmptyId {
                field: "session_id"
            })
        ));
        let mut e = NewEntry::new("a", "s", Role::User, "  \n");
        assert!(matches!(e.validate(&limits()), Err(Error::EmptyContent)));
        let mut e = NewEntry::new("a", "s", Role::User, "x".repeat(101));
        assert!(matches!(
            e.validate(&limits()),
            Err(Error::ContentTooLarge {
                len: 101,
                limit: 100
            })
        ));
        let mut e = entry().with_importance(1.5);
        assert!(matches!(
            e.validate(&limits()),
            Err(Error::ImportanceOutOfRange(_))
        ));
        let mut e = entry().with_importance(f32::NAN);
        assert!(matches!(
            e.validate(&limits()),
            Err(Error::ImportanceOutOfRange(_))
        ));
        let mut e = entry().with_embedding(vec![1.0, 2.0]);
        assert!(matches!(
            e.validate(&limits()),
            Err(Error::DimensionMismatch {
                expected: 3,
                actual: 2
            })
        ));
        let mut e = entry().with_embedding(vec![1.0, f32::NAN, 0.0]);
        assert!(matches!(
            e.validate(&limits()),
            Err(Error::NonFiniteEmbedding { index: 1, .. })
        ));
        let mut e = entry().with_embedding(vec![0.0; 3]);
        assert!(matches!(e.validate(&limits()), Err(Error::ZeroEmbedding)));
        let mut e = NewEntry::new("a".repeat(MAX_ID_BYTES + 1), "s", Role::User, "x");
        assert!(matches!(
            e.validate(&limits()),
            Err(Error::IdTooLong { .. })
        ));
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
    fn subnormal_and_mixed_magnitude_vectors_normalize_to_unit_length() {
        let cases: [&[f32]; 5] = [
            &[1e-45, 0.0, 0.0],
            &[f32::MIN_POSITIVE / 4.0, -f32::MIN_POSITIVE / 8.0, 0.0],
            &[f32::MAX, f32::MAX, -f32::MAX],
            &[1e-45, 1e-30, 3.0e38],
            &[-1e-40; 3],
        ];
        for case in cases {
            let mut v = case.to_vec();
            normalize(&mut v).unwrap_or_else(|e| panic!("{case:?}: {e}"));
            assert!(v.iter().all(|x| x.is_finite()), "{case:?} -> {v:?}");
            let norm: f32 = v.iter().map(|x| x * x).sum();
            assert!((norm - 1.0).abs() < 1e-5, "{case:?} -> {v:?}");
        }
    }

    #[test]
    fn validation_normalizes_the_embedding() {
        let mut e = entry().with_embedding(vec![3.0, 4.0, 0.0]);
        let scale = e.validate(&limits()).unwrap();
        assert_eq!(
            &*unit_embedding(e.embedding.unwrap(), scale),
            &[0.6, 0.8, 0.0]
        );
        // Out of f32's normal range the vector is normalized in place, and the factor is 1.
        let mut e = entry().with_embedding(vec![3.0e-30, 4.0e-30, 0.0]);
        assert_eq!(e.validate(&limits()).unwrap(), 1.0);
        let v = unit_embedding(e.embedding.unwrap(), 1.0);
        assert!(
            (v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6,
            "{v:?}"
        );
    }

    #[test]
    fn roles_round_trip_through_their_names() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!("robot".parse::<Role>().is_err());
    }
}
