//! The IDs resources hand each other, parsed and formatted in one place:
//!
//! | ID | form | e.g. |
//! |---|---|---|
//! | [`ClusterId`] | `PLATFORM/NAME` | `local/inference` |
//! | [`EndpointId`] | `CLUSTER_ID/NAME` | `kubernetes/gpu/fraud` |
//! | [`VersionId`] | `STORE_ID/NAME/VERSION` | `s3://models?region=eu-west-1/iris/2` |
//!
//! A cluster ID names its platform, so every resource that takes a `cluster` (or an endpoint)
//! knows where it runs from the ID alone.

use std::fmt;
use std::str::FromStr;

/// The platforms a cluster can be on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PlatformKind {
    Local,
    Container,
    Kubernetes,
    Aws,
    Azure,
}

impl PlatformKind {
    /// Every platform the schema knows.
    pub const ALL: [PlatformKind; 5] = [
        PlatformKind::Local,
        PlatformKind::Container,
        PlatformKind::Kubernetes,
        PlatformKind::Aws,
        PlatformKind::Azure,
    ];

    /// The name used in `platform` and in cluster IDs.
    pub fn as_str(self) -> &'static str {
        match self {
            PlatformKind::Local => "local",
            PlatformKind::Container => "container",
            PlatformKind::Kubernetes => "kubernetes",
            PlatformKind::Aws => "aws",
            PlatformKind::Azure => "azure",
        }
    }

    fn list(kinds: impl Iterator<Item = PlatformKind>) -> String {
        kinds
            .map(|k| format!("{:?}", k.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for PlatformKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PlatformKind {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        PlatformKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                IdError::UnknownPlatform(format!(
                    "unknown platform {s:?}; use one of {}",
                    PlatformKind::list(PlatformKind::ALL.into_iter())
                ))
            })
    }
}

/// Why an ID does not parse, in words that say what to give instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Not of the ID's form.
    #[error("{0}")]
    Malformed(String),
    /// Of the form, but naming a platform there is none of.
    #[error("{0}")]
    UnknownPlatform(String),
}

/// A cluster: `PLATFORM/NAME`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClusterId {
    pub platform: PlatformKind,
    pub name: String,
}

impl ClusterId {
    pub fn new(platform: PlatformKind, name: impl Into<String>) -> Self {
        ClusterId {
            platform,
            name: name.into(),
        }
    }
}

impl fmt::Display for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.platform, self.name)
    }
}

impl FromStr for ClusterId {
    type Err = IdError;
    fn from_str(id: &str) -> Result<Self, IdError> {
        match id.split_once('/') {
            Some((p, n)) if !p.is_empty() && !n.is_empty() && !n.contains('/') => Ok(ClusterId {
                platform: p.parse()?,
                name: n.to_string(),
            }),
            _ => Err(IdError::Malformed(format!(
                "{id:?} is not a cluster ID; use the `id` of a modelplane_gpu_cluster (PLATFORM/NAME, e.g. \"local/inference\")"
            ))),
        }
    }
}

/// An endpoint: `CLUSTER_ID/NAME`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EndpointId {
    pub cluster: ClusterId,
    pub name: String,
}

impl EndpointId {
    pub fn new(cluster: ClusterId, name: impl Into<String>) -> Self {
        EndpointId {
            cluster,
            name: name.into(),
        }
    }
}

impl fmt::Display for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.cluster, self.name)
    }
}

impl FromStr for EndpointId {
    type Err = IdError;
    fn from_str(id: &str) -> Result<Self, IdError> {
        let Some((cluster, name)) = id.rsplit_once('/').filter(|(_, n)| !n.is_empty()) else {
            return Err(IdError::Malformed(format!(
                "{id:?} is not an endpoint ID (PLATFORM/CLUSTER/NAME, e.g. \"local/inference/digits\"); use modelplane_endpoint.NAME.id"
            )));
        };
        Ok(EndpointId {
            cluster: cluster.parse()?,
            name: name.to_string(),
        })
    }
}

/// A model version: `STORE_ID/NAME/VERSION`, where the store ID is the store's URI.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VersionId {
    pub store: String,
    pub name: String,
    pub version: String,
}

impl VersionId {
    pub fn new(store: &str, name: impl Into<String>, version: impl Into<String>) -> Self {
        VersionId {
            store: store.trim_end_matches('/').to_string(),
            name: name.into(),
            version: version.into(),
        }
    }
}

impl fmt::Display for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.store, self.name, self.version)
    }
}

impl FromStr for VersionId {
    type Err = IdError;
    fn from_str(id: &str) -> Result<Self, IdError> {
        let bad = || {
            IdError::Malformed(format!(
                "{id:?} is not the id of a modelplane_model (STORE_ID/NAME/VERSION); use modelplane_model.NAME.id"
            ))
        };
        let mut parts = id.rsplitn(3, '/');
        let version = parts.next().ok_or_else(bad)?;
        let name = parts.next().ok_or_else(bad)?;
        let store = parts.next().ok_or_else(bad)?;
        if version.is_empty() || name.is_empty() || !store.contains("://") {
            return Err(bad());
        }
        Ok(VersionId::new(store, name, version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        let c: ClusterId = "kubernetes/gpu".parse().unwrap();
        assert_eq!(c, ClusterId::new(PlatformKind::Kubernetes, "gpu"));
        assert_eq!(c.to_string(), "kubernetes/gpu");
        let e: EndpointId = "local/inference/digits".parse().unwrap();
        assert_eq!(e.cluster.platform, PlatformKind::Local);
        assert_eq!(e.name, "digits");
        assert_eq!(e.to_string(), "local/inference/digits");
        let v: VersionId = "s3://m?region=x/iris/2".parse().unwrap();
        assert_eq!(
            (v.store.as_str(), v.name.as_str(), v.version.as_str()),
            ("s3://m?region=x", "iris", "2")
        );
        assert_eq!(v.to_string(), "s3://m?region=x/iris/2");
        assert_eq!(
            VersionId::new("file:///x/", "a", "1").to_string(),
            "file:///x/a/1"
        );
    }

    #[test]
    fn bad_ids_say_what_to_give() {
        assert!("local"
            .parse::<ClusterId>()
            .unwrap_err()
            .to_string()
            .contains("PLATFORM/NAME"));
        assert!("local/a/b".parse::<ClusterId>().is_err());
        assert!("gcp/a"
            .parse::<ClusterId>()
            .unwrap_err()
            .to_string()
            .contains("unknown platform \"gcp\""));
        assert!("local/a/".parse::<EndpointId>().is_err());
        assert!("digits"
            .parse::<EndpointId>()
            .unwrap_err()
            .to_string()
            .contains("PLATFORM/CLUSTER/NAME"));
        assert!("iris/2".parse::<VersionId>().is_err());
        assert!("file:///x/iris/".parse::<VersionId>().is_err());
    }
}
