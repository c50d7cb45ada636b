//! The supervisor dashboard (`/`) and the agent page (`/agent`): plain HTML, CSS and
//! JavaScript from the repository's `web/` folder, embedded in the binary (no build step, no
//! CDN, nothing to install). The pages are public; everything they show comes from the
//! token-protected API and `/ws`.
//!
//! Assets are served under `/web/{file}` with an ETag and `Cache-Control: no-cache`, so a
//! browser revalidates and gets `304 Not Modified` until the binary changes.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// One embedded file.
struct Asset {
    name: &'static str,
    mime: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $mime:literal) => {
        Asset {
            name: $name,
            mime: $mime,
            body: include_bytes!(concat!("../../web/", $name)),
        }
    };
}

static ASSETS: [Asset; 7] = [
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("agent.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("common.js", "text/javascript; charset=utf-8"),
    asset!("charts.js", "text/javascript; charset=utf-8"),
    asset!("dashboard.js", "text/javascript; charset=utf-8"),
    asset!("agent.js", "text/javascript; charset=utf-8"),
];

/// `"<fnv-1a 64 of the body>"`, computed once per asset.
fn etag(i: usize) -> &'static str {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    &TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let h = a.body.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                    (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
                });
                format!("\"{h:016x}\"")
            })
            .collect()
    })[i]
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(i) = ASSETS.iter().position(|a| a.name == name) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "not found",
        )
            .into_response();
    };
    let tag = etag(i);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let common = [
        (header::ETAG, HeaderValue::from_static(tag)),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    let a = &ASSETS[i];
    (
        common,
        [(header::CONTENT_TYPE, HeaderValue::from_static(a.mime))],
        a.body,
    )
        .into_response()
}

/// `/`, `/agent` and `/web/{file}` (no token needed).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|h: HeaderMap| async move { serve("index.html", &h) }),
        )
        .route(
            "/agent",
            get(|h: HeaderMap| async move { serve("agent.html", &h) }),
        )
        .route(
            "/web/{file}",
            get(|Path(file): Path<String>, h: HeaderMap| async move { serve(&file, &h) }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get(path: &str, etag: Option<&str>) -> (StatusCode, HeaderMap, String) {
        let mut req = Request::get(path);
        if let Some(t) = etag {
            req = req.header(header::IF_NONE_MATCH, t);
        }
        let resp = router::<()>()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    /// `src="/web/x"` and `href="/web/x"` in HTML, `from './x'` in modules.
    fn references(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for pat in ["\"/web/", "'./"] {
            let mut rest = text;
            while let Some(i) = rest.find(pat) {
                rest = &rest[i + pat.len()..];
                let end = rest.find(['"', '\'']).unwrap_or(rest.len());
                out.push(rest[..end].to_string());
            }
        }
        out
    }

    #[tokio::test]
    async fn pages_and_every_asset_they_reference_are_served() {
        let mut seen = std::collections::HashSet::new();
        let mut queue = vec![
            ("/".to_string(), "login-form"),
            ("/agent".to_string(), "screen-pop"),
        ];
        while let Some((path, must_contain)) = queue.pop() {
            let (status, headers, body) = get(&path, None).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(body.contains(must_contain), "{path} lacks {must_contain}");
            let ct = headers[header::CONTENT_TYPE].to_str().unwrap();
            let want = match path.rsplit('.').next() {
                Some("js") => "text/javascript",
                Some("css") => "text/css",
                _ => "text/html",
            };
            assert!(ct.starts_with(want), "{path}: {ct}");
            for r in references(&body) {
                if seen.insert(r.clone()) {
                    queue.push((format!("/web/{r}"), ""));
                }
            }
        }
        for a in &ASSETS[2..] {
            assert!(seen.contains(a.name), "{} is embedded but unused", a.name);
        }
    }

    #[tokio::test]
    async fn etag_revalidation_answers_304_and_unknown_files_404() {
        let (status, headers, _) = get("/web/dashboard.js", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        let tag = headers[header::ETAG].to_str().unwrap().to_string();
        let (status, headers, body) = get("/web/dashboard.js", Some(&tag)).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        assert!(body.is_empty());
        assert_eq!(headers[header::ETAG].to_str().unwrap(), tag);
        let (status, _, _) = get("/web/dashboard.js", Some("\"other\"")).await;
        assert_eq!(status, StatusCode::OK);
        let (_, other, _) = get("/web/agent.js", None).await;
        assert_ne!(other[header::ETAG].to_str().unwrap(), tag);
        for missing in [
            "/web/nope.js",
            "/web/..%2Fapi%2Fsrc%2Flib.rs",
            "/web/index.html/x",
        ] {
            assert_eq!(
                get(missing, None).await.0,
                StatusCode::NOT_FOUND,
                "{missing}"
            );
        }
    }
}
