//! Property tests of request parsing, key and name validation, and the manifest merge. The
//! case count is bounded (64 per property; `PROPTEST_CASES` overrides it) so CI stays quick.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use shared::domain::actor::ActorId;
use shared::domain::base_photo::BaseImagePrefixes;
use shared::domain::manifest::{ManifestEntry, append_entries};
use shared::domain::naming::{index_of_key, training_folder};
use shared::domain::prompts::PRESETS;
use shared::domain::request::{RequestError, resolve_actor};
use shared::entry::generate_single::wire::GenerateSingleBody;

const BUCKET: &str = "story-boards-assets";

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(cases)
    }
}

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A request body: sometimes not an object; else an object whose known fields are each
/// absent, well typed, or any JSON at all, beside unknown fields.
fn any_body() -> impl Strategy<Value = Value> {
    let text = prop_oneof![
        Just(Value::Null),
        "[a-z_]{1,12}".prop_map(Value::String),
        any_json()
    ];
    let seed = prop_oneof![
        Just(Value::Null),
        (0u64..=(1 << 53)).prop_map(|n| json!(n)),
        any_json()
    ];
    let field = |name: &'static str, value: BoxedStrategy<Value>| {
        proptest::option::of(value).prop_map(move |value| value.map(|v| (name.to_owned(), v)))
    };
    let object = (
        field("actor_name", text.clone().boxed()),
        field("base_image_path", text.clone().boxed()),
        field("prompt_id", text.clone().boxed()),
        field("prompt", text.boxed()),
        field("seed", seed.boxed()),
        prop::collection::btree_map("x_[a-z]{1,6}", any_json(), 0..3),
    )
        .prop_map(|(a, b, c, d, e, unknown)| {
            let mut map: Map<String, Value> = unknown.into_iter().collect();
            map.extend([a, b, c, d, e].into_iter().flatten());
            Value::Object(map)
        });
    prop_oneof![4 => object, 1 => any_json()]
}

/// Whether a body has the API's shape, written independently of serde: an object whose
/// known text fields are strings or null and whose seed is a non-negative integer or null.
fn well_typed(body: &Value) -> bool {
    let Some(object) = body.as_object() else {
        return false;
    };
    let text_ok = ["actor_name", "base_image_path", "prompt_id", "prompt"]
        .iter()
        .all(|name| {
            matches!(
                object.get(*name),
                None | Some(Value::Null | Value::String(_))
            )
        });
    let seed_ok = match object.get("seed") {
        None | Some(Value::Null) => true,
        Some(seed) => seed.is_u64(),
    };
    text_ok && seed_ok
}

/// The identifier rule, written independently of the code under test.
fn follows_identifier_rule(value: &str) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(b))
        && !value.contains("..")
}

/// The key a base photo path names when the key rule accepts it, written independently of
/// the code under test: in our bucket, no empty, `.` or `..` segment, an image extension.
fn expected_key(path: &str) -> Option<String> {
    let key = match path.strip_prefix("s3://") {
        Some(rest) => {
            let (bucket, key) = rest.split_once('/')?;
            if bucket != BUCKET {
                return None;
            }
            key
        }
        None => path.trim_start_matches('/'),
    };
    let segments_ok = key
        .split('/')
        .all(|s| !s.is_empty() && s != "." && s != "..");
    let extension = key.rsplit_once('.')?.1.to_ascii_lowercase();
    let image = ["jpg", "jpeg", "png", "webp"].contains(&extension.as_str());
    (segments_ok && image).then(|| key.to_owned())
}

