//! DynamoDB adapter for paid predictions' records: item `PREDICTION#{id}` / `RECORD` with
//! `state` (`OPEN` | `STORED` | `FAILED`), the order (`actor_id`, `actor_name`,
//! `base_image_key`, `folder`, `prompt_id`, `prompt`, `caption`, `seed`, `requested_by`), `model`, `opened_at`,
//! `held_until` (epoch ms), once claimed `image_index` and `image_key`, and once closed
//! `stored_at` and `listed`, or `failure`. While open it has `open_kind = PREDICTION`, which
//! puts it in the sparse `open_records` index (docs/data-model.md). A closed record expires
//! after 30 days (`expiration`, the table's TTL).

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use super::dynamodb::attributes::{Item, fault, is_condition_failure, n, number, s, text};
use super::dynamodb::keys::{self, HELD_UNTIL, OPEN_KIND, OPEN_PREDICTION, OPEN_RECORDS_INDEX};
use crate::adapters::operations;
use crate::domain::actor::ActorId;
use crate::domain::naming::training_folder;
use crate::domain::order::ImageOrder;
use crate::domain::request::{PromptChoice, ResolvedActor};
use crate::ports::{
    ImagePlace, PlaceClaim, PredictionRecord, PredictionRecords, PredictionState, StoreError,
};
use crate::timing::{RemoteCallExt, epoch_ms};

/// How long a closed record is kept: past any retry of its idempotency key (24 h) that
/// could ask for it again.
const CLOSED_RECORD_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
const OPEN: &str = "OPEN";
const STORED: &str = "STORED";
const FAILED: &str = "FAILED";

/// Prediction records in the service's table.
#[derive(Debug, Clone)]
pub struct DynamoDbPredictionRecords {
    client: Client,
    table_name: String,
}

impl DynamoDbPredictionRecords {
    /// Records in `table_name`, reached with `client`.
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        Self {
            client,
            table_name: table_name.into(),
        }
    }

    fn key(prediction_id: &str) -> Item {
        keys::prediction_record(prediction_id).attributes()
    }

    /// Closes an open record with `update` (which sets the state), leaving the open index.
    async fn close(
        &self,
        prediction_id: &str,
        update: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<(), StoreError> {
        let expiration = (epoch_ms() + CLOSED_RECORD_LIFETIME.as_millis() as u64) / 1000;
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table_name)
            .set_key(Some(Self::key(prediction_id)))
            .update_expression(format!("{update}, expiration = :exp REMOVE {OPEN_KIND}"))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":exp", n(expiration));
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        request
            .send()
            .remote_call(operations::PREDICTION_RECORD_CLOSE)
            .await
            .map_err(|e| fault(operations::PREDICTION_RECORD_CLOSE, e))?;
        Ok(())
    }
}

