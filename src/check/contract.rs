//! The book's contract, as the checks hold a service to it: recipe 42, its fields in every
//! protocol, the messages of `recipe.RecipeService`, the kitchenSink query, and the shape of each
//! consumer's answer.
//!
//! Checks speak to services only over the wire and know them only by this contract (the proto
//! and SDL files under `services/recipe-api/contracts/`, which the tests below read), never by
//! a service's implementation. Shape errors name the field that is missing or mistyped, and what
//! the body has instead (`producer_data.producer_pid: missing (producer_data has producerPid)`).

use serde_json::{Map, Value};

use crate::config::model::TargetProtocol;

/// The recipe every protocol serves.
pub const RECIPE_ID: i64 = 42;
pub const RECIPE_NAME: &str = "Chicken Tikka Masala";
/// An id no producer knows (the book's producers answer "not found" for anything but 42).
pub const UNKNOWN_ID: i64 = 7;

/// The recipe's fields, as in the contract (REST/JSON and GraphQL names).
pub const RECIPE_FIELDS: [&str; 4] = ["id", "name", "steps", "ingredients"];
pub const INGREDIENT_FIELDS: [&str; 3] = ["id", "name", "quantity"];

/// `message Recipe` and `message Ingredient` of `recipe.proto`: field numbers and names.
pub const RECIPE_PROTO: [(u32, &str); 4] =
    [(1, "id"), (2, "name"), (3, "steps"), (4, "ingredients")];
pub const INGREDIENT_PROTO: [(u32, &str); 3] = [(1, "id"), (2, "name"), (3, "quantity")];
/// `message Meta { int32 pid = 2; }`.
pub const META_PID_FIELD: u32 = 2;

pub const GET_RECIPE: &str = "/recipe.RecipeService/GetRecipe";
pub const GET_META: &str = "/recipe.RecipeService/GetMetaData";

/// The book's consumer-graphql.js query, sent with `{"id": "42"}`.
pub const KITCHEN_SINK: &str =
    "query kitchenSink ($id: ID) { recipe(id: $id) { id name ingredients { name quantity } } pid }";

/// `RecipeRequest { id }` on the wire: field 1, varint.
pub fn recipe_request(id: i32) -> Vec<u8> {
    let mut out = vec![0x08];
    put_varint(&mut out, i64::from(id) as u64);
    out
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A protobuf message decoded by the contract's field table: the known fields as JSON (by
/// name), and the numbers of every field the contract does not have (a leak, or a mistake).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Decoded {
    pub fields: Map<String, Value>,
    pub unknown: Vec<String>,
}

fn varint(b: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at).ok_or("truncated varint")?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint longer than 10 bytes".into())
}

/// The raw fields of a message: (number, wire type, varint value or bytes).
fn raw_fields(b: &[u8]) -> Result<Vec<(u32, u64, &[u8])>, String> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < b.len() {
        let key = varint(b, &mut at)?;
        let (num, wt) = ((key >> 3) as u32, key & 7);
        match wt {
            0 => out.push((num, varint(b, &mut at)?, &b[0..0])),
            1 | 5 => {
                let n = if wt == 1 { 8 } else { 4 };
                let v = b.get(at..at + n).ok_or("truncated fixed field")?;
                at += n;
                out.push((num, 0, v));
            }
            2 => {
                let n = varint(b, &mut at)? as usize;
                let v = b
                    .get(at..at + n)
                    .ok_or("truncated length-delimited field")?;
                at += n;
                out.push((num, 0, v));
            }
            other => {
                return Err(format!(
                    "field {num} has wire type {other}, which proto3 does not use"
                ));
            }
        }
    }
    Ok(out)
}

/// Decode a `Recipe` message, its ingredients too.
pub fn decode_recipe(b: &[u8]) -> Result<Decoded, String> {
    decode_with(b, &RECIPE_PROTO, "Recipe")
}

fn decode_with(b: &[u8], table: &[(u32, &str)], message: &str) -> Result<Decoded, String> {
    let mut d = Decoded::default();
    let mut ingredients = Vec::new();
    for (num, v, bytes) in raw_fields(b)? {
        let Some((_, name)) = table.iter().find(|(n, _)| *n == num) else {
            d.unknown.push(format!("{message} field {num}"));
            continue;
        };
        let value = match *name {
            "id" => Value::from(v as i64 as i32),
            "ingredients" => {
                let i = decode_with(bytes, &INGREDIENT_PROTO, "Ingredient")?;
                d.unknown.extend(i.unknown);
                ingredients.push(Value::Object(i.fields));
                continue;
            }
            _ => Value::from(String::from_utf8_lossy(bytes).into_owned()),
        };
        d.fields.insert((*name).to_owned(), value);
    }
    if message == "Recipe" {
        d.fields
            .insert("ingredients".into(), Value::Array(ingredients));
    }
    Ok(d)
}

