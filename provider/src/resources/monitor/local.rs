//! Monitors on this machine: a managed Prometheus and Alertmanager, or rule and target files
//! dropped into an existing Prometheus, which is reloaded.

use super::*;

impl Monitor {
    /// Writes the files and starts or reloads what evaluates them; a managed monitor keeps
    /// `prior_ports`, or gets free ones.
    pub(super) async fn apply(
        &self,
        plan: &mut Model,
        prior_ports: Option<managed::Ports>,
    ) -> Result<(), String> {
        let spec = Self::spec(plan).ok_or("the monitor's configuration is not fully known")?;
        let dir = self.dir(&spec.endpoint);
        dir.create()
            .map_err(|e| format!("cannot create {}: {e}", dir.0.display()))?;
        // The endpoint keeps its targets file current; one written before it did is made now.
        let endpoint_dir = Dir::new(&self.state_dir(), &spec.endpoint);
        if !endpoint_dir.path("targets.json").is_file() {
            if let Some(cfg) = endpoint_dir.read_json("config.json") {
                crate::platforms::local::process::write_targets(&endpoint_dir, &cfg)
                    .map_err(|e| format!("cannot write the endpoint's targets file: {e}"))?;
            }
        }
        match &plan.existing_prometheus {
            Some(e) => {
                let (rules_dir, targets_dir) = (e.rules_dir(), e.targets_dir());
                for (d, f) in [(&rules_dir, "rules_dir"), (&targets_dir, "targets_dir")] {
                    if !d.exists() {
                        return Err(format!(
                            "existing_prometheus.{f} {} is not a folder",
                            d.0.display()
                        ));
                    }
                }
                let rules_name = ExistingPrometheus::rules_name(&spec.endpoint);
                let targets_file =
                    targets_dir.path(&ExistingPrometheus::targets_name(&spec.endpoint));
                let write_rules = |content: &[u8]| {
                    rules_dir.write(&rules_name, content).map_err(|err| {
                        format!(
                            "cannot write {}: {err}",
                            rules_dir.path(&rules_name).display()
                        )
                    })
                };
                let old_rules = std::fs::read(rules_dir.path(&rules_name)).ok();
                write_rules(monitoring::yaml(&spec.rules()).as_bytes())?;
                // A link to the endpoint's own file, which follows the endpoint when it moves.
                let had_link = targets_file.symlink_metadata().is_ok();
                let _ = std::fs::remove_file(&targets_file);
                std::os::unix::fs::symlink(endpoint_dir.path("targets.json"), &targets_file)
                    .map_err(|err| format!("cannot link {}: {err}", targets_file.display()))?;
                if let Err(err) = managed::reload(&e.base_url()).await {
                    // Leave the Prometheus as it was.
                    match old_rules {
                        Some(old) => {
                            let _ = write_rules(&old);
                        }
                        None => {
                            let _ = std::fs::remove_file(rules_dir.path(&rules_name));
                        }
                    }
                    if !had_link {
                        let _ = std::fs::remove_file(&targets_file);
                    }
                    return Err(err);
                }
                plan.prometheus_url = Attr::Known(e.base_url());
                plan.alertmanager_url = Attr::Null;
                dir.write_json("monitor.json", &*plan)
                    .map_err(|e| e.to_string())?;
            }
            None => {
                let ports = match prior_ports {
                    Some(p) => p,
                    None => managed::Ports::free().map_err(|e| format!("no free port: {e}"))?,
                };
                managed::write_files(&dir, &spec, &endpoint_dir.path("targets.json"), ports)
                    .map_err(|e| {
                        format!(
                            "cannot write the monitor's files in {}: {e}",
                            dir.0.display()
                        )
                    })?;
                dir.write_json("ports.json", &ports)
                    .map_err(|e| e.to_string())?;
                let (p, a) = managed::processes(&dir);
                if a.is_some() {
                    managed::reload(&ports.alertmanager_url())
                        .await
                        .map_err(|e| format!("Alertmanager refused the new configuration: {e}"))?;
                }
                if p.is_some() {
                    managed::reload(&ports.prometheus_url())
                        .await
                        .map_err(|e| format!("Prometheus refused the new configuration: {e}"))?;
                }
                managed::ensure_running(&dir, &spec, ports).await?;
                plan.prometheus_url = Attr::Known(ports.prometheus_url());
                plan.alertmanager_url = Attr::Known(ports.alertmanager_url());
                dir.write_json("monitor.json", &*plan)
                    .map_err(|e| e.to_string())?;
            }
        }
        plan.status = Attr::Known("running".into());
        plan.state_path = Attr::Known(dir.0.display().to_string());
        self.render(plan);
        Ok(())
    }
}

impl Monitor {
    /// Stops the managed processes, or takes the files out of an existing Prometheus.
    pub(super) async fn teardown(&self, m: &Model, ctx: &mut Ctx) {
        let Some(endpoint) = m.endpoint.known().and_then(|e| endpoint_name(e)) else {
            return;
        };
        let dir = self.dir(&endpoint);
        match &m.existing_prometheus {
            None => managed::stop(&dir).await,
            Some(e) => {
                e.remove_files(&endpoint);
                if let Err(err) = managed::reload(&e.base_url()).await {
                    ctx.diags.warning("Prometheus not reloaded", format!("the monitor's files were removed, but {err}; Prometheus keeps the rules until its next reload."));
                }
            }
        }
    }
}