impl PredictionRecords for DynamoDbPredictionRecords {
    async fn open(
        &self,
        prediction_id: &str,
        order: &ImageOrder,
        model: &str,
        held_until_ms: u64,
    ) -> Result<(), StoreError> {
        let actor = &order.actor;
        let mut item = Self::key(prediction_id);
        item.extend([
            ("state".to_owned(), s(OPEN)),
            (OPEN_KIND.to_owned(), s(OPEN_PREDICTION)),
            (HELD_UNTIL.to_owned(), n(held_until_ms)),
            ("opened_at".to_owned(), n(epoch_ms())),
            ("actor_id".to_owned(), s(actor.actor_id.as_str())),
            ("actor_name".to_owned(), s(&actor.actor_name)),
            ("folder".to_owned(), s(&training_folder(&actor.actor_name))),
            ("base_image_key".to_owned(), s(&actor.base_image_key)),
            ("prompt".to_owned(), s(&order.prompt.text)),
            ("caption".to_owned(), s(&order.prompt.caption)),
            ("model".to_owned(), s(model)),
        ]);
        if let Some(prompt_id) = order.prompt.prompt_id {
            item.insert("prompt_id".to_owned(), s(prompt_id));
        }
        if let Some(seed) = order.seed {
            item.insert("seed".to_owned(), n(seed));
        }
        if let Some(requested_by) = &order.requested_by {
            item.insert("requested_by".to_owned(), s(requested_by));
        }
        let put = self
            .client
            .put_item()
            .table_name(&self.table_name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .remote_call(operations::PREDICTION_RECORD_OPEN)
            .await;
        match put {
            Ok(_) => Ok(()),
            Err(error) if is_condition_failure(&error) => Ok(()),
            Err(error) => Err(fault(operations::PREDICTION_RECORD_OPEN, error)),
        }
    }

    async fn read(&self, prediction_id: &str) -> Result<Option<PredictionRecord>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table_name)
            .set_key(Some(Self::key(prediction_id)))
            .consistent_read(true)
            .send()
            .remote_call(operations::PREDICTION_RECORD_READ)
            .await
            .map_err(|e| fault(operations::PREDICTION_RECORD_READ, e))?;
        output.item.as_ref().map(record_from_item).transpose()
    }

    async fn claim_place(
        &self,
        prediction_id: &str,
        place: &ImagePlace,
        replacing: Option<u64>,
    ) -> Result<PlaceClaim, StoreError> {
        let mut replacing = replacing;
        // Twice at most: when the place it replaced was cleared meanwhile, claim it afresh.
        for _ in 0..2 {
            let request = self
                .client
                .update_item()
                .table_name(&self.table_name)
                .set_key(Some(Self::key(prediction_id)))
                .update_expression("SET image_index = :index, image_key = :key")
                .expression_attribute_values(":index", n(place.index))
                .expression_attribute_values(":key", s(&place.key));
            let request = match replacing {
                None => request.condition_expression(
                    "attribute_exists(pk) AND attribute_not_exists(image_index)",
                ),
                Some(old) => request
                    .condition_expression("attribute_exists(pk) AND image_index = :old")
                    .expression_attribute_values(":old", n(old)),
            };
            let claimed = request
                .send()
                .remote_call(operations::PREDICTION_RECORD_CLAIM)
                .await;
            match claimed {
                Ok(_) => return Ok(PlaceClaim::Claimed),
                Err(error) if is_condition_failure(&error) => {}
                Err(error) => return Err(fault(operations::PREDICTION_RECORD_CLAIM, error)),
            }
            match self.read(prediction_id).await? {
                None => return Ok(PlaceClaim::NoRecord),
                Some(PredictionRecord {
                    place: Some(theirs),
                    ..
                }) => return Ok(PlaceClaim::Taken(theirs)),
                Some(_) => replacing = None,
            }
        }
        Err(StoreError {
            operation: operations::PREDICTION_RECORD_CLAIM,
            detail: "the image's place kept changing".to_owned(),
        })
    }

    async fn stored(
        &self,
        prediction_id: &str,
        created_at: &str,
        listed: bool,
    ) -> Result<(), StoreError> {
        self.close(
            prediction_id,
            "SET #state = :stored, stored_at = :at, listed = :listed",
            vec![
                (":stored", s(STORED)),
                (":at", s(created_at)),
                (":listed", AttributeValue::Bool(listed)),
            ],
        )
        .await
    }

    async fn failed(&self, prediction_id: &str, reason: &str) -> Result<(), StoreError> {
        self.close(
            prediction_id,
            "SET #state = :failed, failure = :reason",
            vec![(":failed", s(FAILED)), (":reason", s(reason))],
        )
        .await
    }

    async fn hold(
        &self,
        prediction_id: &str,
        seen_until_ms: u64,
        until_ms: u64,
    ) -> Result<bool, StoreError> {
        let held = self
            .client
            .update_item()
            .table_name(&self.table_name)
            .set_key(Some(Self::key(prediction_id)))
            .update_expression(format!("SET {HELD_UNTIL} = :until"))
            .condition_expression(format!("#state = :open AND {HELD_UNTIL} = :seen"))
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":open", s(OPEN))
            .expression_attribute_values(":seen", n(seen_until_ms))
            .expression_attribute_values(":until", n(until_ms))
            .send()
            .remote_call(operations::PREDICTION_RECORD_HOLD)
            .await;
        match held {
            Ok(_) => Ok(true),
            Err(error) if is_condition_failure(&error) => Ok(false),
            Err(error) => Err(fault(operations::PREDICTION_RECORD_HOLD, error)),
        }
    }

    async fn due(&self, now_ms: u64, limit: usize) -> Result<Vec<PredictionRecord>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table_name)
            .index_name(OPEN_RECORDS_INDEX)
            .key_condition_expression(format!("{OPEN_KIND} = :kind AND {HELD_UNTIL} < :now"))
            .expression_attribute_values(":kind", s(OPEN_PREDICTION))
            .expression_attribute_values(":now", n(now_ms))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .remote_call(operations::PREDICTION_RECORDS_DUE)
            .await
            .map_err(|e| fault(operations::PREDICTION_RECORDS_DUE, e))?;
        output.items().iter().map(record_from_item).collect()
    }
}

/// Reads a record back; a record the service cannot read is a fault (it wrote them all).
fn record_from_item(item: &Item) -> Result<PredictionRecord, StoreError> {
    let unreadable = |what: &str| StoreError {
        operation: operations::PREDICTION_RECORD_READ,
        detail: format!("the prediction record has no readable {what}"),
    };
    let required = |name: &'static str| text(item, name).ok_or_else(|| unreadable(name));
    let prediction_id = required("pk")?
        .strip_prefix("PREDICTION#")
        .ok_or_else(|| unreadable("pk"))?
        .to_owned();
    let actor_id = ActorId::parse(required("actor_id")?).map_err(|_| unreadable("actor_id"))?;
    let state = match required("state")? {
        OPEN => PredictionState::Open,
        STORED => PredictionState::Stored {
            created_at: required("stored_at")?.to_owned(),
            listed: item
                .get("listed")
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(false),
        },
        FAILED => PredictionState::Failed {
            reason: text(item, "failure").unwrap_or_default().to_owned(),
        },
        _ => return Err(unreadable("state")),
    };
    let place = match (number(item, "image_index"), text(item, "image_key")) {
        (Some(index), Some(key)) => Some(ImagePlace {
            index,
            key: key.to_owned(),
        }),
        _ => None,
    };
    Ok(PredictionRecord {
        prediction_id,
        order: ImageOrder {
            actor: ResolvedActor {
                actor_id,
                actor_name: required("actor_name")?.to_owned(),
                base_image_key: text(item, "base_image_key").unwrap_or_default().to_owned(),
            },
            prompt: PromptChoice::recorded(
                text(item, "prompt_id"),
                required("prompt")?.to_owned(),
                text(item, "caption").map(str::to_owned),
            ),
            seed: number(item, "seed"),
            requested_by: text(item, "requested_by").map(str::to_owned),
        },
        model: required("model")?.to_owned(),
        state,
        held_until_ms: number(item, HELD_UNTIL).unwrap_or(0),
        opened_at_ms: number(item, "opened_at").unwrap_or(0),
        place,
    })
}
