//! Checks on a prediction's output before it is downloaded and after.

use reqwest::Url;

/// Host names that are this machine: they may be fetched over plain HTTP (the emulator).
const LOOPBACK_HOSTS: [&str; 3] = ["127.0.0.1", "localhost", "[::1]"];

/// Parses an output URL and checks it may be fetched: HTTPS (plain HTTP only for a loopback
/// name), on an allowed host or a subdomain of one, no credentials in it.
pub fn allowed_output_url(raw: &str, allowed_hosts: &[String]) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|_| "the output is not a URL".to_owned())?;
    let host = url
        .host_str()
        .ok_or_else(|| "the output URL has no host".to_owned())?
        .to_ascii_lowercase();
    let allowed = allowed_hosts
        .iter()
        .any(|name| host == *name || host.ends_with(&format!(".{name}")));
    if !allowed {
        return Err(format!("output host {host} is not allowed"));
    }
    match url.scheme() {
        "https" => {}
        "http" if LOOPBACK_HOSTS.contains(&host.as_str()) => {}
        scheme => return Err(format!("output scheme {scheme} is not allowed")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the output URL carries credentials".to_owned());
    }
    Ok(url)
}

/// Whether the bytes are a whole JPEG file, judged by its markers (start of image, a marker
/// segment, end of image) without decoding it.
pub fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.len() >= 6 && bytes.starts_with(&[0xFF, 0xD8, 0xFF]) && bytes.ends_with(&[0xFF, 0xD9])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(list: &[&str]) -> Vec<String> {
        list.iter().map(|h| h.to_string()).collect()
    }

    #[test]
    fn allows_the_host_and_its_subdomains_over_https() {
        let allowed = hosts(&["replicate.delivery"]);
        for ok in [
            "https://replicate.delivery/x/out.jpg",
            "https://pbxt.replicate.delivery/x/out.jpg",
            "https://PBXT.Replicate.Delivery/x/out.jpg",
        ] {
            assert!(allowed_output_url(ok, &allowed).is_ok(), "{ok}");
        }
        for bad in [
            "http://replicate.delivery/x.jpg",
            "https://evilreplicate.delivery/x.jpg",
            "https://replicate.delivery.evil.com/x.jpg",
            "https://user:pw@replicate.delivery/x.jpg",
            "ftp://replicate.delivery/x.jpg",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(allowed_output_url(bad, &allowed).is_err(), "{bad}");
        }
    }

    #[test]
    fn plain_http_only_for_an_allowed_loopback_name() {
        let allowed = hosts(&["127.0.0.1"]);
        assert!(allowed_output_url("http://127.0.0.1:8080/files/a.jpg", &allowed).is_ok());
        assert!(allowed_output_url("http://localhost:8080/files/a.jpg", &allowed).is_err());
        let allowed = hosts(&["example.com"]);
        assert!(allowed_output_url("http://example.com/a.jpg", &allowed).is_err());
    }

    #[test]
    fn jpeg_is_judged_by_its_markers() {
        assert!(is_jpeg(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0xFF, 0xD9]));
        assert!(
            !is_jpeg(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x00, 0x00]),
            "truncated"
        );
        assert!(!is_jpeg(b"\x89PNG\r\n\x1a\n....\xFF\xD9"));
        assert!(!is_jpeg(&[0xFF, 0xD8, 0xFF, 0xD9]));
        assert!(!is_jpeg(b""));
    }
}
