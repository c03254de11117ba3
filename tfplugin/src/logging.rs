//! Logs as hclog JSON lines on stderr, the form Terraform's plugin client parses, so
//! `TF_LOG=debug terraform plan` shows provider logs with their levels.
//!
//! The level comes from `TF_LOG_PROVIDER`, else `TF_LOG` (trace, debug, info, warn, error,
//! off; `json` means trace), else `info`.

use std::fmt::Write as _;
use std::io::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// The level named by the environment, as Terraform's own variables set it.
pub fn level_from_env() -> Option<Level> {
    let raw = std::env::var("TF_LOG_PROVIDER")
        .or_else(|_| std::env::var("TF_LOG"))
        .unwrap_or_else(|_| "info".into());
    match raw.to_ascii_lowercase().as_str() {
        "trace" | "json" => Some(Level::TRACE),
        "debug" => Some(Level::DEBUG),
        "info" | "" => Some(Level::INFO),
        "warn" => Some(Level::WARN),
        "error" => Some(Level::ERROR),
        "off" => None,
        _ => Some(Level::INFO),
    }
}

/// Formats one event as an hclog JSON line.
pub fn hclog_line(
    level: &Level,
    module: &str,
    message: &str,
    fields: &[(String, serde_json::Value)],
    timestamp: &str,
) -> String {
    let mut m = serde_json::Map::new();
    m.insert("@level".into(), level.as_str().to_ascii_lowercase().into());
    m.insert("@message".into(), message.into());
    m.insert("@module".into(), module.into());
    m.insert("@timestamp".into(), timestamp.into());
    for (k, v) in fields {
        m.insert(k.clone(), v.clone());
    }
    serde_json::Value::Object(m).to_string()
}

struct HclogLayer {
    module: String,
    max: Level,
}

#[derive(Default)]
struct Fields {
    message: String,
    rest: Vec<(String, serde_json::Value)>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        if field.name() == "message" {
            self.message = s;
        } else {
            self.rest.push((field.name().to_string(), s.into()));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.rest.push((field.name().to_string(), value.into()));
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.rest.push((field.name().to_string(), value.into()));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.rest.push((field.name().to_string(), value.into()));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.rest.push((field.name().to_string(), value.into()));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.rest.push((field.name().to_string(), value.into()));
    }
}

impl<S: Subscriber> Layer<S> for HclogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if *meta.level() > self.max {
            return;
        }
        let mut f = Fields::default();
        event.record(&mut f);
        let ts = time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
            ))
            .unwrap_or_default();
        let line = hclog_line(meta.level(), &self.module, &f.message, &f.rest, &ts);
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
    }
}

/// Installs the hclog JSON logger for the process (once; later calls do nothing).
pub fn init(module: &str) {
    let Some(max) = level_from_env() else { return };
    // Filter before the registry: spans and events of other crates below `max` (and their
    // chatter above debug) are never built.
    let quiet = if max < Level::TRACE {
        Level::WARN
    } else {
        Level::TRACE
    };
    let filter = tracing_subscriber::filter::Targets::new()
        .with_default(max)
        .with_target("h2", quiet)
        .with_target("hyper", quiet)
        .with_target("hyper_util", quiet)
        .with_target("tower", quiet)
        .with_target("tonic", quiet)
        .with_target("rustls", quiet);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(HclogLayer {
            module: module.to_string(),
            max,
        })
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_have_hclog_keys() {
        let l = hclog_line(
            &Level::WARN,
            "provider",
            "disk low",
            &[("free".into(), 3.into())],
            "2026-01-01T00:00:00.000000Z",
        );
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["@level"], "warn");
        assert_eq!(v["@message"], "disk low");
        assert_eq!(v["@module"], "provider");
        assert_eq!(v["free"], 3);
    }
}
