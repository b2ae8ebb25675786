//! recipe-api over the wire, every protocol, on a port-0 listener.

use std::time::Duration;

use lab_service_kit::client;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::grpc::{RecipeServiceClient, pb};

const T: Duration = Duration::from_secs(5);

async fn start() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(lab_service_kit::serve::serve(
        listener,
        router(),
        std::future::pending(),
    ));
    addr.to_string()
}

fn recipe_42_json() -> serde_json::Value {
    json!({"id": 42, "name": "Chicken Tikka Masala", "steps": "Throw it in a pot...",
        "ingredients": [{"id": 1, "name": "Chicken", "quantity": "1 lb"}, {"id": 2, "name": "Sauce", "quantity": "2 cups"}]})
}

#[tokio::test]
async fn recipe_42_has_the_books_body() {
    let addr = start().await;
    let r = client::get(&format!("http://{addr}/recipes/42"), T)
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let v = r.json().unwrap();
    assert_eq!(v["producer_pid"], std::process::id());
    assert_eq!(v["recipe"], recipe_42_json());
}

#[tokio::test]
async fn other_ids_are_not_found_and_words_are_bad_requests() {
    let addr = start().await;
    let r = client::get(&format!("http://{addr}/recipes/7"), T)
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(r.json().unwrap(), json!({"error": "not_found"}));
    let r = client::get(&format!("http://{addr}/recipes/abc"), T)
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.json().unwrap()["error"], "bad_request");
    let r = client::get(&format!("http://{addr}/health"), T)
        .await
        .unwrap();
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "OK"));
}

/// A raw HTTP/1.1 exchange, so headers (Accept-Encoding) and bodies are exactly what we say.
async fn raw(addr: &str, request: &str) -> (String, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(T, s.read_to_end(&mut buf))
        .await
        .expect("answer in time")
        .unwrap();
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end")
        + 4;
    (
        String::from_utf8_lossy(&buf[..split]).to_lowercase(),
        buf[split..].to_vec(),
    )
}