/// Whether `alice` may use `key` under the default prefixes: her own training images, a
/// photo in her base-images folder, or her base photo file itself.
fn alice_may_use(key: &str) -> bool {
    if key.starts_with("system_actors/training_data/alice/")
        || key.starts_with("system_actors/base_images/alice/")
    {
        return true;
    }
    key.strip_prefix("system_actors/base_images/alice.")
        .is_some_and(|extension| !extension.contains('.') && !extension.contains('/'))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_body_parses_exactly_when_it_is_an_object_with_well_typed_fields(body in any_body()) {
        let parsed = GenerateSingleBody::from_json(body.clone());
        prop_assert_eq!(parsed.is_ok(), well_typed(&body), "{} -> {:?}", body, parsed);
        if let Ok(parsed) = parsed {
            prop_assert_eq!(parsed.prompt_id.as_deref(), body.get("prompt_id").and_then(Value::as_str));
            prop_assert_eq!(parsed.seed, body.get("seed").and_then(Value::as_u64));
            // Checking never panics, whatever the values.
            let _ = parsed.check(BUCKET);
        }
    }

    #[test]
    fn every_well_formed_preset_request_is_accepted(
        preset in 0..PRESETS.len(),
        seed in proptest::option::of(0u64..=(1 << 53) - 1),
        extra in "[a-z]{1,8}",
    ) {
        let body = json!({"prompt_id": PRESETS[preset].id, "seed": seed, extra: "ignored"});
        let checked = GenerateSingleBody::from_json(body).and_then(|b| b.check(BUCKET));
        prop_assert!(checked.is_ok(), "{checked:?}");
    }

    #[test]
    fn actor_ids_are_accepted_exactly_by_the_rule(value in "[A-Za-z0-9_.\\-/% ]{0,140}") {
        let parsed = ActorId::parse(&value);
        prop_assert_eq!(parsed.is_ok(), follows_identifier_rule(&value), "{:?}", value);
        if let Ok(id) = parsed {
            prop_assert!(!id.as_str().contains('/') && !id.as_str().contains(".."));
        }
    }

    #[test]
    fn a_base_photo_is_accepted_exactly_when_it_is_the_actors(
        path in "(s3://story-boards-assets/|s3://other-bucket/|/)?(system_actors/base_images/|system_actors/training_data/|system_actors/|private/)(alice|bob|alice_2|alice[.]v2)(/|/[.][.]/|//|_[0-9])?([a-z]{1,6})?[.](jpg|JPEG|png|webp|txt)",
    ) {
        let checked = GenerateSingleBody::from_json(json!({"prompt": "x", "base_image_path": path}))
            .and_then(|body| body.check(BUCKET));
        let resolved = checked.clone().and_then(|checked| {
            resolve_actor(&ActorId::parse("alice").unwrap(), &checked, None, BUCKET, &BaseImagePrefixes::default())
        });
        let expected = expected_key(&path);
        prop_assert_eq!(checked.is_ok(), expected.is_some(), "{:?}: {:?}", path, checked);
        match (&expected, &resolved) {
            (Some(key), Ok(actor)) => {
                prop_assert!(alice_may_use(key), "{} accepted for alice", key);
                prop_assert_eq!(&actor.base_image_key, key);
                prop_assert_eq!(actor.actor_name.as_str(), "alice");
            }
            (Some(key), Err(RequestError::BaseImageNotAllowed { .. })) => {
                prop_assert!(!alice_may_use(key), "{} refused for alice", key);
            }
            (None, Err(RequestError::BadBaseImagePath { .. } | RequestError::BaseImageNotAllowed { .. })) => {}
            (expected, resolved) => prop_assert!(false, "{:?}: expected {:?}, got {:?}", path, expected, resolved),
        }
    }

    #[test]
    fn an_image_key_gives_back_its_index(name in "[a-z0-9][a-z0-9_]{0,20}", index in 0u64..1_000_000_000) {
        let key = format!("{}{name}_{index}.jpg", training_folder(&name));
        prop_assert_eq!(index_of_key(&name, &key), Some(index));
    }

    #[test]
    fn the_merge_keeps_every_foreign_field_and_entry_and_never_lists_an_image_twice(
        fields in prop::collection::btree_map("[a-z_]{1,10}", any_json(), 0..6),
        foreign in prop::collection::vec((any::<bool>(), any_json()), 0..6),
        index in 1u64..10_000,
    ) {
        let entry = ManifestEntry {
            index,
            filename: format!("a_{index}.jpg"),
            s3_key: format!("system_actors/training_data/a/a_{index}.jpg"),
            s3_url: "https://example/a.jpg".to_owned(),
            prompt_id: None,
            category: None,
            prompt: "p".to_owned(),
            caption: "[trigger], p".to_owned(),
            seed: None,
            prediction_id: "p1".to_owned(),
            model: "m/n".to_owned(),
            created_at: "now".to_owned(),
            created_by: None,
        };
        // Some foreign entries are this image's, as a retried update finds them.
        let foreign: Vec<Value> = foreign
            .into_iter()
            .map(|(same_image, other)| if same_image { json!({"s3_key": entry.s3_key, "index": index}) } else { other })
            .collect();
        let listed_before = foreign.iter().filter(|e| e.get("s3_key") == Some(&json!(entry.s3_key))).count();
        let mut before: Map<String, Value> = fields.into_iter().filter(|(k, _)| k != "images" && k != "updated_at").collect();
        before.insert("images".to_owned(), Value::Array(foreign.clone()));
        let bytes = serde_json::to_vec(&Value::Object(before.clone())).unwrap();
        let after: Value = serde_json::from_slice(&append_entries(Some(&bytes), std::slice::from_ref(&entry), "now").unwrap()).unwrap();
        for (key, value) in &before {
            if key != "images" {
                prop_assert_eq!(&after[key], value);
            }
        }
        let images = after["images"].as_array().unwrap();
        prop_assert_eq!(&images[..foreign.len()], &foreign[..]);
        let listed_after = images.iter().filter(|e| e.get("s3_key") == Some(&json!(entry.s3_key))).count();
        if listed_before == 0 {
            prop_assert_eq!(images.len(), foreign.len() + 1);
            prop_assert_eq!(&images[foreign.len()]["prediction_id"], &json!("p1"));
        } else {
            prop_assert_eq!(images.len(), foreign.len());
        }
        prop_assert_eq!(listed_after, listed_before.max(1));
        prop_assert_eq!(&after["updated_at"], &json!("now"));
    }
}
