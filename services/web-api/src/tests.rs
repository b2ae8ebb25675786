//! web-api over the wire, in each target protocol, against the real recipe-api.

use std::time::{Duration, Instant};

use lab_service_kit::client;
use serde_json::json;

use super::*;
use serde_json::Value;

const T: Duration = Duration::from_secs(5);

async fn start(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(lab_service_kit::serve::serve(
        listener,
        router,
        std::future::pending(),
    ));
    addr.to_string()
}

async fn get_json(addr: &str, path: &str) -> (u16, Value) {
    let r = client::get(&format!("http://{addr}{path}"), T)
        .await
        .unwrap();
    (r.status.as_u16(), r.json().unwrap_or(Value::Null))
}

#[tokio::test]
async fn http_wraps_the_producers_answer() {
    let producer = start(Router::new().route(
        "/recipes/42",
        get(|| async { Json(json!({"producer_pid": 1, "recipe": {"id": 42}})) }),
    ))
    .await;
    let web = start(router(AppState::new(producer, T, TargetProtocol::Http))).await;
    let (status, v) = get_json(&web, "/").await;
    assert_eq!(status, 200);
    assert_eq!(v["consumer_pid"], std::process::id());
    assert_eq!(
        v["producer_data"],
        json!({"producer_pid": 1, "recipe": {"id": 42}})
    );
}

#[tokio::test]
async fn each_target_protocol_returns_recipe_42_in_the_books_shape() {
    let producer = start(lab_recipe_api::router()).await;
    let pid = std::process::id();

    let web = start(router(AppState::new(
        producer.clone(),
        T,
        TargetProtocol::Http,
    )))
    .await;
    let (s, v) = get_json(&web, "/").await;
    assert_eq!(
        (s, &v["producer_data"]["recipe"]["name"]),
        (200, &json!("Chicken Tikka Masala")),
        "{v}"
    );

    let web = start(router(AppState::new(
        producer.clone(),
        T,
        TargetProtocol::Graphql,
    )))
    .await;
    let (s, v) = get_json(&web, "/").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["consumer_pid"], pid);
    assert_eq!(v["producer_data"]["data"]["recipe"]["id"], "42", "{v}");
    assert_eq!(
        v["producer_data"]["data"]["recipe"]["ingredients"][0],
        json!({"name": "Chicken", "quantity": "1 lb"})
    );
    assert_eq!(v["producer_data"]["data"]["pid"], pid);

    let web = start(router(AppState::new(
        producer.clone(),
        T,
        TargetProtocol::Grpc,
    )))
    .await;
    let (s, v) = get_json(&web, "/").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["producer_data"], json!({"pid": pid}));
    assert_eq!(v["recipe"]["id"], 42);
    assert_eq!(
        v["recipe"]["ingredients"][1],
        json!({"id": 2, "name": "Sauce", "quantity": "2 cups"})
    );
}

#[tokio::test]
async fn a_dead_upstream_is_a_502_with_json_in_every_protocol() {
    // Bind then drop, so the port is (very likely) refused.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    for p in [
        TargetProtocol::Http,
        TargetProtocol::Graphql,
        TargetProtocol::Grpc,
    ] {
        let web = start(router(AppState::new(dead.clone(), T, p))).await;
        let (s, v) = get_json(&web, "/").await;
        assert_eq!(s, 502, "{p:?}: {v}");
        assert_eq!(v["error"], "upstream_unreachable", "{p:?}: {v}");
    }
}

#[tokio::test]
async fn a_silent_upstream_is_a_503_within_the_timeout() {
    // Accepts connections but never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let _keep = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let timeout = Duration::from_millis(300);
    for p in [
        TargetProtocol::Http,
        TargetProtocol::Graphql,
        TargetProtocol::Grpc,
    ] {
        let web = start(router(AppState::new(addr.to_string(), timeout, p))).await;
        let t0 = Instant::now();
        let (s, v) = get_json(&web, "/").await;
        assert_eq!(s, 503, "{p:?}: {v}");
        assert_eq!(v["error"], "upstream_timeout");
        assert!(
            t0.elapsed() < T,
            "{p:?} answered only after {:?}",
            t0.elapsed()
        );
    }
}

#[tokio::test]
async fn error_route_is_a_json_500() {
    let web = start(router(AppState::new(
        DEFAULT_TARGET,
        T,
        TargetProtocol::Http,
    )))
    .await;
    let (s, v) = get_json(&web, "/error").await;
    assert_eq!(s, 500);
    assert_eq!(v["error"], "internal_error");
}

#[test]
fn target_protocol_parses_and_rejects_unknown_names() {
    assert_eq!("GRPC".parse::<TargetProtocol>(), Ok(TargetProtocol::Grpc));
    assert_eq!("".parse::<TargetProtocol>(), Ok(TargetProtocol::Http));
    assert!(
        "soap"
            .parse::<TargetProtocol>()
            .unwrap_err()
            .contains("soap")
    );
}

#[tokio::test]
async fn compresses_only_when_the_client_accepts_gzip() {
    let producer = start(lab_recipe_api::router()).await;
    let web = start(router(AppState::new(producer, T, TargetProtocol::Http))).await;
    let c = client::Client::new();
    let url = format!("http://{web}/");
    let enc = |r: &client::Response| {
        r.headers
            .get("content-encoding")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let plain = c
        .request(hyper::Method::GET, &url, &[], None, T)
        .await
        .unwrap();
    assert_eq!(enc(&plain), None);
    let gz = c
        .request(
            hyper::Method::GET,
            &url,
            &[("accept-encoding", "gzip")],
            None,
            T,
        )
        .await
        .unwrap();
    assert_eq!(enc(&gz).as_deref(), Some("gzip"));
    assert!(
        gz.body.len() < plain.body.len(),
        "{} vs {}",
        gz.body.len(),
        plain.body.len()
    );
    assert_eq!(&gz.body[..2], &[0x1f, 0x8b], "a gzip stream");
}
