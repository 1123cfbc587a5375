//! The naming rule: every S3 key the service writes, and how an image's index is read back
//! from its key. One file, so that a writer and a reader of the bucket cannot disagree.

/// The prefix of every actor's training data.
pub const TRAINING_DATA_PREFIX: &str = "system_actors/training_data/";
/// The prefix of the trainer-ready exports (one folder per actor).
pub const TRAINING_EXPORTS_PREFIX: &str = "system_actors/training_exports/";
/// The prefix of the trained LoRA weights (one folder per actor).
pub const LORAS_PREFIX: &str = "system_actors/loras/";

/// The folder of an actor's training data.
pub fn training_folder(actor_name: &str) -> String {
    format!("{TRAINING_DATA_PREFIX}{actor_name}/")
}

/// The file name of an actor's image number `index`.
pub fn image_filename(actor_name: &str, index: u64) -> String {
    format!("{actor_name}_{index}.jpg")
}

/// The key of an actor's image number `index`.
pub fn image_key(actor_name: &str, index: u64) -> String {
    format!(
        "{}{}",
        training_folder(actor_name),
        image_filename(actor_name, index)
    )
}

/// The key of an actor's manifest.
pub fn manifest_key(actor_name: &str) -> String {
    format!("{}response.json", training_folder(actor_name))
}

/// The index of a key in an actor's folder named `{actor_name}_{n}.jpg` (any case of the
/// extension, `.jpeg` too), if it is one.
pub fn index_of_key(actor_name: &str, key: &str) -> Option<u64> {
    let name = key.strip_prefix(&training_folder(actor_name))?;
    let rest = name.strip_prefix(actor_name)?.strip_prefix('_')?;
    let (digits, extension) = rest.split_once('.')?;
    let is_jpeg = matches!(extension.to_ascii_lowercase().as_str(), "jpg" | "jpeg");
    let valid = is_jpeg
        && !digits.is_empty()
        && digits.len() <= 12
        && digits.bytes().all(|b| b.is_ascii_digit());
    valid.then(|| digits.parse().ok()).flatten()
}

/// The key of an image's caption: the same name beside it, ending in `.txt` (what LoRA
/// trainers read).
pub fn caption_key(image_key: &str) -> String {
    let stem = image_key
        .rsplit_once('.')
        .map_or(image_key, |(stem, _)| stem);
    format!("{stem}.txt")
}

/// The folder of an actor's exports.
pub fn exports_folder(actor_name: &str) -> String {
    format!("{TRAINING_EXPORTS_PREFIX}{actor_name}/")
}

/// The key of an actor's export `export_id`: a zip in the actor's exports folder.
pub fn export_key(actor_name: &str, export_id: &str) -> String {
    format!("{}{export_id}.zip", exports_folder(actor_name))
}

/// The folder of an actor's trained weights.
pub fn weights_folder(actor_name: &str) -> String {
    format!("{LORAS_PREFIX}{actor_name}/")
}

/// The key of the weights of an actor's training `training_id` (Replicate's tar, as it is).
pub fn weights_key(actor_name: &str, training_id: &str) -> String {
    format!("{}{training_id}.tar", weights_folder(actor_name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_indices() {
        assert_eq!(image_filename("a_b", 7), "a_b_7.jpg");
        assert_eq!(
            manifest_key("a_b"),
            "system_actors/training_data/a_b/response.json"
        );
        let folder = training_folder("a_b");
        assert_eq!(
            index_of_key("a_b", &format!("{folder}a_b_12.jpg")),
            Some(12)
        );
        assert_eq!(index_of_key("a_b", &format!("{folder}a_b_3.JPEG")), Some(3));
        for not_an_index in [
            "a_b_x.jpg",
            "a_b_.jpg",
            "a_b_1.png",
            "a_b_1_2.jpg",
            "other_1.jpg",
            "response.json",
        ] {
            assert_eq!(
                index_of_key("a_b", &format!("{folder}{not_an_index}")),
                None,
                "{not_an_index}"
            );
        }
        assert_eq!(
            index_of_key("a", &format!("{}a_b_1.jpg", training_folder("a"))),
            None
        );
    }

    #[test]
    fn captions_exports_and_weights_have_their_own_places() {
        assert_eq!(
            caption_key("system_actors/training_data/a_b/a_b_7.jpg"),
            "system_actors/training_data/a_b/a_b_7.txt"
        );
        assert_eq!(exports_folder("a_b"), "system_actors/training_exports/a_b/");
        assert_eq!(weights_folder("a_b"), "system_actors/loras/a_b/");
    }
}
