//! DynamoDB adapter for training sets (docs/data-model.md): the set at `SET#{set_id}` / `SET`
//! with its counts by item state (`n_queued`, `n_creating`, ...), each item at
//! `SET#{set_id}` / `ITEM#{position:03}`, and an entry per set in the actor's listing at
//! `SETS#{actor_id}` / `{set_id}` (ULIDs sort newest last). One query reads a set whole; an
//! item's state changes only in a transaction that checks its old state and moves the set's
//! counts with it.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, PutRequest, TransactWriteItem, Update, WriteRequest,
};

use super::dynamodb::attributes::{Item, fault, is_condition_failure, n, number, s, text};
use super::dynamodb::keys::{self, HELD_UNTIL, OPEN_ITEM, OPEN_KIND, OPEN_RECORDS_INDEX};
use crate::adapters::operations;
use crate::domain::actor::ActorId;
use crate::domain::training_set::{ItemState, SetCounts, SetId};
use crate::ports::{ItemChange, ItemImage, SetItem, StoreError, TrainingSet, TrainingSets};
use crate::retry::Backoff;
use crate::timing::{self, RemoteCallExt};

/// The most items one BatchWriteItem takes.
const BATCH_WRITE_MAX: usize = 25;

/// Training sets in the service's table.
#[derive(Debug, Clone)]
pub struct DynamoDbTrainingSets {
    client: Client,
    table_name: String,
}

impl DynamoDbTrainingSets {
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

    /// The transaction of one item's change; `Ok(false)` when its state was not `from`.
    async fn transact_change(
        &self,
        set_id: &SetId,
        position: u32,
        from: ItemState,
        change: &ItemChange,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let build = |error| fault(operations::SET_ITEM_CHANGE, error);
        let mut sets = vec!["#state = :to", "state_since = :now"];
        let mut removes = Vec::new();
        // An unfinished item is in the open-records index until its hold; a final one leaves.
        if change.to.is_final() {
            removes.extend(["#kind", "#held"]);
        } else {
            sets.extend(["#kind = :kind", "#held = :held"]);
        }
        let mut item = Update::builder()
            .expression_attribute_names("#kind", OPEN_KIND)
            .expression_attribute_names("#held", HELD_UNTIL)
            .table_name(&self.table_name)
            .set_key(Some(keys::set_item(set_id, position).attributes()))
            .condition_expression("#state = :from")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":from", s(from.as_str()))
            .expression_attribute_values(":to", s(change.to.as_str()))
            .expression_attribute_values(":now", n(now_ms));
        if !change.to.is_final() {
            item = item
                .expression_attribute_values(":kind", s(OPEN_ITEM))
                .expression_attribute_values(":held", n(change.held_until_ms));
        }
        if let Some(prediction_id) = &change.prediction_id {
            sets.push("prediction_id = :prediction");
            item = item.expression_attribute_values(":prediction", s(prediction_id));
        }
        if let Some(image) = &change.image {
            sets.extend([
                "image_index = :index",
                "filename = :filename",
                "s3_key = :key",
            ]);
            item = item
                .expression_attribute_values(":index", n(image.index))
                .expression_attribute_values(":filename", s(&image.filename))
                .expression_attribute_values(":key", s(&image.s3_key));
        }
        match &change.error {
            Some(error) => {
                sets.push("#error = :error");
                item = item
                    .expression_attribute_names("#error", "error")
                    .expression_attribute_values(":error", s(error));
            }
            None => {
                removes.push("#error");
                item = item.expression_attribute_names("#error", "error");
            }
        }
        if change.requeue {
            sets.push("attempt = attempt + :one");
            removes.extend(["prediction_id", "image_index", "filename", "s3_key"]);
            item = item.expression_attribute_values(":one", n(1));
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        let item = item.update_expression(expression).build().map_err(build)?;
        let counts = Update::builder()
            .table_name(&self.table_name)
            .set_key(Some(keys::training_set(set_id).attributes()))
            .update_expression("ADD #from :minus, #to :plus")
            .expression_attribute_names("#from", count_attribute(from))
            .expression_attribute_names("#to", count_attribute(change.to))
            .expression_attribute_values(":minus", AttributeValue::N("-1".to_owned()))
            .expression_attribute_values(":plus", n(1))
            .build()
            .map_err(build)?;
        let policy = Backoff::BUDGET_CONFLICT;
        let mut attempt = 1;
        loop {
            let sent = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().update(item.clone()).build())
                .transact_items(TransactWriteItem::builder().update(counts.clone()).build())
                .send()
                .remote_call(operations::SET_ITEM_CHANGE)
                .await;
            let error = match sent {
                Ok(_) => return Ok(true),
                Err(error) => error,
            };
            let reasons: Vec<String> = match error.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(canceled)) => canceled
                    .cancellation_reasons()
                    .iter()
                    .filter_map(|reason| reason.code().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            };
            if reasons.first().map(String::as_str) == Some("ConditionalCheckFailed") {
                return Ok(false);
            }
            let conflict = reasons.iter().any(|code| code == "TransactionConflict")
                || matches!(
                    error.as_service_error(),
                    Some(TransactWriteItemsError::TransactionInProgressException(_))
                );
            if conflict && policy.allows_another(attempt) {
                timing::pause_before_retry(policy.delay(attempt)).await;
                attempt += 1;
                continue;
            }
            return Err(StoreError {
                operation: operations::SET_ITEM_CHANGE,
                detail: DisplayErrorContext(error).to_string(),
            });
        }
    }
}

