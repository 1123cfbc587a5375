//! DynamoDB adapter for the actor profiles (`pk = ACTOR#{actorId}`, `sk = PROFILE`).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::domain::actor::{ActorId, ActorProfile};
use crate::ports::{ActorProfiles, StoreError};

/// The sort key of an actor's profile item.
const PROFILE_SK: &str = "PROFILE";

/// The partition key of everything the table keeps about one actor.
pub fn actor_pk(actor_id: &ActorId) -> String {
    format!("ACTOR#{actor_id}")
}

/// Actor profiles in the service's DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoDbActorProfiles {
    client: Client,
    table_name: String,
}

impl DynamoDbActorProfiles {
    /// Profiles in `table_name`, read with `client`.
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        Self {
            client,
            table_name: table_name.into(),
        }
    }
}

impl ActorProfiles for DynamoDbActorProfiles {
    async fn profile(&self, actor_id: &ActorId) -> Result<Option<ActorProfile>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table_name)
            .key("pk", AttributeValue::S(actor_pk(actor_id)))
            .key("sk", AttributeValue::S(PROFILE_SK.to_owned()))
            .projection_expression("#name, #sex, #base")
            .expression_attribute_names("#name", "actor_name")
            .expression_attribute_names("#sex", "sex")
            .expression_attribute_names("#base", "base_image_key")
            .send()
            .await
            .map_err(|error| StoreError {
                operation: "DynamoDB GetItem",
                detail: DisplayErrorContext(error).to_string(),
            })?;
        Ok(output.item.map(|item| profile_from_item(actor_id, &item)))
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
    }
}
