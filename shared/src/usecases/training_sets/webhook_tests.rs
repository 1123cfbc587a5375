//! The webhook's intake over in-memory fakes: which deliveries move an item, and that only
//! the one that moved it sends its store message.

use std::time::Duration;

use super::fakes::{Queue, Sets};
use super::{PredictionEnded, WebhookIntake, WebhookOutcome};
use crate::domain::training_set::{ItemState, SetId};
use crate::ports::{ItemChange, TrainingSets};
use crate::usecases::UseCaseError;
use crate::usecases::fakes::InstantClock;

const NOW_MS: u64 = 1_795_900_000_000;

fn intake() -> WebhookIntake<InstantClock, Sets, Queue> {
    WebhookIntake {
        clock: InstantClock,
        sets: Sets::one_queued_item(SetId::new(NOW_MS, 7), NOW_MS),
        queue: Queue::default(),
        stuck_after: Duration::from_secs(1800),
    }
}

fn succeeded(prediction_id: &str) -> PredictionEnded {
    PredictionEnded {
        set_id: SetId::new(NOW_MS, 7),
        position: 1,
        attempt: Some(1),
        prediction_id: prediction_id.to_owned(),
        seed: Some(42),
        output_url: Some(format!("https://replicate.delivery/{prediction_id}.jpg")),
    }
}

/// Moves item 1 to `to`, tracking `prediction_id`.
async fn put(intake: &WebhookIntake<InstantClock, Sets, Queue>, to: ItemState, id: &str) {
    let from = intake.sets.item().state;
    let change = ItemChange {
        prediction_id: Some(id.to_owned()),
        held_until_ms: NOW_MS + 1_000,
        ..ItemChange::to(to)
    };
    let set_id = SetId::new(NOW_MS, 7);
    assert!(
        intake
            .sets
            .change(&set_id, 1, from, &change, NOW_MS)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_delivery_moves_its_item_to_storing_once_and_a_duplicate_does_nothing() {
    let intake = intake();
    put(&intake, ItemState::Predicting, "p1").await;
    let first = intake.prediction_ended(&succeeded("p1")).await.unwrap();
    assert_eq!(first, WebhookOutcome::Storing);
    let reads = intake
        .sets
        .item_reads
        .load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(reads, 0, "a predicting item is moved without reading it");
    let item = intake.sets.item();
    assert_eq!(item.state, ItemState::Storing);
    assert_eq!(item.prediction_id.as_deref(), Some("p1"));
    let again = intake.prediction_ended(&succeeded("p1")).await.unwrap();
    assert_eq!(again, WebhookOutcome::Nothing(ItemState::Storing));

    let sent = intake.queue.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "one store message: {sent:?}");
    let told = sent[0].succeeded.as_ref().expect("a store message");
    assert_eq!(told.prediction_id, "p1");
    assert_eq!(told.output_url, "https://replicate.delivery/p1.jpg");
}

#[tokio::test]
async fn a_prediction_whose_create_answer_was_lost_is_matched_by_its_url() {
    for state in [ItemState::Creating, ItemState::Uncertain] {
        let intake = intake();
        let from = intake.sets.item().state;
        let claim = ItemChange {
            held_until_ms: NOW_MS + 1_000,
            ..ItemChange::to(state)
        };
        let set_id = SetId::new(NOW_MS, 7);
        assert!(
            intake
                .sets
                .change(&set_id, 1, from, &claim, NOW_MS)
                .await
                .unwrap()
        );
        let outcome = intake.prediction_ended(&succeeded("lost")).await.unwrap();
        assert_eq!(outcome, WebhookOutcome::Storing, "from {state:?}");
        assert_eq!(intake.sets.item().prediction_id.as_deref(), Some("lost"));
    }
}

#[tokio::test]
async fn late_foreign_failed_and_unknown_deliveries() {
    // Past storing: nothing.
    let stored = intake();
    put(&stored, ItemState::Stored, "p1").await;
    let outcome = stored.prediction_ended(&succeeded("p1")).await.unwrap();
    assert_eq!(outcome, WebhookOutcome::Nothing(ItemState::Stored));

    // Another prediction than the item's: nothing (its record lets the reconciler store it).
    let foreign = intake();
    put(&foreign, ItemState::Predicting, "p1").await;
    let outcome = foreign.prediction_ended(&succeeded("p2")).await.unwrap();
    assert_eq!(outcome, WebhookOutcome::Nothing(ItemState::Predicting));
    assert_eq!(foreign.sets.item().state, ItemState::Predicting);

    // Ended without an image: the worker is sent to end it; the item is left as it is.
    let failed = intake();
    put(&failed, ItemState::Predicting, "p1").await;
    let ended = PredictionEnded {
        output_url: None,
        ..succeeded("p1")
    };
    assert_eq!(
        failed.prediction_ended(&ended).await.unwrap(),
        WebhookOutcome::Ending
    );
    assert_eq!(failed.sets.item().state, ItemState::Predicting);
    let sent = failed.queue.sent.lock().unwrap().clone();
    assert!(sent.len() == 1 && sent[0].succeeded.is_none(), "{sent:?}");

    for quiet in [&stored, &foreign] {
        assert!(quiet.queue.sent.lock().unwrap().is_empty());
    }

    let unknown = PredictionEnded {
        position: 2,
        ..succeeded("p1")
    };
    let error = intake().prediction_ended(&unknown).await.unwrap_err();
    assert!(matches!(error, UseCaseError::SetNotFound(_)), "{error}");
}

#[tokio::test]
async fn a_queued_item_another_attempt_or_another_seed_is_not_taken() {
    let queued = intake();
    let outcome = queued.prediction_ended(&succeeded("p1")).await.unwrap();
    assert_eq!(outcome, WebhookOutcome::Nothing(ItemState::Queued));

    for ended in [
        PredictionEnded {
            attempt: Some(2),
            ..succeeded("p1")
        },
        PredictionEnded {
            seed: Some(43),
            ..succeeded("p1")
        },
    ] {
        let intake = intake();
        put(&intake, ItemState::Predicting, "p1").await;
        let outcome = intake.prediction_ended(&ended).await.unwrap();
        assert_eq!(
            outcome,
            WebhookOutcome::Nothing(ItemState::Predicting),
            "{ended:?}"
        );
        assert!(intake.queue.sent.lock().unwrap().is_empty());
    }

    // A failed prediction's late delivery for a stored item sends nothing either.
    let stored = intake();
    put(&stored, ItemState::Stored, "p1").await;
    let failed = PredictionEnded {
        output_url: None,
        ..succeeded("p1")
    };
    let outcome = stored.prediction_ended(&failed).await.unwrap();
    assert_eq!(outcome, WebhookOutcome::Nothing(ItemState::Stored));
    assert!(stored.queue.sent.lock().unwrap().is_empty());
}
