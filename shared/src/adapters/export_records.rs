//! DynamoDB adapter for exports (docs/data-model.md): one item per export at
//! `EXPORT#{export_id}` / `EXPORT`, its status moved only by conditional updates (a run
//! claims a running export with a lease; an end applies only to a running one), and kept for
//! [`RECORD_LIFETIME_DAYS`] by the table's TTL.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::ReturnValue;

use super::dynamodb::attributes::{Item, fault, is_condition_failure, n, number, s, text};
use super::dynamodb::keys;
use super::operations;
use crate::domain::actor::ActorId;
use crate::domain::export::{ExportId, ExportRecord, ExportStatus, Include};
use crate::ports::{ExportClaim, ExportEnd, ExportRecords, StoreError};
use crate::timing::RemoteCallExt;

/// How long an export's record is kept (its zip stays in the bucket).
pub const RECORD_LIFETIME_DAYS: u64 = 30;

/// Exports in the service's table.
#[derive(Debug, Clone)]
pub struct DynamoDbExportRecords {
    client: Client,
    table_name: String,
}

impl DynamoDbExportRecords {
    /// Exports in `table_name`, reached with `client`.
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        Self {
            client,
            table_name: table_name.into(),
        }
    }
}

/// The item of a new export.
fn export_item(record: &ExportRecord, expiration: u64) -> Item {
    let mut item = keys::export(&record.export_id).attributes();
    for (name, value) in [
        ("actor_id", record.actor_id.as_str()),
        ("actor_name", &record.actor_name),
        ("include", record.include.as_str()),
        ("trigger_word", &record.trigger_word),
        ("status", record.status.as_str()),
        ("requested_by", &record.requested_by),
        ("created_at", &record.created_at),
        ("zip_key", &record.key),
    ] {
        item.insert(name.to_owned(), s(value));
    }
    item.insert("expiration".to_owned(), n(expiration));
    item
}

/// An export's record from its item; `None` when the item is not one.
fn read_export(item: &Item) -> Option<ExportRecord> {
    let owned = |name: &str| text(item, name).map(str::to_owned);
    let pk = text(item, "pk")?;
    Some(ExportRecord {
        export_id: ExportId::parse(pk.strip_prefix("EXPORT#")?)?,
        actor_id: ActorId::parse(text(item, "actor_id")?).ok()?,
        actor_name: owned("actor_name")?,
        include: Include::parse(text(item, "include")?)?,
        trigger_word: owned("trigger_word")?,
        status: ExportStatus::parse(text(item, "status")?)?,
        requested_by: owned("requested_by").unwrap_or_default(),
        created_at: owned("created_at").unwrap_or_default(),
        key: owned("zip_key")?,
        finished_at: owned("finished_at"),
        size: number(item, "size"),
        count: number(item, "count").and_then(|count| usize::try_from(count).ok()),
        error: owned("error"),
    })
}

fn unreadable(operation: &'static str) -> StoreError {
    StoreError {
        operation,
        detail: "the export's item is not one this service wrote".to_owned(),
    }
}

impl ExportRecords for DynamoDbExportRecords {
    async fn create(&self, record: &ExportRecord) -> Result<(), StoreError> {
        let created_s = crate::timing::epoch_ms() / 1000;
        self.client
            .put_item()
            .table_name(&self.table_name)
            .set_item(Some(export_item(
                record,
                created_s + RECORD_LIFETIME_DAYS * 86_400,
            )))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .remote_call(operations::EXPORT_CREATE)
            .await
            .map_err(|error| fault(operations::EXPORT_CREATE, error))?;
        Ok(())
    }

