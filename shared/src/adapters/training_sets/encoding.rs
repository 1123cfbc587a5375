//! How a set and its items are written as attributes and read back.

use aws_sdk_dynamodb::types::AttributeValue;

use crate::adapters::dynamodb::attributes::{Item, n, number, s, text};
use crate::adapters::dynamodb::keys::{self, HELD_UNTIL, OPEN_ITEM, OPEN_KIND};
use crate::domain::actor::ActorId;
use crate::domain::training_set::{ItemState, SetCounts, SetId};
use crate::ports::{ItemImage, SetItem, StoreError, TrainingSet};

/// The set's attribute counting items in `state`.
pub(super) fn count_attribute(state: ItemState) -> String {
    format!("n_{}", state.as_str())
}

pub(super) fn set_item(set: &TrainingSet) -> Item {
    let mut item = keys::training_set(&set.set_id).attributes();
    item.insert("set_id".to_owned(), s(set.set_id.as_str()));
    item.insert("actor_id".to_owned(), s(set.actor_id.as_str()));
    item.insert("actor_name".to_owned(), s(&set.actor_name));
    if let Some(name) = &set.requested_actor_name {
        item.insert("requested_actor_name".to_owned(), s(name));
    }
    if let Some(path) = &set.base_image_path {
        item.insert("base_image_path".to_owned(), s(path));
    }
    item.insert("created_by".to_owned(), s(&set.created_by));
    item.insert("created_at".to_owned(), s(&set.created_at));
    item.insert("budget_day".to_owned(), s(&set.budget_day));
    item.insert("canceled".to_owned(), AttributeValue::Bool(set.canceled));
    for state in ItemState::ALL {
        item.insert(count_attribute(state), n(set.counts.of(state)));
    }
    item
}

pub(super) fn item_item(set_id: &SetId, entry: &SetItem) -> Item {
    let mut item = keys::set_item(set_id, entry.position).attributes();
    item.insert("position".to_owned(), n(u64::from(entry.position)));
    if let Some(prompt_id) = &entry.prompt_id {
        item.insert("prompt_id".to_owned(), s(prompt_id));
    }
    if let Some(prompt) = &entry.prompt {
        item.insert("prompt".to_owned(), s(prompt));
    }
    if let Some(caption) = &entry.caption {
        item.insert("caption".to_owned(), s(caption));
    }
    item.insert("seed".to_owned(), n(entry.seed));
    item.insert("state".to_owned(), s(entry.state.as_str()));
    item.insert("state_since".to_owned(), n(entry.state_since_ms));
    item.insert("attempt".to_owned(), n(u64::from(entry.attempt)));
    if let Some(held_until_ms) = entry.held_until_ms {
        item.insert(OPEN_KIND.to_owned(), s(OPEN_ITEM));
        item.insert(HELD_UNTIL.to_owned(), n(held_until_ms));
    }
    item
}

pub(super) fn read_set(item: &Item) -> Option<TrainingSet> {
    let mut counts = SetCounts::default();
    for state in ItemState::ALL {
        counts.set(state, number(item, &count_attribute(state)).unwrap_or(0));
    }
    Some(TrainingSet {
        set_id: SetId::parse(text(item, "set_id")?)?,
        actor_id: ActorId::parse(text(item, "actor_id")?).ok()?,
        actor_name: text(item, "actor_name")?.to_owned(),
        requested_actor_name: text(item, "requested_actor_name").map(str::to_owned),
        base_image_path: text(item, "base_image_path").map(str::to_owned),
        created_by: text(item, "created_by").unwrap_or_default().to_owned(),
        created_at: text(item, "created_at").unwrap_or_default().to_owned(),
        budget_day: text(item, "budget_day").unwrap_or_default().to_owned(),
        counts,
        canceled: item
            .get("canceled")
            .is_some_and(|v| v.as_bool() == Ok(&true)),
    })
}

pub(super) fn read_item(item: &Item) -> Option<SetItem> {
    let image = match (
        number(item, "image_index"),
        text(item, "filename"),
        text(item, "s3_key"),
    ) {
        (Some(index), Some(filename), Some(s3_key)) => Some(ItemImage {
            index,
            filename: filename.to_owned(),
            s3_key: s3_key.to_owned(),
        }),
        _ => None,
    };
    Some(SetItem {
        position: u32::try_from(number(item, "position")?).ok()?,
        prompt_id: text(item, "prompt_id").map(str::to_owned),
        prompt: text(item, "prompt").map(str::to_owned),
        caption: text(item, "caption").map(str::to_owned),
        seed: number(item, "seed")?,
        state: ItemState::parse(text(item, "state")?)?,
        state_since_ms: number(item, "state_since").unwrap_or(0),
        held_until_ms: number(item, HELD_UNTIL),
        attempt: number(item, "attempt")
            .and_then(|a| u32::try_from(a).ok())
            .unwrap_or(1),
        prediction_id: text(item, "prediction_id").map(str::to_owned),
        image,
        error: text(item, "error").map(str::to_owned),
    })
}

pub(super) fn unreadable(operation: &'static str, what: &str) -> StoreError {
    StoreError {
        operation,
        detail: format!("unreadable {what}"),
    }
}
