//! The benchmark's loopback stand-in for Google, and its timing helpers. Standard library only, built by
//! `bench/run.sh` with plain `rustc -O` (no Cargo, no crates, a second or two).
//!
//! ```text
//! standin serve PORT_FILE            serve on 127.0.0.1 (a free port, written to PORT_FILE) until killed:
//!                                      GET  /                                  -> 200, Metadata-Flavor: Google
//!                                      GET  /computeMetadata/v1/.../identity   -> a fake ID token (needs the
//!                                                                                 Metadata-Flavor header)
//!                                      GET  /computeMetadata/v1/.../email      -> the service account's email
//!                                      POST /token                             -> {"id_token": ...}
//! standin measure RUNS CASES OUT     run the cases interleaved (case order rotated every repetition) and
//!                                    write their times to OUT as hyperfine's --export-json does
//! standin stats JSON_FILE...         print `name median_ms min_ms mean_ms runs` per case from such files
//!                                    (hyperfine's or measure's; times merged by command name)
//! ```
//!
//! CASES_FILE has one case per line: the name, then the argv, separated by the byte 0x1f.
//! The fake token is not signed by anything: idtok does not verify what it mints, and neither does curl.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

const EMAIL: &str = "bench@bench-project.iam.gserviceaccount.com";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("serve") if args.len() == 3 => serve(&args[2]),
        Some("measure") if args.len() == 5 => match args[2].parse() {
            Ok(runs) => measure(runs, &args[3], &args[4]),
            Err(_) => Err(format!("RUNS must be a number, not {}", args[2])),
        },
        Some("stats") if args.len() >= 3 => stats(&args[2..]),
        _ => Err("usage: standin serve PORT_FILE | measure RUNS CASES OUT | stats JSON...".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("standin: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---- the server ----

fn serve(port_file: &str) -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let token = Arc::new(fake_id_token());
    // Written last, atomically: the script waits for this file.
    let tmp = format!("{port_file}.tmp");
    std::fs::write(&tmp, port.to_string()).map_err(|e| format!("{tmp}: {e}"))?;
    std::fs::rename(&tmp, port_file).map_err(|e| format!("{port_file}: {e}"))?;
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let token = token.clone();
        std::thread::spawn(move || {
            let _ = connection(stream, &token);
        });
    }
    Ok(())
}

/// Answers requests on one connection until the client closes it (keep-alive).
fn connection(stream: TcpStream, token: &str) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let mut content_length = 0usize;
        let mut flavor = false;
        let mut close = false;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
                match name.as_str() {
                    "content-length" => content_length = value.parse().unwrap_or(0),
                    "metadata-flavor" => flavor = value == "Google",
                    "connection" => close = value.eq_ignore_ascii_case("close"),
                    _ => {}
                }
            }
        }
        let mut body = vec![0u8; content_length.min(1 << 20)];
        reader.read_exact(&mut body)?;
        let path = target.split('?').next().unwrap_or("");
        let (status, content_type, payload) = route(&method, path, flavor, token);
        let response = format!(
            "HTTP/1.1 {status}\r\nMetadata-Flavor: Google\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\n{}\r\n{payload}",
            payload.len(),
            if close { "Connection: close\r\n" } else { "" },
        );
        writer.write_all(response.as_bytes())?;
        writer.flush()?;
        if close {
            return Ok(());
        }
    }
}

