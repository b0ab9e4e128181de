//! A raw HTTP/1.1 client over `std::net::TcpStream`, so the server is tested
//! without trusting any HTTP client library.

#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use tokengate_testserver::TestServer;

/// One parsed response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A keep-alive connection.
pub struct Conn {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Conn {
    pub fn open(server: &TestServer) -> Conn {
        let stream = TcpStream::connect(server.addr()).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Conn { stream, reader }
    }

    /// Writes raw bytes and reads one response.
    pub fn raw(&mut self, bytes: &[u8]) -> std::io::Result<Resp> {
        self.stream.write_all(bytes)?;
        self.read_response(false)
    }

    /// Sends a request (adds Host and Content-Length) and reads the response.
    pub fn request(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Resp {
        let mut req = format!("{method} {target} HTTP/1.1\r\nHost: test\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" || method == "PUT" {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.stream.write_all(&bytes).expect("write");
        self.read_response(method == "HEAD").expect("read response")
    }

    /// Reads one response; `head` = response to a HEAD request (no body).
    pub fn read_response(&mut self, head: bool) -> std::io::Result<Resp> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed",
            ));
        }
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {line:?}"));
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':').expect("header colon");
            headers.push((k.to_string(), v.trim().to_string()));
        }
        let mut resp = Resp {
            status,
            headers,
            body: Vec::new(),
        };
        if status == 100 {
            return self.read_response(head);
        }
        let len: usize = resp
            .header("content-length")
            .map(|v| v.parse().unwrap())
            .expect("server always sends Content-Length");
        if !head {
            resp.body = vec![0; len];
            self.reader.read_exact(&mut resp.body)?;
        }
        Ok(resp)
    }

    /// True if the server closed the connection (EOF) within the read timeout.
    pub fn is_closed(&mut self) -> bool {
        let mut buf = [0u8; 1];
        matches!(self.reader.read(&mut buf), Ok(0) | Err(_))
    }
}

/// One request on a fresh connection.
pub fn send(
    server: &TestServer,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    Conn::open(server).request(method, target, headers, body)
}

/// `Authorization: Basic` value for id/secret (form-urlencoding is the
/// caller's business).
pub fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", base64(format!("{id}:{secret}").as_bytes()))
}

pub fn base64(input: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

/// POST a form to the token endpoint with demo-client body credentials.
pub fn token(server: &TestServer, form: &str) -> Resp {
    let body = format!("{form}&client_id=demo-client&client_secret=demo-secret");
    send(server, "POST", "/oauth/token", &[FORM], body.as_bytes())
}

/// Password grant -> (access, refresh).
pub fn login(server: &TestServer) -> (String, String) {
    let r = token(server, "grant_type=password&username=u&password=p");
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    (
        j["access_token"].as_str().unwrap().to_string(),
        j["refresh_token"].as_str().unwrap().to_string(),
    )
}

pub fn refresh(server: &TestServer, rt: &str) -> Resp {
    token(
        server,
        &format!("grant_type=refresh_token&refresh_token={rt}"),
    )
}

/// The raw bytes of a `refresh_token` grant request with demo-client body
/// credentials, for tests that drive the socket themselves.
pub fn raw_refresh_request(rt: &str) -> String {
    let body = format!(
        "grant_type=refresh_token&refresh_token={rt}&client_id=demo-client&client_secret=demo-secret"
    );
    format!(
        "POST /oauth/token HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// GET an API path with a bearer token.
pub fn api(server: &TestServer, path: &str, access: &str) -> Resp {
    let auth = format!("Bearer {access}");
    send(server, "GET", path, &[("Authorization", &auth)], b"")
}
