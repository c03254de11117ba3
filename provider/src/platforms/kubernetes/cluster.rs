//! Clusters on the `kubernetes` platform: adopted, not created. The provider writes the GPU
//! partitions ([`partitions`]) and reads the nodes' GPUs.

use tfplugin::{Attr, AttributePath, Config, Diagnostics, PathStep};

use super::{objects, partitions, Kubernetes};
use crate::platforms::{ClusterFacts, ClusterSpec, PartitionSeen, PlatformError};

impl Kubernetes {
    /// Writes the partitions, prunes what `before` had and the spec drops, and reads the
    /// inventory.
    pub(super) async fn converge(
        &self,
        spec: &ClusterSpec,
        before: &[String],
        diags: &mut Diagnostics,
    ) -> Result<ClusterFacts, (PlatformError, Option<ClusterFacts>)> {
        self.converge_with(spec, &[], before, diags).await
    }

    /// [`converge`](Self::converge), with further objects written before the partitions
    /// (a cloud platform's add-ons, such as the GPU device plugin).
    pub(crate) async fn converge_with(
        &self,
        spec: &ClusterSpec,
        extra: &[objects::Rendered],
        before: &[String],
        diags: &mut Diagnostics,
    ) -> Result<ClusterFacts, (PlatformError, Option<ClusterFacts>)> {
        let (client, api_server) = self.connect().await.map_err(|e| (e, None))?;
        let before = objects::parse_all(before);
        let rendered: Vec<_> = extra
            .iter()
            .cloned()
            .chain(
                spec.partitions
                    .iter()
                    .flat_map(|p| p.render(&self.cluster.name)),
            )
            .collect();
        let (recorded, r) = objects::converge(&client, &before, &rendered).await;
        let inv = match partitions::inventory(&client).await {
            Ok(inv) => {
                for w in partitions::capacity_warnings(&inv, &spec.partitions) {
                    diags.warning("GPU capacity", w);
                }
                inv
            }
            Err(e) => {
                diags.warning("No node inventory", e);
                partitions::Inventory {
                    nodes: vec![],
                    cpus: 0,
                    memory_bytes: 0,
                }
            }
        };
        let mut facts = facts(inv, api_server);
        facts.objects = Some(recorded.iter().map(|r| r.to_string()).collect());
        match r {
            Ok(()) => Ok(facts),
            // What was written is in the state returned with the error, so nothing is lost.
            Err(e) => Err((
                PlatformError::Refused {
                    attribute: None,
                    summary: "Cannot write the partitions".into(),
                    message: e,
                },
                Some(facts),
            )),
        }
    }

    pub(crate) async fn observe(
        &self,
        spec: &ClusterSpec,
        diags: &mut Diagnostics,
    ) -> Result<(Option<ClusterFacts>, Vec<PartitionSeen>), PlatformError> {
        let (client, api_server) = self.connect().await?;
        let mut seen = Vec::new();
        for p in &spec.partitions {
            seen.push(match partitions::observe(&client, p).await {
                // A deleted namespace drops the partition from state: the plan creates it again.
                Ok(None) => PartitionSeen::Gone,
                Ok(Some(s)) => PartitionSeen::Seen(partitions::Partition {
                    gpus: s.gpus,
                    cpu: same_quantity(p.cpu.clone(), s.cpu),
                    memory: same_quantity(p.memory.clone(), s.memory),
                    ..p.clone()
                }),
                Err(e) => {
                    diags.warning("Cannot read a partition", e);
                    PartitionSeen::Unknown
                }
            });
        }
        let facts = match partitions::inventory(&client).await {
            Ok(inv) => Some(facts(inv, api_server)),
            Err(e) => {
                diags.warning("No node inventory", e);
                None
            }
        };
        Ok((facts, seen))
    }
}

fn facts(inv: partitions::Inventory, api_server: String) -> ClusterFacts {
    ClusterFacts {
        hostname: api_server,
        cpus: inv.cpus,
        memory_bytes: inv.memory_bytes,
        gpus: Vec::new(),
        nodes: Some(inv.nodes),
        ..Default::default()
    }
}

/// Plan-time checks of a kubernetes cluster: partitions instead of node pools, no engine.
pub(super) fn validate(config: &Config, diags: &mut Diagnostics) {
    if !config.elements("node_pool").is_empty() {
        diags.error_at(
            AttributePath::attr("node_pool"),
            "Not used on kubernetes",
            "an adopted Kubernetes cluster keeps the node pools it has; select their nodes with partition.node_selector instead of node_pool.",
        );
    }
    if !config.get::<String>("engine", diags).is_null() {
        diags.error_at(
            AttributePath::attr("engine"),
            "Not used on kubernetes",
            "engine applies to container clusters; remove it.",
        );
    }
    validate_partitions(&config.elements("partition"), diags);
}

