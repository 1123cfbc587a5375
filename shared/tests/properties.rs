//! Property tests of request parsing, key and name validation, and the manifest merge. The
//! case count is bounded (64 per property; `PROPTEST_CASES` overrides it) so CI stays quick.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use shared::domain::actor::ActorId;
use shared::domain::generation::{GenerateBody, base_image_key, index_of_key, training_folder};
use shared::domain::manifest::{ManifestEntry, append_entry};
use shared::domain::prompts::PRESETS;

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

proptest! {
    #![proptest_config(config())]

    #[test]
    fn parsing_any_body_never_panics_and_refusals_are_errors(body in any_json()) {
        if let Ok(parsed) = GenerateBody::from_json(body.clone()) {
            let _ = parsed.check(BUCKET);
        } else {
            prop_assert!(!body.is_object() || body.as_object().is_some_and(|o| !o.is_empty()));
        }
    }

    #[test]
    fn every_well_formed_preset_request_is_accepted(
        preset in 0..PRESETS.len(),
        seed in proptest::option::of(0u64..=(1 << 53) - 1),
        extra in "[a-z]{1,8}",
    ) {
        let body = json!({"prompt_id": PRESETS[preset].id, "seed": seed, extra: "ignored"});
        let checked = GenerateBody::from_json(body).and_then(|b| b.check(BUCKET));
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
    fn accepted_base_image_keys_stay_under_system_actors(path in "(s3://[a-z-]{1,20}/)?/?[a-z_./]{0,60}\\.(jpg|png|txt)") {
        if let Ok(key) = base_image_key(&path, BUCKET) {
            prop_assert!(key.starts_with("system_actors/"));
            prop_assert!(key.split('/').all(|s| !s.is_empty() && s != "." && s != ".."));
            prop_assert!(!key.ends_with(".txt"));
        }
    }

    #[test]
    fn an_image_key_gives_back_its_index(name in "[a-z0-9][a-z0-9_]{0,20}", index in 0u64..1_000_000_000) {
        let key = format!("{}{name}_{index}.jpg", training_folder(&name));
        prop_assert_eq!(index_of_key(&name, &key), Some(index));
    }

    #[test]
    fn the_merge_keeps_every_foreign_field_and_entry(
        fields in prop::collection::btree_map("[a-z_]{1,10}", any_json(), 0..6),
        foreign in prop::collection::vec(any_json(), 0..6),
        index in 1u64..10_000,
    ) {
        let mut before: Map<String, Value> = fields.into_iter().filter(|(k, _)| k != "images" && k != "updated_at").collect();
        before.insert("images".to_owned(), Value::Array(foreign.clone()));
        let entry = ManifestEntry {
            index,
            filename: format!("a_{index}.jpg"),
            s3_key: format!("system_actors/training_data/a/a_{index}.jpg"),
            s3_url: "https://example/a.jpg".to_owned(),
            prompt_id: None,
            category: None,
            prompt: "p".to_owned(),
            seed: None,
            prediction_id: "p1".to_owned(),
            model: "m/n".to_owned(),
            created_at: "now".to_owned(),
        };
        let bytes = serde_json::to_vec(&Value::Object(before.clone())).unwrap();
        let after: Value = serde_json::from_slice(&append_entry(Some(&bytes), &entry, "now").unwrap()).unwrap();
        for (key, value) in &before {
            if key != "images" {
                prop_assert_eq!(&after[key], value);
            }
        }
        let images = after["images"].as_array().unwrap();
        let already_there = foreign.iter().any(|e| e.get("s3_key") == Some(&json!(entry.s3_key)));
        prop_assert_eq!(&images[..foreign.len()], &foreign[..]);
        prop_assert_eq!(images.len(), foreign.len() + usize::from(!already_there));
        prop_assert_eq!(&after["updated_at"], &json!("now"));
    }
}
