//! Property tests: arbitrary types and values survive msgpack and JSON round trips, and
//! types survive their JSON form.

use std::collections::BTreeMap;

use proptest::prelude::*;
use tfplugin::value::{Number, Refinements, Type, Value};
use tfplugin::{json, msgpack};

fn leaf_type() -> impl Strategy<Value = Type> {
    prop_oneof![
        Just(Type::Bool),
        Just(Type::Number),
        Just(Type::String),
        Just(Type::Dynamic)
    ]
}

fn arb_type() -> impl Strategy<Value = Type> {
    leaf_type().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(Type::list),
            inner.clone().prop_map(Type::set),
            inner.clone().prop_map(Type::map),
            prop::collection::btree_map("[a-z_]{1,6}", inner.clone(), 0..4).prop_map(Type::Object),
            prop::collection::vec(inner, 0..3).prop_map(Type::Tuple),
        ]
    })
}

fn arb_number() -> impl Strategy<Value = Number> {
    prop_oneof![
        any::<i64>().prop_map(Number::from_i64),
        any::<u64>().prop_map(Number::from_u64),
        any::<f64>().prop_filter_map("finite", Number::from_f64),
        ("[1-9][0-9]{18,30}", "[0-9]{1,25}").prop_map(|(a, b)| format!("{a}.{b}").parse().unwrap()),
    ]
}

fn refinements(t: &Type) -> BoxedStrategy<Refinements> {
    let nullness = prop::option::of(Just(false));
    match t {
        Type::String => (nullness, prop::option::of("[a-z:/]{1,10}"))
            .prop_map(|(is_null, string_prefix)| Refinements {
                is_null,
                string_prefix,
                ..Default::default()
            })
            .boxed(),
        Type::Number => (
            nullness,
            prop::option::of((arb_number(), any::<bool>())),
            prop::option::of((arb_number(), any::<bool>())),
        )
            .prop_map(|(is_null, number_min, number_max)| Refinements {
                is_null,
                number_min,
                number_max,
                ..Default::default()
            })
            .boxed(),
        t if t.is_collection() => (
            nullness,
            prop::option::of(0i64..10),
            prop::option::of(10i64..100),
        )
            .prop_map(|(is_null, length_min, length_max)| Refinements {
                is_null,
                length_min,
                length_max,
                ..Default::default()
            })
            .boxed(),
        Type::Dynamic => Just(Refinements::default()).boxed(),
        _ => nullness
            .prop_map(|is_null| Refinements {
                is_null,
                ..Default::default()
            })
            .boxed(),
    }
}

/// A value of type `t`; `known` forbids unknowns (for JSON).
fn arb_value(t: Type, known: bool) -> BoxedStrategy<Value> {
    let special: BoxedStrategy<Value> = if known {
        Just(Value::Null).boxed()
    } else {
        prop_oneof![Just(Value::Null), refinements(&t).prop_map(Value::Unknown)].boxed()
    };
    let concrete: BoxedStrategy<Value> = match t.clone() {
        Type::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        Type::Number => arb_number().prop_map(Value::Number).boxed(),
        Type::String => ".{0,12}".prop_map(Value::String).boxed(),
        Type::Dynamic => prop_oneof![
            Just(Type::String),
            Just(Type::Number),
            Just(Type::list(Type::Bool))
        ]
        .prop_flat_map(move |ct| {
            arb_value(ct.clone(), known).prop_map(move |v| Value::Dynamic(ct.clone(), Box::new(v)))
        })
        .boxed(),
        Type::List(e) => prop::collection::vec(arb_value(*e, known), 0..3)
            .prop_map(Value::List)
            .boxed(),
        Type::Set(e) => prop::collection::vec(arb_value(*e, known), 0..3)
            .prop_map(|v| {
                let mut out: Vec<Value> = Vec::new();
                for x in v {
                    if !out.contains(&x) {
                        out.push(x);
                    }
                }
                Value::Set(out)
            })
            .boxed(),
        Type::Map(e) => prop::collection::btree_map(".{0,5}", arb_value(*e, known), 0..3)
            .prop_map(Value::Map)
            .boxed(),
        Type::Object(attrs) => {
            let parts: Vec<BoxedStrategy<(String, Value)>> = attrs
                .into_iter()
                .map(|(k, at)| {
                    arb_value(at, known)
                        .prop_map(move |v| (k.clone(), v))
                        .boxed()
                })
                .collect();
            parts
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<BTreeMap<_, _>>()))
                .boxed()
        }
        Type::Tuple(ts) => {
            let parts: Vec<BoxedStrategy<Value>> =
                ts.into_iter().map(|t| arb_value(t, known)).collect();
            parts.prop_map(Value::Tuple).boxed()
        }
    };
    prop_oneof![1 => special, 4 => concrete].boxed()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn msgpack_round_trips(tv in arb_type().prop_flat_map(|t| (Just(t.clone()), arb_value(t, false)))) {
        let (t, v) = tv;
        let bytes = msgpack::encode(&v, &t).unwrap();
        prop_assert_eq!(msgpack::decode(&bytes, &t).unwrap(), v);
    }

    #[test]
    fn json_round_trips(tv in arb_type().prop_flat_map(|t| (Just(t.clone()), arb_value(t, true)))) {
        let (t, v) = tv;
        let bytes = json::encode(&v, &t).unwrap();
        prop_assert_eq!(json::decode(&bytes, &t).unwrap(), v);
    }

    #[test]
    fn types_round_trip_through_json(t in arb_type()) {
        prop_assert_eq!(json::type_from_json(&json::type_to_json(&t)).unwrap(), t);
    }

    #[test]
    fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64), t in arb_type()) {
        let _ = msgpack::decode(&bytes, &t);
        let _ = json::decode(&bytes, &t);
    }
}
