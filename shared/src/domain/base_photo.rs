//! Which base photos an actor may use. A request acts for one actor, so the photo it sends to
//! the paid model must be that actor's: the profile's own `base_image_key`, or a key under one
//! of the allowed prefixes with the actor's name filled in. Anything else is refused with one
//! answer, whether the object exists or not, so the refusal tells nothing about the bucket.

/// Extensions a base photo may have.
pub const IMAGE_EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "webp"];

/// Where a prefix puts the actor's name.
pub const ACTOR_NAME_PLACEHOLDER: &str = "{actor_name}";

/// The prefixes allowed when `BASE_IMAGE_PREFIXES` is unset: the actor's base photos and its
/// own training images.
pub const DEFAULT_BASE_IMAGE_PREFIXES: [&str; 2] = [
    "system_actors/base_images/{actor_name}",
    "system_actors/training_data/{actor_name}/",
];

/// The allowed prefixes, each a template that may hold [`ACTOR_NAME_PLACEHOLDER`].
///
/// A prefix ending in `/` allows every key under it. One that does not (`.../{actor_name}`)
/// allows the file named exactly so with an image extension (`alice.jpg`) and every key under
/// the folder of that name (`alice/front.png`), never a longer name (`alice_2.jpg`,
/// `alice.v2.jpg`), which would be another actor's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImagePrefixes(Vec<String>);

impl Default for BaseImagePrefixes {
    fn default() -> Self {
        Self(DEFAULT_BASE_IMAGE_PREFIXES.map(str::to_owned).to_vec())
    }
}

impl BaseImagePrefixes {
    /// Reads a comma-separated list of prefixes; `None` when it holds none.
    pub fn parse(setting: &str) -> Option<Self> {
        let prefixes: Vec<String> = setting
            .split(',')
            .map(str::trim)
            .filter(|prefix| !prefix.is_empty())
            .map(str::to_owned)
            .collect();
        (!prefixes.is_empty()).then_some(Self(prefixes))
    }

    /// The prefixes with `actor_name` filled in, as a refusal may show them.
    pub fn for_actor(&self, actor_name: &str) -> Vec<String> {
        self.0
            .iter()
            .map(|template| template.replace(ACTOR_NAME_PLACEHOLDER, actor_name))
            .collect()
    }

    /// Whether `key` (already checked by the key rule) is under a prefix of `actor_name`'s.
    pub fn allows(&self, actor_name: &str, key: &str) -> bool {
        self.for_actor(actor_name)
            .iter()
            .any(|prefix| under_prefix(prefix, key))
    }
}

fn under_prefix(prefix: &str, key: &str) -> bool {
    let Some(rest) = key.strip_prefix(prefix) else {
        return false;
    };
    if prefix.ends_with('/') {
        return !rest.is_empty();
    }
    if let Some(below) = rest.strip_prefix('/') {
        return !below.is_empty();
    }
    rest.strip_prefix('.').is_some_and(|extension| {
        IMAGE_EXTENSIONS.contains(&extension.to_ascii_lowercase().as_str())
    })
}

/// What kind of image the bytes start like, by their magic numbers.
pub fn image_type(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_allow_the_actors_photos_and_training_images_only() {
        let prefixes = BaseImagePrefixes::default();
        for allowed in [
            "system_actors/base_images/alice.jpg",
            "system_actors/base_images/alice.PNG",
            "system_actors/base_images/alice/front.webp",
            "system_actors/training_data/alice/alice_3.jpg",
        ] {
            assert!(prefixes.allows("alice", allowed), "{allowed}");
        }
        for refused in [
            "system_actors/base_images/alice_2.jpg",
            "system_actors/base_images/alice.v2.jpg",
            "system_actors/base_images/alicex/front.jpg",
            "system_actors/base_images/alice.txt",
            "system_actors/base_images/alice",
            "system_actors/base_images/alice/",
            "system_actors/training_data/alice_2/alice_2_1.jpg",
            "system_actors/training_data/bob/bob_1.jpg",
            "system_actors/base_images/bob.jpg",
            "system_actors/other/alice.jpg",
        ] {
            assert!(!prefixes.allows("alice", refused), "{refused}");
        }
    }

    #[test]
    fn the_setting_is_a_comma_separated_list_of_templates() {
        let prefixes =
            BaseImagePrefixes::parse(" system_actors/portraits/{actor_name}/ , shared/ ,").unwrap();
        assert_eq!(
            prefixes.for_actor("bob"),
            ["system_actors/portraits/bob/", "shared/"]
        );
        assert!(prefixes.allows("bob", "system_actors/portraits/bob/a.jpg"));
        assert!(prefixes.allows("bob", "shared/any.jpg"));
        assert!(!prefixes.allows("bob", "system_actors/base_images/bob.jpg"));
        assert_eq!(BaseImagePrefixes::parse(" , "), None);
    }

    #[test]
    fn image_types_by_magic() {
        assert_eq!(image_type(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(image_type(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(image_type(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(image_type(b"hello world!"), None);
    }
}
