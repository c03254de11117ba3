//! The framework's protocol rules, exercised through the gRPC service in process with a
//! small test provider.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tfplugin::framework::{DynResource, Function, Parameter};
use tfplugin::proto::{self, provider_server::Provider as _};
use tfplugin::server::ProviderServer;
use tfplugin::{
    msgpack, Attr, Attribute, Block, Config, Ctx, Diagnostics, Schema, Type, Validator, Value,
};
use tonic::Request;

/// How the test resource misbehaves on apply.
static MODE: AtomicU8 = AtomicU8::new(0);
const OK: u8 = 0;
const INCONSISTENT: u8 = 1;
const PANIC: u8 = 2;
const LEAVE_UNKNOWN: u8 = 3;

struct TestProvider;

#[derive(Debug, Serialize, Deserialize)]
struct Thing {
    name: String,
    size: Attr<i64>,
    id: Attr<String>,
    revision: Attr<i64>,
    secret: Attr<String>,
    secret_len: Attr<i64>,
    info: Attr<Info>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Info {
    origin: String,
}

struct ThingResource;

#[tfplugin::async_trait]
impl tfplugin::Resource for ThingResource {
    type Model = Thing;
    fn type_name(&self) -> &'static str {
        "test_thing"
    }
    fn schema(&self) -> Schema {
        Schema::new(
            Block::new()
                .attribute(
                    Attribute::new("name", Type::String)
                        .required()
                        .requires_replace(),
                )
                .attribute(
                    Attribute::new("size", Type::Number)
                        .optional()
                        .validate(Validator::at_most(1000.0).summary("Size too large")),
                )
                .attribute(Attribute::new("id", Type::String).computed().stable())
                .attribute(Attribute::new("revision", Type::Number).computed())
                .attribute(
                    Attribute::new("secret", Type::String)
                        .optional()
                        .write_only(),
                )
                .attribute(Attribute::new("secret_len", Type::Number).computed())
                .attribute(
                    Attribute::nested(
                        "info",
                        tfplugin::Nesting::Single,
                        vec![Attribute::new("origin", Type::String).computed()],
                    )
                    .computed()
                    .stable(),
                ),
        )
        .version(1)
    }
    async fn validate(&self, config: &Config, diags: &mut Diagnostics) {
        if let Attr::Known(n) = config.get::<i64>("size", diags) {
            if n < 0 {
                diags.error_at(
                    tfplugin::AttributePath::attr("size"),
                    "Invalid size",
                    "size must be 0 or more",
                );
            }
        }
    }
    async fn create(&self, mut plan: Thing, _ctx: &mut Ctx) -> Option<Thing> {
        match MODE.load(Ordering::SeqCst) {
            INCONSISTENT => plan.size = Attr::Known(999),
            PANIC => panic!("boom in create"),
            LEAVE_UNKNOWN => {}
            _ => {}
        }
        plan.id = Attr::Known(format!("thing-{}", plan.name));
        if MODE.load(Ordering::SeqCst) != LEAVE_UNKNOWN {
            plan.revision = Attr::Known(1);
        }
        plan.secret_len = Attr::Known(plan.secret.known().map_or(0, |s| s.len() as i64));
        plan.info = Attr::Known(Info {
            origin: "created".into(),
        });
        Some(plan)
    }
    async fn read(&self, state: Thing, _ctx: &mut Ctx) -> Option<Thing> {
        if state.name == "gone" {
            return None;
        }
        Some(state)
    }
    async fn update(&self, prior: Thing, mut plan: Thing, _ctx: &mut Ctx) -> Option<Thing> {
        plan.revision = Attr::Known(prior.revision.known().copied().unwrap_or(0) + 1);
        plan.secret_len = Attr::Known(plan.secret.known().map_or(0, |s| s.len() as i64));
        Some(plan)
    }
    async fn delete(&self, _state: Thing, _ctx: &mut Ctx) {}
    fn upgrade_state(
        &self,
        version: i64,
        mut state: serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        assert_eq!(version, 0);
        // v0 called `size` `capacity`.
        let cap = state
            .as_object_mut()
            .and_then(|o| o.remove("capacity"))
            .unwrap_or(serde_json::Value::Null);
        state["size"] = cap;
        Ok(state)
    }
}

