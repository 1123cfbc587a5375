//! Bodies as the API takes them, read and then checked by the domain's rules: the wire
//! type's errors and the domain's refusals answer alike.

use serde_json::{Value, json};

use super::GenerateSingleBody;
use crate::domain::actor::{ActorId, ActorProfile, Descriptor};
use crate::domain::base_photo::BaseImagePrefixes;
use crate::domain::prompts::PromptCategory;
use crate::domain::request::{
    CheckedRequest, PromptRequest, RequestError, ResolvedActor, resolve_actor,
};

const BUCKET: &str = "story-boards-assets";

fn body(value: Value) -> Result<CheckedRequest, RequestError> {
    GenerateSingleBody::from_json(value)?.check(BUCKET)
}

#[test]
fn a_preset_request_is_checked_without_lookups() {
    let checked = body(json!({
        "actor_name": "0000_european_16_male",
        "base_image_path": "s3://story-boards-assets/system_actors/base/0000.jpg",
        "prompt_id": "bw_charcoal",
        "seed": 42,
        "something_new": true,
    }))
    .unwrap();
    assert_eq!(
        checked.base_image_key.as_deref(),
        Some("system_actors/base/0000.jpg")
    );
    assert_eq!(checked.prompt, PromptRequest::Preset("bw_charcoal"));
    let choice = checked.prompt.choose(Descriptor::Woman);
    assert!(choice.text.contains("the woman"));
    assert_eq!(choice.category, Some(PromptCategory::BwStylized));
}

#[test]
fn prompt_id_wins_and_a_custom_prompt_is_trimmed_and_capped() {
    let both = body(json!({"prompt_id": "bw_woodcut", "prompt": "ignored"})).unwrap();
    assert_eq!(both.prompt, PromptRequest::Preset("bw_woodcut"));
    let custom = body(json!({"prompt": "  a portrait at dusk  "})).unwrap();
    assert_eq!(
        custom.prompt,
        PromptRequest::Custom("a portrait at dusk".to_owned())
    );
    assert!(
        body(json!({"prompt": "é".repeat(1_000)})).is_ok(),
        "1000 characters, 2000 bytes"
    );
    assert!(body(json!({"prompt": "é".repeat(1_001)})).is_err());
}

#[test]
fn malformed_bodies_are_refused() {
    for bad in [
        json!([]),
        json!("text"),
        json!({}),
        json!({"prompt_id": 7}),
        json!({"prompt_id": "nope"}),
        json!({"prompt": ""}),
        json!({"prompt": "a\u{0007}b"}),
        json!({"prompt": "x", "seed": -1}),
        json!({"prompt": "x", "seed": 1.5}),
        json!({"prompt": "x", "seed": 9_007_199_254_740_992u64}),
        json!({"prompt": "x", "actor_name": "../etc"}),
        json!({"prompt": "x", "actor_name": 5}),
        json!({"prompt": "x", "base_image_path": "system_actors/../secret.jpg"}),
        json!({"prompt": "x", "base_image_path": "s3://another-bucket/system_actors/a.jpg"}),
        json!({"prompt": "x", "base_image_path": "system_actors/notes.txt"}),
        json!({"prompt": "x", "base_image_path": "system_actors//a.jpg"}),
    ] {
        assert!(body(bad.clone()).is_err(), "{bad} was accepted");
    }
}

fn resolve(
    actor: &str,
    request: Value,
    profile: Option<&ActorProfile>,
) -> Result<ResolvedActor, RequestError> {
    resolve_actor(
        &ActorId::parse(actor).unwrap(),
        &body(request).unwrap(),
        profile,
        BUCKET,
        &BaseImagePrefixes::default(),
    )
}

#[test]
fn the_profile_fills_in_and_a_different_name_is_refused() {
    let profile = ActorProfile {
        actor_name: Some("actor_one".to_owned()),
        sex: None,
        base_image_key: Some("system_actors/base/a1.png".to_owned()),
        trigger_word: None,
    };
    let from_profile = resolve("a1", json!({"prompt": "x"}), Some(&profile)).unwrap();
    assert_eq!(from_profile.actor_name, "actor_one");
    assert_eq!(from_profile.base_image_key, "system_actors/base/a1.png");
    // The profile's own photo is allowed outside the prefixes, in either form.
    let own = json!({"prompt": "x", "base_image_path": "s3://story-boards-assets/system_actors/base/a1.png"});
    assert!(resolve("a1", own, Some(&profile)).is_ok());
    let mismatch = json!({"prompt": "x", "actor_name": "someone_else"});
    assert!(matches!(
        resolve("a1", mismatch, Some(&profile)),
        Err(RequestError::ActorNameMismatch { .. })
    ));
    // The id is not the name when the profile says otherwise.
    assert!(matches!(
        resolve(
            "a1",
            json!({"prompt": "x", "actor_name": "a1"}),
            Some(&profile)
        ),
        Err(RequestError::ActorNameMismatch { .. })
    ));
}

#[test]
fn without_a_profile_name_the_actor_is_its_id() {
    let photo = "system_actors/base_images/a1.jpg";
    let nameless = ActorProfile {
        sex: Some("male".to_owned()),
        ..ActorProfile::default()
    };
    for profile in [None, Some(&nameless)] {
        let resolved = resolve(
            "a1",
            json!({"prompt": "x", "base_image_path": photo}),
            profile,
        )
        .unwrap();
        assert_eq!(resolved.actor_name, "a1");
        let named = json!({"prompt": "x", "actor_name": "a1", "base_image_path": photo});
        assert_eq!(resolve("a1", named, profile).unwrap().actor_name, "a1");
        let other = json!({"prompt": "x", "actor_name": "a2", "base_image_path": photo});
        assert!(matches!(
            resolve("a1", other, profile),
            Err(RequestError::ActorNameMismatch { .. })
        ));
        assert!(matches!(
            resolve("a1", json!({"prompt": "x"}), profile),
            Err(RequestError::UnknownActor(_))
        ));
    }
}

#[test]
fn a_photo_outside_the_actors_prefixes_is_not_allowed() {
    for path in [
        "system_actors/base_images/a2.jpg",
        "system_actors/training_data/a2/a2_1.jpg",
        "system_actors/base_images/a1_2.jpg",
        "elsewhere/a1.jpg",
        "s3://another-bucket/system_actors/base_images/a1.jpg",
    ] {
        let request = json!({"prompt": "x", "base_image_path": path});
        let refused = body(request).and_then(|checked| {
            resolve_actor(
                &ActorId::parse("a1").unwrap(),
                &checked,
                None,
                BUCKET,
                &BaseImagePrefixes::default(),
            )
        });
        assert!(
            matches!(refused, Err(RequestError::BaseImageNotAllowed { .. })),
            "{path}: {refused:?}"
        );
    }
    let own = json!({"prompt": "x", "base_image_path": "system_actors/training_data/a1/a1_3.jpg"});
    assert!(resolve("a1", own, None).is_ok());
}
