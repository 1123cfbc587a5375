//! Starting a set: checked whole before anything is written (every item's fields, the
//! actor's profile and base photo), counted all at once by the spend guard (all or none),
//! written, and its items queued. With an idempotency key a repeat gets the same set, and a
//! request interrupted after its set was written finishes that set instead of paying again.

use super::{SetAnswers, TrainingSetWork};
use crate::domain::actor::ActorId;
use crate::domain::training_set::{ItemState, SetCounts, SetId, SetRequest};
use crate::ports::{
    ActorProfiles, Admission, Clock, IdempotencyBegin, IdempotencyStore, ItemMessage, ItemQueue,
    KeySeen, ObjectStore, SetItem, SpendGuard, StoredAnswer, TrainingSet, TrainingSets,
};
use crate::retry::random_number;
use crate::usecases::concurrently::both;
use crate::usecases::{PreparedGeneration, UseCaseError, retried};

/// A request for a new set.
#[derive(Debug, Clone, Copy)]
pub struct NewSet<'a> {
    /// The actor, as the route names it.
    pub actor_id: &'a ActorId,
    /// What was asked.
    pub request: &'a SetRequest,
    /// Who asks (the JWT subject).
    pub created_by: &'a str,
    /// The idempotency key, already scoped to the caller.
    pub key: Option<&'a str>,
    /// Until when (epoch milliseconds) this request holds its key.
    pub hold_until_ms: u64,
}

/// How a set request ended.
#[derive(Debug)]
pub enum SetStart {
    /// The set, started (or found started by an interrupted request with the same key).
    Started(Box<TrainingSet>),
    /// An earlier request with this key was answered; this is its answer.
    Replayed(StoredAnswer),
}

