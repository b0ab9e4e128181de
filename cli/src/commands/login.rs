//! `tokengate login [--device | --browser] [--issuer URL --client-id ID [--client-secret S]
//! [--scope S]...]`: creates or updates the profile and logs in with the device or browser flow.
//! What the user must see (the code, the URLs) goes to stderr; the options are recorded in the
//! profile once the login succeeded.

use std::time::Duration;

use tokengate::LoginError;
use tokengate::login::{BrowserLogin, DeviceLogin, DevicePrompt, Metadata};

use crate::args::LoginArgs;
use crate::commands::printable;
use crate::config::{Flow, Profile};
use crate::exit::{Exit, Failure, chain};
use crate::session::{Session, check_url};

pub fn run(session: &mut Session, args: &LoginArgs) -> Result<(), Failure> {
    apply(&mut session.profile, args)?;
    let network = session.network();
    // With an issuer, the endpoints come from its metadata, read again at every login.
    let metadata = match session.profile.issuer.clone() {
        Some(issuer) => {
            check_url("issuer", &issuer)?;
            let metadata = Metadata::discover(&issuer, &network).map_err(login_failure)?;
            let p = &mut session.profile;
            p.token_endpoint = Some(metadata.token_endpoint().to_owned());
            p.authorization_endpoint = metadata.authorization_endpoint().map(str::to_owned);
            p.device_authorization_endpoint =
                metadata.device_authorization_endpoint().map(str::to_owned);
            p.revocation_endpoint = metadata.revocation_endpoint().map(str::to_owned);
            Some(metadata)
        }
        None => None,
    };
    let p = &session.profile;
    let token_url = p.token_endpoint.clone().ok_or_else(|| {
        Failure::config(format!(
            "profile `{}` has no issuer or token endpoint: give --issuer URL",
            session.name
        ))
    })?;
    for (what, url) in [
        ("token endpoint", Some(&token_url)),
        ("authorization endpoint", p.authorization_endpoint.as_ref()),
        (
            "device authorization endpoint",
            p.device_authorization_endpoint.as_ref(),
        ),
        ("revocation endpoint", p.revocation_endpoint.as_ref()),
    ] {
        if let Some(url) = url {
            check_url(what, url)?;
        }
    }
    let client_id = p
        .client_id
        .clone()
        .ok_or_else(|| Failure::config("no client id: give --client-id ID"))?;
    let flow = flow(p, args)?;
    let scope = (!p.scopes.is_empty()).then(|| p.scopes.join(" "));

    let token = match flow {
        Flow::Device => {
            let mut login = match &metadata {
                Some(metadata) => DeviceLogin::from_metadata(metadata).map_err(login_failure)?,
                None => DeviceLogin::new(
                    p.device_authorization_endpoint.clone().unwrap_or_default(),
                    token_url.clone(),
                )
                .network(network),
            }
            .client_id(client_id);
            if let Some(secret) = &p.client_secret {
                login = login.client_secret(secret.clone());
            }
            if let Some(scope) = &scope {
                login = login.scope(scope.clone());
            }
            login.run(show_device_prompt)
        }
        Flow::Browser => {
            let mut login = match &metadata {
                Some(metadata) => BrowserLogin::from_metadata(metadata).map_err(login_failure)?,
                None => BrowserLogin::new(
                    p.authorization_endpoint.clone().unwrap_or_default(),
                    token_url.clone(),
                )
                .network(network),
            }
            .client_id(client_id);
            if let Some(secret) = &p.client_secret {
                login = login.client_secret(secret.clone());
            }
            if let Some(scope) = &scope {
                login = login.scope(scope.clone());
            }
            if let Some(timeout) = session.timeout {
                login = login.timeout(timeout);
            }
            login.run(open_browser)
        }
    }
    .map_err(login_failure)?;

    // The session first (the store, under its lock), then the profile that leads to it.
    session.profile.flow = Some(flow);
    let client = session.client_with(&token_url, Some(token.clone()))?;
    let installed = client.login(token);
    client.close();
    installed?;
    session.config.set_profile(&session.name, &session.profile);
    session.config.save()?;
    eprintln!(
        "Logged in: profile `{}`, token in {}.",
        session.name,
        session.store.describe(&session.name)
    );
    Ok(())
}

