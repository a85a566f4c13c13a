//! The web app for members and operators (issue 12): static files compiled
//! into the binary (`api/ui/`), served under `/ui/` with a strict
//! Content-Security-Policy. The app itself talks to the node only through the
//! public HTTP API with `cc-user`/`cc-auth`, like any other client.

use axum::http::header::{
    ACCEPT, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::app::AppState;
use crate::error::ApiError;

/// The app's files: name under `/ui/`, media type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("index.html", "text/html; charset=utf-8", include_bytes!("../../ui/index.html")),
    ("app.css", "text/css; charset=utf-8", include_bytes!("../../ui/app.css")),
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("../../ui/app.js")),
    ("api.js", "text/javascript; charset=utf-8", include_bytes!("../../ui/api.js")),
    ("chart.js", "text/javascript; charset=utf-8", include_bytes!("../../ui/chart.js")),
    ("words.js", "text/javascript; charset=utf-8", include_bytes!("../../ui/words.js")),
    ("favicon.svg", "image/svg+xml", include_bytes!("../../ui/favicon.svg")),
];

/// The policy every app answer carries: scripts and styles only from files of
/// this origin (no inline script or style), requests only to this origin, no
/// framing, no plugins, forms nowhere.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

/// Routes of the app: `/ui`, `/ui/` and `/ui/{file}`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(root))
        .route("/ui", get(|| async { redirect("/ui/") }))
        .route("/ui/", get(|| async { asset("index.html") }))
        .route("/ui/{file}", get(|axum::extract::Path(file): axum::extract::Path<String>| async move { asset(&file) }))
}

fn redirect(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, HeaderValue::from_static(to))]).into_response()
}

/// Security headers of every app answer.
fn secure(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin"));
    headers.insert(HeaderName::from_static("cross-origin-resource-policy"), HeaderValue::from_static("same-origin"));
    headers.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=()"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
}

fn asset(name: &str) -> Response {
    let Some((_, media, bytes)) = ASSETS.iter().find(|(n, _, _)| *n == name) else {
        return ApiError::does_not_exist("route", format!("/ui/{name}")).into_response();
    };
    let mut response = ([(CONTENT_TYPE, HeaderValue::from_static(media))], *bytes).into_response();
    secure(&mut response);
    response
}

/// Whether a request comes from a browser navigating (it accepts HTML).
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("text/html")))
}

/// `GET /`: a browser is sent to the app; anything else is answered as
/// before (`405 CCOtherViolation`, only `OPTIONS /` is a Credit Commons route).
pub async fn root(headers: HeaderMap) -> Response {
    if wants_html(&headers) {
        return redirect("/ui/");
    }
    super::method_not_allowed().await.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_request_accepting_html_is_a_browser() {
        let with = |accept: &str| {
            let mut h = HeaderMap::new();
            h.insert(ACCEPT, HeaderValue::from_str(accept).expect("header"));
            wants_html(&h)
        };
        assert!(with("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"));
        assert!(with("TEXT/HTML"));
        assert!(!with("application/json"));
        assert!(!with("*/*"));
        assert!(!wants_html(&HeaderMap::new()));
    }

    #[test]
    fn every_asset_is_found_and_nothing_else() {
        for (name, _, _) in ASSETS {
            assert_eq!(asset(name).status(), StatusCode::OK, "{name}");
        }
        assert_eq!(asset("../Cargo.toml").status(), StatusCode::NOT_FOUND);
        assert_eq!(asset("nope.js").status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn no_asset_carries_inline_script_or_style() {
        let html = std::str::from_utf8(ASSETS[0].2).expect("utf-8");
        assert!(!html.contains("<style"), "inline style element");
        assert!(!html.contains(" style="), "inline style attribute");
        for (at, _) in html.match_indices(" on") {
            let rest = &html[at + 3..];
            let name_len = rest.bytes().take_while(u8::is_ascii_lowercase).count();
            assert!(name_len == 0 || !rest[name_len..].starts_with('='), "inline event handler at {at}");
        }
        for part in html.split("<script").skip(1) {
            assert!(part.trim_start().starts_with("type=\"module\" src="), "inline script: {part}");
        }
    }
}
