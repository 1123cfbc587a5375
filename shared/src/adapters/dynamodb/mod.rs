//! DynamoDB adapters: actor profiles and the image counters. Every key shape is in [`keys`].

pub mod attributes;
pub mod keys;

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use attributes::{fault, is_condition_failure};

use crate::adapters::coalesced::CoalescedReads;
use crate::adapters::operations;
use crate::domain::actor::{ActorId, ActorProfile};
use crate::ports::{ActorProfiles, IndexCounter, StoreError};
use crate::timing::RemoteCallExt;

/// Actor profiles in the service's DynamoDB table; concurrent reads of one actor share one
/// `GetItem`.
#[derive(Debug, Clone)]
pub struct DynamoDbActorProfiles {
    client: Client,
    table_name: String,
    reads: Arc<CoalescedReads<ActorId, Option<ActorProfile>>>,
}

impl DynamoDbActorProfiles {
    /// Profiles in `table_name`, read with `client`.
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        Self {
            client,
            table_name: table_name.into(),
            reads: Arc::default(),
        }
    }

    async fn read(&self, actor_id: &ActorId) -> Result<Option<ActorProfile>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table_name)
            .set_key(Some(keys::actor_profile(actor_id).attributes()))
            .projection_expression("#name, #sex, #base, #word")
            .expression_attribute_names("#name", "actor_name")
            .expression_attribute_names("#sex", "sex")
            .expression_attribute_names("#base", "base_image_key")
            .expression_attribute_names("#word", "trigger_word")
            .send()
            .remote_call(operations::PROFILE_READ)
            .await
            .map_err(|error| StoreError {
                operation: operations::PROFILE_READ,
                detail: DisplayErrorContext(error).to_string(),
            })?;
        Ok(output.item.map(|item| profile_from_item(actor_id, &item)))
    }
}

impl ActorProfiles for DynamoDbActorProfiles {
    async fn profile(&self, actor_id: &ActorId) -> Result<Option<ActorProfile>, StoreError> {
        self.reads.read(actor_id, self.read(actor_id)).await
    }
}

/// Reads the profile's string attributes. An attribute of another type is operator data the
/// service cannot use: it is logged and treated as absent rather than failing the request.
fn profile_from_item(actor_id: &ActorId, item: &HashMap<String, AttributeValue>) -> ActorProfile {
    let text = |name: &str| match item.get(name) {
        None => None,
        Some(AttributeValue::S(value)) => Some(value.clone()),
        Some(_) => {
            tracing::warn!(actor = %actor_id, attribute = name, "profile attribute is not a string; ignored");
            None
        }
    };
    ActorProfile {
        actor_name: text("actor_name"),
        sex: text("sex"),
        base_image_key: text("base_image_key"),
        trigger_word: text("trigger_word"),
    }
}

/// The per-actor image counter: item `pk = IMAGES#{actor_name}`, `sk = COUNTER`, number
/// attribute `last_index`. Keyed by the actor's name because the images' folder and file names
/// are.
#[derive(Debug, Clone)]
pub struct DynamoDbIndexCounter {
    client: Client,
    table_name: String,
}

impl DynamoDbIndexCounter {
    /// The counter in `table_name`, reached with `client`.
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        Self {
            client,
            table_name: table_name.into(),
        }
    }
}

impl IndexCounter for DynamoDbIndexCounter {
    async fn take_next(&self, actor_name: &str) -> Result<Option<u64>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table_name)
            .set_key(Some(keys::image_counter(actor_name).attributes()))
            .update_expression("ADD last_index :one")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":one", AttributeValue::N("1".to_owned()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .remote_call(operations::COUNTER_TAKE)
            .await;
        let output = match result {
            Ok(output) => output,
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                return Ok(None);
            }
            Err(error) => {
                return Err(StoreError {
                    operation: operations::COUNTER_TAKE,
                    detail: DisplayErrorContext(error).to_string(),
                });
            }
        };
        let index = output
            .attributes()
            .and_then(|attributes| attributes.get("last_index"))
            .and_then(|value| value.as_n().ok())
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| StoreError {
                operation: operations::COUNTER_TAKE,
                detail: "the counter's last_index is not a number".to_owned(),
            })?;
        Ok(Some(index))
    }

    async fn seed(&self, actor_name: &str, highest: u64) -> Result<(), StoreError> {
        let mut item = keys::image_counter(actor_name).attributes();
        item.insert(
            "last_index".to_owned(),
            AttributeValue::N(highest.to_string()),
        );
        let result = self
            .client
            .put_item()
            .table_name(&self.table_name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .remote_call(operations::COUNTER_SEED)
            .await;
        match result {
            Ok(_) => Ok(()),
            // Someone else seeded it first: theirs stands.
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(error) => Err(StoreError {
                operation: operations::COUNTER_SEED,
                detail: DisplayErrorContext(error).to_string(),
            }),
        }
    }

    async fn raise(&self, actor_name: &str, highest: u64) -> Result<(), StoreError> {
        let raised = self
            .client
            .update_item()
            .table_name(&self.table_name)
            .set_key(Some(keys::image_counter(actor_name).attributes()))
            .update_expression("SET last_index = :highest")
            .condition_expression("attribute_not_exists(pk) OR last_index < :highest")
            .expression_attribute_values(":highest", AttributeValue::N(highest.to_string()))
            .send()
            .remote_call(operations::COUNTER_RAISE)
            .await;
        match raised {
            Ok(_) => Ok(()),
            // Already past it.
            Err(error) if is_condition_failure(&error) => Ok(()),
            Err(error) => Err(fault(operations::COUNTER_RAISE, error)),
        }
    }
}
