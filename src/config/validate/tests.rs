//! What the section files' tests share, and the tests of the lab as a whole.

use std::path::Path;

/// For the section files' tests: every diagnostic of `src` as `(line, col, message, hint)`.
pub(crate) fn diagnostics_of(src: &str) -> Vec<(usize, usize, String, Option<String>)> {
    match crate::config::parse(src, Path::new("/x/lab.toml"), "lab.toml") {
        Ok(_) => Vec::new(),
        Err(crate::config::ConfigError::Invalid(d)) => d
            .items
            .iter()
            .map(|i| {
                let (l, c) = i.span.as_ref().map_or((0, 0), |s| {
                    crate::config::diagnostic::line_col(src, s.start)
                });
                (l, c, i.message.clone(), i.hint.clone())
            })
            .collect(),
        Err(e) => panic!("{e}"),
    }
}

/// The one diagnostic of `src` whose message contains `part`.
pub(crate) fn one(src: &str, part: &str) -> (usize, usize, String, Option<String>) {
    let all = diagnostics_of(src);
    let mut hits = all.iter().filter(|d| d.2.contains(part));
    let hit = hits
        .next()
        .unwrap_or_else(|| panic!("no {part:?} in {all:#?}"));
    assert!(hits.next().is_none(), "{part:?} twice in {all:#?}");
    hit.clone()
}

#[test]
fn names_and_sections_are_checked_with_their_spans() {
    let (l, c, m, h) = one("name = \"bad name\"\n[hub]\n", "invalid lab name");
    assert_eq!((l, c), (1, 8), "{m}");
    assert!(h.unwrap().contains("letters, digits"));
    let d = diagnostics_of("name = \"x\"\n");
    assert_eq!(d[0].2, "no services: the lab has nothing to run", "{d:?}");
    assert!(
        diagnostics_of("[hub]\n").is_empty(),
        "a lab of only [hub] is valid"
    );
    let (l, _, _, h) = one(
        "[services.hub]\nbuiltin = \"recipe-api\"\n[hub]\n",
        "`hub` is the name of the lab's observability hub",
    );
    assert_eq!(l, 1);
    assert_eq!(h.as_deref(), Some("rename this service (e.g. `my-hub`)"));
    let (l, _, _, h) = one(
        "[services.edges]\nbuiltin = \"recipe-api\"\n",
        "`edges` is the name of the process that relays the lab's fault edges",
    );
    assert_eq!(l, 1);
    assert_eq!(h.as_deref(), Some("rename this service (e.g. `my-edges`)"));
    let (l, c, m, h) = one(
        "[services.a]\nbuiltin = \"recipe-api\"\n[faults]\nedge = true\n",
        "unknown field",
    );
    assert_eq!((l, c), (4, 1), "{m}");
    assert!(
        format!("{m} {h:?}").contains("edges"),
        "the fields it has: {m} {h:?}"
    );
}
