//! The `tfplugin6.Provider` gRPC service implemented by [`ProviderServer`].

use std::panic::AssertUnwindSafe;

use tonic::{Request, Response, Status};

use super::convert::{
    decode_dv, diags_to_proto, encode_dv, function_to_proto, path_to_proto, schema_to_proto,
};
use super::planning::{
    check_apply_result, check_config_kept, first_unknown, mark_computed, null_write_only,
    replace_paths, strip_unknown, with_write_only, write_only_given,
};
use super::{guarded, ProviderServer};
use crate::diag::Diagnostics;
use crate::framework::Config;
use crate::json;
use crate::proto;
use crate::value::{AttributePath, Type, Value};

type R<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl proto::provider_server::Provider for ProviderServer {
    async fn get_metadata(
        &self,
        _r: Request<proto::get_metadata::Request>,
    ) -> R<proto::get_metadata::Response> {
        use proto::get_metadata::{DataSourceMetadata, FunctionMetadata, ResourceMetadata};
        Ok(Response::new(proto::get_metadata::Response {
            server_capabilities: Some(capabilities()),
            diagnostics: vec![],
            data_sources: self
                .data_sources
                .keys()
                .map(|k| DataSourceMetadata {
                    type_name: k.clone(),
                })
                .collect(),
            resources: self
                .resources
                .keys()
                .map(|k| ResourceMetadata {
                    type_name: k.clone(),
                })
                .collect(),
            functions: self
                .functions
                .keys()
                .map(|k| FunctionMetadata { name: k.clone() })
                .collect(),
        }))
    }

    async fn get_provider_schema(
        &self,
        _r: Request<proto::get_provider_schema::Request>,
    ) -> R<proto::get_provider_schema::Response> {
        Ok(Response::new(proto::get_provider_schema::Response {
            provider: Some(schema_to_proto(&self.provider_schema)),
            resource_schemas: self
                .resources
                .iter()
                .map(|(k, (_, s, _))| (k.clone(), schema_to_proto(s)))
                .collect(),
            data_source_schemas: self
                .data_sources
                .iter()
                .map(|(k, (_, s, _))| (k.clone(), schema_to_proto(s)))
                .collect(),
            functions: self
                .functions
                .iter()
                .map(|(k, f)| (k.clone(), function_to_proto(f.as_ref())))
                .collect(),
            diagnostics: vec![],
            provider_meta: None,
            server_capabilities: Some(capabilities()),
        }))
    }

    async fn validate_provider_config(
        &self,
        r: Request<proto::validate_provider_config::Request>,
    ) -> R<proto::validate_provider_config::Response> {
        let r = r.into_inner();
        let mut diags = Diagnostics::new();
        if let Some(cfg) = decode_dv(
            r.config.as_ref(),
            &self.provider_type,
            "provider configuration",
            &mut diags,
        ) {
            crate::validators::check(&self.provider_schema.block, &cfg, &mut diags);
            let c = Config::new(cfg);
            let mut d = Diagnostics::new();
            guarded(
                "ValidateProviderConfig",
                &mut diags,
                self.provider.validate(&c, &mut d),
            )
            .await;
            diags.extend(d);
        }
        Ok(Response::new(proto::validate_provider_config::Response {
            diagnostics: diags_to_proto(&diags),
        }))
    }

    async fn validate_resource_config(
        &self,
        r: Request<proto::validate_resource_config::Request>,
    ) -> R<proto::validate_resource_config::Response> {
        let r = r.into_inner();
        let (res, schema, ty) = self.resource(&r.type_name)?;
        let mut diags = Diagnostics::new();
        if let Some(cfg) = decode_dv(r.config.as_ref(), ty, "configuration", &mut diags) {
            crate::validators::check(&schema.block, &cfg, &mut diags);
            // A client that does not know write-only attributes (Terraform before 1.11,
            // OpenTofu before 1.11) would keep their values in state: refuse them there, as
            // the plugin framework does.
            let allowed = r
                .client_capabilities
                .as_ref()
                .is_some_and(|c| c.write_only_attributes_allowed);
            if !allowed {
                for path in write_only_given(&schema.block, &cfg, &AttributePath::root()) {
                    let name = path.0.iter().rev().find_map(|s| match s {
                        crate::value::PathStep::Attr(a) => Some(a.clone()),
                        _ => None,
                    });
                    diags.error_at(
                        path,
                        "Write-only attribute not supported by this Terraform",
                        format!(
                            "`{}` is write-only: Terraform 1.11 or later and OpenTofu 1.11 or later use it without ever storing it in state. \
                             This client does not support write-only attributes and would store the value in state in clear. \
                             Upgrade Terraform or OpenTofu, or remove the attribute (the resource's documentation says what happens without it).",
                            name.unwrap_or_default()
                        ),
                    );
                }
            }
            let c = Config::new(cfg);
            let mut d = Diagnostics::new();
            guarded(
                "ValidateResourceConfig",
                &mut diags,
                res.validate(&c, &mut d),
            )
            .await;
            diags.extend(d);
        }
        Ok(Response::new(proto::validate_resource_config::Response {
            diagnostics: diags_to_proto(&diags),
        }))
    }

    async fn validate_data_resource_config(
        &self,
        r: Request<proto::validate_data_resource_config::Request>,
    ) -> R<proto::validate_data_resource_config::Response> {
        let r = r.into_inner();
        let (ds, schema, ty) = self.data_source(&r.type_name)?;
        let mut diags = Diagnostics::new();
        if let Some(cfg) = decode_dv(r.config.as_ref(), ty, "configuration", &mut diags) {
            crate::validators::check(&schema.block, &cfg, &mut diags);
            let c = Config::new(cfg);
            let mut d = Diagnostics::new();
            guarded(
                "ValidateDataResourceConfig",
                &mut diags,
                ds.validate(&c, &mut d),
            )
            .await;
            diags.extend(d);
        }
        Ok(Response::new(
            proto::validate_data_resource_config::Response {
                diagnostics: diags_to_proto(&diags),
            },
        ))
    }

    async fn upgrade_resource_state(
        &self,
        r: Request<proto::upgrade_resource_state::Request>,
    ) -> R<proto::upgrade_resource_state::Response> {
        let r = r.into_inner();
        let (res, schema, ty) = self.resource(&r.type_name)?;
        let mut diags = Diagnostics::new();
        let raw = r.raw_state.unwrap_or_default();
        let mut upgraded = None;
        if raw.json.is_empty() && !raw.flatmap.is_empty() {
            diags.error(
                "Unsupported state format",
                "this provider cannot read legacy flatmap state; re-import the resource",
            );
        } else if r.version > schema.version {
            diags.error(
                "State written by a newer provider",
                format!(
                    "{} state has schema version {}, but this provider knows versions up to {}. Use the provider version that wrote it.",
                    r.type_name, r.version, schema.version
                ),
            );
        } else {
            let json_bytes = if r.version < schema.version {
                match serde_json::from_slice::<serde_json::Value>(&raw.json)
                    .map_err(|e| e.to_string())
                    .and_then(|j| res.upgrade_state(r.version, j))
                {
                    Ok(j) => Some(serde_json::to_vec(&j).unwrap_or_default()),
                    Err(e) => {
                        diags.error("Cannot upgrade resource state", e);
                        None
                    }
                }
            } else {
                Some(raw.json)
            };
            if let Some(b) = json_bytes {
                match json::decode(&b, ty) {
                    Ok(v) => {
                        let mut v = v;
                        null_write_only(&schema.block, &mut v);
                        upgraded = encode_dv(&v, ty, &mut diags);
                    }
                    Err(e) => diags.error(
                        "Cannot read resource state",
                        format!("{}: {e}", r.type_name),
                    ),
                }
            }
        }
        Ok(Response::new(proto::upgrade_resource_state::Response {
            upgraded_state: upgraded,
            diagnostics: diags_to_proto(&diags),
        }))
    }

    async fn configure_provider(
        &self,
        r: Request<proto::configure_provider::Request>,
    ) -> R<proto::configure_provider::Response> {
        let r = r.into_inner();
        let mut diags = Diagnostics::new();
        if let Some(cfg) = decode_dv(
            r.config.as_ref(),
            &self.provider_type,
            "provider configuration",
            &mut diags,
        ) {
            let c = Config::new(cfg);
            let mut d = Diagnostics::new();
            guarded(
                "ConfigureProvider",
                &mut diags,
                self.provider.configure(&r.terraform_version, &c, &mut d),
            )
            .await;
            diags.extend(d);
        }
        Ok(Response::new(proto::configure_provider::Response {
            diagnostics: diags_to_proto(&diags),
        }))
    }

    async fn read_resource(
        &self,
        r: Request<proto::read_resource::Request>,
    ) -> R<proto::read_resource::Response> {
        let r = r.into_inner();
        let (res, schema, ty) = self.resource(&r.type_name)?;
        let mut diags = Diagnostics::new();
        let mut new_state = None;
        let mut private = r.private.clone();
        if let Some(state) = decode_dv(r.current_state.as_ref(), ty, "state", &mut diags) {
            let mut ctx = self.ctx(&r.private);
            let out = guarded("ReadResource", &mut diags, res.read(state, &mut ctx))
                .await
                .flatten();
            diags.extend(ctx.diags);
            let mut v = out.unwrap_or(Value::Null);
            null_write_only(&schema.block, &mut v);
            if let Some(p) = first_unknown(&v, AttributePath::root()) {
                diags.error_at(
                    p.clone(),
                    "Provider returned an unknown value on read",
                    format!("{}: {p}. This is a bug in the provider.", r.type_name),
                );
            }
            new_state = encode_dv(&v, ty, &mut diags);
            private = ctx.private.to_bytes();
        }
        Ok(Response::new(proto::read_resource::Response {
            new_state,
            diagnostics: diags_to_proto(&diags),
            private,
            deferred: None,
        }))
    }

    async fn plan_resource_change(
        &self,
        r: Request<proto::plan_resource_change::Request>,
    ) -> R<proto::plan_resource_change::Response> {
        let r = r.into_inner();
        let (res, schema, ty) = self.resource(&r.type_name)?;
        let mut diags = Diagnostics::new();
        let mut resp = proto::plan_resource_change::Response::default();
        let (Some(prior), Some(proposed), Some(config)) = (
            decode_dv(r.prior_state.as_ref(), ty, "prior state", &mut diags),
            decode_dv(
                r.proposed_new_state.as_ref(),
                ty,
                "proposed state",
                &mut diags,
            ),
            decode_dv(r.config.as_ref(), ty, "configuration", &mut diags),
        ) else {
            resp.diagnostics = diags_to_proto(&diags);
            return Ok(Response::new(resp));
        };
        if proposed.is_null() {
            // Destroy: nothing to plan.
            resp.planned_state = encode_dv(&Value::Null, ty, &mut diags);
            resp.planned_private = r.prior_private;
            resp.diagnostics = diags_to_proto(&diags);
            return Ok(Response::new(resp));
        }
        let mut planned = proposed.clone();
        null_write_only(&schema.block, &mut planned);
        let changed = !prior.is_null() && {
            let mut p = prior.clone();
            null_write_only(&schema.block, &mut p);
            p != planned
        };
        mark_computed(&schema.block, &mut planned, &config, &prior, changed);
        let mut ctx = self.ctx(&r.prior_private);
        let cfg = Config::new(config.clone());
        let modified = guarded(
            "PlanResourceChange",
            &mut diags,
            res.modify_plan(&prior, planned.clone(), &cfg, &mut ctx),
        )
        .await;
        diags.extend(std::mem::take(&mut ctx.diags));
        if let Some(mut m) = modified {
            null_write_only(&schema.block, &mut m);
            planned = m;
        }
        check_config_kept(&schema.block, &config, &planned, &mut diags, "the plan");
        if !prior.is_null() {
            let mut paths = Vec::new();
            replace_paths(
                &schema.block,
                &prior,
                &planned,
                &AttributePath::root(),
                &mut paths,
            );
            for p in ctx.replace.drain(..) {
                if !paths.contains(&p) {
                    paths.push(p);
                }
            }
            resp.requires_replace = paths.iter().map(path_to_proto).collect();
        }
        resp.planned_state = encode_dv(&planned, ty, &mut diags);
        resp.planned_private = ctx.private.to_bytes();
        resp.diagnostics = diags_to_proto(&diags);
        Ok(Response::new(resp))
    }

    async fn apply_resource_change(
        &self,
        r: Request<proto::apply_resource_change::Request>,
    ) -> R<proto::apply_resource_change::Response> {
        let r = r.into_inner();
        let (res, schema, ty) = self.resource(&r.type_name)?;
        let mut diags = Diagnostics::new();
        let mut resp = proto::apply_resource_change::Response::default();
        let (Some(prior), Some(planned), Some(config)) = (
            decode_dv(r.prior_state.as_ref(), ty, "prior state", &mut diags),
            decode_dv(r.planned_state.as_ref(), ty, "planned state", &mut diags),
            decode_dv(r.config.as_ref(), ty, "configuration", &mut diags),
        ) else {
            resp.diagnostics = diags_to_proto(&diags);
            return Ok(Response::new(resp));
        };
        let mut ctx = self.ctx(&r.planned_private);
        let new_state = if planned.is_null() {
            guarded(
                "ApplyResourceChange (delete)",
                &mut diags,
                res.delete(prior.clone(), &mut ctx),
            )
            .await;
            // A failed delete keeps the object in state.
            if ctx.diags.has_errors() || diags.has_errors() {
                prior.clone()
            } else {
                Value::Null
            }
        } else {
            let mut plan_in = planned.clone();
            with_write_only(&schema.block, &mut plan_in, &config);
            let out = if prior.is_null() {
                guarded(
                    "ApplyResourceChange (create)",
                    &mut diags,
                    res.create(plan_in, &mut ctx),
                )
                .await
                .flatten()
            } else {
                guarded(
                    "ApplyResourceChange (update)",
                    &mut diags,
                    res.update(prior.clone(), plan_in, &mut ctx),
                )
                .await
                .flatten()
            };
            let failed = ctx.diags.has_errors() || diags.has_errors();
            match out {
                Some(mut v) => {
                    null_write_only(&schema.block, &mut v);
                    if !failed {
                        check_apply_result(&planned, &v, &mut ctx.diags, &r.type_name);
                    }
                    v
                }
                None if failed => prior.clone(),
                None => {
                    ctx.diags.error(
                        "Provider returned no state",
                        format!("{}: apply returned nothing without an error. This is a bug in the provider.", r.type_name),
                    );
                    prior.clone()
                }
            }
        };
        diags.extend(std::mem::take(&mut ctx.diags));
        // Never hand Terraform an unknown value: on failure replace leftovers by null.
        let new_state =
            if first_unknown(&new_state, AttributePath::root()).is_some() && diags.has_errors() {
                strip_unknown(new_state)
            } else {
                new_state
            };
        resp.new_state = encode_dv(&new_state, ty, &mut diags);
        resp.private = ctx.private.to_bytes();
        resp.diagnostics = diags_to_proto(&diags);
        Ok(Response::new(resp))
    }

    async fn import_resource_state(
        &self,
        r: Request<proto::import_resource_state::Request>,
    ) -> R<proto::import_resource_state::Response> {
        let r = r.into_inner();
        let (res, schema, ty) = self.resource(&r.type_name)?;
        let mut diags = Diagnostics::new();
        let mut ctx = self.ctx(&[]);
        let out = guarded(
            "ImportResourceState",
            &mut diags,
            res.import(&r.id, &mut ctx),
        )
        .await
        .flatten();
        diags.extend(std::mem::take(&mut ctx.diags));
        let mut imported = Vec::new();
        if let Some(mut v) = out {
            null_write_only(&schema.block, &mut v);
            if let Some(state) = encode_dv(&v, ty, &mut diags) {
                imported.push(proto::import_resource_state::ImportedResource {
                    type_name: r.type_name.clone(),
                    state: Some(state),
                    private: ctx.private.to_bytes(),
                });
            }
        } else if !diags.has_errors() {
            diags.error(
                "Cannot import non-existent remote object",
                format!("{}: nothing found for import ID {:?}", r.type_name, r.id),
            );
        }
        Ok(Response::new(proto::import_resource_state::Response {
            imported_resources: imported,
            diagnostics: diags_to_proto(&diags),
            deferred: None,
        }))
    }

    async fn read_data_source(
        &self,
        r: Request<proto::read_data_source::Request>,
    ) -> R<proto::read_data_source::Response> {
        let r = r.into_inner();
        let (ds, schema, ty) = self.data_source(&r.type_name)?;
        let mut diags = Diagnostics::new();
        let mut state = None;
        if let Some(config) = decode_dv(r.config.as_ref(), ty, "configuration", &mut diags) {
            let mut ctx = self.ctx(&[]);
            let out = guarded(
                "ReadDataSource",
                &mut diags,
                ds.read(config.clone(), &mut ctx),
            )
            .await
            .flatten();
            diags.extend(std::mem::take(&mut ctx.diags));
            if let Some(v) = out {
                check_config_kept(&schema.block, &config, &v, &mut diags, "the data source");
                if let Some(p) = first_unknown(&v, AttributePath::root()) {
                    diags.error_at(
                        p.clone(),
                        "Provider returned an unknown value",
                        format!(
                            "{}: {p} is unknown after read. This is a bug in the provider.",
                            r.type_name
                        ),
                    );
                }
                if !diags.has_errors() {
                    state = encode_dv(&v, ty, &mut diags);
                }
            } else if !diags.has_errors() {
                diags.error("Data source returned nothing", format!("{}: read returned no data without an error. This is a bug in the provider.", r.type_name));
            }
        }
        Ok(Response::new(proto::read_data_source::Response {
            state,
            diagnostics: diags_to_proto(&diags),
            deferred: None,
        }))
    }

    async fn get_functions(
        &self,
        _r: Request<proto::get_functions::Request>,
    ) -> R<proto::get_functions::Response> {
        Ok(Response::new(proto::get_functions::Response {
            functions: self
                .functions
                .iter()
                .map(|(k, f)| (k.clone(), function_to_proto(f.as_ref())))
                .collect(),
            diagnostics: vec![],
        }))
    }

    async fn call_function(
        &self,
        r: Request<proto::call_function::Request>,
    ) -> R<proto::call_function::Response> {
        let r = r.into_inner();
        let f = self
            .functions
            .get(&r.name)
            .ok_or_else(|| Status::not_found(format!("unknown function {}", r.name)))?;
        let params = f.parameters();
        let mut args = Vec::with_capacity(r.arguments.len());
        for (i, a) in r.arguments.iter().enumerate() {
            let ty = params.get(i).map_or(Type::Dynamic, |p| p.ty.clone());
            let mut d = Diagnostics::new();
            match decode_dv(Some(a), &ty, "argument", &mut d) {
                Some(v) => args.push(v),
                None => {
                    let text = d
                        .iter()
                        .map(|x| x.detail.clone())
                        .collect::<Vec<_>>()
                        .join("; ");
                    return Ok(Response::new(proto::call_function::Response {
                        result: None,
                        error: Some(proto::FunctionError {
                            text,
                            function_argument: Some(i as i64),
                        }),
                    }));
                }
            }
        }
        let f2 = f.clone();
        let out = std::panic::catch_unwind(AssertUnwindSafe(move || f2.call(args))).unwrap_or_else(
            |_| {
                Err((
                    format!(
                        "the function {} panicked; this is a bug in the provider",
                        r.name
                    ),
                    None,
                ))
            },
        );
        let ret = f.return_type();
        Ok(Response::new(match out {
            Ok(v) => {
                let mut d = Diagnostics::new();
                match encode_dv(&v, &ret, &mut d) {
                    Some(dv) => proto::call_function::Response {
                        result: Some(dv),
                        error: None,
                    },
                    None => proto::call_function::Response {
                        result: None,
                        error: Some(proto::FunctionError {
                            text: d.iter().map(|x| x.detail.clone()).collect(),
                            function_argument: None,
                        }),
                    },
                }
            }
            Err((text, arg)) => proto::call_function::Response {
                result: None,
                error: Some(proto::FunctionError {
                    text,
                    function_argument: arg,
                }),
            },
        }))
    }

    async fn stop_provider(
        &self,
        _r: Request<proto::stop_provider::Request>,
    ) -> R<proto::stop_provider::Response> {
        tracing::info!("Terraform asked the provider to stop");
        let _ = self.stop.send(true);
        Ok(Response::new(proto::stop_provider::Response {
            error: String::new(),
        }))
    }
}

