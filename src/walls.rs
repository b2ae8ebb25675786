//! The walls of the code, checked: within each crate of the workspace no two files import each
//! other, even through others (no import circle), and no file is over [`MAX_LINES`] lines.
//! A file's imports are the modules its `crate::…`, `super::…` and `child::…` paths name
//! (comments and `#[cfg(test)] mod tests` left out; a `tests.rs` file is a test, not a wall).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest a file may grow before it is split by job.
pub const MAX_LINES: usize = 700;

/// Files over [`MAX_LINES`] not split yet (issue 16), with the most lines each may have: the
/// list only shrinks, and a listed file may not grow.
const NOT_SPLIT_YET: &[(&str, usize)] = &[];

/// The source folders of the workspace's crates.
const CRATES: &[&str] = &[
    "src",
    "infra/net/src",
    "services/kit/src",
    "services/recipe-api/src",
    "services/web-api/src",
    "infra/supervisor/src",
    "infra/proxy/src",
    "infra/loadgen/src",
    "infra/hub/src",
    "infra/testkit/src",
];

type Module = Vec<String>;

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `src/a/b.rs` → `[a, b]`; `src/a/mod.rs` → `[a]`; `src/lib.rs` → `[]`.
fn module_of(root: &Path, file: &Path) -> Module {
    let rel = file
        .strip_prefix(root)
        .expect("under the root")
        .with_extension("");
    let mut m: Module = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(m.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        m.pop();
    }
    m
}

/// The text the walls are made of: no comments, no test module.
fn code(text: &str) -> String {
    let text = text
        .find("#[cfg(test)]\nmod tests")
        .map_or(text, |at| &text[..at]);
    text.lines()
        .map(|l| match l.find("//") {
            Some(at) if !l[..at].contains('"') => &l[..at],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The module segments of a path's text (`a::b::Type` → `[a, b]`).
fn segments(text: &str) -> Vec<String> {
    text.split("::")
        .map_while(|s| {
            let id: String = s.trim().chars().take_while(|c| is_ident(*c)).collect();
            (!id.is_empty() && id.chars().all(|c| !c.is_ascii_uppercase())).then_some(id)
        })
        .collect()
}

/// Every `head::a::b` path in `text`: its segments after `head`; a group
/// (`head::{a::x, b}`) gives one path per member.
fn paths_after(text: &str, head: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let pat = format!("{head}::");
    let mut from = 0;
    while let Some(at) = text[from..].find(&pat) {
        let start = from + at;
        from = start + pat.len();
        let before = text[..start].chars().next_back();
        if before.is_some_and(|c| is_ident(c) || c == ':') {
            continue;
        }
        let rest = &text[from..];
        match rest.strip_prefix('{') {
            Some(group) => {
                let mut depth = 0;
                let end = group
                    .char_indices()
                    .find(|(_, c)| {
                        match c {
                            '{' => depth += 1,
                            '}' if depth == 0 => return true,
                            '}' => depth -= 1,
                            _ => {}
                        }
                        false
                    })
                    .map_or(group.len(), |(i, _)| i);
                out.extend(group[..end].split(',').map(segments));
            }
            None => out.push(segments(rest)),
        }
    }
    out
}

/// The longest prefix of `path` that is a module of the crate.
fn resolve(modules: &BTreeSet<Module>, path: &[String]) -> Option<Module> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|m| modules.contains(m))
}

/// The import graph of one crate: module → the modules it names.
fn graph(root: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let mut files = Vec::new();
    rs_files(root, &mut files);
    files.retain(|f| {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        name != "tests.rs" && !(name == "main.rs" && f.parent() == Some(root))
    });
    let modules: BTreeSet<Module> = files.iter().map(|f| module_of(root, f)).collect();
    let mut g = BTreeMap::new();
    for f in &files {
        let me = module_of(root, f);
        let text = code(&std::fs::read_to_string(f).unwrap_or_default());
        let mut deps = BTreeSet::new();
        for p in paths_after(&text, "crate") {
            deps.extend(resolve(&modules, &p));
        }
        // `super::super::x` is counted once per `super`.
        for p in paths_after(&text, "super") {
            let ups = 1 + p.iter().take_while(|s| *s == "super").count();
            let base = me[..me.len().saturating_sub(ups)].to_vec();
            let rest: Vec<String> = p.into_iter().filter(|s| s != "super").collect();
            deps.extend(resolve(&modules, &[base, rest].concat()));
        }
        // A child module named by its own name (`mod x;` … `x::f()`).
        for line in text.lines() {
            let l = line
                .trim_start()
                .trim_start_matches("pub ")
                .trim_start_matches("pub(crate) ");
            if let Some(kid) = l.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
                for p in paths_after(&text, kid) {
                    let full = [me.clone(), vec![kid.to_owned()], p].concat();
                    deps.extend(resolve(&modules, &full));
                }
            }
        }
        deps.remove(&me);
        g.insert(me, deps);
    }
    g
}

