//! Training sets: many images of one actor from one request, each item generated on its own
//! (docs/design.md, "Training sets"). What a set request asks for, how its items get their
//! prompts and seeds, and how an item's state and a set's status are told.

use sha2::{Digest, Sha256};

use super::actor::ActorId;
use super::prompts::PRESETS;
use super::request::{ImageRequest, MAX_SEED, RequestError};

/// The most items one set may have.
pub const MAX_SET_ITEMS: usize = 100;

/// What a set request asks for, read from its body; [`SetRequest::item_requests`] checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetRequest {
    /// The actor's name; the profile's when absent (as for one image).
    pub actor_name: Option<String>,
    /// The base photo; the profile's when absent (as for one image).
    pub base_image_path: Option<String>,
    /// The items.
    pub items: SetItems,
}

/// A set's items: listed one by one, or a count cycling over presets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetItems {
    /// Each item as given.
    Listed(Vec<ItemAsk>),
    /// `count` items cycling over `prompt_ids` (all presets when empty).
    Count {
        /// How many images.
        count: u64,
        /// The presets to cycle over, in order.
        prompt_ids: Vec<String>,
    },
}

/// One item as the caller gave it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemAsk {
    /// A preset's id.
    pub prompt_id: Option<String>,
    /// A custom prompt, used when there is no `prompt_id`.
    pub prompt: Option<String>,
    /// A seed; derived from the set id and the position when absent.
    pub seed: Option<u64>,
}

impl SetRequest {
    /// The request of each item, in position order (from 1), every seed decided: checked for
    /// their number here, each one's fields by [`ImageRequest::check`] later.
    pub fn item_requests(&self, set_id: &SetId) -> Result<Vec<ImageRequest>, RequestError> {
        let asks: Vec<ItemAsk> = match &self.items {
            SetItems::Listed(items) => items.clone(),
            SetItems::Count { count, prompt_ids } => {
                let count = usize::try_from(*count).unwrap_or(usize::MAX);
                if count == 0 || count > MAX_SET_ITEMS {
                    return Err(too_many_or_none());
                }
                let ids: Vec<String> = if prompt_ids.is_empty() {
                    PRESETS.iter().map(|preset| preset.id.to_owned()).collect()
                } else {
                    prompt_ids.clone()
                };
                (0..count)
                    .map(|i| ItemAsk {
                        prompt_id: Some(ids[i % ids.len()].clone()),
                        prompt: None,
                        seed: None,
                    })
                    .collect()
            }
        };
        if asks.is_empty() || asks.len() > MAX_SET_ITEMS {
            return Err(too_many_or_none());
        }
        Ok(asks
            .into_iter()
            .zip(1..)
            .map(|(ask, position)| ImageRequest {
                actor_name: self.actor_name.clone(),
                base_image_path: self.base_image_path.clone(),
                prompt_id: ask.prompt_id,
                prompt: ask.prompt,
                seed: Some(ask.seed.unwrap_or_else(|| derived_seed(set_id, position))),
            })
            .collect())
    }

    /// A digest of what was asked, for the idempotency record: a key reused with another
    /// request is refused.
    pub fn fingerprint(&self, actor_id: &ActorId) -> String {
        let items = match &self.items {
            SetItems::Listed(items) => items
                .iter()
                .map(|ask| format!("{:?}|{:?}|{:?}", ask.prompt_id, ask.prompt, ask.seed))
                .collect::<Vec<_>>()
                .join("\n"),
            SetItems::Count { count, prompt_ids } => format!("count {count} {prompt_ids:?}"),
        };
        let canonical = format!(
            "set\n{actor_id}\n{:?}\n{:?}\n{items}",
            self.actor_name, self.base_image_path
        );
        hex(&Sha256::digest(canonical.as_bytes()))
    }
}

