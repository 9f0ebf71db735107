//! A JSON body extractor whose every rejection is a problem+json naming the field.
//!
//! axum's own `Json` rejects with plain text and without the field's path; partners fixing
//! their integration need `region.code`, not "line 1 column 87".

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

use super::problem::ApiError;

/// A request body parsed as `T`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| {
                let v = v.trim();
                v.eq_ignore_ascii_case("application/json") || v.ends_with("+json")
            })
            .unwrap_or(false);
        if !json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(super::body::read_failure)?;
        parse(&bytes).map(JsonBody)
    }
}

/// Parses JSON, reporting the path of the field that failed. JSON must be UTF-8 (RFC 8259), and
/// a body that is not says so plainly rather than as a confusing parse error. Nesting deeper
/// than serde_json's recursion limit (128) is a 400, not a stack overflow. The body is one
/// value: anything but whitespace after it is a 400 too.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(ApiError::Malformed {
            detail: format!(
                "the body is not valid UTF-8: invalid byte at offset {}",
                e.valid_up_to()
            ),
            field: None,
        });
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let inner = e.inner().to_string();
        let path = e.path().to_string();
        let field = field_of(&path, &inner);
        ApiError::Malformed {
            detail: without_position(inner),
            field,
        }
    })?;
    // One value per body: a second ticket after the first (`{...}{...}`) would otherwise be
    // dropped without a word while the first is answered 201.
    de.end().map_err(|e| ApiError::Malformed {
        detail: format!(
            "{}: the body must hold one JSON value, with nothing but whitespace after it",
            without_position(e.to_string())
        ),
        field: None,
    })?;
    Ok(value)
}

/// serde_json appends " at line L column C"; the field path says more to a partner.
fn without_position(message: String) -> String {
    message
        .rsplit_once(" at line ")
        .map(|(head, _)| head.to_string())
        .unwrap_or(message)
}

/// The field a serde error is about: the path, plus the field named in "missing field `x`".
fn field_of(path: &str, message: &str) -> Option<String> {
    let named = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    // serde_path_to_error writes "." for the root and "?" where it knows no position.
    let base = if path == "." || path == "?" { "" } else { path };
    match (named, base) {
        (Some(name), "") => Some(name.to_string()),
        (Some(name), base) => Some(format!("{base}.{name}")),
        (None, "") => None,
        (None, base) => Some(base.to_string()),
    }
}

/// Query parameters, refused as problem+json (400) naming the parameter, like bodies are;
/// axum's own `Query` would answer in plain text.
pub struct QueryParams<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for QueryParams<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(v)| QueryParams(v))
            .map_err(|e| ApiError::Malformed {
                detail: format!("query string: {}", e.body_text()),
                field: None,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        code: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        region: Inner,
        n: Option<u32>,
    }

    fn field(body: &str) -> Option<String> {
        match parse::<Outer>(body.as_bytes()) {
            Err(ApiError::Malformed { field, .. }) => field,
            other => panic!("expected malformed, got {other:?}"),
        }
    }

    #[test]
    fn errors_name_the_field_by_its_path() {
        assert_eq!(
            field(r#"{"region":{"code":5}}"#).as_deref(),
            Some("region.code")
        );
        assert_eq!(field(r#"{"region":{}}"#).as_deref(), Some("region.code"));
        assert_eq!(field(r#"{"n":1}"#).as_deref(), Some("region"));
        assert_eq!(
            field(r#"{"region":{"code":"1"},"n":-1}"#).as_deref(),
            Some("n")
        );
        assert_eq!(
            field(r#"{"region":{"code":"1"},"extra":1}"#).as_deref(),
            Some("extra")
        );
        assert_eq!(field("{not json").as_deref(), None);
    }

    #[test]
    fn anything_but_whitespace_after_the_value_is_malformed() {
        let one = r#"{"region":{"code":"1"}}"#;
        for body in [
            format!("{one}{one}"),
            format!("{one} {one}"),
            format!("{one}}}"),
            format!("{one}x"),
            format!("{one}\n0"),
        ] {
            match parse::<Outer>(body.as_bytes()) {
                Err(ApiError::Malformed { detail, .. }) => {
                    assert!(detail.contains("trailing"), "{body}: {detail}")
                }
                other => panic!("{body}: expected malformed, got {other:?}"),
            }
        }
        for body in [format!("{one}\r\n\t "), format!(" {one}")] {
            assert!(parse::<Outer>(body.as_bytes()).is_ok(), "{body:?}");
        }
        assert!(matches!(
            parse::<serde_json::Value>(b"1 2"),
            Err(ApiError::Malformed { .. })
        ));
    }

    #[test]
    fn invalid_utf8_and_deep_nesting_are_malformed_not_fatal() {
        match parse::<Outer>(b"{\"region\":{\"code\":\"\xff\xfe\"}}") {
            Err(ApiError::Malformed { detail, .. }) => {
                assert!(detail.contains("UTF-8"), "{detail}")
            }
            other => panic!("expected malformed, got {other:?}"),
        }
        let deep = "[".repeat(100_000);
        assert!(matches!(
            parse::<serde_json::Value>(deep.as_bytes()),
            Err(ApiError::Malformed { .. })
        ));
        let deep_field = format!("{{\"region\":{{\"code\":{}}}}}", "[".repeat(100_000));
        assert!(matches!(
            parse::<Outer>(deep_field.as_bytes()),
            Err(ApiError::Malformed { .. })
        ));
    }
}
