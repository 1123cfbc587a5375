//! Unit tests of the guarded generation over in-memory fakes: idempotency, spend and settle,
//! with no HTTP or Lambda type in sight (the answer format is the test's own).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::UseCaseError;
use super::fakes::{Objects, Service, service};
use super::{
    AnswerFormat, GuardedGeneration, GuardedJob, GuardedJobs, GuardedOutcome, RunLimits,
    StoredImage,
};
use crate::domain::actor::ActorId;
use crate::domain::request::ImageRequest;
use crate::ports::{
    Admission, IdempotencyBegin, IdempotencyStore, KeySeen, PredictionRecords, SpendGuard,
    SpendRefusal, StoreError, StoredAnswer,
};

/// What a key's record holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Record {
    Running { prediction: Option<String> },
    Interrupted { prediction: Option<String> },
    Completed(StoredAnswer),
}

#[derive(Default)]
struct Keys(Mutex<HashMap<String, Record>>);

impl Keys {
    fn record(&self, key: &str) -> Option<Record> {
        self.0.lock().unwrap().get(key).cloned()
    }
}

impl IdempotencyStore for Keys {
    async fn peek(&self, key: &str, _: &str) -> Result<KeySeen, StoreError> {
        Ok(match self.record(key) {
            None => KeySeen::Free,
            Some(Record::Running { .. }) => KeySeen::InProgress,
            Some(Record::Interrupted { prediction }) => KeySeen::Interrupted {
                prediction_id: prediction,
            },
            Some(Record::Completed(answer)) => KeySeen::Completed(answer),
        })
    }

    async fn begin(&self, key: &str, _: &str, _: u64) -> Result<IdempotencyBegin, StoreError> {
        let mut records = self.0.lock().unwrap();
        Ok(match records.get(key).cloned() {
            None => {
                records.insert(key.to_owned(), Record::Running { prediction: None });
                IdempotencyBegin::Owned { resume: None }
            }
            Some(Record::Running { .. }) => IdempotencyBegin::InProgress,
            Some(Record::Interrupted { prediction }) => {
                records.insert(
                    key.to_owned(),
                    Record::Running {
                        prediction: prediction.clone(),
                    },
                );
                IdempotencyBegin::Owned { resume: prediction }
            }
            Some(Record::Completed(answer)) => IdempotencyBegin::Completed(answer),
        })
    }

    async fn record_prediction(&self, key: &str, prediction_id: &str) -> Result<(), StoreError> {
        let prediction = Some(prediction_id.to_owned());
        self.0
            .lock()
            .unwrap()
            .insert(key.to_owned(), Record::Running { prediction });
        Ok(())
    }

    async fn complete(&self, key: &str, answer: &StoredAnswer) -> Result<(), StoreError> {
        let completed = Record::Completed(answer.clone());
        self.0.lock().unwrap().insert(key.to_owned(), completed);
        Ok(())
    }

    async fn release(&self, key: &str) -> Result<(), StoreError> {
        self.0.lock().unwrap().remove(key);
        Ok(())
    }

    async fn interrupt(&self, key: &str, prediction_id: Option<&str>) -> Result<(), StoreError> {
        let prediction = prediction_id.map(str::to_owned);
        self.0
            .lock()
            .unwrap()
            .insert(key.to_owned(), Record::Interrupted { prediction });
        Ok(())
    }
}

/// A budget of `cap` generations; counts what it admits and what it refunds.
struct Budget {
    cap: u64,
    used: Mutex<u64>,
    refunds: Mutex<u64>,
}

impl SpendGuard for Budget {
    async fn admit(
        &self,
        actor_name: &str,
        units: u64,
    ) -> Result<Result<Admission, SpendRefusal>, StoreError> {
        let mut used = self.used.lock().unwrap();
        if *used + units > self.cap {
            return Ok(Err(SpendRefusal::Exhausted {
                scope: "generations for the service".to_owned(),
                cap: self.cap,
            }));
        }
        *used += units;
        Ok(Ok(Admission {
            day: "2026-11-28".to_owned(),
            actor_name: actor_name.to_owned(),
            units,
            refund_token: format!("t{used}"),
        }))
    }

