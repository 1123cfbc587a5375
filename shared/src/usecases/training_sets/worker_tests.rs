//! The worker's step over in-memory fakes: what each state leads to, what is paid and what
//! is given back. (The DynamoDB and SQS adapters are tested through the binaries.)

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::fakes::{Queue, Sets, Spend};
use super::{ItemWebhooks, NextStep, TrainingSetWork};
use crate::domain::training_set::{ItemState, SetId};
use crate::ports::{ItemChange, ItemMessage, PredictionState, SetItem, SucceededPrediction};
use crate::usecases::fake_records::Records;
use crate::usecases::fakes::{Counter, Generator, InstantClock, Objects, Profiles, service};

type Work = TrainingSetWork<
    Profiles,
    Objects,
    Counter,
    Generator,
    InstantClock,
    Records,
    (),
    Spend,
    Sets,
    Queue,
>;

const NOW_MS: u64 = 1_795_900_000_000;

fn set_id() -> SetId {
    SetId::new(NOW_MS, 7)
}

/// A set of one queued item over fresh fakes; `fail` makes its prediction fail.
fn work(spend: Spend, fail: bool) -> Work {
    TrainingSetWork {
        generation: service(Objects::default(), fail),
        idempotency: (),
        spend,
        sets: Sets::one_queued_item(set_id(), NOW_MS),
        queue: Queue::default(),
        stuck_after: Duration::from_secs(1800),
        webhooks: None,
    }
}

fn message() -> ItemMessage {
    ItemMessage::next_step(set_id(), 1)
}

fn item(work: &Work) -> SetItem {
    work.sets.item()
}

/// The invocation's deadline in the tests: a minute on.
const DEADLINE_MS: u64 = NOW_MS + 60_000;

