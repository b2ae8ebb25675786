//! A JSON value that borrows from its text: what the span reader walks instead of
//! `serde_json::Value`, whose maps (hashed keys, a `String` per key and per string) were most
//! of what reading a span cost (issue 17). Objects are their members in order; a repeated key
//! reads as its last value, as `serde_json::Map` keeps it.

use std::borrow::Cow;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

#[derive(Debug, Clone, PartialEq)]
pub enum J<'a> {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    Str(Cow<'a, str>),
    Array(Vec<J<'a>>),
    Object(Vec<(Cow<'a, str>, J<'a>)>),
}

impl<'a> J<'a> {
    /// An object's member (its last value when repeated).
    pub fn get(&self, key: &str) -> Option<&J<'a>> {
        match self {
            J::Object(m) => m.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            J::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[J<'a>]> {
        match self {
            J::Array(a) => Some(a),
            _ => None,
        }
    }

    /// An object's members, a repeated key once (its last value), in first-seen order.
    pub fn members(&self) -> Option<Vec<(&str, &J<'a>)>> {
        let J::Object(m) = self else { return None };
        let mut out: Vec<(&str, &J<'a>)> = Vec::with_capacity(m.len());
        for (k, v) in m {
            match out.iter_mut().find(|(o, _)| *o == k) {
                Some(slot) => slot.1 = v,
                None => out.push((k, v)),
            }
        }
        Some(out)
    }

    pub fn is_null(&self) -> bool {
        matches!(self, J::Null)
    }
    pub fn is_array(&self) -> bool {
        matches!(self, J::Array(_))
    }
    pub fn is_object(&self) -> bool {
        matches!(self, J::Object(_))
    }
    pub fn is_string(&self) -> bool {
        matches!(self, J::Str(_))
    }

    /// As a `serde_json::Value` (for messages, off the hot path).
    pub fn to_value(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => Value::Number(n.clone()),
            J::Str(s) => Value::String(s.to_string()),
            J::Array(a) => Value::Array(a.iter().map(J::to_value).collect()),
            J::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (k.to_string(), v.to_value()))
                    .collect(),
            ),
        }
    }
}

impl std::fmt::Display for J<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.to_value().fmt(f)
    }
}

impl<'de> Deserialize<'de> for J<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JVisitor)
    }
}

struct JVisitor;

impl<'de> Visitor<'de> for JVisitor {
    type Value = J<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_unit<E>(self) -> Result<J<'de>, E> {
        Ok(J::Null)
    }
    fn visit_none<E>(self) -> Result<J<'de>, E> {
        Ok(J::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<J<'de>, E> {
        Ok(J::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<J<'de>, E> {
        Ok(J::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<J<'de>, E> {
        Ok(J::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<J<'de>, E> {
        Ok(serde_json::Number::from_f64(v).map_or(J::Null, J::Number))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<J<'de>, E> {
        Ok(J::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<J<'de>, E> {
        Ok(J::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<J<'de>, E> {
        Ok(J::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<J<'de>, A::Error> {
        let mut out = Vec::with_capacity(s.size_hint().unwrap_or(4).min(4096));
        while let Some(v) = s.next_element()? {
            out.push(v);
        }
        Ok(J::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<J<'de>, A::Error> {
        let mut out = Vec::with_capacity(m.size_hint().unwrap_or(8).min(4096));
        while let Some(k) = m.next_key::<Key<'de>>()? {
            out.push((k.0, m.next_value()?));
        }
        Ok(J::Object(out))
    }
}

/// A key as the text has it (borrowed unless it had escapes).
pub struct Key<'a>(pub Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(v.into()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(v.to_owned().into()))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_as_serde_json_reads() {
        for text in [
            r#"{"a":1,"b":[true,null,"x\u00e9",-2,3.5],"a":{"c":"d"},"\u00e9":{}}"#,
            "[]",
            r#""plain""#,
            "18446744073709551615",
        ] {
            let j: J = serde_json::from_str(text).unwrap();
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(j.to_value(), v, "{text}");
        }
        let j: J = serde_json::from_str(r#"{"a":1,"b":2,"a":3}"#).unwrap();
        assert_eq!(j.get("a"), Some(&J::Number(3.into())), "the last one wins");
        let m = j.members().unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0], ("a", &J::Number(3.into())));
        assert!(serde_json::from_str::<J>("{\"a\":").is_err());
    }
}