    async fn refund(&self, admission: &Admission) -> Result<(), StoreError> {
        *self.used.lock().unwrap() -= admission.units;
        *self.refunds.lock().unwrap() += admission.units;
        Ok(())
    }

    async fn switched_off(&self) -> Result<bool, StoreError> {
        Ok(false)
    }
}

/// The test's own answer format: a status of its choosing and the outcome in words.
struct Plain;

impl AnswerFormat for Plain {
    fn stored(&self, image: &StoredImage) -> StoredAnswer {
        StoredAnswer {
            status: 200,
            body: format!("stored {}", image.index),
        }
    }

    fn failed(&self, error: &UseCaseError) -> StoredAnswer {
        StoredAnswer {
            status: 422,
            body: format!("failed: {error}"),
        }
    }
}

type Guarded = GuardedGeneration<
    super::fakes::Profiles,
    Objects,
    super::fakes::Counter,
    super::fakes::Generator,
    super::fakes::InstantClock,
    super::fakes::Records,
    Keys,
    Budget,
>;

fn guarded(generation: Service, cap: u64) -> Guarded {
    GuardedGeneration {
        generation,
        idempotency: Keys::default(),
        spend: Budget {
            cap,
            used: Mutex::new(0),
            refunds: Mutex::new(0),
        },
    }
}

fn job(key: Option<&str>) -> GuardedJob {
    GuardedJob {
        actor_id: ActorId::parse("a1").unwrap(),
        request: ImageRequest {
            prompt_id: Some("bw_charcoal".to_owned()),
            ..ImageRequest::default()
        },
        key: key.map(str::to_owned),
        limits: RunLimits {
            model: Instant::now() + Duration::from_secs(10),
            finish: Instant::now() + Duration::from_secs(20),
            hold_until_ms: u64::MAX,
        },
    }
}

fn predictions(guarded: &Guarded) -> u32 {
    guarded.generation.generator.calls.load(Ordering::SeqCst)
}

#[tokio::test]
async fn a_repeat_of_a_stored_image_is_answered_from_its_record_without_paying_again() {
    let guarded = guarded(service(Objects::default(), false), 10);
    let first = guarded.run(&job(Some("k1")), &Plain).await;
    assert!(first.report.budget_counted);
    let GuardedOutcome::Fresh(Ok(image)) = first.outcome else {
        panic!("{:?}", first.outcome);
    };
    let repeat = guarded.run(&job(Some("k1")), &Plain).await;
    let GuardedOutcome::Replayed(answer) = repeat.outcome else {
        panic!("{:?}", repeat.outcome);
    };
    assert_eq!(answer.body, format!("stored {}", image.index));
    assert!(!repeat.report.budget_counted);
    assert_eq!(predictions(&guarded), 1);
    assert_eq!(*guarded.spend.used.lock().unwrap(), 1);
}

#[tokio::test]
async fn a_failed_prediction_is_final_kept_for_repeats_and_not_refunded() {
    let guarded = guarded(service(Objects::default(), true), 10);
    let run = guarded.run(&job(Some("k2")), &Plain).await;
    assert!(matches!(
        run.outcome,
        GuardedOutcome::Fresh(Err(UseCaseError::Prediction(_)))
    ));
    let Some(Record::Completed(answer)) = guarded.idempotency.record("k2") else {
        panic!("{:?}", guarded.idempotency.record("k2"));
    };
    assert_eq!(answer.status, 422);
    assert!(answer.body.contains("failed"), "{answer:?}");
    assert_eq!(*guarded.spend.refunds.lock().unwrap(), 0, "it was paid for");
}

#[tokio::test]
async fn a_create_the_api_refused_gives_its_unit_back_and_releases_the_key() {
    let mut generation = service(Objects::default(), false);
    generation.generator.reject_creates = true;
    let guarded = guarded(generation, 1);
    for _ in 0..3 {
        let run = guarded.run(&job(Some("k3")), &Plain).await;
        assert!(
            matches!(
                run.outcome,
                GuardedOutcome::Fresh(Err(UseCaseError::Prediction(_)))
            ),
            "a cap of 1 still admits each try: {:?}",
            run.outcome
        );
        assert_eq!(guarded.idempotency.record("k3"), None, "the key is free");
    }
    assert_eq!(*guarded.spend.refunds.lock().unwrap(), 3);
    assert_eq!(*guarded.spend.used.lock().unwrap(), 0);
}

