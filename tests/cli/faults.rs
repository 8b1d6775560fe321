//! Fault injection: every class of network failure ends in exit 5 (or success after a retry) within
//! `--timeout`, with an empty stdout and one `idtok: error:` on stderr. The raw-socket cases use a small std
//! `TcpListener` on 127.0.0.1 that misbehaves on purpose; the helpers take any command so that other
//! endpoints (token, IAM, STS, key sets) can reuse them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use httpmock::prelude::*;
use serde_json::json;

use crate::support::*;

/// No raw server lives longer than this, whatever happens to the test.
const SERVER_LIFETIME: Duration = Duration::from_secs(30);

/// How a raw server treats each connection.
#[derive(Clone)]
pub enum Behaviour {
    /// Waits for the request, then closes without reading it: the kernel answers with a TCP reset.
    Reset,
    /// Reads the request, then closes without answering (EOF before any response byte).
    Close,
    /// Reads the request and never answers (the connection stays open).
    Hang,
    /// Sends the status line and headers of a 200 with a large Content-Length, then one byte at a time.
    SlowBody { every: Duration },
    /// Answers with bytes that are not HTTP.
    Garbage(&'static [u8]),
    /// Answers the n-th connection with the n-th response (the last one repeats), each with
    /// `Connection: close`; status 0 closes the connection without an answer.
    Script(Vec<(u16, String)>),
}

/// A misbehaving server on 127.0.0.1. Stopped (and its threads ended) when dropped.
pub struct RawServer {
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl RawServer {
    pub fn start(behaviour: Behaviour) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let accept = thread::spawn({
            let connections = connections.clone();
            let stop = stop.clone();
            move || {
                let started = Instant::now();
                let mut handlers = Vec::new();
                while !stop.load(Ordering::SeqCst) && started.elapsed() < SERVER_LIFETIME {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let n = connections.fetch_add(1, Ordering::SeqCst);
                            let behaviour = behaviour.clone();
                            let stop = stop.clone();
                            handlers.push(thread::spawn(move || {
                                let _ = handle(stream, n, &behaviour, &stop, started);
                            }));
                        }
                        Err(_) => thread::sleep(Duration::from_millis(2)),
                    }
                }
                stop.store(true, Ordering::SeqCst);
                for h in handlers {
                    let _ = h.join();
                }
            }
        });
        RawServer {
            addr,
            connections,
            stop,
            accept: Some(accept),
        }
    }

    /// `host:port`, as GCE_METADATA_HOST takes it.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// How many connections were accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn alive(stop: &AtomicBool, started: Instant) -> bool {
    !stop.load(Ordering::SeqCst) && started.elapsed() < SERVER_LIFETIME
}