fn too_many_or_none() -> RequestError {
    RequestError::Malformed(format!("a training set has 1 to {MAX_SET_ITEMS} items"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The seed of the item at `position` when the caller gave none: the same for the same set
/// and position, so a set is reproducible from its id.
pub fn derived_seed(set_id: &SetId, position: u32) -> u64 {
    let digest = Sha256::digest(format!("{set_id}#{position}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) % (MAX_SEED + 1)
}

/// A training set's id: a ULID, so ids sort by creation time (an actor's sets list newest
/// first by key) and need no coordination to be unique.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SetId(String);

/// Crockford's base 32, the ULID alphabet.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

impl SetId {
    /// The ULID of `epoch_ms` (its first 48 bits) and 80 bits of `random`.
    pub fn new(epoch_ms: u64, random: u128) -> Self {
        let value =
            (u128::from(epoch_ms & 0xFFFF_FFFF_FFFF) << 80) | (random & ((1u128 << 80) - 1));
        let text = (0..26)
            .rev()
            .map(|i| char::from(CROCKFORD[((value >> (i * 5)) & 31) as usize]))
            .collect();
        Self(text)
    }

    /// Reads an id from a path: 26 Crockford characters (upper case), the first at most `7`.
    pub fn parse(value: &str) -> Option<Self> {
        let valid = value.len() == 26
            && value.bytes().all(|b| CROCKFORD.contains(&b))
            && value.as_bytes()[0] <= b'7';
        valid.then(|| Self(value.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SetId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How far an item got. `Creating` is claimed (a create may be on its way), `Uncertain` a
/// create whose answer was lost: never created again automatically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemState {
    /// Waiting for a worker.
    Queued,
    /// A worker claimed it and is creating its prediction.
    Creating,
    /// Its prediction runs.
    Predicting,
    /// Its prediction succeeded; its image is being stored.
    Storing,
    /// Its image is stored and listed.
    Stored,
    /// It ended without an image.
    Failed,
    /// Its set was canceled before it finished.
    Canceled,
    /// Its create may have started a prediction nobody knows the id of.
    Uncertain,
}

impl ItemState {
    /// Every state, in the order of [`SetCounts`].
    pub const ALL: [Self; 8] = [
        Self::Queued,
        Self::Creating,
        Self::Predicting,
        Self::Storing,
        Self::Stored,
        Self::Failed,
        Self::Canceled,
        Self::Uncertain,
    ];

    /// The state's name, as stored and answered.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Creating => "creating",
            Self::Predicting => "predicting",
            Self::Storing => "storing",
            Self::Stored => "stored",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
            Self::Uncertain => "uncertain",
        }
    }

    /// The state of a stored name.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == value)
    }

    /// Whether nothing more happens to the item by itself (an operator or a retry may still
    /// move a failed or uncertain one).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Stored | Self::Failed | Self::Canceled | Self::Uncertain
        )
    }

    fn slot(self) -> usize {
        Self::ALL.iter().position(|s| *s == self).unwrap_or(0)
    }
}

/// How many of a set's items are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetCounts([u64; 8]);

impl SetCounts {
    /// The counts of a new set: everything queued.
    pub fn all_queued(total: u64) -> Self {
        let mut counts = Self::default();
        counts.0[ItemState::Queued.slot()] = total;
        counts
    }

    /// How many items are in `state`.
    pub fn of(&self, state: ItemState) -> u64 {
        self.0[state.slot()]
    }

    /// Sets how many items are in `state`.
    pub fn set(&mut self, state: ItemState, count: u64) {
        self.0[state.slot()] = count;
    }

    /// All the items.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

/// A set's status, from its items' counts and whether it was canceled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetStatus {
    /// No item started yet.
    Queued,
    /// Some item is on its way.
    Running,
    /// Every item is final and at least one is stored.
    Done,
    /// Every item is final and none is stored.
    Failed,
    /// An artist canceled it before it finished: what had not started never will.
    Canceled,
}

impl SetStatus {
    /// The status of a set with these counts.
    pub fn of(counts: &SetCounts, canceled: bool) -> Self {
        let unfinished = ItemState::ALL
            .into_iter()
            .filter(|state| !state.is_final())
            .map(|state| counts.of(state))
            .sum::<u64>();
        // A set canceled after it finished keeps its outcome: the cancel stopped nothing.
        if canceled && (unfinished > 0 || counts.of(ItemState::Canceled) > 0) {
            return Self::Canceled;
        }
        if unfinished == 0 {
            return if counts.of(ItemState::Stored) == 0 {
                Self::Failed
            } else {
                Self::Done
            };
        }
        if counts.of(ItemState::Queued) == counts.total() {
            Self::Queued
        } else {
            Self::Running
        }
    }

    /// The status's name, as answered.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_id() -> SetId {
        SetId::new(1_764_633_600_000, 0x1234_5678_9abc_def0_1234)
    }

    #[test]
    fn an_id_is_a_ulid_that_sorts_by_time_and_parses_back() {
        let id = set_id();
        assert_eq!(id.as_str().len(), 26);
        assert_eq!(SetId::parse(id.as_str()), Some(id.clone()));
        let later = SetId::new(1_764_633_600_001, 0);
        assert!(later > id, "{later} after {id}");
        assert_eq!(SetId::new(0, 0).as_str(), "00000000000000000000000000");
        for bad in [
            "",
            "01ARZ3NDEKTSV4RRFFQ69G5FA",
            "01arz3ndektsv4rrffq69g5fav",
            "81ARZ3NDEKTSV4RRFFQ69G5FAV",
            "01ARZ3NDEKTSV4RRFFQ69G5FAU",
        ] {
            assert_eq!(SetId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_count_cycles_over_the_presets_with_seeds_from_the_set_id() {
        let request = SetRequest {
            actor_name: None,
            base_image_path: None,
            items: SetItems::Count {
                count: 10,
                prompt_ids: vec![],
            },
        };
        let items = request.item_requests(&set_id()).unwrap();
        assert_eq!(items.len(), 10);
        let ids: Vec<_> = items.iter().map(|i| i.prompt_id.clone().unwrap()).collect();
        assert_eq!(ids[0], PRESETS[0].id);
        assert_eq!(ids[8], PRESETS[0].id);
        assert_eq!(ids[9], PRESETS[1].id);
        let seeds: std::collections::HashSet<_> = items.iter().map(|i| i.seed.unwrap()).collect();
        assert_eq!(seeds.len(), 10, "distinct seeds");
        assert!(seeds.iter().all(|seed| *seed <= MAX_SEED));
        assert_eq!(
            items,
            request.item_requests(&set_id()).unwrap(),
            "reproducible"
        );
        let other = SetId::new(1_764_633_600_000, 1);
        assert_ne!(
            items[0].seed,
            request.item_requests(&other).unwrap()[0].seed
        );
    }

    #[test]
    fn a_listed_item_keeps_its_seed_and_sizes_are_bounded() {
        let listed = |n| SetRequest {
            actor_name: Some("a1".to_owned()),
            base_image_path: None,
            items: SetItems::Listed(vec![
                ItemAsk {
                    prompt: Some("in the rain".to_owned()),
                    seed: Some(7),
                    ..ItemAsk::default()
                };
                n
            ]),
        };
        let items = listed(2).item_requests(&set_id()).unwrap();
        assert_eq!(items[1].seed, Some(7));
        assert_eq!(items[1].actor_name.as_deref(), Some("a1"));
        assert!(listed(0).item_requests(&set_id()).is_err());
        assert!(listed(101).item_requests(&set_id()).is_err());
        assert_eq!(listed(100).item_requests(&set_id()).unwrap().len(), 100);
        let count = |count| SetRequest {
            items: SetItems::Count {
                count,
                prompt_ids: vec!["bw_charcoal".to_owned()],
            },
            ..listed(1)
        };
        assert!(count(0).item_requests(&set_id()).is_err());
        assert!(count(101).item_requests(&set_id()).is_err());
        assert_ne!(
            listed(1).fingerprint(&ActorId::parse("a1").unwrap()),
            count(1).fingerprint(&ActorId::parse("a1").unwrap())
        );
    }

    #[test]
    fn a_set_is_done_when_every_item_is_final_and_failed_only_when_none_stored() {
        let mut counts = SetCounts::all_queued(3);
        assert_eq!(SetStatus::of(&counts, false), SetStatus::Queued);
        counts.set(ItemState::Queued, 2);
        counts.set(ItemState::Predicting, 1);
        assert_eq!(SetStatus::of(&counts, false), SetStatus::Running);
        counts.set(ItemState::Queued, 0);
        counts.set(ItemState::Predicting, 0);
        counts.set(ItemState::Failed, 3);
        assert_eq!(SetStatus::of(&counts, false), SetStatus::Failed);
        counts.set(ItemState::Failed, 2);
        counts.set(ItemState::Stored, 1);
        assert_eq!(SetStatus::of(&counts, false), SetStatus::Done);
        assert_eq!(
            SetStatus::of(&counts, true),
            SetStatus::Done,
            "canceled once done"
        );
        counts.set(ItemState::Failed, 1);
        counts.set(ItemState::Canceled, 1);
        assert_eq!(SetStatus::of(&counts, true), SetStatus::Canceled);
        counts.set(ItemState::Canceled, 0);
        counts.set(ItemState::Predicting, 1);
        assert_eq!(
            SetStatus::of(&counts, true),
            SetStatus::Canceled,
            "canceled while running"
        );
        assert_eq!(counts.total(), 3);
        for state in ItemState::ALL {
            assert_eq!(ItemState::parse(state.as_str()), Some(state));
        }
    }
}
