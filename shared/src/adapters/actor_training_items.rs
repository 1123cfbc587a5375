//! The items a training keeps beside the actor's profile: its one-at-a-time lock
//! (`ACTOR#{actorId}` / `TRAINING_LOCK`, with an expiry the condition reads and the TTL
//! clears) and the LoRA record of its last success (`ACTOR#{actorId}` / `LORA`). The profile
//! itself is the operators' and never written.

use super::dynamodb::attributes::{fault, is_condition_failure, n, s, text};
use super::dynamodb::keys;
use super::operations;
use super::training_records::DynamoDbTrainingRecords;
use crate::domain::actor::ActorId;
use crate::domain::training::{LoraRecord, TrainingId};
use crate::ports::StoreError;
use crate::timing::RemoteCallExt;

impl DynamoDbTrainingRecords {
    /// The lock's conditional put (`TrainingRecords::lock`).
    pub(super) async fn take_lock(
        &self,
        actor_id: &ActorId,
        training_id: &TrainingId,
        now_ms: u64,
        until_ms: u64,
        replacing: Option<&TrainingId>,
    ) -> Result<Result<(), String>, StoreError> {
        let mut item = keys::training_lock(actor_id).attributes();
        item.insert("training_id".to_owned(), s(training_id.as_str()));
        item.insert("lock_until".to_owned(), n(until_ms));
        // The table's TTL removes an expired lock some time later; the condition does not wait.
        item.insert("expiration".to_owned(), n(until_ms / 1000 + 86_400));
        let taken = self
            .client
            .put_item()
            .table_name(&self.table_name)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(pk) OR lock_until < :now OR training_id IN (:id, :ended)",
            )
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":id", s(training_id.as_str()))
            .expression_attribute_values(
                ":ended",
                s(replacing.map_or(training_id.as_str(), TrainingId::as_str)),
            )
            .send()
            .remote_call(operations::TRAINING_LOCK)
            .await;
        match taken {
            Ok(_) => Ok(Ok(())),
            Err(error) if is_condition_failure(&error) => {
                let holder = self
                    .read(
                        keys::training_lock(actor_id),
                        operations::TRAINING_LOCK_READ,
                    )
                    .await?
                    .and_then(|item| text(&item, "training_id").map(str::to_owned))
                    .unwrap_or_default();
                Ok(Err(holder))
            }
            Err(error) => Err(fault(operations::TRAINING_LOCK, error)),
        }
    }

    /// The lock's conditional delete (`TrainingRecords::unlock`).
    pub(super) async fn give_lock(
        &self,
        actor_id: &ActorId,
        training_id: &TrainingId,
    ) -> Result<(), StoreError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table_name)
            .set_key(Some(keys::training_lock(actor_id).attributes()))
            .condition_expression("training_id = :id")
            .expression_attribute_values(":id", s(training_id.as_str()))
            .send()
            .remote_call(operations::TRAINING_UNLOCK)
            .await;
        match deleted {
            // Held by another training since (this one's expired): not this one's to give.
            Ok(_) => Ok(()),
            Err(error) if is_condition_failure(&error) => Ok(()),
            Err(error) => Err(fault(operations::TRAINING_UNLOCK, error)),
        }
    }

    /// The LoRA record's put (`TrainingRecords::put_lora`).
    pub(super) async fn write_lora(&self, lora: &LoraRecord) -> Result<(), StoreError> {
        let mut item = keys::actor_lora(&lora.actor_id).attributes();
        for (name, value) in [
            ("actor_id", lora.actor_id.as_str()),
            ("version", &lora.version),
            ("weights_key", &lora.weights_key),
            ("training_id", lora.training_id.as_str()),
            ("trained_at", &lora.trained_at),
            ("trigger_word", &lora.trigger_word),
        ] {
            item.insert(name.to_owned(), s(value));
        }
        self.client
            .put_item()
            .table_name(&self.table_name)
            .set_item(Some(item))
            .send()
            .remote_call(operations::LORA_WRITE)
            .await
            .map_err(|error| fault(operations::LORA_WRITE, error))?;
        Ok(())
    }
}
