//! `/metrics/find`: the nodes under a pattern, as tree JSON or completer JSON.

#[allow(unused_imports)]
use super::{glob::*, series::*};
#[allow(unused_imports)]
use serde_json::{Value, json};
#[allow(unused_imports)]
use std::collections::BTreeMap;

/// One `/metrics/find` answer row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Node {
    /// Branches sort before leaves.
    pub leaf: bool,
    pub text: String,
    pub id: String,
}

/// The children matched by a find query (each element a glob), branches before leaves.
pub fn find(names: &[String], query: &str) -> Vec<Node> {
    let glob = PathGlob::new(query);
    let k = glob.0.len();
    let mut out = std::collections::BTreeSet::new();
    for name in names {
        let parts: Vec<&str> = name.split('.').collect();
        if !glob.matches_prefix(&parts) {
            continue;
        }
        out.insert(Node {
            leaf: parts.len() == k,
            text: parts[k - 1].to_owned(),
            id: parts[..k].join("."),
        });
    }
    out.into_iter().collect()
}

pub fn find_treejson(nodes: &[Node]) -> Value {
    Value::Array(
        nodes
            .iter()
            .map(|n| {
                let b = u8::from(!n.leaf);
                json!({"text": n.text, "id": n.id, "allowChildren": b, "expandable": b, "leaf": u8::from(n.leaf), "context": {}})
            })
            .collect(),
    )
}

pub fn find_completer(nodes: &[Node]) -> Value {
    let metrics: Vec<Value> = nodes
        .iter()
        .map(|n| {
            let path = if n.leaf {
                n.id.clone()
            } else {
                format!("{}.", n.id)
            };
            json!({"path": path, "name": n.text, "is_leaf": if n.leaf { "1" } else { "0" }})
        })
        .collect();
    json!({ "metrics": metrics })
}
