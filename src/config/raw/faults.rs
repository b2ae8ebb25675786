//! `[faults]` and its `[faults.NAME]` tables: a table whose own keys (`edges`, `seed`) sit
//! beside tables named by the user, so it is read by hand (spans kept, mistakes kept for
//! validation to report).

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

/// `[faults]`: how `lab fault` may break the lab, and faults on a schedule (`[faults.NAME]`).
#[derive(Debug, Default)]
pub struct RawFaults {
    pub edges: Option<Spanned<bool>>,
    pub seed: Option<Spanned<u64>>,
    /// `[faults.NAME]` tables, in file order.
    pub schedule: IndexMap<Spanned<String>, RawScheduledFault>,
    /// Other keys that hold no table: mistakes, reported by validation with their spans.
    pub unknown: Vec<Spanned<String>>,
}

/// The JSON Schema's view of `[faults]` (its keys, and any other key a `[faults.NAME]`).
#[derive(JsonSchema)]
#[allow(dead_code)] // only its schema is used
struct RawFaultsSchema {
    /// Put a fault edge on every address a consumer is given (a service's `TARGET`, the
    /// proxy's servers), so `lab fault latency|status|reset|…` can slow, fail or cut what passes
    /// (`lab up --faults` does the same for one run). Process runtime only. Default: `false`,
    /// or `true` when a `[faults.NAME]` is an edge fault.
    edges: Option<bool>,
    /// Seeds the draw of faults with a probability, so they hit the same requests on every
    /// run. Default: 0.
    seed: Option<u64>,
    /// A fault on a schedule: `[faults.slow-recipes]` with `fault = "latency"`,
    /// `target = "recipe-api"`, `delay = "200ms"`, `after = "10s"`, `for = "30s"`.
    #[serde(flatten)]
    schedule: IndexMap<String, RawScheduledFault>,
}

impl JsonSchema for RawFaults {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RawFaults".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        RawFaultsSchema::json_schema(generator)
    }
}

/// The keys of `[faults]` itself; any other names a scheduled fault.
pub const FAULTS_KEYS: [&str; 2] = ["edges", "seed"];

impl<'de> Deserialize<'de> for RawFaults {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawFaults;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a table: `edges`, `seed`, and `[faults.NAME]` tables")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RawFaults, A::Error> {
                let mut out = RawFaults::default();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    match key.get_ref().as_str() {
                        "edges" => out.edges = Some(map.next_value()?),
                        "seed" => out.seed = Some(map.next_value()?),
                        _ => match map.next_value::<Entry>()? {
                            Entry::Table(t) => {
                                out.schedule.insert(key, *t);
                            }
                            Entry::Other => out.unknown.push(key),
                        },
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}

/// What a key of `[faults]` other than its own holds: a `[faults.NAME]` table, or not.
enum Entry {
    Table(Box<RawScheduledFault>),
    Other,
}

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Entry;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a [faults.NAME] table")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Entry, A::Error> {
                RawScheduledFault::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|t| Entry::Table(Box::new(t)))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Entry, E> {
                Ok(Entry::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Entry, E> {
                Ok(Entry::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Entry, E> {
                Ok(Entry::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Entry, E> {
                Ok(Entry::Other)
            }
            fn visit_str<E>(self, _: &str) -> Result<Entry, E> {
                Ok(Entry::Other)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Entry, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Entry::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// `[faults.NAME]`: one fault the supervisor injects `after` the lab is up, lasting `for`.
/// The keys after `for` are the fault's amounts, as `lab fault FAULT --help` names them.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawScheduledFault {
    /// What to do: `kill`, `pause`, `restart`, `partition` (to instances), or, on the fault
    /// edges, `latency`, `bandwidth`, `timeout`, `reset`, `slow-close`, `limit-data`, `status`,
    /// `fail-first`, `slow-first-byte`, `abort-after-headers`.
    #[schemars(with = "String")]
    pub fault: Spanned<String>,
    /// `SERVICE` (every instance) or `SERVICE#N` (one).
    #[schemars(with = "String")]
    pub target: Spanned<String>,
    /// How long after the lab is up, e.g. `"10s"`. Default: at once.
    #[schemars(with = "Option<String>")]
    pub after: Option<Spanned<String>>,
    /// How long it lasts, e.g. `"30s"`. Default: until `lab fault clear` or `lab down`.
    /// Not for `kill` and `restart`, which end as they happen.
    #[serde(rename = "for")]
    #[schemars(rename = "for", with = "Option<String>")]
    pub lasting: Option<Spanned<String>>,
    /// `latency`, `slow-close`, `slow-first-byte`: how long, e.g. `"200ms"`.
    #[schemars(with = "Option<String>")]
    pub delay: Option<Spanned<String>>,
    /// `latency`: each delay varies by up to this much either way.
    #[schemars(with = "Option<String>")]
    pub jitter: Option<Spanned<String>>,
    /// `bandwidth`: kilobytes (1000 bytes) a second.
    #[schemars(with = "Option<u64>", range(min = 1))]
    pub kb_per_s: Option<Spanned<u64>>,
    /// `limit-data`: bytes an exchange may pass before the connection is closed.
    #[schemars(with = "Option<u64>")]
    pub bytes: Option<Spanned<u64>>,
    /// `status`: the code to answer; `fail-first`: the code of the failed answers (503).
    #[schemars(with = "Option<u16>", range(min = 100, max = 599))]
    pub code: Option<Spanned<u16>>,
    /// `fail-first`: how many requests fail.
    #[schemars(with = "Option<u64>")]
    pub count: Option<Spanned<u64>>,
    /// `fail-first`: close their connections with no answer instead of answering `code` (what
    /// a proxy's retries are for).
    #[schemars(with = "Option<bool>")]
    pub close: Option<Spanned<bool>>,
    /// Edge faults: the share of exchanges hit, `0.2` or `"20%"`. Default: all.
    #[schemars(with = "Option<Share>")]
    pub probability: Option<Spanned<Share>>,
    /// `latency`, `bandwidth`, `timeout`, `slow-close`, `limit-data`: `upstream` (requests) or
    /// `downstream` (responses, the default).
    #[schemars(with = "Option<String>")]
    pub direction: Option<Spanned<String>>,
    /// `partition` on the process runtime: `refuse` (the default) or `drop`.
    #[schemars(with = "Option<String>")]
    pub mode: Option<Spanned<String>>,
}

/// A share: a number from 0 to 1, or a percentage `"20%"`.
#[derive(Debug, Clone, PartialEq, JsonSchema)]
#[schemars(untagged)]
pub enum Share {
    Number(f64),
    Text(String),
}

impl<'de> Deserialize<'de> for Share {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Share;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a share: a number from 0 to 1, or a percentage like \"20%\"")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Share, E> {
                Ok(Share::Number(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Share, E> {
                Ok(Share::Number(v as f64))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Share, E> {
                Ok(Share::Number(v as f64))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Share, E> {
                Ok(Share::Text(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}