#[tokio::test]
async fn an_item_is_created_without_waiting_then_checked_and_stored_once() {
    let work = work(Spend::default(), false);
    let first = work.advance(&message(), DEADLINE_MS).await.unwrap();
    assert_eq!(
        first,
        NextStep::After(Duration::from_secs(2)),
        "no wait on the model"
    );
    let created = item(&work);
    assert_eq!(created.state, ItemState::Predicting);
    let prediction_id = created.prediction_id.clone().unwrap();
    let record = work
        .generation
        .records
        .get(&prediction_id)
        .expect("its record");
    assert_eq!(record.state, PredictionState::Open);

    assert_eq!(
        work.advance(&message(), DEADLINE_MS).await.unwrap(),
        NextStep::Done
    );
    let stored = item(&work);
    assert_eq!(stored.state, ItemState::Stored);
    assert_eq!(stored.image.as_ref().map(|image| image.index), Some(1));
    assert!(matches!(
        work.generation.records.get(&prediction_id).unwrap().state,
        PredictionState::Stored { listed: true, .. }
    ));

    // A duplicate delivery of the final item does nothing.
    assert_eq!(
        work.advance(&message(), DEADLINE_MS).await.unwrap(),
        NextStep::Done
    );
    assert_eq!(work.generation.generator.calls.load(Ordering::SeqCst), 1);
    let counts = work.sets.set.lock().unwrap().as_ref().unwrap().counts;
    assert_eq!((counts.of(ItemState::Stored), counts.total()), (1, 1));
    assert!(work.spend.refunded.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_canceled_set_or_the_kill_switch_ends_a_queued_item_unpaid_and_refunded() {
    let canceled = work(Spend::default(), false);
    canceled.sets.set.lock().unwrap().as_mut().unwrap().canceled = true;
    assert_eq!(
        canceled.advance(&message(), DEADLINE_MS).await.unwrap(),
        NextStep::Done
    );
    assert_eq!(item(&canceled).state, ItemState::Canceled);

    let switched_off = work(
        Spend {
            switched_off: true,
            ..Spend::default()
        },
        false,
    );
    assert_eq!(
        switched_off.advance(&message(), DEADLINE_MS).await.unwrap(),
        NextStep::Done
    );
    let failed = item(&switched_off);
    assert_eq!(failed.state, ItemState::Failed);
    assert!(failed.error.unwrap().contains("switched off"));

    for work in [&canceled, &switched_off] {
        assert_eq!(work.generation.generator.calls.load(Ordering::SeqCst), 0);
        let refunded = work.spend.refunded.lock().unwrap().clone();
        assert_eq!(
            refunded,
            [format!("{}001001", set_id())],
            "one unit, named by the item"
        );
    }
}

#[tokio::test]
async fn a_claim_holds_until_its_deadline_then_the_item_is_uncertain_never_created() {
    let work = work(Spend::default(), false);
    work.sets.items.lock().unwrap().get_mut(&1).unwrap().state = ItemState::Creating;
    {
        let mut set = work.sets.set.lock().unwrap();
        let counts = &mut set.as_mut().unwrap().counts;
        counts.set(ItemState::Queued, 0);
        counts.set(ItemState::Creating, 1);
    }
    // Held a second past the fake clock's now: another delivery comes back after it.
    let step = work.advance(&message(), DEADLINE_MS).await.unwrap();
    assert_eq!(step, NextStep::After(Duration::from_secs(2)));
    assert_eq!(item(&work).state, ItemState::Creating);

    work.sets
        .items
        .lock()
        .unwrap()
        .get_mut(&1)
        .unwrap()
        .held_until_ms = Some(NOW_MS - 1);
    assert_eq!(
        work.advance(&message(), DEADLINE_MS).await.unwrap(),
        NextStep::Done
    );
    let uncertain = item(&work);
    assert_eq!(uncertain.state, ItemState::Uncertain);
    assert!(uncertain.error.unwrap().contains("may exist"));
    assert_eq!(work.generation.generator.calls.load(Ordering::SeqCst), 0);
    assert!(
        work.spend.refunded.lock().unwrap().is_empty(),
        "it may have paid"
    );
}

#[tokio::test]
async fn a_failed_prediction_fails_its_item_and_closes_its_record_without_a_refund() {
    let work = work(Spend::default(), true);
    work.advance(&message(), DEADLINE_MS).await.unwrap();
    let prediction_id = item(&work).prediction_id.unwrap();
    assert_eq!(
        work.advance(&message(), DEADLINE_MS).await.unwrap(),
        NextStep::Done
    );
    let failed = item(&work);
    assert_eq!(failed.state, ItemState::Failed);
    assert!(failed.error.unwrap().contains("NSFW"));
    assert!(matches!(
        work.generation.records.get(&prediction_id).unwrap().state,
        PredictionState::Failed { .. }
    ));
    assert!(
        work.spend.refunded.lock().unwrap().is_empty(),
        "a failed prediction was paid"
    );
}

/// The item moved to `storing` by a webhook for `prediction_id`, as the intake does.
async fn told_storing(work: &Work, prediction_id: &str, since_ms: u64) {
    use crate::ports::TrainingSets;
    let from = item(work).state;
    let change = ItemChange {
        prediction_id: Some(prediction_id.to_owned()),
        held_until_ms: NOW_MS + 1_800_000,
        ..ItemChange::to(ItemState::Storing)
    };
    assert!(
        work.sets
            .change(&set_id(), 1, from, &change, since_ms)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn with_webhooks_the_create_names_the_item_and_the_first_check_waits_for_the_webhook() {
    let mut work = work(Spend::default(), true);
    work.webhooks = Some(ItemWebhooks {
        url: "https://api.example/api/webhooks/replicate".to_owned(),
        first_check: Duration::from_secs(90),
    });
    let step = work.advance(&message(), DEADLINE_MS).await.unwrap();
    assert_eq!(step, NextStep::After(Duration::from_secs(90)));
    assert_eq!(
        work.webhooks.as_ref().unwrap().for_item(&set_id(), 3, 2),
        format!(
            "https://api.example/api/webhooks/replicate?set={}&item=3&attempt=2",
            set_id()
        )
    );
    let prediction_id = item(&work).prediction_id.unwrap();

    // The store message: stored from what the webhook said; the fake's reads would fail.
    told_storing(&work, &prediction_id, NOW_MS).await;
    let store = ItemMessage {
        succeeded: Some(SucceededPrediction {
            prediction_id: prediction_id.clone(),
            output_url: format!("https://replicate.delivery/{prediction_id}.jpg"),
        }),
        ..message()
    };
    assert_eq!(
        work.advance(&store, DEADLINE_MS).await.unwrap(),
        NextStep::Done
    );
    let stored = item(&work);
    assert_eq!(stored.state, ItemState::Stored, "{:?}", stored.error);
    assert_eq!(stored.image.map(|image| image.index), Some(1));

    // The check that follows, and a duplicate store message, find nothing to do.
    for again in [message(), store] {
        assert_eq!(
            work.advance(&again, DEADLINE_MS).await.unwrap(),
            NextStep::Done
        );
    }
    assert_eq!(item(&work).state, ItemState::Stored);
    assert_eq!(work.generation.generator.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_storing_item_waits_for_its_storer_then_is_taken_over() {
    let work = work(Spend::default(), false);
    work.advance(&message(), DEADLINE_MS).await.unwrap();
    let prediction_id = item(&work).prediction_id.unwrap();
    // Just moved by a webhook: a check comes back after the store's hold.
    told_storing(&work, &prediction_id, NOW_MS - 20_000).await;
    let step = work.advance(&message(), DEADLINE_MS).await.unwrap();
    assert_eq!(step, NextStep::After(Duration::from_secs(41)));
    assert_eq!(item(&work).state, ItemState::Storing);

    // Its store message lost a minute ago: the check stores it.
    let work = self::work(Spend::default(), false);
    work.advance(&message(), DEADLINE_MS).await.unwrap();
    let prediction_id = item(&work).prediction_id.unwrap();
    told_storing(&work, &prediction_id, NOW_MS - 61_000).await;
    assert_eq!(
        work.advance(&message(), DEADLINE_MS).await.unwrap(),
        NextStep::Done
    );
    assert_eq!(item(&work).state, ItemState::Stored);
}
