//! Training sets: many images of one actor from one request, each item generated on its own
//! (docs/design.md, "Training sets"). What a set request asks for, how its items get their
//! prompts and seeds; its id is in `set_id`, its progress in `set_progress`.

use sha2::{Digest, Sha256};

use super::actor::ActorId;
use super::prompts::PRESETS;
use super::request::{ImageRequest, MAX_SEED, RequestError};

/// A training set's id.
pub type SetId = super::ulid::Ulid;
pub use super::set_progress::{ItemState, SetCounts, SetStatus};

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
    /// The image's own caption (most useful with a custom prompt).
    pub caption: Option<String>,
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
                        caption: None,
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
                caption: ask.caption,
                requested_by: None,
            })
            .collect())
    }

    /// A digest of what was asked, for the idempotency record: a key reused with another
    /// request is refused.
    pub fn fingerprint(&self, actor_id: &ActorId) -> String {
        let items = match &self.items {
            SetItems::Listed(items) => items
                .iter()
                .map(|ask| match &ask.caption {
                    // Only when given: the fingerprints of sets without one stay as they were.
                    Some(caption) => format!(
                        "{:?}|{:?}|{:?}|{caption:?}",
                        ask.prompt_id, ask.prompt, ask.seed
                    ),
                    None => format!("{:?}|{:?}|{:?}", ask.prompt_id, ask.prompt, ask.seed),
                })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn set_id() -> SetId {
        SetId::new(1_764_633_600_000, 0x1234_5678_9abc_def0_1234)
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
                    caption: Some("[trigger] in the rain".to_owned()),
                    ..ItemAsk::default()
                };
                n
            ]),
        };
        let items = listed(2).item_requests(&set_id()).unwrap();
        assert_eq!(items[1].seed, Some(7));
        assert_eq!(items[1].caption.as_deref(), Some("[trigger] in the rain"));
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
}