/// The set's attribute counting items in `state`.
fn count_attribute(state: ItemState) -> String {
    format!("n_{}", state.as_str())
}

fn set_item(set: &TrainingSet) -> Item {
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

fn item_item(set_id: &SetId, entry: &SetItem) -> Item {
    let mut item = keys::set_item(set_id, entry.position).attributes();
    item.insert("position".to_owned(), n(u64::from(entry.position)));
    if let Some(prompt_id) = &entry.prompt_id {
        item.insert("prompt_id".to_owned(), s(prompt_id));
    }
    if let Some(prompt) = &entry.prompt {
        item.insert("prompt".to_owned(), s(prompt));
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

fn read_set(item: &Item) -> Option<TrainingSet> {
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

fn read_item(item: &Item) -> Option<SetItem> {
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

fn unreadable(operation: &'static str, what: &str) -> StoreError {
    StoreError {
        operation,
        detail: format!("unreadable {what}"),
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
        let get = |key: keys::ItemKey| {
            self.client
                .get_item()
                .table_name(&self.table_name)
                .set_key(Some(key.attributes()))
                .consistent_read(true)
                .send()
                .remote_call(operation)
        };
        let (set, item) = tokio::join!(
            get(keys::training_set(set_id)),
            get(keys::set_item(set_id, position))
        );
        let set = set.map_err(|error| fault(operation, error))?.item;
        let item = item.map_err(|error| fault(operation, error))?.item;
        match (set, item) {
            (Some(set), Some(item)) => Ok(Some((
                read_set(&set).ok_or_else(|| unreadable(operation, "set"))?,
                read_item(&item).ok_or_else(|| unreadable(operation, "item"))?,
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
        let mut wanted = KeysAndAttributes::builder().consistent_read(true);
        for id in &ids {
            wanted = wanted.keys(keys::training_set(id).attributes());
        }
        let wanted = wanted.build().map_err(|error| fault(operation, error))?;
        let mut sets = Vec::new();
        let mut request = Some(wanted);
        while let Some(keys_left) = request.take() {
            let output = self
                .client
                .batch_get_item()
                .request_items(&self.table_name, keys_left)
                .send()
                .remote_call(operation)
                .await
                .map_err(|error| fault(operation, error))?;
            if let Some(found) = output
                .responses
                .and_then(|mut r| r.remove(&self.table_name))
            {
                sets.extend(found.iter().filter_map(read_set));
            }
            request = output
                .unprocessed_keys
                .and_then(|mut left| left.remove(&self.table_name))
                .filter(|left| !left.keys().is_empty());
        }
        sets.sort_by(|a, b| b.set_id.cmp(&a.set_id));
        Ok(sets)
    }
}