/// `Meta.pid`.
pub fn decode_meta_pid(b: &[u8]) -> Result<Option<i64>, String> {
    Ok(raw_fields(b)?
        .into_iter()
        .find(|(n, _, _)| *n == META_PID_FIELD)
        .map(|(_, v, _)| v as i64))
}

// === shape checks ===

/// JSON's name for a value's type, for "got" texts.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The value at a dotted `path` of `v`, or why not: the first missing step named, with what
/// its parent has instead (the closest key first).
pub fn at<'a>(v: &'a Value, path: &str) -> Result<&'a Value, String> {
    let mut cur = v;
    let mut walked = String::new();
    for step in path.split('.') {
        let here = if walked.is_empty() {
            "the body".to_owned()
        } else {
            walked.clone()
        };
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(step);
        if let (Value::Array(items), Ok(i)) = (cur, step.parse::<usize>()) {
            cur = items
                .get(i)
                .ok_or_else(|| format!("{walked}: missing ({here} has {} items)", items.len()))?;
            continue;
        }
        let Value::Object(m) = cur else {
            return Err(format!("{here}: {}, not an object", kind(cur)));
        };
        match m.get(step) {
            Some(next) => cur = next,
            None => {
                let keys: Vec<&str> = m.keys().map(String::as_str).collect();
                let has = match crate::config::diagnostic::did_you_mean(step, keys.iter().copied())
                    .or_else(|| close_by_case(step, &keys))
                {
                    Some(k) => format!("{here} has {k}"),
                    None if keys.is_empty() => format!("{here} is empty"),
                    None => format!(
                        "{here} has {}",
                        keys.iter().take(6).copied().collect::<Vec<_>>().join(", ")
                    ),
                };
                return Err(format!("{walked}: missing ({has})"));
            }
        }
    }
    Ok(cur)
}

/// `producerPid` for `producer_pid`: the same letters, another case style.
fn close_by_case<'a>(want: &str, keys: &[&'a str]) -> Option<&'a str> {
    let norm = |s: &str| s.replace('_', "").to_lowercase();
    keys.iter().copied().find(|k| norm(k) == norm(want))
}

/// A whole number at `path`.
pub fn number_at(v: &Value, path: &str) -> Result<u64, String> {
    let x = at(v, path)?;
    x.as_u64()
        .ok_or_else(|| format!("{path}: {} ({x}), not a whole number", kind(x)))
}

/// The first of `paths` that holds a whole number (the book's tracing consumer says `pid`
/// where the others say `consumer_pid`).
pub fn number_at_any(v: &Value, paths: &[&str]) -> Result<u64, String> {
    let mut first = None;
    for p in paths {
        match number_at(v, p) {
            Ok(n) => return Ok(n),
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    Err(first.unwrap_or_default())
}

/// Recipe 42 at `path`: its id (a number, or the string "42" where `id_string`, as GraphQL's
/// `ID` comes back), its name, and ingredients with a name and quantity each.
pub fn recipe_42(v: &Value, path: &str, id_string: bool) -> Result<(), String> {
    let id = at(v, &format!("{path}.id"))?;
    let id_ok = if id_string {
        id == "42"
    } else {
        id.as_i64() == Some(RECIPE_ID)
    };
    if !id_ok {
        let want = if id_string {
            "\"42\" (GraphQL's ID is a string)"
        } else {
            "42"
        };
        return Err(format!("{path}.id: {id}, expected {want}"));
    }
    let name = at(v, &format!("{path}.name"))?;
    if name != RECIPE_NAME {
        return Err(format!("{path}.name: {name}, expected \"{RECIPE_NAME}\""));
    }
    let ingredients = at(v, &format!("{path}.ingredients"))?;
    let list = ingredients
        .as_array()
        .ok_or_else(|| format!("{path}.ingredients: {}, not an array", kind(ingredients)))?;
    if list.len() != 2 {
        return Err(format!(
            "{path}.ingredients: {} of them, expected 2 (Chicken, Sauce)",
            list.len()
        ));
    }
    for i in 0..list.len() {
        for f in ["name", "quantity"] {
            let p = format!("{path}.ingredients.{i}.{f}");
            let x = at(v, &p)?;
            if !x.is_string() {
                return Err(format!("{p}: {}, not a string", kind(x)));
            }
        }
    }
    Ok(())
}

/// What a consumer's `GET /` says, read by the shape of its protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerAnswer {
    pub consumer_pid: u64,
    pub producer_pid: u64,
}

/// The shape each of the book's consumers answers `GET /` with:
/// - http / https: `{consumer_pid, producer_data: <the producer's body>}` (the tracing
///   consumer says `pid` for `consumer_pid`);
/// - graphql: `{consumer_pid, producer_data: {data: {recipe: {id: "42", …}, pid}}}`;
/// - grpc: `{consumer_pid, producer_data: {pid}, recipe}`.
pub fn consumer_answer(p: TargetProtocol, v: &Value) -> Result<ConsumerAnswer, String> {
    let consumer_pid = number_at_any(v, &["consumer_pid", "pid"])?;
    let producer_pid = match p {
        TargetProtocol::Http | TargetProtocol::Https => {
            recipe_42(v, "producer_data.recipe", false)?;
            number_at(v, "producer_data.producer_pid")?
        }
        TargetProtocol::Graphql => {
            recipe_42(v, "producer_data.data.recipe", true)?;
            number_at(v, "producer_data.data.pid")?
        }
        TargetProtocol::Grpc => {
            recipe_42(v, "recipe", false)?;
            number_at(v, "producer_data.pid")?
        }
    };
    Ok(ConsumerAnswer {
        consumer_pid,
        producer_pid,
    })
}

/// What `consumer_answer` expects, in a line, for "expected" texts.
pub fn consumer_shape(p: TargetProtocol) -> &'static str {
    match p {
        TargetProtocol::Http | TargetProtocol::Https => {
            "{consumer_pid, producer_data: {producer_pid, recipe: {id: 42, name, ingredients}}}"
        }
        TargetProtocol::Graphql => {
            "{consumer_pid, producer_data: {data: {recipe: {id: \"42\", name, ingredients: [{name, quantity}]}, pid}}}"
        }
        TargetProtocol::Grpc => {
            "{consumer_pid, producer_data: {pid}, recipe: {id: 42, name, ingredients}}"
        }
    }
}