fn route(
    method: &str,
    path: &str,
    flavor: bool,
    token: &str,
) -> (&'static str, &'static str, String) {
    const TEXT: &str = "application/text";
    const JSON: &str = "application/json";
    let metadata = path.starts_with("/computeMetadata/");
    if metadata && !flavor {
        return (
            "403 Forbidden",
            TEXT,
            "Missing Metadata-Flavor:Google header.".into(),
        );
    }
    match (method, path) {
        // google-auth pings the server before it trusts it.
        ("GET", "/") => ("200 OK", TEXT, String::new()),
        ("GET", p) if p.ends_with("/identity") => ("200 OK", TEXT, token.to_string()),
        ("GET", p) if p.ends_with("/email") => ("200 OK", TEXT, EMAIL.to_string()),
        ("GET", p)
            if p.ends_with("/service-accounts/default/")
                || p.ends_with("/service-accounts/default") =>
        {
            (
                "200 OK",
                JSON,
                format!(
                    r#"{{"aliases":["default"],"email":"{EMAIL}","scopes":["https://www.googleapis.com/auth/cloud-platform"]}}"#
                ),
            )
        }
        ("GET", "/computeMetadata/v1/universe/universe-domain") => {
            ("200 OK", TEXT, "googleapis.com".into())
        }
        ("POST", "/token") => ("200 OK", JSON, format!(r#"{{"id_token":"{token}"}}"#)),
        _ => ("404 Not Found", TEXT, "not found".into()),
    }
}

/// A Google-shaped ID token valid for an hour from now, with a dummy signature of RS256's length.
fn fake_id_token() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let header = r#"{"alg":"RS256","kid":"bench-kid","typ":"JWT"}"#;
    let claims = format!(
        r#"{{"aud":"https://bench.example","azp":"1234567890","email":"{EMAIL}","email_verified":true,"exp":{},"iat":{now},"iss":"https://accounts.google.com","sub":"1234567890"}}"#,
        now + 3600
    );
    format!(
        "{}.{}.{}",
        b64url(header.as_bytes()),
        b64url(claims.as_bytes()),
        b64url(&[0x5a; 256])
    )
}

fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

// ---- timing ----

fn measure(runs: usize, cases_file: &str, out: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(cases_file).map_err(|e| format!("{cases_file}: {e}"))?;
    let cases: Vec<Vec<String>> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('\u{1f}').map(str::to_string).collect())
        .collect();
    if cases.iter().any(|c| c.len() < 2) {
        return Err("a case needs a name and a command".into());
    }
    let mut times: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for run in 0..runs {
        for i in 0..cases.len() {
            let case = &cases[(i + run) % cases.len()];
            let started = Instant::now();
            let status = Command::new(&case[1])
                .args(&case[2..])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map_err(|e| format!("{}: {e}", case[1]))?;
            let elapsed = started.elapsed().as_secs_f64();
            if !status.success() {
                return Err(format!("case {} failed ({status})", case[0]));
            }
            times.entry(case[0].clone()).or_default().push(elapsed);
        }
    }
    let results: Vec<String> = cases
        .iter()
        .map(|case| {
            let values: Vec<String> = times
                .get(&case[0])
                .map(|v| v.iter().map(|t| format!("{t:.9}")).collect())
                .unwrap_or_default();
            format!(
                "{{\"command\": \"{}\", \"times\": [{}]}}",
                case[0].replace('\\', "\\\\").replace('"', "\\\""),
                values.join(", ")
            )
        })
        .collect();
    let json = format!("{{\"results\": [\n{}\n]}}\n", results.join(",\n"));
    std::fs::write(out, json).map_err(|e| format!("{out}: {e}"))
}

fn stats(files: &[String]) -> Result<(), String> {
    let mut order = Vec::new();
    let mut times: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
        for (name, values) in
            hyperfine_times(&text).ok_or_else(|| format!("{file}: not hyperfine JSON"))?
        {
            if !order.contains(&name) {
                order.push(name.clone());
            }
            times.entry(name).or_default().extend(values);
        }
    }
    for name in order {
        print_stats(&name, &times[&name]);
    }
    Ok(())
}

/// `(command, times)` of each result of a hyperfine JSON export. Only what hyperfine writes is understood.
fn hyperfine_times(text: &str) -> Option<Vec<(String, Vec<f64>)>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("\"command\"") {
        rest = &rest[at + 9..];
        let open = rest.find('"')?;
        let mut name = String::new();
        let mut chars = rest[open + 1..].char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break open + 1 + i,
                (_, '\\') => name.push(chars.next()?.1),
                (_, c) => name.push(c),
            }
        };
        rest = &rest[end + 1..];
        let at = rest.find("\"times\"")?;
        rest = &rest[at..];
        let open = rest.find('[')?;
        let close = rest.find(']')?;
        let values = rest[open + 1..close]
            .split(',')
            .filter(|v| !v.trim().is_empty())
            .map(|v| v.trim().parse::<f64>().ok())
            .collect::<Option<Vec<f64>>>()?;
        rest = &rest[close..];
        out.push((name, values));
    }
    Some(out)
}

fn print_stats(name: &str, values: &[f64]) {
    if values.is_empty() {
        println!("{name} nan nan nan 0");
        return;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    let mean = sorted.iter().sum::<f64>() / n as f64;
    println!(
        "{name} {:.3} {:.3} {:.3} {n}",
        median * 1e3,
        sorted[0] * 1e3,
        mean * 1e3
    );
}
