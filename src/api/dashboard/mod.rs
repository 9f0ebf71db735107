//! The supervisors' live dashboard: `GET /dashboard` and its few static assets.
//!
//! The page, its script, its style sheet and the vendored chart library (Chart.js, pinned; see
//! `assets/VENDORED.md`) are compiled into the binary with `include_str!`, because a hotline
//! centre's network may be closed: nothing is loaded from a CDN, and the page works wherever the
//! gateway answers. The page holds no data of its own; it signs in with a supervisor token and
//! reads the same JSON API the consoles use (`/v1/queues`, `/v1/dashboard/*`, `/v1/events`), so
//! what it shows cannot disagree with the API or with `/metrics`.
//!
//! Only the files listed in [`ASSETS`] are served: a name is looked up, never joined to a path,
//! so no request can reach the file system. Unknown names are a problem+json 404 like any other
//! unknown resource.

use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::api::problem::ApiError;
use crate::state::AppState;

/// One embedded file: its name under `/dashboard/assets/`, content type and bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// The page itself, served at `/dashboard`.
const INDEX: Asset = Asset {
    name: "index.html",
    content_type: "text/html; charset=utf-8",
    body: include_str!("assets/index.html"),
};

/// Every file the page loads; anything else under `/dashboard/assets/` is a 404.
const ASSETS: &[Asset] = &[
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/app.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("assets/app.css"),
    },
    Asset {
        name: "chart.umd.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/chart.umd.js"),
    },
    Asset {
        name: "chart.js.LICENSE.md",
        content_type: "text/plain; charset=utf-8",
        body: include_str!("assets/chart.js.LICENSE.md"),
    },
];

/// The page may load only its own assets and talk only to its own origin; Chart.js sets canvas
/// sizes through the CSSOM, which `style-src 'self'` allows, so no inline code is permitted.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Strong validators for each file, computed once: the file names carry no version, so browsers
/// must revalidate (`no-cache`) and get a cheap `304` while the binary has not changed, and the
/// new files at once after an upgrade, never an old script against a new page.
static ETAGS: LazyLock<Vec<(&'static str, String)>> = LazyLock::new(|| {
    std::iter::once(&INDEX)
        .chain(ASSETS.iter())
        .map(|a| {
            let digest = Sha256::digest(a.body.as_bytes());
            (a.name, format!("\"{}\"", hex::encode(&digest[..12])))
        })
        .collect()
});

/// The dashboard's routes, merged into the API router by [`crate::router::app`]:
/// `GET /dashboard` (the page) and `GET /dashboard/assets/{file}` (its embedded files).
/// Both are open, like `/healthz`: they hold no data, and every data request the page makes
/// carries the supervisor's token.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/dashboard", get(page))
        .route("/dashboard/assets/{file}", get(asset))
}

/// `GET /dashboard`: the page.
async fn page(headers: HeaderMap) -> Response {
    serve(&INDEX, &headers)
}

/// `GET /dashboard/assets/{file}`: one of the known files, else problem+json 404.
async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    ASSETS
        .iter()
        .find(|a| a.name == file)
        .map(|a| serve(a, &headers))
        .ok_or_else(|| ApiError::NotFound(format!("no dashboard asset named {file:?}")))
}

/// Answers with the file, or `304` when the browser's copy is still this build's.
fn serve(asset: &Asset, request: &HeaderMap) -> Response {
    let etag = ETAGS
        .iter()
        .find(|(name, _)| *name == asset.name)
        .map(|(_, tag)| tag.as_str())
        .unwrap_or_default();
    let fresh = !etag.is_empty()
        && request
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.body.into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(etag)
        && !etag.is_empty()
    {
        headers.insert(header::ETAG, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if asset.name == INDEX.name {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        // The token travels in the EventSource URL; no other site may learn page URLs.
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_the_page_names_is_served() {
        for a in ASSETS
            .iter()
            .filter(|a| a.name.ends_with(".js") || a.name.ends_with(".css"))
        {
            assert!(
                INDEX
                    .body
                    .contains(&format!("/dashboard/assets/{}", a.name)),
                "index.html does not load {}",
                a.name
            );
        }
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        for a in std::iter::once(&INDEX).chain(ASSETS.iter().filter(|a| a.name.starts_with("app")))
        {
            assert!(
                !a.body.contains("http://"),
                "{} names an http:// URL",
                a.name
            );
            assert!(
                !a.body.contains("https://"),
                "{} names an https:// URL",
                a.name
            );
        }
    }
}
