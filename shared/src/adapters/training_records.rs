//! DynamoDB adapter for trainings (docs/data-model.md): one item per training at
//! `TRAINING#{training_id}` / `TRAINING`, in the open records' index (`open_kind =
//! TRAINING`) until it ends, its status moved only by conditional updates; a pointer from
//! Replicate's id to ours; the actor's lock (`ACTOR#{actorId}` / `TRAINING_LOCK`, with an
//! expiry) and LoRA record (`ACTOR#{actorId}` / `LORA`), beside the operators' profile and
//! never in it.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use super::dynamodb::attributes::{Item, fault, is_condition_failure, n, s, text};
use super::dynamodb::keys::{self, HELD_UNTIL, OPEN_KIND, OPEN_RECORDS_INDEX, OPEN_TRAINING};
use super::operations;
use super::training_item::{float, read_training, training_item, unreadable};
use crate::domain::actor::ActorId;
use crate::domain::training::{LoraRecord, TrainingId, TrainingRecord, TrainingStatus};
use crate::ports::{StoreError, TrainingEnd, TrainingRecords};
use crate::timing::RemoteCallExt;

/// Trainings in the service's table.
#[derive(Debug, Clone)]
pub struct DynamoDbTrainingRecords {
    pub(super) client: Client,
    pub(super) table_name: String,
}

impl DynamoDbTrainingRecords {
    /// Trainings in `table_name`, reached with `client`.
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        Self {
            client,
            table_name: table_name.into(),
        }
    }

    /// An item by key, read consistently.
    pub(super) async fn read(
        &self,
        key: keys::ItemKey,
        operation: &'static str,
    ) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table_name)
            .set_key(Some(key.attributes()))
            .consistent_read(true)
            .send()
            .remote_call(operation)
            .await
            .map_err(|error| fault(operation, error))?;
        Ok(output.item)
    }

    /// A conditional update of the training's item (`#status` and `#error` name the
    /// reserved words); `false` when its condition failed.
    async fn update(
        &self,
        training_id: &TrainingId,
        update: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<bool, StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table_name)
            .set_key(Some(keys::training(training_id).attributes()))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_names("#status", "status");
        if update.contains("#error") {
            request = request.expression_attribute_names("#error", "error");
        }
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        match request
            .send()
            .remote_call(operations::TRAINING_UPDATE)
            .await
        {
            Ok(_) => Ok(true),
            Err(error) if is_condition_failure(&error) => Ok(false),
            Err(error) => Err(fault(operations::TRAINING_UPDATE, error)),
        }
    }
}

const RUNNING: &str = "#status IN (:starting, :processing)";

impl TrainingRecords for DynamoDbTrainingRecords {
    async fn lock(
        &self,
        actor_id: &ActorId,
        training_id: &TrainingId,
        now_ms: u64,
        until_ms: u64,
        replacing: Option<&TrainingId>,
    ) -> Result<Result<(), String>, StoreError> {
        self.take_lock(actor_id, training_id, now_ms, until_ms, replacing)
            .await
    }

    async fn unlock(&self, actor_id: &ActorId, training_id: &TrainingId) -> Result<(), StoreError> {
        self.give_lock(actor_id, training_id).await
    }