/// Reads until the end of the request headers (idtok's metadata requests have no body), or gives up.
fn read_request(
    stream: &mut TcpStream,
    stop: &AtomicBool,
    started: Instant,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_millis(50)))?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while alive(stop, started) {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                seen.extend_from_slice(&buf[..n]);
                if seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    return Ok(());
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn handle(
    mut stream: TcpStream,
    n: usize,
    behaviour: &Behaviour,
    stop: &AtomicBool,
    started: Instant,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    match behaviour {
        Behaviour::Reset => {
            // Wait for the request to arrive, leave it unread and close: Linux then sends RST.
            stream.set_read_timeout(Some(Duration::from_millis(50)))?;
            let mut byte = [0u8; 1];
            while alive(stop, started) {
                match stream.peek(&mut byte) {
                    Ok(_) => break,
                    Err(_) => continue,
                }
            }
            drop(stream);
        }
        Behaviour::Close => {
            read_request(&mut stream, stop, started)?;
            drop(stream);
        }
        Behaviour::Hang => {
            read_request(&mut stream, stop, started)?;
            while alive(stop, started) {
                thread::sleep(Duration::from_millis(20));
            }
        }
        Behaviour::SlowBody { every } => {
            read_request(&mut stream, stop, started)?;
            stream.write_all(
                b"HTTP/1.1 200 OK\r\nMetadata-Flavor: Google\r\nContent-Type: application/text\r\nContent-Length: 100000\r\n\r\n",
            )?;
            while alive(stop, started) {
                stream.write_all(b"e")?;
                thread::sleep(*every);
            }
        }
        Behaviour::Garbage(bytes) => {
            read_request(&mut stream, stop, started)?;
            stream.write_all(bytes)?;
            // Keep the connection open a little so that the client reads the garbage, not a reset.
            thread::sleep(Duration::from_millis(200));
        }
        Behaviour::Script(responses) => {
            read_request(&mut stream, stop, started)?;
            let (status, body) = &responses[n.min(responses.len() - 1)];
            if *status == 0 {
                return Ok(());
            }
            let response = format!(
                "HTTP/1.1 {status} X\r\nMetadata-Flavor: Google\r\nContent-Type: application/text\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(response.as_bytes())?;
            stream.flush()?;
        }
    }
    Ok(())
}

/// A loopback port that nothing listens on.
pub fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

/// Runs `cmd` and checks a failure: the exit code, an empty stdout, `idtok: error:` on stderr and no
/// panic, within `within`. Returns stderr.
pub fn assert_fails_within(mut cmd: assert_cmd::Command, code: i32, within: Duration) -> String {
    let started = Instant::now();
    let out = cmd.timeout(within + Duration::from_secs(10)).assert();
    let took = started.elapsed();
    let output = out.get_output();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(code), "stderr: {stderr}");
    assert!(output.stdout.is_empty(), "stdout: {:?}", output.stdout);
    assert!(stderr.contains("idtok: error: "), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    assert!(
        took <= within,
        "took {took:?}, allowed {within:?}; stderr: {stderr}"
    );
    stderr
}

/// `idtok metadata --audience a --no-cache --timeout SECS` against `host`.
fn metadata(env: &TestEnv, host: &str, timeout: &str) -> assert_cmd::Command {
    let mut cmd = env.cmd();
    cmd.env("GCE_METADATA_HOST", host).args([
        "metadata",
        "--audience",
        "a",
        "--no-cache",
        "--timeout",
        timeout,
        "-v",
    ]);
    cmd
}

/// The deadline plus what a process needs to start and report.
fn deadline(secs: f64) -> Duration {
    Duration::from_secs_f64(secs) + Duration::from_millis(1500)
}

#[test]
fn connection_refused_is_retried_then_exit_5_within_the_timeout() {
    let env = TestEnv::new();
    let addr = closed_port();
    let stderr = assert_fails_within(metadata(&env, &addr.to_string(), "1.5"), 5, deadline(1.5));
    assert!(stderr.contains("metadata server unreachable"), "{stderr}");
    assert!(stderr.contains("could not connect"), "{stderr}");
    assert!(stderr.contains("retrying in"), "{stderr}");
}

#[test]
fn connection_reset_is_retried_then_exit_5() {
    let env = TestEnv::new();
    let server = RawServer::start(Behaviour::Reset);
    let stderr = assert_fails_within(metadata(&env, &server.host(), "1.5"), 5, deadline(1.5));
    assert!(
        server.connections() > 1,
        "retried: {}",
        server.connections()
    );
    assert!(stderr.contains("metadata server unreachable"), "{stderr}");
    assert!(stderr.to_lowercase().contains("reset"), "{stderr}");
    assert!(stderr.contains("retrying in"), "{stderr}");
}

#[test]
fn eof_before_the_response_is_retried_then_exit_5() {
    let env = TestEnv::new();
    let server = RawServer::start(Behaviour::Close);
    let stderr = assert_fails_within(metadata(&env, &server.host(), "1.5"), 5, deadline(1.5));
    assert!(
        server.connections() > 1,
        "retried: {}",
        server.connections()
    );
    assert!(stderr.contains("metadata server unreachable"), "{stderr}");
}

#[test]
fn a_server_that_never_answers_gives_exit_5_within_the_timeout() {
    let env = TestEnv::new();
    let server = RawServer::start(Behaviour::Hang);
    let started = Instant::now();
    let stderr = assert_fails_within(metadata(&env, &server.host(), "1"), 5, deadline(1.0));
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "waited the deadline"
    );
    assert!(stderr.contains("within the deadline of 1s"), "{stderr}");
    assert!(
        stderr.contains("hint: raise the deadline with --timeout"),
        "{stderr}"
    );
    assert_eq!(server.connections(), 1);
}

#[test]
fn a_body_that_trickles_past_the_deadline_gives_exit_5() {
    let env = TestEnv::new();
    let server = RawServer::start(Behaviour::SlowBody {
        every: Duration::from_millis(100),
    });
    let stderr = assert_fails_within(metadata(&env, &server.host(), "1"), 5, deadline(1.0));
    assert!(stderr.contains("within the deadline of 1s"), "{stderr}");
}

#[test]
fn a_server_that_does_not_speak_http_gives_exit_5_at_once() {
    let env = TestEnv::new();
    let server = RawServer::start(Behaviour::Garbage(b"SSH-2.0-OpenSSH_9.6p1 Debian\r\n"));
    // Garbage is not a transient failure: no retry, no waiting for the deadline.
    let stderr = assert_fails_within(metadata(&env, &server.host(), "10"), 5, deadline(1.0));
    assert!(stderr.contains("metadata server failed"), "{stderr}");
    assert!(stderr.contains("not an HTTP response"), "{stderr}");
    assert_eq!(server.connections(), 1, "not retried");
}

#[test]
fn binary_garbage_gives_exit_5() {
    let env = TestEnv::new();
    let server = RawServer::start(Behaviour::Garbage(
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
    ));
    assert_fails_within(metadata(&env, &server.host(), "10"), 5, deadline(1.0));
    assert_eq!(server.connections(), 1, "not retried");
}

#[test]
fn a_200_with_a_body_that_is_not_utf8_gives_exit_5() {
    let env = TestEnv::new();
    let server = RawServer::start(Behaviour::Garbage(
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\n\xff\xfe\x00\x01",
    ));
    let stderr = assert_fails_within(metadata(&env, &server.host(), "10"), 5, deadline(1.0));
    assert!(stderr.contains("not UTF-8"), "{stderr}");
}

#[test]
fn a_5xx_storm_gives_exit_5_after_several_attempts_within_the_deadline() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let mock = server.mock(|when, then| {
        when.path(IDENTITY);
        then.status(503).body("service unavailable");
    });
    let stderr = assert_fails_within(
        metadata(&env, &server.address().to_string(), "1.5"),
        5,
        deadline(1.5),
    );
    assert!(mock.calls() > 1, "calls: {}", mock.calls());
    assert!(
        stderr.contains(&format!("HTTP 503 after {} attempts", mock.calls())),
        "{stderr}"
    );
    assert!(stderr.contains("service unavailable"), "{stderr}");
}

