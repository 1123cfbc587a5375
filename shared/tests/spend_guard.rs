//! The spend guard against DynamoDB (moto), with the clock port: a unit counted late on one
//! UTC day and refunded after midnight goes back to the day it was counted.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use shared::adapters::spend::{DailyCaps, DynamoDbSpendGuard};
use shared::ports::{Clock, SpendGuard};
use testkit::{Moto, TABLE_NAME};

/// A clock that says what the test sets.
#[derive(Clone)]
struct SetClock(Arc<Mutex<String>>);

impl SetClock {
    fn at(now: &str) -> Self {
        Self(Arc::new(Mutex::new(now.to_owned())))
    }

    fn set(&self, now: &str) {
        *self.0.lock().unwrap() = now.to_owned();
    }
}

impl Clock for SetClock {
    fn now_rfc3339(&self) -> String {
        self.0.lock().unwrap().clone()
    }

    fn now_epoch_ms(&self) -> u64 {
        0
    }

    fn now(&self) -> std::time::Instant {
        std::time::Instant::now()
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

async fn used(client: &aws_sdk_dynamodb::Client, day: &str, sk: &str) -> Option<i64> {
    let item = client
        .get_item()
        .table_name(TABLE_NAME)
        .key("pk", AttributeValue::S(format!("BUDGET#{day}")))
        .key("sk", AttributeValue::S(sk.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem")
        .item?;
    item.get("used")?.as_n().ok()?.parse().ok()
}

#[tokio::test]
async fn a_refund_after_midnight_goes_back_to_the_day_it_was_counted() {
    let moto = Moto::start().await;
    let sdk = moto.sdk_config().await;
    testkit::create_table_and_bucket(&sdk).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let clock = SetClock::at("2026-12-01T23:59:59Z");
    let caps = DailyCaps {
        service: Some(1),
        per_actor: Some(1),
    };
    let guard = DynamoDbSpendGuard::new(client.clone(), TABLE_NAME, caps, false, clock.clone());

    let admitted = guard.admit("alice", 1).await.unwrap().expect("admitted");
    assert_eq!(used(&client, "2026-12-01", "SERVICE").await, Some(1));
    assert!(
        guard.admit("alice", 1).await.unwrap().is_err(),
        "the cap of 1"
    );

    clock.set("2026-12-02T00:00:01Z");
    guard.refund(&admitted).await.unwrap();
    assert_eq!(used(&client, "2026-12-01", "SERVICE").await, Some(0));
    assert_eq!(used(&client, "2026-12-01", "ACTOR#alice").await, Some(0));
    assert_eq!(used(&client, "2026-12-02", "SERVICE").await, None);
    assert_eq!(used(&client, "2026-12-02", "ACTOR#alice").await, None);

    // The new day has its own count, and the old day's unit is free again.
    guard.admit("alice", 1).await.unwrap().expect("the new day");
    assert_eq!(used(&client, "2026-12-02", "ACTOR#alice").await, Some(1));
}

#[tokio::test]
async fn units_are_admitted_all_or_none_and_given_back_together() {
    let moto = Moto::start().await;
    let sdk = moto.sdk_config().await;
    testkit::create_table_and_bucket(&sdk).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let clock = SetClock::at("2026-12-02T10:00:00Z");
    let caps = DailyCaps {
        service: Some(500),
        per_actor: Some(100),
    };
    let guard = DynamoDbSpendGuard::new(client.clone(), TABLE_NAME, caps, false, clock);

    guard.admit("alice", 30).await.unwrap().expect("30 of 100");
    let refused = guard.admit("alice", 71).await.unwrap();
    assert!(refused.is_err(), "71 more would pass the cap of 100");
    assert_eq!(used(&client, "2026-12-02", "ACTOR#alice").await, Some(30));
    assert_eq!(used(&client, "2026-12-02", "SERVICE").await, Some(30));
    assert!(
        guard.admit("bob", 101).await.unwrap().is_err(),
        "over the cap alone"
    );

    let seventy = guard
        .admit("alice", 70)
        .await
        .unwrap()
        .expect("exactly to the cap");
    assert_eq!(used(&client, "2026-12-02", "ACTOR#alice").await, Some(100));
    guard.refund(&seventy).await.unwrap();
    assert_eq!(used(&client, "2026-12-02", "ACTOR#alice").await, Some(30));
    assert_eq!(used(&client, "2026-12-02", "SERVICE").await, Some(30));
    assert!(!guard.switched_off().await.unwrap());
}
