//! The wire types of the training-set routes: the body a set request sends, and the answers
//! (a started set, a set's progress, an actor's sets). The use cases know nothing of JSON
//! field names; this file does.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::domain::request::RequestError;
use crate::domain::training_set::{ItemAsk, ItemState, SetCounts, SetItems, SetRequest, SetStatus};
use crate::entry::http::{error_body, status_of};
use crate::ports::{SetItem, StoredAnswer, TrainingSet};
use crate::usecases::UseCaseError;
use crate::usecases::training_sets::SetAnswers;

/// A set request's body. Unknown fields are ignored; known ones must have the right types.
#[derive(Debug, Deserialize)]
struct SetBody {
    #[serde(default)]
    actor_name: Option<String>,
    #[serde(default)]
    base_image_path: Option<String>,
    #[serde(default)]
    items: Option<Vec<ItemBody>>,
    #[serde(default)]
    count: Option<u64>,
    #[serde(default)]
    prompt_ids: Option<Vec<String>>,
}

/// One listed item.
#[derive(Debug, Deserialize)]
struct ItemBody {
    #[serde(default)]
    prompt_id: Option<String>,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    caption: Option<String>,
}

/// Reads a set request from a JSON body, with a message that says what is wrong.
pub fn read_set_request(value: Value) -> Result<SetRequest, RequestError> {
    if !value.is_object() {
        return Err(RequestError::Malformed(
            "the body must be a JSON object".to_owned(),
        ));
    }
    let body: SetBody = serde_json::from_value(value)
        .map_err(|error| RequestError::Malformed(error.to_string()))?;
    let items = match (body.items, body.count) {
        (Some(items), None) => {
            if body.prompt_ids.is_some() {
                return Err(RequestError::Malformed(
                    "prompt_ids goes with count, not with items".to_owned(),
                ));
            }
            SetItems::Listed(
                items
                    .into_iter()
                    .map(|item| ItemAsk {
                        prompt_id: item.prompt_id,
                        prompt: item.prompt,
                        seed: item.seed,
                        caption: item.caption,
                    })
                    .collect(),
            )
        }
        (None, Some(count)) => SetItems::Count {
            count,
            prompt_ids: body.prompt_ids.unwrap_or_default(),
        },
        _ => {
            return Err(RequestError::Malformed(
                "send either items (a list) or count (a number)".to_owned(),
            ));
        }
    };
    Ok(SetRequest {
        actor_name: body.actor_name,
        base_image_path: body.base_image_path,
        items,
    })
}

/// Where a set's progress is read: the set's path under the route's own (so a REST API's
/// stage stays in it).
pub fn status_url(collection_path: &str, set: &TrainingSet) -> String {
    format!("{}/{}", collection_path.trim_end_matches('/'), set.set_id)
}

/// The answers a set request keeps for its repeats: the 202 of a started set (its
/// `status_url` under `collection_path`), or a final refusal.
pub struct StartAnswers<'a> {
    /// The path the request was sent to.
    pub collection_path: &'a str,
    /// What one image is estimated to cost, in US dollars.
    pub price_per_image_usd: f64,
}

impl StartAnswers<'_> {
    /// The 202 body of a started set.
    pub fn body(&self, set: &TrainingSet) -> Value {
        let total = set.counts.total();
        json!({
            "set_id": set.set_id.as_str(),
            "status": SetStatus::of(&set.counts, set.canceled).as_str(),
            "total": total,
            "status_url": status_url(self.collection_path, set),
            "estimated_cost_usd": estimated_cost(total, self.price_per_image_usd),
        })
    }
}

impl SetAnswers for StartAnswers<'_> {
    fn started(&self, set: &TrainingSet) -> StoredAnswer {
        StoredAnswer {
            status: 202,
            body: self.body(set).to_string(),
        }
    }

    fn failed(&self, error: &UseCaseError) -> StoredAnswer {
        StoredAnswer {
            status: status_of(error).as_u16(),
            body: error_body(crate::entry::http::code_of(error), error, None).to_string(),
        }
    }
}

/// The estimate of a set's cost: `total` images at the price per image, in cents' precision.
fn estimated_cost(total: u64, price_per_image_usd: f64) -> f64 {
    (total as f64 * price_per_image_usd * 100.0).round() / 100.0
}

/// The counts an artist sees: what waits, what runs (claimed, predicting or storing), what
/// ended, and what is uncertain.
fn counts(counts: &SetCounts) -> Value {
    let running = [
        ItemState::Creating,
        ItemState::Predicting,
        ItemState::Storing,
    ]
    .into_iter()
    .map(|state| counts.of(state))
    .sum::<u64>();
    json!({
        "queued": counts.of(ItemState::Queued),
        "predicting": running,
        "stored": counts.of(ItemState::Stored),
        "failed": counts.of(ItemState::Failed),
        "canceled": counts.of(ItemState::Canceled),
        "uncertain": counts.of(ItemState::Uncertain),
    })
}

/// A set's summary, as listed.
pub fn summary(set: &TrainingSet) -> Value {
    json!({
        "set_id": set.set_id.as_str(),
        "actor_id": set.actor_id.as_str(),
        "status": SetStatus::of(&set.counts, set.canceled).as_str(),
        "total": set.counts.total(),
        "counts": counts(&set.counts),
        "created_at": set.created_at,
    })
}

/// A set's progress with its items (`previews` beside them, in order).
pub fn progress(set: &TrainingSet, items: &[SetItem], previews: &[Option<String>]) -> Value {
    let mut body = summary(set);
    body["created_by"] = json!(set.created_by);
    body["items"] = items
        .iter()
        .zip(previews)
        .map(|(item, preview)| {
            json!({
                "position": item.position,
                "prompt_id": item.prompt_id,
                "prompt": item.prompt,
                "seed": item.seed,
                "state": item.state.as_str(),
                "prediction_id": item.prediction_id,
                "index": item.image.as_ref().map(|image| image.index),
                "filename": item.image.as_ref().map(|image| image.filename.as_str()),
                "preview_url": preview,
                "error": item.error,
            })
        })
        .collect();
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_sends_items_or_a_count_never_both_nor_neither() {
        let listed = read_set_request(json!({"items": [{"prompt_id": "bw_charcoal", "seed": 3}]}));
        assert!(
            matches!(listed.unwrap().items, SetItems::Listed(items) if items[0].seed == Some(3))
        );
        let counted = read_set_request(json!({"count": 4, "prompt_ids": ["bw_charcoal"]}));
        assert!(matches!(
            counted.unwrap().items,
            SetItems::Count { count: 4, .. }
        ));
        for bad in [
            json!({}),
            json!({"items": [], "count": 2}),
            json!({"items": [{}], "prompt_ids": ["bw_charcoal"]}),
            json!({"count": "four"}),
            json!({"count": -1}),
            json!([1]),
        ] {
            assert!(read_set_request(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_estimate_is_in_cents() {
        assert_eq!(estimated_cost(20, 0.04), 0.8);
        assert_eq!(estimated_cost(3, 0.0333), 0.1);
    }
}