impl<P, O, C, G, K, R, I, S, T, Q> TrainingSetWork<P, O, C, G, K, R, I, S, T, Q>
where
    P: ActorProfiles,
    O: ObjectStore,
    K: Clock,
    I: IdempotencyStore,
    S: SpendGuard,
    T: TrainingSets,
    Q: ItemQueue,
{
    /// Starts a set, or answers a repeat of one.
    pub async fn start(
        &self,
        new: NewSet<'_>,
        answers: &impl SetAnswers,
    ) -> Result<SetStart, UseCaseError> {
        let clock = &self.generation.clock;
        let fresh_id = SetId::new(
            clock.now_epoch_ms(),
            (u128::from(random_number(u64::MAX)) << 64) | u128::from(random_number(u64::MAX)),
        );
        let Some(key) = new.key else {
            let prepared = self.check(new, &fresh_id).await?;
            return self.create(new, &fresh_id, prepared).await.map(started);
        };
        let fingerprint = new.request.fingerprint(new.actor_id);
        let (checked, seen) = both(
            self.check(new, &fresh_id),
            self.idempotency.peek(key, &fingerprint),
        )
        .await;
        let seen = match seen {
            Ok(seen) => seen,
            Err(error) => return Err(checked.err().unwrap_or(error.into())),
        };
        let written_earlier = matches!(
            seen,
            KeySeen::Interrupted {
                prediction_id: Some(_)
            }
        );
        match seen {
            KeySeen::Completed(answer) => return Ok(SetStart::Replayed(answer)),
            KeySeen::InProgress => return Err(UseCaseError::KeyInProgress),
            KeySeen::PayloadMismatch => return Err(UseCaseError::KeyReused),
            KeySeen::Free | KeySeen::Interrupted { .. } => {}
        }
        // A refused request writes nothing, not even its key (unless its set may exist).
        let checked = match checked {
            Err(error) if !written_earlier => return Err(error),
            checked => checked,
        };
        let resume = match self
            .idempotency
            .begin(key, &fingerprint, new.hold_until_ms)
            .await?
        {
            IdempotencyBegin::Owned { resume } => resume,
            IdempotencyBegin::Completed(answer) => return Ok(SetStart::Replayed(answer)),
            IdempotencyBegin::InProgress => return Err(UseCaseError::KeyInProgress),
            IdempotencyBegin::PayloadMismatch => return Err(UseCaseError::KeyReused),
        };
        let set_id = resume
            .as_deref()
            .and_then(SetId::parse)
            .unwrap_or(fresh_id.clone());
        let result = match self.sets.read(&set_id).await {
            Ok(Some((set, items))) => {
                tracing::info!(set_id = %set.set_id, "set written by an interrupted request; queuing what is left");
                self.enqueue(&set.set_id, &items).await;
                Ok(set)
            }
            Ok(None) => match self.remember(key, &set_id).await {
                Ok(()) => {
                    // The checks ran for the fresh id; an interrupted request's id derives
                    // other seeds, so check again for it.
                    let prepared = if set_id == fresh_id {
                        checked
                    } else {
                        self.check(new, &set_id).await
                    };
                    match prepared {
                        Ok(prepared) => self.create(new, &set_id, prepared).await,
                        Err(error) => Err(error),
                    }
                }
                Err(error) => Err(error),
            },
            Err(error) => Err(error.into()),
        };
        self.settle(key, &result, answers).await;
        result.map(started)
    }

    /// Every item's fields checked, and the generation of the first prepared (the actor's
    /// profile and photo are the same for all): nothing written or paid yet.
    async fn check(
        &self,
        new: NewSet<'_>,
        set_id: &SetId,
    ) -> Result<
        (
            Vec<crate::domain::request::ImageRequest>,
            PreparedGeneration,
        ),
        UseCaseError,
    > {
        let requests = new.request.item_requests(set_id)?;
        for request in &requests {
            request.check(&self.generation.settings.bucket)?;
        }
        let prepared = self.generation.prepare(new.actor_id, &requests[0]).await?;
        Ok((requests, prepared))
    }

    /// Counts, writes and queues a checked set.
    async fn create(
        &self,
        new: NewSet<'_>,
        set_id: &SetId,
        (requests, prepared): (
            Vec<crate::domain::request::ImageRequest>,
            PreparedGeneration,
        ),
    ) -> Result<TrainingSet, UseCaseError> {
        let total = requests.len() as u64;
        let actor_name = prepared.order.actor.actor_name.clone();
        let admission = match self.spend.admit(&actor_name, total).await? {
            Ok(admission) => admission,
            Err(refusal) => return Err(UseCaseError::Spend(refusal)),
        };
        let clock = &self.generation.clock;
        let now_ms = clock.now_epoch_ms();
        let set = TrainingSet {
            set_id: set_id.clone(),
            actor_id: new.actor_id.clone(),
            actor_name,
            requested_actor_name: new.request.actor_name.clone(),
            base_image_path: new.request.base_image_path.clone(),
            created_by: new.created_by.to_owned(),
            created_at: clock.now_rfc3339(),
            budget_day: admission.day.clone(),
            counts: SetCounts::all_queued(total),
            canceled: false,
        };
        let items: Vec<SetItem> = requests
            .into_iter()
            .zip(1..)
            .map(|(request, position)| SetItem {
                position,
                // The preset wins over a custom prompt, as for one image.
                prompt: request.prompt.filter(|_| request.prompt_id.is_none()),
                prompt_id: request.prompt_id,
                caption: request.caption,
                seed: request.seed.unwrap_or_default(),
                state: ItemState::Queued,
                state_since_ms: now_ms,
                held_until_ms: Some(self.stuck_since(now_ms)),
                attempt: 1,
                prediction_id: None,
                image: None,
                error: None,
            })
            .collect();
        if let Err(error) = self.sets.create(&set, &items).await {
            self.give_back(&admission).await;
            return Err(error.into());
        }
        tracing::info!(set_id = %set.set_id, actor = %set.actor_id, total, "training set created");
        self.enqueue(&set.set_id, &items).await;
        Ok(set)
    }

    /// Sends the queued items' messages. What is not sent stays queued, and the reconciler
    /// sends it again.
    pub(super) async fn enqueue(&self, set_id: &SetId, items: &[SetItem]) {
        let messages: Vec<ItemMessage> = items
            .iter()
            .filter(|item| item.state == ItemState::Queued)
            .map(|item| ItemMessage::next_step(set_id.clone(), item.position))
            .collect();
        if let Err(error) = self.queue.send(&messages).await {
            tracing::error!(%set_id, %error, "items not all queued; the reconciler queues them again");
        }
    }

    /// Records the set's id on the key before anything is paid: a retry of an interrupted
    /// request finishes this set.
    async fn remember(&self, key: &str, set_id: &SetId) -> Result<(), UseCaseError> {
        retried(&self.generation.clock, || {
            self.idempotency.record_prediction(key, set_id.as_str())
        })
        .await
        .map_err(UseCaseError::from)
    }

    /// Settles the key: a started set or a final refusal is kept for repeats; a fault or a
    /// spend refusal releases it, unless a set was written under it.
    async fn settle(
        &self,
        key: &str,
        result: &Result<TrainingSet, UseCaseError>,
        answers: &impl SetAnswers,
    ) {
        let clock = &self.generation.clock;
        let settled = match result {
            Ok(set) => {
                let answer = answers.started(set);
                retried(clock, || self.idempotency.complete(key, &answer)).await
            }
            Err(error) if error.is_final() => {
                let answer = answers.failed(error);
                retried(clock, || self.idempotency.complete(key, &answer)).await
            }
            Err(_) => self.idempotency.release(key).await,
        };
        if let Err(error) = settled {
            tracing::error!(%error, "idempotency record of a set request not settled");
        }
    }

    /// Gives back the units of a set that was not written.
    async fn give_back(&self, admission: &Admission) {
        if let Err(error) = self.spend.refund(admission).await {
            tracing::warn!(actor_name = %admission.actor_name, %error, "budget of an unwritten set not refunded");
        }
    }
}

fn started(set: TrainingSet) -> SetStart {
    SetStart::Started(Box::new(set))
}