/// The login's options over the profile.
fn apply(profile: &mut Profile, args: &LoginArgs) -> Result<(), Failure> {
    if let Some(issuer) = &args.issuer {
        check_url("issuer", issuer)?;
        // Another server: the endpoints of the old one no longer apply.
        if profile.issuer.as_deref() != Some(issuer.as_str()) {
            profile.token_endpoint = None;
            profile.authorization_endpoint = None;
            profile.device_authorization_endpoint = None;
            profile.revocation_endpoint = None;
        }
        profile.issuer = Some(issuer.clone());
    }
    if let Some(id) = &args.client_id {
        if id.is_empty() {
            return Err(Failure::config("--client-id: empty"));
        }
        profile.client_id = Some(id.clone());
    }
    if let Some(secret) = &args.client_secret {
        profile.client_secret = (!secret.is_empty()).then(|| secret.clone());
    }
    if !args.scopes.is_empty() {
        profile.scopes = args
            .scopes
            .iter()
            .flat_map(|s| s.split_whitespace())
            .map(str::to_owned)
            .collect();
    }
    Ok(())
}

/// --device or --browser, else the profile's flow, else the device flow when the server offers
/// it, else the browser flow.
fn flow(p: &Profile, args: &LoginArgs) -> Result<Flow, Failure> {
    let flow = if args.device {
        Flow::Device
    } else if args.browser {
        Flow::Browser
    } else if let Some(flow) = p.flow {
        flow
    } else if p.device_authorization_endpoint.is_some() {
        Flow::Device
    } else if p.authorization_endpoint.is_some() {
        Flow::Browser
    } else {
        return Err(Failure::config(
            "the authorization server has neither a device authorization nor an authorization endpoint",
        ));
    };
    match flow {
        Flow::Device if p.device_authorization_endpoint.is_none() => Err(Failure::config(
            "the authorization server has no device authorization endpoint: try --browser",
        )),
        Flow::Browser if p.authorization_endpoint.is_none() => Err(Failure::config(
            "the authorization server has no authorization endpoint: try --device",
        )),
        flow => Ok(flow),
    }
}

/// The user code and where to enter it, on stderr.
fn show_device_prompt(prompt: &DevicePrompt) {
    eprintln!(
        "To log in, open {} and enter the code {}",
        printable(prompt.verification_uri()),
        printable(prompt.user_code())
    );
    if let Some(complete) = prompt.verification_uri_complete() {
        eprintln!("(or open {}, which carries the code)", printable(complete));
    }
    eprintln!(
        "Waiting for the approval (the code expires in {}).",
        minutes(prompt.expires_in())
    );
}

/// The authorization URL on stderr, and in the browser when one can be opened.
fn open_browser(url: &str) {
    eprintln!("To log in, open this URL in a browser:\n{url}");
    #[cfg(feature = "browser")]
    if tokengate::login::open_browser(url).is_ok() {
        eprintln!("(It was handed to your browser.)");
    }
    eprintln!("Waiting for the browser to come back to this machine.");
}

fn minutes(d: Duration) -> String {
    match d.as_secs() {
        s if s < 120 => format!("{s} s"),
        s => format!("{} min", s / 60),
    }
}

/// A failed login: configuration (2), transient (4), or otherwise still no session (3: denied,
/// expired, timed out, a redirect that failed its checks).
fn login_failure(e: LoginError) -> Failure {
    let exit = if e.is_configuration() {
        Exit::Config
    } else if e.is_transient() {
        Exit::Transient
    } else {
        Exit::LoginRequired
    };
    Failure {
        exit,
        message: format!("login failed: {}", chain(&e)),
    }
}