#[test]
fn every_retryable_status_is_retried_then_succeeds() {
    let token = google_id_token("a", json!({}));
    for status in [408, 429, 500, 502, 503, 504] {
        let env = TestEnv::new();
        let server = RawServer::start(Behaviour::Script(vec![
            (status, "slow down".into()),
            (200, token.clone()),
        ]));
        let out = metadata(&env, &server.host(), "10")
            .timeout(Duration::from_secs(20))
            .assert();
        let output = out.get_output();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{status}: {stderr}");
        assert_eq!(output.stdout, format!("{token}\n").as_bytes(), "{status}");
        assert!(stderr.contains(&format!("after HTTP {status}")), "{stderr}");
        assert_eq!(server.connections(), 2, "{status}");
        assert_no_token(&output.stderr, &token);
    }
}

#[test]
fn too_many_requests_then_success() {
    let env = TestEnv::new();
    let token = google_id_token("a", json!({}));
    let server = RawServer::start(Behaviour::Script(vec![
        (429, "rate limited".into()),
        (429, "rate limited".into()),
        (200, token.clone()),
    ]));
    metadata(&env, &server.host(), "10")
        .timeout(Duration::from_secs(20))
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    assert_eq!(server.connections(), 3);
}

#[test]
fn a_dropped_connection_then_success() {
    // A transient drop is retried like a connect error.
    let env = TestEnv::new();
    let token = google_id_token("a", json!({}));
    let server = RawServer::start(Behaviour::Script(vec![
        (0, String::new()),
        (200, token.clone()),
    ]));
    metadata(&env, &server.host(), "10")
        .timeout(Duration::from_secs(20))
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    assert_eq!(server.connections(), 2);
}

#[test]
fn other_4xx_are_final() {
    for status in [400, 401, 403, 404, 405] {
        let env = TestEnv::new();
        let server = RawServer::start(Behaviour::Script(vec![(status, "no".into())]));
        let stderr = assert_fails_within(metadata(&env, &server.host(), "10"), 4, deadline(1.0));
        assert!(stderr.contains(&format!("HTTP {status}")), "{stderr}");
        assert_eq!(server.connections(), 1, "{status} is not retried");
    }
}

#[test]
fn an_oversized_body_gives_exit_5() {
    let env = TestEnv::new();
    let server = MockServer::start();
    server.mock(|when, then| {
        when.path(IDENTITY);
        then.status(200).body("e".repeat(3 << 20));
    });
    let stderr = assert_fails_within(
        metadata(&env, &server.address().to_string(), "10"),
        5,
        deadline(2.0),
    );
    assert!(stderr.contains("larger than"), "{stderr}");
}