#[tokio::test]
async fn gzip_only_when_asked() {
    let addr = start().await;
    let (plain_head, plain) = raw(
        &addr,
        &format!("GET /recipes/42 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(!plain_head.contains("content-encoding"), "{plain_head}");
    let (gz_head, gz) = raw(
        &addr,
        &format!("GET /recipes/42 HTTP/1.1\r\nHost: {addr}\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(gz_head.contains("content-encoding: gzip"), "{gz_head}");
    let gz = dechunk(&gz_head, gz);
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end_std(&mut unzipped);
    let a: serde_json::Value = serde_json::from_slice(&dechunk(&plain_head, plain)).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&unzipped).unwrap();
    assert_eq!(a["recipe"], b["recipe"]);
}

trait ReadAll {
    fn read_to_end_std(&mut self, out: &mut Vec<u8>);
}
impl<R: std::io::Read> ReadAll for R {
    fn read_to_end_std(&mut self, out: &mut Vec<u8>) {
        std::io::Read::read_to_end(self, out).expect("valid gzip");
    }
}

/// Undo `Transfer-Encoding: chunked` if the head says so.
fn dechunk(head: &str, body: Vec<u8>) -> Vec<u8> {
    if !head.contains("transfer-encoding: chunked") {
        return body;
    }
    let mut out = Vec::new();
    let mut rest = &body[..];
    loop {
        let nl = rest.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&rest[..nl]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&rest[nl + 2..nl + 2 + size]);
        rest = &rest[nl + 2 + size + 2..];
    }
}

async fn graphql(addr: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let (head, body) = raw(
        addr,
        &format!(
            "POST /graphql HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
            body.to_string().len(),
            body
        ),
    )
    .await;
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (
        status,
        serde_json::from_slice(&dechunk(&head, body)).unwrap(),
    )
}

#[tokio::test]
async fn graphql_kitchen_sink_and_unknown_id() {
    let addr = start().await;
    let (status, v) = graphql(
        &addr,
        json!({"query": graphql::KITCHEN_SINK, "variables": {"id": "42"}}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        v["data"]["recipe"],
        json!({"id": "42", "name": "Chicken Tikka Masala", "ingredients": [{"name": "Chicken", "quantity": "1 lb"}, {"name": "Sauce", "quantity": "2 cups"}]})
    );
    assert_eq!(v["data"]["pid"], std::process::id());
    assert!(v.get("errors").is_none(), "{v}");

    let (status, v) = graphql(
        &addr,
        json!({"query": graphql::KITCHEN_SINK, "variables": {"id": "7"}}),
    )
    .await;
    assert_eq!(
        status, 200,
        "unknown ids are GraphQL errors, not HTTP errors"
    );
    assert_eq!(v["data"]["recipe"], serde_json::Value::Null);
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("no recipe with id 7"),
        "{v}"
    );

    // GET with a query string works too; GET without one serves the offline query page.
    let q = "%7B%20pid%20%7D"; // { pid }
    let r = client::get(&format!("http://{addr}/graphql?query={q}"), T)
        .await
        .unwrap();
    assert_eq!(r.json().unwrap()["data"]["pid"], std::process::id());
    let page = client::get(&format!("http://{addr}/graphql"), T)
        .await
        .unwrap();
    assert!(page.text().contains("<textarea"), "query page");
    assert!(
        !page.text().contains("cdn") && !page.text().contains("unpkg"),
        "page works offline"
    );
}

#[tokio::test]
async fn graphql_introspection_works() {
    let addr = start().await;
    let (_, v) = graphql(
        &addr,
        json!({"query": "{ __schema { queryType { name } types { name } } }"}),
    )
    .await;
    assert_eq!(v["data"]["__schema"]["queryType"]["name"], "Query");
    let names: Vec<&str> = v["data"]["__schema"]["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Recipe") && names.contains(&"Ingredient"),
        "{names:?}"
    );
}

#[test]
fn served_sdl_equals_the_contract_file() {
    let served = graphql::normalized_sdl(&graphql::schema().sdl());
    let contract = graphql::normalized_sdl(graphql::CONTRACT_SDL);
    assert!(contract.len() > 8, "contract parsed: {contract:?}");
    assert_eq!(served, contract, "served:\n{}", graphql::schema().sdl());
}

#[tokio::test]
async fn grpc_get_recipe_meta_and_not_found() {
    let addr = start().await;
    let mut c = RecipeServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let r = c
        .get_recipe(pb::RecipeRequest { id: 42 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (r.id, r.name.as_str(), r.ingredients.len()),
        (42, "Chicken Tikka Masala", 2)
    );
    assert_eq!(r.ingredients[1].quantity, "2 cups");
    let m = c.get_meta_data(pb::Empty {}).await.unwrap().into_inner();
    assert_eq!(m.pid as u32, std::process::id());
    let e = c.get_recipe(pb::RecipeRequest { id: 7 }).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    assert!(
        e.message().contains("no recipe with id 7"),
        "{}",
        e.message()
    );
}

#[tokio::test]
async fn the_secret_formula_never_leaves_by_any_protocol() {
    let addr = start().await;
    let rest = client::get(&format!("http://{addr}/recipes/42"), T)
        .await
        .unwrap()
        .text();
    let (_, gql) = graphql(
        &addr,
        json!({"query": "{ recipe(id: \"42\") { id name steps ingredients { id name quantity } } pid }"}),
    )
    .await;
    let (_, intro) = graphql(
        &addr,
        json!({"query": "{ __type(name: \"Recipe\") { fields { name } } }"}),
    )
    .await;
    let mut c = RecipeServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let grpc = format!(
        "{:?}",
        c.get_recipe(pb::RecipeRequest { id: 42 })
            .await
            .unwrap()
            .into_inner()
    );
    for (what, body) in [
        ("rest", rest),
        ("graphql", gql.to_string()),
        ("introspection", intro.to_string()),
        ("grpc", grpc),
    ] {
        assert!(!body.contains("secret"), "{what} leaks the field: {body}");
        assert!(
            !body.contains(model::SECRET_FORMULA),
            "{what} leaks the value: {body}"
        );
        let expect = if what == "introspection" {
            "ingredients"
        } else {
            "Chicken"
        };
        assert!(body.contains(expect), "{what} answered: {body}");
    }
}

#[tokio::test]
async fn malformed_input_gets_proper_errors_and_the_service_stays_up() {
    let addr = start().await;
    // Invalid JSON body.
    let (head, body) = raw(
        &addr,
        "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 9\r\nConnection: close\r\n\r\n{\"query\":",
    )
    .await;
    assert!(head.starts_with("http/1.1 400"), "{head}");
    let v: serde_json::Value = serde_json::from_slice(&dechunk(&head, body)).unwrap();
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("invalid GraphQL request body"),
        "{v}"
    );
    // Invalid GraphQL.
    let (status, v) = graphql(&addr, json!({"query": "{ recipe(id: "})).await;
    assert_eq!(status, 200);
    assert!(v["errors"].as_array().is_some_and(|e| !e.is_empty()), "{v}");
    // Oversized body.
    let big = "x".repeat(BODY_LIMIT + 1);
    let (head, _) = raw(
        &addr,
        &format!("POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{big}", big.len()),
    )
    .await;
    assert!(head.starts_with("http/1.1 413"), "{head}");
    // Garbage on the port (neither HTTP/1.1 nor an HTTP/2 preface).
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"\x00\x01\x02garbage\r\n\r\n\xff\xfe")
        .await
        .unwrap();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(T, s.read_to_end(&mut sink))
        .await
        .expect("connection closed in time");
    // An HTTP/2 preface (as a gRPC client opens with), then a frame far over the size limit.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff\xff\xff\x00\x00\x00\x00\x00\x01garbage")
        .await
        .unwrap();
    let _ = tokio::time::timeout(T, s.read_to_end(&mut sink))
        .await
        .expect("connection closed in time");
    // A gRPC request for a negative id is an ordinary NOT_FOUND.
    let mut c = RecipeServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let bad = c
        .get_recipe(pb::RecipeRequest { id: -1 })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::NotFound);
    // Still up and right.
    let r = client::get(&format!("http://{addr}/recipes/42"), T)
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json().unwrap()["recipe"], recipe_42_json());
}