struct Upper;
impl Function for Upper {
    fn name(&self) -> &'static str {
        "upper"
    }
    fn summary(&self) -> String {
        "Upper-cases a string.".into()
    }
    fn parameters(&self) -> Vec<Parameter> {
        vec![Parameter {
            name: "s".into(),
            ty: Type::String,
            description: "input".into(),
            allow_null: false,
        }]
    }
    fn return_type(&self) -> Type {
        Type::String
    }
    fn call(&self, args: Vec<Value>) -> Result<Value, (String, Option<i64>)> {
        match args.first().and_then(Value::as_str) {
            Some(s) if !s.is_empty() => Ok(Value::string(s.to_uppercase())),
            _ => Err(("s must not be empty".into(), Some(0))),
        }
    }
}

#[tfplugin::async_trait]
impl tfplugin::Provider for TestProvider {
    fn type_name(&self) -> &'static str {
        "test"
    }
    fn schema(&self) -> Schema {
        Schema::new(Block::new())
    }
    async fn configure(&self, _v: &str, _c: &Config, _d: &mut Diagnostics) {}
    fn resources(&self) -> Vec<Arc<dyn DynResource>> {
        vec![tfplugin::resource(ThingResource)]
    }
    fn functions(&self) -> Vec<Arc<dyn Function>> {
        vec![Arc::new(Upper)]
    }
}

fn server() -> ProviderServer {
    ProviderServer::new(Arc::new(TestProvider)).unwrap()
}

fn ty() -> Type {
    ThingResource.schema_type()
}

trait SchemaType {
    fn schema_type(&self) -> Type;
}
impl SchemaType for ThingResource {
    fn schema_type(&self) -> Type {
        tfplugin::Resource::schema(self).value_type()
    }
}

fn dv(v: &Value) -> Option<proto::DynamicValue> {
    Some(proto::DynamicValue {
        msgpack: msgpack::encode(v, &ty()).unwrap(),
        json: vec![],
    })
}

fn undv(d: &Option<proto::DynamicValue>) -> Value {
    msgpack::decode(&d.as_ref().unwrap().msgpack, &ty()).unwrap()
}

fn obj(
    name: &str,
    size: Value,
    id: Value,
    revision: Value,
    secret: Value,
    secret_len: Value,
) -> Value {
    Value::object([
        ("name", Value::string(name)),
        ("size", size),
        ("id", id),
        ("revision", revision),
        ("secret", secret),
        ("secret_len", secret_len),
        ("info", Value::Null),
    ])
}

fn config(name: &str, size: Value, secret: Value) -> Value {
    obj(name, size, Value::Null, Value::Null, secret, Value::Null)
}

async fn plan(
    s: &ProviderServer,
    prior: &Value,
    cfg: &Value,
) -> proto::plan_resource_change::Response {
    // Terraform proposes config merged with prior computed values.
    let mut proposed = cfg.clone();
    if let (Value::Object(p), Value::Object(pr)) = (&mut proposed, prior) {
        for k in ["id", "revision", "secret_len", "info"] {
            p.insert(k.into(), pr[k].clone());
        }
    }
    s.plan_resource_change(Request::new(proto::plan_resource_change::Request {
        type_name: "test_thing".into(),
        prior_state: dv(prior),
        proposed_new_state: dv(&proposed),
        config: dv(cfg),
        ..Default::default()
    }))
    .await
    .unwrap()
    .into_inner()
}

async fn apply(
    s: &ProviderServer,
    prior: &Value,
    planned: &Value,
    cfg: &Value,
) -> proto::apply_resource_change::Response {
    s.apply_resource_change(Request::new(proto::apply_resource_change::Request {
        type_name: "test_thing".into(),
        prior_state: dv(prior),
        planned_state: dv(planned),
        config: dv(cfg),
        ..Default::default()
    }))
    .await
    .unwrap()
    .into_inner()
}

fn errors(d: &[proto::Diagnostic]) -> String {
    d.iter()
        .map(|d| format!("{}: {}", d.summary, d.detail))
        .collect::<Vec<_>>()
        .join("\n")
}

