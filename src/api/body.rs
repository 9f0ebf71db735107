//! A deadline on request bodies, and the one mapping of body-read failures to problems.
//!
//! hyper bounds how long a client may take to send a request's headers
//! (`http.header_read_timeout_seconds`), but not its body: a client that announces 1 MiB and
//! sends a byte a minute would hold the request, the handler and (over HTTP/2) a stream for as
//! long as it likes. The accept loop wraps every request body in a [`DeadlineBody`]; reading past
//! `http.body_read_timeout_seconds` after the headers arrived fails with [`BodyTimedOut`], which
//! every body reader maps to `408 /problems/request-timeout` through [`read_failure`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use hyper::body::{Body as HttpBody, Frame, SizeHint};

use super::problem::ApiError;

/// The body did not arrive complete within `http.body_read_timeout_seconds`.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error(
    "the request body did not arrive within http.body_read_timeout_seconds ({seconds} s) of its headers"
)]
pub struct BodyTimedOut {
    /// The limit, for the message.
    pub seconds: u64,
}

/// A request body that fails with [`BodyTimedOut`] once its deadline has passed while the
/// client still owes data. The clock starts when the headers arrived, so the whole body must
/// come within the limit, however it is split into chunks or frames.
pub struct DeadlineBody<B> {
    inner: B,
    deadline: Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
}

impl<B> DeadlineBody<B> {
    /// Wraps `inner`, which must be complete within `limit` from now.
    pub fn new(inner: B, limit: Duration) -> DeadlineBody<B> {
        DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(limit)),
            limit,
        }
    }
}

impl<B> HttpBody for DeadlineBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|r| r.map_err(Into::into))),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut {
                    seconds: this.limit.as_secs(),
                })))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request whose body has a deadline; a request without a body (most GETs) is left as it is,
/// so it arms no timer.
pub fn with_deadline(
    req: axum::http::Request<hyper::body::Incoming>,
    limit: Duration,
) -> axum::http::Request<axum::body::Body> {
    req.map(|body| {
        if body.is_end_stream() {
            axum::body::Body::new(body)
        } else {
            axum::body::Body::new(DeadlineBody::new(body, limit))
        }
    })
}

/// Maps a failure to read a body: 413 over the limit, 408 too slow, 400 anything else (a broken
/// chunked encoding, a reset stream).
pub fn read_failure(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::TooLarge("the body exceeds http.body_limit_bytes".into());
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&rejection);
    while let Some(e) = cause {
        if let Some(timed_out) = e.downcast_ref::<BodyTimedOut>() {
            return ApiError::BodyTimeout(timed_out.to_string());
        }
        cause = e.source();
    }
    ApiError::Malformed {
        detail: rejection.body_text(),
        field: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::FromRequest;

    /// A body whose client never sends anything.
    struct Stalled;

    impl HttpBody for Stalled {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn a_stalled_body_is_a_408_and_a_prompt_one_is_read() {
        let body = axum::body::Body::new(DeadlineBody::new(Stalled, Duration::from_millis(50)));
        let rejection = Bytes::from_request(axum::http::Request::new(body), &())
            .await
            .expect_err("times out");
        match read_failure(rejection) {
            ApiError::BodyTimeout(detail) => {
                assert!(detail.contains("body_read_timeout_seconds"), "{detail}")
            }
            other => panic!("expected 408, got {other:?}"),
        }

        let body = axum::body::Body::new(DeadlineBody::new(
            axum::body::Body::from("{}"),
            Duration::from_secs(5),
        ));
        assert_eq!(
            Bytes::from_request(axum::http::Request::new(body), &())
                .await
                .expect("read"),
            Bytes::from_static(b"{}")
        );
    }
}
