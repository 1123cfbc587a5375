//! A training's DynamoDB item: how its record is written and read back (one attribute per
//! field, the open records' index attributes while it is open).

use aws_sdk_dynamodb::types::AttributeValue;

use super::dynamodb::attributes::{Item, n, number, s, text};
use super::dynamodb::keys::{self, HELD_UNTIL, OPEN_KIND, OPEN_TRAINING};
use crate::domain::actor::ActorId;
use crate::domain::export::ExportId;
use crate::domain::training::{ModelName, TrainingId, TrainingRecord, TrainingStatus};
use crate::ports::StoreError;

/// A float number attribute.
pub(super) fn float(value: f64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A float number attribute's value.
pub(super) fn float_of(item: &Item, name: &str) -> Option<f64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

/// The item of a new training, open for a look at `look_at_ms`.
pub(super) fn training_item(record: &TrainingRecord, look_at_ms: u64) -> Item {
    let mut item = keys::training(&record.training_id).attributes();
    let destination = record.destination.to_string();
    for (name, value) in [
        ("actor_id", record.actor_id.as_str()),
        ("actor_name", &record.actor_name),
        ("export_id", record.export_id.as_str()),
        ("status", record.status.as_str()),
        ("trigger_word", &record.trigger_word),
        ("destination", &destination),
        ("requested_by", &record.requested_by),
        ("created_at", &record.created_at),
        ("budget_day", &record.budget_day),
        ("refund_token", &record.refund_token),
        (OPEN_KIND, OPEN_TRAINING),
    ] {
        item.insert(name.to_owned(), s(value));
    }
    item.insert("steps".to_owned(), n(u64::from(record.steps)));
    item.insert("lora_rank".to_owned(), n(u64::from(record.lora_rank)));
    item.insert(HELD_UNTIL.to_owned(), n(look_at_ms));
    item
}

/// A training's record from its item; `None` when the item is not one.
pub(super) fn read_training(item: &Item) -> Option<TrainingRecord> {
    let owned = |name: &str| text(item, name).map(str::to_owned);
    let pk = text(item, "pk")?;
    Some(TrainingRecord {
        training_id: TrainingId::parse(pk.strip_prefix("TRAINING#")?)?,
        actor_id: ActorId::parse(text(item, "actor_id")?).ok()?,
        actor_name: owned("actor_name")?,
        export_id: ExportId::parse(text(item, "export_id")?)?,
        status: TrainingStatus::parse(text(item, "status")?)?,
        trigger_word: owned("trigger_word")?,
        steps: u32::try_from(number(item, "steps")?).ok()?,
        lora_rank: u32::try_from(number(item, "lora_rank")?).ok()?,
        destination: ModelName::parse(text(item, "destination")?)?,
        requested_by: owned("requested_by").unwrap_or_default(),
        created_at: owned("created_at").unwrap_or_default(),
        replicate_id: owned("replicate_id"),
        logs: owned("logs"),
        error: owned("error"),
        predict_time: float_of(item, "predict_time"),
        cost_usd: float_of(item, "cost_usd"),
        version: owned("version"),
        weights_key: owned("weights_key"),
        finished_at: owned("finished_at"),
        budget_day: owned("budget_day").unwrap_or_default(),
        refund_token: owned("refund_token").unwrap_or_default(),
        look_at_ms: number(item, HELD_UNTIL),
        create_claimed_ms: number(item, "create_claimed"),
    })
}

/// The fault of an item this service cannot read (it wrote them all).
pub(super) fn unreadable(operation: &'static str) -> StoreError {
    StoreError {
        operation,
        detail: "the training's item is not one this service wrote".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_training_reads_back_as_written() {
        let record = TrainingRecord {
            training_id: TrainingId::new(1_764_633_600_000, 7),
            actor_id: ActorId::parse("a_1").unwrap(),
            actor_name: "a_1".to_owned(),
            export_id: ExportId::new(1_764_633_600_000, 9),
            status: TrainingStatus::Exporting,
            trigger_word: "tok".to_owned(),
            steps: 1000,
            lora_rank: 16,
            destination: ModelName::parse("studio/lora-a_1").unwrap(),
            requested_by: "jwt:artist".to_owned(),
            created_at: "2026-12-03T10:00:00Z".to_owned(),
            replicate_id: None,
            logs: None,
            error: None,
            predict_time: None,
            cost_usd: None,
            version: None,
            weights_key: None,
            finished_at: None,
            budget_day: "2026-12-03".to_owned(),
            refund_token: "r".to_owned(),
            look_at_ms: Some(5),
            create_claimed_ms: None,
        };
        let item = training_item(&record, 5);
        assert_eq!(read_training(&item), Some(record));
        assert_eq!(text(&item, OPEN_KIND), Some(OPEN_TRAINING));
        assert!(
            keys::RESERVED_PREFIXES
                .iter()
                .any(|p| text(&item, "pk").unwrap().starts_with(p))
        );
    }
}