pub(crate) fn validate_partitions(parts: &[Config], diags: &mut Diagnostics) {
    let mut seen = std::collections::BTreeSet::new();
    for (i, part) in parts.iter().enumerate() {
        let at = |a: &str| {
            AttributePath(vec![
                PathStep::Attr("partition".into()),
                PathStep::Index(i as i64),
                PathStep::Attr(a.into()),
            ])
        };
        if let Attr::Known(p) = part.get::<String>("purpose", diags) {
            if partitions::PURPOSES.contains(&p.as_str()) && !seen.insert(p.clone()) {
                diags.error_at(
                    at("purpose"),
                    "Duplicate partition",
                    format!(
                        "the {p} partition is declared twice; declare one partition per purpose."
                    ),
                );
            }
        }
        if let Attr::Known(n) = part.get::<String>("namespace", diags) {
            if !super::is_dns_label(&n) {
                diags.error_at(at("namespace"), "Invalid namespace", format!("namespace {n:?} must be a DNS label: lower-case letters, digits and '-', at most 63 characters, e.g. \"ml-inference\"."));
            }
        }
        for f in ["cpu", "memory"] {
            if let Attr::Known(q) = part.get::<String>(f, diags) {
                if let Err(e) = super::check_quantity(&q) {
                    diags.error_at(at(f), "Invalid quantity", e);
                }
            }
        }
        for (j, t) in part.elements("toleration").iter().enumerate() {
            let tat = |a: &str| {
                AttributePath(vec![
                    PathStep::Attr("partition".into()),
                    PathStep::Index(i as i64),
                    PathStep::Attr("toleration".into()),
                    PathStep::Index(j as i64),
                    PathStep::Attr(a.into()),
                ])
            };
            if let Attr::Known(o) = t.get::<String>("operator", diags) {
                if o == "Exists" && !t.get::<String>("value", diags).is_null() {
                    diags.error_at(tat("value"), "Invalid toleration", "a toleration with operator \"Exists\" takes no value; remove value or use \"Equal\".");
                }
            }
        }
    }
}

/// Partitions as the cluster has them: namespaces labelled for the cluster, with their quota.
pub(super) async fn import_partitions(
    client: &kube::Client,
    cluster: &str,
) -> Result<Vec<partitions::Partition>, String> {
    let mut out = Vec::new();
    for purpose in partitions::PURPOSES {
        let (namespace, sched) = match partitions::find(client, cluster, purpose).await {
            Ok(f) => f,
            Err(_) => continue,
        };
        let probe = partitions::Partition {
            purpose: purpose.to_string(),
            namespace: namespace.clone(),
            gpus: 0,
            cpu: None,
            memory: None,
            max_gpus_per_pod: None,
            priority: partitions::default_priority(purpose),
            node_selector: sched.node_selector.clone(),
            tolerations: Vec::new(),
            spot: false,
        };
        let Some(seen) = partitions::observe(client, &probe).await? else {
            continue;
        };
        let spot = sched
            .tolerations
            .iter()
            .any(|t| t.key == partitions::SPOT_TAINTS[0].0);
        let base = partitions::Partition {
            spot,
            ..probe.clone()
        }
        .all_tolerations();
        out.push(partitions::Partition {
            purpose: purpose.to_string(),
            namespace,
            gpus: seen.gpus.max(0),
            cpu: seen.cpu,
            memory: seen.memory,
            max_gpus_per_pod: None,
            priority: partitions::default_priority(purpose),
            node_selector: sched.node_selector,
            spot,
            tolerations: sched
                .tolerations
                .into_iter()
                .filter(|t| !base.contains(t))
                .collect(),
        });
    }
    if out.is_empty() {
        return Err(format!(
            "no namespace carries the label {}={cluster}; nothing to import",
            super::LABEL_CLUSTER
        ));
    }
    Ok(out)
}

/// The API server writes quantities its own way (`0.5` comes back as `500m`): the declared
/// text is kept while the values are equal, so only a real change shows in the plan.
fn same_quantity(declared: Option<String>, seen: Option<String>) -> Option<String> {
    match (&declared, &seen) {
        (Some(d), Some(s))
            if super::quantity(d).is_some() && super::quantity(d) == super::quantity(s) =>
        {
            declared
        }
        _ => seen,
    }
}

#[cfg(test)]
mod tests {
    use super::same_quantity;

    #[test]
    fn quantities_written_differently_are_not_drift() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(same_quantity(s("0.5"), s("500m")), s("0.5"));
        assert_eq!(same_quantity(s("64Gi"), s("64Gi")), s("64Gi"));
        assert_eq!(same_quantity(s("1Gi"), s("1024Mi")), s("1Gi"));
        assert_eq!(same_quantity(s("2"), s("4")), s("4"));
        assert_eq!(same_quantity(None, s("4")), s("4"));
        assert_eq!(same_quantity(s("4"), None), None);
    }
}
