//! `tokengate request METHOD URL [-d BODY] [-H 'Name: value']...`: one request with the token,
//! refreshed and replayed once when the API rejects it. Body to stdout, status line to stderr.

use std::io::{Read, Write};

use tokengate::http::Method;

use crate::args::RequestArgs;
use crate::exit::{Exit, Failure};
use crate::session::{Session, check_url};

/// How the request ended when it got an answer.
pub enum Answered {
    /// A status below 400.
    Ok,
    /// A status of 400 or more (exit code 1).
    HttpError,
}

pub fn run(session: &Session, args: &RequestArgs) -> Result<Answered, Failure> {
    let method = Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| Failure::config(format!("`{}` is not an HTTP method", args.method)))?;
    let uri = check_url("URL", &args.url)?;
    let headers = args
        .headers
        .iter()
        .map(|h| parse_header(h))
        .collect::<Result<Vec<_>, _>>()?;
    let body = args.data.as_deref().map(read_body).transpose()?;

    // The URL's origin is the client's base: it, and only it, gets the token (also across
    // redirects).
    let origin = format!(
        "{}://{}",
        uri.scheme_str().unwrap_or("https"),
        uri.authority().map_or("", |a| a.as_str())
    );
    let client = session.client(&origin)?;
    let mut request = client.request(method, &args.url);
    for (name, value) in &headers {
        request = request.header(name, value);
    }
    if body.is_some()
        && !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        request = request.header("content-type", "application/x-www-form-urlencoded");
    }
    if let Some(timeout) = session.timeout {
        request = request.timeout(timeout);
    }
    let sent = match body {
        Some(body) => request.send(body),
        None => request.call(),
    };
    let result = sent.map_err(Failure::from).and_then(|mut response| {
        let status = response.status();
        eprintln!("{:?} {status}", response.version());
        let mut out = std::io::stdout().lock();
        std::io::copy(&mut response.body_mut().as_reader(), &mut out)
            .and_then(|_| out.flush())
            .map_err(|e| Failure::transient(format!("reading the response body: {e}")))?;
        Ok(if status.as_u16() >= 400 {
            Answered::HttpError
        } else {
            Answered::Ok
        })
    });
    // A refresh started ahead of expiry is saved before the process ends.
    client.close();
    result
}

/// `Name: value`. The Authorization header is tokengate's to set.
fn parse_header(header: &str) -> Result<(String, String), Failure> {
    let Some((name, value)) = header.split_once(':') else {
        return Err(Failure::config(format!(
            "-H {}: write a header as `Name: value`",
            header_name_only(header)
        )));
    };
    let name = name.trim();
    if name.eq_ignore_ascii_case("authorization") {
        return Err(Failure::config(
            "-H Authorization: tokengate sets the Authorization header itself",
        ));
    }
    if name.is_empty() {
        return Err(Failure::config("-H: a header needs a name before the `:`"));
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

/// What a malformed `-H` argument may safely show: up to the first space (a header value may be a
/// secret of its own).
fn header_name_only(header: &str) -> &str {
    header.split([' ', '=']).next().unwrap_or_default()
}

/// `-d`: the text, `@FILE`, or `@-` for stdin.
fn read_body(data: &str) -> Result<Vec<u8>, Failure> {
    match data.strip_prefix('@') {
        Some("-") => {
            let mut body = Vec::new();
            std::io::stdin()
                .read_to_end(&mut body)
                .map_err(|e| Failure::config(format!("-d @-: cannot read stdin: {e}")))?;
            Ok(body)
        }
        Some(path) => std::fs::read(path)
            .map_err(|e| Failure::config(format!("-d @{path}: cannot read the file: {e}"))),
        None => Ok(data.as_bytes().to_vec()),
    }
}

impl From<Answered> for std::process::ExitCode {
    fn from(answered: Answered) -> Self {
        match answered {
            Answered::Ok => std::process::ExitCode::SUCCESS,
            Answered::HttpError => Exit::HttpError.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        assert_eq!(
            parse_header("Accept:  application/json ").unwrap(),
            ("Accept".to_owned(), "application/json".to_owned())
        );
        assert_eq!(
            parse_header("X-Empty:").unwrap(),
            ("X-Empty".to_owned(), String::new())
        );
        for bad in ["authorization: Bearer x", "NoColon", ": v"] {
            assert!(parse_header(bad).is_err(), "{bad}");
        }
        let e = parse_header("X-Api-Key hunter2").unwrap_err();
        assert!(!e.message.contains("hunter2"), "{}", e.message);
    }

    #[test]
    fn bodies() {
        assert_eq!(read_body("a=1").unwrap(), b"a=1");
        let dir = tokengate_testserver::support::temp_dir("cli-body");
        let file = dir.path().join("body.json");
        std::fs::write(&file, b"{\"x\":1}").unwrap();
        assert_eq!(
            read_body(&format!("@{}", file.display())).unwrap(),
            b"{\"x\":1}"
        );
        assert!(read_body("@/nonexistent/body").is_err());
    }
}