/// A circle of `g`, if there is one: the modules in import order, the first repeated last.
fn circle(g: &BTreeMap<Module, BTreeSet<Module>>) -> Option<Vec<Module>> {
    fn visit(
        g: &BTreeMap<Module, BTreeSet<Module>>,
        m: &Module,
        state: &mut BTreeMap<Module, u8>,
        stack: &mut Vec<Module>,
    ) -> Option<Vec<Module>> {
        state.insert(m.clone(), 1);
        stack.push(m.clone());
        for d in g.get(m).into_iter().flatten() {
            match state.get(d) {
                Some(1) => {
                    let at = stack.iter().position(|s| s == d).expect("on the stack");
                    let mut c = stack[at..].to_vec();
                    c.push(d.clone());
                    return Some(c);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(g, d, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(m.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in g.keys() {
        if !state.contains_key(m)
            && let Some(c) = visit(g, m, &mut state, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

fn show(m: &Module) -> String {
    if m.is_empty() {
        "<crate root>".to_owned()
    } else {
        m.join("::")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn no_crate_has_an_import_circle_between_its_files() {
        let mut found = Vec::new();
        for c in CRATES {
            let g = graph(&workspace().join(c));
            assert!(!g.is_empty(), "{c}: no files read");
            if let Some(circle) = circle(&g) {
                found.push(format!(
                    "{c}: {}",
                    circle.iter().map(show).collect::<Vec<_>>().join(" → ")
                ));
            }
        }
        assert!(
            found.is_empty(),
            "import circles (one per crate):\n{}",
            found.join("\n")
        );
    }

    #[test]
    fn no_file_is_over_the_line_limit() {
        let mut files = Vec::new();
        for c in CRATES
            .iter()
            .chain(&["tests", "infra/hub/tests", "infra/proxy/tests"])
        {
            rs_files(&workspace().join(c), &mut files);
        }
        let long: Vec<String> = files
            .iter()
            .filter_map(|f| {
                let n = std::fs::read_to_string(f).ok()?.lines().count();
                let rel = f
                    .strip_prefix(workspace())
                    .unwrap_or(f)
                    .to_string_lossy()
                    .into_owned();
                let limit = NOT_SPLIT_YET
                    .iter()
                    .find(|(p, _)| *p == rel)
                    .map_or(MAX_LINES, |(_, n)| *n);
                (n > limit).then(|| format!("{rel} ({n} lines, at most {limit})"))
            })
            .collect();
        assert!(
            long.is_empty(),
            "over {MAX_LINES} lines:\n{}",
            long.join("\n")
        );
    }

    #[test]
    fn the_checker_sees_a_circle_and_a_clean_tree() {
        let dir = tempfile::tempdir().unwrap();
        let w = |p: &str, t: &str| {
            let f = dir.path().join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, t).unwrap();
        };
        w("lib.rs", "mod a;\nmod b;\n");
        w("a.rs", "use crate::b::x; // crate::c is a comment\n");
        w("b.rs", "pub fn x() {}\n");
        assert_eq!(circle(&graph(dir.path())), None);
        w("b.rs", "pub fn x() { super::a::y() }\n");
        let c = circle(&graph(dir.path())).expect("a ↔ b");
        assert_eq!(c.len(), 3, "{c:?}");
    }
}
