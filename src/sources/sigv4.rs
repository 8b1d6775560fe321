//! AWS Signature Version 4, header form: just enough to sign the `GetCallerIdentity` request that an
//! `external_account` file with an `aws` source hands to Google's STS as its subject token.
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html>
//!
//! The AWS SDK's signer (`aws-sigv4`) drags in the `aws-smithy-*` runtime; the algorithm itself is a
//! canonical string and four HMACs, so it lives here with ring doing the cryptography (HMAC-SHA256 and
//! SHA-256), checked against AWS's published test-suite signatures.

use std::time::SystemTime;

use reqwest::Url;
use ring::hmac;

use crate::digest::{hex, sha256_hex};
use crate::token::Secret;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// AWS credentials: an access key id, its secret and, for temporary credentials, a session token.
#[derive(Debug, Clone)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
}

/// What to sign. `headers` are the extra headers to sign besides `host`, `x-amz-date` and
/// `x-amz-security-token`, which the signer adds.
pub struct Signable<'a> {
    pub method: &'a str,
    pub url: &'a Url,
    pub region: &'a str,
    pub service: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub payload: &'a [u8],
}

/// The headers of the signed request, names as they are sent (`Authorization`, then lowercase names).
pub fn sign(
    req: &Signable<'_>,
    credentials: &AwsCredentials,
    now: SystemTime,
) -> Vec<(String, String)> {
    let amz_date = amz_date(now);
    sign_at(req, credentials, &amz_date)
}

/// `sign` with a fixed `x-amz-date` (`YYYYMMDDTHHMMSSZ`), for the published test vectors.
pub fn sign_at(
    req: &Signable<'_>,
    credentials: &AwsCredentials,
    amz_date: &str,
) -> Vec<(String, String)> {
    let date_stamp = &amz_date[..amz_date.len().min(8)];
    let mut headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    headers.push(("host".into(), host_header(req.url)));
    headers.push(("x-amz-date".into(), amz_date.to_string()));
    if let Some(token) = &credentials.session_token {
        headers.push(("x-amz-security-token".into(), token.expose().to_string()));
    }
    headers.sort();

    let canonical_headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect();
    let signed_headers = headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_uri(req.url),
        canonical_query(req.url),
        canonical_headers,
        signed_headers,
        sha256_hex(req.payload),
    );
    let scope = format!("{date_stamp}/{}/{}/aws4_request", req.region, req.service);
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    );

    let secret = format!("AWS4{}", credentials.secret_access_key.expose());
    let mut key = hmac_sha256(secret.as_bytes(), date_stamp.as_bytes());
    for part in [req.region, req.service, "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    let signature = hex(&hmac_sha256(&key, string_to_sign.as_bytes()));
    let authorization = format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        credentials.access_key_id
    );

    let mut out = vec![("Authorization".to_string(), authorization)];
    out.extend(headers);
    out
}

/// `YYYYMMDDTHHMMSSZ` in UTC.
pub fn amz_date(now: SystemTime) -> String {
    // humantime gives `YYYY-MM-DDTHH:MM:SSZ`; SigV4 wants the basic ISO 8601 form of the same instant.
    humantime::format_rfc3339_seconds(now)
        .to_string()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect()
}

fn host_header(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// The path, each segment URI-encoded once (it already is, as the URL parser normalised it).
fn canonical_uri(url: &Url) -> String {
    let path = url.path();
    if path.is_empty() {
        "/".to_string()
    } else {
        path.to_string()
    }
}

/// The query's parameters, decoded, re-encoded with AWS's unreserved set and sorted by name, then value.
fn canonical_query(url: &Url) -> String {
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (uri_encode(&k, false), uri_encode(&v, false)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes every byte outside `A-Z a-z 0-9 - _ . ~` (and `/` when `keep_slash`), in upper-case
/// hex: AWS's URI encoding, and Python's `urllib.parse.quote` with its default `safe="/"`.
pub fn uri_encode(value: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        let unreserved = byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~');
        if unreserved || (keep_slash && byte == b'/') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&key, data).as_ref().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The credentials of AWS's SigV4 test suite (aws-sig-v4-test-suite), all fake.
    fn suite_credentials(session_token: Option<&str>) -> AwsCredentials {
        AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: session_token.map(Secret::new),
        }
    }

    fn suite(method: &str, url: &str) -> Vec<(String, String)> {
        let url = Url::parse(url).unwrap();
        let req = Signable {
            method,
            url: &url,
            region: "us-east-1",
            service: "service",
            headers: &[],
            payload: b"",
        };
        sign_at(&req, &suite_credentials(None), "20150830T123600Z")
    }

    fn authorization(headers: &[(String, String)]) -> &str {
        &headers
            .iter()
            .find(|(n, _)| n == "Authorization")
            .unwrap()
            .1
    }

    #[test]
    fn get_vanilla() {
        let headers = suite("GET", "https://example.amazonaws.com/");
        assert_eq!(
            authorization(&headers),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
        assert_eq!(
            headers[1..],
            [
                ("host".to_string(), "example.amazonaws.com".to_string()),
                ("x-amz-date".to_string(), "20150830T123600Z".to_string()),
            ]
        );
    }

    #[test]
    fn get_vanilla_query_order_key_case() {
        let headers = suite(
            "GET",
            "https://example.amazonaws.com/?Param2=value2&Param1=value1",
        );
        assert!(authorization(&headers).ends_with(
            "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        ));
    }

    #[test]
    fn post_vanilla() {
        let headers = suite("POST", "https://example.amazonaws.com/");
        assert!(authorization(&headers).ends_with(
            "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        ));
    }

    #[test]
    fn session_token_and_extra_headers_are_signed() {
        let url = Url::parse(
            "https://sts.eu-west-1.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
        )
        .unwrap();
        let req = Signable {
            method: "POST",
            url: &url,
            region: "eu-west-1",
            service: "sts",
            headers: &[("X-Goog-Cloud-Target-Resource", "//iam.googleapis.com/x")],
            payload: b"",
        };
        let headers = sign_at(&req, &suite_credentials(Some("tok")), "20200101T000000Z");
        let auth = authorization(&headers);
        assert!(auth.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20200101/eu-west-1/sts/aws4_request, \
             SignedHeaders=host;x-amz-date;x-amz-security-token;x-goog-cloud-target-resource, Signature="
        ));
        let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "Authorization",
                "host",
                "x-amz-date",
                "x-amz-security-token",
                "x-goog-cloud-target-resource"
            ]
        );
    }

    #[test]
    fn dates_and_encoding() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_440_938_160);
        assert_eq!(amz_date(t), "20150830T123600Z");
        assert_eq!(uri_encode("a b/c~:", true), "a%20b/c~%3A");
        assert_eq!(uri_encode("a b/c", false), "a%20b%2Fc");
    }
}