    async fn get(&self, export_id: &ExportId) -> Result<Option<ExportRecord>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table_name)
            .set_key(Some(keys::export(export_id).attributes()))
            .consistent_read(true)
            .send()
            .remote_call(operations::EXPORT_READ)
            .await
            .map_err(|error| fault(operations::EXPORT_READ, error))?;
        match output.item {
            None => Ok(None),
            Some(item) => read_export(&item)
                .map(Some)
                .ok_or_else(|| unreadable(operations::EXPORT_READ)),
        }
    }

    async fn claim(
        &self,
        export_id: &ExportId,
        now_ms: u64,
        lease_until_ms: u64,
    ) -> Result<ExportClaim, StoreError> {
        let operation = operations::EXPORT_CLAIM;
        let claimed = self
            .client
            .update_item()
            .table_name(&self.table_name)
            .set_key(Some(keys::export(export_id).attributes()))
            .update_expression(
                "SET lease_until = :lease, attempts = if_not_exists(attempts, :zero) + :one",
            )
            .condition_expression(
                "#status = :running AND (attribute_not_exists(lease_until) OR lease_until < :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":running", s(ExportStatus::Running.as_str()))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":lease", n(lease_until_ms))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew)
            .send()
            .remote_call(operation)
            .await;
        match claimed {
            Ok(output) => {
                let item = output.attributes.unwrap_or_default();
                match (read_export(&item), number(&item, "attempts")) {
                    (Some(record), Some(run)) => Ok(ExportClaim::Claimed {
                        record: Box::new(record),
                        run,
                    }),
                    _ => Err(unreadable(operation)),
                }
            }
            Err(error) if is_condition_failure(&error) => Ok(match self.get(export_id).await? {
                None => ExportClaim::Missing,
                Some(record) if record.status == ExportStatus::Running => ExportClaim::Held,
                Some(_) => ExportClaim::Ended,
            }),
            Err(error) => Err(fault(operation, error)),
        }
    }

    async fn end(
        &self,
        export_id: &ExportId,
        run: Option<u64>,
        end: &ExportEnd,
        now: &str,
    ) -> Result<(), StoreError> {
        let operation = operations::EXPORT_END;
        let request = self
            .client
            .update_item()
            .table_name(&self.table_name)
            .set_key(Some(keys::export(export_id).attributes()));
        let request = match run {
            Some(run) => request
                .condition_expression("#status = :running AND attempts = :run")
                .expression_attribute_values(":run", n(run)),
            None => request
                .condition_expression("#status = :running AND attribute_not_exists(attempts)"),
        };
        let request = request
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":running", s(ExportStatus::Running.as_str()))
            .expression_attribute_values(":now", s(now));
        let request = match end {
            ExportEnd::Done { size, count } => request
                .update_expression(
                    "SET #status = :done, finished_at = :now, #size = :size, #count = :count REMOVE lease_until",
                )
                .expression_attribute_names("#size", "size")
                .expression_attribute_names("#count", "count")
                .expression_attribute_values(":done", s(ExportStatus::Done.as_str()))
                .expression_attribute_values(":size", n(*size))
                .expression_attribute_values(":count", n(*count as u64)),
            ExportEnd::Failed(error) => request
                .update_expression(
                    "SET #status = :failed, finished_at = :now, #error = :error REMOVE lease_until",
                )
                .expression_attribute_names("#error", "error")
                .expression_attribute_values(":failed", s(ExportStatus::Failed.as_str()))
                .expression_attribute_values(":error", s(error)),
        };
        match request.send().remote_call(operation).await {
            Ok(_) => Ok(()),
            // Ended already, or claimed by a later run (this one's lease ran out): it stays as
            // that run leaves it.
            Err(error) if is_condition_failure(&error) => Ok(()),
            Err(error) => Err(fault(operation, error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_reads_back_as_written() {
        let record = ExportRecord {
            export_id: ExportId::new(1_764_633_600_000, 7),
            actor_id: ActorId::parse("a_1").unwrap(),
            actor_name: "a_1".to_owned(),
            include: Include::NotRejected,
            trigger_word: "tok".to_owned(),
            status: ExportStatus::Running,
            requested_by: "jwt:artist".to_owned(),
            created_at: "2026-12-03T10:00:00Z".to_owned(),
            key: "system_actors/training_exports/a_1/x.zip".to_owned(),
            finished_at: None,
            size: None,
            count: None,
            error: None,
        };
        let item = export_item(&record, 1);
        assert_eq!(read_export(&item), Some(record));
        assert_eq!(text(&item, "sk"), Some("EXPORT"));
    }
}
