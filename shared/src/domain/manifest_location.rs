//! Where a manifest entry points: the object key a location names (a URL, virtual-hosted or
//! path-style, or a key as written) and the file name it ends with. Legacy entries hold
//! either, so the listing and the decisions read them through here.

/// The object key a manifest location names: a URL's decoded path (less the bucket, for a
/// path-style `s3.` host), or the text itself when it is a key.
pub fn key_of_location(location: &str) -> String {
    let without_query = location.split(['?', '#']).next().unwrap_or(location);
    let Some((_, rest)) = without_query.split_once("://") else {
        return without_query.trim_start_matches('/').to_owned();
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let path_style = host.starts_with("s3.") || host.starts_with("s3-");
    let path = match path_style {
        true => path.split_once('/').map_or("", |(_, key)| key),
        false => path,
    };
    percent_decoded(path).unwrap_or_else(|| path.to_owned())
}

/// A path segment with its `%XX` escapes decoded; `None` when they are not valid UTF-8.
pub fn percent_decoded(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                i += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(decoded).ok()
}

/// The file name a key ends with, if it ends with one.
pub fn file_name(key: &str) -> Option<String> {
    key.rsplit('/')
        .next()
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_is_decoded_and_bad_escapes_are_kept() {
        assert_eq!(percent_decoded("a_1.jpg").as_deref(), Some("a_1.jpg"));
        assert_eq!(
            percent_decoded("old%20one.jpg").as_deref(),
            Some("old one.jpg")
        );
        assert_eq!(percent_decoded("100%.jpg").as_deref(), Some("100%.jpg"));
        assert_eq!(percent_decoded("%FF.jpg"), None);
    }

    #[test]
    fn legacy_urls_name_their_keys_virtual_hosted_path_style_or_escaped() {
        let key = "system_actors/training_data/a/old 1.jpg";
        for url in [
            "https://b.s3.us-east-1.amazonaws.com/system_actors/training_data/a/old%201.jpg",
            "https://s3.us-east-1.amazonaws.com/b/system_actors/training_data/a/old%201.jpg",
            "system_actors/training_data/a/old 1.jpg",
        ] {
            assert_eq!(key_of_location(url), key, "{url}");
        }
    }
}
