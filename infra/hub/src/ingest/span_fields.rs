//! How a Zipkin span body is read: the array, and of each span object only the fields the
//! reader uses, each into its slot ([`Fields`]); unknown fields are skipped unread.

use super::lite::J;

/// The visitor methods of every scalar, each answering `$v` (a value of no interest here).
macro_rules! scalars_are {
    ($v:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($v)
        }
    };
}

/// A request body: an array of items, each a span's known fields (`None`: not an object), or
/// anything else.
pub(crate) enum Body<'de> {
    Spans(Vec<Option<Fields<'de>>>),
    Other,
}

/// The fields of a span object the reader looks at, each in its slot (a repeated key: its last
/// value); unknown fields are skipped unread. No tree of the whole object is built (issue 17).
#[derive(Default)]
pub(crate) struct Fields<'de> {
    slots: [Option<J<'de>>; KEYS.len()],
}

const KEYS: [&str; 13] = [
    "traceId",
    "id",
    "parentId",
    "kind",
    "name",
    "timestamp",
    "duration",
    "debug",
    "shared",
    "localEndpoint",
    "remoteEndpoint",
    "annotations",
    "tags",
];

impl<'de> Fields<'de> {
    pub(crate) fn get(&self, key: &str) -> Option<&J<'de>> {
        let at = KEYS.iter().position(|k| *k == key)?;
        self.slots[at].as_ref()
    }
}

impl<'de> serde::Deserialize<'de> for Body<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Body<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> Result<Body<'de>, A::Error> {
                let mut out = Vec::with_capacity(s.size_hint().unwrap_or(16).min(4096));
                while let Some(item) = s.next_element::<Item>()? {
                    out.push(item.0);
                }
                Ok(Body::Spans(out))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Body<'de>, A::Error> {
                while m
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Body::Other)
            }
            scalars_are!(Body::Other);
        }
        d.deserialize_any(V)
    }
}

/// One element of the array: a span object's [`Fields`], or `None` for any other value.
struct Item<'de>(Option<Fields<'de>>);

impl<'de> serde::Deserialize<'de> for Item<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Item<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Item<'de>, A::Error> {
                let mut fields = Fields::default();
                while let Some(k) = m.next_key::<super::lite::Key<'de>>()? {
                    match KEYS.iter().position(|known| *known == k.0) {
                        Some(at) => fields.slots[at] = Some(m.next_value()?),
                        None => {
                            m.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(Item(Some(fields)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> Result<Item<'de>, A::Error> {
                while s.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Item(None))
            }
            scalars_are!(Item(None));
        }
        d.deserialize_any(V)
    }
}
