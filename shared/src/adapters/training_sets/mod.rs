//! DynamoDB adapter for training sets (docs/data-model.md): the set at `SET#{set_id}` / `SET`
//! with its counts by item state (`n_queued`, `n_creating`, ...), each item at
//! `SET#{set_id}` / `ITEM#{position:03}`, and an entry per set in the actor's listing at
//! `SETS#{actor_id}` / `{set_id}` (ULIDs sort newest last). One query reads a set whole; an
//! item's state changes only in a transaction that checks its old state and moves the set's
//! counts with it.

mod change;
mod encoding;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, PutRequest, WriteRequest};

use super::dynamodb::attributes::{Item, fault, is_condition_failure, n, number, s, text};
use super::dynamodb::keys::{self, HELD_UNTIL, OPEN_ITEM, OPEN_KIND, OPEN_RECORDS_INDEX};
use crate::adapters::operations;
use crate::domain::actor::ActorId;
use crate::domain::training_set::{ItemState, SetId};
use crate::ports::{ItemChange, SetItem, StoreError, TrainingSet, TrainingSets};
use crate::retry::Backoff;
use crate::timing::{self, RemoteCallExt};
use encoding::{item_item, read_item, read_set, set_item, unreadable};

/// The most items one BatchWriteItem takes.
const BATCH_WRITE_MAX: usize = 25;

/// Training sets in the service's table.
#[derive(Debug, Clone)]
pub struct DynamoDbTrainingSets {
    client: Client,
    table_name: String,
}

impl DynamoDbTrainingSets {
    /// The items at `wanted` (strongly consistent, in any order), in one `BatchGetItem` or
    /// as many as its unprocessed keys need.
    async fn batch_get(
        &self,
        wanted: Vec<keys::ItemKey>,
        operation: &'static str,
    ) -> Result<Vec<Item>, StoreError> {
        let mut request = KeysAndAttributes::builder().consistent_read(true);
        for key in &wanted {
            request = request.keys(key.attributes());
        }
        let mut request = Some(request.build().map_err(|error| fault(operation, error))?);
        let mut found = Vec::new();
        while let Some(keys_left) = request.take() {
            let output = self
                .client
                .batch_get_item()
                .request_items(&self.table_name, keys_left)
                .send()
                .remote_call(operation)
                .await
                .map_err(|error| fault(operation, error))?;
            if let Some(items) = output
                .responses
                .and_then(|mut r| r.remove(&self.table_name))
            {
                found.extend(items);
            }
            request = output
                .unprocessed_keys
                .and_then(|mut left| left.remove(&self.table_name))
                .filter(|left| !left.keys().is_empty());
        }
        Ok(found)
    }

    /// Sets in `table_name`, reached with `client`.
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        Self {
            client,
            table_name: table_name.into(),
        }
    }

    /// Writes items with BatchWriteItem, sending again what comes back unprocessed.
    async fn write_all(&self, items: Vec<Item>) -> Result<(), StoreError> {
        for chunk in items.chunks(BATCH_WRITE_MAX) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|item| {
                    PutRequest::builder()
                        .set_item(Some(item.clone()))
                        .build()
                        .map(|put| WriteRequest::builder().put_request(put).build())
                        .map_err(|error| fault(operations::SET_WRITE, error))
                })
                .collect::<Result<_, _>>()?;
            let policy = Backoff::RECORD_WRITE;
            let mut attempt = 1;
            while !requests.is_empty() {
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table_name, requests.clone())
                    .send()
                    .remote_call(operations::SET_WRITE)
                    .await
                    .map_err(|error| fault(operations::SET_WRITE, error))?;
                requests = output
                    .unprocessed_items
                    .and_then(|mut left| left.remove(&self.table_name))
                    .unwrap_or_default();
                if !requests.is_empty() {
                    if !policy.allows_another(attempt) {
                        return Err(StoreError {
                            operation: operations::SET_WRITE,
                            detail: format!("{} items left unprocessed", requests.len()),
                        });
                    }
                    timing::pause_before_retry(policy.delay(attempt)).await;
                    attempt += 1;
                }
            }
        }
        Ok(())
    }
}

