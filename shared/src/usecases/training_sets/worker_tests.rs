//! The worker's step over in-memory fakes: what each state leads to, what is paid and what
//! is given back. (The DynamoDB and SQS adapters are tested through the binaries.)

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{NextStep, TrainingSetWork};
use crate::domain::actor::ActorId;
use crate::domain::training_set::{ItemState, SetCounts, SetId};
use crate::ports::{
    Admission, ItemChange, ItemMessage, ItemQueue, PredictionState, SetItem, SpendGuard,
    SpendRefusal, StoreError, TrainingSet, TrainingSets,
};
use crate::usecases::fake_records::Records;
use crate::usecases::fakes::{Counter, Generator, InstantClock, Objects, Profiles, service};

/// One set in memory; changes are conditional, as the adapter's transaction is.
#[derive(Default)]
struct Sets {
    set: Mutex<Option<TrainingSet>>,
    items: Mutex<HashMap<u32, SetItem>>,
}

impl TrainingSets for Sets {
    async fn create(&self, set: &TrainingSet, items: &[SetItem]) -> Result<(), StoreError> {
        *self.set.lock().unwrap() = Some(set.clone());
        let mut stored = self.items.lock().unwrap();
        for item in items {
            stored.insert(item.position, item.clone());
        }
        Ok(())
    }

    async fn read(&self, _: &SetId) -> Result<Option<(TrainingSet, Vec<SetItem>)>, StoreError> {
        let set = self.set.lock().unwrap().clone();
        let mut items: Vec<SetItem> = self.items.lock().unwrap().values().cloned().collect();
        items.sort_by_key(|item| item.position);
        Ok(set.map(|set| (set, items)))
    }

    async fn read_item(
        &self,
        _: &SetId,
        position: u32,
    ) -> Result<Option<(TrainingSet, SetItem)>, StoreError> {
        let set = self.set.lock().unwrap().clone();
        let item = self.items.lock().unwrap().get(&position).cloned();
        Ok(set.zip(item))
    }

    async fn change(
        &self,
        _: &SetId,
        position: u32,
        from: ItemState,
        change: &ItemChange,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let mut items = self.items.lock().unwrap();
        let Some(item) = items.get_mut(&position).filter(|item| item.state == from) else {
            return Ok(false);
        };
        item.state = change.to;
        item.state_since_ms = now_ms;
        item.held_until_ms = (!change.to.is_final()).then_some(change.held_until_ms);
        item.error = change.error.clone();
        if let Some(id) = &change.prediction_id {
            item.prediction_id = Some(id.clone());
        }
        if let Some(image) = &change.image {
            item.image = Some(image.clone());
        }
        let mut set = self.set.lock().unwrap();
        if let Some(set) = set.as_mut() {
            set.counts.set(from, set.counts.of(from) - 1);
            set.counts.set(change.to, set.counts.of(change.to) + 1);
        }
        Ok(true)
    }

    async fn cancel(&self, _: &SetId) -> Result<(), StoreError> {
        if let Some(set) = self.set.lock().unwrap().as_mut() {
            set.canceled = true;
        }
        Ok(())
    }

    async fn stuck(&self, _: u64, _: usize) -> Result<Vec<(SetId, u32, u64)>, StoreError> {
        Ok(Vec::new())
    }

    async fn hold(&self, _: &SetId, _: u32, _: u64, _: u64) -> Result<bool, StoreError> {
        Ok(false)
    }

    async fn list(&self, _: &ActorId, _: usize) -> Result<Vec<TrainingSet>, StoreError> {
        Ok(self.set.lock().unwrap().iter().cloned().collect())
    }
}

/// The spend guard's kill switch and the units it gave back.
#[derive(Default)]
struct Spend {
    switched_off: bool,
    refunded: Mutex<Vec<String>>,
}

impl SpendGuard for Spend {
    async fn admit(&self, _: &str, _: u64) -> Result<Result<Admission, SpendRefusal>, StoreError> {
        Ok(Err(SpendRefusal::Disabled))
    }

    async fn refund(&self, admission: &Admission) -> Result<(), StoreError> {
        self.refunded
            .lock()
            .unwrap()
            .push(admission.refund_token.clone());
        Ok(())
    }

    async fn switched_off(&self) -> Result<bool, StoreError> {
        Ok(self.switched_off)
    }
}

struct NoQueue;

impl ItemQueue for NoQueue {
    async fn send(&self, _: &[ItemMessage]) -> Result<(), StoreError> {
        Ok(())
    }
}

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
    NoQueue,
>;

const NOW_MS: u64 = 1_795_900_000_000;

fn set_id() -> SetId {
    SetId::new(NOW_MS, 7)
}

/// A set of one queued item over fresh fakes; `fail` makes its prediction fail.
fn work(spend: Spend, fail: bool) -> Work {
    let set = TrainingSet {
        set_id: set_id(),
        actor_id: ActorId::parse("actor_a").unwrap(),
        actor_name: "actor_a".to_owned(),
        requested_actor_name: None,
        base_image_path: None,
        created_by: "jwt:artist".to_owned(),
        created_at: "2026-11-28T00:00:00Z".to_owned(),
        budget_day: "2026-11-28".to_owned(),
        counts: SetCounts::all_queued(1),
        canceled: false,
    };
    let item = SetItem {
        position: 1,
        prompt_id: Some("bw_charcoal".to_owned()),
        prompt: None,
        seed: 42,
        state: ItemState::Queued,
        state_since_ms: NOW_MS,
        held_until_ms: Some(NOW_MS + 1_000),
        attempt: 1,
        prediction_id: None,
        image: None,
        error: None,
    };
    let sets = Sets::default();
    *sets.set.lock().unwrap() = Some(set);
    sets.items.lock().unwrap().insert(1, item);
    TrainingSetWork {
        generation: service(Objects::default(), fail),
        idempotency: (),
        spend,
        sets,
        queue: NoQueue,
        stuck_after: Duration::from_secs(1800),
    }
}

fn message() -> ItemMessage {
    ItemMessage {
        set_id: set_id(),
        position: 1,
    }
}

fn item(work: &Work) -> SetItem {
    work.sets.items.lock().unwrap()[&1].clone()
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
