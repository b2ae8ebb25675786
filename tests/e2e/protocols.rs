//! Chapter 2 through the real binary: `target_protocol` in lab.toml and `lab check ch2`.

use crate::util::*;

#[test]
fn lab_check_ch2_passes_on_the_default_lab() {
    let lab = default_lab();
    let junit = lab.path().join("ch2.xml");
    let r = lab.run(&["check", "ch2", "--json", "--junit", junit.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r}");
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let names: Vec<&str> = report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "ch2.http-json",
            "ch2.gzip",
            "ch2.https",
            "ch2.graphql",
            "ch2.grpc",
            "ch2.consumers",
            "ch2.serialization"
        ]
    );
    assert_eq!(report["failed"], 0, "{report:#}");
    assert!(
        std::fs::read_to_string(&junit)
            .unwrap()
            .contains("name=\"ch2.serialization\"")
    );
}

const GRPC_LAB: &str = r#"
[services.recipe-api]
builtin = "recipe-api"

[services.web-api]
builtin = "web-api"
target_protocol = "grpc"
env = { TARGET = "recipe-api" }
"#;

#[test]
fn web_api_calls_recipe_api_over_the_configured_protocol() {
    let lab = LabDir::new(BIN, GRPC_LAB);
    let inst = up_detached(&lab, 2);
    let web = addr_of(&inst, "web-api");
    let v = get_json_200(&web, "/");
    // The book's gRPC consumer shape: {consumer_pid, producer_data: {pid}, recipe}.
    assert_eq!(v["recipe"]["name"], "Chicken Tikka Masala", "{v}");
    assert!(v["producer_data"]["pid"].is_u64(), "{v}");

    // recipe-api killed and restarted: the gRPC consumer reconnects by itself.
    kill_and_wait_restart(&lab, "recipe-api", 1);
    let back = poll(DEADLINE, EVERY, || {
        http_get(&web, "/").ok().filter(|(s, _)| *s == 200)
    });
    assert!(
        back.is_some(),
        "web-api never reached the restarted recipe-api: {:?}",
        http_get(&web, "/")
    );

    let check = lab.run(&["check", "ch2.consumers"]);
    assert_eq!(check.code, 0, "{check}");
    assert!(
        check
            .stdout
            .contains("web-api (grpc consumer) returns recipe 42"),
        "{check}"
    );
    assert_eq!(lab.run(&["down"]).code, 0);
}

#[test]
fn an_unknown_target_protocol_is_a_config_error() {
    let lab = LabDir::new(BIN, &GRPC_LAB.replace("\"grpc\"", "\"grcp\""));
    let r = lab.run(&["up"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stderr.contains("lab.toml:7:19: unknown variant `grcp`"),
        "{r}"
    );
    assert!(r.stderr.contains("did you mean `grpc`?"), "{r}");
}

const HTTPS_LAB: &str = r#"
[services.recipe-api]
builtin = "recipe-api"
protocol = "https"

[services.web-api]
builtin = "web-api"
target_protocol = "https"
env = { TARGET = "recipe-api" }
"#;

#[test]
fn an_https_lab_makes_its_ca_serves_tls_and_its_consumer_trusts_it() {
    let lab = LabDir::new(BIN, HTTPS_LAB);
    let inst = up_detached(&lab, 2);
    for f in ["ca.crt", "ca.key", "recipe-api.crt", "recipe-api.key"] {
        assert!(
            lab.path().join(".lab/tls").join(f).exists(),
            "{f} made on first use"
        );
    }
    let recipe = addr_of(&inst, "recipe-api");
    let web = addr_of(&inst, "web-api");
    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = http_get(&recipe, "/recipes/42");
    assert!(!matches!(plain, Ok((200, _))), "{plain:?}");
    let (status, body) = http_get(&web, "/").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Chicken Tikka Masala"), "{body}");

    let check = lab.run(&["check", "ch2.https"]);
    assert_eq!(check.code, 0, "{check}");
    let consumers = lab.run(&["check", "ch2.consumers"]);
    assert_eq!(consumers.code, 0, "{consumers}");
    assert!(
        consumers
            .stdout
            .contains("web-api (https consumer) returns recipe 42"),
        "{consumers}"
    );
    assert_eq!(lab.run(&["down"]).code, 0);
}

#[test]
fn https_consumer_of_a_plain_producer_is_a_config_error() {
    let lab = LabDir::new(
        BIN,
        &HTTPS_LAB.replace(
            "protocol = \"https\"\n\n[services.web-api]",
            "\n[services.web-api]",
        ),
    );
    let r = lab.run(&["up"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stderr.contains(
            "`web-api` calls `recipe-api` over https, but `recipe-api` serves plain http"
        ),
        "{r}"
    );
}
