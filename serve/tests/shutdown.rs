//! The binary: SIGTERM turns readiness off, drains in-flight requests and exits 0; SIGHUP
//! reloads the configuration file; bad configurations are refused with a clear message.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn fixtures() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_ready(port: u16) {
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        if let Ok(r) = reqwest::blocking_get(&format!("http://127.0.0.1:{port}/v2/health/ready")) {
            if r == 200 {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("server on {port} never became ready");
}

mod reqwest {
    /// A tiny blocking GET (status code only), to keep this test free of a runtime.
    pub fn blocking_get(url: &str) -> std::io::Result<u16> {
        use std::io::{Read, Write};
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_once('/').unwrap();
        let mut s = std::net::TcpStream::connect(host)?;
        write!(
            s,
            "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )?;
        let mut buf = String::new();
        s.read_to_string(&mut buf)?;
        Ok(buf
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0))
    }
}

#[test]
fn sigterm_drains_and_exits_zero_and_sighup_reloads() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("server.json");
    let cfg = |models: &[&str]| {
        serde_json::json!({
            "http": format!("127.0.0.1:{port}"),
            "repository": fixtures().join("repo"),
            "models": models.iter().map(|m| serde_json::json!({ "name": m })).collect::<Vec<_>>(),
        })
        .to_string()
    };
    std::fs::write(&cfg_path, cfg(&["iris"])).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_modelplane-serve"))
        .args(["serve", "--config"])
        .arg(&cfg_path)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_ready(port);
    assert_eq!(
        reqwest::blocking_get(&format!("http://127.0.0.1:{port}/v2/models/two_io")).unwrap(),
        404
    );
    // SIGHUP: the file now also names two_io
    std::fs::write(&cfg_path, cfg(&["iris", "two_io"])).unwrap();
    let pid = child.id().to_string();
    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    while reqwest::blocking_get(&format!("http://127.0.0.1:{port}/v2/models/two_io")).unwrap()
        != 200
    {
        assert!(Instant::now() < until, "SIGHUP did not load two_io");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SIGTERM: exit 0, promptly, logging the drain
    let t = Instant::now();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(t.elapsed() < Duration::from_secs(10));
    let log: Vec<String> = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .collect();
    let all = log.join("\n");
    assert!(all.contains("configuration reloaded"), "{all}");
    assert!(all.contains("shutting down"), "{all}");
    // every log line is JSON
    for l in &log {
        assert!(
            serde_json::from_str::<serde_json::Value>(l).is_ok(),
            "not JSON: {l}"
        );
    }
}

#[test]
fn bad_configurations_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    // a repository whose artifact is not ONNX (with a matching digest, so only the format is wrong)
    let junk = dir.path().join("repo/junk/1");
    std::fs::create_dir_all(&junk).unwrap();
    std::fs::write(junk.join("model.onnx"), b"not a model at all\n").unwrap();
    let (sha, size) = modelplane_serve::signature::file_digest(&junk.join("model.onnx")).unwrap();
    std::fs::write(
        junk.join("model.json"),
        serde_json::json!({ "name": "junk", "version": "1", "sha256": sha, "size_bytes": size })
            .to_string(),
    )
    .unwrap();
    let cases = [
        (
            serde_json::json!({ "repository": dir.path().join("repo"), "models": [{ "name": "junk" }] }),
            "is not an ONNX model",
        ),
        (
            serde_json::json!({ "repository": fixtures().join("repo"), "models": [{ "name": "iris", "batchin": {} }] }),
            "unknown field `batchin`",
        ),
        (
            serde_json::json!({ "repository": fixtures().join("repo"), "endpoints": [{ "name": "e", "variants": [{ "name": "a", "model": "iris", "weight": 0 }] }] }),
            "weights add up to 0",
        ),
        (
            serde_json::json!({ "repository": fixtures().join("repo"), "models": [{ "name": "nope" }] }),
            "model nope: no versions",
        ),
        (
            serde_json::json!({ "repository": fixtures().join("repo"), "models": [{ "name": "unsupported" }] }),
            "tract cannot load this model",
        ),
    ];
    for (cfg, needle) in cases {
        let p = dir.path().join("c.json");
        std::fs::write(&p, cfg.to_string()).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_modelplane-serve"))
            .args(["serve", "--log-format", "text", "--config"])
            .arg(&p)
            .args(["--http", "127.0.0.1:0"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{err:?} should contain {needle:?}");
    }
}
