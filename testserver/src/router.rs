//! Maps a request path to its handler.

use crate::http::{Request, Response};
use crate::login::{
    AUTHORIZE_PATH, DEVICE_PATH, OAUTH_METADATA_PATH, OPENID_METADATA_PATH, REVOKE_PATH,
};
use crate::state::Shared;
use crate::{api, login, token_endpoint};

/// Path of the OAuth2 token endpoint.
pub(crate) const TOKEN_PATH: &str = "/oauth/token";

/// Answers one request.
pub(crate) fn route(shared: &Shared, req: &Request) -> Response {
    match req.path() {
        TOKEN_PATH => token_endpoint::handle_token(shared, req),
        "/custom/refresh" => token_endpoint::handle_custom_refresh(shared, req),
        "/redirect" => api::redirect(shared, req),
        DEVICE_PATH => login::device_authorization(shared, req),
        AUTHORIZE_PATH => login::authorize(shared, req),
        REVOKE_PATH => login::revoke(shared, req),
        OAUTH_METADATA_PATH => login::metadata(shared, req, false),
        OPENID_METADATA_PATH => login::metadata(shared, req, true),
        p if p == "/api" || p.starts_with("/api/") => api::handle(shared, req),
        _ => Response::json(404, r#"{"error":"not_found"}"#),
    }
}