/// What the provider tells Terraform it supports. Only what OpenTofu 1.9 also speaks: the
/// test below keeps it so.
fn capabilities() -> proto::ServerCapabilities {
    proto::ServerCapabilities {
        plan_destroy: true,
        get_provider_schema_optional: false,
        move_resource_state: false,
    }
}

#[cfg(test)]
mod opentofu {
    /// The RPCs of `tfplugin6.Provider` in protocol 6.5 (Terraform 1.8), which OpenTofu 1.7
    /// and later implement in full (1.7 added provider functions). OpenTofu 1.9 has no
    /// MoveResourceState, ephemeral resources, resource identity, list resources, actions or
    /// state stores, and does not send `deferral_allowed` or `write_only_attributes_allowed`.
    const OPENTOFU_1_9: &[&str] = &[
        "GetMetadata",
        "GetProviderSchema",
        "ValidateProviderConfig",
        "ValidateResourceConfig",
        "ValidateDataResourceConfig",
        "UpgradeResourceState",
        "ConfigureProvider",
        "ReadResource",
        "PlanResourceChange",
        "ApplyResourceChange",
        "ImportResourceState",
        "ReadDataSource",
        "GetFunctions",
        "CallFunction",
        "StopProvider",
    ];

    /// Every RPC the service defines is one OpenTofu 1.9 calls, and the provider advertises
    /// no capability OpenTofu 1.9 lacks: `plan_destroy` only (OpenTofu calls
    /// PlanResourceChange on destroy either way, so it is safe to advertise).
    #[test]
    fn nothing_advertised_that_opentofu_lacks() {
        let proto = include_str!("../../proto/tfplugin6.proto");
        let service = &proto[proto.find("service Provider {").expect("service")..];
        let service = &service[..service.find("\n}").expect("end of service")];
        let rpcs: Vec<&str> = service
            .lines()
            .filter_map(|l| l.trim().strip_prefix("rpc "))
            .map(|l| l.split('(').next().unwrap_or_default())
            .collect();
        assert!(!rpcs.is_empty());
        for rpc in &rpcs {
            assert!(
                OPENTOFU_1_9.contains(rpc),
                "rpc {rpc} is not part of what OpenTofu 1.9 speaks"
            );
        }
        // get_provider_schema_optional and move_resource_state stay off: the second is an RPC
        // OpenTofu 1.9 does not have.
        assert_eq!(
            super::capabilities(),
            crate::proto::ServerCapabilities {
                plan_destroy: true,
                get_provider_schema_optional: false,
                move_resource_state: false,
            }
        );
    }
}
