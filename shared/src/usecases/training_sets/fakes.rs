//! In-memory fakes of the sets' store, the spend guard and the queue, for the training-set
//! use cases' unit tests. Changes are conditional, as the adapter's transaction is.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::domain::actor::ActorId;
use crate::domain::training_set::{ItemState, SetCounts, SetId};
use crate::ports::{
    Admission, ItemChange, ItemMessage, ItemQueue, SetItem, SpendGuard, SpendRefusal, StoreError,
    TrainingSet, TrainingSets,
};

/// One set in memory; changes are conditional, as the adapter's transaction is.
#[derive(Default)]
pub(super) struct Sets {
    pub(super) set: Mutex<Option<TrainingSet>>,
    pub(super) items: Mutex<HashMap<u32, SetItem>>,
    /// How many times an item was read.
    pub(super) item_reads: std::sync::atomic::AtomicU32,
}

impl Sets {
    /// A set of one queued item, made at `now_ms`.
    pub(super) fn one_queued_item(set_id: SetId, now_ms: u64) -> Self {
        let set = TrainingSet {
            set_id,
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
            caption: None,
            seed: 42,
            state: ItemState::Queued,
            state_since_ms: now_ms,
            held_until_ms: Some(now_ms + 1_000),
            attempt: 1,
            prediction_id: None,
            image: None,
            error: None,
        };
        let sets = Self::default();
        *sets.set.lock().unwrap() = Some(set);
        sets.items.lock().unwrap().insert(1, item);
        sets
    }

    /// Item 1 as it is now.
    pub(super) fn item(&self) -> SetItem {
        self.items.lock().unwrap()[&1].clone()
    }
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
        (self.item_reads).fetch_add(1, std::sync::atomic::Ordering::SeqCst);
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
        let holds = |item: &&mut SetItem| {
            item.state == from
                && (change.only_if.as_ref()).is_none_or(|expected| expected.holds_for(item))
        };
        let Some(item) = items.get_mut(&position).filter(holds) else {
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
pub(super) struct Spend {
    pub(super) switched_off: bool,
    pub(super) refunded: Mutex<Vec<String>>,
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

/// The messages sent, in order.
#[derive(Default)]
pub(super) struct Queue {
    pub(super) sent: Mutex<Vec<ItemMessage>>,
}

impl ItemQueue for Queue {
    async fn send(&self, items: &[ItemMessage]) -> Result<(), StoreError> {
        self.sent.lock().unwrap().extend_from_slice(items);
        Ok(())
    }
}
