//! The training-sets function: `POST /api/actors/{actorId}/training-sets` starts a set (202
//! with `Location`), `GET .../training-sets` lists the actor's sets, `GET .../{setId}` reads
//! one's progress, `POST .../{setId}/cancel` and `POST .../{setId}/retry` act on it. Every
//! error is a JSON response from the one status map.

mod wire;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Value, json};

use crate::domain::actor::ActorId;
use crate::domain::training_set::SetId;
use crate::entry::caller::{caller, idempotency_key};
use crate::entry::http::{ApiError, StartAnswer, json_body, json_response, started_response};
use crate::ports::{
    ActorProfiles, Clock, IdempotencyStore, ItemQueue, ObjectStore, SpendGuard, TrainingSets,
};
use crate::usecases::UseCaseError;
use crate::usecases::training_sets::{NewSet, SetStart, TrainingSetWork};

pub use wire::read_set_request;

/// The largest set request body accepted, in bytes (100 items with long custom prompts).
pub const MAX_SET_BODY_BYTES: usize = 256 * 1024;

/// How long a set request holds its idempotency key: far longer than writing a set takes.
const KEY_HOLD_MS: u64 = 60_000;

/// The training-sets function, built once per execution environment.
#[derive(Debug)]
pub struct TrainingSetsFunction<W> {
    /// The training-set use cases.
    pub work: W,
    /// What one image is estimated to cost, in US dollars (`estimated_cost_usd`).
    pub price_per_image_usd: f64,
}

/// Which of the routes a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SetRoute {
    /// `POST .../training-sets`.
    Create,
    /// `GET .../training-sets`.
    List,
    /// `GET .../training-sets/{setId}`.
    Read(SetId),
    /// `POST .../training-sets/{setId}/cancel`.
    Cancel(SetId),
    /// `POST .../training-sets/{setId}/retry`.
    Retry(SetId),
}

impl<P, O, C, G, K, R, I, S, T, Q>
    TrainingSetsFunction<TrainingSetWork<P, O, C, G, K, R, I, S, T, Q>>
where
    P: ActorProfiles,
    O: ObjectStore,
    K: Clock,
    I: IdempotencyStore,
    S: SpendGuard,
    T: TrainingSets,
    Q: ItemQueue,
{
    /// Answers one API Gateway request; never fails: every error is a JSON response.
    pub async fn handle(&self, request: Request) -> Result<Response<Body>, lambda_http::Error> {
        let response = self
            .answer(&request)
            .await
            .unwrap_or_else(ApiError::into_response);
        tracing::info!(
            status = response.status().as_u16(),
            method = %request.method(),
            "training-sets answered"
        );
        Ok(response)
    }

    async fn answer(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let (actor_id, route) = route(request)?;
        let work = &self.work;
        match route {
            SetRoute::Create => self.create(request, &actor_id).await,
            SetRoute::List => {
                let sets = work.list(&actor_id).await?;
                let sets: Vec<Value> = sets.iter().map(wire::summary).collect();
                Ok(json_response(StatusCode::OK, &json!({ "sets": sets })))
            }
            SetRoute::Read(set_id) => {
                self.progress(work.progress(&actor_id, &set_id).await?)
                    .await
            }
            SetRoute::Cancel(set_id) => self.progress(work.cancel(&actor_id, &set_id).await?).await,
            SetRoute::Retry(set_id) => self.progress(work.retry(&actor_id, &set_id).await?).await,
        }
    }

    async fn create(
        &self,
        request: &Request,
        actor_id: &ActorId,
    ) -> Result<Response<Body>, ApiError> {
        let key = idempotency_key(request)?;
        let body = json_body(request.body(), MAX_SET_BODY_BYTES)?;
        let set_request = read_set_request(body)?;
        let created_by = caller(request);
        let answers = wire::StartAnswers {
            collection_path: request.uri().path(),
            price_per_image_usd: self.price_per_image_usd,
        };
        let new = NewSet {
            actor_id,
            request: &set_request,
            created_by: &created_by,
            key: key.as_deref(),
            hold_until_ms: crate::timing::epoch_ms() + KEY_HOLD_MS,
        };
        let answer = match self.work.start(new, &answers).await? {
            SetStart::Started(set) => StartAnswer::Fresh(answers.body(&set)),
            SetStart::Replayed(answer) => StartAnswer::Replayed(answer),
        };
        Ok(started_response(answer))
    }

    async fn progress(
        &self,
        (set, items): (crate::ports::TrainingSet, Vec<crate::ports::SetItem>),
    ) -> Result<Response<Body>, ApiError> {
        let previews = self.work.previews(&items).await;
        Ok(json_response(
            StatusCode::OK,
            &wire::progress(&set, &items, &previews),
        ))
    }
}

/// The route of a request: `.../api/actors/{actorId}/training-sets[/{setId}[/cancel|/retry]]`
/// (anything may come before it, such as a REST API's stage), with its method checked.
fn route(request: &Request) -> Result<(ActorId, SetRoute), ApiError> {
    let path = request.uri().path();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let not_found = || ApiError::RouteNotFound(path.to_owned());
    let start = segments
        .windows(4)
        .rposition(|w| w[0] == "api" && w[1] == "actors" && w[3] == "training-sets")
        .ok_or_else(not_found)?;
    let tail = &segments[start + 4..];
    let method = request.method();
    let allow = |allowed: &'static str, ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(ApiError::MethodNotAllowed {
                method: method.to_string(),
                allowed,
            })
        }
    };
    let set_id = |text: &str| {
        SetId::parse(text)
            .ok_or_else(|| ApiError::UseCase(UseCaseError::SetNotFound(text.to_owned())))
    };
    let route = match tail {
        [] => {
            allow("GET, POST", method == Method::GET || method == Method::POST)?;
            if method == Method::POST {
                SetRoute::Create
            } else {
                SetRoute::List
            }
        }
        [id] => {
            allow("GET", method == Method::GET)?;
            SetRoute::Read(set_id(id)?)
        }
        [id, "cancel"] => {
            allow("POST", method == Method::POST)?;
            SetRoute::Cancel(set_id(id)?)
        }
        [id, "retry"] => {
            allow("POST", method == Method::POST)?;
            SetRoute::Retry(set_id(id)?)
        }
        _ => return Err(not_found()),
    };
    let parameters = request.path_parameters();
    let actor = parameters.first("actorId").unwrap_or(segments[start + 2]);
    Ok((ActorId::parse(actor)?, route))
}