impl TrainingSets for DynamoDbTrainingSets {
    async fn create(&self, set: &TrainingSet, items: &[SetItem]) -> Result<(), StoreError> {
        let mut entries: Vec<Item> = items
            .iter()
            .map(|entry| item_item(&set.set_id, entry))
            .collect();
        let mut listing = keys::actor_set(&set.actor_id, &set.set_id).attributes();
        listing.insert("set_id".to_owned(), s(set.set_id.as_str()));
        entries.push(listing);
        self.write_all(entries).await?;
        // The set last: a set readable at all has all its items.
        let written = self
            .client
            .put_item()
            .table_name(&self.table_name)
            .set_item(Some(set_item(set)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .remote_call(operations::SET_WRITE)
            .await;
        match written {
            Ok(_) => Ok(()),
            Err(error) if is_condition_failure(&error) => Ok(()),
            Err(error) => Err(fault(operations::SET_WRITE, error)),
        }
    }

    async fn read(
        &self,
        set_id: &SetId,
    ) -> Result<Option<(TrainingSet, Vec<SetItem>)>, StoreError> {
        let operation = operations::SET_READ;
        let mut set = None;
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table_name)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(&keys::training_set(set_id).pk))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .remote_call(operation)
                .await
                .map_err(|error| fault(operation, error))?;
            for item in page.items() {
                if text(item, "sk") == Some(keys::training_set(set_id).sk.as_str()) {
                    set = Some(read_set(item).ok_or_else(|| unreadable(operation, "set"))?);
                } else {
                    items.push(read_item(item).ok_or_else(|| unreadable(operation, "item"))?);
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        items.sort_by_key(|item| item.position);
        Ok(set.map(|set| (set, items)))
    }

    async fn read_item(
        &self,
        set_id: &SetId,
        position: u32,
    ) -> Result<Option<(TrainingSet, SetItem)>, StoreError> {
        let operation = operations::SET_ITEM_READ;
        let (set_key, item_key) = (keys::training_set(set_id), keys::set_item(set_id, position));
        let found = self
            .batch_get(vec![set_key.clone(), item_key.clone()], operation)
            .await?;
        let with_key =
            |key: &keys::ItemKey| found.iter().find(|item| text(item, "sk") == Some(&key.sk));
        match (with_key(&set_key), with_key(&item_key)) {
            (Some(set), Some(item)) => Ok(Some((
                read_set(set).ok_or_else(|| unreadable(operation, "set"))?,
                read_item(item).ok_or_else(|| unreadable(operation, "item"))?,
            ))),
            _ => Ok(None),
        }
    }

    async fn change(
        &self,
        set_id: &SetId,
        position: u32,
        from: ItemState,
        change: &ItemChange,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        self.transact_change(set_id, position, from, change, now_ms)
            .await
    }

    async fn cancel(&self, set_id: &SetId) -> Result<(), StoreError> {
        let operation = operations::SET_CANCEL;
        self.client
            .update_item()
            .table_name(&self.table_name)
            .set_key(Some(keys::training_set(set_id).attributes()))
            .update_expression("SET canceled = :yes")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .send()
            .remote_call(operation)
            .await
            .map_err(|error| fault(operation, error))?;
        Ok(())
    }

    async fn stuck(&self, now_ms: u64, limit: usize) -> Result<Vec<(SetId, u32, u64)>, StoreError> {
        let operation = operations::SET_ITEMS_STUCK;
        let output = self
            .client
            .query()
            .table_name(&self.table_name)
            .index_name(OPEN_RECORDS_INDEX)
            .key_condition_expression("#kind = :kind AND #held < :now")
            .expression_attribute_names("#kind", OPEN_KIND)
            .expression_attribute_names("#held", HELD_UNTIL)
            .expression_attribute_values(":kind", s(OPEN_ITEM))
            .expression_attribute_values(":now", n(now_ms))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .remote_call(operation)
            .await
            .map_err(|error| fault(operation, error))?;
        Ok(output
            .items()
            .iter()
            .filter_map(|item| {
                let set_id = text(item, "pk")?
                    .strip_prefix("SET#")
                    .and_then(SetId::parse)?;
                let position = u32::try_from(number(item, "position")?).ok()?;
                Some((set_id, position, number(item, HELD_UNTIL)?))
            })
            .collect())
    }

    async fn hold(
        &self,
        set_id: &SetId,
        position: u32,
        seen_until_ms: u64,
        until_ms: u64,
    ) -> Result<bool, StoreError> {
        let operation = operations::SET_ITEM_HOLD;
        let held = self
            .client
            .update_item()
            .table_name(&self.table_name)
            .set_key(Some(keys::set_item(set_id, position).attributes()))
            .update_expression("SET #held = :until")
            .condition_expression("#held = :seen AND attribute_exists(#kind)")
            .expression_attribute_names("#held", HELD_UNTIL)
            .expression_attribute_names("#kind", OPEN_KIND)
            .expression_attribute_values(":until", n(until_ms))
            .expression_attribute_values(":seen", n(seen_until_ms))
            .send()
            .remote_call(operation)
            .await;
        match held {
            Ok(_) => Ok(true),
            Err(error) if is_condition_failure(&error) => Ok(false),
            Err(error) => Err(fault(operation, error)),
        }
    }

    async fn list(&self, actor_id: &ActorId, limit: usize) -> Result<Vec<TrainingSet>, StoreError> {
        let operation = operations::SET_LIST;
        let listing = self
            .client
            .query()
            .table_name(&self.table_name)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(&keys::actor_sets(actor_id)))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .remote_call(operation)
            .await
            .map_err(|error| fault(operation, error))?;
        let ids: Vec<SetId> = listing
            .items()
            .iter()
            .filter_map(|item| text(item, "set_id").and_then(SetId::parse))
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let wanted = ids.iter().map(keys::training_set).collect();
        let mut sets: Vec<TrainingSet> = (self.batch_get(wanted, operation).await?)
            .iter()
            .filter_map(read_set)
            .collect();
        sets.sort_by(|a, b| b.set_id.cmp(&a.set_id));
        Ok(sets)
    }
}