// MODE is process-global: tests that change it run in one test function.
#[tokio::test]
async fn lifecycle_rules() {
    let s = server();
    MODE.store(OK, Ordering::SeqCst);

    // Create: computed attributes unknown, write-only null in the plan.
    let cfg = config("a", Value::number(1), Value::string("hunter2"));
    let p = plan(&s, &Value::Null, &cfg).await;
    assert!(p.diagnostics.is_empty(), "{}", errors(&p.diagnostics));
    let planned = undv(&p.planned_state);
    assert!(planned.get_attr("id").unwrap().is_unknown());
    assert!(planned.get_attr("revision").unwrap().is_unknown());
    assert!(
        planned.get_attr("secret").unwrap().is_null(),
        "write-only must be null in plans"
    );
    assert!(p.requires_replace.is_empty());

    // Apply sees the write-only value, but state never holds it.
    let a = apply(&s, &Value::Null, &planned, &cfg).await;
    assert!(a.diagnostics.is_empty(), "{}", errors(&a.diagnostics));
    let state = undv(&a.new_state);
    assert_eq!(state.get_attr("id"), Some(&Value::string("thing-a")));
    assert_eq!(state.get_attr("secret_len"), Some(&Value::number(7)));
    assert!(state.get_attr("secret").unwrap().is_null());

    // Same config again: nothing changes, computed values stay known.
    let p = plan(&s, &state, &cfg).await;
    assert_eq!(undv(&p.planned_state), state);

    // In-place update: `revision` goes unknown, `id` is stable and stays known, and so does
    // the stable nested `info`, whole (its computed fields are not made unknown one by one).
    let cfg2 = config("a", Value::number(2), Value::string("hunter2"));
    let p = plan(&s, &state, &cfg2).await;
    let planned = undv(&p.planned_state);
    assert!(planned.get_attr("revision").unwrap().is_unknown());
    assert_eq!(planned.get_attr("id"), Some(&Value::string("thing-a")));
    assert_eq!(
        planned.get_attr("info"),
        Some(&Value::object([("origin", Value::string("created"))]))
    );
    assert!(p.requires_replace.is_empty());
    let a = apply(&s, &state, &planned, &cfg2).await;
    assert!(a.diagnostics.is_empty(), "{}", errors(&a.diagnostics));
    assert_eq!(
        undv(&a.new_state).get_attr("revision"),
        Some(&Value::number(2))
    );

    // Changing `name` requires replacement, with the path.
    let p = plan(&s, &state, &config("b", Value::number(1), Value::Null)).await;
    assert_eq!(p.requires_replace.len(), 1);
    let step = &p.requires_replace[0].steps[0];
    assert_eq!(
        step.selector,
        Some(proto::attribute_path::step::Selector::AttributeName(
            "name".into()
        ))
    );

    // A provider that changes a planned value gets a clear error naming it.
    MODE.store(INCONSISTENT, Ordering::SeqCst);
    let cfg = config("c", Value::number(1), Value::Null);
    let planned = undv(&plan(&s, &Value::Null, &cfg).await.planned_state);
    let a = apply(&s, &Value::Null, &planned, &cfg).await;
    let e = errors(&a.diagnostics);
    assert!(
        e.contains("inconsistent result after apply")
            && e.contains("size was planned as 1 but apply produced 999"),
        "{e}"
    );

    // A value left unknown after apply is an error naming it, and the state sent back holds none.
    MODE.store(LEAVE_UNKNOWN, Ordering::SeqCst);
    let a = apply(&s, &Value::Null, &planned, &cfg).await;
    let e = errors(&a.diagnostics);
    assert!(e.contains("revision is still unknown after apply"), "{e}");
    assert!(undv(&a.new_state).is_wholly_known());

    // A panic becomes an error diagnostic; the service keeps answering.
    MODE.store(PANIC, Ordering::SeqCst);
    let a = apply(&s, &Value::Null, &planned, &cfg).await;
    let e = errors(&a.diagnostics);
    assert!(
        e.contains("panicked") && e.contains("boom in create"),
        "{e}"
    );
    MODE.store(OK, Ordering::SeqCst);
    let a = apply(&s, &Value::Null, &planned, &cfg).await;
    assert!(a.diagnostics.is_empty(), "{}", errors(&a.diagnostics));

    // Destroy: plan null, apply returns null.
    let st = undv(&a.new_state);
    let d = s
        .plan_resource_change(Request::new(proto::plan_resource_change::Request {
            type_name: "test_thing".into(),
            prior_state: dv(&st),
            proposed_new_state: dv(&Value::Null),
            config: dv(&Value::Null),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(undv(&d.planned_state).is_null());
    let a = apply(&s, &st, &Value::Null, &Value::Null).await;
    assert!(undv(&a.new_state).is_null());
}

#[tokio::test]
async fn read_of_a_gone_object_returns_null() {
    let s = server();
    let st = obj(
        "gone",
        Value::Null,
        Value::string("x"),
        Value::number(1),
        Value::Null,
        Value::number(0),
    );
    let r = s
        .read_resource(Request::new(proto::read_resource::Request {
            type_name: "test_thing".into(),
            current_state: dv(&st),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(undv(&r.new_state).is_null());
}

#[tokio::test]
async fn validate_reports_attribute_paths() {
    let s = server();
    let r = s
        .validate_resource_config(Request::new(proto::validate_resource_config::Request {
            type_name: "test_thing".into(),
            config: dv(&config("a", Value::number(-1), Value::Null)),
            client_capabilities: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.diagnostics.len(), 1);
    assert_eq!(r.diagnostics[0].summary, "Invalid size");
    let steps = &r.diagnostics[0].attribute.as_ref().unwrap().steps;
    assert_eq!(
        steps[0].selector,
        Some(proto::attribute_path::step::Selector::AttributeName(
            "size".into()
        ))
    );
    // attribute validators run before the resource's own validation
    let r = s
        .validate_resource_config(Request::new(proto::validate_resource_config::Request {
            type_name: "test_thing".into(),
            config: dv(&config("a", Value::number(2000), Value::Null)),
            client_capabilities: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.diagnostics.len(), 1, "{}", errors(&r.diagnostics));
    assert_eq!(r.diagnostics[0].summary, "Size too large");
    assert_eq!(r.diagnostics[0].detail, "size 2000 must be 1000 or less.");
    assert_eq!(
        r.diagnostics[0].attribute.as_ref().unwrap().steps[0].selector,
        Some(proto::attribute_path::step::Selector::AttributeName(
            "size".into()
        ))
    );
    // unknown values pass validation
    let r = s
        .validate_resource_config(Request::new(proto::validate_resource_config::Request {
            type_name: "test_thing".into(),
            config: dv(&config("a", Value::unknown(), Value::Null)),
            client_capabilities: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(r.diagnostics.is_empty());
}

/// A client that does not know write-only attributes (Terraform or OpenTofu before 1.11) would
/// store them in state: a value for one is refused there, naming it; a client that knows them
/// is let through.
#[tokio::test]
async fn write_only_values_need_a_client_that_supports_them() {
    let s = server();
    let validate = |caps: Option<proto::ClientCapabilities>, secret: Value| {
        s.validate_resource_config(Request::new(proto::validate_resource_config::Request {
            type_name: "test_thing".into(),
            config: dv(&config("a", Value::Null, secret)),
            client_capabilities: caps,
        }))
    };
    let r = validate(None, Value::string("s3cret"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.diagnostics.len(), 1, "{}", errors(&r.diagnostics));
    assert_eq!(
        r.diagnostics[0].summary,
        "Write-only attribute not supported by this Terraform"
    );
    assert!(r.diagnostics[0].detail.contains("`secret` is write-only"));
    assert_eq!(
        r.diagnostics[0].attribute.as_ref().unwrap().steps[0].selector,
        Some(proto::attribute_path::step::Selector::AttributeName(
            "secret".into()
        ))
    );
    let ok = proto::ClientCapabilities {
        write_only_attributes_allowed: true,
        ..Default::default()
    };
    let r = validate(Some(ok), Value::string("s3cret"))
        .await
        .unwrap()
        .into_inner();
    assert!(r.diagnostics.is_empty(), "{}", errors(&r.diagnostics));
    // Unset, any client is fine.
    let r = validate(None, Value::Null).await.unwrap().into_inner();
    assert!(r.diagnostics.is_empty(), "{}", errors(&r.diagnostics));
}

#[tokio::test]
async fn upgrade_state_runs_on_every_version() {
    let s = server();
    let up = |version: i64, json: &str| {
        s.upgrade_resource_state(Request::new(proto::upgrade_resource_state::Request {
            type_name: "test_thing".into(),
            version,
            raw_state: Some(proto::RawState {
                json: json.as_bytes().to_vec(),
                flatmap: Default::default(),
            }),
        }))
    };
    // current version: passed through, missing attributes null, big numbers exact
    let r = up(
        1,
        r#"{"name":"a","size":12345678901234567890,"id":"i","revision":1}"#,
    )
    .await
    .unwrap()
    .into_inner();
    let v = undv(&r.upgraded_state);
    assert_eq!(
        v.get_attr("size").unwrap().to_string(),
        "12345678901234567890"
    );
    assert!(v.get_attr("secret_len").unwrap().is_null());
    // older version: the resource's upgrader renames capacity → size
    let r = up(0, r#"{"name":"a","capacity":3,"id":"i","revision":1}"#)
        .await
        .unwrap()
        .into_inner();
    assert!(r.diagnostics.is_empty(), "{}", errors(&r.diagnostics));
    assert_eq!(
        undv(&r.upgraded_state).get_attr("size"),
        Some(&Value::number(3))
    );
    // newer version: refused clearly
    let r = up(7, "{}").await.unwrap().into_inner();
    assert!(errors(&r.diagnostics).contains("newer provider"));
    // an attribute the schema lacks is an error naming it
    let r = up(1, r#"{"name":"a","bogus":1}"#)
        .await
        .unwrap()
        .into_inner();
    assert!(errors(&r.diagnostics).contains("bogus"));
}

#[tokio::test]
async fn import_is_refused_with_a_clear_error_by_default() {
    let s = server();
    let r = s
        .import_resource_state(Request::new(proto::import_resource_state::Request {
            type_name: "test_thing".into(),
            id: "x".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(r.imported_resources.is_empty());
    assert!(errors(&r.diagnostics).contains("test_thing cannot be imported"));
}

#[tokio::test]
async fn schema_and_functions_are_served() {
    let s = server();
    let r = s
        .get_provider_schema(Request::new(proto::get_provider_schema::Request {}))
        .await
        .unwrap()
        .into_inner();
    let thing = &r.resource_schemas["test_thing"];
    assert_eq!(thing.version, 1);
    let secret = thing
        .block
        .as_ref()
        .unwrap()
        .attributes
        .iter()
        .find(|a| a.name == "secret")
        .unwrap();
    assert!(secret.write_only);
    assert_eq!(r.functions["upper"].summary, "Upper-cases a string.");
    let call = |arg: &str| {
        s.call_function(Request::new(proto::call_function::Request {
            name: "upper".into(),
            arguments: vec![proto::DynamicValue {
                msgpack: msgpack::encode(&Value::string(arg), &Type::String).unwrap(),
                json: vec![],
            }],
        }))
    };
    let ok = call("abc").await.unwrap().into_inner();
    assert_eq!(
        msgpack::decode(&ok.result.unwrap().msgpack, &Type::String).unwrap(),
        Value::string("ABC")
    );
    let bad = call("").await.unwrap().into_inner();
    assert_eq!(bad.error.unwrap().function_argument, Some(0));
}

#[test]
fn broken_schemas_are_refused_at_start_up() {
    struct Bad;
    #[tfplugin::async_trait]
    impl tfplugin::Provider for Bad {
        fn type_name(&self) -> &'static str {
            "bad"
        }
        fn schema(&self) -> Schema {
            Schema::new(Block::new().attribute(Attribute::new("alias", Type::String).optional()))
        }
        async fn configure(&self, _v: &str, _c: &Config, _d: &mut Diagnostics) {}
        fn resources(&self) -> Vec<Arc<dyn DynResource>> {
            vec![tfplugin::resource(ThingResource)]
        }
    }
    let problems = ProviderServer::new(Arc::new(Bad)).err().expect("refused");
    let all = problems.join("\n");
    assert!(all.contains("provider: alias: is a reserved name"), "{all}");
    assert!(
        all.contains("resource test_thing: type names must start with bad_"),
        "{all}"
    );
}
