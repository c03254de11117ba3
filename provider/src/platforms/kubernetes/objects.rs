//! Writing rendered objects: server-side apply, pruning of objects a plan no longer renders,
//! deletion, and the references recorded in state.

use std::fmt;

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersion;
use kube::discovery::ApiResource;
use serde_json::Value;

use super::{FIELD_MANAGER, MANAGED_BY};

/// An object to write: its JSON, complete with `apiVersion`, `kind` and `metadata`.
pub type Rendered = Value;

/// The kinds the provider writes: `(apiVersion, kind, plural, namespaced)`.
const KINDS: &[(&str, &str, &str, bool)] = &[
    ("v1", "Namespace", "namespaces", false),
    ("v1", "ResourceQuota", "resourcequotas", true),
    ("v1", "LimitRange", "limitranges", true),
    (
        "scheduling.k8s.io/v1",
        "PriorityClass",
        "priorityclasses",
        false,
    ),
    ("v1", "ConfigMap", "configmaps", true),
    ("v1", "Secret", "secrets", true),
    ("v1", "ServiceAccount", "serviceaccounts", true),
    ("v1", "Service", "services", true),
    ("apps/v1", "Deployment", "deployments", true),
    ("apps/v1", "DaemonSet", "daemonsets", true),
    (
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
    ),
    (
        "policy/v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
    ),
    ("networking.k8s.io/v1", "Ingress", "ingresses", true),
    (
        "gateway.networking.k8s.io/v1",
        "HTTPRoute",
        "httproutes",
        true,
    ),
    ("route.openshift.io/v1", "Route", "routes", true),
    (
        "monitoring.coreos.com/v1",
        "ServiceMonitor",
        "servicemonitors",
        true,
    ),
    (
        "monitoring.coreos.com/v1",
        "PrometheusRule",
        "prometheusrules",
        true,
    ),
    (
        "monitoring.coreos.com/v1alpha1",
        "AlertmanagerConfig",
        "alertmanagerconfigs",
        true,
    ),
];

/// Where an object lives: what the state records of it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl fmt::Display for ObjectRef {
    /// `apps/v1/Deployment/NAMESPACE/NAME`, or `v1/Namespace/NAME` for cluster-scoped kinds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/", self.api_version, self.kind)?;
        if let Some(ns) = &self.namespace {
            write!(f, "{ns}/")?;
        }
        write!(f, "{}", self.name)
    }
}

impl ObjectRef {
    /// The reference of a rendered object.
    pub fn of(obj: &Rendered) -> Result<Self, String> {
        let s = |p: &str| obj.pointer(p).and_then(Value::as_str).map(String::from);
        let (Some(api_version), Some(kind), Some(name)) =
            (s("/apiVersion"), s("/kind"), s("/metadata/name"))
        else {
            return Err(format!("object without apiVersion, kind or name: {obj}"));
        };
        Ok(Self {
            api_version,
            kind,
            namespace: s("/metadata/namespace"),
            name,
        })
    }