/// Keys of the object at `v` that the contract's `allowed` does not have, and the ones it
/// has that are missing.
pub fn extra_and_missing(v: &Value, allowed: &[&str]) -> (Vec<String>, Vec<String>) {
    let Some(m) = v.as_object() else {
        return (
            Vec::new(),
            allowed.iter().map(|s| (*s).to_owned()).collect(),
        );
    };
    let extra = m
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .cloned()
        .collect();
    let missing = allowed
        .iter()
        .filter(|k| !m.contains_key(**k))
        .map(|s| (*s).to_owned())
        .collect();
    (extra, missing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PROTO: &str = include_str!("../../services/recipe-api/contracts/recipe.proto");
    const SDL: &str = include_str!("../../services/recipe-api/contracts/recipe.graphql");

    /// `name = N;` lines of `message NAME { … }` in the proto.
    fn proto_fields(message: &str) -> Vec<(u32, String)> {
        let start = PROTO
            .find(&format!("message {message} {{"))
            .unwrap_or_else(|| panic!("no message {message}"));
        let body = &PROTO[start..start + PROTO[start..].find('}').unwrap()];
        body.lines()
            .filter_map(|l| {
                let (lhs, rhs) = l.trim().trim_end_matches(';').split_once('=')?;
                let name = lhs.split_whitespace().last()?.to_owned();
                Some((rhs.trim().parse().ok()?, name))
            })
            .collect()
    }

    fn sdl_fields(ty: &str) -> Vec<String> {
        let start = SDL.find(&format!("type {ty} {{")).unwrap();
        let body = &SDL[start..start + SDL[start..].find('}').unwrap()];
        body.lines()
            .skip(1)
            .filter_map(|l| Some(l.trim().split(':').next()?.trim().to_owned()))
            .filter(|n| !n.is_empty())
            .collect()
    }

    #[test]
    fn the_field_tables_are_the_contract_files() {
        let own = |t: &[(u32, &str)]| -> Vec<(u32, String)> {
            t.iter().map(|(n, s)| (*n, (*s).to_owned())).collect()
        };
        assert_eq!(proto_fields("Recipe"), own(&RECIPE_PROTO));
        assert_eq!(proto_fields("Ingredient"), own(&INGREDIENT_PROTO));
        assert_eq!(
            proto_fields("Meta"),
            vec![(META_PID_FIELD, "pid".to_owned())]
        );
        assert_eq!(proto_fields("RecipeRequest"), vec![(1, "id".to_owned())]);
        assert_eq!(sdl_fields("Recipe"), RECIPE_FIELDS);
        assert_eq!(sdl_fields("Ingredient"), INGREDIENT_FIELDS);
        assert!(PROTO.contains("rpc GetRecipe(RecipeRequest) returns (Recipe)"));
        assert!(PROTO.contains("rpc GetMetaData(Empty) returns (Meta)"));
    }

    /// Encodes a message from (field, wire bytes) pairs, as a foreign producer would.
    fn field(num: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, u64::from(num) << 3 | 2);
        put_varint(&mut out, payload.len() as u64);
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn a_recipe_decodes_by_the_contract_and_unknown_fields_are_named() {
        let mut ing = vec![0x08, 1];
        ing.extend(field(2, b"Chicken"));
        ing.extend(field(3, b"1 lb"));
        let mut msg = vec![0x08, 42];
        msg.extend(field(2, RECIPE_NAME.as_bytes()));
        msg.extend(field(4, &ing));
        let d = decode_recipe(&msg).unwrap();
        assert_eq!(d.fields["id"], 42);
        assert_eq!(d.fields["ingredients"][0]["quantity"], "1 lb");
        assert!(d.unknown.is_empty());
        msg.extend(field(5, b"the secret"));
        let mut leaky_ing = ing.clone();
        leaky_ing.extend(field(9, b"x"));
        msg.extend(field(4, &leaky_ing));
        let d = decode_recipe(&msg).unwrap();
        assert_eq!(d.unknown, ["Recipe field 5", "Ingredient field 9"]);
        assert_eq!(recipe_request(42), [0x08, 42]);
        assert_eq!(recipe_request(300), [0x08, 0xac, 0x02]);
        assert_eq!(decode_meta_pid(&[0x10, 0xe8, 0x07]).unwrap(), Some(1000));
    }

    #[test]
    fn the_three_consumer_shapes_of_the_book() {
        let recipe = json!({"id": 42, "name": RECIPE_NAME, "steps": "…",
            "ingredients": [{"id": 1, "name": "Chicken", "quantity": "1 lb"}, {"id": 2, "name": "Sauce", "quantity": "2 cups"}]});
        let http =
            json!({"consumer_pid": 10, "producer_data": {"producer_pid": 20, "recipe": recipe}});
        assert_eq!(
            consumer_answer(TargetProtocol::Http, &http),
            Ok(ConsumerAnswer {
                consumer_pid: 10,
                producer_pid: 20
            })
        );
        // The tracing consumer: `pid`, plus its trace.
        let traced = json!({"pid": 11, "producer_data": {"producer_pid": 20, "recipe": recipe}, "trace": "abc"});
        assert_eq!(
            consumer_answer(TargetProtocol::Http, &traced)
                .unwrap()
                .consumer_pid,
            11
        );
        let gql = json!({"consumer_pid": 12, "producer_data": {"data": {"recipe": {"id": "42", "name": RECIPE_NAME,
            "ingredients": [{"name": "Chicken", "quantity": "1 lb"}, {"name": "Sauce", "quantity": "2 cups"}]}, "pid": 21}}});
        assert_eq!(
            consumer_answer(TargetProtocol::Graphql, &gql),
            Ok(ConsumerAnswer {
                consumer_pid: 12,
                producer_pid: 21
            })
        );
        let grpc = json!({"consumer_pid": 13, "producer_data": {"pid": 22}, "recipe": recipe});
        assert_eq!(
            consumer_answer(TargetProtocol::Grpc, &grpc),
            Ok(ConsumerAnswer {
                consumer_pid: 13,
                producer_pid: 22
            })
        );
        // Each judged by its own shape, not the HTTP one.
        assert!(consumer_answer(TargetProtocol::Http, &gql).is_err());
        assert!(consumer_answer(TargetProtocol::Http, &grpc).is_err());
    }

    #[test]
    fn a_wrong_field_is_named_with_what_the_body_has_instead() {
        let v = json!({"consumer_pid": 1, "producer_data": {"producerPid": 2, "recipe": {}}});
        assert_eq!(
            number_at(&v, "producer_data.producer_pid").unwrap_err(),
            "producer_data.producer_pid: missing (producer_data has producerPid)"
        );
        let v = json!({"consumer_pid": "7"});
        assert_eq!(
            number_at(&v, "consumer_pid").unwrap_err(),
            "consumer_pid: a string (\"7\"), not a whole number"
        );
        let v = json!({"consumerPid": 1});
        assert_eq!(
            number_at_any(&v, &["consumer_pid", "pid"]).unwrap_err(),
            "consumer_pid: missing (the body has consumerPid)"
        );
        let v = json!({"producer_data": {"recipe": {"id": 42, "name": RECIPE_NAME, "ingredients": [{"name": "x"}, {"name": "y", "quantity": "1"}]}}});
        assert_eq!(
            recipe_42(&v, "producer_data.recipe", false).unwrap_err(),
            "producer_data.recipe.ingredients.0.quantity: missing (producer_data.recipe.ingredients.0 has name)"
        );
        assert_eq!(
            at(&json!([1]), "a").unwrap_err(),
            "the body: an array, not an object"
        );
    }
}
