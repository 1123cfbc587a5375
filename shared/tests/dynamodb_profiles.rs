//! The DynamoDB actor-profile adapter against a moto server over HTTP.

use aws_sdk_dynamodb::types::AttributeValue;
use shared::adapters::dynamodb::DynamoDbActorProfiles;
use shared::domain::actor::{ActorId, ActorProfile};
use shared::ports::ActorProfiles;
use testkit::{Moto, SeedProfile};

fn id(value: &str) -> ActorId {
    ActorId::parse(value).unwrap()
}

#[tokio::test]
async fn reads_profiles_and_reports_missing_ones_as_none() {
    let moto = Moto::start().await;
    let sdk = moto.sdk_config().await;
    testkit::create_table_and_bucket(&sdk).await;
    testkit::put_profile(
        &sdk,
        &SeedProfile {
            actor_id: "actor_1",
            actor_name: "Actor One",
            sex: Some("female"),
            base_image_key: "system_actors/base_images/actor_1.jpg",
        },
    )
    .await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    // A profile whose `sex` has the wrong type is read without it.
    client
        .put_item()
        .table_name(testkit::TABLE_NAME)
        .item("pk", AttributeValue::S("ACTOR#actor_2".into()))
        .item("sk", AttributeValue::S("PROFILE".into()))
        .item("actor_name", AttributeValue::S("actor_2".into()))
        .item("sex", AttributeValue::N("1".into()))
        .item("trigger_word", AttributeValue::S("zxq_two".into()))
        .send()
        .await
        .unwrap();
    let profiles = DynamoDbActorProfiles::new(client, testkit::TABLE_NAME);

    let first = profiles.profile(&id("actor_1")).await.unwrap();
    assert_eq!(
        first,
        Some(ActorProfile {
            actor_name: Some("Actor One".into()),
            sex: Some("female".into()),
            base_image_key: Some("system_actors/base_images/actor_1.jpg".into()),
            trigger_word: None,
        })
    );
    let second = profiles.profile(&id("actor_2")).await.unwrap();
    assert_eq!(
        second,
        Some(ActorProfile {
            actor_name: Some("actor_2".into()),
            sex: None,
            base_image_key: None,
            trigger_word: Some("zxq_two".into()),
        })
    );
    assert_eq!(profiles.profile(&id("nobody")).await.unwrap(), None);
}

#[tokio::test]
async fn a_missing_table_is_a_store_error_naming_the_operation() {
    let moto = Moto::start().await;
    let sdk = moto.sdk_config().await;
    let profiles = DynamoDbActorProfiles::new(aws_sdk_dynamodb::Client::new(&sdk), "no-such-table");
    let error = profiles.profile(&id("actor_1")).await.unwrap_err();
    assert_eq!(error.operation, "DynamoDB GetItem (profile)");
    assert!(
        error.detail.contains("ResourceNotFound"),
        "{}",
        error.detail
    );
}