#[tokio::test]
async fn an_interrupted_paid_prediction_is_resumed_not_paid_again() {
    let guarded = guarded(service(Objects::default(), false), 10);
    guarded
        .idempotency
        .interrupt("k4", Some("paid_earlier"))
        .await
        .unwrap();
    let run = guarded.run(&job(Some("k4")), &Plain).await;
    let GuardedOutcome::Fresh(Ok(image)) = run.outcome else {
        panic!("{:?}", run.outcome);
    };
    assert_eq!(image.prediction_id, "paid_earlier");
    assert_eq!(predictions(&guarded), 0);
    assert!(!run.report.budget_counted, "a resume counts nothing new");
}

#[tokio::test]
async fn a_spent_budget_refuses_before_anything_is_paid_and_frees_the_key() {
    let guarded = guarded(service(Objects::default(), false), 0);
    let run = guarded.run(&job(Some("k5")), &Plain).await;
    assert!(matches!(
        run.outcome,
        GuardedOutcome::Fresh(Err(UseCaseError::Spend(SpendRefusal::Exhausted { .. })))
    ));
    assert_eq!(predictions(&guarded), 0);
    assert_eq!(guarded.idempotency.record("k5"), None);
    let refused = guarded
        .run(
            &GuardedJob {
                request: ImageRequest::default(),
                ..job(Some("k6"))
            },
            &Plain,
        )
        .await;
    assert!(
        matches!(refused.outcome, GuardedOutcome::Fresh(Err(ref e)) if e.is_refusal()),
        "{:?}",
        refused.outcome
    );
    assert_eq!(
        guarded.idempotency.record("k6"),
        None,
        "a refusal records nothing"
    );
}

#[tokio::test]
async fn a_paid_prediction_is_collected_from_its_record_though_the_photo_is_gone() {
    let guarded = guarded(service(Objects::default(), false), 10);
    let first = guarded.run(&job(Some("k6")), &Plain).await;
    let GuardedOutcome::Fresh(Ok(image)) = first.outcome else {
        panic!("{:?}", first.outcome);
    };
    // As if the run had been cut after paying and before storing: the key holds the
    // prediction, its record is open with no place, and the photo was deleted since.
    guarded.idempotency.0.lock().unwrap().insert(
        "k7".to_owned(),
        Record::Interrupted {
            prediction: Some("paid_p9".to_owned()),
        },
    );
    let mut order = guarded
        .generation
        .records
        .get(&image.prediction_id)
        .unwrap()
        .order;
    order.seed = Some(7);
    guarded
        .generation
        .records
        .open("paid_p9", &order, "m/n", 0)
        .await
        .unwrap();
    guarded
        .generation
        .objects
        .stored
        .lock()
        .unwrap()
        .remove(super::fakes::PHOTO);
    let refused = guarded.run(&job(Some("k8")), &Plain).await;
    assert!(
        matches!(
            refused.outcome,
            GuardedOutcome::Fresh(Err(UseCaseError::Refused(_)))
        ),
        "{:?}",
        refused.outcome
    );
    assert_eq!(
        guarded.idempotency.record("k8"),
        None,
        "a refused request recorded its key"
    );
    let collected = guarded.run(&job(Some("k7")), &Plain).await;
    let GuardedOutcome::Fresh(Ok(collected)) = collected.outcome else {
        panic!("{:?}", collected.outcome);
    };
    assert_eq!(
        (collected.prediction_id.as_str(), collected.seed),
        ("paid_p9", Some(7)),
        "collected from what the record says"
    );
    assert_eq!(predictions(&guarded), 1, "the collection paid again");
    assert!(matches!(
        guarded.idempotency.record("k7"),
        Some(Record::Completed(_))
    ));
}
