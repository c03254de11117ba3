//! `bench transfer`: upload and download of one large artifact against a real S3 API (moto on
//! loopback), modelplane's data plane (`object_store`, through `modelplane-serve copy`) side by
//! side with boto3's transfer manager, in the same run. Reports wall time, throughput and each
//! process's peak resident memory (from `wait4`).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::{build_provider, root, terraform, MOTO};

/// Peak RSS goal of an upload, whatever the artifact's size.
const RSS_GOAL_MB: f64 = 100.0;

struct Run {
    secs: f64,
    peak_rss_mb: f64,
}

/// Runs a command to its end; wall time and peak RSS of the process.
fn measure(cmd: &mut Command) -> Result<Run> {
    let desc = format!("{cmd:?}");
    let t0 = Instant::now();
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {desc}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // wait4 reaps the child and reports its peak resident set (ru_maxrss, KiB on Linux).
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let secs = t0.elapsed().as_secs_f64();
    if r != pid {
        bail!("waiting for {desc}: {}", std::io::Error::last_os_error());
    }
    let out = child.wait_with_output().ok();
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        let err = out
            .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
            .unwrap_or_default();
        bail!("{desc} failed: {err}");
    }
    Ok(Run {
        secs,
        peak_rss_mb: usage.ru_maxrss as f64 / 1024.0,
    })
}

/// A file of incompressible bytes (xorshift), written in 1 MiB blocks.
fn make_file(path: &Path, mb: u64) -> Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..mb {
        for chunk in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        f.write_all(&block)?;
    }
    f.flush()?;
    Ok(())
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

struct Moto(std::process::Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sha256_of(path: &Path) -> Result<String> {
    let out = Command::new("sha256sum").arg(path).output()?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string())
}

pub fn run(size_mb: u64) -> Result<()> {
    let provider = build_provider(true)?;
    let python = terraform::python_env("moto-venv", MOTO)?;
    let work = root().join("target/bench-transfer");
    std::fs::create_dir_all(&work)?;
    let file = work.join("artifact.bin");
    eprintln!("==> writing a {size_mb} MiB artifact");
    make_file(&file, size_mb)?;
    let want = sha256_of(&file)?;

    let port = free_port()?;
    let _moto = Moto(
        Command::new(python.with_file_name("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting moto_server")?,
    );
    let endpoint = format!("http://127.0.0.1:{port}");
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if t0.elapsed() > Duration::from_secs(30) {
            bail!("moto_server did not start");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let env = |c: &mut Command| {
        c.env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true");
    };
    let boto = |op: &str, key: &str, path: &Path| {
        let script = format!(
            "import boto3\n\
             s3 = boto3.client('s3', endpoint_url={endpoint:?}, region_name='us-east-1')\n\
             if {op:?} == 'create':\n    s3.create_bucket(Bucket='bench')\n\
             elif {op:?} == 'up':\n    s3.upload_file({p:?}, 'bench', {key:?})\n\
             else:\n    s3.download_file('bench', {key:?}, {p:?})\n",
            p = path.display().to_string()
        );
        let mut c = Command::new(&python);
        c.args(["-c", &script]);
        env(&mut c);
        c
    };
    let ours = |from: String, to: String| {
        let mut c = Command::new(&provider);
        c.args(["server", "copy", &from, &to]);
        env(&mut c);
        c
    };
    let object = |key: &str| {
        format!("s3://bench/{key}?region=us-east-1&endpoint={endpoint}&path_style=true")
    };
    measure(&mut boto("create", "", &file))?;

    eprintln!("==> uploads");
    let up_ours = measure(&mut ours(file.display().to_string(), object("ours.bin")))?;
    let up_boto = measure(&mut boto("up", "boto.bin", &file))?;
    eprintln!("==> downloads");
    let back_ours = work.join("ours.back");
    let back_boto = work.join("boto.back");
    let down_ours = measure(&mut ours(
        object("ours.bin"),
        back_ours.display().to_string(),
    ))?;
    let down_boto = measure(&mut boto("down", "boto.bin", &back_boto))?;
    for p in [&back_ours, &back_boto] {
        if sha256_of(p)? != want {
            bail!("{} differs from what was uploaded", p.display());
        }
    }

    let mb = size_mb as f64 * 1.048_576;
    println!(
        "\nTransfer of a {size_mb} MiB artifact against moto (S3 API on loopback), one run each:\n"
    );
    println!(
        "| case | modelplane (object_store) | boto3 transfer manager | time ratio (ours / boto3) |"
    );
    println!("|---|---|---|---|");
    for (name, o, b) in [
        ("upload", &up_ours, &up_boto),
        ("download", &down_ours, &down_boto),
    ] {
        println!(
            "| {name} | {:.1} s, {:.0} MB/s, peak RSS {:.0} MB | {:.1} s, {:.0} MB/s, peak RSS {:.0} MB | {:.2}x |",
            o.secs,
            mb / o.secs,
            o.peak_rss_mb,
            b.secs,
            mb / b.secs,
            b.peak_rss_mb,
            o.secs / b.secs
        );
    }
    println!(
        "\nPeak RSS during our upload: {:.0} MB (goal < {RSS_GOAL_MB:.0} MB): {}",
        up_ours.peak_rss_mb,
        if up_ours.peak_rss_mb < RSS_GOAL_MB {
            "met"
        } else {
            "MISSED"
        }
    );
    println!("Both downloads match the artifact's sha256 ({want}).");
    for p in [&file, &back_ours, &back_boto] {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}
