//! Maps a request path to its handler.

use crate::http::{Request, Response};
use crate::state::Shared;
use crate::{api, token_endpoint};

/// Path of the OAuth2 token endpoint.
pub(crate) const TOKEN_PATH: &str = "/oauth/token";

/// Answers one request.
pub(crate) fn route(shared: &Shared, req: &Request) -> Response {
    match req.path() {
        TOKEN_PATH => token_endpoint::handle_token(shared, req),
        "/custom/refresh" => token_endpoint::handle_custom_refresh(shared, req),
        "/redirect" => api::redirect(shared, req),
        p if p == "/api" || p.starts_with("/api/") => api::handle(shared, req),
        _ => Response::json(404, r#"{"error":"not_found"}"#),
    }
}