    async fn create(&self, record: &TrainingRecord, look_at_ms: u64) -> Result<(), StoreError> {
        let created = self
            .client
            .put_item()
            .table_name(&self.table_name)
            .set_item(Some(training_item(record, look_at_ms)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .remote_call(operations::TRAINING_CREATE)
            .await;
        match created {
            Ok(_) => Ok(()),
            // Ids are random ULIDs: an item there is this one, written by an attempt whose
            // reply was lost (the SDK's own retry).
            Err(error) if is_condition_failure(&error) => Ok(()),
            Err(error) => Err(fault(operations::TRAINING_CREATE, error)),
        }
    }

    async fn get(&self, training_id: &TrainingId) -> Result<Option<TrainingRecord>, StoreError> {
        match self
            .read(keys::training(training_id), operations::TRAINING_READ)
            .await?
        {
            None => Ok(None),
            Some(item) => read_training(&item)
                .map(Some)
                .ok_or_else(|| unreadable(operations::TRAINING_READ)),
        }
    }

    async fn by_replicate_id(&self, replicate_id: &str) -> Result<Option<TrainingId>, StoreError> {
        let item = self
            .read(
                keys::training_by_replicate_id(replicate_id),
                operations::TRAINING_POINTER_READ,
            )
            .await?;
        Ok(item.and_then(|item| TrainingId::parse(text(&item, "training_id")?)))
    }

    async fn claim_create(
        &self,
        training_id: &TrainingId,
        now_ms: u64,
        look_at_ms: u64,
    ) -> Result<bool, StoreError> {
        let claimed = self
            .update(
                training_id,
                &format!("SET #status = :creating, create_claimed = :now, {HELD_UNTIL} = :look"),
                "#status = :exporting",
                vec![
                    (":creating", s(TrainingStatus::Creating.as_str())),
                    (":exporting", s(TrainingStatus::Exporting.as_str())),
                    (":now", n(now_ms)),
                    (":look", n(look_at_ms)),
                ],
            )
            .await?;
        if claimed {
            return Ok(true);
        }
        // A claim whose reply was lost and was retried by the SDK finds its own write.
        Ok(self.get(training_id).await?.is_some_and(|record| {
            record.status == TrainingStatus::Creating && record.create_claimed_ms == Some(now_ms)
        }))
    }

    async fn unclaim_create(&self, training_id: &TrainingId) -> Result<(), StoreError> {
        self.update(
            training_id,
            "SET #status = :exporting",
            "#status = :creating",
            vec![
                (":creating", s(TrainingStatus::Creating.as_str())),
                (":exporting", s(TrainingStatus::Exporting.as_str())),
            ],
        )
        .await
        .map(|_| ())
    }

    async fn created(
        &self,
        training_id: &TrainingId,
        replicate_id: &str,
        status: TrainingStatus,
        look_at_ms: u64,
    ) -> Result<bool, StoreError> {
        // The pointer first: a webhook that comes before the record's update still finds it.
        let mut pointer = keys::training_by_replicate_id(replicate_id).attributes();
        pointer.insert("training_id".to_owned(), s(training_id.as_str()));
        self.client
            .put_item()
            .table_name(&self.table_name)
            .set_item(Some(pointer))
            .send()
            .remote_call(operations::TRAINING_POINTER)
            .await
            .map_err(|error| fault(operations::TRAINING_POINTER, error))?;
        self.update(
            training_id,
            &format!("SET #status = :status, replicate_id = :rid, {HELD_UNTIL} = :look"),
            "#status = :creating",
            vec![
                (":status", s(status.as_str())),
                (":rid", s(replicate_id)),
                (":creating", s(TrainingStatus::Creating.as_str())),
                (":look", n(look_at_ms)),
            ],
        )
        .await
    }

    async fn progress(
        &self,
        training_id: &TrainingId,
        status: TrainingStatus,
        logs: Option<&str>,
        look_at_ms: u64,
    ) -> Result<(), StoreError> {
        self.update(
            training_id,
            &format!("SET #status = :status, logs = :logs, {HELD_UNTIL} = :look"),
            RUNNING,
            vec![
                (":status", s(status.as_str())),
                (":logs", s(logs.unwrap_or_default())),
                (":look", n(look_at_ms)),
                (":starting", s(TrainingStatus::Starting.as_str())),
                (":processing", s(TrainingStatus::Processing.as_str())),
            ],
        )
        .await
        .map(|_| ())
    }

    async fn end(
        &self,
        training_id: &TrainingId,
        end: &TrainingEnd,
        only_from: Option<TrainingStatus>,
    ) -> Result<bool, StoreError> {
        let mut sets = vec!["#status = :status", "finished_at = :finished"];
        let mut values = vec![
            (":status", s(end.status.as_str())),
            (":finished", s(&end.finished_at)),
            (":succeeded", s(TrainingStatus::Succeeded.as_str())),
            (":failed", s(TrainingStatus::Failed.as_str())),
            (":canceled", s(TrainingStatus::Canceled.as_str())),
        ];
        let optional = [
            ("logs = :logs", ":logs", end.logs.as_deref().map(s)),
            ("#error = :error", ":error", end.error.as_deref().map(s)),
            (
                "predict_time = :seconds",
                ":seconds",
                end.predict_time.map(float),
            ),
            ("cost_usd = :cost", ":cost", end.cost_usd.map(float)),
            (
                "version = :version",
                ":version",
                end.version.as_deref().map(s),
            ),
            (
                "weights_key = :weights",
                ":weights",
                end.weights_key.as_deref().map(s),
            ),
        ];
        for (set, name, value) in optional {
            if let Some(value) = value {
                sets.push(set);
                values.push((name, value));
            }
        }
        let mut condition = "NOT (#status IN (:succeeded, :failed, :canceled))".to_owned();
        if let Some(from) = only_from {
            condition.push_str(" AND #status = :from");
            values.push((":from", s(from.as_str())));
        }
        let update = format!("SET {} REMOVE {OPEN_KIND}, {HELD_UNTIL}", sets.join(", "));
        let ended = self
            .update(training_id, &update, &condition, values)
            .await
            .map_err(|error| StoreError {
                operation: operations::TRAINING_END,
                ..error
            })?;
        if ended {
            return Ok(true);
        }
        // An end whose reply was lost and was retried by the SDK finds its own write (an
        // end at the same second with the same status is told apart by neither, and both
        // give the lock and the unit back: the unlock is conditional, the refund idempotent).
        Ok(self.get(training_id).await?.is_some_and(|record| {
            record.status == end.status
                && record.finished_at.as_deref() == Some(end.finished_at.as_str())
                && record.look_at_ms.is_none()
        }))
    }

    async fn postpone(&self, training_id: &TrainingId, look_at_ms: u64) -> Result<(), StoreError> {
        self.update(
            training_id,
            &format!("SET {HELD_UNTIL} = :look"),
            &format!("attribute_exists({OPEN_KIND}) AND attribute_exists(#status)"),
            vec![(":look", n(look_at_ms))],
        )
        .await
        .map(|_| ())
    }

    async fn due(&self, now_ms: u64, limit: usize) -> Result<Vec<TrainingId>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table_name)
            .index_name(OPEN_RECORDS_INDEX)
            .key_condition_expression(format!("{OPEN_KIND} = :kind AND {HELD_UNTIL} < :now"))
            .expression_attribute_values(":kind", s(OPEN_TRAINING))
            .expression_attribute_values(":now", n(now_ms))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .remote_call(operations::TRAININGS_DUE)
            .await
            .map_err(|error| fault(operations::TRAININGS_DUE, error))?;
        Ok(output
            .items()
            .iter()
            .filter_map(|item| TrainingId::parse(text(item, "pk")?.strip_prefix("TRAINING#")?))
            .collect())
    }

    async fn put_lora(&self, lora: &LoraRecord) -> Result<(), StoreError> {
        self.write_lora(lora).await
    }
}
