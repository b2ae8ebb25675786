//! `lab load` through the real binary, against a service of the running lab.

use crate::util::*;

const LAB: &str = "[services.recipe-api]\nbuiltin = \"recipe-api\"\n";

#[test]
fn load_a_service_by_name_with_json_and_slas() {
    let lab = LabDir::new(BIN, LAB);
    let up = lab.run(&["up", "--detach", "--ports", "ephemeral"]);
    assert_eq!(up.code, 0, "{up}");

    let r = lab.run(&[
        "load",
        "recipe-api/recipes/42",
        "-a",
        "500",
        "-c",
        "4",
        "--json",
        "--sla",
        "errors<0.1%,rps>1",
    ]);
    assert_eq!(r.code, 0, "{r}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    // autocannon's shape: requests.total, requests.average (req/s), latency.p99 in ms, 2xx.
    assert_eq!(v["requests"]["total"], 500.0, "{v:#}");
    assert_eq!(v["2xx"], 500);
    assert!(v["requests"]["average"].as_f64().unwrap() > 0.0);
    assert!(v["latency"]["p99"].as_f64().unwrap() > 0.0);
    assert_eq!(v["errors"], 0);
    assert!(
        v["sla"].as_array().unwrap().iter().all(|b| b["ok"] == true),
        "{v:#}"
    );

    // A breached bound: exit 1, and the table names it.
    let r = lab.run(&[
        "load",
        "recipe-api/recipes/42",
        "-a",
        "100",
        "--sla",
        "p99<1us",
    ]);
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stdout.contains("x SLA p99<1us: measured"), "{r}");
    assert!(r.stdout.contains("Latency"), "{r}");

    // GraphQL: the book's kitchenSink query as the POST body, /graphql by default.
    let q = "query kitchenSink ($id:ID) { recipe(id: $id) { id name ingredients { name quantity } } pid }";
    let r = lab.run(&[
        "load",
        "recipe-api",
        "--graphql",
        q,
        "--variables",
        r#"{"id":"42"}"#,
        "-a",
        "50",
        "--json",
    ]);
    assert_eq!(r.code, 0, "{r}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["2xx"], 50, "{v:#}");
    assert!(v["url"].as_str().unwrap().ends_with("/graphql"), "{v:#}");

    // gRPC unary over HTTP/2 from the contract; an unknown id counts as grpc-not-found.
    let r = lab.run(&[
        "load",
        "recipe-api",
        "--grpc",
        "recipe.RecipeService/GetRecipe",
        "--data",
        r#"{"id":42}"#,
        "-a",
        "200",
        "-p",
        "8",
        "--json",
    ]);
    assert_eq!(r.code, 0, "{r}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        (v["2xx"].as_u64(), v["errors"].as_u64()),
        (Some(200), Some(0)),
        "{v:#}"
    );
    let r = lab.run(&[
        "load",
        "recipe-api",
        "--grpc",
        "recipe.RecipeService/GetRecipe",
        "--data",
        r#"{"id":7}"#,
        "-a",
        "20",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["errorsByKind"]["grpc-not-found"], 20, "{v:#}");
    // Plain HTTP/2 (h2c) on the REST route.
    let r = lab.run(&[
        "load",
        "recipe-api/recipes/42",
        "--http2",
        "-a",
        "300",
        "-c",
        "2",
        "-p",
        "10",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["2xx"], 300, "{v:#}");

    // The protocol table against the running lab.
    let r = lab.run(&["load", "--compare", "-d", "1s", "-c", "2", "--json"]);
    assert_eq!(r.code, 0, "{r}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let names: Vec<&str> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["protocol"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "http (alike)",
            "https (alike)",
            "http",
            "http+gzip",
            "graphql",
            "http through the proxy",
            "grpc"
        ],
        "like with like: the HTTP/1.1 rows, then HTTP/2"
    );
    assert!(
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["shows"].as_str().is_some_and(|s| !s.is_empty())),
        "each row says what it shows: {v:#}"
    );
    assert!(
        v["rows"][1]["shows"].as_str().unwrap().contains("TLS"),
        "{v:#}"
    );
    assert!(
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["report"]["errors"] == 0 && r["report"]["2xx"].as_u64() > Some(0)),
        "{v:#}"
    );

    // `lab bench protocols` is the same table under its own name (table output here).
    let r = lab.run(&["bench", "protocols", "-d", "300ms", "-c", "1"]);
    assert_eq!(r.code, 0, "{r}");
    for row in ["http+gzip", "graphql", "grpc", "http through the proxy"] {
        assert!(r.stdout.contains(row), "{r}");
    }

    // Unknown service: a usage error naming what exists.
    let r = lab.run(&["load", "recipe-apx/"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("it has: recipe-api"), "{r}");
    // A bad SLA: usage error before any load.
    let r = lab.run(&["load", "recipe-api/", "--sla", "p42<1ms"]);
    assert_eq!(r.code, 2, "{r}");
}

#[test]
fn load_an_https_service_trusting_the_lab_ca_over_http1_and_http2() {
    let lab = LabDir::new(
        BIN,
        "[services.recipe-api]\nbuiltin = \"recipe-api\"\nprotocol = \"https\"\n",
    );
    let up = lab.run(&["up", "--detach", "--ports", "ephemeral"]);
    assert_eq!(up.code, 0, "{up}");
    for extra in [&[][..], &["--http2", "-p", "4"][..]] {
        let mut args = vec![
            "load",
            "recipe-api/recipes/42",
            "-a",
            "200",
            "-c",
            "2",
            "--json",
        ];
        args.extend_from_slice(extra);
        let r = lab.run(&args);
        assert_eq!(r.code, 0, "{r}");
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert!(v["url"].as_str().unwrap().starts_with("https://"), "{v:#}");
        assert_eq!(v["2xx"], 200, "{v:#}");
    }
    // A CA that did not sign the certificate: every request fails the handshake ("tls").
    let other = tempfile::tempdir().unwrap();
    let ca = lab::tls::LabCa::ensure(other.path()).unwrap().ca_cert();
    let addr = lab.instances()[0]["address"].as_str().unwrap().to_owned();
    let url = format!("https://{addr}/recipes/42");
    let r = lab.run(&[
        "load",
        &url,
        "-a",
        "5",
        "--ca",
        ca.to_str().unwrap(),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["errorsByKind"]["tls"], 5, "{v:#}");
}

#[test]
fn load_presets_from_lab_toml_with_command_line_overrides() {
    let lab = LabDir::new(
        BIN,
        r#"
[services.recipe-api]
builtin = "recipe-api"

[load.smoke]
target = "recipe-api/recipes/42"
connections = 3
amount = 300
headers = { "Accept-Encoding" = "gzip" }
sla = "errors<1%,non2xx<1"
"#,
    );
    let up = lab.run(&["up", "--detach", "--ports", "ephemeral"]);
    assert_eq!(up.code, 0, "{up}");
    let r = lab.run(&["load", "smoke", "--json"]);
    assert_eq!(r.code, 0, "{r}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        (v["requests"]["total"].as_f64(), v["connections"].as_u64()),
        (Some(300.0), Some(3)),
        "{v:#}"
    );
    assert_eq!(
        v["sla"].as_array().unwrap().len(),
        2,
        "the preset's SLA applies"
    );
    let r = lab.run(&["load", "smoke", "-a", "40", "-c", "1", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        (v["requests"]["total"].as_f64(), v["connections"].as_u64()),
        (Some(40.0), Some(1)),
        "flags win"
    );

    // A bad preset is a config error with its place.
    let bad = LabDir::new(
        BIN,
        "[services.recipe-api]\nbuiltin = \"recipe-api\"\n[load.x]\ntarget = \"recipe-api/\"\nsla = \"p42<1ms\"\n",
    );
    let r = bad.run(&["up", "--detach"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("lab.toml:5:7: bad SLA bound"), "{r}");
}
