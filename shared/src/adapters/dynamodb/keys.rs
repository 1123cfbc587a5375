//! The DynamoDB key schema: every item's partition and sort key, in one place
//! (docs/data-model.md). One table holds them all; the prefixes keep their kinds apart.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::domain::actor::ActorId;
use crate::domain::export::ExportId;
use crate::domain::training::TrainingId;
use crate::domain::training_set::SetId;

/// Prefixes of the items of the capabilities that track paid work: a prediction's record, a
/// training set and its items, an export, a training. No other item may start with one.
pub const RESERVED_PREFIXES: [&str; 5] = ["PREDICTION#", "SET#", "ITEM#", "EXPORT#", "TRAINING#"];

/// The sparse index of open records (`open_kind` as its partition key, `held_until` in epoch
/// milliseconds as its sort key): an item is in it only while it has `open_kind`, so the
/// reconciler queries what is open and due, and a closed record leaves the index by losing
/// the attribute. Later kinds (a set's item, a training) share it under their own kind.
pub const OPEN_RECORDS_INDEX: &str = "open_records";
/// The index's partition key attribute.
pub const OPEN_KIND: &str = "open_kind";
/// The index's sort key attribute: until when a record is held (epoch milliseconds).
pub const HELD_UNTIL: &str = "held_until";
/// The `open_kind` of an open prediction record.
pub const OPEN_PREDICTION: &str = "PREDICTION";
/// The `open_kind` of an unfinished training-set item.
pub const OPEN_ITEM: &str = "ITEM";
/// The `open_kind` of a training that has not ended.
pub const OPEN_TRAINING: &str = "TRAINING";

/// An item's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemKey {
    /// The partition key, `pk`.
    pub pk: String,
    /// The sort key, `sk`.
    pub sk: String,
}

impl ItemKey {
    fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }

    /// The key as the SDK takes it.
    pub fn attributes(&self) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S(self.pk.clone())),
            ("sk".to_owned(), AttributeValue::S(self.sk.clone())),
        ])
    }
}

/// An actor's profile, written by the operators: `ACTOR#{actorId}` / `PROFILE`.
pub fn actor_profile(actor_id: &ActorId) -> ItemKey {
    ItemKey::new(format!("ACTOR#{actor_id}"), "PROFILE")
}

/// An actor's image counter: `IMAGES#{actor_name}` / `COUNTER`.
pub fn image_counter(actor_name: &str) -> ItemKey {
    ItemKey::new(format!("IMAGES#{actor_name}"), "COUNTER")
}

/// An idempotency key's record (the key already scoped to its caller):
/// `IDEMPOTENCY#{key}` / `RECORD`.
pub fn idempotency_record(scoped_key: &str) -> ItemKey {
    ItemKey::new(format!("IDEMPOTENCY#{scoped_key}"), "RECORD")
}

/// A paid prediction's record: `PREDICTION#{prediction_id}` / `RECORD`.
pub fn prediction_record(prediction_id: &str) -> ItemKey {
    ItemKey::new(format!("PREDICTION#{prediction_id}"), "RECORD")
}

/// The operators' kill switch: `CONTROL` / `KILL_SWITCH`.
pub fn kill_switch() -> ItemKey {
    ItemKey::new("CONTROL", "KILL_SWITCH")
}

/// A day's budget counter for the whole service: `BUDGET#{day}` / `SERVICE`.
pub fn service_budget(day: &str) -> ItemKey {
    ItemKey::new(format!("BUDGET#{day}"), "SERVICE")
}

/// A day's budget counter for one actor (by name, the folder it writes):
/// `BUDGET#{day}` / `ACTOR#{actor_name}`.
pub fn actor_budget(day: &str, actor_name: &str) -> ItemKey {
    ItemKey::new(format!("BUDGET#{day}"), format!("ACTOR#{actor_name}"))
}

/// A training set: `SET#{set_id}` / `SET`.
pub fn training_set(set_id: &SetId) -> ItemKey {
    ItemKey::new(format!("SET#{set_id}"), "SET")
}

/// An item of a training set, beside its set: `SET#{set_id}` / `ITEM#{position:03}`.
pub fn set_item(set_id: &SetId, position: u32) -> ItemKey {
    ItemKey::new(format!("SET#{set_id}"), format!("ITEM#{position:03}"))
}

/// The partition of an actor's listing of sets: `SETS#{actor_id}`.
pub fn actor_sets(actor_id: &ActorId) -> String {
    format!("SETS#{actor_id}")
}

/// A set's entry in its actor's listing: `SETS#{actor_id}` / `{set_id}`.
pub fn actor_set(actor_id: &ActorId, set_id: &SetId) -> ItemKey {
    ItemKey::new(actor_sets(actor_id), set_id.as_str())
}

/// An export: `EXPORT#{export_id}` / `EXPORT`.
pub fn export(export_id: &ExportId) -> ItemKey {
    ItemKey::new(format!("EXPORT#{export_id}"), "EXPORT")
}

/// A training: `TRAINING#{training_id}` / `TRAINING`.
pub fn training(training_id: &TrainingId) -> ItemKey {
    ItemKey::new(format!("TRAINING#{training_id}"), "TRAINING")
}

/// The pointer from Replicate's id of a training to ours:
/// `TRAINING#REPLICATE#{replicate_id}` / `POINTER`.
pub fn training_by_replicate_id(replicate_id: &str) -> ItemKey {
    ItemKey::new(format!("TRAINING#REPLICATE#{replicate_id}"), "POINTER")
}

/// An actor's training lock (one training at a time): `ACTOR#{actorId}` / `TRAINING_LOCK`.
pub fn training_lock(actor_id: &ActorId) -> ItemKey {
    ItemKey::new(format!("ACTOR#{actor_id}"), "TRAINING_LOCK")
}

/// An actor's LoRA record, beside the operators' profile: `ACTOR#{actorId}` / `LORA`.
pub fn actor_lora(actor_id: &ActorId) -> ItemKey {
    ItemKey::new(format!("ACTOR#{actor_id}"), "LORA")
}

/// A day's counter of trainings for the whole service: `BUDGET#{day}` / `TRAININGS`.
pub fn training_budget(day: &str) -> ItemKey {
    ItemKey::new(format!("BUDGET#{day}"), "TRAININGS")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_is_distinct_and_none_takes_a_reserved_prefix() {
        let actor = ActorId::parse("a1").unwrap();
        let keys = [
            actor_profile(&actor),
            image_counter("a1"),
            idempotency_record("jwt:u#k"),
            kill_switch(),
            service_budget("2026-12-02"),
            actor_budget("2026-12-02", "a1"),
            training_lock(&actor),
            actor_lora(&actor),
            training_budget("2026-12-02"),
        ];
        for (i, key) in keys.iter().enumerate() {
            assert!(
                keys[i + 1..].iter().all(|other| other != key),
                "{key:?} twice"
            );
            for prefix in RESERVED_PREFIXES {
                assert!(
                    !key.pk.starts_with(prefix) && !key.sk.starts_with(prefix),
                    "{key:?}"
                );
            }
        }
        assert_eq!(actor_profile(&actor).pk, "ACTOR#a1");
        assert_eq!(actor_budget("2026-12-02", "a1").sk, "ACTOR#a1");
    }

    #[test]
    fn a_prediction_record_takes_its_reserved_prefix() {
        let key = prediction_record("p1");
        assert_eq!(
            (key.pk.as_str(), key.sk.as_str()),
            ("PREDICTION#p1", "RECORD")
        );
        assert!(key.pk.starts_with(RESERVED_PREFIXES[0]));
    }
}
