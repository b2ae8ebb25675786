//! Interop with independent implementations of the chapter-2 contracts (Python, from PyPI):
//! a grpcio client calling our recipe-api, and our web-api calling a grpcio server and a
//! graphql-core server, both built from the contract files and run by the lab as `command`s.

use std::process::Command;

use crate::util::*;

const INTEROP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop");

fn python_peers() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import grpc, grpc_tools, graphql"])
        .output()
        .is_ok_and(|o| o.status.success());
    require(
        "python3 grpcio grpcio-tools graphql-core",
        ok,
        "scripts/install-deps installs them from PyPI",
    )
}

#[test]
fn a_python_grpcio_client_calls_our_recipe_api() {
    if !python_peers() {
        return;
    }
    let lab = LabDir::new(BIN, "[services.recipe-api]\nbuiltin = \"recipe-api\"\n");
    assert_eq!(lab.run(&["up", "--detach", "--ports", "ephemeral"]).code, 0);
    let addr = wait_all_healthy(&lab, 1)[0]["address"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = Command::new("python3")
        .arg(format!("{INTEROP}/grpc_client.py"))
        .arg(&addr)
        .output()
        .unwrap();
    let run = lab_testkit::Run::from(out);
    assert_eq!(run.code, 0, "{run}");
    let v: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(v["recipe"]["name"], "Chicken Tikka Masala");
    assert_eq!(v["recipe"]["ingredients"][1]["quantity"], "2 cups");
    assert_eq!(v["not_found"]["code"], "NOT_FOUND");
    assert!(
        v["not_found"]["details"].as_str().unwrap().contains("7"),
        "{v}"
    );
    assert_eq!(lab.run(&["down"]).code, 0);
}

#[test]
fn our_web_api_calls_python_grpc_and_graphql_servers() {
    if !python_peers() {
        return;
    }
    let toml = format!(
        r#"
[services.py-grpc]
command = ["python3", "-u", "{INTEROP}/grpc_server.py"]
health = {{ check = "tcp" }}

[services.py-graphql]
command = ["python3", "-u", "{INTEROP}/graphql_server.py"]

[services.web-grpc]
builtin = "web-api"
target_protocol = "grpc"
env = {{ TARGET = "py-grpc" }}

[services.web-graphql]
builtin = "web-api"
target_protocol = "graphql"
env = {{ TARGET = "py-graphql" }}
"#
    );
    let lab = LabDir::new(BIN, &toml);
    let inst = up_detached(&lab, 4);
    let addr = |svc: &str| {
        inst.iter().find(|i| i["service"] == svc).unwrap()["address"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let pid = |svc: &str| {
        inst.iter().find(|i| i["service"] == svc).unwrap()["pid"]
            .as_u64()
            .unwrap()
    };

    let (s, body) = http_get(&addr("web-grpc"), "/").unwrap();
    assert_eq!(s, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
    assert_eq!(v["recipe"]["ingredients"][0]["name"], "Chicken", "{v}");
    assert_eq!(
        v["producer_data"]["pid"],
        pid("py-grpc"),
        "the Python server answered: {v}"
    );

    let (s, body) = http_get(&addr("web-graphql"), "/").unwrap();
    assert_eq!(s, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
    assert_eq!(
        v["producer_data"]["data"]["recipe"]["name"], "Chicken Tikka Masala",
        "{v}"
    );
    assert_eq!(
        v["producer_data"]["data"]["pid"],
        pid("py-graphql"),
        "the Python server answered: {v}"
    );
    assert_eq!(lab.run(&["down"]).code, 0);
}