    /// Parses what [`Display`](fmt::Display) wrote.
    pub fn parse(s: &str) -> Option<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        // The apiVersion has one `/` unless it is the core group's `v1`.
        let (api_version, rest) = if parts.first() == Some(&"v1") {
            ("v1".to_string(), &parts[1..])
        } else if parts.len() > 2 {
            (format!("{}/{}", parts[0], parts[1]), &parts[2..])
        } else {
            return None;
        };
        let (_, _, _, namespaced) = KINDS
            .iter()
            .find(|(v, k, _, _)| *v == api_version && Some(k) == rest.first())?;
        match (namespaced, rest) {
            (true, [kind, ns, name]) => Some(Self {
                api_version,
                kind: kind.to_string(),
                namespace: Some(ns.to_string()),
                name: name.to_string(),
            }),
            (false, [kind, name]) => Some(Self {
                api_version,
                kind: kind.to_string(),
                namespace: None,
                name: name.to_string(),
            }),
            _ => None,
        }
    }

    fn resource(&self) -> Result<(ApiResource, bool), String> {
        let (_, _, plural, namespaced) = KINDS
            .iter()
            .find(|(v, k, _, _)| *v == self.api_version && *k == self.kind)
            .ok_or_else(|| {
                format!(
                    "{} {} is not a kind this provider writes",
                    self.api_version, self.kind
                )
            })?;
        let gv: GroupVersion = self
            .api_version
            .parse()
            .map_err(|e| format!("{}: {e}", self.api_version))?;
        Ok((
            ApiResource::from_gvk_with_plural(&gv.with_kind(&self.kind), plural),
            *namespaced,
        ))
    }

    /// A dynamic API for this object's kind and namespace.
    pub fn api(&self, client: &kube::Client) -> Result<Api<DynamicObject>, String> {
        let (ar, namespaced) = self.resource()?;
        Ok(match (&self.namespace, namespaced) {
            (Some(ns), true) => Api::namespaced_with(client.clone(), ns, &ar),
            _ => Api::all_with(client.clone(), &ar),
        })
    }

    /// The object as the API server has it; `None` when it does not exist.
    pub async fn get(&self, client: &kube::Client) -> Result<Option<Value>, String> {
        let api = self.api(client)?;
        match api.get_opt(&self.name).await {
            Ok(o) => Ok(o.map(|o| serde_json::to_value(o).unwrap_or_default())),
            Err(e) => Err(describe(self, "read", &e)),
        }
    }
}

/// An error from the API server, with what to do about it.
pub fn describe(obj: &ObjectRef, verb: &str, e: &kube::Error) -> String {
    let hint = match e {
        kube::Error::Api(s) if s.code == 403 => format!(
            ": the credentials may not {verb} {} objects{}; grant it through RBAC (a Role or ClusterRole bound to the identity in the kubeconfig)",
            obj.kind,
            obj.namespace.as_deref().map(|n| format!(" in namespace {n}")).unwrap_or_default()
        ),
        kube::Error::Api(s) if s.code == 404 && verb == "write" => format!(
            ": the cluster does not serve {} (install the CRDs that define {}, or leave the option that needs them unset)",
            obj.api_version, obj.kind
        ),
        kube::Error::Api(s) if s.code == 409 => ": another field manager owns the field; remove it from that tool, or let Modelplane own the object".into(),
        kube::Error::Api(s) if s.code == 422 => ": the API server refused the object as invalid".into(),
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            ": the API server does not answer; check the provider's kubernetes block and the network".into()
        }
        _ => String::new(),
    };
    format!("cannot {verb} {obj}: {e}{hint}")
}

/// Writes objects in order with server-side apply (field manager `modelplane`, taking over
/// fields other managers set: the configuration is the source of truth). Returns what was
/// written, for the state, even when a later object fails.
pub async fn apply(
    client: &kube::Client,
    objects: &[Rendered],
) -> (Vec<ObjectRef>, Result<(), String>) {
    let mut done = Vec::new();
    for obj in objects {
        let r = match ObjectRef::of(obj) {
            Ok(r) => r,
            Err(e) => return (done, Err(e)),
        };
        let mut obj = obj.clone();
        if let Some(labels) = obj.pointer_mut("/metadata").and_then(Value::as_object_mut) {
            let l = labels
                .entry("labels")
                .or_insert_with(|| Value::Object(Default::default()));
            if let Some(l) = l.as_object_mut() {
                l.insert(MANAGED_BY.into(), Value::String(FIELD_MANAGER.into()));
            }
        }
        let api = match r.api(client) {
            Ok(a) => a,
            Err(e) => return (done, Err(e)),
        };
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        // A write that raced another writer of the object (a controller updating its
        // status) is a conflict on the resource version, not on fields: it is tried again.
        let mut attempt = 0;
        loop {
            match api.patch(&r.name, &pp, &Patch::Apply(&obj)).await {
                Ok(_) => {
                    done.push(r);
                    break;
                }
                Err(kube::Error::Api(s)) if s.code == 409 && attempt < 4 => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
                }
                Err(e) => return (done, Err(describe(&r, "write", &e))),
            }
        }
    }
    (done, Ok(()))
}

