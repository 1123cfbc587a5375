//! The training-data function: `GET /api/actors/{actorId}/training-data` lists the actor's
//! images newest first, with their decisions, captions and previews (`limit`, `cursor`);
//! `PATCH .../training-data/images/{filename}` keeps or rejects an image and/or corrects its
//! caption. Every error is a JSON response from the one status map.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Value, json};

use super::caller::caller;
use super::http::{ApiError, answered, json_body, json_response};
use crate::domain::actor::ActorId;
use crate::domain::curation::{CuratedImage, CurationError, Decision, ImageStatus};
use crate::domain::manifest_location::percent_decoded;
use crate::domain::request::RequestError;
use crate::ports::{ActorProfiles, Clock, ObjectStore};
use crate::usecases::GenerateImage;
use crate::usecases::curation::{ImagesPage, MAX_PAGE_SIZE};

/// Images per page when the request gives no `limit`.
const DEFAULT_PAGE_SIZE: usize = 50;

/// The largest PATCH body accepted, in bytes (a caption of 1000 characters, escaped).
const MAX_DECISION_BODY_BYTES: usize = 16 * 1024;

/// Which of the routes a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DataRoute {
    /// `GET .../training-data`.
    List,
    /// `PATCH .../training-data/images/{filename}`.
    Decide(String),
}

/// The training-data function, built once per execution environment.
#[derive(Debug)]
pub struct TrainingDataFunction<P, O, K> {
    /// The use cases over the profiles, the bucket and the clock (nothing is generated here).
    pub data: GenerateImage<P, O, (), (), K, ()>,
}

impl<P: ActorProfiles, O: ObjectStore, K: Clock> TrainingDataFunction<P, O, K> {
    /// Answers one API Gateway request; never fails: every error is a JSON response.
    pub async fn handle(&self, request: Request) -> Result<Response<Body>, lambda_http::Error> {
        Ok(answered("training-data", &request, self.answer(&request)).await)
    }

    async fn answer(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let (actor_id, route) = route(request)?;
        match route {
            DataRoute::List => {
                let (limit, cursor) = page_of(request)?;
                let page = self.data.list_images(&actor_id, limit, cursor).await?;
                Ok(json_response(StatusCode::OK, &page_json(&actor_id, &page)))
            }
            DataRoute::Decide(filename) => {
                let body = json_body(request.body(), MAX_DECISION_BODY_BYTES)?;
                let decision = decision_of(&body)?;
                let decided_by = caller(request);
                let (image, preview) = self
                    .data
                    .decide(&actor_id, &filename, &decision, &decided_by)
                    .await?;
                Ok(json_response(
                    StatusCode::OK,
                    &image_json(&image, preview.as_deref()),
                ))
            }
        }
    }
}

/// The route of a request: `.../api/actors/{actorId}/training-data[/images/{filename}]`
/// (anything may come before it, such as a REST API's stage), with its method checked.
fn route(request: &Request) -> Result<(ActorId, DataRoute), ApiError> {
    let path = request.uri().path();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let not_found = || ApiError::RouteNotFound(path.to_owned());
    let start = segments
        .windows(4)
        .rposition(|w| w[0] == "api" && w[1] == "actors" && w[3] == "training-data")
        .ok_or_else(not_found)?;
    let method = request.method();
    let allow = |allowed: &'static str, wanted: Method| {
        if *method == wanted {
            Ok(())
        } else {
            Err(ApiError::MethodNotAllowed {
                method: method.to_string(),
                allowed,
            })
        }
    };
    let parameters = request.path_parameters();
    let route = match &segments[start + 4..] {
        [] => {
            allow("GET", Method::GET)?;
            DataRoute::List
        }
        ["images", name] => {
            allow("PATCH", Method::PATCH)?;
            // API Gateway's path parameter is decoded already; the raw path is not.
            let name = match parameters.first("filename") {
                Some(decoded) => decoded.to_owned(),
                None => percent_decoded(name).ok_or_else(not_found)?,
            };
            DataRoute::Decide(name)
        }
        _ => return Err(not_found()),
    };
    let actor = parameters.first("actorId").unwrap_or(segments[start + 2]);
    Ok((ActorId::parse(actor)?, route))
}

/// The page a listing asks for: `limit` (1 to 100) and `cursor` (a previous page's
/// `next_cursor`).
fn page_of(request: &Request) -> Result<(usize, Option<usize>), ApiError> {
    let query = request.query_string_parameters();
    let malformed = |message: String| ApiError::from(RequestError::Malformed(message));
    let limit = match query.first("limit") {
        None => DEFAULT_PAGE_SIZE,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|limit| (1..=MAX_PAGE_SIZE).contains(limit))
            .ok_or_else(|| malformed(format!("limit must be 1 to {MAX_PAGE_SIZE}")))?,
    };
    let cursor = query
        .first("cursor")
        .map(|text| {
            text.parse::<usize>()
                .map_err(|_| malformed("cursor must be a next_cursor this route gave".to_owned()))
        })
        .transpose()?;
    Ok((limit, cursor))
}

/// A PATCH body: `{"status"?, "caption"?}`, each a string when present.
fn decision_of(body: &Value) -> Result<Decision, ApiError> {
    let invalid =
        |message: &str| ApiError::UseCase(CurationError::Invalid(message.to_owned()).into());
    if !body.is_object() {
        return Err(invalid("the body must be a JSON object"));
    }
    let text = |name: &str| match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.as_str())),
        Some(_) => Err(invalid(&format!("{name} must be a string"))),
    };
    Ok(Decision::new(text("status")?, text("caption")?)
        .map_err(crate::usecases::UseCaseError::from)?)
}

/// A page as the web UI reads it.
fn page_json(actor_id: &ActorId, page: &ImagesPage) -> Value {
    let images: Vec<Value> = page
        .images
        .iter()
        .map(|(image, preview)| image_json(image, preview.as_deref()))
        .collect();
    let mut counts = serde_json::Map::new();
    for status in ImageStatus::ALL {
        counts.insert(
            status.as_str().to_owned(),
            json!(page.counts[status.rank()]),
        );
    }
    counts.insert("total".to_owned(), json!(page.counts.iter().sum::<usize>()));
    json!({
        "actor_id": actor_id.as_str(),
        "actor_name": page.actor_name,
        "trigger_word": page.trigger_word,
        "images": images,
        "counts": counts,
        "next_cursor": page.next_cursor.map(|cursor| cursor.to_string()),
    })
}

/// One image as the web UI reads it.
fn image_json(image: &CuratedImage, preview_url: Option<&str>) -> Value {
    json!({
        "filename": image.filename,
        "index": image.index,
        "status": image.status.as_str(),
        "caption": image.caption,
        "prompt_id": image.prompt_id,
        "preview_url": preview_url,
        "s3_key": image.s3_key,
        "created_at": image.created_at,
        "created_by": image.created_by,
        "decided_by": image.decided_by,
        "decided_at": image.decided_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decision_body_must_be_an_object_of_strings() {
        assert!(decision_of(&json!({"status": "kept"})).is_ok());
        assert!(decision_of(&json!({"caption": "[trigger] ink"})).is_ok());
        for bad in [
            json!([]),
            json!({}),
            json!({"status": 1}),
            json!({"status": "maybe"}),
        ] {
            assert!(decision_of(&bad).is_err(), "{bad}");
        }
    }
}
