//! The log query language: a Kibana KQL subset (docs/OBSERVABILITY.md §1), one AST for `lab logs
//! --query` and the hub's HTTP API.
//!
//! - `field:value`, `field:"a phrase"`, `field:val*` (wildcard), `field:*` (exists),
//!   `field:200 404` and `field:(a or b)` (any of);
//! - `field >= 1`, `field < 5` (numbers, or dates for `@timestamp`: ISO-8601 or `now-5m`);
//! - `and` / `or` / `not` in any case, `and` binding tighter than `or`, parentheses;
//! - a bare term or phrase searches every field's text.
//!
//! Matching: keyword-like values match whole and case-insensitively; a field whose value is
//! free text (it contains whitespace, e.g. `message` or a stack) also matches a substring.
//! Dotted paths reach into objects (`fields.path:/error`); arrays match if any element does.
//!
//! Rooms: [`ast`] (the query's shape), [`parse`] (text to a query, nesting bounded by
//! [`MAX_DEPTH`]), [`eval`] (matching documents).

mod ast;
mod eval;
mod parse;

pub use ast::*;
pub use eval::*;
pub use parse::*;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use serde_json::{Map, Value};

    fn doc(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn m(q: &str, d: &Value) -> bool {
        matches(&parse(q).unwrap(), &doc(d.clone()), 1_000_000)
    }

    #[test]
    fn fields_booleans_and_precedence() {
        let d = json!({"app":"web-api","severity":"error","type":"request-failure",
            "fields":{"path":"/error","method":"GET","stack":"Error: Oh no\n    at handler (x.js:1)"},"status":500});
        assert!(m("app:web-api AND severity:error", &d));
        assert!(
            m("app:WEB-API and severity:error", &d),
            "keywords ignore case"
        );
        assert!(!m("app:web", &d), "keywords match whole");
        assert!(m("app:web*", &d));
        assert!(m("fields.path:/error", &d));
        assert!(
            m("fields.stack:\"oh no\"", &d),
            "text fields match phrases inside"
        );
        assert!(m(
            "app:recipe-api or severity:error and type:request-failure",
            &d
        ));
        assert!(!m("(app:recipe-api or severity:error) and type:listen", &d));
        assert!(m("not app:recipe-api", &d));
        assert!(m("status:200 500", &d), "a value list is any of");
        assert!(m("status:(200 or 500)", &d));
        assert!(m("status >= 500 and status < 600", &d));
        assert!(!m("status > 500", &d));
        assert!(m("fields.method:*", &d));
        assert!(!m("fields.nothing:*", &d));
        assert!(m("handler", &d), "free text searches every field");
        assert!(m("\"Oh no\"", &d));
        assert!(!m("nowhere", &d));
        assert!(m("", &d));
    }

    #[test]
    fn dates_compare_as_dates() {
        let d = json!({"@timestamp":"1970-01-01T00:16:40.000Z"}); // 1_000_000 ms
        assert!(m("@timestamp >= now-1m", &d));
        assert!(!m("@timestamp < now-1m", &d));
        assert!(m("@timestamp > \"1970-01-01T00:00:00Z\"", &d));
    }

    #[test]
    fn arrays_match_any_element() {
        let d = json!({"tags":["_jsonparsefailure","x"]});
        assert!(m("tags:_jsonparsefailure", &d));
    }

    #[test]
    fn errors_name_the_column() {
        let e = parse("app:web-api AND (severity:error").unwrap_err();
        assert_eq!(e.column, 32, "one past the end");
        assert!(e.message.contains(")"));
        let e = parse("app: AND x").unwrap_err();
        assert!(e.message.contains("app"), "{e}");
        assert!(parse("\"open").is_err());
        assert!(parse("a:1 )").is_err());
    }

    #[test]
    fn two_clauses_side_by_side_are_not_a_value_list() {
        // `a:1 b:2` without an operator: KQL reads it as an error; we name it.
        assert!(parse("a:1 b:2").is_err());
    }

    #[test]
    fn huge_durations_and_dates_are_errors_not_overflows() {
        assert_eq!(duration_ms("99999999999999999w"), None);
        assert_eq!(date_ms("now-99999999999999999w", 0), None);
        assert!(parse("@timestamp > now-99999999999999999w").is_ok());
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let deep = format!("{}a:b{}", "(".repeat(2000), ")".repeat(2000));
        let e = parse(&deep).unwrap_err();
        assert!(e.message.contains("deeper than 32"), "{e:?}");
        assert!(parse(&"not ".repeat(5000)).is_err());
        let ok = format!("{}a:b{}", "(".repeat(20), ")".repeat(20));
        assert!(parse(&ok).is_ok());
    }
}