/// Deletes objects, last first; an object already gone is not an error. Namespaces are
/// deleted with what they contain (the API server's background cascade).
pub async fn delete(client: &kube::Client, refs: &[ObjectRef]) -> Result<(), String> {
    let mut errors = Vec::new();
    for r in refs.iter().rev() {
        let api = r.api(client)?;
        match api.delete(&r.name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => errors.push(describe(r, "delete", &e)),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

/// Deletes what `before` recorded and `after` no longer has.
pub async fn prune(
    client: &kube::Client,
    before: &[ObjectRef],
    after: &[ObjectRef],
) -> Result<(), String> {
    let gone: Vec<ObjectRef> = before
        .iter()
        .filter(|r| !after.contains(r))
        .cloned()
        .collect();
    delete(client, &gone).await
}

/// Applies `objects`, then deletes what `before` recorded and they no longer include. Returns
/// what the state must record: the new objects when all went well, else everything that may
/// exist (what `before` had and what was written).
pub async fn converge(
    client: &kube::Client,
    before: &[ObjectRef],
    objects: &[Rendered],
) -> (Vec<ObjectRef>, Result<(), String>) {
    let (recorded, r) = write(client, before, objects).await;
    if let Err(e) = r {
        return (recorded, Err(e));
    }
    settle(client, before, objects, recorded).await
}

/// The first half of [`converge`]: applies `objects`. What to record is `before` and every
/// object written, so that a failure half way loses nothing.
pub async fn write(
    client: &kube::Client,
    before: &[ObjectRef],
    objects: &[Rendered],
) -> (Vec<ObjectRef>, Result<(), String>) {
    let (written, r) = apply(client, objects).await;
    let mut recorded = before.to_vec();
    for w in written {
        if !recorded.contains(&w) {
            recorded.push(w);
        }
    }
    (recorded, r)
}

/// The second half of [`converge`], after a successful [`write`] (and whatever must hold
/// before the old objects go): prunes what `before` had and `objects` no longer do. Then
/// the record is `objects`; if pruning fails, it stays `recorded`.
pub async fn settle(
    client: &kube::Client,
    before: &[ObjectRef],
    objects: &[Rendered],
    recorded: Vec<ObjectRef>,
) -> (Vec<ObjectRef>, Result<(), String>) {
    let new = refs(objects);
    match prune(client, before, &new).await {
        Ok(()) => (new, Ok(())),
        Err(e) => (recorded, Err(e)),
    }
}

/// The references of rendered objects.
pub fn refs(objects: &[Rendered]) -> Vec<ObjectRef> {
    objects
        .iter()
        .filter_map(|o| ObjectRef::of(o).ok())
        .collect()
}

/// Parses recorded references, skipping what this version cannot read.
pub fn parse_all(recorded: &[String]) -> Vec<ObjectRef> {
    recorded
        .iter()
        .filter_map(|s| ObjectRef::parse(s))
        .collect()
}

/// Whether the cluster serves a custom resource: its CustomResourceDefinition exists.
/// Asked at apply, never at plan, so a configuration does not depend on CRDs being present
/// before the plan (they may be installed by the same apply).
pub async fn has_crd(client: &kube::Client, name: &str) -> bool {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    matches!(api.get_opt(name).await, Ok(Some(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_round_trip() {
        for s in [
            "v1/Namespace/ml-inference",
            "v1/ConfigMap/ml-inference/digits-config",
            "apps/v1/Deployment/ml/digits",
            "scheduling.k8s.io/v1/PriorityClass/modelplane-gpu-inference",
            "monitoring.coreos.com/v1/ServiceMonitor/ml/digits",
        ] {
            let r = ObjectRef::parse(s).unwrap_or_else(|| panic!("{s}"));
            assert_eq!(r.to_string(), s);
        }
        assert!(ObjectRef::parse("apps/v1/Deployment/no-namespace").is_none());
        assert!(ObjectRef::parse("v1/Unknown/x").is_none());
    }
}
